"""The service: a real `newsletter run` process against a real aiosmtpd server and a temp
inbox. Dumps are taken once, when complete; non-dumps are rejected with a reason; each
issue goes out exactly once, across restarts and SIGTERM; the send time is DST-correct."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.delivery import Outgoing, send_over_smtp
from newsletter.inbox import Inbox, is_candidate_name
from newsletter.pipeline import build_issue, deliver, ingest_file
from newsletter.scheduler import SendTrigger, latest_send, next_send, send_instant
from newsletter.scheduler import Service as SchedulerService
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers
from tests.conftest import SAMPLE_000, SAMPLE_001
from tests.factories import REAL_SEND_ENV, write_subscribers
from tests.smtp_server import RunningServer, smtp_server

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TIMEOUT = 30.0  # seconds any one wait in these tests may take


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# -- DST: the send instant and the trigger -----------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        (BERLIN, date(2026, 3, 28), "07:00", utc(2026, 3, 28, 6, 0)),  # CET, the day before
        (BERLIN, date(2026, 3, 29), "07:00", utc(2026, 3, 29, 5, 0)),  # CEST from 02:00
        (BERLIN, date(2026, 10, 25), "07:00", utc(2026, 10, 25, 6, 0)),  # CET again
        (BERLIN, date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 0)),  # skipped: at the jump
        (BERLIN, date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30)),  # twice: the first
        (NEW_YORK, date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7, 0)),
        (NEW_YORK, date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30)),
    ],
)
def test_send_instant_is_the_first_moment_the_clock_reads_the_time(
    zone: ZoneInfo, day: date, at: str, expected: datetime
) -> None:
    hour, minute = map(int, at.split(":"))
    instant = send_instant(day, datetime(2000, 1, 1, hour, minute).time(), zone)
    assert instant == expected
    assert instant.astimezone(zone).date() == day


def fires(trigger: SendTrigger, start: datetime, end: datetime) -> list[datetime]:
    """The fire times of a trigger, chained the way APScheduler chains them."""
    out: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return out


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("07:00", [utc(2026, 10, 24, 5), utc(2026, 10, 25, 6), utc(2026, 10, 26, 6)]),
        ("02:30", [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
    ],
)
def test_trigger_fires_once_on_the_day_clocks_go_back(at: str, expected: list[datetime]) -> None:
    hour, minute = map(int, at.split(":"))
    trigger = SendTrigger(datetime(2000, 1, 1, hour, minute).time(), BERLIN)
    got = fires(trigger, utc(2026, 10, 23, 22), utc(2026, 10, 26, 22))
    assert got == expected
    # Started between the two 02:30s of Oct 25: the day's send is behind it.
    if at == "02:30":
        assert trigger.get_next_fire_time(None, utc(2026, 10, 25, 1)) == utc(2026, 10, 26, 1, 30)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("07:00", [utc(2026, 3, 28, 6), utc(2026, 3, 29, 5), utc(2026, 3, 30, 5)]),
        ("02:30", [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]),
    ],
)
def test_trigger_fires_once_on_the_day_clocks_go_forward(at: str, expected: list[datetime]) -> None:
    hour, minute = map(int, at.split(":"))
    trigger = SendTrigger(datetime(2000, 1, 1, hour, minute).time(), BERLIN)
    assert fires(trigger, utc(2026, 3, 27, 23), utc(2026, 3, 30, 22)) == expected


def test_latest_and_next_send_follow_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(send_time="07:00", timezone="Europe/Berlin")
    assert latest_send(settings, utc(2026, 3, 29, 5, 0, 1)) == utc(2026, 3, 29, 5, 0)
    assert latest_send(settings, utc(2026, 3, 29, 4, 59)) == utc(2026, 3, 28, 6, 0)
    assert next_send(settings, utc(2026, 3, 28, 6, 0, 1)) == utc(2026, 3, 29, 5, 0)


def test_grace_window_decides_whether_a_missed_issue_goes_out(project: Path) -> None:
    settings = load_settings(send_time="07:00", timezone="Europe/Berlin", send_grace="3h")
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    service = SchedulerService(settings, dry_run=True)

    def at(day: int, hour: int, minute: int) -> str:
        now = datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)
        return asyncio.run(service.send_pass(now=now)).why

    assert at(23, 11, 0) == "first issue not due yet"  # 4 h late on a new database
    assert at(23, 7, 0) == "written"  # on time
    assert at(23, 9, 0) == "already delivered"  # a restart: the ledger says it went out
    assert at(24, 10, 1) == "missed"  # 3 h 1 min late
    assert at(25, 9, 59) == "written"  # 2 h 59 min late
    assert at(26, 6, 59) == "already delivered"  # before 07:00 the latest send is the 25th
    folders = sorted(p.name for p in settings.outbox_dir.iterdir())
    assert folders == ["2026-11-23", "2026-11-25"]


# -- the inbox ---------------------------------------------------------------------------


class Clocks:
    """A monotonic and a wall clock that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = time.time()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


