#!/usr/bin/env python3
"""webserv behind nginx's command line, for nginx's test suite (`TEST_NGINX_BINARY`).

nginx-tests (lib/Test/Nginx.pm) starts `$NGINX -p TESTDIR/ -c nginx.conf -e error.log
[-g "pid ...; error_log ... debug;"]`, asks `$NGINX -V 2>&1` which modules and version it
has, waits for TESTDIR/nginx.pid, and stops the process with QUIT (TERM after 90 s) and
`waitpid` on the pid in that file — so this wrapper ends in `exec` of `python -m webserv`:
the pid the suite forked is the master's.

What it adapts (the suite's plumbing, never what a test asks or expects):
- `-V` / `-v`: an nginx-style answer (`version_answer`) with `--without-<module>` for each
  module nginx builds by default whose directive webserv's table lacks and `--with-...` only
  for what it has; `nginx version: nginx/X` is the nginx behaviour the suite holds webserv
  to (the runner passes the version of the nginx it compares with, so both columns run the
  same tests and TODOs). Read from the directive table at each call: it stays honest as
  webserv grows. `rewrite` counts as present when `return` is (the only directive of that
  module nearly every file needs; the rest — `rewrite`, `if`, `set` — fail at load, and that
  failure is what the table counts).
- `-c` is resolved against `-p`, as nginx does; `-e FILE` (resolved against `-p`) gets
  what webserv writes to stderr before its own `error_log` is open — the `[emerg]` of a
  refused config — and the suite's stderr still gets it (a tee).
- `-g GLOBALS` is appended to the end of the config (line numbers stay those of the test's
  file); relative `include` paths are made absolute (the config webserv reads lives outside
  TESTDIR, so that no extra file shows in a test's directory listing).
- Dropped from the config (blanked, line numbers kept): `daemon off;` (webserv never
  daemonizes) and every `*_temp_path` (where nginx spools bodies to disk; webserv has no such
  setting). Nothing else is touched: `pid` and `error_log` are webserv directives too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_AS_VERSION = "1.22.1"  # the nginx README's "Differences from nginx" compares with

# nginx modules built unless `--without-<name>`: the directive that says webserv has one
DEFAULT_MODULES = {
    "http_charset_module": "charset",
    "http_gzip_module": "gzip",
    "http_ssi_module": "ssi",
    "http_userid_module": "userid",
    "http_access_module": "allow",
    "http_auth_basic_module": "auth_basic",
    "http_mirror_module": "mirror",
    "http_autoindex_module": "autoindex",
    "http_geo_module": "geo",
    "http_map_module": "map",
    "http_split_clients_module": "split_clients",
    "http_referer_module": "valid_referers",
    "http_rewrite_module": "return",
    "http_proxy_module": "proxy_pass",
    "http_fastcgi_module": "fastcgi_pass",
    "http_uwsgi_module": "uwsgi_pass",
    "http_scgi_module": "scgi_pass",
    "http_grpc_module": "grpc_pass",
    "http_memcached_module": "memcached_pass",
    "http_limit_conn_module": "limit_conn",
    "http_limit_req_module": "limit_req",
    "http_empty_gif_module": "empty_gif",
    "http_browser_module": "ancient_browser",
    "http_upstream_hash_module": "hash",
    "http_upstream_ip_hash_module": "ip_hash",
    "http_upstream_least_conn_module": "least_conn",
    "http_upstream_least_time_module": "least_time",
    "http_upstream_random_module": "random",
    "http_upstream_keepalive_module": "keepalive",
    "http_upstream_zone_module": "zone",
    "http_upstream_sticky": "sticky",
    "http_tunnel_module": "tunnel_pass",
    "http-cache": "proxy_cache_path",
}
# modules nginx builds only with `--with-<name>`
OPTIONAL_MODULES = {
    "http_dav_module": "dav_methods",
    "http_stub_status_module": "stub_status",
    "http_realip_module": "set_real_ip_from",
    "http_sub_module": "sub_filter",
    "http_addition_module": "add_before_body",
    "http_auth_request_module": "auth_request",
    "http_flv_module": "flv",
    "http_mp4_module": "mp4",
    "http_random_index_module": "random_index",
    "http_secure_link_module": "secure_link",
    "http_slice_module": "slice",
    "http_gunzip_module": "gunzip",
    "http_gzip_static_module": "gzip_static",
    "http_ssl_module": "ssl_certificate",
    "http_v2_module": "http2",
}


def webserv_python() -> str:
    """The interpreter that has webserv installed: $WEBSERV_PYTHON, else the repo's .venv."""
    explicit = os.environ.get("WEBSERV_PYTHON")
    if explicit:
        return explicit
    venv = os.path.join(REPO, ".venv", "bin", "python")
    return venv if os.access(venv, os.X_OK) else sys.executable


