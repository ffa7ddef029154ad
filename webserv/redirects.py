"""The `Location` of a redirect webserv builds from a path: nginx's absolute_redirect,
server_name_in_redirect and port_in_redirect (its header filter's rule).

With `absolute_redirect on`, a path (`/dir/`) becomes `scheme://host[:port]/dir/`: the
host is the request's (its Host, already validated and lower-cased by routing), or with
`server_name_in_redirect on` the server's first name, and without either the local
address (nginx's order); the port is the local one, left out when it is the scheme's own or with
`port_in_redirect off`. With `off` (webserv's default) the path is sent as it is. Called only
when an answer redirects: nothing here is on the path of other requests.
"""

from __future__ import annotations

from typing import Any

_DEFAULT_PORTS = {"http": 80, "https": 443}


def location(ex: Any, target: str) -> str:
    """TARGET as the `Location` of EX's answer (a path made absolute if the location says)."""
    loc = ex.location
    if loc is None or not loc.absolute_redirect or not target.startswith("/"):
        return target
    conn = ex.conn
    server = ex.server
    if loc.server_name_in_redirect:
        host = server.primary_name if server is not None else ""
        if host.startswith("~") or "*" in host:
            host = ""  # a regex or wildcard name is no host name: the local address
    else:
        host = ex.host  # the request's Host (nginx: r->headers_in.server)
    if not host:
        addr = conn.local_addr
        host = f"[{addr}]" if ":" in addr else addr
    scheme = conn.scheme
    port = conn.local_port if loc.port_in_redirect else 0
    if port and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}{target}"
    return f"{scheme}://{host}{target}"
