"""The third-party conformance corpus (corpus.py) against the real server, over raw sockets.

For every row: the statuses webserv sends back, in order (or that it closes without an
answer), whether it closes the connection, that a connection it leaves open still answers a
plain request, that every byte it sends parses as HTTP/1.1 responses, and that the server
still answers a new connection afterwards. At the end its logs must hold no traceback.

All rows are sent at once from a thread pool, each on its own connection, when the module's
server starts; each test then checks one row's outcome. Waiting is bounded (1 s of silence
ends a read; 4 s for rows answered only after a 2 s server timeout); nothing is timed.

`pytest --with-nginx` (an option of tests/conftest.py) also starts a real nginx on a free
loopback port, with a config under the module's tmp directory serving the same docroot (POST
answered `201` by `return`, as webserv's upload location answers it), sends it the same rows
the same way, and writes both columns, and the table of differences (`case | nginx |
webserv | why`), to test-artifacts/conformance-nginx.md; a difference whose row has no `why`
(or known-bug reason) fails test_nginx_differences_are_explained. Without nginx installed
that test skips.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from conformance.corpus import CORPUS, Case
from conformance.logcheck import internal_errors
from conformance.nginx import NGINX, RunningNginx
from conformance.wire import Outcome, alive, exchange
from support import REPO, RunningServer, wait_until

CONF = """
error_log {tmp}/error.log info;
http {{
    access_log {tmp}/logs/access.log;
    client_header_timeout 2s;
    client_body_timeout 2s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            allow_methods GET HEAD POST;
            upload_store {tmp}/uploads;
        }}
    }}
}}
"""
NGINX_SERVER = """
        root {root};
        client_header_timeout 2s;
        client_body_timeout 2s;
        location / { if ($request_method = POST) { return 201 "stored\\n"; } }
