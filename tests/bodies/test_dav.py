"""WebDAV (dav_methods) against a real server: every method, every refused input (its status,
how the connection ends, what is on disk, the server serving on), modes, dates, UTF-8
names, and a client that goes away mid-PUT. nginx's answers for the same requests are
test_dav_nginx.py's."""

from __future__ import annotations

import os
import stat

import pytest
from bodies_support import chunked, head, listing, rst_close, temp_files, wait_temp
from support import RawConn, RunningServer, request

CONF = """
http {{
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ dav_methods PUT DELETE MKCOL COPY MOVE; }}
        location /full/ {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
        location /min/ {{ dav_methods DELETE; min_delete_depth 3; }}
        location /i/ {{ alias {tmp}/aliased/; dav_methods PUT DELETE MKCOL COPY MOVE; }}
        location /big/ {{ dav_methods PUT; client_max_body_size 0; create_full_put_path on; }}
        location /ro/ {{ }}
        location /mix/ {{
            upload_store {tmp}/store;
            allow_methods GET HEAD POST DELETE;
            dav_methods PUT;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dav")
    (tmp / "aliased").mkdir()
    (tmp / "outside").mkdir()
    (tmp / "store").mkdir()
    srv = RunningServer(tmp, CONF, {"ro/page": "ro\n"}).start()
    (srv.root / "out").symlink_to(tmp / "outside")
    yield srv
    srv.stop()


def send(server, method, target, fields=None, body=b"", close=False):
    """(status, headers, closed by the server) of one request on a fresh connection; CLOSE:
    the request does not ask to close, and the server's closing is looked at."""
    fields = dict(fields or {})
    if not close:
        fields.setdefault("Connection", "close")
    if method == "PUT" and "Content-Length" not in fields and "Transfer-Encoding" not in fields:
        fields["Content-Length"] = len(body)
    with RawConn(server.port) as conn:
        conn.send(head(method, target, fields) + body)
        status, headers, _ = conn.response()
        closed = conn.closed_by_peer(timeout=10) if close else None
        return status, headers, closed


def write(server, name: str, data: str = "x") -> None:
    path = server.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


# --- PUT ---------------------------------------------------------------------------------


def test_put_creates_then_replaces(server):
    status, headers, _ = send(server, "PUT", "/p1", body=b"first")
    assert (status, headers["location"], headers["content-length"]) == (201, "/p1", "0")
    assert stat.S_IMODE(os.stat(server.root / "p1").st_mode) == 0o600  # dav_access default
    status, headers, _ = send(server, "PUT", "/p1", body=b"second")
    assert status == 204 and "content-length" not in headers
    assert (server.root / "p1").read_bytes() == b"second"
    assert request(server.port, "/p1")[2] == b"second"
    assert not temp_files(server.root)


def test_put_chunked_and_utf8_name(server):
    data = b"0123456789" * 500
    fields = {"Transfer-Encoding": "chunked"}
    status, headers, _ = send(server, "PUT", "/%D0%BC%D0%B8", fields, chunked(data, 999))
    assert status == 201 and headers["location"] == "/%D0%BC%D0%B8"
    assert (server.root / "ми").read_bytes() == data


def test_put_date_sets_the_mtime(server):
    status, _, _ = send(server, "PUT", "/dated", {"Date": "Thu, 01 Jan 2015 00:00:00 GMT"}, b"d")
    assert status == 201
    assert os.stat(server.root / "dated").st_mtime == 1420070400
    assert send(server, "PUT", "/undated", {"Date": "not a date"}, b"d")[0] == 201
    assert os.stat(server.root / "undated").st_mtime != 1420070400


def test_put_full_path_and_dav_access(server):
    assert send(server, "PUT", "/full/a/b/c", body=b"deep")[0] == 201
    assert (server.root / "full/a/b/c").read_bytes() == b"deep"
    assert stat.S_IMODE(os.stat(server.root / "full/a/b/c").st_mode) == 0o644
    assert os.stat(server.root / "full/a/b").st_mode & 0o755 == 0o755  # x where r (umask)


