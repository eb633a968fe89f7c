"""Fetching the day's papers (`fetch.py`, `newsletter fetch`, the service's own fetches)
against a real HTTP server on 127.0.0.1 that replays scripted replies and records every
request. Nothing here contacts any other host."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.cli import main
from newsletter.dumps import decode_dump
from newsletter.errors import FetchError
from newsletter.fetch import FetchResult, fetch_day, retry_after_seconds
from newsletter.pipeline import ingest_file
from newsletter.settings import Settings, load_settings
from newsletter.store import Store, content_hash
from tests.http_server import Reply, RunningServer, http_server

DAY = date(2026, 11, 25)
CORPUS = Path("/work/shared/corpora/api/2026-04-10.json")
SLACK = 3.0  # seconds a bounded fetch may overrun its timeout (process and thread start-up)
TIMEOUT = 30.0  # seconds any one wait for the service may take

TITLES = [
    "Sparse Mixture-of-Experts Distillation for On-Device Speech Recognition",
    "Continual Learning Without Replay via Low-Rank Task Vectors",
    "Evaluating Long-Context Retrieval in Multilingual Language Models",
    "Diffusion Policies for Dexterous Manipulation from Few Demonstrations",
]


def api_entry(number: int, day: date = DAY) -> dict[str, object]:
    """One entry shaped like the Daily Papers API's (extra fields included)."""
    arxiv = f"2411.{1234 + number:05d}"
    title = TITLES[number % len(TITLES)]
    published = f"{day - timedelta(days=1)}T17:59:{number:02d}.000Z"
    return {
        "paper": {
            "id": arxiv,
            "authors": [
                {"_id": f"67a{number}01", "name": "Ada Lovelace", "hidden": False},
                {"_id": f"67a{number}02", "name": "Kim Park", "hidden": False},
            ],
            "publishedAt": published,
            "submittedOnDailyAt": f"{day}T04:0{number}:12.000Z",
            "title": title,
            "summary": f"We study {title.lower()}.\nOur method improves the state of the art "
            f"by {number + 3} points on three benchmarks while using less compute.",
            "upvotes": 12 + number,
            "discussionId": f"67a{number}ff",
            "ai_summary": "A short machine summary.",
            "ai_keywords": ["distillation", "benchmarks"],
        },
        "publishedAt": published,
        "title": title,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv}.png",
        "numComments": number,
        "submittedBy": {"_id": "60f1abe7", "fullname": "A. Curator", "user": "curator"},
        "isAuthorParticipating": False,
    }


def api_body(count: int = 3, day: date = DAY) -> bytes:
    return json.dumps([api_entry(n, day) for n in range(count)]).encode()


def settings_for(server: RunningServer, timeout: float = 20.0, **more: object) -> Settings:
    return load_settings(source_url=server.url(), fetch_timeout=timeout, **more)


def inbox_files(isolated: Path) -> list[str]:
    """Every file under the inbox, hidden and temporary ones included."""
    inbox = isolated / "inbox"
    return sorted(str(p.relative_to(inbox)) for p in inbox.rglob("*") if p.is_file())


def request_url(server: RunningServer, day: date = DAY) -> str:
    return f"{server.url()}?date={day}"


# -- retries, timeouts, and what is (not) written -----------------------------------------


