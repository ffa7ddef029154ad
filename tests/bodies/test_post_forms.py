"""POST: multipart forms (files and fields), safe file names, collisions, raw bodies."""

from __future__ import annotations

import json
import os
import re

import pytest
from bodies_support import assert_unchanged, head, listing, multipart, temp_files
from support import RawConn, wait_until


def post(server, body: bytes, ctype: str, accept: str | None = None, wait_close: float = 0.0):
    """POST to /up/: status, headers, body, and whether the server closed within wait_close
    (a FIN after an error comes at once; wait_close > 0 only to see a connection stay open)."""
    fields = {"Content-Type": ctype, "Content-Length": len(body)}
    if accept:
        fields["Accept"] = accept
    with RawConn(server.port) as conn:
        conn.send(head("POST", "/up/", fields) + body)
        status, headers, reply = conn.response()
        closed = conn.closed_by_peer(timeout=wait_close) if wait_close else None
        return status, headers, reply, closed


def post_json(server, parts, **kw):
    body, ctype = multipart(parts)
    status, headers, reply, _ = post(server, body, ctype, accept="application/json", **kw)
    return status, headers, json.loads(reply) if reply else None


# the parts of a multipart body are found by their boundary: data that looks like one, or
# like the end of the body, must come through untouched
TRICKY = (
    b"\r\n--b0undary-Xy\r\n--b0undary-XyZ-not-quite\r\n\r\n--\r\n"
    + bytes(range(256)) * 64
    + b"\r\n"
)


def test_files_and_fields_stored_exactly_html_summary(server):
    before = listing(server.store)
    body, ctype = multipart(
        [
            ("title", "two files"),
            ("doc", "mp-first.bin", TRICKY),
            ("note", "ünïcode field"),
            ("doc", "mp-second.txt", b"second file\n"),
            ("empty", "mp-empty.dat", b""),
        ]
    )
    status, headers, reply, closed = post(server, body, ctype, wait_close=0.3)
    assert status == 201
    assert headers["location"] == "/up/mp-first.bin"
    assert headers["content-type"].startswith("text/html")
    assert closed is False  # keep-alive: the connection stays
    page = reply.decode()
    for name in ("mp-first.bin", "mp-second.txt", "mp-empty.dat"):
        assert f'href="/up/{name}"' in page
    assert "3 file(s) stored" in page
    after = listing(server.store)
    assert {k: v for k, v in after.items() if k not in before} == {
        "mp-first.bin": TRICKY,
        "mp-second.txt": b"second file\n",
        "mp-empty.dat": b"",
    }
    assert not temp_files(server.store)
    # what was stored is served back byte for byte
    with RawConn(server.port) as conn:
        conn.send(head("GET", "/up/mp-first.bin"))
        assert conn.response()[2] == TRICKY


def test_json_summary_with_accept(server):
    status, headers, data = post_json(
        server,
        [("a", "1"), ("f", "mp-json-1.txt", b"one"), ("b", "2"), ("g", "mp-json-2.txt", b"two!")],
    )
    assert status == 201
    assert headers["content-type"] == "application/json"
    assert headers["location"] == "/up/mp-json-1.txt"
    assert data["fields"] == {"a": "1", "b": "2"}
    assert data["stored"] == [
        {
            "name": "mp-json-1.txt",
            "size": 3,
            "url": "/up/mp-json-1.txt",
            "client_name": "mp-json-1.txt",
        },
        {
            "name": "mp-json-2.txt",
            "size": 4,
            "url": "/up/mp-json-2.txt",
            "client_name": "mp-json-2.txt",
        },
    ]
    assert (server.store / "mp-json-2.txt").read_bytes() == b"two!"


def test_location_and_links_are_percent_encoded(server):
    status, headers, data = post_json(server, [("f", "mp sp&ace #1.txt", b"x")])
    assert status == 201
    assert headers["location"] == "/up/mp%20sp%26ace%20%231.txt"
    assert (server.store / "mp sp&ace #1.txt").read_bytes() == b"x"
    with RawConn(server.port) as conn:
        conn.send(head("GET", headers["location"]))
        assert conn.response()[:3:2] == (200, b"x")


