"""Shared fixtures: every test runs in its own folder with no NEWSLETTER_* settings leaking in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "dumps"
SAMPLE_000 = SAMPLES / "000_12e940f9937f08e2.txt"
SAMPLE_001 = SAMPLES / "001_7885534340268e4e.txt"
# The moment the sample dumps are taken to have been received (their mtime in tests).
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in a temp folder; no NEWSLETTER_* variable or .env of the developer applies."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    # Commands run as subprocesses import this checkout, not whichever one the
    # interpreter has installed (a worktree shares its .venv with the main checkout).
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    for name in list(os.environ):  # settings a test put straight into os.environ
        if name.startswith("NEWSLETTER_"):
            del os.environ[name]


@pytest.fixture
def project(isolated: Path) -> Path:
    """A working folder laid out like the repository: templates, subscribers, sample dumps
    (with a fixed modification time so page years are deterministic)."""
    shutil.copytree(REPO / "templates", isolated / "templates")
    shutil.copy(REPO / "subscribers.example.yaml", isolated / "subscribers.yaml")
    dumps = isolated / "dumps"
    dumps.mkdir()
    stamp = RECEIVED.timestamp()
    for sample in (SAMPLE_000, SAMPLE_001):
        target = dumps / sample.name
        shutil.copy(sample, target)
        os.utime(target, (stamp, stamp))
    return isolated