def make_inbox(folder: Path, clocks: Clocks, settle: float = 5.0) -> Inbox:
    folder.mkdir(exist_ok=True)
    return Inbox(
        folder, settle_seconds=settle, clock=lambda: clocks.now, wall_clock=lambda: clocks.wall
    )


def write_at(path: Path, data: bytes, wall: float) -> None:
    path.write_bytes(data)
    os.utime(path, (wall, wall))


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("dump.txt", True),
        ("Daily Papers.md", True),
        ("papers", True),
        (".hidden.txt", False),
        ("dump.txt.part", False),
        ("dump.tmp", False),
        ("dump.txt~", False),
        ("Daily Papers.html.crdownload", False),
        ("notes.txt.error.txt", False),
    ],
)
def test_hidden_and_temporary_names_are_never_taken(name: str, taken: bool) -> None:
    assert is_candidate_name(name) is taken


def test_a_file_is_taken_only_once_it_has_settled(isolated: Path) -> None:
    clocks = Clocks()
    inbox = make_inbox(isolated / "inbox", clocks)
    path = inbox.folder / "today.txt"
    data = SAMPLE_000.read_bytes()
    write_at(path, data[:1000], clocks.wall)  # being written right now
    assert inbox.ready() == []
    clocks.advance(2)
    write_at(path, data[:5000], clocks.wall)  # grew: still arriving
    assert inbox.ready() == []
    clocks.advance(4)
    assert inbox.ready() == []  # 4 s of quiet is not 5
    clocks.advance(1.5)
    assert inbox.ready() == [path]
    # A file already quiet for longer than the settle time is taken at first sight...
    old = inbox.folder / "yesterday.txt"
    write_at(old, data, clocks.wall - 60)
    assert old in inbox.ready()
    # ...unless it changed since the last look (a copier setting the old time at the end).
    write_at(old, data + b"\n", clocks.wall - 60)
    assert old not in inbox.ready()
    assert old in inbox.ready()


def test_scan_files_dumps_and_rejects_with_a_reason(isolated: Path) -> None:
    clocks = Clocks()
    inbox = make_inbox(isolated / "inbox", clocks, settle=0)
    write_at(inbox.folder / "a.txt", SAMPLE_000.read_bytes(), clocks.wall - 60)
    write_at(inbox.folder / "notes.txt", b"Shopping list\n\nmilk\neggs\n", clocks.wall - 60)
    write_at(inbox.folder / "still.part", b"half", clocks.wall - 60)
    with Store(isolated / "state.db") as store:
        results = {r.name: r for r in inbox.scan(store)}
        assert set(results) == {"a.txt", "notes.txt"}
        assert results["a.txt"].report is not None and results["a.txt"].report.papers == 23
        assert results["a.txt"].moved_to == inbox.folder / "processed" / "a.txt"
        rejected = results["notes.txt"]
        assert rejected.moved_to == inbox.folder / "rejected" / "notes.txt"
        assert rejected.error_file == inbox.folder / "rejected" / "notes.txt.error.txt"
        reason = rejected.error_file.read_text()
        assert "inbox/notes.txt" in reason and "expected a Daily Papers page" in reason
        assert (inbox.folder / "still.part").exists()
        # The same content under the same name again: filed beside the first, nothing new.
        write_at(inbox.folder / "a.txt", SAMPLE_000.read_bytes(), clocks.wall - 60)
        [again] = inbox.scan(store)
        assert again.report is not None and again.report.duplicate_file
        assert again.moved_to == inbox.folder / "processed" / "a.2.txt"
        assert inbox.scan(store) == []


