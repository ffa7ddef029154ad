"""`set $name value`'s variables: the names a config declares, the names `set` may not write,
and what a compiled template calls to read one.

nginx declares every `set` name for the whole configuration, caseless: `set_names` walks a
config's statements before anything is parsed (load.py stores the result in
variables.set_names, which compile_template reads). A value lives in the exchange's
`set_vars` (rewrite_if.SetOp writes it; unset until one runs, so a request no `set` ran for
pays nothing). Never compiles a template (variables.py does), never parses a directive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# nginx's own variables webserv has none of (or has under a prefix, as nginx has not): `set`
# of one is nginx's "duplicate" error too (webserv's own are known to variables.lookup)
_NGINX_READ_ONLY = frozenset(
    "http_host http_user_agent http_referer http_via http_x_forwarded_for http_cookie "
    "sent_http_content_type sent_http_content_length sent_http_location sent_http_link "
    "sent_http_last_modified sent_http_connection sent_http_keep_alive sent_http_cache_control "
    "sent_http_transfer_encoding document_root realpath_root request_filename request_id "
    "request_completion request_body request_body_file nginx_version hostname gzip_ratio "
    "realip_remote_addr realip_remote_port date_local uid_got uid_set uid_reset secure_link "
    "secure_link_expires fastcgi_script_name fastcgi_path_info upstream_addr upstream_status "
    "upstream_response_time upstream_response_length upstream_connect_time "
    "upstream_header_time upstream_bytes_received upstream_bytes_sent upstream_cache_status "
    "tcpinfo_rtt tcpinfo_rttvar tcpinfo_snd_cwnd tcpinfo_rcv_space".split()
)
# built-ins nginx lets `set` write (NGX_HTTP_VAR_CHANGEABLE, prefix variables): they read as
# the set value, else the built-in's; $args is the query string itself (rewrite_if.SetArgsOp)
_CHANGEABLE_PREFIXES = ("http_", "arg_", "sent_http_", "ssl_")


def read_only(key: str, builtin: bool) -> bool:
    """Whether `set` may not write KEY (a lowercased name; BUILTIN: one of webserv's own
    variables, not a capture): nginx's "the duplicate" error."""
    if key == "args":
        return False
    return key in _NGINX_READ_ONLY or (builtin and not key.startswith(_CHANGEABLE_PREFIXES))


def set_names(statements: Iterable[Any]) -> frozenset[str]:
    """Every name a `set` among STATEMENTS declares (all of a config's, blocks' included:
    lexer.walk), lowercased (a bad one is left to the directive's parser to report; $args is
    a built-in's)."""
    names: set[str] = set()
    for stmt in statements:
        if stmt.name == "set" and stmt.args:
            written = stmt.args[0].text
            if written.startswith("$") and len(written) > 1:
                names.add(written[1:].lower())
    return frozenset(names - {"args"})


# --- reading one: what compile_template's code calls -----------------------------------------

_UNSET: dict[str, str] = {}  # (the set_vars of an exchange no `set` ran for)


def set_get(x: Any, key: str) -> str | None:
    """KEY's value on this request, None if no `set` gave it one."""
    return (getattr(x, "set_vars", None) or _UNSET).get(key)


def set_value(x: Any, key: str) -> str:
    """A `set` variable's value; with none, nginx's "" and its warning, once a request (the
    "" is kept, as nginx keeps a value once read)."""
    values = getattr(x, "set_vars", None)
    if values is None:
        values = x.set_vars = {}
    value = values.get(key)
    if value is None:
        value = values[key] = ""
        loc = x.location
        if loc is not None and loc.uninitialized_variable_warn:
            loc.error_log.warn(f'using uninitialized "{key}" variable', x.conn.id)
    return value


def template_part(key: str, fallback: tuple[str, bool] | None) -> str:
    """KEY in a template's f-string: its value as it is ("" stays "": nginx writes no "-" for
    a set or uninitialized value), else FALLBACK's (the built-in by that name, escaped)."""
    if fallback is None:
        return f"{{_esc_set(_set_value(x, {key!r}))}}"
    return f"{{_esc_set(_v) if (_v := _set_get(x, {key!r})) is not None else _esc({fallback[0]})}}"
