"""auth_basic over real sockets, with user files written by Debian's htpasswd (apache2-utils):
every format (bcrypt, apr1, {SHA}, {SSHA}, {PLAIN}, crypt(3)), hostile Authorization headers,
a cost-12 bcrypt check that leaves the event loop answering others, the user file re-read
when it changes, satisfy any/all with allow/deny, $remote_user, and uploads refused before
they reach disk."""

from __future__ import annotations

import base64
import hashlib
import os
import select
import shutil
import socket
import subprocess

import pytest
from support import RawConn, RunningServer, wait_until

from webserv import htpasswd
from webserv.auth_basic import AuthBasic, credentials

HTPASSWD = shutil.which("htpasswd")
needs_htpasswd = pytest.mark.skipif(HTPASSWD is None, reason="htpasswd (apache2-utils) missing")

CONF = """
error_log {tmp}/error.log info;
http {{
    log_format users '$remote_user|$status|$request_uri';
    access_log {tmp}/access.log users;
    auth_basic_user_file {tmp}/users;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /open/ {{ }}
        location /p/ {{ auth_basic "Private area"; }}
        location /off/ {{ auth_basic off; }}
        location /nested/ {{
            auth_basic "Outer";
            location /nested/inner/ {{ }}
            location /nested/free/ {{ auth_basic off; }}
        }}
        location /missing/ {{ auth_basic x; auth_basic_user_file {tmp}/no-such-file; }}
        location /later/ {{ auth_basic later; auth_basic_user_file {tmp}/later; }}
        location /any/ {{
            satisfy any; allow 127.0.0.1; deny all; auth_basic "Any";
        }}
        location /all/ {{ allow 127.0.0.1; deny all; auth_basic "All"; }}
        location /paged/ {{ auth_basic "Paged"; error_page 401 /open/401.html; }}
        location /up/ {{
            auth_basic "Uploads";
            allow_methods GET HEAD POST PUT;
            alias {tmp}/store/;
            upload_store {tmp}/store;
        }}
    }}
}}
"""
DIRS = ["open", "p", "off", "nested", "nested/inner", "nested/free", "missing", "later"]
DIRS += ["any", "all", "paged"]
FILES = {f"{d}/f.txt": f"{d}\n" for d in DIRS} | {"open/401.html": "custom 401\n"}
# user -> (htpasswd flags, password); None: the line is written by hand
USERS = {
    "bcrypt": (["-B", "-C", "4"], "b-secret"),
    "apr1": (["-m"], "a-secret"),
    "sha": (["-s"], "s-secret"),
    "des": (["-d"], "d-secre"),  # DES crypt reads 8 characters
    "sha256": (["-2"], "2-secret"),
    "sha512": (["-5"], "5-secret"),
    "slow": (["-B", "-C", "12"], "slow-secret"),
    "unicode": (["-B", "-C", "4"], "pässwörd"),
    "slowpoke": (["-B", "-C", "12"], "never-cached"),  # only for the event-loop test
}
HAND = {"plain": "{PLAIN}p-secret", "ssha": None}


def ssha(password: bytes, salt: bytes) -> str:
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password + salt).digest() + salt).decode()


def write_users(path, users: dict[str, tuple[list[str], str]]) -> None:
    lines = ["# a comment line", ""]
    for user, (flags, password) in users.items():
        out = subprocess.run(
            [HTPASSWD, "-n", "-b", *flags, user, password], capture_output=True, check=True
        ).stdout
        lines.append(out.decode().strip())
    lines.append("plain:{PLAIN}p-secret:a comment field")
    lines.append("ssha:" + ssha(b"h-secret", b"saltsalt"))
    lines.append("bcrypt:{PLAIN}shadowed")  # the first line of a user counts, as nginx
    path.write_text("\n".join(lines) + "\n")


