"""webserv/proxy_protocol.py on its own: v1 and v2 headers byte by byte, every prefix of a
valid header (incomplete, never an error), every class of broken one, and fuzzed garbage
that must end in a header, None or ProxyProtocolError — nothing else."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webserv.proxy_protocol import (
    V1_MAX,
    V2_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyProtocolError,
    parse,
    v1_header,
    v2_header,
)

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _broken(data: bytes) -> str:
    with pytest.raises(ProxyProtocolError) as info:
        parse(data)
    return info.value.reason


# --- v1 ---------------------------------------------------------------------------------


def test_v1_tcp4():
    h = parse(b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n" + REQUEST)
    assert (h.version, h.command, h.family) == (1, "PROXY", "TCP4")
    assert (h.src_addr, h.src_port, h.dst_addr, h.dst_port) == (
        "203.0.113.7", 40000, "198.51.100.1", 443,
    )  # fmt: skip
    assert h.length == len(b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n")
    assert h.tlvs == {}


def test_v1_tcp6_is_normalised():
    h = parse(b"PROXY TCP6 2001:DB8:0:0::1 2001:db8::2 65535 0\r\n")
    assert (h.family, h.src_addr, h.dst_addr, h.src_port, h.dst_port) == (
        "TCP6", "2001:db8::1", "2001:db8::2", 65535, 0,
    )  # fmt: skip


def test_v1_unknown_ignores_the_rest():
    h = parse(b"PROXY UNKNOWN whatever comes here\r\nGET")
    assert (h.command, h.family, h.src_addr, h.src_port) == ("LOCAL", "UNKNOWN", None, None)
    assert h.length == len(b"PROXY UNKNOWN whatever comes here\r\n")


def test_v1_longest_valid_header_is_accepted():
    line = b"PROXY TCP6 " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n"
    assert len(line) == 104
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 16) + b"\r\n"
    assert len(line) == V1_MAX
    assert parse(line).length == V1_MAX


def test_v1_over_107_bytes_is_refused():
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 15) + b"\r\n"  # 108 bytes
    assert _broken(line) == "broken header"
    assert _broken(b"PROXY TCP4 " + b"1" * 200) == "broken header"


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # bare LF
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",  # unknown protocol
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  # a field missing
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",  # one too many
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  # two spaces
        b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",  # not an address
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  # the wrong family
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",  # port out of range
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  # leading zero
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xd9\xa1\r\n",  # a non-ASCII digit
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",  # case matters
        b"PROXY \r\n",
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",  # wrong signature
        b"PROXZ",
        b"GET / HTTP/1.1\r\n",  # no header at all
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello
        b"\x00",
    ],
)
def test_v1_broken(line):
    assert _broken(line)


def test_every_prefix_of_a_valid_header_asks_for_more():
    for header in (
        v1_header("203.0.113.7", "198.51.100.1", 40000, 443),
        v1_header("2001:db8::1", "2001:db8::2", 1, 2),
        v2_header("203.0.113.7", "198.51.100.1", 40000, 443, [(0x01, b"h2")]),
        v2_header("2001:db8::1", "2001:db8::2", 1, 2),
        v2_header(local=True),
    ):
        for n in range(len(header)):
            assert parse(header[:n]) is None, (header, n)
        assert parse(header).length == len(header)
        assert parse(header + REQUEST).length == len(header)


# --- v2 ---------------------------------------------------------------------------------


def test_v2_inet_with_tlvs():
    ssl = bytes((0x01,)) + (0).to_bytes(4, "big")
    ssl += b"\x21\x00\x07TLSv1.3" + b"\x22\x00\x09client.cn"
    data = v2_header(
        "203.0.113.7",
        "198.51.100.1",
        40000,
        443,
        [(0x01, b"h2"), (0x02, b"example.com"), (0x04, b"\0\0\0"), (0x05, b"\x01\x02\xff"),
         (0x20, ssl), (0xE0, b"\xab")],
    )  # fmt: skip
    h = parse(data + REQUEST)
    assert (h.version, h.command, h.family) == (2, "PROXY", "INET")
    assert (h.src_addr, h.src_port, h.dst_addr, h.dst_port) == (
        "203.0.113.7", 40000, "198.51.100.1", 443,
    )  # fmt: skip
    assert h.length == len(data)
    assert h.tlvs == {
        "alpn": "h2",
        "authority": "example.com",
        "unique_id": "0102ff",
        "ssl": {"client": 1, "verify": 0, "version": "TLSv1.3", "cn": "client.cn"},
        "0xe0": "ab",
    }
    assert h.to_json()["client"] == {"addr": "203.0.113.7", "port": 40000}


def test_v2_inet6():
    h = parse(v2_header("2001:db8::1", "2001:db8::2", 5555, 80))
    assert (h.family, h.src_addr, h.src_port, h.dst_addr, h.dst_port) == (
        "INET6", "2001:db8::1", 5555, "2001:db8::2", 80,
    )  # fmt: skip


def test_v2_local_keeps_no_address():
    h = parse(v2_header(local=True) + REQUEST)
    assert (h.command, h.src_addr, h.dst_addr) == ("LOCAL", None, None)
    # a LOCAL header's address block is ignored, whatever the family says
    body = b"\0" * 12
    h = parse(V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x11, len(body)) + body)
    assert (h.command, h.src_addr, h.length) == ("LOCAL", None, 16 + 12)


@pytest.mark.parametrize(
    "fam, body, family",
    [(0x00, b"", "UNSPEC"), (0x31, b"\0" * 216, "UNIX"), (0x12, b"\0" * 12, "INET")],
)
def test_v2_other_families_and_transports_keep_no_address(fam, body, family):
    h = parse(V2_SIGNATURE + struct.pack("!BBH", 0x21, fam, len(body)) + body)
    assert (h.command, h.family, h.src_addr, h.length) == ("PROXY", family, None, 16 + len(body))


def _v2(ver_cmd=0x21, fam=0x11, body=b"\0" * 12, length=None):
    length = len(body) if length is None else length
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam, length) + body


@pytest.mark.parametrize(
    "data, reason",
    [
        (_v2(ver_cmd=0x11), "unknown PROXY protocol version: 1"),
        (_v2(ver_cmd=0x31), "unknown PROXY protocol version: 3"),
        (_v2(ver_cmd=0x22), "unknown PROXY protocol command"),
        (_v2(fam=0x41), "unknown PROXY protocol address family"),
        (_v2(fam=0x13), "unknown PROXY protocol address family"),
        (_v2(length=V2_MAX_LENGTH + 1, body=b""), "header is too large"),
        (_v2(length=0xFFFF, body=b""), "header is too large"),
        (_v2(body=b"\0" * 11), "header is too short"),  # INET needs 12 bytes
        (_v2(fam=0x21, body=b"\0" * 35), "header is too short"),  # INET6 36
        (_v2(body=b"\0" * 12 + b"\x01\x00"), "broken TLV"),  # a TLV's head cut
        (_v2(body=b"\0" * 12 + b"\x01\x00\x05ab"), "broken TLV"),  # its value cut
        (_v2(body=b"\0" * 12 + b"\x05\x00\x81" + b"u" * 129), "broken TLV"),  # unique id > 128
        (_v2(body=b"\0" * 12 + b"\x20\x00\x02\x01\x00"), "broken TLV"),  # SSL TLV too short
        (V2_SIGNATURE[:11] + b"X" + b"\x21\x11\x00\x0c", "broken header"),  # signature
        (b"\r\n\r\nX", "broken header"),
    ],
)
def test_v2_broken(data, reason):
    assert _broken(data) == reason


def test_v2_oversized_length_is_refused_before_the_bytes_arrive():
    # the length field alone decides: nothing is buffered waiting for 64 KiB
    assert _broken(_v2(length=V2_MAX_LENGTH + 1, body=b"")) == "header is too large"
    assert parse(_v2(length=V2_MAX_LENGTH, body=b"")) is None  # within the bound: waits


# --- fuzzed --------------------------------------------------------------------------------


def _check(data: bytes) -> None:
    try:
        header = parse(data)
    except ProxyProtocolError as exc:
        assert exc.reason
        return
    if header is not None:
        assert 0 < header.length <= len(data)
        assert header.version in (1, 2)
        header.to_json()
    else:
        # asking for more is only right while a valid header could still come
        assert len(data) < V1_MAX or data.startswith(V2_SIGNATURE)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_garbage(data):
    _check(data)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from([b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", V2_SIGNATURE]), st.binary())
def test_fuzz_after_a_valid_start(start, rest):
    _check(start + rest)


@settings(max_examples=2000, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=6),
    st.binary(max_size=40),
)
def test_fuzz_v2_fields(ver_cmd, fam, tlvs, tail):
    body = b"\0" * 36
    for kind, value in tlvs:
        body += bytes((kind,)) + len(value).to_bytes(2, "big") + value
    _check(_v2(ver_cmd, fam, body + tail))
    _check(_v2(ver_cmd, fam, body, length=len(body) + len(tail)) + tail)
