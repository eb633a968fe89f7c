"""The date of the next issue (`scheduler.next_issue_date`), as the preview index shows it:
today until today's issue has gone out or can no longer go out, then the next send's."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from newsletter.pipeline import build_issue, ingest_file
from newsletter.scheduler import next_issue_date, weekly_issue_date
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers
from newsletter.web import create_app
from tests.web_server import running

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY = date(2026, 11, 24)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def berlin_settings(**more: object) -> Settings:
    return load_settings(
        timezone="Europe/Berlin", send_time="07:00", send_grace="3h", weekly_day="monday", **more
    )


def deliver_on_paper(settings: Settings, store: Store, day: date) -> None:
    """Build the real issue of `day` and record every recipient `sent` (no SMTP needed:
    only the ledger decides whether an issue went out)."""
    issue = build_issue(
        settings, store, load_subscribers(settings.subscribers_file), dry_run=False, issue_date=day
    )
    emails = [delivery.email for delivery in store.deliveries(issue.id)]
    assert emails, "the sample dumps give someone a paper"
    store.mark_many(issue.id, emails, "sent")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(TUESDAY, 0, 5), TUESDAY),  # before the send time
        (at(TUESDAY, 6, 59), TUESDAY),
        (at(TUESDAY, 8, 0), TUESDAY),  # missed, but a service starting now sends it
        (at(TUESDAY, 10, 0), TUESDAY),  # the last moment of the grace window
        (at(TUESDAY, 10, 1), TUESDAY + timedelta(days=1)),  # too late: tomorrow's
        (at(TUESDAY, 23, 59), TUESDAY + timedelta(days=1)),
    ],
)
def test_next_issue_date_without_a_sent_issue(project: Path, now: datetime, expected: date) -> None:
    with Store(project / "newsletter.db") as store:
        assert next_issue_date(berlin_settings(), store, now) == expected


def test_after_todays_issue_went_out_the_next_is_tomorrows(project: Path) -> None:
    settings = berlin_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        deliver_on_paper(settings, store, TUESDAY)
        assert next_issue_date(settings, store, at(TUESDAY, 6, 0)) == TUESDAY  # not yet due
        assert next_issue_date(settings, store, at(TUESDAY, 7, 30)) == TUESDAY + timedelta(1)
        # Sent at 07:00 UTC+1; the clock of another zone reads a different hour.
        utc_now = at(TUESDAY, 7, 30).astimezone(ZoneInfo("UTC"))
        assert next_issue_date(settings, store, utc_now) == TUESDAY + timedelta(1)


def test_an_issue_still_sending_keeps_todays_date(project: Path) -> None:
    settings = berlin_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        deliver_on_paper(settings, store, TUESDAY)
        issue = store.find_issue(TUESDAY.isoformat(), dry_run=False)
        assert issue is not None
        first = store.deliveries(issue.id)[0].email
        store.mark(issue.id, first, "pending")  # one recipient left: the service retries
        assert next_issue_date(settings, store, at(TUESDAY, 8, 0)) == TUESDAY
        assert next_issue_date(settings, store, at(TUESDAY, 10, 30)) == TUESDAY + timedelta(1)


def test_the_weekly_issue_is_the_first_on_the_weekly_day() -> None:
    settings = berlin_settings()
    monday = date(2026, 11, 30)
    assert weekly_issue_date(settings, TUESDAY) == monday
    assert weekly_issue_date(settings, monday) == monday
    assert weekly_issue_date(settings, monday - timedelta(days=1)) == monday


def heading(url: str) -> tuple[str, str | None]:
    page = httpx.get(f"{url}/").text
    found = re.search(r"<h1>Next issue, (\S+)</h1>", page)
    weekly = re.search(r"Weekly subscribers: next issue (\S+)\.", page)
    assert found, page
    return found[1], weekly[1] if weekly else None


def test_the_preview_index_shows_the_real_date_of_the_next_issue(project: Path) -> None:
    now = [at(TUESDAY, 6, 30)]
    clock: Callable[[], datetime] = lambda: now[0]  # noqa: E731
    settings = berlin_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with running(lambda url: create_app(berlin_settings(base_url=url), clock=clock)) as url:
        assert heading(url) == ("2026-11-24", "2026-11-30")
        with Store(settings.database_path) as store:
            deliver_on_paper(settings, store, TUESDAY)
        now[0] = at(TUESDAY, 7, 5)  # just after the send time, the issue sent
        assert heading(url) == ("2026-11-25", "2026-11-30")
        now[0] = at(date(2026, 11, 29), 10, 30)  # Sunday, past the grace: Monday's is next
        assert heading(url) == ("2026-11-30", None)
