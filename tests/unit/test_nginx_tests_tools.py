"""The pure pieces of tools/nginx-tests/ (no nginx-tests clone, perl or nginx needed):
the TAP reader, the `-V` answer as lib/Test/Nginx.pm reads it, the wrapper's command line
and its config adaptation, the nginx shim's `-V` filter."""

from __future__ import annotations

import importlib.util
import os
import re
import sys

import pytest

TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "nginx-tests")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"nginx_tests_{name}", os.path.join(TOOLS, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


wrapper = _load("wrapper")
run = _load("run")
tap = _load("tap")
shim = _load("nginx_shim")


# --- TAP ------------------------------------------------------------------------------------


def test_tap_counts_strictly():
    result = tap.parse_tap(
        "1..7\n"
        "ok 1 - trace\n"
        "not ok 2 - connect # TODO not yet\n"
        "#   Failed (TODO) test 'connect'\n"
        "ok 3 - connect uri # TODO not yet\n"
        "# >> GET / HTTP/1.0\\x0a\n"
        "ok 4 # skip no ipv6\n"
        "not ok 8 # TODO & SKIP overflow\n"
        "not ok 5 - body\n"
        "ok 6 - no alerts\n"
        "ok 7 - no sanitizer errors\n"
    )
    assert result.planned == 7
    assert result.ran == 8
    assert result.passed == 4  # 1, 3 (a TODO that passes), 6, 7
    assert result.skipped == 2
    assert result.failed == ["connect", "body"]
    assert result.todo_failed == 1
    assert result.skip_all is None


def test_tap_skip_all_and_bail_out():
    assert tap.parse_tap("1..0 # SKIP no proxy available\n").skip_all == "no proxy available"
    assert tap.parse_tap("1..0 # skip not win32\n").skip_all == "not win32"
    assert tap.parse_tap("Bail out!  no nginx binary found\n").bail_out == "no nginx binary found"
    assert tap.parse_tap("# just a comment\n").planned is None


def test_planned_in_source_adds_the_two_closing_checks():
    assert tap.planned_in_source("my $t = Test::Nginx->new()->plan(14)\n") == 16
    assert tap.planned_in_source("$t->run()->plan(21);\n") == 23
    assert tap.planned_in_source("no plan here") is None


def test_failures_are_sorted_by_what_the_log_shows():
    log = (
        "# >> GET / HTTP/1.0\\x0a\n"
        "# >> \\x0a\n"
        "# << HTTP/1.1 400 Bad Request\\x0d\\x0a\n"
        "not ok 1 - lf\n"
        "# >> GET / HTTP/1.0\\x0d\\x0a\n"
        "not ok 2 - silent\n"
        "# >> GET / HTTP/1.0\\x0d\\x0a\n"
        "# << HTTP/1.1 404 Not Found\\x0d\\x0a\n"
        "not ok 3 - other\n"
        "not ok 4 - todo # TODO later\n"
        "ok 5 - fine\n"
        "# >> GET /%00 HTTP/1.0\\x0a\n"
        "# << HTTP/1.1 400 Bad Request\\x0d\\x0a\n"
        "ok 6 - bad uri\n"
    )
    assert tap.failures(log) == [
        ("lf", "400 to a bare-LF request"),
        ("silent", "no answer"),
        ("other", "other answer"),
        ("bad uri", "passed on 400 to a bare-LF request"),
    ]


# --- -V, as Test::Nginx's has() reads it ----------------------------------------------------

# lib/Test/Nginx.pm's %regex for the modules the chosen files ask for (Perl and Python agree
# on these), and its fallback: an unknown name is itself the pattern
HAS = {
    "http": r"(?s)^(?!.*--without-http(?!\S))",
    "rewrite": r"(?s)^(?!.*--without-http_rewrite_module)",
    "autoindex": r"(?s)^(?!.*--without-http_autoindex_module)",
    "charset": r"(?s)^(?!.*--without-http_charset_module)",
    "proxy": r"(?s)^(?!.*--without-http_proxy_module)",
    "cache": r"(?s)^(?!.*--without-http-cache)",
    "gzip": r"(?s)^(?!.*--without-http_gzip_module)",
    "limit_req": r"(?s)^(?!.*--without-http_limit_req_module)",
    "access": r"(?s)^(?!.*--without-http_access_module)",
    "ssi": r"(?s)^(?!.*--without-http_ssi_module)",
    "mail": r"--with-mail((?!\S)|=dynamic)",
    "stream": r"--with-stream((?!\S)|=dynamic)",
    "dav": "dav",
    "flv": "--with-http_flv_module",
}


def has(answer: str, feature: str) -> bool:
    return re.search(HAS[feature], answer) is not None


def test_version_answer_lists_what_the_table_has():
    answer = wrapper.version_answer("0.1.0", {"return", "autoindex", "root", "index"}, "1.22.1")
    assert answer.startswith("nginx version: nginx/1.22.1 (webserv/0.1.0)\n")
    assert re.search(r"nginx version: nginx/([0-9.]+)", answer).group(1) == "1.22.1"
    present = {f for f in HAS if has(answer, f)}
    assert present == {"http", "rewrite", "autoindex"}


def test_version_answer_claims_a_module_once_its_directive_exists():
    base = {"return", "autoindex"}
    assert not has(wrapper.version_answer("0", base, "1.22.1"), "dav")
    assert has(wrapper.version_answer("0", base | {"dav_methods"}, "1.22.1"), "dav")
    assert has(wrapper.version_answer("0", base | {"charset"}, "1.22.1"), "charset")
    assert not has(wrapper.version_answer("0", base - {"return"}, "1.22.1"), "rewrite")


def test_version_answer_from_webservs_real_table():
    from webserv import __version__
    from webserv.config.directives import DIRECTIVES

    answer = wrapper.version_answer(__version__, set(DIRECTIVES), "1.22.1")
    assert has(answer, "http") and has(answer, "autoindex")
    assert not has(answer, "proxy")  # webserv never proxies


# --- the wrapper's command line -----------------------------------------------------------


def test_parse_args_as_test_nginx_calls_it():
    argv = ["-p", "/tmp/t/", "-c", "nginx.conf", "-e", "error.log", "-g", "pid /tmp/t/p; "]
    args = wrapper.parse_args(argv)
    assert (args.prefix, args.conf, args.error_log) == ("/tmp/t/", "nginx.conf", "error.log")
    assert args.globals == "pid /tmp/t/p; "
    assert args.version is None and args.test is None


def test_parse_args_groups_glued_values_and_repeats():
    args = wrapper.parse_args(["-tq", "-p/tmp/x", "-gdaemon off;", "-g", "pid p;"])
    assert args.test == "-t" and args.quiet
    assert args.prefix == "/tmp/x"
    assert args.globals == "daemon off;pid p;"
    assert wrapper.parse_args(["-V"]).version == "-V"
    assert wrapper.parse_args(["-v", "-V"]).version == "-V"
    assert wrapper.parse_args(["-s", "quit"]).signal == "quit"
    for bad in (["-x"], ["-c"], ["conf"]):
        with pytest.raises(wrapper.UsageError):
            wrapper.parse_args(bad)


def test_paths_resolve_against_the_prefix():
    assert wrapper.resolve("/tmp/t/", "nginx.conf") == "/tmp/t/nginx.conf"
    assert wrapper.resolve("/tmp/t", "/etc/x.conf") == "/etc/x.conf"


def test_webserv_command():
    args = wrapper.parse_args(["-p", "/t", "-c", "nginx.conf", "-t"])
    assert wrapper.webserv_command("py", args, "/t", "/w/a.conf") == [
        "py", "-m", "webserv", "-p", "/t", "-c", "/w/a.conf", "-t",
    ]  # fmt: skip


# --- the config webserv reads ---------------------------------------------------------------

CONF = """
pid /t/nginx.pid;
error_log /t/error.log debug;

daemon off;

events {
}

http {
    root /t;
    client_body_temp_path /t/client_body_temp;
    include mime.types;
    include /etc/abs.conf;

    server {
        listen 127.0.0.1:8080;
        location / { return 200 "a;b{c}"; }
        location /v { return 200 ${host}x; }
    }
}
"""


def test_adapt_config_drops_plumbing_and_keeps_lines():
    out, notes = wrapper.adapt_config(CONF, "/t")
    assert out.count("\n") == CONF.count("\n")  # every line where it was: errors name it
    assert "daemon" not in out and "temp_path" not in out
    assert 'include "/t/mime.types";' in out
    assert "include /etc/abs.conf;" in out
    assert 'return 200 "a;b{c}";' in out and "${host}x" in out
    assert out.splitlines()[2] == "error_log /t/error.log debug;"
    assert len(notes) == 3


def test_adapt_config_appends_globals_and_leaves_daemon_on():
    out, _ = wrapper.adapt_config("daemon on;\nevents {}\n", "/t", "pid /t/p; ")
    assert out == "daemon on;\nevents {}\npid /t/p; \n"


def test_adapt_config_leaves_a_broken_config_to_webserv():
    text = "http {\n daemon off;\n"
    assert wrapper.adapt_config(text, "/t") == (text, [])


def test_blank_statement_takes_the_whole_block():
    text = "http {\n    if ($a) {\n        return 200;\n    }\n    root /x;\n}\n"
    out, ok = run.blank_statement(text, 2)
    assert ok
    assert out.count("\n") == text.count("\n")
    assert "if" not in out and "return" not in out and "root /x;" in out
    assert run.blank_statement(text, 99) == (text, False)


def test_refusal_messages_lose_their_paths():
    assert run.normalise('open() "/tmp/x/y" failed') == 'open() "PATH" failed'


# --- the nginx shim ----------------------------------------------------------------------------


def test_shim_drops_dynamic_modules_that_are_not_installed():
    answer = (
        "configure arguments: --modules-path=/m --with-http_dav_module"
        " --with-http_perl_module=dynamic --with-stream=dynamic --with-mail=dynamic\n"
    )
    assert shim.modules_path(answer) == "/m"
    out = shim.filter_dynamic(answer, {"ngx_stream_module.so"})
    assert out == (
        "configure arguments: --modules-path=/m --with-http_dav_module --with-stream=dynamic\n"
    )