# -- a clean stop inside delivery ---------------------------------------------------------


def test_stop_event_leaves_unclaimed_rows_pending_and_nothing_sending(project: Path) -> None:
    emails = write_subscribers(project / "subscribers.yaml", 20)
    os.environ.update(REAL_SEND_ENV, NEWSLETTER_SMTP_CONCURRENCY="2")
    settings = load_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        issue = build_issue(
            settings,
            store,
            load_subscribers(settings.subscribers_file),
            dry_run=False,
            issue_date=date(2026, 11, 22),
        )

        async def send_until_stopped(port: int) -> int:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            sent: list[str] = []

            def on_data(rcpt: str, attempt: int) -> None:
                sent.append(rcpt)
                if len(sent) == 5:
                    loop.call_soon_threadsafe(stop.set)

            server.recorder.on_data = on_data  # type: ignore[assignment]
            outgoing = (Outgoing(e, e, lambda: b"Subject: x\r\n\r\nbody\r\n") for e in emails)
            stats = await send_over_smtp(
                settings.model_copy(update={"smtp_port": port}),
                store,
                issue.id,
                outgoing,
                total=len(emails),
                sender="digest@example.org",
                progress=False,
                stop_requested=stop,
            )
            assert stats.stopped
            return stats.sent

        with smtp_server() as server:
            sent = asyncio.run(send_until_stopped(server.port))
        counts = store.counts(issue.id)
        assert 5 <= sent < len(emails)
        assert counts["sending"] == 0 and counts["sent"] == sent
        assert counts["pending"] == len(emails) - sent
    with smtp_server() as later, Store(settings.database_path) as store:
        os.environ["NEWSLETTER_SMTP_PORT"] = str(later.port)
        deliver(load_settings(), store, issue_date=date(2026, 11, 22), progress=False)
        assert set(later.recorder.recipients()) | set(server.recorder.recipients()) == set(emails)
        assert not set(later.recorder.recipients()) & set(server.recorder.recipients())


# -- the service as a process ------------------------------------------------------------


def wait_until(check: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def clock_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M:%S}"