def test_fields_only_stores_nothing(server):
    before = listing(server.store)
    status, headers, data = post_json(server, [("q", "just a field")])
    assert status == 200
    assert "location" not in headers
    assert data == {"stored": [], "fields": {"q": "just a field"}}
    assert_unchanged(server.store, before)


def test_file_input_left_empty_stores_nothing(server):
    """A browser sends an empty part with filename="" for a file input with no file chosen."""
    before = listing(server.store)
    status, _, data = post_json(server, [("f", "", b""), ("t", "text")])
    assert status == 200
    assert data["stored"] == []
    assert_unchanged(server.store, before)


SAFE_NAMES = [
    # (client filename as sent, the stored name, or a pattern it must match)
    (b"../../etc/sn-passwd", "sn-passwd"),
    (b"/abs/path/sn-abs.txt", "sn-abs.txt"),
    (b"C:\\\\evil\\\\sn-win.txt", "sn-win.txt"),
    (b"..\\\\..\\\\sn-back.txt", "sn-back.txt"),
    (b".sn-hidden", "sn-hidden"),
    (b"...sn-dots", "sn-dots"),
    (b"sn-nul\x00.txt", "sn-nul.txt"),
    (b"sn-tab\t.txt", "sn-tab.txt"),
    (b"sn-r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.txt", "sn-résumé 日本.txt"),
    (b"sn-latin1-caf\xe9.txt", "sn-latin1-café.txt"),  # not UTF-8: read as Latin-1
    (b"", re.compile(r"upload-\d{8}-\d{6}-[0-9a-f]{8}")),
    (b"..", re.compile(r"upload-\d{8}-\d{6}-[0-9a-f]{8}")),
    (b"../", re.compile(r"upload-\d{8}-\d{6}-[0-9a-f]{8}")),
    (b"sn-long-" + b"n" * 300 + b".txt", re.compile(r"sn-long-n+\.txt")),
    (b"sn-longext." + b"e" * 300, re.compile(r"sn-longext.*")),
    ("sn-ü".encode() * 100 + b".txt", re.compile(r"(sn-ü)+s?n?-?\.txt")),
]


@pytest.mark.parametrize(("client_name", "expected"), SAFE_NAMES, ids=lambda v: repr(v)[:40])
def test_client_file_names_are_made_safe(server, client_name, expected):
    before = listing(server.store)
    data = b"content of " + client_name
    status, headers, summary = post_json(server, [("f", client_name, data)])
    assert status == 201, summary
    (stored,) = summary["stored"]
    name = stored["name"]
    if isinstance(expected, str):
        assert name == expected
    else:
        assert expected.fullmatch(name), name
    # one new plain file, directly inside the store, under a name the file system can hold
    assert "/" not in name and "\x00" not in name and not name.startswith(".")
    assert len(name.encode()) <= 255
    added = {k: v for k, v in listing(server.store).items() if k not in before}
    assert added == {name: data}
    assert not (server.tmp / "etc").exists() and not (server.tmp / "abs").exists()
    assert server.alive()


def test_name_collisions_get_suffixes_never_overwrite(server):
    contents = [b"first", b"second", b"third"]
    names = []
    for data in contents:
        status, headers, summary = post_json(server, [("f", "coll.txt", data)])
        assert status == 201
        names.append(summary["stored"][0]["name"])
        assert headers["location"] == "/up/" + names[-1]
    assert names == ["coll.txt", "coll-1.txt", "coll-2.txt"]
    # two parts with the same name in one request, and a name without extension
    status, _, summary = post_json(
        server,
        [
            ("f", "coll.txt", b"fourth"),
            ("f", "coll.txt", b"fifth"),
            ("f", "collnoext", b"a"),
            ("f", "collnoext", b"b"),
        ],
    )
    assert [s["name"] for s in summary["stored"]] == [
        "coll-3.txt",
        "coll-4.txt",
        "collnoext",
        "collnoext-1",
    ]
    contents += [b"fourth", b"fifth"]
    for i, data in enumerate(contents):
        name = "coll.txt" if i == 0 else f"coll-{i}.txt"
        assert (server.store / name).read_bytes() == data
    assert (server.store / "collnoext-1").read_bytes() == b"b"