def webserv_directives(python: str) -> tuple[str, set[str]]:
    """webserv's version and the names in its directive table."""
    code = (
        "import webserv; from webserv.config.directives import DIRECTIVES;"
        "print(webserv.__version__); print(*sorted(DIRECTIVES))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    version, names = out.stdout.splitlines()[:2]
    return version.strip(), set(names.split())


def version_answer(webserv_version: str, directives: set[str], as_version: str) -> str:
    """What `nginx -V` prints (to stderr), for a server with these directives."""
    args = [f"--without-{m}" for m, d in DEFAULT_MODULES.items() if d not in directives]
    args += [f"--with-{m}" for m, d in OPTIONAL_MODULES.items() if d in directives]
    return (
        f"nginx version: nginx/{as_version} (webserv/{webserv_version})\n"
        f"configure arguments: {' '.join(args)}\n"
    )


# --- the command line ------------------------------------------------------------------


@dataclass
class Args:
    prefix: str | None = None
    conf: str | None = None
    error_log: str | None = None
    globals: str = ""
    signal: str | None = None
    version: str | None = None  # "-v" or "-V"
    test: str | None = None  # "-t" or "-T"
    quiet: bool = False


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> Args:
    """nginx's options: flags may be grouped (`-tq`), a value may be glued (`-pDIR`)."""
    args = Args()
    with_value = {"p": "prefix", "c": "conf", "e": "error_log", "g": "globals", "s": "signal"}
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or len(word) < 2:
            raise UsageError(f'invalid option: "{word}"')
        j = 1
        while j < len(word):
            flag = word[j]
            if flag in with_value:
                value = word[j + 1 :]
                if not value:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f'option "-{flag}" requires an argument')
                    value = argv[i]
                if flag == "g":
                    args.globals += value
                else:
                    setattr(args, with_value[flag], value)
                break
            if flag in "vV":
                args.version = args.version if args.version == "-V" else f"-{flag}"
            elif flag in "tT":
                args.test = args.test if args.test == "-T" else f"-{flag}"
            elif flag == "q":
                args.quiet = True
            elif flag in "h?":
                raise UsageError("usage")
            else:
                raise UsageError(f'invalid option: "{flag}"')
            j += 1
        i += 1
    return args


def resolve(prefix: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(prefix, path))


# --- the config: statements with their spans, to blank or rewrite some -----------------


@dataclass
class Word:
    text: str  # as written, quotes and escapes included
    start: int
    end: int

    @property
    def value(self) -> str:
        t = self.text
        if len(t) >= 2 and t[0] in "\"'" and t[-1] == t[0]:
            t = t[1:-1]
        return re.sub(r"\\(.)", lambda m: m.group(1), t)


@dataclass
class Stmt:
    name: Word
    args: list[Word]
    end: int  # one past its `;` or `}`
    block: list[Stmt] | None = None
    start: int = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.name.start


class LexError(Exception):
    pass