class Service:
    """One `python -m newsletter run` process; its log goes to a file the test reads."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str, name: str = "run") -> None:
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "run", *args],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> None:
        def seen() -> bool:
            if self.process.poll() is not None and not re.search(pattern, self.log):
                raise AssertionError(f"the service exited ({self.process.returncode}):\n{self.log}")
            return re.search(pattern, self.log) is not None

        wait_until(seen, f"{pattern!r} in the log:\n{self.log}", timeout)

    def stop(self, timeout: float = TIMEOUT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def service_env(project: Path) -> Iterator[tuple[Path, dict[str, str], RunningServer]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    with smtp_server() as server:
        env.update(
            REAL_SEND_ENV,
            NEWSLETTER_SMTP_PORT=str(server.port),
            NEWSLETTER_SMTP_TIMEOUT="5",
            NEWSLETTER_TIMEZONE="UTC",
            NEWSLETTER_INTAKE_INTERVAL="0.2",
            NEWSLETTER_SETTLE_SECONDS="1",
            NEWSLETTER_SEND_GRACE="1h",
            NEWSLETTER_SOURCE_URL="",  # fetching off: these tests never reach huggingface.co
        )
        (project / "inbox").mkdir()
        yield project, env, server


def selected(project: Path) -> set[str]:
    """The recipients the latest real issue selected, from the ledger."""
    with sqlite3.connect(project / "newsletter.db") as db:
        rows = db.execute(
            "SELECT email FROM deliveries WHERE issue_id ="
            " (SELECT MAX(id) FROM issues WHERE dry_run = 0)"
        ).fetchall()
    return {row[0] for row in rows}


def ledger(project: Path) -> dict[str, int]:
    with sqlite3.connect(project / "newsletter.db") as db:
        return dict(
            db.execute(
                "SELECT status, COUNT(*) FROM deliveries WHERE issue_id ="
                " (SELECT MAX(id) FROM issues WHERE dry_run = 0) GROUP BY status"
            ).fetchall()
        )


def test_service_takes_complete_dumps_rejects_others_and_sends_once(
    service_env: tuple[Path, dict[str, str], RunningServer],
) -> None:
    project, env, server = service_env
    write_subscribers(project / "subscribers.yaml", 12)
    inbox = project / "inbox"
    # Room for a slow start and a slow parse on a loaded machine: the dump must be in
    # before the send time for this test to mean anything.
    send_at = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    env["NEWSLETTER_SEND_TIME"] = clock_time(send_at)
    service = Service(project, env)
    try:
        service.wait_for(r"newsletter service started")

        # A second service on the same database refuses to start, naming the first.
        second = subprocess.run(
            [sys.executable, "-m", "newsletter", "run"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert second.returncode == 1
        assert f"pid {service.process.pid}" in second.stderr, second.stderr

        # A dump written slowly, in chunks: taken once, after it is complete.
        data = SAMPLE_001.read_bytes()
        target = inbox / "today.txt"
        with target.open("wb") as handle:
            for start in range(0, len(data), len(data) // 5 + 1):
                handle.write(data[start : start + len(data) // 5 + 1])
                handle.flush()
                time.sleep(0.35)
                assert target.exists(), "taken while still being written"
        (inbox / ".today.txt.swp").write_text("editor state")
        (inbox / "next.txt.part").write_text("half a download")
        (inbox / "notes.txt").write_text("Shopping list\n\nmilk\neggs\n")
        wait_until((inbox / "processed" / "today.txt").exists, "the dump to be processed")
        wait_until((inbox / "rejected" / "notes.txt.error.txt").exists, "the rejection")
        assert (
            "expected a Daily Papers page"
            in (inbox / "rejected" / "notes.txt.error.txt").read_text()
        )
        assert (inbox / ".today.txt.swp").exists() and (inbox / "next.txt.part").exists()
        with sqlite3.connect(project / "newsletter.db") as db:
            assert db.execute("SELECT paper_count FROM dumps").fetchall() == [(59,)]
        assert len(re.findall(r"ingested today\.txt", service.log)) == 1
        assert "ingested today.txt (page text) with 59 papers, 59 new" in service.log
        if datetime.now(UTC) < send_at:
            assert server.recorder.received == []  # not before the send time

        # The send time comes: one message per selected recipient.
        service.wait_for(r"issue \S+: sent \d+", timeout=TIMEOUT + 15)
        chosen = selected(project)
        assert chosen and server.recorder.recipients() == {e: 1 for e in chosen}
        assert datetime.now(UTC) >= send_at
        service.wait_for(r"next send: ")
        assert service.stop() == 0
        assert "newsletter service stopped" in service.log
    finally:
        service.kill()

    # A restart inside the grace window finds the issue in the ledger: nothing twice.
    again = Service(project, env, name="restart")
    try:
        again.wait_for(r"already delivered")
        time.sleep(0.5)
        assert again.stop() == 0
    finally:
        again.kill()
    assert server.recorder.recipients() == {e: 1 for e in chosen}


def test_sigterm_mid_send_then_restart_reaches_everyone_once(
    service_env: tuple[Path, dict[str, str], RunningServer],
) -> None:
    project, env, server = service_env
    write_subscribers(project / "subscribers.yaml", 30)
    env.update(
        NEWSLETTER_SEND_TIME=clock_time(datetime.now(UTC) - timedelta(seconds=5)),
        NEWSLETTER_SMTP_RATE_PER_SECOND="8",
        NEWSLETTER_SMTP_CONCURRENCY="2",
    )
    for sample in (SAMPLE_000, SAMPLE_001):  # already in the database: sending starts at once
        subprocess.run(
            [sys.executable, "-m", "newsletter", "ingest", str(sample)],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
            timeout=TIMEOUT,
        )
    first = Service(project, env, name="first")
    try:
        first.wait_for(r"built for \d+ recipient")
        wait_until(lambda: len(server.recorder.received) >= 5, "the first messages")
        assert first.stop() == 0, first.log
    finally:
        first.kill()
    assert "stopped cleanly" in first.log
    emails = sorted(selected(project))
    assert len(emails) > 20
    delivered = len(server.recorder.received)
    assert delivered < len(emails), "sending ended before the stop: make it slower"
    counts = ledger(project)
    assert counts.get("sending", 0) == 0 and counts["sent"] == delivered

    second = Service(project, env, name="second")
    try:
        wait_until(
            lambda: len(server.recorder.recipients()) == len(emails), "every recipient", TIMEOUT
        )
        second.wait_for(rf"issue \S+: sent {len(emails)}")
        assert second.stop() == 0
    finally:
        second.kill()
    assert server.recorder.recipients() == {e: 1 for e in emails}


def run_once(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "run", "--once", "-v", *args],  # -v: its info lines
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )


def test_a_day_without_new_papers_sends_nothing_and_says_why(
    service_env: tuple[Path, dict[str, str], RunningServer],
) -> None:
    project, env, server = service_env
    env["NEWSLETTER_SEND_TIME"] = clock_time(datetime.now(UTC) - timedelta(minutes=10))
    empty = run_once(project, env)
    assert empty.returncode == 0, empty.stderr
    assert "no new papers since the last issue: nothing to send" in empty.stderr
    assert server.recorder.received == []
    again = run_once(project, env)  # the ledger holds the (empty) issue: decided once
    assert again.returncode == 0 and "already delivered" in again.stderr


def test_run_once_for_cron_dry_run_and_the_grace_window(
    service_env: tuple[Path, dict[str, str], RunningServer],
) -> None:
    project, env, server = service_env
    inbox = project / "inbox"
    now = datetime.now(UTC)

    # Dumps dropped in; the send time was 2 hours ago, past a 1 h grace: not sent (the
    # first issue of a new database waits for the next send time).
    stamp = time.time() - 60
    for sample in (SAMPLE_000, SAMPLE_001):
        (inbox / sample.name).write_bytes(sample.read_bytes())
        os.utime(inbox / sample.name, (stamp, stamp))
    env["NEWSLETTER_SEND_TIME"] = clock_time(now - timedelta(hours=2))
    late = run_once(project, env)
    assert late.returncode == 0, late.stderr
    assert "the first goes out at the next send time" in late.stderr
    assert "with 59 papers, 59 new" in late.stderr
    assert len(list((inbox / "processed").iterdir())) == 2
    assert server.recorder.received == []

    # Dry run inside the window: the issue is written as .eml files, once.
    env["NEWSLETTER_SEND_TIME"] = clock_time(now - timedelta(minutes=5))
    dry = run_once(project, env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    written = sorted(p.name for p in (project / "outbox").glob("*/*.eml"))
    assert written and "(dry run): wrote" in dry.stderr
    again = run_once(project, env, "--dry-run")
    assert "already delivered" in again.stderr and server.recorder.received == []

    # And for real, once: a second pass from cron sends nothing more.
    real = run_once(project, env)
    assert real.returncode == 0, real.stderr
    chosen = selected(project)
    assert chosen and server.recorder.recipients() == {e: 1 for e in chosen}
    assert "already delivered" in run_once(project, env).stderr
    assert server.recorder.recipients() == {e: 1 for e in chosen}

    status = subprocess.run(
        [sys.executable, "-m", "newsletter", "status"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert status.returncode == 0 and "Next send: " in status.stdout
    assert "Service: not running" in status.stdout


def test_smtp_server_down_at_send_time_then_back(
    service_env: tuple[Path, dict[str, str], RunningServer],
) -> None:
    project, env, server = service_env
    stamp = time.time() - 60
    for sample in (SAMPLE_000, SAMPLE_001):
        (project / "inbox" / sample.name).write_bytes(sample.read_bytes())
        os.utime(project / "inbox" / sample.name, (stamp, stamp))
    env["NEWSLETTER_SEND_TIME"] = clock_time(datetime.now(UTC) - timedelta(minutes=1))
    with smtp_server() as gone:
        dead_port = gone.port
    down = run_once(project, {**env, "NEWSLETTER_SMTP_PORT": str(dead_port)})
    assert down.returncode == 1
    assert f"127.0.0.1:{dead_port}" in down.stderr and "a 'newsletter run' before" in down.stderr
    chosen = selected(project)
    assert chosen and ledger(project) == {"pending": len(chosen)}
    back = run_once(project, env)
    assert back.returncode == 0, back.stderr
    assert server.recorder.recipients() == {e: 1 for e in chosen}