@contextmanager
def running_service(
    project: Path, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `newsletter run --dry-run` logging to `log_path`, killed if still alive."""
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "run", "--dry-run"],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield service
        finally:
            if service.poll() is None:
                service.kill()
                service.wait(10)


def wait_until(service: subprocess.Popen[bytes], log_path: Path, done: Callable[[], bool]) -> None:
    """Wait for `done` while the service runs; fail with its log otherwise."""
    deadline = time.monotonic() + TIMEOUT
    while not done():
        assert service.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


def test_429_with_retry_after_then_200_waits_and_writes_once(isolated: Path) -> None:
    body = api_body()
    with http_server(
        Reply(429, b"slow down", headers={"Retry-After": "1"}), Reply(200, body)
    ) as server:
        result = fetch_day(settings_for(server), DAY)
    assert result.status == "written" and result.papers == 3 and result.day == DAY
    first, second = server.requests
    assert second.at - first.at >= 0.95  # Retry-After: 1 was honoured
    name = f"daily-papers-2026-11-25-{content_hash(body)[:12]}.json"
    assert result.path == Path("inbox") / name
    assert inbox_files(isolated) == [name]
    assert (isolated / "inbox" / name).read_bytes() == body


def test_retry_after_as_an_http_date_is_honoured(isolated: Path) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    with http_server(Reply(503, headers={"Retry-After": later}), Reply(200, api_body())) as server:
        result = fetch_day(settings_for(server), DAY)
    assert result.status == "written"
    first, second = server.requests
    assert second.at - first.at >= 0.9  # the date has a one-second resolution


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("Wed, 25 Nov 2026 10:00:30 GMT", 30.0),
        ("Wed, 25 Nov 2026 09:59:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, datetime(2026, 11, 25, 10, 0, tzinfo=UTC)) == expected


def test_a_source_that_stays_down_is_one_error_within_the_timeout(isolated: Path) -> None:
    with http_server(Reply(503, b"<html>Service Unavailable</html>", "text/html")) as server:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch_day(settings_for(server, timeout=4), DAY)
        took = time.monotonic() - started
    error = caught.value
    assert took < 4 + SLACK
    assert len(server.requests) >= 2  # retried
    assert error.status == 503 and error.url == request_url(server)
    message = str(error)
    assert message.startswith(f"{request_url(server)}: 503 Service Unavailable after ")
    assert "try again later" in message and "inbox/" in message
    assert "\n" not in message
    assert inbox_files(isolated) == []


def test_a_retry_after_beyond_the_timeout_is_not_waited_for(isolated: Path) -> None:
    with http_server(Reply(429, headers={"Retry-After": "120"}), Reply(200, api_body())) as server:
        started = time.monotonic()
        with pytest.raises(FetchError, match="429 Too Many Requests after 1 attempt") as caught:
            fetch_day(settings_for(server, timeout=10), DAY)
    assert time.monotonic() - started < SLACK  # gave up at once, no sleep past the deadline
    assert "Retry-After asks for 120 s" in str(caught.value)
    assert len(server.requests) == 1 and inbox_files(isolated) == []


def test_a_503_then_a_hang_cut_by_the_timeout_reports_the_503(isolated: Path) -> None:
    # The deadline cuts the last attempt short: the error names what the source did say.
    replies = [Reply(503, b"busy", "text/plain"), Reply(200, api_body(), hang=60)]
    with http_server(*replies) as server:
        with pytest.raises(FetchError) as caught:
            fetch_day(settings_for(server, timeout=3), DAY)
    assert len(server.requests) == 2
    assert caught.value.status == 503
    assert str(caught.value).startswith(f"{request_url(server)}: 503 Service Unavailable after ")
    assert "the last one cut short" in str(caught.value)


def test_a_hanging_source_is_given_up_at_the_timeout(isolated: Path) -> None:
    with http_server(Reply(200, api_body(), hang=60)) as server:
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out") as caught:
            fetch_day(settings_for(server, timeout=2), DAY)
        took = time.monotonic() - started
    assert took < 2 + SLACK
    assert caught.value.status is None and request_url(server) in str(caught.value)
    assert inbox_files(isolated) == []


def test_a_dropped_connection_is_retried(isolated: Path) -> None:
    with http_server(Reply(drop=True), Reply(200, api_body())) as server:
        result = fetch_day(settings_for(server), DAY)
    assert result.status == "written" and len(server.requests) == 2
    assert inbox_files(isolated) == [result.path.name if result.path else ""]


def test_a_source_that_cannot_be_reached_names_the_url(isolated: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        source_url=f"http://127.0.0.1:{port}/api/daily_papers", fetch_timeout=3
    )
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch_day(settings, DAY)
    assert time.monotonic() - started < 3 + SLACK
    message = str(caught.value)
    assert message.startswith(f"http://127.0.0.1:{port}/api/daily_papers?date=2026-11-25: ")
    assert "cannot connect" in message and "NEWSLETTER_SOURCE_URL" in message
    assert inbox_files(isolated) == []


def test_other_4xx_are_not_retried(isolated: Path) -> None:
    with http_server(Reply(404, b'{"error": "Not Found"}')) as server:
        with pytest.raises(FetchError, match="404 Not Found") as caught:
            fetch_day(settings_for(server), DAY)
    assert len(server.requests) == 1 and caught.value.status == 404
    assert inbox_files(isolated) == []


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, api_body()[:700]), "the JSON is cut off"),
        (
            Reply(200, b"<!DOCTYPE html><html><body>Log in</body></html>", "text/html"),
            "an HTML page",
        ),
        (Reply(200, b"<html><body>Oops</body></html>"), "an HTML page"),  # says it is JSON
        (Reply(200, b'{"error": "Invalid date"}'), "an object saying 'Invalid date'"),
        (Reply(200, b'{"error": "Rate limited", "papers": []}'), "saying 'Rate limited'"),
        (Reply(200, b"42"), "a number, not a list of papers"),
        (Reply(200, b'[{"paper": {"id": "2411.00001"}}, 7]'), "not a dump"),
        (Reply(200, b""), "the reply is empty"),
    ],
)
def test_a_reply_that_is_not_the_api_json_writes_nothing(
    isolated: Path, reply: Reply, expected: str
) -> None:
    with http_server(reply) as server:
        with pytest.raises(FetchError) as caught:
            fetch_day(settings_for(server), DAY)
    assert expected in str(caught.value)
    assert caught.value.status == 200 and request_url(server) in str(caught.value)
    assert len(server.requests) == 1
    assert inbox_files(isolated) == []


@pytest.mark.parametrize("body", [b"[]", b"[]\n", b'{"papers": []}'])
def test_an_empty_list_is_a_day_without_papers(isolated: Path, body: bytes) -> None:
    with http_server(Reply(200, body)) as server:
        result = fetch_day(settings_for(server), date(2026, 11, 22))
    assert result == FetchResult(date(2026, 11, 22), "no papers", 0, None, result.url)
    assert inbox_files(isolated) == []


def test_the_same_content_twice_adds_no_file(isolated: Path) -> None:
    body = api_body()
    with http_server(Reply(200, body)) as server:
        settings = settings_for(server)
        first = fetch_day(settings, DAY)
        assert first.status == "written" and first.path is not None
        again = fetch_day(settings, DAY)
        assert (again.status, again.path, again.same_as) == ("unchanged", None, first.path)
        # Taken by the intake: found in processed/...
        processed = isolated / "inbox" / "processed"
        processed.mkdir()
        moved = first.path.rename(Path("inbox/processed/today.json"))
        assert fetch_day(settings, DAY).same_as == moved
        # ...or, once ingested, in the database even when the file is gone.
        with Store(settings.database_path) as store:
            ingest_file(store, moved)
        moved.unlink()
        from_db = fetch_day(settings, DAY)
        assert (from_db.status, from_db.same_as, from_db.papers) == ("unchanged", None, 3)
        assert inbox_files(isolated) == []
    # New content for the day (a fourth paper) is a new file.
    with http_server(Reply(200, api_body(4))) as server:
        fresh = fetch_day(settings_for(server), DAY)
    assert fresh.status == "written" and fresh.papers == 4
    assert inbox_files(isolated) == [fresh.path.name if fresh.path else ""]
    assert len(server.requests) == 1


def test_the_date_goes_into_the_query_beside_the_urls_own(isolated: Path) -> None:
    with http_server(Reply(200, b"[]")) as server:
        settings = load_settings(source_url=server.url() + "?limit=50&date=1999-01-01")
        result = fetch_day(settings, DAY)
    [request] = server.requests
    assert request.path == "/api/daily_papers"
    assert request.query == {"limit": ["50"], "date": ["2026-11-25"]}
    assert result.url == f"{server.url()}?limit=50&date=2026-11-25"


def test_the_recorded_api_reply_is_fetched_whole(isolated: Path) -> None:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} (a recorded API reply, not part of the repository) is absent")
    body = CORPUS.read_bytes()
    expected = decode_dump(body, name="corpus", received_at=datetime.now(UTC))
    with http_server(Reply(200, body)) as server:
        settings = settings_for(server)
        result = fetch_day(settings, date(2026, 4, 10))
    assert result.status == "written" and result.path is not None
    assert result.papers == len(expected.papers) > 20
    assert result.path.read_bytes() == body
    with Store(settings.database_path) as store:
        report = ingest_file(store, result.path)
    assert report.papers == result.papers and report.new == result.papers


# -- newsletter fetch ---------------------------------------------------------------------


def test_newsletter_fetch_prints_one_line(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with http_server(Reply(200, api_body())) as server:
        monkeypatch.setenv("NEWSLETTER_SOURCE_URL", server.url())
        assert main(["fetch", "--date", "2026-11-25"]) == 0
        [name] = inbox_files(isolated)
        assert capsys.readouterr().out == f"Fetched 3 papers for 2026-11-25 into inbox/{name}\n"
        assert main(["fetch", "--date", "2026-11-25"]) == 0
        assert capsys.readouterr().out == (
            f"3 papers for 2026-11-25 already fetched (inbox/{name}): nothing new\n"
        )
    assert inbox_files(isolated) == [name]
    with http_server(Reply(200, b"[]")) as server:
        monkeypatch.setenv("NEWSLETTER_SOURCE_URL", server.url())
        assert main(["fetch", "--date", "2026-11-22"]) == 0
        assert capsys.readouterr().out == (
            "No papers for 2026-11-22 (a weekend or a quiet day): nothing written\n"
        )


def test_newsletter_fetch_defaults_to_today_in_the_time_zone(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: often a different day from UTC's
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", zone)
    with http_server(Reply(200, b"[]")) as server:
        monkeypatch.setenv("NEWSLETTER_SOURCE_URL", server.url())
        before = datetime.now(ZoneInfo(zone)).date()
        assert main(["fetch"]) == 0
        after = datetime.now(ZoneInfo(zone)).date()
    [request] = server.requests
    assert request.query["date"][0] in {before.isoformat(), after.isoformat()}


def test_newsletter_fetch_errors(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_FETCH_TIMEOUT", "2.5")
    with http_server(Reply(503)) as server:
        monkeypatch.setenv("NEWSLETTER_SOURCE_URL", server.url())
        assert main(["fetch", "--date", "2026-11-22"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"error: {server.url()}?date=2026-11-22: 503 Service Unavailable after")
    assert "Traceback" not in captured.err
    assert inbox_files(isolated) == []

    monkeypatch.setenv("NEWSLETTER_SOURCE_URL", "")
    assert main(["fetch"]) == 1
    assert "NEWSLETTER_SOURCE_URL" in capsys.readouterr().err

    with pytest.raises(SystemExit) as usage:
        main(["fetch", "--date", "25/11/2026"])
    assert usage.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


# -- the service fetches by itself --------------------------------------------------------


def noon_zone() -> str:
    """A fixed-offset zone whose clock reads 12:xx now, so that the tests' fetch and send
    times lie on today's clock, well clear of midnight."""
    offset = 12 - datetime.now(UTC).hour  # local = UTC + offset, within -11..+12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")  # Etc/GMT-5 is UTC+5


def service_env(server: RunningServer, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_SOURCE_URL=server.url(),
        NEWSLETTER_TIMEZONE=noon_zone(),
        NEWSLETTER_FETCH_TIME="11:00",  # passed an hour or so ago
        NEWSLETTER_SEND_TIME="23:00",  # hours away
        NEWSLETTER_INTAKE_INTERVAL="0.2",
        NEWSLETTER_SETTLE_SECONDS="1",
    )
    env.update(more)
    return env


def run_once(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "-v", "run", "--once", "--dry-run"],  # -v: info
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )


