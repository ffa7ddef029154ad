#!/usr/bin/env python3
"""Run files of nginx's test suite against webserv (and nginx, when installed): one table.

    python tools/nginx-tests/run.py --suite DIR [FILE.t ...]      (make nginx-tests NGINX_TESTS=DIR)

Each file runs as `perl FILE` in the suite's folder, one at a time, with TEST_NGINX_BINARY set
to wrapper.py (webserv) or nginx_shim.py (the system nginx), TEST_NGINX_VERBOSE and
TEST_NGINX_CATLOG on, and a time limit; its TAP (stdout) and stderr are kept in the results
folder (`FILE.SERVER.tap`, `.err`). The TAP is read as Test::Harness does, but "passed" is
strict: an `ok` that is not a skip (a `not ok # TODO` is not a pass, an `ok # TODO` is).
A file that dies before its plan counts the plan of the other server's run (or of its
source) as planned, none passed.

For webserv it also lists every directive each file's config needs that webserv refuses
(`webserv -t` again and again, the refused statement blanked each time) — the work list —
and sorts each failed test of a file that started by what its log shows: a `400` to a
request with bare LF line endings (every request the suite writes has them), no answer at
all, or another answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import wrapper  # noqa: E402
from tap import failures, parse_tap, planned_in_source  # noqa: E402

NGINX = "/usr/sbin/nginx"

# The files about what an origin server does (request line and header parsing, keep-alive,
# virtual hosts, locations, static files, index and autoindex, ranges and conditionals,
# logs, WebDAV, return/error_page/try_files, body reading, limits, charset). Several use
# `proxy_pass` to a second server of the same nginx only as a helper (to see a body or a
# variable): webserv skips those, by module, as a build without proxy does. Not taken from
# the list in issue 14: http_location_win32.t (Windows only: skipped by both on Linux) and
# range_charset.t (its subject is a proxied, cached response). Added instead:
# worker_shutdown_timeout.t and http_keepalive_shutdown.t (what a worker does with open
# connections when it retires — webserv's README makes a point of it). Added later (every
# other file whose modules webserv has, run against both): auth_basic.t, auth_delay.t,
# limit_req2.t, limit_req_delay.t, limit_req_dry_run.t, rewrite_unescape.t, rewrite_if.t,
# syslog.t.
FILES = """
http_method.t http_uri.t http_header_buffers.t http_keepalive.t http_host.t
http_server_name.t http_location.t http_location_auto.t autoindex.t autoindex_format.t
index.t range.t range_if_range.t not_modified.t access_log.t access_log_variables.t dav.t
dav_chunked.t dav_utf8.t server_tokens.t merge_slashes.t error_log.t http_try_files.t
headers.t http_error_page.t http_expect_100_continue.t http_absolute_redirect.t
http_disable_symlinks.t http_variables.t http_include.t body.t body_chunked.t rewrite.t
limit_req.t charset.t worker_shutdown_timeout.t http_keepalive_shutdown.t
auth_basic.t auth_delay.t limit_req2.t limit_req_delay.t limit_req_dry_run.t
rewrite_unescape.t rewrite_if.t syslog.t
""".split()

# --- running ------------------------------------------------------------------------------


@dataclass
class Result:
    file: str
    server: str
    status: str  # passed | failed | skipped | not started | died | timeout
    planned: int | None
    passed: int
    skip_all: str | None = None
    failed: list[str] = field(default_factory=list)
    emerg: list[str] = field(default_factory=list)
    seconds: float = 0.0
    planned_from: str = "tap"  # tap | nginx | source


def run_file(suite: str, name: str, server: str, env: dict[str, str], out: str, limit: float):
    started = time.monotonic()
    tap_path = os.path.join(out, f"{name}.{server}.tap")
    err_path = os.path.join(out, f"{name}.{server}.err")
    timed_out = False
    with open(tap_path, "wb") as tap_f, open(err_path, "wb") as err_f:
        proc = subprocess.Popen(
            ["perl", name],
            cwd=suite,
            env=env,
            stdout=tap_f,
            stderr=err_f,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the server it starts goes with it
        )
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # a leftover server, or the hung test
            except ProcessLookupError:
                pass
            proc.wait()
    with open(tap_path, encoding="utf-8", errors="replace") as f:
        tap_text = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        err_text = f.read()
    tap = parse_tap(tap_text)
    emerg = sorted(set(re.findall(r"\[emerg\] (.*)", tap_text + "\n" + err_text)))
    passed = tap.passed
    if timed_out:
        status = "timeout"
    elif "Can't start nginx" in err_text:
        # Test::Nginx's two closing checks (no alerts, no sanitizer errors) pass vacuously
        status, passed = "not started", 0
    elif tap.skip_all:
        status = "skipped"
    elif tap.planned is None or tap.ran < tap.planned or tap.bail_out:
        status = "died"
    else:
        status = "passed" if tap.passed == tap.planned else "failed"
    return Result(
        name,
        server,
        status,
        tap.planned,
        passed,
        tap.skip_all,
        tap.failed,
        emerg,
        round(time.monotonic() - started, 1),
    )


def nginx_version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    except OSError:
        return None
    m = re.search(r"nginx/([0-9.]+)", out)
    return m.group(1) if m else None


def base_env(out: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_NGINX")}
    env.update(
        TEST_NGINX_VERBOSE="1",
        TEST_NGINX_CATLOG="1",
        TEST_NGINX_LEAVE="1",  # the test folders stay, for refusals() and the README
        TMPDIR=os.path.join(out, "tmp"),
    )
    os.makedirs(env["TMPDIR"], exist_ok=True)
    return env


# --- what webserv refuses in each config ----------------------------------------------------

_AT = re.compile(r"\[emerg\] (.*?)(?: in (\S+):(\d+))?$")


def refusals(python: str, conf: str, prefix: str, limit: int = 40) -> list[str]:
    """Every message `webserv -t` refuses CONF with, blanking the statement it names each time."""
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    messages: list[str] = []
    scratch = conf + ".t"
    for _ in range(limit):
        with open(scratch, "w", encoding="utf-8") as f:
            f.write(text)
        proc = subprocess.run(
            [python, "-m", "webserv", "-t", "-p", prefix, "-c", scratch],
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            break
        m = next((m for line in proc.stderr.splitlines() if (m := _AT.search(line))), None)
        if not m:
            messages.append(proc.stderr.strip().splitlines()[-1] if proc.stderr else "?")
            break
        messages.append(m.group(1))
        if not m.group(3):
            break
        text, blanked = blank_statement(text, int(m.group(3)))
        if not blanked:
            break
    os.unlink(scratch)
    return messages


def blank_statement(text: str, line: int) -> tuple[str, bool]:
    """TEXT with the innermost statement that starts on LINE blanked (a block with it)."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    if line < 1 or line > len(starts):
        return text, False
    lo = starts[line - 1]
    hi = starts[line] if line < len(starts) else len(text)
    try:
        statements = wrapper.parse_config(text)
    except wrapper.LexError:
        return text, False
    found = None
    stack = list(statements)
    while stack:
        s = stack.pop()
        if lo <= s.start < hi and (found is None or s.start > found.start):
            found = s
        stack.extend(s.block or [])
    if found is None:
        return text, False
    return text[: found.start] + wrapper._blank(text[found.start : found.end]) + text[
        found.end :
    ], True


