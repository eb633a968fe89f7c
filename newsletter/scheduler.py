"""The service (`newsletter run`): APScheduler wiring that fetches the day's papers,
watches the inbox and sends each day's issue once, at `send_time` in `timezone`.

The jobs run on an `AsyncIOScheduler`, each with an explicit id, `coalesce=True` and
`max_instances=1`:

- `intake` every `intake_interval` seconds: take the complete files of the inbox (see
  `inbox.py`);
- `fetch` (when `source_url` is set) on a `SendTrigger` at `fetch_time`: get the day's
  papers into the inbox (see `fetch.py`) and ingest them at once. A fetch that failed or
  found no papers yet is tried again every `fetch_retry_interval` minutes until the send
  time (`fetch-retry`). A service started between the fetch and the send time that has
  not fetched the day's papers yet fetches at once. A failed fetch is a warning in the
  log, never a reason to stop: papers put into the inbox by hand still go out;
- `send` on a `SendTrigger` (a `CronTrigger` at `send_time`): build the day's issue and
  deliver it (or write it, with `--dry-run`).

Whether an issue was already sent is decided by the database ledger, never by
APScheduler's (in-memory) job store. At start the service takes the inbox, then runs a
send pass at once: if the last send time was missed by less than `send_grace`, the
missed issue goes out now; if the ledger says it went out (or is being resumed), nothing
is sent twice. A send pass that leaves recipients to retry (the SMTP server was down)
tries again every few minutes while inside the grace window.

SIGTERM or Ctrl-C stops cleanly: no new job starts, delivery claims no new message,
messages already handed to the server finish, unclaimed rows stay `pending` for the next
start, and the process exits 0. A second signal abandons the in-flight messages (their
rows stay `sending` and are sent again on the next start: the ledger's crash rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeGuard, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.errors import FetchError, NewsletterError
from newsletter.fetch import FetchResult, fetch_day_async, fetched_files
from newsletter.inbox import Inbox, IntakeResult
from newsletter.lock import DatabaseLock
from newsletter.parse_guard import GuardedParser
from newsletter.pipeline import build_issue, deliver_async, dry_run
from newsletter.preflight import require_safe_send
from newsletter.render import Renderer
from newsletter.settings import Settings
from newsletter.store import Issue, Store
from newsletter.subscribers import load_subscribers

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=5)  # a send pass that left work retries this much later
STOP_SLACK = 5.0  # seconds, beyond the SMTP timeout, that in-flight work gets to finish

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

T = TypeVar("T")


# ---------------------------------------------------------------------------------------
# When: the send instant of a day, DST-correct
# ---------------------------------------------------------------------------------------


def send_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant of `day`'s send: the first moment the local clock reads `at` or later.

    An ambiguous time (the repeated hour when clocks go back) is its first occurrence; a
    time that does not exist (the hour skipped when clocks go forward) is the moment of the
    jump, when the clock first shows a later time. In UTC: a local time in a repeated hour
    never compares equal to another zone's (PEP 495), a UTC one always does."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)  # it exists; fold=0 is the earlier of two occurrences
    # In a gap: the two folds give the instants before and after the jump.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first.astimezone(UTC)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):  # the first instant whose wall time >= at
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


class SendTrigger(CronTrigger):  # type: ignore[misc]  # APScheduler 3 is untyped
    """A `CronTrigger` at `send_time` in `timezone` that fires exactly once per local day,
    at `send_instant`: once on the day the clocks go back (a plain cron fires twice in the
    repeated hour), at the jump on the day they go forward. The fetch job uses it too, at
    `fetch_time`."""

    def __init__(self, at: time, zone: ZoneInfo) -> None:
        super().__init__(hour=at.hour, minute=at.minute, second=at.second, timezone=zone)
        self.at = at
        self.zone = zone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        probe_previous, probe_now = previous_fire_time, now
        for _ in range(4):
            fire = super().get_next_fire_time(probe_previous, probe_now)
            if fire is None:
                return None
            instant = send_instant(fire.replace(tzinfo=None).date(), self.at, self.zone)
            if previous_fire_time is not None:
                if instant > previous_fire_time:
                    return instant
            elif instant >= now:
                return instant
            # The day's send is already behind us (its second occurrence, or the jump
            # before `now`): look at the next day.
            probe_previous, probe_now = fire, fire
        return None


def send_trigger(settings: Settings) -> SendTrigger:
    return SendTrigger(settings.send_time, settings.zone)


def fetch_trigger(settings: Settings) -> SendTrigger:
    return SendTrigger(settings.fetch_time, settings.zone)


def fetch_window(settings: Settings, day: date) -> tuple[datetime, datetime]:
    """The instants of `day`'s fetch and send: the day's papers are fetched between them."""
    zone = settings.zone
    return send_instant(day, settings.fetch_time, zone), send_instant(day, settings.send_time, zone)


def next_fetch(settings: Settings, now: datetime) -> datetime:
    """The next daily fetch instant after `now`."""
    fire = fetch_trigger(settings).get_next_fire_time(None, now)
    assert fire is not None  # a daily trigger with no end date always has a next time
    return fire


def latest_send(settings: Settings, now: datetime) -> datetime:
    """The most recent send instant at or before `now`."""
    local = now.astimezone(settings.zone).date()
    for back in range(3):
        instant = send_instant(local - timedelta(days=back), settings.send_time, settings.zone)
        if instant <= now:
            return instant
    raise AssertionError("a send instant lies within any three days")  # pragma: no cover


def next_send(settings: Settings, now: datetime) -> datetime:
    """The next send instant after `now`."""
    fire = send_trigger(settings).get_next_fire_time(None, now)
    assert fire is not None  # a daily trigger with no end date always has a next time
    return fire


def next_weekly_send(settings: Settings, now: datetime) -> datetime:
    """The next send instant that carries the weekly subscribers' issue."""
    trigger = send_trigger(settings)
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    while fire is not None and fire.astimezone(settings.zone).weekday() != settings.weekly_day:
        fire = trigger.get_next_fire_time(fire, fire)
    assert fire is not None
    return fire