PASSWORDS = {user: password for user, (_, password) in USERS.items()}
PASSWORDS |= {"plain": "p-secret", "ssha": "h-secret"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if HTPASSWD is None:
        pytest.skip("htpasswd (apache2-utils) missing")
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "store").mkdir()
    write_users(tmp / "users", USERS)
    srv = RunningServer(tmp, CONF, FILES).start()
    srv.store = tmp / "store"
    yield srv
    srv.stop()


def basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(raw).decode()


class From(RawConn):
    def __init__(self, port: int, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0))
        self.buf = b""


def ask(conn: RawConn, path: str, authorization: str | bytes | None = None, method="GET"):
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
    if authorization is not None:
        value = authorization if isinstance(authorization, bytes) else authorization.encode()
        head += b"Authorization: " + value + b"\r\n"
    conn.send(head + b"\r\n")
    return conn.response(head=method == "HEAD")


def refused_and_kept(conn: RawConn, path: str, authorization, realm="Private area") -> None:
    status, headers, body = ask(conn, path, authorization)
    assert status == 401, (authorization, status)
    assert headers["www-authenticate"] == f'Basic realm="{realm}"'
    assert headers.get("connection") != "close" and b"<h1>401 " in body
    assert ask(conn, "/open/f.txt")[:3:2] == (200, b"open\n")  # kept, and others served


def error_lines(server) -> list[str]:
    return server.error_log.read_text(errors="replace").splitlines()


@pytest.mark.parametrize("user", sorted(set(PASSWORDS) - {"slowpoke"}))
def test_every_format_right_and_wrong(server, user):
    with RawConn(server.port) as conn:
        status, _, body = ask(conn, "/p/f.txt", basic(user, PASSWORDS[user]))
        assert (status, body) == (200, b"p\n")
        refused_and_kept(conn, "/p/f.txt", basic(user, PASSWORDS[user] + "x"))
        refused_and_kept(conn, "/p/f.txt", basic(user, ""))
    wait_until(lambda: any(f'user "{user}": password mismatch' in ln for ln in error_lines(server)))


def test_a_shadowed_line_and_a_hashless_password(server):
    with RawConn(server.port) as conn:
        refused_and_kept(conn, "/p/f.txt", basic("bcrypt", "shadowed"))
        # the stored hash is not a password: sending it back fails
        refused_and_kept(conn, "/p/f.txt", basic("plain", "{PLAIN}p-secret"))


def test_bcrypt_reads_72_bytes_as_libcrypt(server, tmp_path):
    long = "L" * 72
    out = subprocess.run(
        [HTPASSWD, "-nbB", "-C", "4", "u", long], capture_output=True, check=True
    ).stdout.strip()
    entry = htpasswd.parse(out)[b"u"]
    assert entry.verify(long.encode() + b"anything after") and not entry.verify(b"L" * 71)


