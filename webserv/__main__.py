"""Command line: `webserv [-t | -T | -s SIGNAL] [-p PREFIX] [CONF]`, as nginx's."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import __version__
from .config import ConfigError, load

DEFAULT_CONF = "config/default.conf"
SIGNALS = {
    "stop": signal.SIGTERM,
    "quit": signal.SIGQUIT,
    "reload": signal.SIGHUP,
    "reopen": signal.SIGUSR1,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webserv", description="HTTP/1.1 origin server")
    parser.add_argument(
        "conf", nargs="?", default=DEFAULT_CONF, help=f"config file (default {DEFAULT_CONF})"
    )
    parser.add_argument("-c", dest="conf_opt", metavar="CONF", help="config file (as nginx -c)")
    parser.add_argument("-t", action="store_true", help="test the configuration and exit")
    parser.add_argument("-T", action="store_true", help="test, print the configuration and exit")
    parser.add_argument(
        "-p", dest="prefix", help="prefix for relative paths (default: the config's folder)"
    )
    parser.add_argument(
        "-s", dest="signal", choices=sorted(SIGNALS), help="signal a running server"
    )
    parser.add_argument("-v", action="version", version=f"webserv/{__version__}")
    parser.add_argument(
        "--directives", action="store_true", help="print the directive reference (Markdown)"
    )
    args = parser.parse_args(argv)
    conf = args.conf_opt or args.conf
    if args.directives:
        from .config.reference import markdown

        print(markdown())
        return 0
    try:
        config = load(conf, args.prefix)
    except ConfigError as exc:
        print(f"webserv: [emerg] {exc}", file=sys.stderr)
        if args.t or args.T:
            print(f"webserv: configuration file {conf} test failed", file=sys.stderr)
        return 1
    if args.t or args.T:
        for warning in config.warnings:
            print(f"webserv: [warn] {warning}", file=sys.stderr)
        print(f"webserv: the configuration file {conf} syntax is ok", file=sys.stderr)
        print(f"webserv: configuration file {conf} test is successful", file=sys.stderr)
        if args.T:
            _dump(config.path)
        return 0
    if args.signal:
        return _send_signal(config.pid, args.signal)
    return _run(config, conf, args.prefix)


def _run(config, path: str, prefix: str | None) -> int:
    from .server import run

    try:
        return run(config, path, prefix)
    except KeyboardInterrupt:
        return 0


def _send_signal(pid_path: str | None, name: str) -> int:
    if not pid_path:
        print('webserv: [error] no "pid" directive in the configuration', file=sys.stderr)
        return 1
    try:
        with open(pid_path) as f:
            pid = int(f.read().strip())
        os.kill(pid, SIGNALS[name])
    except (OSError, ValueError) as exc:
        print(f'webserv: [error] cannot signal the process in "{pid_path}": {exc}', file=sys.stderr)
        return 1
    return 0


def _dump(path: str) -> None:
    print(f"# configuration file {path}:")
    with open(path, encoding="utf-8") as f:
        print(f.read())


if __name__ == "__main__":
    sys.exit(main())
