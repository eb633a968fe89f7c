"""`--port` of `serve` and `preview --serve`: 1 to 65535, or 0 for a free port; anything
else is refused by the command line before anything listens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.cli import build_parser
from newsletter.errors import ConfigError
from newsletter.store import Store
from newsletter.web import bind
from tests.web_server import serving_process


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "-8000", "80.5", "http", ""])
@pytest.mark.parametrize("command", [["serve"], ["preview", "--serve"]])
def test_ports_outside_the_range_are_refused(
    command: list[str], port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, f"--port={port}"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument --port: {port!r} is not a port; use 1 to 65535" in error


@pytest.mark.parametrize("port", ["1", "8000", "65535", "0"])
def test_ports_in_the_range_are_taken(port: str) -> None:
    assert build_parser().parse_args(["serve", "--port", port]).port == int(port)


def test_serve_port_99999_exits_without_listening(project: Path) -> None:
    """Before: it listened on 34463 (99999 modulo 65536)."""
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "serve", "--port", "99999"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Serving on" not in result.stdout
    assert "'99999' is not a port" in result.stderr


def test_port_zero_picks_a_free_port(project: Path) -> None:
    with Store(project / "newsletter.db"):  # serve reads a database that exists
        pass
    with serving_process(project, {}) as (url, _pid):
        port = int(url.rsplit(":", 1)[1])
    assert 1 <= port <= 65535


def test_bind_refuses_ports_the_os_would_wrap() -> None:
    with pytest.raises(ConfigError, match="port 99999: use 1 to 65535"):
        bind("127.0.0.1", 99999)