"""
FILES = {"index.html": "home\n"}
ARTIFACT = REPO / "test-artifacts" / "conformance-nginx.md"


def _param(case: Case, n: int):
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", case.where.split(" ", 1)[-1]).strip("-")[:50]
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=f"{n:03d}-{case.source.split('/')[1]}-{slug}", marks=marks)


ROWS = [_param(case, n) for n, case in enumerate(CORPUS)]


@dataclass
class Measured:
    webserv: dict[int, tuple[Outcome | BaseException, bool]] = field(default_factory=dict)
    nginx: dict[int, tuple[Outcome | BaseException, bool]] = field(default_factory=dict)
    server: RunningServer | None = None
    nginx_error: str | None = None


def _run(port: int, case: Case) -> tuple[Outcome | BaseException, bool]:
    try:
        got = exchange(port, case.raw, quiet=4.0 if case.slow else 1.0, head_first=case.head)
    except OSError as exc:
        got = exc
    return got, alive(port)


def _run_all(port: int) -> dict[int, tuple[Outcome | BaseException, bool]]:
    with ThreadPoolExecutor(16) as pool:
        return dict(enumerate(pool.map(lambda case: _run(port, case), CORPUS)))


@pytest.fixture(scope="module")
def measured(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("conformance")
    result = Measured()
    result.server = RunningServer(tmp / "webserv", CONF, FILES).start()
    nginx = None
    try:
        if request.config.getoption("--with-nginx"):
            if NGINX is None:
                result.nginx_error = "nginx is not installed (scripts/system-deps.sh installs it)"
            else:
                nginx = RunningNginx(tmp / "nginx", result.server.root, NGINX_SERVER).start()
        with ThreadPoolExecutor(2) as pool:
            ours = pool.submit(_run_all, result.server.port)
            theirs = pool.submit(_run_all, nginx.port) if nginx else None
            result.webserv = ours.result()
            result.nginx = theirs.result() if theirs else {}
        yield result
    finally:
        result.server.stop()
        if nginx:
            nginx.stop()


def _matches(expect: tuple, statuses: tuple[int, ...]) -> bool:
    return len(expect) == len(statuses) and all(
        got in (want if isinstance(want, tuple) else (want,))
        for want, got in zip(expect, statuses, strict=True)
    )


def _expected(case: Case) -> str:
    answer = " ".join(
        "/".join(map(str, s)) if isinstance(s, tuple) else str(s) for s in case.expect
    )
    end = {True: "closed", False: "open", None: "closed or open"}[case.closes]
    return f"{answer or 'no answer'}, {end}"


CHECKS = {
    "allow": lambda r: r.header("allow") is not None,
    "date": lambda r: r.header("date") is not None,
    "head-no-body": lambda r: r.body == b"",  # a body sent anyway would show as garbage
    "no-cl-in-204": lambda r: r.status != 204 or r.header("content-length") is None,
}


@pytest.mark.parametrize("case", ROWS)
def test_row(case: Case, measured: Measured):
    got, still_serving = measured.webserv[CORPUS.index(case)]
    if isinstance(got, BaseException):
        raise got
    said = f"{case.raw[:120]!r}: webserv {got.describe()}; expected {_expected(case)}"
    assert not got.garbage, f"a malformed answer to {said}"
    assert _matches(case.expect, got.statuses), said
    if case.closes is not None:
        assert got.closed == case.closes, said
    if not got.closed:
        assert got.next_status == 200, f"left open, but a next request went unanswered: {said}"
    if case.check:
        assert CHECKS[case.check](got.responses[0]), f"{case.check} failed: {said}"
    assert still_serving, f"the server no longer answers a new connection after {said}"


def test_corpus_rows_are_unique():
    assert len({case.raw for case in CORPUS}) == len(CORPUS)


def test_no_internal_error_in_logs(measured: Measured):
    """No traceback, and none of the markers of an internal error."""
    server = measured.server
    found = internal_errors(server.error_log.read_text(errors="replace") + server.output())
    assert not found, "internal errors in webserv's logs:\n" + "\n".join(found[:20])


def test_bytes_after_connection_close_leave_no_traceback(webserv):
    """http-garden server bug 45's shape: the 200 was right, but the parser's 400 for the
    bytes after it was written after the lingering close's write_eof() (a RuntimeError
    traceback on stderr). They are dropped now; tests/http/test_upgrade_and_trailing.py
    tests the class."""
    server = webserv(CONF, FILES)
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nInvalid\r\n\r\n"
    got = exchange(server.port, raw)
    assert (got.statuses, got.closed, got.garbage) == ((200,), True, b"")
    wait_until(lambda: alive(server.port))
    found = internal_errors(server.output() + server.error_log.read_text(errors="replace"))
    assert not found, "\n".join(found)


def test_client_mistakes_are_not_logged_as_errors(measured: Measured):
    """Every row is a client's doing; none of them is the server's error. (A file not
    found is logged at error level, as nginx's `log_not_found on`: those lines are left out.)"""
    lines = measured.server.error_log.read_text(errors="replace").splitlines()
    not_found = re.compile(r'open\(\) ".*" failed \((2|20|36): ')
    errors = [
        line
        for line in lines
        if re.search(r"\[(error|crit|alert|emerg)\]", line) and not not_found.search(line)
    ]
    assert not errors, "\n".join(errors[:10])


def _key(got: Outcome | BaseException) -> tuple:
    if isinstance(got, BaseException):
        return ("error", type(got).__name__)
    return (got.statuses, got.closed, bool(got.garbage))


def _describe(got: Outcome | BaseException) -> str:
    return f"{type(got).__name__}: {got}" if isinstance(got, BaseException) else got.describe()


def test_nginx_differences_are_explained(measured: Measured, request):
    if not request.config.getoption("--with-nginx"):
        pytest.skip("the nginx column is filled only with --with-nginx")
    if measured.nginx_error:
        pytest.skip(measured.nginx_error)
    lines = [
        "# The conformance corpus: webserv and nginx, measured the same way",
        "",
        "| # | source | case | sent | source says | nginx | webserv |",
        "|---|---|---|---|---|---|---|",
    ]
    diffs = ["| case | nginx | webserv | why |", "|---|---|---|---|"]
    unexplained = []
    for n, case in enumerate(CORPUS):
        ours, _ = measured.webserv[n]
        theirs, _ = measured.nginx[n]
        sent = repr(case.raw if len(case.raw) < 90 else case.raw[:80] + b"...").replace("|", "\\|")
        lines.append(
            f"| {n} | {case.source} | {case.where} | `{sent}` | {case.source_says} "
            f"| {_describe(theirs)} | {_describe(ours)} |"
        )
        if _key(ours) != _key(theirs):
            why = case.why or (f"webserv bug: {case.xfail}" if case.xfail else "")
            diffs.append(
                f"| {case.source} {case.where} | {_describe(theirs)} | {_describe(ours)} | {why} |"
            )
            if not why:
                unexplained.append(f"{n} {case.where}: nginx {_describe(theirs)}")
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("\n".join(lines + ["", "## Differences", ""] + diffs) + "\n")
    assert not unexplained, "differences from nginx with no `why`:\n" + "\n".join(unexplained)
