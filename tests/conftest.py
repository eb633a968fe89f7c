"""Shared fixtures: every test runs in its own folder with no NEWSLETTER_* settings leaking in."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "dumps"
SAMPLE_000 = SAMPLES / "000_12e940f9937f08e2.txt"
SAMPLE_001 = SAMPLES / "001_7885534340268e4e.txt"
# The moment the sample dumps are taken to have been received (their mtime in tests).
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in a temp folder; no NEWSLETTER_* variable or .env of the developer applies.
    Fetching is off (an empty source URL): no test contacts huggingface.co; a test that
    fetches points NEWSLETTER_SOURCE_URL at a server on 127.0.0.1."""
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSLETTER_SOURCE_URL", "")
    # `python -m newsletter` subprocesses run this checkout's code, whichever checkout the
    # virtual environment was installed from.
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
def project(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder laid out like the repository: an editable copy of the templates
    (NEWSLETTER_TEMPLATES_DIR=templates), subscribers, sample dumps (with a fixed
    modification time so page years are deterministic)."""
    shutil.copytree(REPO / "newsletter" / "templates", isolated / "templates")
    monkeypatch.setenv("NEWSLETTER_TEMPLATES_DIR", "templates")
    shutil.copy(REPO / "subscribers.example.yaml", isolated / "subscribers.yaml")
    dumps = isolated / "dumps"
    dumps.mkdir()
    stamp = RECEIVED.timestamp()
    for sample in (SAMPLE_000, SAMPLE_001):
        target = dumps / sample.name
        shutil.copy(sample, target)
        os.utime(target, (stamp, stamp))
    return isolated


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real, small filesystem (a 4 MB tmpfs) to fill up; mounting needs root, so the
    test is skipped, saying why, where it is not permitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as exc:
        pytest.skip(f"cannot run mount to make a small disk: {exc}")
    if mounted.returncode != 0:
        pytest.skip(
            "mounting a tmpfs is not permitted here (run the tests as root to fill a real "
            f"disk): {mounted.stderr.strip()}"
        )
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# The system browser, headless, and quiet on a closed network (no updates, no sync).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system Chromium driven by Playwright (one per test module)."""
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing; install it with 'apt-get install chromium' "
            "(make test does this when it is missing)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
