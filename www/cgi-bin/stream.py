#!/usr/bin/env python3
"""CGI demo: a slow streamer, one line a second for ?n seconds (default 5, at most 60).

No Content-Length: webserv sends each line as it comes (chunked on HTTP/1.1).
Try `curl -N http://127.0.0.1:8080/cgi-bin/stream.py?n=10`.
"""

import os
import sys
import time
from urllib.parse import parse_qs

try:
    count = int(parse_qs(os.environ.get("QUERY_STRING", "")).get("n", ["5"])[0])
except ValueError:
    count = 5
count = max(1, min(count, 60))
out = sys.stdout
out.write("Content-Type: text/plain; charset=utf-8\nX-Content-Type-Options: nosniff\n\n")
out.flush()
for i in range(1, count + 1):
    out.write(f"line {i} of {count} at {time.strftime('%H:%M:%S')}\n")
    out.flush()
    if i < count:
        time.sleep(1)