def normalise(message: str) -> str:
    return re.sub(r'"/[^"]*"', '"PATH"', message)


# --- the table --------------------------------------------------------------------------------


def cell(r: Result | None) -> str:
    if r is None:
        return "—"
    if r.status == "skipped":
        return f"skip: {r.skip_all}"
    p = r.planned if r.planned is not None else "?"
    extra = {"not started": " (not started)", "died": " (died)", "timeout": " (timeout)"}
    return f"{r.passed}/{p}{extra.get(r.status, '')}"


def table(files: list[str], results: dict[tuple[str, str], Result]) -> str:
    rows = ["| file | nginx | webserv |", "|---|---|---|"]
    totals = {"nginx": [0, 0, 0], "webserv": [0, 0, 0]}
    for name in files:
        cells = []
        for server in ("nginx", "webserv"):
            r = results.get((name, server))
            cells.append(cell(r))
            if r and r.status != "skipped":
                totals[server][0] += r.passed
                totals[server][1] += r.planned or 0
                totals[server][2] += 1
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    n, w = totals["nginx"], totals["webserv"]
    rows.append(
        f"| **total** | **{n[0]}/{n[1]}** ({n[2]} files run) "
        f"| **{w[0]}/{w[1]}** ({w[2]} files run) |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--suite", required=True, help="a clone of nginx/nginx-tests")
    ap.add_argument("files", nargs="*", help="files to run (default: the 37 of issue 14)")
    ap.add_argument("--results", default="test-artifacts/nginx-tests", help="logs and summary")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per file and server")
    ap.add_argument("--nginx", default=NGINX, help="nginx to compare with (if it exists)")
    ap.add_argument("--no-nginx", action="store_true", help="webserv only")
    args = ap.parse_args(argv)

    suite = os.path.abspath(args.suite)
    if not os.path.isfile(os.path.join(suite, "lib", "Test", "Nginx.pm")):
        print(f"{suite}: not a clone of nginx-tests (no lib/Test/Nginx.pm)", file=sys.stderr)
        return 2
    if not shutil.which("perl"):
        print("perl is needed to run nginx's test suite", file=sys.stderr)
        return 2
    files = [f for f in (args.files or FILES) if os.path.isfile(os.path.join(suite, f))]
    missing = sorted(set(args.files or FILES) - set(files))
    out = os.path.abspath(args.results)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    has_nginx = not args.no_nginx and os.access(args.nginx, os.X_OK)
    as_version = (nginx_version(args.nginx) if has_nginx else None) or wrapper.DEFAULT_AS_VERSION
    python = wrapper.webserv_python()
    servers = (["nginx"] if has_nginx else []) + ["webserv"]

    results: dict[tuple[str, str], Result] = {}
    for name in files:
        for server in servers:
            env = base_env(out)
            if server == "nginx":
                if os.geteuid() == 0:  # its workers would be nobody, and TESTDIR is 0700
                    env["TEST_NGINX_GLOBALS"] = "user root;"
                env.update(
                    TEST_NGINX_BINARY=os.path.join(HERE, "nginx_shim.py"),
                    NGINX_SHIM_BINARY=os.path.abspath(args.nginx),
                    TEST_NGINX_MODULES=modules_path(args.nginx),
                )
            else:
                env.update(
                    TEST_NGINX_BINARY=os.path.join(HERE, "wrapper.py"),
                    WEBSERV_PYTHON=python,
                    WEBSERV_NGINX_AS_VERSION=as_version,
                    WEBSERV_NGINX_TESTS_WORK=os.path.join(out, "work", name),
                )
            r = run_file(suite, name, server, env, out, args.timeout)
            results[(name, server)] = r
            print(f"{name:32} {server:8} {r.status:8} {r.passed}/{r.planned} {r.seconds}s")
            sys.stdout.flush()

    # a file that died before its plan: the other server's plan, else its source's
    for (name, server), r in results.items():
        if r.planned is None:
            other = results.get((name, "nginx"))
            if other and other.planned and server != "nginx":
                r.planned, r.planned_from = other.planned, "nginx"
            else:
                with open(os.path.join(suite, name), encoding="utf-8", errors="replace") as f:
                    r.planned, r.planned_from = planned_in_source(f.read()), "source"

    refused: dict[str, list[str]] = {}
    causes: dict[str, list[tuple[str, str]]] = {}
    for name in files:
        work = os.path.join(out, "work", name)
        for conf in sorted(os.listdir(work)) if os.path.isdir(work) else []:
            if conf.endswith(".conf"):
                prefix = os.path.join(out, "tmp", conf[: -len(".conf")])  # its test folder
                refused.setdefault(name, []).extend(
                    refusals(python, os.path.join(work, conf), prefix)
                )
        r = results.get((name, "webserv"))
        if r and r.status in ("failed", "died", "timeout"):
            with open(os.path.join(out, f"{name}.webserv.tap"), errors="replace") as f:
                causes[name] = failures(f.read())

    md = table(files, results)
    summary = {
        "suite": suite,
        "nginx_version": as_version if has_nginx else None,
        "files": files,
        "missing": missing,
        "results": [asdict(r) for r in results.values()],
        "refused": refused,
        "failures": causes,
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    report = blockers_report(files, results, refused, causes)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(md + "\n\n" + report + "\n")
    print()
    print(md)
    if missing:
        print(f"\nnot in this clone: {' '.join(missing)}")
    print()
    print(report)
    print(f"\nlogs: {out}")
    return 0


def modules_path(nginx: str) -> str:
    try:
        answer = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    except OSError:
        return "/usr/lib/nginx/modules"
    m = re.search(r"--modules-path=(\S+)", answer)
    return m.group(1) if m else "/usr/lib/nginx/modules"


def module_skip(r: Result) -> bool:
    return r.status == "skipped" and bool(re.fullmatch(r"no .* available", r.skip_all or ""))


def blockers_report(files, results, refused, causes) -> str:
    """Per refused directive: the files whose config has it, and the tests of those files;
    then the failed tests of the files webserv did start, by cause."""
    by_message: dict[str, list[tuple[str, int, bool]]] = {}
    for name in files:
        r = results.get((name, "webserv"))
        if not r or module_skip(r):
            continue
        messages = sorted({normalise(m) for m in refused.get(name, [])})
        for m in messages:
            by_message.setdefault(m, []).append((name, r.planned or 0, len(messages) == 1))
    lines = (
        ["| webserv refuses the config with | files | their tests | the only refusal in |"]
        + ["|---|---|---|---|"]
        if by_message
        else []
    )
    ranked = sorted(by_message.items(), key=lambda kv: (-sum(p for _, p, _ in kv[1]), kv[0]))
    for message, hits in ranked:
        alone = [f"{n} ({p})" for n, p, only in hits if only]
        lines.append(
            f"| `{message}` | {len(hits)} | {sum(p for _, p, _ in hits)} | "
            + (", ".join(alone) or "—")
            + " |"
        )
    if causes:
        lines += ["", "| file that started | tests by cause |", "|---|---|"]
        for name, items in causes.items():
            counts: dict[str, int] = {}
            for _, c in items:
                counts[c] = counts.get(c, 0) + 1
            lines.append(f"| {name} | " + ", ".join(f"{c}: {n}" for c, n in counts.items()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
