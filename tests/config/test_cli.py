"""The command line: `-t`, `-T`, `--directives`, and refusing to start on a bad config or address."""

from __future__ import annotations

import socket

import pytest
from support import free_port

from webserv.config.directives import DIRECTIVES

GOOD = "events {\n}\nhttp {\n    server {\n        listen 127.0.0.1:%d;\n    }\n}\n"


def test_t_on_a_good_config_succeeds(conf):
    conf.write("webserv.conf", GOOD % free_port())
    result = conf.cli("-t", "webserv.conf")  # the name as given is echoed back
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "webserv: the configuration file webserv.conf syntax is ok",
        "webserv: configuration file webserv.conf test is successful",
    ]
    assert result.stdout == ""


def test_c_option_names_the_config(conf):
    path = conf.write("etc/main.conf", GOOD % free_port())
    result = conf.cli("-t", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.splitlines()[-1] == f"webserv: configuration file {path} test is successful"
    )


def test_capital_t_also_prints_the_config(conf):
    text = GOOD % free_port()
    path = conf.write("webserv.conf", text)
    result = conf.cli("-T", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"# configuration file {path}:\n{text}\n"
    assert (
        result.stderr.splitlines()[-1] == f"webserv: configuration file {path} test is successful"
    )


def test_t_on_a_bad_config_fails(conf):
    conf.write(
        "webserv.conf",
        "http {\n    server {\n        listen 8080;\n        colour blue;\n    }\n}\n",
    )
    result = conf.cli("-t", "webserv.conf")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'webserv: [emerg] unknown directive "colour" in {conf.path / "webserv.conf"}:4',
        "webserv: configuration file webserv.conf test failed",
    ]


def test_t_does_not_bind(conf):
    """-t checks the file only: an address in use is not its business (as nginx -t)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        conf.write("webserv.conf", GOOD % taken.getsockname()[1])
        result = conf.cli("-t", "webserv.conf")
    assert result.returncode == 0, result.stderr


def test_a_bad_config_never_starts_the_server(conf):
    port = free_port()
    path = conf.write(
        "webserv.conf",
        (
            f"pid {conf.path}/webserv.pid;\n"
            "http {\n"
            f"    server {{\n        listen 127.0.0.1:{port};\n    }}\n"
            "    server {\n        listen 127.0.0.1:{port};\n        client_max_body_size lots;\n    }\n"
            "}\n"
        ).replace("{port}", str(port)),
    )
    result = conf.cli(str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'webserv: [emerg] invalid size "lots" in "client_max_body_size" directive in {path}:8'
    ]
    assert result.stdout == ""
    assert not (conf.path / "webserv.pid").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def bind_failure(conf, address: str, error_log: str = ""):
    path = conf.write(
        "webserv.conf",
        (
            f"{error_log}pid {conf.path}/webserv.pid;\n"
            f"http {{\n    server {{\n        listen {address};\n    }}\n}}\n"
        ),
    )
    result = conf.cli(str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert not (conf.path / "webserv.pid").exists()
    return result


def test_address_in_use_is_a_one_line_error(conf):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bind_failure(
            conf, f"127.0.0.1:{port}", error_log=f"error_log {conf.path}/error.log;\n"
        )
    message = f"bind() to 127.0.0.1:{port} failed (98: Address already in use)"
    assert result.stderr.splitlines() == [f"webserv: [emerg] {message}"]
    assert result.stdout == ""
    assert message in (conf.path / "error.log").read_text()


def test_bind_error_is_printed_once_with_the_default_error_log(conf):
    """The default error_log is stderr: the reason must still be said once, not twice."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bind_failure(conf, f"127.0.0.1:{port}")
    message = f"bind() to 127.0.0.1:{port} failed (98: Address already in use)"
    lines = (result.stderr + result.stdout).splitlines()
    assert [line for line in lines if "bind()" in line] == [f"webserv: [emerg] {message}"]


def test_non_local_address_cannot_be_bound(conf):
    port = free_port()
    result = bind_failure(
        conf, f"192.0.2.1:{port}", error_log=f"error_log {conf.path}/error.log;\n"
    )
    assert result.stderr.splitlines() == [
        f"webserv: [emerg] bind() to 192.0.2.1:{port} failed (99: Cannot assign requested address)"
    ]


def test_second_address_failing_stops_the_first_too(conf):
    free = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = conf.write(
            "webserv.conf",
            (
                f"error_log {conf.path}/error.log;\n"
                f"http {{\n    server {{\n        listen 127.0.0.1:{free};\n"
                f"        listen 127.0.0.1:{port};\n    }}\n}}\n"
            ),
        )
        result = conf.cli(str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"webserv: [emerg] bind() to 127.0.0.1:{port} failed (98: Address already in use)"
    ]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free), timeout=5).close()


def test_directives_prints_the_reference_table(conf):
    result = conf.cli("--directives")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["| directive | default | contexts | meaning |", "|---|---|---|---|"]
    rows = lines[2:]
    assert len(rows) == len(DIRECTIVES)
    assert [row.split("`")[1].split()[0].rstrip(";") for row in rows] == list(DIRECTIVES)
    assert (
        "| `root PATH;` | html | http, server, location | Files are looked up at PATH + URI. "
        "A relative PATH is relative to the config's folder. |"
    ) in rows
    assert (
        "| `listen [HOST:]PORT [default_server] [ssl] [proxy_protocol] [reuseport] [deferred];` "
        "| *:80 | server | " in "\n".join(rows)
    )
    documented = {row.split("`")[1].split()[0].rstrip(";") for row in rows}
    assert documented >= {
        "worker_processes",
        "error_log",
        "pid",
        "events",
        "worker_connections",
        "http",
        "server",
        "listen",
        "server_name",
        "location",
        "root",
        "alias",
        "index",
        "autoindex",
        "error_page",
        "client_max_body_size",
        "allow_methods",
        "keepalive_timeout",
        "client_header_timeout",
        "client_body_timeout",
        "send_timeout",
        "access_log",
        "log_format",
        "types",
        "default_type",
        "return",
    }  # every directive issue 2 names


def test_directives_needs_no_config(conf):
    result = conf.cli("--directives", "/does/not/exist.conf")
    assert result.returncode == 0
    assert result.stdout.startswith("| directive |")


def test_t_prints_warnings_like_nginx(conf):
    conf.write(
        "webserv.conf",
        "http {\n    server { listen 8001; server_name dup.test; }\n"
        "    server { listen 8001; server_name dup.test; }\n}\n",
    )
    result = conf.cli("-t", "webserv.conf")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        'webserv: [warn] conflicting server name "dup.test" on *:8001, ignored',
        "webserv: the configuration file webserv.conf syntax is ok",
        "webserv: configuration file webserv.conf test is successful",
    ]
