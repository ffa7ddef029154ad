"""`index` as nginx's index module: the first index file that exists is an internal redirect
to URI+name (the location chosen again: `$uri`, a regex location, its headers and phases),
an absolute name is a URI redirected to untested, names may hold `$variables`, and a loop
ends in 500. Side by side with nginx where it is installed (the same root, the same block)."""

from __future__ import annotations

import pytest
from conformance.nginx import NGINX, RunningNginx
from support import RawConn, RunningServer

BLOCK = r"""
        server_name localhost;
        root {root};
        add_header X-URI $uri;
        add_header X-Args $args;
        location / { }
        location /regex/ { index index.txt; }
        location ~ \.txt$ { add_header X-URI $uri; add_header X-Regex txt; }
        location /redirect/ { index /re.html; }
        location /fallback/ { index missing.html /re.html; }
        location /loop/ { index /loop/; }
        location /many/ { index missing.html sub two.html; }
        location /alias/ { alias {root}/many/; index missing.html two.html; }
        location /var/ { index $server_name.html; }
        location /arg/ { index ${arg_i}.html; }
        location /var_redirect/ { index /$server_name.html; }
        location /phase/ { rewrite ^/phase/index.html$ /re.html last; }
        location /auto/ { autoindex on; index missing.html; }
        location /noindex/ { index missing.html; }
        location /nodir/ { }
"""
FILES = {
    "index.html": "root index\n",
    "re.html": "re\n",
    "localhost.html": "var redirect\n",
    "regex/index.txt": "regex index\n",
    "many/two.html": "two\n",
    "many/sub/index.html": "a directory named like an index is skipped\n",
    "var/localhost.html": "var\n",
    "arg/two.html": "arg two\n",
    "arg/three.html": "arg three\n",
    "phase/index.html": "never: the rewrite sends it elsewhere\n",
    "auto/a.txt": "a\n",
    "fallback/a.txt": "the directory exists: its absolute last index is the answer\n",
    "noindex/a.txt": "a\n",
}

