#!/usr/bin/env python3
"""The system nginx for nginx's test suite, with an `-V` that matches what is installed.

Debian's nginx says `--with-http_perl_module=dynamic`, `--with-stream=dynamic`, ... in `-V`
whether or not the package holding that `.so` is installed; lib/Test/Nginx.pm then writes
`load_module MODULES/ngx_..._module.so;` into every config and nginx refuses to start. This
shim drops from `-V` each `=dynamic` module whose file is not in `--modules-path` (so the
suite skips the files that need it, as it does for a module not built) and runs the real
nginx with every other argument unchanged (`exec`: the pid is nginx's). The runner sets
`TEST_NGINX_MODULES` to the same modules path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

NGINX = os.environ.get("NGINX_SHIM_BINARY", "/usr/sbin/nginx")

# the file each dynamic module of `-V` loads (as Test::Nginx's test_globals_modules names it)
DYNAMIC_FILES = {
    "http_geoip_module": "ngx_http_geoip_module.so",
    "http_image_filter_module": "ngx_http_image_filter_module.so",
    "http_perl_module": "ngx_http_perl_module.so",
    "http_xslt_module": "ngx_http_xslt_filter_module.so",
    "mail": "ngx_mail_module.so",
    "stream": "ngx_stream_module.so",
    "stream_geoip_module": "ngx_stream_geoip_module.so",
}


def modules_path(answer: str) -> str:
    m = re.search(r"--modules-path=(\S+)", answer)
    return m.group(1) if m else "/usr/lib/nginx/modules"


def filter_dynamic(answer: str, present: set[str]) -> str:
    """ANSWER without the `--with-X=dynamic` whose `.so` is not among PRESENT file names."""

    def keep(m: re.Match[str]) -> str:
        wanted = DYNAMIC_FILES.get(m.group(1), f"ngx_{m.group(1)}.so")
        return m.group(0) if wanted in present else ""

    return re.sub(r" --with-(\S+?)=dynamic", keep, answer)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-V",):
        answer = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
        path = modules_path(answer)
        present = set(os.listdir(path)) if os.path.isdir(path) else set()
        sys.stderr.write(filter_dynamic(answer, present))
        return 0
    os.execv(NGINX, [NGINX, *argv])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