HOSTILE = {
    "empty": b"",
    "scheme only": b"Basic",
    "scheme and space": b"Basic ",
    "spaces": b"Basic      ",
    "not base64": b"Basic !!!!not-base64!!!!",
    "base64 of one char too many": b"Basic YWJjZ",
    "no colon": "Basic " + base64.b64encode(b"bcrypt").decode(),
    "empty user": "Basic " + base64.b64encode(b":b-secret").decode(),
    "wrong scheme": "Bearer " + base64.b64encode(b"bcrypt:b-secret").decode(),
    "digest": b'Digest username="bcrypt", realm="Private area", nonce="x"',
    "scheme without space": "Basic" + base64.b64encode(b"bcrypt:b-secret").decode(),
    "raw non-UTF-8 bytes": b"Basic \xff\xfe\x80abc",
    "user missing": basic("mallory", "x"),
    "non-UTF-8 user": basic(b"\xff\xfe", b"x"),
    "newline in user": basic(b"evil\n2026/01/01 [emerg] forged", b"x"),
    "a large but valid header": basic("u" * 3000, "p" * 3000),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_authorization_headers(server, name):
    with RawConn(server.port) as conn:
        refused_and_kept(conn, "/p/f.txt", HOSTILE[name])
    with RawConn(server.port) as conn:
        assert ask(conn, "/p/f.txt", basic("plain", "p-secret"))[0] == 200


def test_what_is_logged_for_each_kind(server):
    with RawConn(server.port) as conn:
        for value in (None, HOSTILE["no colon"], HOSTILE["user missing"]):
            ask(conn, "/p/f.txt", value)
        ask(conn, "/p/f.txt", HOSTILE["newline in user"])
    users = server.tmp / "users"

    def logged():
        text = "\n".join(error_lines(server))
        return (
            "[info]" in text
            and "no user/password was provided for basic authentication, client: 127.0.0.1" in text
            and f'user "mallory" was not found in "{users}"' in text
            and 'user "evil\\n2026/01/01 [emerg] forged" was not found' in text
        )

    wait_until(logged)
    # a user name cannot forge a log line
    assert not any(line.startswith("2026/01/01 [emerg]") for line in error_lines(server))


def test_a_header_beyond_the_line_limit_is_refused_and_closed(server):
    value = basic("u" * 6000, "p" * 6000)  # 16 KiB: beyond large_client_header_buffers' 8k
    with RawConn(server.port) as conn:
        status, headers, _ = ask(conn, "/p/f.txt", value)
        assert status in (400, 431) and headers.get("connection") == "close"
        assert conn.closed_by_peer()
    with RawConn(server.port) as conn:
        assert ask(conn, "/p/f.txt", basic("plain", "p-secret"))[0] == 200


def test_scheme_case_and_padding_as_nginx(server):
    good = base64.b64encode(b"plain:p-secret").decode()
    with RawConn(server.port) as conn:
        for value in (f"basic {good}", f"BASIC    {good}", f"Basic {good}==ignored after"):
            assert ask(conn, "/p/f.txt", value)[0] == 200, value
        unpadded = base64.b64encode(b"plain:p-secre").decode().rstrip("=")
        assert ask(conn, "/p/f.txt", f"Basic {unpadded}")[0] == 401


def test_inheritance_and_off(server):
    with RawConn(server.port) as conn:
        assert ask(conn, "/off/f.txt")[0] == 200
        assert ask(conn, "/open/f.txt")[0] == 200
        refused_and_kept(conn, "/nested/inner/f.txt", None, realm="Outer")
        assert ask(conn, "/nested/inner/f.txt", basic("sha", "s-secret"))[0] == 200
        assert ask(conn, "/nested/free/f.txt")[0] == 200


def test_satisfy_any_and_all(server):
    creds = basic("apr1", "a-secret")
    for source, path, authorization, status in [
        ("127.0.0.1", "/any/f.txt", None, 200),  # the address is enough
        ("127.0.0.2", "/any/f.txt", None, 401),  # denied: auth_basic's 401 wins
        ("127.0.0.2", "/any/f.txt", creds, 200),
        ("127.0.0.2", "/any/f.txt", basic("apr1", "bad"), 401),
        ("127.0.0.1", "/all/f.txt", None, 401),  # allowed, still needs the password
        ("127.0.0.1", "/all/f.txt", creds, 200),
        ("127.0.0.2", "/all/f.txt", creds, 403),  # denied first, whatever the password
    ]:
        with From(server.port, source) as conn:
            got, headers, _ = ask(conn, path, authorization)
            assert got == status, (source, path, authorization)
            assert ("www-authenticate" in headers) == (status == 401)
            assert ask(conn, "/open/f.txt")[0] == 200


def test_error_page_for_401_keeps_the_challenge(server):
    with RawConn(server.port) as conn:
        status, headers, body = ask(conn, "/paged/f.txt")
    assert (status, body) == (401, b"custom 401\n")
    assert headers["www-authenticate"] == 'Basic realm="Paged"'


def test_remote_user_in_the_access_log(server):
    with RawConn(server.port) as conn:
        ask(conn, "/p/f.txt?who=1", basic("sha", "s-secret"))
        ask(conn, "/open/f.txt?who=2", basic("nobody", "x"))  # not checked: still the name
        ask(conn, "/open/f.txt?who=3")
    log = server.tmp / "access.log"

    def lines():
        found = [ln for ln in log.read_text().splitlines() if "?who=" in ln]
        return found if len(found) == 3 else None

    assert wait_until(lines) == [
        "sha|200|/p/f.txt?who=1",
        "nobody|200|/open/f.txt?who=2",
        "-|200|/open/f.txt?who=3",
    ]


def test_a_missing_user_file_is_500_and_the_server_goes_on(server):
    with RawConn(server.port) as conn:
        status, headers, _ = ask(conn, "/missing/f.txt", basic("plain", "p-secret"))
        assert status == 500 and "www-authenticate" not in headers
        # as nginx after a 500: the connection ends
        assert headers.get("connection") == "close" and conn.closed_by_peer()
    with RawConn(server.port) as conn:
        assert ask(conn, "/open/f.txt")[0] == 200
    no_creds = ask(RawConn(server.port), "/missing/f.txt")
    assert no_creds[0] == 401  # as nginx: the credentials are looked at before the file
    missing = server.tmp / "no-such-file"
    wait_until(lambda: any(f'open() "{missing}" failed (2: ' in ln for ln in error_lines(server)))


def test_the_user_file_is_re_read_when_it_changes(server):
    later = server.tmp / "later"
    creds = basic("late", "comer")

    def status() -> int:
        with RawConn(server.port) as conn:
            return ask(conn, "/later/f.txt", creds)[0]

    assert status() == 500  # no file yet
    subprocess.run([HTPASSWD, "-cb", str(later), "late", "comer"], check=True, capture_output=True)
    wait_until(lambda: status() == 200)
    subprocess.run([HTPASSWD, "-b", str(later), "late", "changed"], check=True, capture_output=True)
    wait_until(lambda: status() == 401)
    subprocess.run([HTPASSWD, "-D", str(later), "late"], check=True, capture_output=True)
    wait_until(lambda: status() == 401)
    subprocess.run([HTPASSWD, "-b", str(later), "late", "comer"], check=True, capture_output=True)
    wait_until(lambda: status() == 200)


def test_a_slow_bcrypt_check_leaves_the_loop_answering(server):
    """Four cost-12 checks (the pool has two threads) are sent first; static requests on
    another connection are answered while they wait: had bcrypt run on the event loop, every
    slow answer would come before the first static one."""
    slow = [RawConn(server.port) for _ in range(4)]
    try:
        for conn in slow:
            conn.send(
                f"GET /p/f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: "
                f"{basic('slowpoke', 'never-cached')}\r\n\r\n".encode()
            )
        with RawConn(server.port) as fast:
            for _ in range(3):
                assert ask(fast, "/open/f.txt")[0] == 200
        ready, _, _ = select.select([c.sock for c in slow], [], [], 0)
        assert len(ready) < len(slow)  # some slow answers still pending after the fast ones
        assert [conn.response()[0] for conn in slow] == [200] * 4
        # a wrong password takes the same way and is refused
        conn = slow[0]
        conn.send(
            f"GET /p/f.txt HTTP/1.1\r\nHost: x\r\nAuthorization: "
            f"{basic('slowpoke', 'wrong')}\r\n\r\n".encode()
        )
        assert conn.response()[0] == 401
    finally:
        for conn in slow:
            conn.sock.close()


def stored(server) -> list[str]:
    return sorted(os.listdir(server.store))


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), (basic("bcrypt", "wrong"), 401), (basic("mallory", "x"), 401)],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_unauthorized_upload_never_reaches_disk(server, authorization, status, method):
    before = stored(server)
    body = b"y" * 200_000
    with RawConn(server.port) as conn:
        head = f"{method} /up/u.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        if authorization:
            head += f"Authorization: {authorization}\r\n"
        conn.send(head.encode() + b"\r\n")
        try:
            conn.send(body)
        except OSError:
            pass
        got, headers, _ = conn.response()
        assert got == status and headers["www-authenticate"] == 'Basic realm="Uploads"'
        if headers.get("connection") == "close":  # refused before the body was read
            assert conn.closed_by_peer()
        else:  # refused by a slow check while the body arrived: read and dropped
            assert ask(conn, "/open/f.txt")[0] == 200
    assert stored(server) == before
    with RawConn(server.port) as conn:  # the server goes on; a right password uploads
        head = (
            f"{method} /up/ok-{method}.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        )
        conn.send(head.encode() + f"Authorization: {basic('bcrypt', 'b-secret')}\r\n\r\n".encode())
        conn.send(body)
        assert conn.response()[0] in (200, 201, 204)
    assert f"ok-{method}.bin" in stored(server) or len(stored(server)) > len(before)


# --- in-process: the header reader and the success cache ---------------------------------


class Ex:
    def __init__(self, value: bytes | None) -> None:
        self.headers = {} if value is None else {b"authorization": value}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Basic " + base64.b64encode(b"a:b:c"), (b"a", b"b:c")),  # the first colon splits
        (b"Basic " + base64.b64encode(b"a:"), (b"a", b"")),
        (b"Basic " + base64.b64encode(b"\xff:\x00x"), (b"\xff", b"")),  # C strings, as nginx
        (b"Basic YQ", None),  # "a": no colon
        (b"Basic YTpi", (b"a", b"b")),
        (b"Basic YTpi===", (b"a", b"b")),
        (b"Basic YTp=i", (b"a", b"")),  # decoding stops at the first "=", as nginx's
        (b"Basic Y", None),
        (b"Basic YTpi \t", (b"a", b"b")),
        (b"Basic YT pi", None),
        (None, None),
    ],
)
def test_credentials(value, expected):
    assert credentials(Ex(value)) == expected