# target → (status, X-URI, X-Regex, body) as nginx answers (checked against it below)
CASES = {
    "/": (200, "/index.html", None, b"root index\n"),
    "/?a=1": (200, "/index.html", None, b"root index\n"),
    "/regex/": (200, "/regex/index.txt", "txt", b"regex index\n"),
    "/redirect/": (200, "/re.html", None, b"re\n"),
    "/fallback/": (200, "/re.html", None, b"re\n"),
    "/many/": (301, "/many/sub", None, None),  # a directory is an index too (then 301)
    "/alias/?a=b": (200, "/alias/two.html", None, b"two\n"),
    "/var/": (200, "/var/localhost.html", None, b"var\n"),
    "/arg/?i=two": (200, "/arg/two.html", None, b"arg two\n"),
    "/arg/?i=three": (200, "/arg/three.html", None, b"arg three\n"),
    "/var_redirect/": (200, "/localhost.html", None, b"var redirect\n"),
    "/phase/": (200, "/re.html", None, b"re\n"),
    "/noindex/": (403, None, None, None),
    "/nodir/": (404, None, None, None),
    "/index.html/": (404, None, None, None),
    "/loop/": (500, None, None, None),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("index")
    inner = BLOCK.replace("{", "{{").replace("}", "}}").replace("{{root}}", "{root}")
    conf = "http {{ access_log off; server {{ listen 127.0.0.1:{port};" + inner + "}} }}\n"
    ws = RunningServer(tmp / "webserv", conf, FILES).start()
    ng = None
    if NGINX is not None:
        (tmp / "nginx").mkdir()
        ng = RunningNginx(tmp / "nginx", ws.root, BLOCK).start()
    yield ws, ng
    if ng is not None:
        ng.stop()
    ws.stop()


def ask(port: int, target: str, method: str = "GET", extra: str = "") -> dict:
    """One request, then whether the connection still serves a second one."""
    with RawConn(port) as conn:
        conn.send(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
        status, headers, body = conn.response(head=method == "HEAD")
        answer = {
            "status": status,
            "uri": headers.get("x-uri"),
            "args": headers.get("x-args"),
            "regex": headers.get("x-regex"),
            "type": headers.get("content-type"),
            "length": headers.get("content-length"),
            "body": body if status == 200 else None,
            "etag": headers.get("etag"),
        }
        if status >= 500:
            answer["closed"] = conn.closed_by_peer()
        else:
            conn.send(b"GET /re.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer["next"] = conn.response()[0]
        return answer


@pytest.mark.parametrize("target", CASES)
def test_index_as_nginx(servers, target):
    ws, ng = servers
    status, uri, regex, body = CASES[target]
    got = ask(ws.port, target)
    assert (got["status"], got["uri"], got["regex"], got["body"]) == (status, uri, regex, body)
    if status >= 500:
        assert got["closed"] is True  # a redirect cycle: 500, and the connection ends
    else:
        assert got["next"] == 200  # ... else it serves on
    if status == 200:
        assert (got["args"] or "") == target.partition("?")[2]  # the query goes along
        if uri.endswith(".html"):
            assert got["type"] == "text/html"
    if ng is not None:
        # (an error page names its server: its length differs; `.txt`: nginx's mime.types)
        skip = {"etag", "type"} if status == 200 else {"etag", "length"}
        theirs = ask(ng.port, target)
        assert {k: v for k, v in theirs.items() if k not in skip} == {
            k: v for k, v in got.items() if k not in skip
        }


def test_server_keeps_serving_after_a_loop(servers):
    ws, _ = servers
    for _ in range(3):
        assert ask(ws.port, "/loop/")["status"] == 500
    assert ask(ws.port, "/")["status"] == 200
    assert "rewrite or internal redirection cycle" in ws.output() + _error_log(ws)


def _error_log(ws) -> str:
    logs = list(ws.tmp.glob("**/error.log"))
    return "".join(p.read_text(errors="replace") for p in logs)


def test_autoindex_without_index_file(servers):
    ws, ng = servers
    with RawConn(ws.port) as conn:
        conn.send(b"GET /auto/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, body = conn.response()
    assert status == 200 and b'<a href="a.txt">a.txt</a>' in body
    assert headers.get("x-uri") == "/auto/"  # no index: the directory's own $uri


def test_head_and_validators_go_through_the_redirect(servers):
    """The internal redirect keeps the method and the header section: HEAD stays HEAD, and
    If-None-Match is checked against the index file (nginx's ngx_http_internal_redirect)."""
    ws, ng = servers
    for server in (ws, ng) if ng is not None else (ws,):
        head = ask(server.port, "/alias/", "HEAD")
        assert (head["status"], head["uri"], head["length"]) == (200, "/alias/two.html", "4")
        etag = ask(server.port, "/alias/")["etag"]
        assert etag
        cond = ask(server.port, "/alias/", extra=f"If-None-Match: {etag}\r\n")
        assert (cond["status"], cond["uri"], cond["next"]) == (304, "/alias/two.html", 200)


def test_index_file_replaced_is_seen(tmp_path):
    """The fast path (the same location answers the index) still follows the file system:
    an index file that appears is served, one that goes is no longer."""
    ws = RunningServer(
        tmp_path,
        "http {{ access_log off; open_file_cache off; server {{ listen 127.0.0.1:{port};"
        " root {root}; location / {{ index first.html second.html; }} }} }}\n",
        {"second.html": "second\n"},
    ).start()
    try:
        assert ask(ws.port, "/")["body"] == b"second\n"
        (ws.root / "first.html").write_text("first\n")
        assert ask(ws.port, "/")["body"] == b"first\n"
        (ws.root / "first.html").unlink()
        (ws.root / "second.html").unlink()
        assert ask(ws.port, "/")["status"] == 403
    finally:
        ws.stop()
