"""Helpers for the config tests: write config files, load them, run `python -m webserv`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import REPO

from webserv.config import ConfigError, load
from webserv.config.model import Config

CLI_TIMEOUT = 60.0  # a safety net for a hung process, never an assertion about speed


class ConfDir:
    """A folder holding a config and its includes; text is dedented before it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, name: str, text: str | bytes) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(textwrap.dedent(text).lstrip("\n"))
        return target

    def load(self, text: str, name: str = "webserv.conf") -> Config:
        return load(str(self.write(name, text)))

    def error(self, text: str, name: str = "webserv.conf") -> ConfigError:
        path = self.write(name, text)
        with pytest.raises(ConfigError) as info:
            load(str(path))
        return info.value

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """`python -m webserv ARGS` from this folder; stdout and stderr as text."""
        return run_webserv(*args, cwd=self.path, timeout=timeout)

    def check_error(self, text: str, line: int, reason: str, file: str | None = None) -> None:
        """The config fails with REASON at FILE:LINE, both when loaded and under `-t`."""
        conf = self.write("webserv.conf", text)
        where = self.path / file if file else conf
        with pytest.raises(ConfigError) as info:
            load(str(conf))
        err = info.value
        assert (err.file, err.line, err.message) == (str(where), line, reason)
        result = self.cli("-t", str(conf))
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"webserv: [emerg] {reason} in {where}:{line}",
            f"webserv: configuration file {conf} test failed",
        ]
        assert result.stdout == ""


def run_webserv(
    *args: str, cwd: Path, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "webserv", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def conf(tmp_path: Path) -> ConfDir:
    return ConfDir(tmp_path)
