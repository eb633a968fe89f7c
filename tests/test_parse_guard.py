"""The service parses each dump in a child process bounded in time and size: a file that
would hold a parser for minutes is rejected after NEWSLETTER_PARSE_TIMEOUT, and a stop
signal during a parse is answered at once (the file stays for the next start)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.dumps import decode_dump
from newsletter.errors import DumpError
from newsletter.parse_guard import GuardedParser, ParseStopped
from tests.conftest import SAMPLE_000, SAMPLE_001

RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
# 40,000 nested elements: the HTML parser needs many seconds for this (real pages nest ~30).
SLOW = (
    b"<!DOCTYPE html><html><body>"
    + b"<div>" * 40_000
    + b"<h3><a href='/papers/2501.00001'>A Title Nested Very Deep</a></h3>"
    + b"</div>" * 40_000
    + b"</body></html>"
)


@pytest.mark.parametrize("sample", [SAMPLE_000, SAMPLE_001], ids=["40KB", "100KB"])
def test_a_dump_parses_the_same_in_the_child(sample: Path) -> None:
    data = sample.read_bytes()  # more than a pipe holds, for the larger one
    parsed = GuardedParser(timeout=60, max_bytes=10**8).parse(
        data, name="sample.txt", received_at=RECEIVED
    )
    assert parsed == decode_dump(data, name="sample.txt", received_at=RECEIVED)


def test_a_non_dump_is_the_same_clear_error_as_in_process() -> None:
    with pytest.raises(DumpError, match=r"^notes\.md: not a dump") as caught:
        GuardedParser(timeout=60, max_bytes=10**8).parse(
            b"# Notes\n\nNothing here.\n", name="notes.md", received_at=RECEIVED
        )
    assert caught.value.path == "notes.md"


def test_a_parse_past_the_timeout_is_stopped_and_refused() -> None:
    started = time.monotonic()
    with pytest.raises(DumpError, match=r"^slow\.html: not ingested: parsing took longer than 2 s"):
        GuardedParser(timeout=2, max_bytes=10**8).parse(
            SLOW, name="slow.html", received_at=RECEIVED
        )
    assert time.monotonic() - started < 20  # bounded by the timeout, not by the parser


def test_a_file_over_the_size_bound_is_refused_unread() -> None:
    with pytest.raises(DumpError, match=r"NEWSLETTER_MAX_DUMP_MB"):
        GuardedParser(timeout=60, max_bytes=1000).parse(
            b"x" * 1001, name="big.txt", received_at=RECEIVED
        )


def test_stop_abandons_a_parse_in_progress() -> None:
    parser = GuardedParser(timeout=600, max_bytes=10**8)
    threading.Timer(1.0, parser.stop).start()
    started = time.monotonic()
    with pytest.raises(ParseStopped):
        parser.parse(SLOW, name="slow.html", received_at=RECEIVED)
    assert time.monotonic() - started < 20


def _service(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_SOURCE_URL="",
        NEWSLETTER_INTAKE_INTERVAL="0.2",
        NEWSLETTER_SETTLE_SECONDS="0",
        NEWSLETTER_TIMEZONE="UTC",
        NEWSLETTER_SEND_TIME="23:59:59",
        **extra,
    )
    (project / "inbox").mkdir(exist_ok=True)
    return env


def test_the_service_rejects_a_slow_file_and_takes_the_next(project: Path) -> None:
    env = _service(project, NEWSLETTER_PARSE_TIMEOUT="2")
    (project / "inbox" / "slow.html").write_bytes(SLOW)
    shutil.copy(SAMPLE_000, project / "inbox" / "good.txt")
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "run", "--once", "--dry-run"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (project / "inbox" / "processed" / "good.txt").exists()
    reason = project / "inbox" / "rejected" / "slow.html.error.txt"
    assert "parsing took longer than 2 s" in reason.read_text("utf-8")
    assert "Traceback" not in result.stderr


def test_sigterm_during_a_parse_stops_the_service_at_once(project: Path) -> None:
    env = _service(project, NEWSLETTER_PARSE_TIMEOUT="600")
    (project / "inbox" / "slow.html").write_bytes(SLOW * 3)
    service = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "run", "--dry-run"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(4)  # started, and parsing the slow file
        assert service.poll() is None
        stopping = time.monotonic()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
        assert time.monotonic() - stopping < 15
        assert service.returncode == 0
        # Not rejected: it is taken again on the next start.
        assert (project / "inbox" / "slow.html").exists()
    finally:
        if service.poll() is None:
            service.kill()