def test_collision_with_a_directory_or_symlink_of_that_name(server, tmp_path):
    (server.store / "colldir.txt").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside, untouched")
    os.symlink(outside, server.store / "colllink.txt")
    status, _, summary = post_json(
        server, [("f", "colldir.txt", b"d"), ("f", "colllink.txt", b"l")]
    )
    assert status == 201
    assert [s["name"] for s in summary["stored"]] == ["colldir-1.txt", "colllink-1.txt"]
    assert outside.read_bytes() == b"outside, untouched"
    assert (server.store / "colldir.txt").is_dir()


def test_raw_post_gets_a_generated_name(server):
    before = listing(server.store)
    data = b"raw body, not a form\n" * 100
    # the extension is the first the location's types map gives the Content-Type (this
    # config has nginx's built-in map only: html, gif, jpg)
    status, headers, reply, _ = post(server, data, "text/html; charset=utf-8")
    assert status == 201
    location = headers["location"]
    assert re.fullmatch(r"/up/upload-\d{8}-\d{6}-[0-9a-f]{8}\.html", location), location
    added = {k: v for k, v in listing(server.store).items() if k not in before}
    assert added == {location.removeprefix("/up/"): data}
    with RawConn(server.port) as conn:
        conn.send(head("GET", location))
        assert conn.response()[2] == data


def test_raw_post_of_unknown_type_is_bin(server):
    status, headers, _, _ = post(server, b"\x00\x01", "application/x-made-up")
    assert status == 201
    assert headers["location"].endswith(".bin")


def test_multipart_without_boundary_is_refused_before_the_body(server):
    before = listing(server.store)
    with RawConn(server.port) as conn:
        conn.send(
            head(
                "POST",
                "/up/",
                {
                    "Content-Type": "multipart/form-data",
                    "Content-Length": 100,
                    "Expect": "100-continue",
                },
            )
        )
        status, _, _ = conn.response()
        assert status == 400  # not a 100 first
        assert conn.closed_by_peer()
    assert_unchanged(server.store, before)
    assert server.alive()


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda b: b[: b.rindex(b"--b0undary-XyZ--")], id="no-closing-boundary"),
        pytest.param(lambda b: b[: len(b) // 2], id="cut-in-a-file"),
        pytest.param(lambda b: b.replace(b"--b0undary-XyZ\r\n", b"--wrong\r\n", 1), id="bad-start"),
    ],
)
def test_malformed_multipart_is_400_and_nothing_stored(server, cut):
    before = listing(server.store)
    body, ctype = multipart([("f", "mp-bad-1.txt", b"a" * 5000), ("g", "mp-bad-2.txt", b"b" * 10)])
    body = cut(body)
    status, _, _, closed = post(server, body, ctype, wait_close=10)
    assert status == 400
    assert closed
    assert_unchanged(server.store, before)
    assert server.alive()


def test_huge_form_field_is_413_and_nothing_stored(server):
    before = listing(server.store)
    body, ctype = multipart([("f", "mp-field.txt", b"x" * 100), ("big", "v" * 70_000)])
    status, _, _, closed = post(server, body, ctype, wait_close=10)
    assert status == 413
    assert closed
    assert_unchanged(server.store, before)
    assert server.alive()


def test_uploaded_file_listed_by_autoindex_temp_files_never(server):
    post_json(server, [("f", "mp-listed.txt", b"listed")])
    with RawConn(server.port) as conn:
        conn.send(head("GET", "/up/"))
        status, _, page = conn.response()
    assert status == 200
    assert b"mp-listed.txt" in page
    assert b".webserv-upload-" not in page
    wait_until(lambda: not temp_files(server.store))