def is_delivered(issue: Issue | None, store: Store) -> TypeGuard[Issue]:
    """The ledger says the issue went out: built, and no recipient left to send to."""
    return issue is not None and store.unfinished(issue.id) == 0


def within_grace(settings: Settings, instant: datetime, now: datetime) -> bool:
    """A send due at `instant` may still go out at `now` (NEWSLETTER_SEND_GRACE)."""
    return now - instant <= settings.send_grace


def next_issue_date(settings: Settings, store: Store, now: datetime) -> date:
    """The date of the next real issue: the latest send's while that issue is still due
    (not delivered, and inside the grace window: a service sends it as soon as it runs,
    see `Service._send`), else the next send's (after today's send time: tomorrow)."""
    instant = latest_send(settings, now)
    issue_date = instant.astimezone(settings.zone).date()
    issue = store.find_issue(issue_date.isoformat(), dry_run=False)
    if not is_delivered(issue, store) and within_grace(settings, instant, now):
        return issue_date
    return next_send(settings, now).astimezone(settings.zone).date()


def weekly_issue_date(settings: Settings, issue_date: date) -> date:
    """The first issue on or after `issue_date` that carries the weekly subscribers'."""
    return issue_date + timedelta(days=(settings.weekly_day - issue_date.weekday()) % 7)


