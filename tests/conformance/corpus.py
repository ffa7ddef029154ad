"""The conformance corpus: request bytes from other people's published test suites.

Every row names its source (repository, file, case), the exact bytes sent, what the source
says a server must do, and what webserv answers: the statuses in order (`()` = the connection
closed without an answer) and whether the connection is closed afterwards. The rows were
written by hand from what each source documents; no third-party file is copied or read at run
time.

Sources
- `aws/http-desync-guardian` `tests/severe.yaml` and `tests/ambiguous.yaml` (a proxy-side
  classifier: Severe = "400 and close", Ambiguous = "reject, or close after answering"). Its
  cases are (method, uri, version, headers) with no body and no Host; `guardian()` turns one
  into bytes exactly as listed, with a `Host: localhost` line first so that the missing Host is
  not what decides. Non-ASCII names are sent as UTF-8.
- `MDA2AV/Http11Probe` `docs/content/docs/**.md`: the cases whose Requirement is a MUST, bytes
  as in each page's "What it sends" (a two-step sequence is sent in one write).
- `narfindustries/http-garden` `TROPHIES.md`, "Server Bugs" 1–48: each bug's payload, with a
  `Host: a` line added where an HTTP/1.1 payload had none (so the shape decides, not the
  missing Host). Bug numbers are the list's.
- `nodejs/llhttp#877` (open): a bare LF ends the request line, in strict mode.
"""

from __future__ import annotations

from dataclasses import dataclass

DG = "aws/http-desync-guardian"
PROBE = "MDA2AV/Http11Probe"
GARDEN = "narfindustries/http-garden"
LLHTTP = "nodejs/llhttp"

BAD = 400


@dataclass(frozen=True)
class Case:
    source: str  # repository
    where: str  # file and case id in that repository
    raw: bytes  # exactly what is sent, in one write
    # webserv's statuses in order, `()` = closed without an answer; an item may be a tuple of
    # statuses that are all right there
    expect: tuple[int | tuple[int, ...], ...]
    closes: bool | None  # webserv closes the connection after them (None: either is right)
    source_says: str  # what the source requires
    slow: bool = False  # the answer only comes after a server timeout (client_*_timeout 2s)
    head: bool = False  # the first response answers a HEAD (no body)
    xfail: str | None = None  # a known webserv bug: the row must fail until it is fixed
    why: str = ""  # why webserv answers this way (for the differences table)
    check: str | None = None  # an extra check on the first response, see test_corpus.CHECKS


def guardian(method: str, uri: str, version: str, *headers: tuple[str, str]) -> bytes:
    """An http-desync-guardian case as bytes: its fields joined as listed, `Host` first."""
    line = f"{method} {uri} {version}".rstrip(" ") if version else f"{method} {uri}"
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{line}\r\nHost: localhost\r\n{fields}\r\n".encode()


# Why webserv's answer differs from nginx 1.22's, where it does (the differences table).
WHY_TE = (
    "a transfer coding other than one `chunked` is a request-smuggling shape (RFC 9112 §6.1): "
    "webserv 400 and close; nginx 501 Not Implemented"
)
WHY_TE_CL = (
    "both refuse; webserv sends its FIN first and drains what follows (lingering close), "
    "nginx drains before it closes, so a next request goes unanswered"
)
WHY_NAME = (
    "not a field line: RFC 9110 §5.1 (a token) and 9112 §5 (a colon); webserv (llhttp, strict) "
    "answers 400, nginx drops the line (`ignore_invalid_headers on`) and serves the request"
)
WHY_CHUNK_EXT = (
    "chunk-ext grammar (RFC 9112 §7.1.1): webserv (llhttp, strict) answers 400, nginx skips "
    "everything up to the CRLF"
)
WHY_LF = (
    "a bare LF as a line end is a MAY (RFC 9112 §2.2): webserv takes it, as nginx does, in the "
    "request line and the header section, never in chunked framing (llhttp, strict: 400), where "
    "two readings would frame the body differently; nginx takes it there too"
)
WHY_09 = (
    "no version: nginx answers as HTTP/0.9 (the body alone, then close); webserv serves HTTP/1.x "
    "only: 505 and close"
)
WHY_431 = "a header section over the limit: webserv 431 (RFC 6585), nginx 400"
WHY_OPTIONS_STAR = (
    "`OPTIONS *` is a well-formed request (RFC 9112 §3.2.4) for the server itself: webserv "
    "answers 405 with the server's `Allow` and keeps the connection, as for any method it "
    "does not allow; nginx answers 400 and closes"
)
WHY_HOST = (
    'userinfo is not part of a Host (RFC 9110 §7.2: `uri-host [":" port]`, RFC 9112 §3.2: '
    "MUST 400): webserv 400 and close; nginx checks a Host field only for `/`, `..`, "
    "controls and spaces, and serves it"
)
WHY_411 = (
    "both ignore the Upgrade and keep the connection; nginx's `return 201` answers before the "
    "length is looked at, webserv's upload location requires a length (411)"
)
WHY_VERSION = (
    "HTTP-version is `HTTP/` DIGIT `.` DIGIT (RFC 9112 §2.3): webserv 400; nginx reads any "
    "number of digits"
)
WHY_BODY_FIRST = (
    "webserv's upload location reads the whole body before it answers (408 when it stops); "
    "nginx's `return` answers first and then discards the body, so our next request was read "
    "as the missing body bytes"
)
WHY_GET_BODY = (
    "the body is read whatever the method (RFC 9112 §6); none comes: 408 after "
    "client_body_timeout; nginx answers first and then discards the body"
)

