#!/usr/bin/env python3
"""CGI demo: a multipart/form-data upload, echoed as the names and sizes of its parts.

Only the standard library: the body is parsed with email.parser (the `cgi` module is gone
from Python 3.13). GET shows the upload form; ?format=json answers in JSON.
"""

import hashlib
import html
import json
import os
import sys
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

fmt = parse_qs(os.environ.get("QUERY_STRING", "")).get("format", ["html"])[0]
parts = []
error = ""
if os.environ.get("REQUEST_METHOD") == "POST":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length)
    ctype = os.environ.get("CONTENT_TYPE", "")
    if not ctype.startswith("multipart/form-data"):
        error = f"expected multipart/form-data, got {ctype!r}"
    else:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            data = part.get_payload(decode=True) or b""
            parts.append(
                {
                    "name": part.get_param("name", header="content-disposition"),
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )

if fmt == "json":
    sys.stdout.write("Content-Type: application/json\n")
    if error:
        sys.stdout.write("Status: 400 Bad Request\n")
    sys.stdout.write("\n" + json.dumps({"parts": parts, "error": error}) + "\n")
    sys.exit(0)

rows = "".join(
    f"<tr><td>{html.escape(str(p['name']))}</td><td>{html.escape(str(p['filename'] or ''))}</td>"
    f"<td>{html.escape(p['content_type'])}</td><td>{p['size']}</td>"
    f"<td><code>{p['sha256'][:16]}…</code></td></tr>"
    for p in parts
)
result = (
    f"<table><tr><th>field</th><th>file name</th><th>type</th><th>bytes</th><th>sha256</th></tr>"
    f"{rows}</table>"
    if parts
    else ""
)
sys.stdout.write("Content-Type: text/html; charset=utf-8\n\n")
sys.stdout.write(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CGI upload echo</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>Upload echo (CGI)</h1>
<form method="post" enctype="multipart/form-data">
  <label>Title <input name="title"></label>
  <label>Files <input type="file" name="files" multiple></label>
  <button type="submit">Upload</button>
</form>
{f"<p class=error>{html.escape(error)}</p>" if error else ""}
{result}
</main></body></html>
""")