def describe(instant: datetime, settings: Settings, now: datetime | None = None) -> str:
    """An instant for people: `2026-11-23 07:00 CET (Europe/Berlin), in 5 h 12 min`."""
    local = instant.astimezone(settings.zone)
    text = f"{local:%Y-%m-%d %H:%M}"
    if local.second:
        text += f":{local:%S}"
    zone_name = local.tzname() or settings.timezone
    text += (
        f" {zone_name}" if zone_name == settings.timezone else f" {zone_name} ({settings.timezone})"
    )
    if now is not None:
        seconds = int((instant - now).total_seconds())
        if seconds >= 0:
            hours, rest = divmod(seconds, 3600)
            text += f", in {hours} h {rest // 60} min" if hours else f", in {rest // 60} min"
            if not hours and rest < 60:
                text = text.removesuffix(" 0 min") + f" {rest} s"
    return text


# ---------------------------------------------------------------------------------------
# What: one intake pass, one send pass
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    """How a send pass ended: `finished` is False when recipients are left to retry."""

    issue_key: str | None
    finished: bool
    why: str
    stopped: bool = False  # a clean stop cut it short; the next start carries on


def log_intake(result: IntakeResult) -> None:
    where = f" -> {result.moved_to}" if result.moved_to else ""
    if result.report is None:
        see = f"; see {result.error_file}" if result.error_file else ""
        log.warning(
            "rejected %s: %s%s%s",
            result.name,
            result.error,
            where,
            see,
            extra={"event": "intake", "file": result.name, "error": result.error},
        )
        return
    report = result.report
    fields = {
        "event": "intake",
        "file": result.name,
        "shape": report.shape,
        "papers": report.papers,
        "new": report.new,
    }
    if report.duplicate_file:
        log.info(
            "ingested %s (%s): the same content was ingested before, nothing changed%s",
            result.name,
            report.shape,
            where,
            extra=fields,
        )
    else:
        log.info(
            "ingested %s (%s) with %d papers, %d new%s",
            result.name,
            report.shape,
            report.papers,
            report.new,
            where,
            extra=fields,
        )
    for warning in report.warnings:
        log.warning("  %s", warning)


