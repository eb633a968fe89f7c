"""Tests for newsletter.compose: the worker pool, with real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.cli import main
from tests.factories import write_subscribers

SUBSCRIBERS = 3000  # enough for a pool of workers to take a few seconds


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == parent:
                found.append(int(entry.name))
    return found


def _alive_in(folder: Path) -> list[int]:
    """Live processes (zombies are dead) of `python -m newsletter` working in `folder`
    (a forked worker has its parent's command line and folder), but this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if cwd == folder and b"newsletter" in cmdline and stat is not None and stat[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(folder: Path, workers: list[int]) -> list[int]:
    """The workers not yet dead (gone or zombies), and any other process left in `folder`
    (a dying worker leaves its folder before it becomes a zombie: both are checked)."""
    dying = [pid for pid in workers if (stat := _stat(pid)) is not None and stat[0] != "Z"]
    return sorted(set(dying) | set(_alive_in(folder)))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_when_the_dry_run_is_killed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_subscribers(project / "subscribers.yaml", SUBSCRIBERS)
    assert main(["ingest", *sorted(str(p) for p in (project / "dumps").iterdir())]) == 0
    monkeypatch.setenv("NEWSLETTER_COMPOSE_WORKERS", "2")
    command = [sys.executable, "-m", "newsletter", "send", "--dry-run"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(parent.pid)) < 2:
            assert parent.poll() is None, "the dry run ended before its workers started"
            assert time.monotonic() < deadline, "no compose workers within 60 s"
            time.sleep(0.005)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while (left := _alive(project, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Before: both workers stayed alive (re-parented to PID 1) for minutes.
        assert left == [], f"compose workers outlived the killed parent: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in _alive_in(project):  # never leave a stray process behind a failed test
            os.kill(pid, signal.SIGKILL)
    # Killing it lost nothing: a second run writes every message.
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    assert f"{SUBSCRIBERS} message(s) in" in again.stdout
    assert len(list((project / "outbox").glob("*/*.eml"))) == SUBSCRIBERS
