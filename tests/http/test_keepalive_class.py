"""Every kind of response leaves a keep-alive connection usable, and is logged.

Issue 9: a GET of a 0-byte file was answered `200`, `Content-Length: 0`, `Connection:
keep-alive`, and then the connection was cut (sendfile's 0 for an empty part was taken for a
truncated file): the next request went unanswered and the first never reached the access log.
The class of that bug is "some response leaves the connection in a state the next request
cannot use", so each kind of response is followed here by a second request on the same
connection, sent after the first answer has been read and pipelined in the same write, over
HTTP/1.1 and HTTP/1.0 keep-alive; the second must be answered and the first must be in the
access log with its status.
"""

from __future__ import annotations

import re
import sys

import pytest
from support import RawConn, request, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format keyed '$http_x_case $status $request';
    access_log {tmp}/logs/access.log keyed flush=100ms;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /auto/ {{ autoindex on; }}
        location /noindex/ {{ }}
        location /ep/ {{ error_page 404 /errors/404.html; }}
        location /ep-missing/ {{ error_page 404 /errors/no-such-page.html; }}
        location /ep-url/ {{ error_page 404 http://example.test/oops; }}
        location /ep-ret/ {{ error_page 403 /errors/403.html; return 403; }}
        location = /ret-text {{ return 200 "hello $request_method"; }}
        location = /ret-empty {{ return 200; }}
        location = /ret-204 {{ return 204; }}
        location = /ret-404 {{ return 404; }}
        location = /ret-301 {{ return 301 /index.html; }}
        location = /ret-302-text {{ return 302 http://example.test/; }}
        location /up/ {{
            allow_methods GET HEAD POST PUT DELETE;
            alias {tmp}/store/;
            upload_store {tmp}/store;
        }}
        location /nostore/ {{ allow_methods GET HEAD POST PUT DELETE; }}
        location /cgi/ {{ allow_methods GET HEAD POST; cgi .py @PYTHON@; }}
        location = /metrics {{ metrics on; }}
    }}
}}
""".replace("@PYTHON@", sys.executable)

CGI_WITH_LENGTH = (
    "import sys\n"
    "sys.stdout.write('Content-Type: text/plain\\r\\nContent-Length: 6\\r\\n\\r\\nsized\\n')\n"
)
CGI_WITHOUT_LENGTH = "import sys\nsys.stdin.read()\nsys.stdout.write('Content-Type: text/plain\\r\\n\\r\\nstreamed\\n')\n"
CGI_STILL_RUNNING = (  # its header section, then a pause: usually streamed
    "import sys, time\nsys.stdout.write('Content-Type: text/plain\\r\\n\\r\\n')\n"
    "sys.stdout.flush()\ntime.sleep(0.3)\nsys.stdout.write('late\\n')\n"
)
FILES = {
    "index.html": "home\n",
    "empty.html": b"",
    "1k.txt": b"k" * 1024,
    "auto/a.txt": "a\n",
    "noindex/x.txt": "x\n",
    "ep/page.txt": "page\n",
    "errors/404.html": "custom 404\n",
    "errors/403.html": "custom 403\n",
    "cgi/sized.py": CGI_WITH_LENGTH,
    "cgi/streamed.py": CGI_WITHOUT_LENGTH,
    "cgi/slow.py": CGI_STILL_RUNNING,
}
NEXT = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support import RunningServer

    srv = RunningServer(tmp_path_factory.mktemp("kaclass"), CONF, FILES).start()
    srv.store = srv.tmp / "store"
    srv.store.mkdir(exist_ok=True)
    (srv.store / "uploaded-empty.txt").write_bytes(b"")
    yield srv
    srv.stop()


# (id, method, target, extra header lines, body, expected status, 1.0 keeps alive)
CASES = [
    ("empty-file", "GET", "/empty.html", "", b"", 200, True),
    ("empty-file-head", "HEAD", "/empty.html", "", b"", 200, True),
    ("empty-file-range-0-", "GET", "/empty.html", "Range: bytes=0-\r\n", b"", 200, True),
    ("empty-file-range-suffix", "GET", "/empty.html", "Range: bytes=-5\r\n", b"", 200, True),
    (
        "empty-file-if-range",
        "GET",
        "/empty.html",
        "Range: bytes=0-\r\nIf-Range: x\r\n",
        b"",
        200,
        True,
    ),
    ("empty-upload", "GET", "/up/uploaded-empty.txt", "", b"", 200, True),
    ("file", "GET", "/1k.txt", "", b"", 200, True),
    ("head", "HEAD", "/1k.txt", "", b"", 200, True),
    ("304", "GET", "/index.html", "If-None-Match: *\r\n", b"", 304, True),
    ("304-head", "HEAD", "/index.html", "If-None-Match: *\r\n", b"", 304, True),
    ("412", "GET", "/index.html", 'If-Match: "nope"\r\n', b"", 412, True),
    ("206", "GET", "/1k.txt", "Range: bytes=0-9\r\n", b"", 206, True),
    ("206-multipart", "GET", "/1k.txt", "Range: bytes=0-1,5-6\r\n", b"", 206, True),
    ("416", "GET", "/1k.txt", "Range: bytes=5000-\r\n", b"", 416, True),
    ("return-301", "GET", "/ret-301", "", b"", 301, True),
    ("return-302-url", "GET", "/ret-302-text", "", b"", 302, True),
    ("directory-301", "GET", "/auto", "", b"", 301, True),
    ("404-default", "GET", "/nope", "", b"", 404, True),
    ("404-default-head", "HEAD", "/nope", "", b"", 404, True),
    ("404-error-page", "GET", "/ep/nope", "", b"", 404, True),
    ("404-error-page-missing", "GET", "/ep-missing/nope", "", b"", 404, True),
    ("404-error-page-url", "GET", "/ep-url/nope", "", b"", 302, True),
    ("403-error-page-return", "GET", "/ep-ret/x", "", b"", 403, True),
    ("403-directory", "GET", "/noindex/", "", b"", 403, True),
    ("autoindex", "GET", "/auto/", "", b"", 200, True),
    ("autoindex-head", "HEAD", "/auto/", "", b"", 200, True),
    ("cgi-content-length", "GET", "/cgi/sized.py", "", b"", 200, True),
    # a CGI script without a Content-Length: answered whole with one when it has exited by
    # the time its header section is read (a quick one usually has), else streamed (1.1:
    # chunked; 1.0: until the close); None = "as its framing says", checked either way
    ("cgi-unsized", "GET", "/cgi/streamed.py", "", b"", 200, None),
    ("cgi-post-body", "POST", "/cgi/streamed.py", "", b"a=1&b=2", 200, None),
    ("cgi-still-running", "GET", "/cgi/slow.py", "", b"", 200, None),
    ("cgi-head", "HEAD", "/cgi/streamed.py", "", b"", 200, True),
    ("cgi-missing-404", "GET", "/cgi/missing.py", "", b"", 404, True),
    ("upload-put-201", "PUT", "/up/new-{key}.txt", "", b"fresh", 201, True),
    ("upload-put-204", "PUT", "/up/old-{key}.txt", "", b"again", 204, True),
    ("upload-put-empty", "PUT", "/up/zero-{key}.txt", "", b"", 201, True),
    ("upload-post-201", "POST", "/up/", "Content-Type: text/plain\r\n", b"posted", 201, True),
    ("delete-204", "DELETE", "/up/old-{key}.txt", "", b"", 204, True),
    ("delete-404", "DELETE", "/up/never-{key}.txt", "", b"", 404, True),
    ("return-text", "GET", "/ret-text", "", b"", 200, True),
    ("return-text-head", "HEAD", "/ret-text", "", b"", 200, True),
    ("return-text-post", "POST", "/ret-text", "", b"ignored", 200, True),
    ("return-empty", "GET", "/ret-empty", "", b"", 200, True),
    ("return-204", "GET", "/ret-204", "", b"", 204, True),
    ("return-404", "GET", "/ret-404", "", b"", 404, True),
    ("405-delete", "DELETE", "/index.html", "", b"", 405, True),
    ("405-post-empty", "POST", "/index.html", "", b"", 405, True),
    ("411-post-without-length", "POST", "/up/", "no-length", b"", 411, True),
]
# Refused before their body is read: webserv never reads it, so the connection cannot go on
# and is closed after the answer (nginx reads and drops it instead; README, differences)
REFUSED_BODIES = [
    ("405-post-body", "POST", "/index.html", "", b"name=value", 405),
    ("405-put-chunked", "PUT", "/index.html", "chunked", b"0123456789", 405),
    ("403-no-store-body", "PUT", "/nostore/x.txt", "", b"refused", 403),
    ("409-put-directory", "PUT", "/up/", "", b"x", 409),
]


def build(method: str, target: str, extra: str, body: bytes, version: str, case: str) -> bytes:
    lines = f"{method} {target} {version}\r\nHost: x\r\nX-Case: {case}\r\n"
    if version == "HTTP/1.0":
        lines += "Connection: keep-alive\r\n"
    if extra == "chunked":
        chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        return (lines + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked
    if extra == "no-length":
        return (lines + "\r\n").encode()
    if method in ("POST", "PUT") or body:
        lines += f"Content-Length: {len(body)}\r\n"
    return (lines + extra + "\r\n").encode() + body


# HTTP/1.0 has no chunked request bodies (webserv refuses them: 400 and close)
PARAMS = [
    pytest.param(*c, version, id=f"{c[0]}-{version[5:]}")
    for version in ("HTTP/1.1", "HTTP/1.0")
    for c in CASES
    if not (version == "HTTP/1.0" and c[3] == "chunked")
]


@pytest.mark.parametrize("mode", ["after-reading", "pipelined"])
@pytest.mark.parametrize(
    ("case", "method", "target", "extra", "body", "status", "keeps_10", "version"), PARAMS
)
def test_next_request_is_answered(
    server, case, method, target, extra, body, status, keeps_10, version, mode
):
    key = f"{case}-{version[-3:]}-{mode}"
    target = target.format(key=key)
    if case in ("upload-put-204", "delete-204"):
        (server.store / f"old-{key}.txt").write_bytes(b"before")
    first = build(method, target, extra, body, version, key)
    with RawConn(server.port) as conn:
        conn.send(first + NEXT if mode == "pipelined" else first)
        got, headers, reply = conn.response(head=method == "HEAD")
        assert got == status, reply
        if keeps_10 is None:  # whole (Content-Length) or streamed: either, framed right
            keeps_10 = "content-length" in headers
            streamed = "chunked" if version == "HTTP/1.1" and not keeps_10 else None
            assert headers.get("transfer-encoding") == streamed, headers
        keeps = version == "HTTP/1.1" or keeps_10
        if not keeps:
            # HTTP/1.0 and a body of unknown length: the close delimits it (RFC 9112 §6.3)
            assert headers["connection"] == "close"
            assert conn.buf == b"" and conn.closed_by_peer()
        else:
            assert headers["connection"] == "keep-alive"
            if mode == "after-reading":
                conn.send(NEXT)
            assert conn.response()[::2] == (200, b"home\n")
            conn.send(NEXT)  # and the connection still goes on
            assert conn.response()[::2] == (200, b"home\n")
    line = f"{key} {status} {method} {target} {version}"
    wait_until(lambda: line in server.access_lines())
    if case == "upload-put-201":
        assert (server.store / f"new-{key}.txt").read_bytes() == b"fresh"
    if case == "upload-put-empty":
        assert (server.store / f"zero-{key}.txt").read_bytes() == b""


@pytest.mark.parametrize("mode", ["after-reading", "pipelined"])
@pytest.mark.parametrize(
    ("case", "method", "target", "extra", "body", "status"),
    REFUSED_BODIES,
    ids=[c[0] for c in REFUSED_BODIES],
)
def test_refused_body_closes_after_the_answer(
    server, case, method, target, extra, body, status, mode
):
    key = f"{case}-{mode}"
    first = build(method, target, extra, body, "HTTP/1.1", key)
    with RawConn(server.port) as conn:
        conn.send(first + NEXT if mode == "pipelined" else first)
        got, headers, reply = conn.response()
        assert (got, headers["connection"]) == (status, "close")
        assert headers["content-length"] == str(len(reply))
        assert conn.closed_by_peer()
        assert conn.buf == b""  # the pipelined request is never answered
    wait_until(lambda: f"{key} {status} {method} {target} HTTP/1.1" in server.access_lines())
    assert server.alive()


def test_no_error_or_warning_in_the_error_log(server):
    """None of the cases above is a server failure: nothing at [error] or [warn].

    Except the ones the configuration asks for: an error_page that names a missing file is
    the operator's to fix, and nginx logs it at error level too; and a file not found, at
    error level as nginx's `log_not_found on` (the default) logs it.
    """
    text = (server.tmp / "error.log").read_text(errors="replace")
    bad = [
        line
        for line in text.splitlines()
        if re.search(r"\[(error|warn|crit|alert|emerg)\]", line)
        and 'error_page "/errors/no-such-page.html" for 404 failed' not in line
        and not re.search(r'open\(\) ".*" failed \(2: |" does not exist, client: ', line)
    ]
    assert not bad, "\n".join(bad[:10])


def test_empty_file_counted_in_metrics(webserv):
    srv = webserv(CONF, files=FILES)

    def done_2xx() -> float:
        status, _, body = request(srv.port, "/metrics")
        assert status == 200
        found = re.search(rb'webserv_requests_total\{status_class="2xx"\} ([0-9.e+]+)', body)
        return float(found.group(1)) if found else 0.0

    before = done_2xx()  # counts the /metrics request itself once folded
    with RawConn(srv.port) as conn:
        for _ in range(3):
            conn.send(b"GET /empty.html HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = conn.response()
            assert (status, headers["content-length"], body) == (200, "0", b"")
    assert done_2xx() >= before + 4  # the three empty answers and the first /metrics
    assert srv.alive()