class Service:
    """The long-running service; `run` until stopped, or `run_once`."""

    def __init__(self, settings: Settings, *, dry_run: bool) -> None:
        self.settings = settings
        self.dry_run = dry_run
        self.parser = GuardedParser(
            timeout=settings.parse_timeout, max_bytes=int(settings.max_dump_mb * 1024 * 1024)
        )
        self.inbox = Inbox(
            settings.inbox_dir, settle_seconds=settings.settle_seconds, parser=self.parser
        )
        self.stopping = asyncio.Event()
        self.scheduler: AsyncIOScheduler | None = None
        self._send_lock = asyncio.Lock()
        self._intake_lock = asyncio.Lock()  # one pass at a time over the inbox
        self._fetch_lock = asyncio.Lock()  # one fetch at a time; a send waits for it
        self._running: set[asyncio.Task[object]] = set()
        self._forced = False

    # -- the two passes ----------------------------------------------------------------

    async def intake(self, *, fetched: Path | None = None) -> list[IntakeResult]:
        """Take the complete files of the inbox (in a thread: parsing may take a while).
        `fetched`, a file the fetch just renamed into place, is complete: taken at once."""

        def scan() -> list[IntakeResult]:
            with Store(self.settings.database_path) as store:
                results = []
                if fetched is not None and fetched.exists():
                    taken = self.inbox.take(store, fetched)
                    if taken is not None:
                        results.append(taken)
                return results + self.inbox.scan(store)

        async with self._intake_lock:
            results = await asyncio.to_thread(scan)
        for result in results:
            log_intake(result)
        return results

    async def fetch_pass(self, now: datetime | None = None) -> FetchResult | None:
        """Fetch the day's papers into the inbox and ingest them; None when it failed (or
        was cut short by a stop). A failure or a day without papers (yet) is tried again
        every `fetch_retry_interval` minutes until the send time."""
        if self.stopping.is_set() or self._fetch_lock.locked():
            return None  # stopping, or another fetch job is at it (it retries if need be)
        async with self._fetch_lock:
            return await self._fetch(now or datetime.now(self.settings.zone))

    async def _fetch(self, now: datetime) -> FetchResult | None:
        day = now.astimezone(self.settings.zone).date()
        try:
            result = await self._unless_stopped(fetch_day_async(self.settings, day))
        except FetchError as exc:
            log.warning(
                "fetching the papers for %s failed: %s",
                day,
                exc,
                extra={"event": "fetch", "day": day, "outcome": "failed", "url": exc.url},
            )
            result = None
        if self.stopping.is_set():
            return result
        if result is None or result.status == "no papers":
            if result is not None:
                log.info(
                    "no papers for %s (yet: a weekend or a quiet day)",
                    day,
                    extra={"event": "fetch", "day": day, "outcome": "no papers", "papers": 0},
                )
            self._fetch_again(day, failed=result is None)
            return result
        if result.status == "written":
            log.info(
                "fetched %d papers for %s into %s",
                result.papers,
                day,
                result.path,
                extra={
                    "event": "fetch",
                    "day": day,
                    "outcome": "written",
                    "papers": result.papers,
                    "file": result.path,
                },
            )
            await self.intake(fetched=result.path)
            return result
        log.info(
            "fetched %d papers for %s: the same as before (%s), nothing new",
            result.papers,
            day,
            result.same_as or "already ingested",
            extra={"event": "fetch", "day": day, "outcome": "unchanged", "papers": result.papers},
        )
        if result.same_as is not None and result.same_as.parent == self.settings.inbox_dir:
            await self.intake(fetched=result.same_as)  # an earlier fetch not yet taken
        return result

    def fetch_due(self, now: datetime, *, until_send: bool) -> bool:
        """Is the day's fetch time past (and, `until_send`, its send time not yet), with
        nothing fetched for the day so far?"""
        if not self.settings.source_url:
            return False
        day = now.astimezone(self.settings.zone).date()
        fetch_at, send_at = fetch_window(self.settings, day)
        if now < fetch_at or (until_send and now >= send_at):
            return False
        earlier = fetched_files(self.settings.inbox_dir, day)
        if earlier:
            log.info("the papers for %s were fetched before (%s)", day, earlier[-1])
        return not earlier

    def _fetch_again(self, day: date, *, failed: bool) -> None:
        if self.scheduler is None:
            return  # run --once: the next run tries again
        now = datetime.now(self.settings.zone)
        when = now + timedelta(minutes=self.settings.fetch_retry_interval)
        _, send_at = fetch_window(self.settings, day)
        if when >= send_at:
            log.log(
                logging.WARNING if failed else logging.INFO,
                "no more fetches for %s before the send at %s: the issue is made of the "
                "papers at hand (a dump put into %s/ adds some)",
                day,
                describe(send_at, self.settings),
                self.settings.inbox_dir,
            )
            return
        self.scheduler.add_job(
            self._job(self.fetch_pass),
            DateTrigger(when),
            id="fetch-retry",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        log.info("will fetch again at %s", describe(when, self.settings))

    async def _unless_stopped(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Run `work` until it ends or a stop is requested (then cancel it: None)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():  # stopping (or this job itself is being cancelled)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            log.info("fetch abandoned: stopping")
            return None
        return task.result()

    async def send_pass(self, now: datetime | None = None) -> SendOutcome:
        """Send the issue of the latest send time if it is due and not yet delivered."""
        async with self._send_lock:
            if self.stopping.is_set():
                return SendOutcome(None, True, "stopping")
            if self._fetch_lock.locked():  # its papers belong in this issue
                log.info("waiting for the fetch in flight before building the issue")
                async with self._fetch_lock:
                    pass
            if self._intake_lock.locked():  # a dump being ingested belongs in it too
                log.info("waiting for the dump being ingested before building the issue")
                async with self._intake_lock:
                    pass
            now = now or datetime.now(self.settings.zone)
            instant = latest_send(self.settings, now)
            issue_date = instant.astimezone(self.settings.zone).date()
            with Store(self.settings.database_path) as store:
                return await self._send(store, issue_date, instant, now)

    async def _send(
        self, store: Store, issue_date: date, instant: datetime, now: datetime
    ) -> SendOutcome:
        key = issue_date.isoformat()
        label = f"issue {key}{' (dry run)' if self.dry_run else ''}"
        issue = store.find_issue(key, dry_run=self.dry_run)
        if is_delivered(issue, store):
            ledger = _counts_text(store, issue)
            log.info("%s was already delivered (ledger: %s): nothing to send", label, ledger)
            return SendOutcome(key, True, "already delivered")
        late = now - instant
        due = within_grace(self.settings, instant, now)
        if not due and store.latest_issue() is None:
            log.info("no issue has been built yet: the first goes out at the next send time")
            return SendOutcome(key, True, "first issue not due yet")
        if not due:
            if issue is None:
                what = "not sent; its papers go into the next issue"
            else:
                left = store.unfinished(issue.id)
                what = f"{left} recipient(s) left without it ('newsletter status' lists them)"
            log.warning(
                "%s was due at %s, %s ago, beyond the grace window of %s: %s "
                "(NEWSLETTER_SEND_GRACE sets the window)",
                label,
                describe(instant, self.settings),
                _duration(late),
                _duration(self.settings.send_grace),
                what,
            )
            return SendOutcome(key, True, "missed")
        try:
            outcome = await self._deliver(store, issue, issue_date, label)
        except NewsletterError as exc:
            # The SMTP server is unreachable, a template or the subscribers file is broken:
            # say so, and try again while the issue is still due.
            log.error("%s: %s", label, exc)
            outcome = SendOutcome(key, False, "an error (see the log)")
        if not outcome.finished and not self.stopping.is_set():
            self._retry_later(instant, now)
        return outcome

    async def _deliver(
        self, store: Store, issue: Issue | None, issue_date: date, label: str
    ) -> SendOutcome:
        key = issue_date.isoformat()
        if issue is None:
            issue = self._build(store, issue_date)
            if sum(store.counts(issue.id).values()) == 0:
                return SendOutcome(key, True, "nothing to send")
        if self.dry_run:
            written = dry_run(self.settings, store, issue_date=issue_date)
            log.info(
                "%s: wrote %d message(s) to %s/ (nothing was sent)",
                label,
                len(written.recipients),
                written.folder,
                extra={
                    "event": "send",
                    "issue": key,
                    "dry_run": True,
                    "written": written.written_now,
                    "messages": len(written.recipients),
                    "skipped": len(written.skipped),
                },
            )
            return SendOutcome(key, True, "written")
        report = await deliver_async(
            self.settings, store, issue_date=issue_date, progress=False, stop=self.stopping
        )
        counts = report.counts
        log.info(
            "%s: sent %d, failed %d, pending %d, skipped %d",
            label,
            counts["sent"],
            counts["failed"],
            counts["pending"] + counts["sending"],
            counts["skipped"],
            extra={
                "event": "send",
                "issue": key,
                "dry_run": False,
                "sent": counts["sent"],
                "failed": counts["failed"],
                "pending": counts["pending"] + counts["sending"],
                "skipped": counts["skipped"],
                "sent_now": report.sent_now,
            },
        )
        for failed in store.deliveries(report.issue.id, statuses=("failed",)):
            log.warning("  failed %s: %s %s", failed.email, failed.code or "", failed.message)
        if report.paused:
            log.error("%s", report.paused)
        left = store.unfinished(report.issue.id)
        if report.stopped:
            log.info(
                "%s: stopped cleanly; %d message(s) left pending for the next start", label, left
            )
        why = "sent" if left == 0 else f"{left} left to send"
        return SendOutcome(key, left == 0, why, stopped=report.stopped)

    def _build(self, store: Store, issue_date: date) -> Issue:
        """Freeze the issue; log who gets it, or why nobody does."""
        previous = store.last_real_issue()
        # The live list is read (and the file imported if it changed) a chunk at a time.
        issue = build_issue(self.settings, store, dry_run=self.dry_run, issue_date=issue_date)
        recipients = sum(store.counts(issue.id).values())
        fields = {
            "event": "issue",
            "issue": issue.key,
            "dry_run": issue.dry_run,
            "subscribers": recipients,
            "picks": store.planned_pick_count(issue.id),
        }
        if recipients:
            log.info(
                "issue %s built for %d recipient(s), %d pick(s) in all",
                issue.key,
                recipients,
                fields["picks"],
                extra=fields,
            )
            return issue
        since = previous.last_dump_id if previous else 0
        new = len(store.papers_since(since, until_dump_id=issue.last_dump_id))
        if new == 0:
            after = f" (issue {previous.key})" if previous else ""
            log.info(
                "issue %s: no new papers since the last issue%s: nothing to send",
                issue.key,
                after,
                extra={**fields, "new_papers": 0},
            )
        else:
            log.info(
                "issue %s: %d new paper(s), but none matches a subscriber's topics: nothing to "
                "send",
                issue.key,
                new,
                extra={**fields, "new_papers": new},
            )
        return issue

    def _retry_later(self, instant: datetime, now: datetime) -> None:
        deadline = instant + self.settings.send_grace
        when = now + RETRY_AFTER
        if self.scheduler is None:
            log.info(
                "recipients are left: a 'newsletter run' before %s retries them",
                describe(deadline, self.settings),
            )
            return
        if when > deadline:
            log.warning(
                "recipients are left, but the grace window ends at %s: no more retries "
                "('newsletter status' lists them)",
                describe(deadline, self.settings),
            )
            return
        self.scheduler.add_job(
            self._job(self.send_pass, announce=True),
            DateTrigger(when),
            id="send-retry",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self.settings.send_grace.total_seconds()) or None,
        )
        log.info("will retry at %s", describe(when, self.settings))

    # -- running -----------------------------------------------------------------------

    def _job(
        self, work: Callable[[], Awaitable[object]], *, announce: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """A job that counts as in flight (a clean stop waits for it) and whose user-facing
        errors are logged as such rather than as crashes; `announce` logs the next send."""

        async def job() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await work()
            except NewsletterError as exc:
                log.error("%s", exc)
            finally:
                self._running.discard(task)
            if announce:
                self._log_next_send()

        return job

    def _log_next_send(self) -> None:
        if self.scheduler is None or self.stopping.is_set():
            return
        job = self.scheduler.get_job("send")
        if job is not None and job.next_run_time is not None:
            now = datetime.now(self.settings.zone)
            log.info("next send: %s", describe(job.next_run_time, self.settings, now))

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info(
                "stopping: taking no new work; in-flight messages finish (signal again to abandon them)"
            )
            self.stopping.set()
            self.parser.stop()  # a file being parsed is taken again on the next start
            if self.scheduler is not None and self.scheduler.running:
                self.scheduler.pause()
            return
        if not self._forced:
            self._forced = True
            log.warning("stopping now: in-flight messages are abandoned and sent again next start")
            for task in list(self._running):
                task.cancel()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, self.request_stop)

    async def _finish_in_flight(self) -> None:
        if not self._running:
            return
        timeout = self.settings.smtp_timeout + STOP_SLACK
        _, pending = await asyncio.wait(set(self._running), timeout=timeout)
        if pending:
            log.warning("in-flight work did not finish within %.0f s: abandoning it", timeout)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=STOP_SLACK)

    async def run_once(self) -> SendOutcome:
        """One fetch (if the day's fetch time is past and nothing was fetched for the day),
        one intake pass and one send pass (if due)."""
        self._install_signals()
        if self.fetch_due(datetime.now(self.settings.zone), until_send=False):
            await self.fetch_pass()
        await self.intake()
        return await self.send_pass()

    async def run(self) -> None:
        """Run until SIGTERM / Ctrl-C."""
        settings = self.settings
        self._install_signals()
        now = datetime.now(settings.zone)
        weekly = WEEKDAYS[settings.weekly_day]
        log.info(
            "newsletter service started (pid %d%s): inbox %s every %g s (settle %g s); the "
            "issue goes out at %s %s (weekly issues on %s), grace %s",
            os.getpid(),
            ", dry run" if self.dry_run else "",
            settings.inbox_dir,
            settings.intake_interval,
            settings.settle_seconds,
            f"{settings.send_time:%H:%M}"
            + (f":{settings.send_time:%S}" if settings.send_time.second else ""),
            settings.timezone,
            weekly,
            _duration(settings.send_grace),
        )
        if settings.source_url:
            log.info(
                "fetching the day's papers from %s at %s (again every %g min until the send "
                "if it fails or finds none)",
                settings.source_url,
                f"{settings.fetch_time:%H:%M}"
                + (f":{settings.fetch_time:%S}" if settings.fetch_time.second else ""),
                settings.fetch_retry_interval,
            )
        else:
            log.info("fetching is off (NEWSLETTER_SOURCE_URL is empty): dumps come into the inbox")
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        scheduler = AsyncIOScheduler(timezone=settings.zone)
        self.scheduler = scheduler
        # The files that arrived while the service was down go into a missed issue.
        await self._job(self.intake)()
        if self.stopping.is_set():
            return
        scheduler.add_job(
            self._job(self.intake),
            IntervalTrigger(seconds=settings.intake_interval, timezone=settings.zone),
            id="intake",
            coalesce=True,
            max_instances=1,
        )
        if settings.source_url:
            scheduler.add_job(
                self._job(self.fetch_pass),
                fetch_trigger(settings),
                id="fetch",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
            if self.fetch_due(now, until_send=True):
                scheduler.add_job(
                    self._job(self.fetch_pass),
                    DateTrigger(now),
                    id="fetch-at-start",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=None,
                )
        scheduler.add_job(
            self._job(self.send_pass, announce=True),
            send_trigger(settings),
            id="send",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(settings.send_grace.total_seconds()) or None,
        )
        scheduler.add_job(
            self._job(self.send_pass, announce=True),
            DateTrigger(now),
            id="send-at-start",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        scheduler.start()
        await self.stopping.wait()
        await self._finish_in_flight()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        log.info("newsletter service stopped")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{seconds} s" if seconds or not any(parts) else "")
    return " ".join(part for part in parts if part)


def _counts_text(store: Store, issue: Issue) -> str:
    return ", ".join(f"{k} {v}" for k, v in store.counts(issue.id).items() if v) or "no recipient"


def check_ready(settings: Settings, *, dry_run: bool) -> None:
    """Fail at start, not at send time: the real-send rules, subscribers, templates."""
    if not dry_run:
        require_safe_send(settings)
    load_subscribers(settings.subscribers_file)
    Renderer(settings.templates_dir)


def run_service(settings: Settings, *, dry_run: bool, once: bool) -> SendOutcome | None:
    """`newsletter run`: hold the database's lock and run the service (or one pass)."""
    check_ready(settings, dry_run=dry_run)
    command = "run --once" if once else "run"
    with DatabaseLock(settings.database_path, command=command):
        # The service may start a database (it fetches and ingests): said, since a
        # mistyped NEWSLETTER_DATABASE_PATH would otherwise go unnoticed.
        if not settings.database_path.exists():
            log.warning(
                "%s: no database here yet, starting a new one (NEWSLETTER_DATABASE_PATH)",
                settings.database_path,
            )
        Store(settings.database_path).close()  # create or migrate it before anything runs
        service = Service(settings, dry_run=dry_run)
        try:
            if once:
                return asyncio.run(service.run_once())
            asyncio.run(service.run())
            return None
        finally:
            service.parser.stop()
