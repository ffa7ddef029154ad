"""Directive rows for access control: allow, deny, satisfy (nginx's ngx_http_access_module
and core), auth_basic, auth_basic_user_file (ngx_http_auth_basic_module), and the ACCESS
phase builder that compiles them. Only parses and compiles; requests are decided by
access.py and auth_basic.py.
"""

from __future__ import annotations

import itertools
import os
import socket
from dataclasses import dataclass
from typing import Any

from .. import variables
from ..access import AccessPhase, Rules
from ..auth_basic import AuthBasic
from ..htpasswd import UserFile, UserFilePerRequest
from .lexer import Statement
from .table import ACCESS, HSL, _time, directive, fail, phase_builder, siblings

_ORDER = itertools.count()  # config order of allow/deny lines across both directives


@dataclass(slots=True, frozen=True)
class Rule:
    order: int
    allow: bool
    family: str  # "all", "unix", "v4", "v6"
    network: int = 0
    mask: int = 0
    warning: str = ""  # nginx's [warn] for an address with bits beyond its prefix


def _cidr(stmt: Statement, text: str) -> tuple[str, int, int, str]:
    """(family, network, mask, warning) of ADDRESS or ADDRESS/LEN, as nginx's ngx_ptocidr."""
    address, slash, length = text.partition("/")
    for family, af, bits in (("v4", socket.AF_INET, 32), ("v6", socket.AF_INET6, 128)):
        try:
            value = int.from_bytes(socket.inet_pton(af, address), "big")
        except OSError:
            continue
        if slash:
            if not length.isdigit() or int(length) > bits:
                break
            prefix = int(length)
        else:
            prefix = bits
        mask = ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1)
        warning = ""
        if value & ~mask:
            warning = f"low address bits of {text} are meaningless in {stmt.file}:{stmt.line}"
        return family, value & mask, mask, warning
    raise fail(stmt, f'invalid parameter "{text}"')


def _rule(stmt: Statement, args: list[str]) -> Rule:
    allow = stmt.name == "allow"
    text = args[0]
    if text == "all":
        return Rule(next(_ORDER), allow, "all")
    if text == "unix:":
        return Rule(next(_ORDER), allow, "unix")
    family, network, mask, warning = _cidr(stmt, text)
    return Rule(next(_ORDER), allow, family, network, mask, warning)


def _realm(stmt: Statement, args: list[str]) -> str | None:
    text = args[0]
    if text == "off":
        return None
    if "$" in text:
        raise fail(stmt, '"auth_basic" with variables is not supported by webserv')
    if any(c in text for c in '\r\n\0"'):
        raise fail(stmt, 'invalid realm in "auth_basic" directive (CR, LF, NUL or a quote)')
    return text


def _user_file(stmt: Statement, args: list[str]) -> tuple[str, Statement, Any]:
    """(the path, its statement, and the path's template when it has variables, or None)."""
    render = None
    if "$" in args[0]:
        try:
            render = variables.compile_template(args[0], escape="none_raw")
        except variables.UnknownVariable as exc:
            raise fail(stmt, str(exc)) from None
    return args[0], stmt, render


def _satisfy(stmt: Statement, args: list[str]) -> str:
    if args[0] not in ("all", "any"):
        raise fail(
            stmt, f'invalid value "{args[0]}" in "satisfy" directive, it must be "all" or "any"'
        )
    return args[0]


def compile_rules(rules: list[Rule]) -> Rules | None:
    """One level's rules, in config order, as access.Rules' per-family tuples."""
    if not rules:
        return None
    v4: list[tuple[int, int, bool]] = []
    v6: list[tuple[int, int, bool]] = []
    unix: list[bool] = []
    for rule in sorted(rules, key=lambda r: r.order):
        if rule.family in ("v4", "all"):
            v4.append((rule.network, rule.mask, rule.allow))
        if rule.family in ("v6", "all"):
            v6.append((rule.network, rule.mask, rule.allow))
        if rule.family in ("unix", "all"):
            unix.append(rule.allow)
    return Rules(tuple(v4), tuple(v6), tuple(unix))