def _words(text: str):
    """nginx's lexer: yields Words and the punctuation `;`, `{`, `}` (as Words too)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";{}":
            yield Word(c, i, i + 1)
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise LexError("unterminated quote")
            yield Word(text[i : j + 1], i, j + 1)
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n;{}":
                if text[j] == "\\":
                    j += 1
                elif text[j] == "$" and j + 1 < n and text[j + 1] == "{":
                    close = text.find("}", j)  # ${name}: its braces are the word's
                    j = close if close >= 0 else n - 1
                j += 1
            yield Word(text[i:j], i, j)
            i = j


def parse_config(text: str) -> list[Stmt]:
    words = list(_words(text))
    pos = 0

    def block(top: bool) -> list[Stmt]:
        nonlocal pos
        out: list[Stmt] = []
        while pos < len(words):
            w = words[pos]
            if w.text == "}":
                if top:
                    raise LexError('unexpected "}"')
                return out
            if w.text in ";{":
                raise LexError(f'unexpected "{w.text}"')
            pos += 1
            args: list[Word] = []
            while pos < len(words) and words[pos].text not in ";{}":
                args.append(words[pos])
                pos += 1
            if pos >= len(words) or words[pos].text == "}":
                raise LexError('expecting ";" or "}"')
            if words[pos].text == ";":
                pos += 1
                out.append(Stmt(w, args, words[pos - 1].end))
                continue
            pos += 1
            children = block(top=False)
            if pos >= len(words):
                raise LexError('expecting "}"')
            pos += 1
            out.append(Stmt(w, args, words[pos - 1].end, children))
        if not top:
            raise LexError('expecting "}"')
        return out

    return block(top=True)


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def adapt_config(text: str, conf_dir: str, globals_: str = "") -> tuple[str, list[str]]:
    """The config webserv reads, and a note for each change made."""
    notes: list[str] = []
    edits: list[tuple[int, int, str]] = []
    try:
        statements = parse_config(text)
    except LexError:
        statements = []  # webserv will name the error with its file:line

    def walk(stmts: list[Stmt]) -> None:
        for s in stmts:
            name, values = s.name.value, [a.value for a in s.args]
            if (name == "daemon" and values == ["off"]) or name.endswith("_temp_path"):
                edits.append((s.start, s.end, _blank(text[s.start : s.end])))
                notes.append(f"dropped {name} {' '.join(values)};")
            elif name == "include" and len(s.args) == 1 and not os.path.isabs(values[0]):
                absolute = os.path.join(conf_dir, values[0])
                edits.append((s.args[0].start, s.args[0].end, _quote(absolute)))
                notes.append(f"include {values[0]} -> {absolute}")
            if s.block:
                walk(s.block)

    walk(statements)
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    if globals_.strip():
        out += ("" if out.endswith("\n") else "\n") + globals_ + "\n"
        notes.append(f"appended -g {globals_}")
    return out, notes


def adapted_path(prefix: str) -> str:
    """Where the adapted config of the test whose directory is PREFIX goes (outside it)."""
    work = os.environ.get("WEBSERV_NGINX_TESTS_WORK") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "webserv-nginx-tests"
    )
    name = os.path.basename(os.path.normpath(prefix)) or "root"
    return os.path.join(work, f"{name}.conf")


def webserv_command(python: str, args: Args, prefix: str, conf: str) -> list[str]:
    cmd = [python, "-m", "webserv", "-p", prefix, "-c", conf]
    if args.test:
        cmd.append(args.test)
    if args.signal:
        cmd += ["-s", args.signal]
    return cmd


def _tee_stderr(path: str) -> None:
    """From now on fd 2 goes to PATH (appended) and to the stderr we had, by a child."""
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(write_end)
        outs = [log_fd, 2]
        while chunk := os.read(read_end, 65536):
            for fd in list(outs):
                try:
                    os.write(fd, chunk)
                except OSError:
                    outs.remove(fd)  # the suite closes stderr around try_run
        os._exit(0)
    os.close(read_end)
    os.close(log_fd)
    os.dup2(write_end, 2)
    os.close(write_end)


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"nginx: {exc}", file=sys.stderr)
        return 1
    python = webserv_python()
    if args.version:
        version, directives = webserv_directives(python)
        as_version = os.environ.get("WEBSERV_NGINX_AS_VERSION", DEFAULT_AS_VERSION)
        answer = version_answer(version, directives, as_version)
        sys.stderr.write(answer if args.version == "-V" else answer.splitlines()[0] + "\n")
        return 0
    prefix = os.path.abspath(args.prefix or os.getcwd())
    conf = resolve(prefix, args.conf or "conf/nginx.conf")
    try:
        with open(conf, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f'nginx: [emerg] open() "{conf}" failed ({exc})', file=sys.stderr)
        return 1
    adapted, _ = adapt_config(text, os.path.dirname(conf), args.globals)
    path = adapted_path(prefix)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(adapted)
    if args.error_log and args.error_log != "stderr" and not (args.test or args.signal):
        _tee_stderr(resolve(prefix, args.error_log))
    cmd = webserv_command(python, args, prefix, path)
    os.execv(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
