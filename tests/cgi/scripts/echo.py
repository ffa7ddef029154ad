#!/usr/bin/env python3
"""Test script: reads the body from stdin and answers with what it got.

?early=N: read N bytes first and say so at once (flushed), then read the rest, so a client
can see that its body reaches the script before it has sent all of it.
"""

import hashlib
import json
import os
import sys
from urllib.parse import parse_qs

query = parse_qs(os.environ.get("QUERY_STRING", ""))
stdin = sys.stdin.buffer
out = sys.stdout
out.write("Content-Type: text/plain\n\n")
data = b""
early = int(query.get("early", ["0"])[0])
if early:
    while len(data) < early:
        chunk = os.read(0, early - len(data))
        if not chunk:
            break
        data += chunk
    out.write(f"got {len(data)}\n")
    out.flush()
data += stdin.read()  # to EOF: the server closes stdin after CONTENT_LENGTH bytes
result = {
    "CONTENT_LENGTH": os.environ.get("CONTENT_LENGTH"),
    "CONTENT_TYPE": os.environ.get("CONTENT_TYPE"),
    "HTTP_TRANSFER_ENCODING": os.environ.get("HTTP_TRANSFER_ENCODING"),
    "read": len(data),
    "sha256": hashlib.sha256(data).hexdigest(),
}
out.write(json.dumps(result) + "\n")