def dump_counts(project: Path) -> list[int]:
    with sqlite3.connect(project / "newsletter.db") as db:
        return [row[0] for row in db.execute("SELECT paper_count FROM dumps ORDER BY id")]


def test_run_once_fetches_and_ingests_the_days_papers(project: Path) -> None:
    with http_server(Reply(200, api_body(4))) as server:
        env = service_env(server)
        today = datetime.now(ZoneInfo(env["NEWSLETTER_TIMEZONE"])).date()
        first = run_once(project, env)
        assert first.returncode == 0, first.stderr
        [request] = server.requests
        assert request.query == {"date": [today.isoformat()]}
        assert f"fetched 4 papers for {today} into inbox/daily-papers-{today}-" in first.stderr
        assert re.search(r"ingested daily-papers-\S+ \(.*\) with 4 papers, 4 new", first.stderr)
        assert dump_counts(project) == [4]
        processed = sorted(p.name for p in (project / "inbox" / "processed").iterdir())
        assert len(processed) == 1 and processed[0].startswith(f"daily-papers-{today}-")
        # A cron job running again the same day does not fetch again.
        again = run_once(project, env)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == 1 and "were fetched before" in again.stderr
        # Before the day's fetch time: no request at all.
        (project / "inbox" / "processed" / processed[0]).unlink()
        early = run_once(project, {**env, "NEWSLETTER_FETCH_TIME": "22:00"})
        assert early.returncode == 0, early.stderr
        assert len(server.requests) == 1


