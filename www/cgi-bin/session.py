#!/usr/bin/env python3
"""CGI demo: a cookie and a server-side session, a counter that survives page reloads.

The first visit gets a random session id in a `sid` cookie; the count lives in a file named
after it, under $WEBSERV_SESSION_DIR when set, else <system temp dir>/webserv-sessions
(webserv passes scripts no environment of its own, so for a CGI run it is the latter).
?reset forgets the session; sessions unused for a day are removed.
"""

import fcntl
import html
import os
import re
import secrets
import sys
import tempfile
import time
from http.cookies import CookieError, SimpleCookie

SESSION_DIR = os.environ.get("WEBSERV_SESSION_DIR") or os.path.join(
    tempfile.gettempdir(), "webserv-sessions"
)
SESSION_TTL = 24 * 3600  # seconds a session may stay unused before it is forgotten
os.makedirs(SESSION_DIR, mode=0o700, exist_ok=True)

cookies = SimpleCookie()
try:
    cookies.load(os.environ.get("HTTP_COOKIE", ""))
except CookieError:
    pass
sid = cookies["sid"].value if "sid" in cookies else ""
if not re.fullmatch(r"[0-9a-f]{32}", sid):  # never a path: only ids made here are used
    sid = ""
headers = ["Content-Type: text/html; charset=utf-8", "Cache-Control: no-store"]
if os.environ.get("QUERY_STRING") == "reset" and sid:
    try:
        os.unlink(os.path.join(SESSION_DIR, sid))
    except FileNotFoundError:
        pass
    sid = ""
new = not sid
if new:
    sid = secrets.token_hex(16)
    headers.append(f"Set-Cookie: sid={sid}; Path=/; HttpOnly; SameSite=Lax")
    # a new session is the moment to forget the ones nobody came back to
    now = time.time()
    for entry in os.scandir(SESSION_DIR):
        try:
            if now - entry.stat().st_mtime > SESSION_TTL:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass

with open(os.path.join(SESSION_DIR, sid), "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)  # two reloads at once still count two
    f.seek(0)
    text = f.read().strip()
    count = (int(text) if text.isdigit() else 0) + 1
    f.seek(0)
    f.truncate()
    f.write(f"{count}\n")

headers.append(f"X-Session-Count: {count}")
sys.stdout.write("\n".join(headers) + "\n\n")
sys.stdout.write(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CGI session</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>Session counter</h1>
<p>{"A new session started: " if new else "Welcome back: "}you have loaded this page
<strong id="count">{count}</strong> time{"s" if count != 1 else ""}.</p>
<p>Session id (cookie <code>sid</code>): <code>{html.escape(sid)}</code></p>
<p><a href="?">Reload</a> · <a href="?reset">Forget the session</a></p>
</main></body></html>
""")