def test_md5_crypt_matches_htpasswd_and_libcrypt():
    if HTPASSWD is None:
        pytest.skip("htpasswd missing")
    for password in ("", "x", "a much longer password than sixteen bytes", "pässwörd"):
        line = subprocess.run(
            [HTPASSWD, "-nbm", "u", password], capture_output=True, check=True
        ).stdout.strip()
        stored = line.split(b":", 1)[1]
        salt = stored.split(b"$")[2]
        assert htpasswd.md5_crypt(password.encode(), salt) == stored
    if htpasswd.crypt_available():
        assert htpasswd.md5_crypt(b"pw", b"abcdefgh", b"$1$") == htpasswd.libc_crypt(
            b"pw", b"$1$abcdefgh$"
        )


def test_success_cache_is_keyed_by_hash_and_credentials(tmp_path):
    users = tmp_path / "users"
    users.write_bytes(b"u:" + htpasswd.md5_crypt(b"pw", b"saltsalt") + b"\n")
    auth = AuthBasic("r", htpasswd.UserFile(str(users)))
    good = Ex(b"Basic " + base64.b64encode(b"u:pw"))
    assert auth.quick(good) is None and len(auth.successes) == 1
    assert auth.quick(good) is None and len(auth.successes) == 1  # remembered
    assert auth.quick(Ex(b"Basic " + base64.b64encode(b"u:px"))).status == 401
    assert len(auth.successes) == 1  # a failure is never remembered
    # a changed hash in the file: the remembered success no longer applies
    users.write_bytes(b"u:" + htpasswd.md5_crypt(b"other", b"saltsalt") + b"\n")
    auth.file.refresh(0.0)
    assert auth.quick(good).status == 401
