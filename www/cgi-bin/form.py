#!/usr/bin/env python3
"""CGI demo: a form handler. GET shows the query's values, POST the urlencoded body's."""

import html
import os
import sys
from urllib.parse import parse_qsl

method = os.environ.get("REQUEST_METHOD", "GET")
query = parse_qsl(os.environ.get("QUERY_STRING", ""), keep_blank_values=True)
posted: list[tuple[str, str]] = []
if method == "POST":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length) if length else b""
    ctype = os.environ.get("CONTENT_TYPE", "")
    if ctype.split(";")[0].strip() == "application/x-www-form-urlencoded":
        posted = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    elif body:
        sys.stdout.write("Status: 415 Unsupported Media Type\nContent-Type: text/plain\n\n")
        sys.stdout.write(f"form.py takes application/x-www-form-urlencoded, not {ctype!r}\n")
        sys.exit(0)


def table(title: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return f"<h2>{title}</h2><p>(none)</p>"
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f"<h2>{title}</h2><table>{rows}</table>"


name = dict(posted or query).get("name", "")
greeting = f"<p class=greeting>Hello, {html.escape(name)}!</p>" if name else ""
sys.stdout.write("Content-Type: text/html; charset=utf-8\n\n")
sys.stdout.write(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CGI form</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>A form handled by a CGI script</h1>
{greeting}
<form method="post" action="{html.escape(os.environ.get("SCRIPT_NAME", "form.py"))}">
  <label>Name <input name="name" value="{html.escape(name)}"></label>
  <label>Colour <select name="colour"><option>red</option><option>green</option>
  <option>blue</option></select></label>
  <label>Comment <textarea name="comment"></textarea></label>
  <button type="submit">Send (POST)</button>
</form>
<p>Or as a GET: <a href="?name=Ada&amp;colour=green">?name=Ada&amp;colour=green</a></p>
{table("Query string (GET)", query)}
{table("Body (POST)", posted)}
<p>Method: <code>{html.escape(method)}</code></p>
</main></body></html>
""")