def build(s: dict[str, Any], loader: Any) -> AccessPhase | None:
    """The ACCESS phase of a location, or None when it has neither rules nor auth_basic."""
    lines = [r for r, _ in s.get("allow", ())] + [r for r, _ in s.get("deny", ())]
    for rule in lines:
        if rule.warning and rule.warning not in loader.warnings:
            loader.warnings.append(rule.warning)
    rules = compile_rules(lines)
    auth = None
    realm = s.get("auth_basic")
    user_file = s.get("auth_basic_user_file")
    if realm is not None and user_file is not None:
        # relative to the prefix, as every relative path (the config file's folder, or -p)
        base = loader.prefix
        if user_file[2] is not None:  # with variables: rendered per request
            auth = AuthBasic(realm, UserFilePerRequest(user_file[2], base))
        else:
            path = os.path.normpath(os.path.join(base, user_file[0]))
            files = loader.__dict__.setdefault("htpasswd_files", {})
            if path not in files:
                files[path] = UserFile(path)  # one per file and config: one look a second
            auth = AuthBasic(realm, files[path])
    if rules is None and auth is None:
        return None
    return AccessPhase(rules, auth, s.get("satisfy", "all") == "any", s.get("auth_delay", 0.0))


directive(
    "allow",
    HSL,
    1,
    1,
    _rule,
    multi=True,
    syntax="allow ADDRESS | CIDR | unix: | all;",
    default_text="none",
    doc="Let clients from ADDRESS (IPv4 or IPv6), the network CIDR (`10.0.0.0/8`, "
    "`2001:db8::/32`), unix-domain sockets (`unix:`) or `all` through. `allow` and `deny` "
    "lines are checked in config order, the first that matches the client decides; with "
    "none matching, the client is let through. A level with its own `allow` or `deny` "
    "lines has only those. An IPv4-mapped IPv6 client is checked against the IPv4 lines.",
)
directive(
    "deny",
    HSL,
    1,
    1,
    _rule,
    multi=True,
    syntax="deny ADDRESS | CIDR | unix: | all;",
    default_text="none",
    doc="Refuse clients from ADDRESS, CIDR, `unix:` or `all` with 403 (see `allow`), before "
    "any body byte is read.",
)
siblings("allow", "deny")
directive(
    "satisfy",
    HSL,
    1,
    1,
    _satisfy,
    default="all",
    syntax="satisfy all | any;",
    default_text="all",
    doc="`all`: a request must pass both the `allow`/`deny` lines and `auth_basic`; "
    "`any`: either is enough (an allowed address needs no password).",
)
directive(
    "auth_basic",
    HSL,
    1,
    1,
    _realm,
    syntax="auth_basic REALM | off;",
    default_text="off",
    doc="Ask for a user name and password (HTTP Basic authentication) checked against "
    '`auth_basic_user_file`: 401 with `WWW-Authenticate: Basic realm="REALM"` without '
    "the right ones. `off` cancels an outer level's.",
)
directive(
    "auth_basic_user_file",
    HSL,
    1,
    1,
    _user_file,
    syntax="auth_basic_user_file FILE;",
    default_text="none",
    doc="The htpasswd file of `auth_basic`: `user:hash` lines, hashes from `htpasswd -B` "
    "(bcrypt), `-m` (apr1), `-s` ({SHA}), `{SSHA}`, `{PLAIN}`, or crypt(3) where the "
    "platform has libcrypt. Read at load and again within a second of a change. FILE may "
    "hold variables (`$arg_f`, `$host`): rendered per request, each file read when first "
    "named and within a second of a change (64 kept per location).",
)
directive(
    "auth_delay",
    HSL,
    1,
    1,
    _time,
    default=0.0,
    syntax="auth_delay TIME;",
    default_text="0s",
    doc="Answer a request that `auth_basic` refuses with 401 only after TIME (nginx 1.17.10: "
    "it slows password guessing); the worker serves others meanwhile. A refused request "
    "with a body is answered at once, before any of it is read.",
)
phase_builder(ACCESS, build)