@pytest.mark.parametrize(
    ("target", "fields", "status"),
    [
        ("/coll/", {}, 409),  # a collection URI
        ("/adir", {}, 409),  # an existing directory
        ("/no-parent/x", {}, 409),  # without create_full_put_path (nginx: 500)
        ("/afile/x", {}, 409),  # the parent is a file
        ("/range", {"Content-Range": "bytes 0-3/10"}, 501),
        ("/ro/x", {}, 405),
        ("/out/x", {}, 403),  # a symlink out of the root
        ("/.webserv-upload-1-x", {}, 404),  # a name reserved for uploads in progress
    ],
)
def test_put_refused(server, target, fields, status):
    (server.root / "adir").mkdir(exist_ok=True)
    write(server, "afile")
    before = listing(server.root)
    got, _, closed = send(server, "PUT", target, fields, b"never stored", close=True)
    assert got == status
    assert closed  # refused before the body was read: the connection cannot go on
    assert listing(server.root) == before
    assert not os.listdir(server.tmp / "outside")
    assert server.alive()


def test_put_without_a_length_is_411(server):
    with RawConn(server.port) as conn:
        conn.send(b"PUT /nolength HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.response()[0] == 411
    assert not (server.root / "nolength").exists()


@pytest.mark.parametrize("target", ["/big/gone", "/big/new/dirs/gone"])
def test_put_client_goes_away_midway(server, target):
    """Nothing half-written, no directory create_full_put_path would have made."""
    before = listing(server.root)
    sock = server.connect()
    sock.sendall(head("PUT", target, {"Content-Length": 10_000_000}) + b"y" * 200_000)
    wait_temp(server.root, 1)
    rst_close(sock)
    from bodies_support import wait_no_temp

    wait_no_temp(server.root)
    assert listing(server.root) == before
    assert server.alive()


# --- DELETE ------------------------------------------------------------------------------


def test_delete_file_and_tree(server):
    write(server, "d1")
    write(server, "t1/a/b")
    write(server, "t1/c")
    with RawConn(server.port) as conn:  # keep-alive: a bodiless 204 lets the connection go on
        conn.send(head("DELETE", "/d1"))
        assert conn.response()[0] == 204
        conn.send(head("DELETE", "/t1/", {"Connection": "close"}))
        assert conn.response()[0] == 204
    assert not (server.root / "d1").exists() and not (server.root / "t1").exists()


@pytest.mark.parametrize(
    ("target", "fields", "status"),
    [
        ("/missing", {}, 404),
        ("/missing/x", {}, 404),
        ("/ddir", {}, 409),  # a directory without the slash
        ("/dfile/", {}, 409),  # a file with one
        ("/ddir/", {"Depth": "0"}, 400),
        ("/ddir/", {"Depth": "1"}, 400),
        ("/dfile", {"Depth": "1"}, 400),
        ("/dfile", {"Depth": "bogus"}, 400),
        ("/", {}, 403),  # never the root itself
        ("/min/shallow", {}, 409),  # min_delete_depth 3
        ("/ro/page", {}, 405),
    ],
)
def test_delete_refused(server, target, fields, status):
    write(server, "ddir/f")
    write(server, "dfile")
    write(server, "min/shallow")
    before = listing(server.root)
    assert send(server, "DELETE", target, fields)[0] == status
    assert listing(server.root) == before
    assert server.alive()


def test_delete_depth_and_min_delete_depth_accepted(server):
    write(server, "z0")
    write(server, "zi")
    write(server, "min/a/deep")
    assert send(server, "DELETE", "/z0", {"Depth": "0"})[0] == 204
    assert send(server, "DELETE", "/zi", {"Depth": "infinity"})[0] == 204
    assert send(server, "DELETE", "/min/a/deep")[0] == 204
    assert not (server.root / "min/a/deep").exists()


@pytest.mark.parametrize("method", ["DELETE", "MKCOL", "COPY", "MOVE"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_is_415(server, method, framing):
    write(server, "bodyfile")
    before = listing(server.root)
    fields = {"Destination": "/bodycopy"}
    if framing == "length":
        fields["Content-Length"] = 4
        body = b"abcd"
    else:
        fields["Transfer-Encoding"] = "chunked"
        body = chunked(b"abcd", 2)
    target = "/bodydir/" if method == "MKCOL" else "/bodyfile"
    status, _, closed = send(server, method, target, fields, body, close=True)
    assert (status, closed) == (415, True)
    assert listing(server.root) == before
    assert server.alive()


# --- MKCOL -------------------------------------------------------------------------------


def test_mkcol(server):
    status, headers, _ = send(server, "MKCOL", "/col%20one/", {"Content-Length": 0})
    assert (status, headers["location"], headers["content-length"]) == (201, "/col%20one/", "0")
    assert (server.root / "col one").is_dir()
    assert send(server, "MKCOL", "/col%20one/")[0] == 405  # exists
    assert send(server, "MKCOL", "/")[0] == 405  # the root exists (nginx: 201)
    assert send(server, "MKCOL", "/i/")[0] == 405
    assert send(server, "MKCOL", "/col-no-slash")[0] == 409
    assert send(server, "MKCOL", "/no/parent/")[0] == 409
    assert send(server, "MKCOL", "/i/viaalias/")[0] == 201
    assert (server.tmp / "aliased" / "viaalias").is_dir()


# --- COPY and MOVE -----------------------------------------------------------------------


def copy(server, source, destination, method="COPY", **fields):
    fields = {k.replace("_", "-"): v for k, v in fields.items()}
    if destination is not None:
        fields["Destination"] = destination
    return send(server, method, source, fields)[0]


@pytest.mark.parametrize(
    ("source", "destination", "fields", "status"),
    [
        ("/src", None, {}, 400),
        ("/src", "", {}, 400),
        ("/src", "ftp://localhost/x", {}, 400),
        ("/src", "http://otherhost/x", {}, 400),
        ("/src", "http://localhost", {}, 400),
        ("/src", "relative/x", {}, 400),
        ("/src", "/a/../x", {}, 400),
        ("/src", "/a/%2e%2e/x", {}, 400),
        ("/src", "/x%00y", {}, 400),
        ("/src", "/x", {"Overwrite": "X"}, 400),
        ("/src", "/x", {"Overwrite": "TRUE"}, 400),
        ("/src", "/x", {"Depth": "1"}, 400),
        ("/src", "/existing", {"Overwrite": "F"}, 412),
        ("/src", "/src", {}, 403),  # onto itself (nginx truncates the file: 500)
        ("/src", "//src", {}, 403),
        ("/sdir/", "/sdir/in/", {}, 403),  # into itself (nginx copies it into itself)
        ("/sdir/sub/", "/sdir/", {}, 403),
        ("/sdir/", "/nonslash", {}, 409),
        ("/src", "/slash/", {}, 409),
        ("/src", "/sdir", {}, 409),  # a file onto a collection
        ("/sdir", "/x", {}, 400),  # a collection without its slash
        ("/src", "/no/parent/x", {}, 409),  # nginx: 500
        ("/missing", "/x", {}, 404),
        ("/missing", "/no/parent/x", {}, 404),  # the source first, as nginx
        ("/src/", "/x/", {}, 404),  # a file with a slash
        ("/src", "/out/x", {}, 403),
        ("/src", "/ro/x", {}, 204),  # the source's location maps it (as nginx)
        ("/i/x", "/elsewhere", {}, 400),  # an alias keeps Destination under its prefix
    ],
)
def test_copy_refused(server, source, destination, fields, status):
    write(server, "src", "SRC")
    write(server, "existing", "OLD")
    write(server, "sdir/sub/f")
    write(server, "ro/x", "ro")
    before = listing(server.root)
    assert copy(server, source, destination, **fields) == status
    if status != 204:
        assert listing(server.root) == before
        assert copy(server, source, destination, method="MOVE", **fields) == status
        assert listing(server.root) == before
    assert not os.listdir(server.tmp / "outside")
    assert server.alive()


def test_copy_file(server):
    write(server, "cf", "COPYDATA")
    os.chmod(server.root / "cf", 0o640)
    assert copy(server, "/cf", "/cf%20copy") == 204  # a file: 204 whether new or not (nginx)
    assert (server.root / "cf copy").read_text() == "COPYDATA"
    assert stat.S_IMODE(os.stat(server.root / "cf copy").st_mode) == 0o640
    write(server, "cf-old", "OLD, LONGER")
    assert copy(server, "/cf", "http://localhost:1234/cf-old", Overwrite="T") == 204
    assert (server.root / "cf-old").read_text() == "COPYDATA"
    assert copy(server, "/cf", "/cf-old", Depth="0", Overwrite="t") == 204
    assert not temp_files(server.root)


def test_copy_and_move_trees(server):
    write(server, "tree/a", "A")
    write(server, "tree/sub/b", "B")
    write(server, "old/gone", "G")
    assert copy(server, "/tree/", "/old/") == 201  # replaces the old tree whole
    assert listing(server.root / "old") == {"a": b"A", "sub": b"<dir>", "sub/b": b"B"}
    assert copy(server, "/tree/", "/shallow/", Depth="0") == 201  # the collection only
    assert listing(server.root / "shallow") == {}
    assert copy(server, "/tree/", "/moved/", method="MOVE") == 201
    assert not (server.root / "tree").exists()
    assert listing(server.root / "moved") == {"a": b"A", "sub": b"<dir>", "sub/b": b"B"}
    assert copy(server, "/moved/", "/moved2/", method="MOVE", Depth="0") == 400
    write(server, "afile2", "F")
    assert copy(server, "/moved/", "/afile2/") == 201  # a collection may replace a file
    assert (server.root / "afile2" / "a").read_text() == "A"
    assert not temp_files(server.root)
    assert not [n for n in os.listdir(server.root) if n.startswith(".webserv-upload-")]


def test_move_file(server):
    write(server, "mv", "MOVEDATA")
    write(server, "mv-target", "OLD")
    assert copy(server, "/mv", "/mv-target", method="MOVE", Overwrite="F") == 412
    assert copy(server, "/mv", "/mv-target", method="MOVE") == 204
    assert not (server.root / "mv").exists()
    assert (server.root / "mv-target").read_text() == "MOVEDATA"
    assert request(server.port, "/mv-target")[2] == b"MOVEDATA"
    assert request(server.port, "/mv")[0] == 404
    write(server, "i-src", "I")
    (server.tmp / "aliased" / "afile").write_text("AL")
    assert copy(server, "/i/afile", "/i/acopy") == 204
    assert (server.tmp / "aliased" / "acopy").read_text() == "AL"


def test_methods_outside_dav_are_405(server):
    for method in ("MKCOL", "COPY", "MOVE"):
        status, headers, _ = send(server, method, "/ro/page", {"Destination": "/ro/x"})
        assert status == 405 and headers["allow"] == "GET, HEAD"
    assert send(server, "PROPFIND", "/ro/page")[0] == 501  # not one webserv knows


def test_upload_store_and_dav_in_one_location(server):
    """dav_methods takes the methods it lists; the others keep upload_store's meaning."""
    (server.root / "mix").mkdir(exist_ok=True)
    status, headers, _ = send(server, "POST", "/mix/", {"Content-Length": 4}, b"form")
    assert status == 201
    stored = headers["location"].rsplit("/", 1)[1]
    assert (server.tmp / "store" / stored).read_bytes() == b"form"
    assert send(server, "PUT", "/mix/put", body=b"dav")[0] == 201
    assert (server.root / "mix" / "put").read_bytes() == b"dav"  # under the root
    assert not (server.tmp / "store" / "put").exists()
    assert send(server, "DELETE", f"/mix/{stored}")[0] == 204  # upload's DELETE: the store
    assert not (server.tmp / "store" / stored).exists()
    assert send(server, "MKCOL", "/mix/col/")[0] == 405