def test_run_once_survives_a_failed_fetch(project: Path) -> None:
    with http_server(Reply(500)) as server:
        result = run_once(project, service_env(server, NEWSLETTER_FETCH_TIMEOUT="1"))
    assert result.returncode == 0, result.stderr
    assert re.search(r"WARNING .*fetching the papers for \S+ failed: .*500 Internal", result.stderr)
    assert dump_counts(project) == []


def test_the_service_fetches_at_start_and_retries_until_it_has_papers(project: Path) -> None:
    script = (Reply(503), Reply(200, b"[]"), Reply(200, api_body(3)))
    with http_server(*script) as server:
        env = service_env(
            server, NEWSLETTER_FETCH_TIMEOUT="1", NEWSLETTER_FETCH_RETRY_INTERVAL="0.02"
        )
        today = datetime.now(ZoneInfo(env["NEWSLETTER_TIMEZONE"])).date()
        log_path = project / "run.log"
        with running_service(project, env, log_path) as service:
            wait_until(service, log_path, lambda: "with 3 papers, 3 new" in log_path.read_text())
            service.terminate()
            assert service.wait(TIMEOUT) == 0
    text = log_path.read_text()
    assert [r.query["date"] for r in server.requests] == [[today.isoformat()]] * 3
    failed = [line for line in text.splitlines() if "fetching the papers" in line]
    assert len(failed) == 1 and "WARNING" in failed[0] and "503 Service Unavailable" in failed[0]
    assert f"no papers for {today}" in text
    assert text.count("will fetch again at") == 2
    assert f"fetched 3 papers for {today}" in text
    assert dump_counts(project) == [3]
    assert "newsletter service stopped" in text


