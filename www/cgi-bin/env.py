#!/usr/bin/env python3
"""CGI demo: every meta-variable the server passed, as an HTML table.

/cgi-bin/env.py/extra/path?a=1        HTML (PATH_INFO=/extra/path, QUERY_STRING=a=1)
/cgi-bin/env.py?format=text           text/plain, NAME=value lines
/cgi-bin/env.py?format=json           JSON: env, cwd, argv (what the tests read)
"""

import html
import json
import os
import sys
from urllib.parse import parse_qs

env = dict(sorted(os.environ.items()))
fmt = parse_qs(env.get("QUERY_STRING", "")).get("format", ["html"])[0]

if fmt == "json":
    data = {"env": env, "cwd": os.getcwd(), "argv": sys.argv}
    sys.stdout.write("Content-Type: application/json\n\n")
    sys.stdout.write(json.dumps(data, indent=1) + "\n")
elif fmt == "text":
    sys.stdout.write("Content-Type: text/plain; charset=utf-8\n\n")
    for name, value in env.items():
        sys.stdout.write(f"{name}={value}\n")
else:
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
        for k, v in env.items()
    )
    sys.stdout.write("Content-Type: text/html; charset=utf-8\n\n")
    sys.stdout.write(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CGI environment</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>CGI environment</h1>
<p>What <code>{html.escape(env.get("SCRIPT_NAME", ""))}</code> received (RFC 3875 meta-variables,
request headers as <code>HTTP_*</code>, and <code>PATH</code>; nothing else), running in
<code>{html.escape(os.getcwd())}</code>.
Try <a href="{html.escape(env.get("SCRIPT_NAME", ""))}/extra/path?a=1&amp;b=two">extra path and
a query</a>, or <a href="?format=text">plain text</a>.</p>
<table>
{rows}
</table>
</main></body></html>
""")
