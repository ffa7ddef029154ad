"""access_log's buffer=/gzip=/flush=, paths with variables, open_log_file_cache and
error_log's lines per level: nginx's syntax and errors (file:line), what load builds.
Serving: tests/http/test_access_log_gzip.py, tests/http/test_error_log_levels.py."""

from __future__ import annotations

import pytest

from webserv.error_log import LEVELS
from webserv.error_log import error_log as process_error_log
from webserv.logs import LogFileCache, VariableAccessLog


def wrap(body: str) -> str:
    """BODY from line 4 of a config, inside a location."""
    return f"http {{\n    server {{\n        location / {{\n{body}\n        }}\n    }}\n}}\n"


ERRORS = {
    "buffer size": ("access_log a.log combined buffer=big;", 'invalid buffer size "big"'),
    "buffer zero": ("access_log a.log combined buffer=0;", 'invalid buffer size "0"'),
    "flush time": ("access_log a.log combined buffer=4k flush=soon;", 'invalid flush time "soon"'),
    "gzip level 0": ("access_log a.log combined gzip=0;", 'invalid compression level "0"'),
    "gzip level 10": ("access_log a.log combined gzip=10;", 'invalid compression level "10"'),
    "gzip level word": ("access_log a.log combined gzip=fast;", 'invalid compression level "fast"'),
    "unknown parameter": ("access_log a.log combined size=1;", 'invalid parameter "size=1"'),
    "second format": ("access_log a.log combined combined;", 'invalid parameter "combined"'),
    "buffered variable path": (
        "access_log logs/$host.log combined buffer=4k;",
        "buffered logs cannot have variables in name",
    ),
    "gzip variable path": (
        "access_log logs/$host.log combined gzip;",
        "buffered logs cannot have variables in name",
    ),
    "unknown variable in path": ("access_log logs/$nosuch.log;", 'unknown "nosuch" variable'),
    "syslog": (
        "access_log syslog:server=127.0.0.1 combined buffer=8k;",
        "logs to syslog cannot be buffered",
    ),
    "cache no max": (
        "open_log_file_cache inactive=10s;",
        '"open_log_file_cache" must have "max" parameter',
    ),
    "cache bad max": (
        "open_log_file_cache max=0;",
        'invalid "open_log_file_cache" parameter "max=0"',
    ),
    "cache bad key": (
        "open_log_file_cache max=3 size=2;",
        'invalid "open_log_file_cache" parameter "size=2"',
    ),
    "cache bad time": (
        "open_log_file_cache max=3 valid=often;",
        'invalid "open_log_file_cache" parameter "valid=often"',
    ),
    "cache no argument": (
        "open_log_file_cache;",
        'invalid number of arguments in "open_log_file_cache" directive',
    ),
    "error_log level": ("error_log e.log loud;", 'invalid log level "loud"'),
    "error_log syslog": (
        "error_log syslog:server=127.0.0.1,severity=loud;",
        'unknown syslog severity "loud"',
    ),
    "error_log memory": (
        "error_log memory:32m debug;",
        'webserv does not log to memory: "memory:32m"',
    ),
    "error_log three arguments": (
        "error_log e.log info x;",
        'invalid number of arguments in "error_log" directive',
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_config_errors(conf, case):
    text, reason = ERRORS[case]
    conf.check_error(wrap(text), 4, reason)


def test_conflicting_buffers_for_one_path(conf):
    conf.check_error(
        "http {\n    server {\n        access_log a.log combined buffer=4k;\n"
        "        location / {\n            access_log a.log combined buffer=8k;\n"
        "        }\n    }\n}\n",
        5,
        'access_log "a.log" already defined with conflicting parameters',
    )


def test_open_log_file_cache_not_in_main(conf):
    conf.check_error(
        "open_log_file_cache off;\nhttp { server { } }\n",
        1,
        '"open_log_file_cache" directive is not allowed here',
    )


def location(cfg, pattern="/"):
    server = cfg.servers[0]
    return next(loc for loc in server.prefixes if loc.pattern == pattern)


def test_buffer_gzip_flush_reach_the_file(conf):
    cfg = conf.load(wrap("access_log a.log combined gzip=5 buffer=8k flush=3s;"))
    (log,) = location(cfg).access_logs
    assert (log.file.limit, log.file.flush_after, log.file.gzip) == (8192, 3.0, 5)
    cfg = conf.load(wrap("access_log a.log combined gzip;"))
    (log,) = location(cfg).access_logs
    assert (log.file.limit, log.file.gzip) == (64 * 1024, 1)  # nginx: 64k, level 1
    cfg = conf.load(wrap("access_log a.log;"))
    (log,) = location(cfg).access_logs
    assert (log.file.limit, log.file.flush_after, log.file.gzip) == (64 * 1024, 1.0, None)
    cfg = conf.load(wrap("access_log a.log combined flush=100ms;"))  # nginx: no buffer
    assert location(cfg).access_logs[0].file.flush_after == 0.1


def test_a_line_with_a_buffer_sets_the_shared_file(conf):
    cfg = conf.load(
        "http {\n server {\n  access_log a.log;\n  location /b { access_log a.log combined "
        "buffer=4k; }\n }\n}\n"
    )
    assert location(cfg, "/b").access_logs[0].file.limit == 4096
    assert cfg.servers[0].fallback.access_logs[0].file is location(cfg, "/b").access_logs[0].file


def test_variable_path_and_its_cache(conf):
    cfg = conf.load(
        wrap(
            "open_log_file_cache max=3 inactive=20s min_uses=2 valid=1m;\n"
            "access_log logs/$arg_name.log;"
        )
    )
    (log,) = location(cfg).access_logs
    assert isinstance(log, VariableAccessLog)
    assert isinstance(log.cache, LogFileCache)
    assert (log.cache.max, log.cache.inactive, log.cache.min_uses, log.cache.valid) == (
        3,
        20.0,
        2,
        60.0,
    )
    assert log.cache in cfg.log_files  # closed and reopened with the others
    cfg = conf.load(wrap("access_log logs/$arg_name.log;"))
    assert location(cfg).access_logs[0].cache is None  # default: off, opened per line


def sinks(log):
    return [(threshold, file.path) for threshold, file in log.sinks]


def test_error_log_lines_per_level_and_inheritance(conf):
    cfg = conf.load(
        """
        error_log main.log info;
        error_log stderr;
        http {
            server {
                error_log s.log warn;
                location /own {
                    error_log l.log debug;
                    error_log l.log;
                }
                location /inherits { }
            }
            server {
                listen 8081;
                location /none { }
            }
        }
        """
    )
    d = str(conf.path)
    assert sinks(cfg.main_error_log) == [
        (LEVELS["info"], f"{d}/main.log"),
        (LEVELS["error"], "stderr"),
    ]
    assert cfg.error_log == (f"{d}/main.log", "info")
    own = location(cfg, "/own").error_log
    assert sinks(own) == [(LEVELS["debug"], f"{d}/l.log"), (LEVELS["error"], f"{d}/l.log")]
    assert own.sinks[0][1] is own.sinks[1][1]  # one file, two lines
    assert sinks(location(cfg, "/inherits").error_log) == [(LEVELS["warn"], f"{d}/s.log")]
    # no level of http set one: the process's own, main's lines of the current cycle
    none = next(loc for loc in cfg.servers[1].prefixes if loc.pattern == "/none")
    assert none.error_log is process_error_log
    paths = {f.path for f in cfg.log_files if hasattr(f, "threshold")}
    assert paths == {f"{d}/main.log", "stderr", f"{d}/s.log", f"{d}/l.log"}