def test_a_stop_does_not_wait_for_a_hanging_fetch(project: Path) -> None:
    with http_server(Reply(200, api_body(), hang=120)) as server:
        env = service_env(server, NEWSLETTER_FETCH_TIMEOUT="120")
        log_path = project / "run.log"
        with running_service(project, env, log_path) as service:
            wait_until(service, log_path, lambda: bool(server.requests))
            stopped = time.monotonic()
            service.terminate()
            assert service.wait(TIMEOUT) == 0, log_path.read_text()
            assert time.monotonic() - stopped < 10  # not the fetch's 120 s
    text = log_path.read_text()
    assert "fetch abandoned: stopping" in text and "newsletter service stopped" in text
    assert "failed" not in text and inbox_files(project) == []


def test_the_send_waits_for_a_fetch_in_flight(project: Path) -> None:
    zone = ZoneInfo(noon_zone())
    send_at = (datetime.now(zone) + timedelta(seconds=6)).replace(microsecond=0)
    with http_server(Reply(200, api_body(4), hang=9)) as server:
        env = service_env(
            server,
            NEWSLETTER_TIMEZONE=str(zone),
            NEWSLETTER_SEND_TIME=f"{send_at:%H:%M:%S}",
            NEWSLETTER_FETCH_TIMEOUT="30",
        )
        log_path = project / "run.log"
        with running_service(project, env, log_path) as service:
            wait_until(service, log_path, lambda: "(dry run): wrote" in log_path.read_text())
            service.terminate()
            assert service.wait(TIMEOUT) == 0
    text = log_path.read_text()
    order = [
        "waiting for the fetch in flight",
        "fetched 4 papers",
        "with 4 papers, 4 new",
        "built for",
        "(dry run): wrote",
    ]
    positions = [text.find(line) for line in order]
    assert -1 not in positions and positions == sorted(positions), text
    assert list((project / "outbox").glob("*/*.eml"))