SEV = f"{DG} tests/severe.yaml"
AMB = f"{DG} tests/ambiguous.yaml"
SEVERE = "400 and close"
AMBIGUOUS = "reject, or close after the response"

GUARDIAN: list[Case] = [
    # --- tests/severe.yaml
    Case(DG, "severe.yaml 'Multiple Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Bad Content-Length: 1000,1000'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000,1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Bad Content-Length: 1000 1000'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000 1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Bad Content-Length: 1000.1000'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000.1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Bad Content-Length (64-bits overflow)'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "18446744073709551616")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Unknown Transfer-Encoding: xchunked'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "xchunked")),
         (BAD,), True, SEVERE, why=WHY_TE),
    Case(DG, "severe.yaml 'Bad character in Transfer-Encoding value: chunked\\x11'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked\x11")),
         (BAD,), True, SEVERE, why=WHY_TE),
    Case(DG, "severe.yaml 'Bad character in Content-Length value: 1000\\x11'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000\x11")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Multiple Transfer-Encoding: chunked'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Multiple Transfer-Encoding: chunked,chunked'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked,chunked")),
         (BAD,), True, SEVERE, why=WHY_TE),
    Case(DG, "severe.yaml 'Multiline headers are deprecated'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"),
                  ("Some-Custom-Header", "Multi-line values\r\n are \n deprecated. E.g. it may contain \n Transfer-Encoding: chunked\r\n")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Multiline headers are deprecated (with \\n only)'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"),
                  ("Some-Custom-Header", "Multi-line values\n are \n deprecated. E.g. it may contain \n Transfer-Encoding: chunked")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Http Engine missed CR'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"),
                  ("Some-Custom-Header", "Parser error\r must not contain\r symbols.")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Http Engine missed LF'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"),
                  ("Some-Custom-Header", "Parser error\n must not contain\n symbols.")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\r in name is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header\r", "1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\n in name is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1",
                  ("Some-Bad-Header\n", "Content-Length:1000\r\n Transfer-Encoding: chunked"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\0 in name is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header\x00", "1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\r in value is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header", "value\rcontent-length: 1000"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\n in value is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header", "value\n content-length: 1000"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\0 in value is bad'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header", "value\x00content-length: 1000"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\0 at the start of a line'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\x00Some-Bad-Header", "value"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\0 at the start of a value'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header", "\x00value"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '\\0 at the end of a value'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Some-Bad-Header", "value\x00"), ("Content-Length", "100")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Content-Length[white-space] and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length ", "100"), ("Content-Length", "1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml '[white-space]Content-Length and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", (" Content-Length", "100"), ("Content-Length", "1000")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Transfer-Encoding[white-space] and Transfer-Encoding'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding ", "chunked"), ("Transfer-Encoding", "chunked")),
         (BAD,), True, SEVERE),
    Case(DG, "severe.yaml 'Bad method'",
         guardian("bad_method\x01", "/foo/bar", "HTTP/1.1", ("Host", "localhost")),
         (BAD,), True, SEVERE),
    # --- tests/ambiguous.yaml
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with a trailing space in name'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding ", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with a trailing tab in name'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding\t", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '\\x01Transfer-Encoding with a non-printable character'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\x01Transfer-Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '\\x01\\x01Transfer-Encoding with a non-printable character'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\x01\x01Transfer-Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '\\x01\\x01Content-Length with a non-printable character'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\x01\x01Content-Length", "1")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '\\x01Content-Length with a non-printable character'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\x01Content-Length", "1")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with a space in the middle'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer- Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer_Encoding with underscore.'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer_Encoding", "chunked")),
         (411,), False, AMBIGUOUS,
         why="an unknown field name to an origin server; a POST with no length has an empty body (RFC 9112 §6.3), and webserv requires a length (411); the next bytes are the next request"),
    Case(DG, "ambiguous.yaml 'Content_Length with underscore.'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content_Length", "1000")),
         (411,), False, AMBIGUOUS,
         why="an unknown field name to an origin server; a POST with no length has an empty body (RFC 9112 §6.3), and webserv requires a length (411); the next bytes are the next request"),
    Case(DG, "ambiguous.yaml 'Duplicate Content-Length'",
         guardian("PUT", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Both Transfer-Encoding:chunked and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked"), ("Content-Length", "100")),
         (BAD,), True, AMBIGUOUS, why=WHY_TE_CL),
    Case(DG, "ambiguous.yaml 'Both Transfer-Encoding and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "gzip"), ("Content-Length", "100")),
         (BAD,), True, AMBIGUOUS, why=WHY_TE_CL),
    Case(DG, "ambiguous.yaml 'Get with a body and Content-Length'",
         guardian("GET", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000")),
         (408,), True, AMBIGUOUS, slow=True,
         why=WHY_GET_BODY),
    Case(DG, "ambiguous.yaml 'Get with a body and Transfer-Encoding'",
         guardian("GET", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked")),
         (408,), True, AMBIGUOUS, slow=True,
         why=WHY_GET_BODY),
    Case(DG, "ambiguous.yaml 'Head with a body and Content-Length'",
         guardian("HEAD", "/foo/bar", "HTTP/1.1", ("Content-Length", "1000")),
         (408,), True, AMBIGUOUS, slow=True, head=True,
         why=WHY_GET_BODY),
    Case(DG, "ambiguous.yaml 'Head with a body and Transfer-Encoding'",
         guardian("HEAD", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding", "chunked")),
         (408,), True, AMBIGUOUS, slow=True, head=True,
         why=WHY_GET_BODY),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding[white-space] and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding ", "chunked"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '[white-space]Transfer-Encoding and Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", (" Transfer-Encoding", "chunked"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml '[white-space]Transfer-Encoding and [white-space]Content-Length'",
         guardian("POST", "/foo/bar", "HTTP/1.1", (" Transfer-Encoding", "chunked"), (" Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding[white-space] and Content-Length[white-space]'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding ", "chunked"), ("Content-Length ", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Empty header name'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("", "chunked"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Header name starts with :'",
         guardian("POST", "/foo/bar", "HTTP/1.1", (":SomeHeader:Transfer-Encoding:", "chunked"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Only white-spaces header name'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("   \t\t  ", "chunked"), ("Content-Length", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding for HTTP/1.0'",
         guardian("POST", "/foo/bar", "HTTP/1.0", ("Transfer-Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding for HTTP/0.9'",
         guardian("POST", "/foo/bar", "HTTP/0.9", ("Transfer-Encoding", "chunked")),
         (505,), True, AMBIGUOUS,
         why="webserv speaks HTTP/1.x only: 505 and close"),
    Case(DG, "ambiguous.yaml 'Content-Length for HTTP/0.9'",
         guardian("POST", "/foo/bar", "HTTP/0.9", ("Content-Length", "100")),
         (505,), True, AMBIGUOUS,
         why="webserv speaks HTTP/1.x only: 505 and close"),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding for empty protocol, which is HTTP/0.9'",
         guardian("POST", "/foo/bar", "", ("Transfer-Encoding", "chunked")),
         (505,), True, AMBIGUOUS,
         why=WHY_09),
    Case(DG, "ambiguous.yaml 'Content-Length for empty protocol, which is HTTP/0.9'",
         guardian("POST", "/foo/bar", "", ("Content-Length", "100")),
         (505,), True, AMBIGUOUS,
         why=WHY_09),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding Latin Small Letter Long S'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Tran\u017ffer-Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS, why=WHY_NAME),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding Latin Small Letter Dotless I'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encod\u0131ng", "chunked")),
         (BAD,), True, AMBIGUOUS, why=WHY_NAME),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with multiple hyphens'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer---Encoding", "chunked")),
         (411,), False, AMBIGUOUS,
         why="an unknown field name to an origin server; a POST with no length has an empty body (RFC 9112 §6.3), and webserv requires a length (411); the next bytes are the next request"),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with multiple delimiters'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer___Encoding", "chunked")),
         (411,), False, AMBIGUOUS,
         why="an unknown field name to an origin server; a POST with no length has an empty body (RFC 9112 §6.3), and webserv requires a length (411); the next bytes are the next request"),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with UTF8 spaces'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("   Transfer-Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Content-Length with UTF8 spaces'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Content-Length   ", "1000")),
         (BAD,), True, AMBIGUOUS),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with a UTF8 delimiter'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer\u2015Encoding", "chunked")),
         (BAD,), True, AMBIGUOUS, why=WHY_NAME),
    Case(DG, "ambiguous.yaml 'Transfer-Encoding with arbitrary non-ASCII chars'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("Transfer-Encoding\x88", "chunked")),
         (BAD,), True, AMBIGUOUS, why=WHY_NAME),
    Case(DG, "ambiguous.yaml 'Content-Length with arbitrary non-ASCII chars'",
         guardian("POST", "/foo/bar", "HTTP/1.1", ("\xa0Content-Length", "100")),
         (BAD,), True, AMBIGUOUS, why=WHY_NAME),
]  # fmt: skip

REJECT = "400 or close"
H = b"Host: localhost:8080\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"

PROBE_CASES: list[Case] = [
    Case(PROBE, "headers/empty-header-name.md RFC9112-5-EMPTY-HEADER-NAME",
         b"GET / HTTP/1.1\r\n" + H + b": empty-name\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "headers/header-no-colon.md RFC9112-5-HEADER-NO-COLON",
         b"GET / HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", (BAD,), True, REJECT, why=WHY_NAME),
    Case(PROBE, "headers/invalid-header-name.md RFC9112-5-INVALID-HEADER-NAME",
         b"GET / HTTP/1.1\r\n" + H + b"Bad[Name: value\r\n\r\n", (BAD,), True, REJECT, why=WHY_NAME),
    Case(PROBE, "smuggling/chunk-ext-invalid-token.md SMUG-CHUNK-EXT-INVALID-TOKEN",
         CHUNKED_POST + b"5;bad[=x\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT, why=WHY_CHUNK_EXT),
    Case(PROBE, "smuggling/chunk-size-plus.md SMUG-CHUNK-SIZE-PLUS",
         CHUNKED_POST + b"+5\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-size-trailing-ows.md SMUG-CHUNK-SIZE-TRAILING-OWS",
         CHUNKED_POST + b"5 \r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT, why=WHY_CHUNK_EXT),
    Case(PROBE, "request-line/405-allow.md COMP-405-ALLOW",
         b"DELETE / HTTP/1.1\r\n" + H + b"\r\n", (405,), False, "405 with Allow", check="allow"),
    Case(PROBE, "headers/connection-close.md COMP-CONNECTION-CLOSE",
         b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", (200,), True, "2xx and close"),
    Case(PROBE, "headers/date-header.md COMP-DATE-HEADER",
         b"GET / HTTP/1.1\r\n" + H + b"\r\n", (200,), False, "2xx with Date", check="date"),
    Case(PROBE, "request-line/head-no-body.md COMP-HEAD-NO-BODY",
         b"HEAD / HTTP/1.1\r\n" + H + b"\r\n", (200,), False, "2xx, no body", head=True,
         check="head-no-body"),
    Case(PROBE, "host-header/host-empty-value.md COMP-HOST-EMPTY-VALUE",
         b"GET / HTTP/1.1\r\nHost: \r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "request-line/version-leading-zeros.md COMP-VERSION-LEADING-ZEROS",
         b"GET / HTTP/01.01\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "request-line/version-missing-minor.md COMP-VERSION-MISSING-MINOR",
         b"GET / HTTP/1\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "request-line/version-whitespace.md COMP-VERSION-WHITESPACE",
         b"GET / HTTP/ 1.1\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "host-header/duplicate-host.md RFC9110-5.4-DUPLICATE-HOST",
         b"GET / HTTP/1.1\r\n" + H + b"Host: other.example.com\r\n\r\n", (BAD,), True, "400"),
    Case(PROBE, "headers/sp-before-colon.md RFC9110-5.6.2-SP-BEFORE-COLON",
         b"GET / HTTP/1.1\r\n" + H + b"X-Test : value\r\n\r\n", (BAD,), True, "400"),
    Case(PROBE, "line-endings/cr-only-line-ending.md RFC9112-3-CR-ONLY-LINE-ENDING",
         b"GET / HTTP/1.1\rHost: localhost:8080\r\n\r\n", (BAD,), True, "400"),
    Case(PROBE, "headers/obs-fold.md RFC9112-5.1-OBS-FOLD",
         b"GET / HTTP/1.1\r\n" + H + b"X-Test: value\r\n continued\r\n\r\n", (BAD,), True, "400"),
    Case(PROBE, "content-length/cl-non-numeric.md RFC9112-6.1-CL-NON-NUMERIC",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "content-length/cl-plus-sign.md RFC9112-6.1-CL-PLUS-SIGN",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "host-header/missing-host.md RFC9112-7.1-MISSING-HOST",
         b"GET / HTTP/1.1\r\n\r\n", (BAD,), True, "400"),
    Case(PROBE, "smuggling/chunk-bare-cr-term.md SMUG-CHUNK-BARE-CR-TERM",
         CHUNKED_POST + b"5\rhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-invalid-size-desync.md SMUG-CHUNK-INVALID-SIZE-DESYNC",
         CHUNKED_POST + b"+0\r\n\r\nXGET / HTTP/1.1\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-negative.md SMUG-CL-NEGATIVE",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-negative-zero.md SMUG-CL-NEGATIVE-ZERO",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-underscore.md SMUG-CL-UNDERSCORE",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1_0\r\n\r\nhelloworld", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/duplicate-cl.md SMUG-DUPLICATE-CL",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 10\r\n\r\nhello",
         (BAD,), True, REJECT),
    Case(PROBE, "smuggling/multiple-host-comma.md SMUG-MULTIPLE-HOST-COMMA",
         b"GET / HTTP/1.1\r\nHost: localhost:8080, other.example.com\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/options-te-obs-fold.md SMUG-OPTIONS-TE-OBS-FOLD",
         b"OPTIONS / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello"
         b"GET / HTTP/1.1\r\n" + H + b"\r\n", (BAD,), True, "400, or 2xx and close"),
    Case(PROBE, "smuggling/te-sp-before-colon.md SMUG-TE-SP-BEFORE-COLON",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT),
    Case(PROBE, "request-line/missing-target.md RFC9112-3-MISSING-TARGET",
         b"GET HTTP/1.1\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "headers/no-1xx-http10.md COMP-NO-1XX-HTTP10",
         b"POST / HTTP/1.0\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
         (201,), True, "no 1xx to HTTP/1.0"),
    Case(PROBE, "content-length/no-cl-in-204.md COMP-NO-CL-IN-204",
         b"OPTIONS / HTTP/1.1\r\n" + H + b"\r\n", (405,), False, "a 204 has no Content-Length",
         check="no-cl-in-204"),
    Case(PROBE, "upgrade/upgrade-missing-conn.md COMP-UPGRADE-MISSING-CONN",
         b"GET / HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         b"Sec-WebSocket-Version: 13\r\n\r\n", (200,), False, "not 101"),
    Case(PROBE, "upgrade/upgrade-unknown.md COMP-UPGRADE-UNKNOWN",
         b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: totally-made-up/1.0\r\n\r\n",
         (200,), False, "not 101"),
    Case(PROBE, "upgrade/upgrade-invalid-ver.md COMP-UPGRADE-INVALID-VER",
         b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n",
         (200,), False, "426 or not 101"),
    Case(PROBE, "body/chunked-body.md COMP-CHUNKED-BODY",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         (201,), False, "2xx"),
    Case(PROBE, "body/chunked-empty.md COMP-CHUNKED-EMPTY",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         (201,), False, "2xx or close"),
    Case(PROBE, "body/chunked-hex-uppercase.md COMP-CHUNKED-HEX-UPPERCASE",
         CHUNKED_POST + b"A\r\nhelloworld\r\n0\r\n\r\n", (201,), False, "2xx"),
    Case(PROBE, "body/chunked-multi.md COMP-CHUNKED-MULTI",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", (201,), False, "2xx"),
    Case(PROBE, "body/chunked-trailer-valid.md COMP-CHUNKED-TRAILER-VALID",
         CHUNKED_POST + b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", (201,), False, "2xx"),
    Case(PROBE, "request-line/options-star.md COMP-OPTIONS-STAR",
         b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", (405,), False, "2xx", why=WHY_OPTIONS_STAR,
         check="allow"),
    Case(PROBE, "body/post-cl-body.md COMP-POST-CL-BODY",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", (201,), False, "2xx"),
    Case(PROBE, "body/post-cl-zero.md COMP-POST-CL-ZERO",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", (201,), False, "2xx or close"),
    Case(PROBE, "request-line/absolute-form.md COMP-ABSOLUTE-FORM",
         b"GET http://localhost:8080/ HTTP/1.1\r\n" + H + b"\r\n", (200,), False, "2xx (400 warns)"),
    Case(PROBE, "body/chunked-extension.md COMP-CHUNKED-EXTENSION",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=value\r\nhello\r\n0\r\n\r\n",
         (201,), False, "2xx (400 warns)"),
    Case(PROBE, "request-line/asterisk-with-get.md COMP-ASTERISK-WITH-GET",
         b"GET * HTTP/1.1\r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "body/post-cl-undersend.md COMP-POST-CL-UNDERSEND",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nhello", (408,), True,
         "400, close or timeout", slow=True, why=WHY_BODY_FIRST),
    Case(PROBE, "body/chunked-no-final.md COMP-CHUNKED-NO-FINAL",
         b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
         (408,), True, "400, close or timeout", slow=True, why=WHY_BODY_FIRST),
    Case(PROBE, "malformed-input/cl-empty.md MAL-CL-EMPTY",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "normalization/sp-before-colon-cl.md NORM-SP-BEFORE-COLON-CL",
         b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 11\r\nContent-Length : 5\r\n\r\nhello world",
         (BAD,), True, "reject"),
    Case(PROBE, "smuggling/chunk-bare-semicolon.md SMUG-CHUNK-BARE-SEMICOLON",
         CHUNKED_POST + b"5;\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT, why=WHY_CHUNK_EXT),
    Case(PROBE, "smuggling/chunk-ext-ctrl.md SMUG-CHUNK-EXT-CTRL",
         CHUNKED_POST + b"5;\x00ext\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT, why=WHY_CHUNK_EXT),
    Case(PROBE, "smuggling/chunk-hex-prefix.md SMUG-CHUNK-HEX-PREFIX",
         CHUNKED_POST + b"0x5\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-leading-sp.md SMUG-CHUNK-LEADING-SP",
         CHUNKED_POST + b" 5\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-missing-trailing-crlf.md SMUG-CHUNK-MISSING-TRAILING-CRLF",
         CHUNKED_POST + b"5\r\nhello0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-negative.md SMUG-CHUNK-NEGATIVE",
         CHUNKED_POST + b"-1\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-spill.md SMUG-CHUNK-SPILL",
         CHUNKED_POST + b"5\r\nhello!!\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/chunk-underscore.md SMUG-CHUNK-UNDERSCORE",
         CHUNKED_POST + b"1_0\r\nhello world!!!!!\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-comma-different.md SMUG-CL-COMMA-DIFFERENT",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 10\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-hex-prefix.md SMUG-CL-HEX-PREFIX",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-internal-space.md SMUG-CL-INTERNAL-SPACE",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 0\r\n\r\nhello12345", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/cl-octal.md SMUG-CL-OCTAL",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0o5\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/te-duplicate-headers.md SMUG-TE-DUPLICATE-HEADERS",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
         b"Content-Length: 5\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/te-empty-value.md SMUG-TE-EMPTY-VALUE",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT, why=WHY_TE),
    Case(PROBE, "smuggling/te-http10.md SMUG-TE-HTTP10",
         b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT),
    Case(PROBE, "smuggling/te-identity.md SMUG-TE-IDENTITY",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, "400/501 or close", why=WHY_TE),
    Case(PROBE, "smuggling/te-not-final-chunked.md SMUG-TE-NOT-FINAL-CHUNKED",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
         (BAD,), True, REJECT, why=WHY_TE),
    Case(PROBE, "smuggling/te-xchunked.md SMUG-TE-XCHUNKED",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, "400/501 or close", why=WHY_TE),
    Case(PROBE, "normalization/tab-in-name.md NORM-TAB-IN-NAME",
         b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 11\r\nContent\tLength: 99\r\n\r\nhello world",
         (BAD,), True, "reject"),
    Case(PROBE, "smuggling/te-formfeed.md SMUG-TE-FORMFEED",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0cchunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT, why=WHY_TE),
    Case(PROBE, "smuggling/te-vtab.md SMUG-TE-VTAB",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \x0bchunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT, why=WHY_TE),
    Case(PROBE, "smuggling/chunk-ext-cr.md SMUG-CHUNK-EXT-CR",
         CHUNKED_POST + b"5;a\rX\r\nhello\r\n0\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/te-null.md SMUG-TE-NULL",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\x00\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, REJECT),
    Case(PROBE, "headers/whitespace-before-headers.md COMP-WHITESPACE-BEFORE-HEADERS",
         b"GET / HTTP/1.1\r\n \r\n" + H + b"\r\n", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/bare-cr-header-value.md SMUG-BARE-CR-HEADER-VALUE",
         b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nX-Test: val\rue\r\n\r\nhello", (BAD,), True, REJECT),
    Case(PROBE, "smuggling/te-obs-fold.md SMUG-TE-OBS-FOLD",
         b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
         (BAD,), True, "400, or 2xx and close"),
    Case(PROBE, "host-header/duplicate-host-same.md COMP-DUPLICATE-HOST-SAME",
         b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", (BAD,), True, "400"),
    Case(PROBE, "host-header/host-with-path.md COMP-HOST-WITH-PATH",
         b"GET / HTTP/1.1\r\nHost: localhost:8080/path\r\n\r\n", (BAD,), True, REJECT),
    Case(PROBE, "host-header/host-with-userinfo.md COMP-HOST-WITH-USERINFO",
         b"GET / HTTP/1.1\r\nHost: user@localhost:8080\r\n\r\n", (BAD,), True, REJECT, why=WHY_HOST),
    Case(PROBE, "body/post-no-cl-no-te.md COMP-POST-NO-CL-NO-TE",
         b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n", (411,), False, "2xx or close",
         why="webserv requires a length for POST (411); the empty body (RFC 9112 §6.3) keeps the framing, so the connection stays usable"),
    Case(PROBE, "upgrade/upgrade-post.md COMP-UPGRADE-POST",
         b"POST / HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         (411,), False, "not 101", why=WHY_411),
    # Not MUST-level, but the subjects of llhttp#877 (bare LF) and of the limits.
    Case(PROBE, "request-line/http09-request.md RFC9112-2.3-HTTP09-REQUEST",
         b"GET /\r\n", ((400, 505),), True, "400, close or timeout (SHOULD)", why=WHY_09),
    Case(PROBE, "line-endings/bare-lf-request-line.md RFC9112-2.2-BARE-LF-REQUEST-LINE",
         b"GET / HTTP/1.1\n" + H + b"\r\n", (200,), False, "400 or close (2xx warns; MAY)", why=WHY_LF),
    Case(PROBE, "line-endings/bare-lf-header.md RFC9112-2.2-BARE-LF-HEADER",
         b"GET / HTTP/1.1\r\nHost: localhost:8080\nX-Test: value\r\n\r\n", (200,), False,
         "400 or close (2xx warns; MAY)", why=WHY_LF),
    Case(PROBE, "smuggling/chunk-lf-term.md SMUG-CHUNK-LF-TERM",
         CHUNKED_POST + b"5\r\nhello\n0\r\n\r\n", (BAD,), True, "400 or 2xx (MAY)", why=WHY_LF),
    Case(PROBE, "smuggling/chunk-lf-trailer.md SMUG-CHUNK-LF-TRAILER",
         CHUNKED_POST + b"5\r\nhello\r\n0\r\n\n", (BAD,), True, "400 or 2xx (MAY)", why=WHY_LF),
    Case(PROBE, "malformed-input/long-url.md MAL-LONG-URL",
         b"GET /" + b"A" * 100_000 + b" HTTP/1.1\r\n" + H + b"\r\n", (414,), True,
         "400, 414, 431 or close"),
    Case(PROBE, "malformed-input/long-header-value.md MAL-LONG-HEADER-VALUE",
         b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"B" * 100_000 + b"\r\n\r\n", (431,), True,
         "400, 431 or close", why=WHY_431),
    Case(PROBE, "malformed-input/long-header-name.md MAL-LONG-HEADER-NAME",
         b"GET / HTTP/1.1\r\n" + H + b"A" * 100_000 + b": val\r\n\r\n", (431,), True,
         "400, 431 or close", why=WHY_431),
    Case(PROBE, "malformed-input/many-headers.md MAL-MANY-HEADERS",
         b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-H-%d: value\r\n" % i for i in range(10_000)) + b"\r\n",
         (431,), True, "400, 431 or close", why=WHY_431),
    Case(PROBE, "request-line/long-url-ok.md COMP-LONG-URL-OK",
         b"GET /" + b"a" * 7900 + b" HTTP/1.1\r\n" + H + b"\r\n", (404,), False, "anything but 414"),
]  # fmt: skip

GARDEN_BUG = "server bug"
GARDEN_SAYS = "reject (the bug was accepting it)"


def garden(number: int, raw: bytes, expect, closes, says=GARDEN_SAYS, **kw) -> Case:
    return Case(GARDEN, f"TROPHIES.md server-bug-{number}", raw, expect, closes, says, **kw)


HA = b"Host: a\r\n"
GARDEN_CASES: list[Case] = [
    garden(1, b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n"
              b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", (BAD,), True),
    garden(2, b"GET / HTTP/1.1\r\nHost: a\r\nHeader: v\x00\ralue\r\n\r\n", (BAD,), True),
    garden(3, b"GET / HTTP/1.1\r\nHost: whatever\r\nContent-Length : 34\r\n\r\n"
              b"GET / HTTP/1.1\r\nHost: whatever\r\n\r\n", (BAD,), True),
    garden(4, b"GET / HTTP/1.1\r\n" + HA + b"\tContent-Length: 1\r\n\r\nX", (BAD,), True),
    garden(5, b"GET /test HTTP/1.32\r\n" + HA + b"\r\n", (BAD,), True, why=WHY_VERSION),
    garden(6, b'G=":<>(e),[T];?" /get HTTP/1.1\r\n' + HA + b"\r\n", (BAD,), True),
    garden(7, b"GET ! HTTP/1.1\r\n" + HA + b"\r\n", (BAD,), True),
    garden(8, b"GET / HTTP/1.1\r\n" + HA + b"\xefoo: bar\r\n\r\n", (BAD,), True, why=WHY_NAME),
    garden(9, b"GET /\nHTTP/1.1\r\n\r\n", ((400, 505),), True, why=WHY_09),
    garden(10, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1_0\r\n\r\n0123456789", (BAD,), True),
    garden(11, b"POST / HTTP/1.1\r\n" + HA + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"1\r\nZ\r\n0\r\n\r\n", (BAD,), True),
    garden(12, b"POST / HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: \xa0chunked\xa0\r\n\r\n0\r\n\r\n",
           (BAD,), True, why=WHY_TE),
    garden(13, b"GET / HTTP/1.1\r\n" + HA + b"Visible: :/\rSmuggled: :)\r\n\r\n", (BAD,), True),
    garden(14, b"GET / HTTP/1.1\r\n" + HA + b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\x0b\x0c\x0e\x0f"
               b"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \"(),/;<=>?@[/]{}: whatever\r\n\r\n",
           (BAD,), True),
    garden(15, b"GET / HTTP/\r\r1.1\r\n" + HA + b"\r\n", (BAD,), True),
    garden(16, b"GET / HTTP/1.1\r\nHost: whatever\r\nContent-Length: \r\n\r\n", (BAD,), True),
    garden(17, b"GET / HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n", (BAD,), True),
    garden(18, b"GET / HTTP/1.1\r\n: ignored\r\nHost: whatever\r\n\r\n", (BAD,), True),
    # a bare LF ends `Useless:` and LF LF the section, as in nginx; the next request has no Host
    garden(19, b"GET / HTTP/1.1\r\nHost: a\r\nUseless:\n\nGET / HTTP/1.1\r\n\r\n", (200, BAD), True, why=WHY_LF),
    garden(20, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\x85: 10\r\n\r\n0123456789", (BAD,), True, why=WHY_NAME),
    garden(21, b"GET / HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n"
               b"0\r\n\r\n", (BAD,), True, why=WHY_TE),
    garden(23, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 0\r\n\r\nZ", (BAD,), True),
    garden(24, b"GET / HTTP/4294967295.255\r\n" + HA + b"\r\n", (BAD,), True, why=WHY_VERSION),
    garden(25, b"GET / HTTP/1.1\r\n" + HA + b"Transfer-Encoding: chunked\r\n\r\n-0x0\r\n\r\n", (BAD,), True),
    garden(26, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -48\r\n\r\n", (BAD,), True),
    garden(27, b"GET / HTTP/1.1\r\n" + HA + b":\r\nI: am chopped off\r\n\r\n", (BAD,), True),
    garden(28, b"GET / HTTP/1.1\r\n" + HA + b"Content-Length 10\r\n\r\n0123456789", (BAD,), True),
    garden(29, b"GET / HTTP/1.1\r\n" + HA + b"Content-Length: 1Z\r\n\r\nZ", (BAD,), True),
    garden(30, b"GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n", (BAD,), True),
    garden(31, b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", (BAD,), True),
    garden(32, b"GET / HTTP/1.1\r\nHost: whatever\r\nContent-Length: 010\r\n\r\n01234567", (408,), True, slow=True,
           says="10 bytes (decimal), not 8 (the bug: octal)",
           why="`010` is ten in decimal: webserv waits for the two missing bytes (408); nginx answers a GET before its body"),
    garden(33, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\nZ", (BAD,), True),
    garden(34, b"GET / HTTP/1.1\r\nHost: whatever\r\nHeader: va\rlue\r\n\r\n", (BAD,), True),
    garden(35, b"GET / HTTP/1.1\r\nHost: whatever\r\nTest: test\x00THESE BYTES GET DROPPED\r\n"
               b"Connection: close\r\n\r\n", (BAD,), True),
    garden(36, b"POST /abc HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h2o.http-garden.us\r\n\r\n"
               b"41;a=b\r\rXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n0\r\n\r\n"
               b"GET /bad_path/pwned HTTP/1.1\r\nHost: a\r\nContent-Length: 412\r\n\r\n0\r\n\r\n"
               b"GET /def HTTP/1.1\r\nHost: h2o.http-garden.us\r\n\r\n", (BAD,), True),
    garden(37, b"POST / HTTP/1.1\r\nHost: whatever\r\nTransfer-\r\nEncoding: chunked\r\nContent-Length: 5\r\n\r\n"
               b"0\r\n\r\n", (BAD,), True, why=WHY_NAME),
    garden(38, b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: \r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", (BAD,), True),
    garden(39, b"GET / HTTP/1.1\r\n" + HA + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX:POST / HTTP/1.1\r\n\r\n",
           (200,), False,
           says="`X:POST / HTTP/1.1` is a trailer field: one request (the bug: any 2 bytes ended the body)"),
    garden(40, b"\x00 / HTTP/............0596.7407.\r\n\r\n", (BAD,), True),
    garden(41, b"GET /login HTTP/1.1\r\nHost: a\r\nUser: \x85admin\xa0\r\n\r\n", (404,), False,
           says="keep the \\x85 and \\xa0 (the bug was stripping them)"),
    garden(42, b"GET / HTTP/1.1\r\n" + HA + b"Content-Length: \r\nContent-Length: 43\r\n\r\n"
               b"POST /evil HTTP/1.1\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n", (BAD,), True),
    garden(43, b"GET / HTTP/1.1\r\n" + HA + b"Evil: evil\x00\r\n\r\n", (BAD,), True),
    garden(44, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: blegh\r\n\r\n1\r\nZ\r\n0\r\n\r\n", (BAD,), True, why=WHY_TE),
    garden(45, b"GET / HTTP/1.1\r\n" + HA + b"Connection: close\r\n\r\nInvalid\r\n\r\n", (200,), True,
           says="answer the valid request (the bug was closing first)"),
    garden(46, b"POST / HTTP/1.1\r\nHost: \xffa\xff\r\nTransfer-Encoding: \xffchunked\xff\r\n\r\n1\r\nZ\r\n0\r\n\r\n",
           (BAD,), True, why=WHY_TE),
    garden(47, b"POST / HTTP/1.1\r\nHost: whatever\r\nTransfer-Encoding: chunked\r\n\r\nINVALID!!!\r\n"
               b"GET / HTTP/1.1\r\nHost: whatever\r\n\r\n", (BAD,), True),
    garden(48, b"POST / HTTP/1.1\r\nContent-Length: 0\r\nConnection:keep-alive\r\nHost: a\r\nid: 0\r\n\r\n"
               b"POST / HTTP/1.1\r\nHost: a\r\nid: 1\r\nContent-Length: 34\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: a\r\nid: 2\r\n\r\n", (201, 201), False,
           says="three requests, the third the second's body (the bug: the first swallowed the rest)"),
]  # fmt: skip

LLHTTP_CASES: list[Case] = [
    Case(LLHTTP, "issues/877 versionless+bare-LF",
         b"GET /x\nHost: a\r\nContent-Length: 5\r\n\r\nhello", (505,), True,
         "reject: a bare LF must not end the request line in strict mode", why=WHY_09),
    Case(LLHTTP, "issues/877 versioned+bare-LF",
         b"GET /x HTTP/1.1\nHost: a\r\n\r\n", (404,), False,
         "reject: a bare LF must not end the request line in strict mode", why=WHY_LF),
]  # fmt: skip

CORPUS: list[Case] = GUARDIAN + PROBE_CASES + GARDEN_CASES + LLHTTP_CASES
