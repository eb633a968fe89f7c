"""Logging (`logs.py`): the levels, the JSON lines a service writes, the events `run`
logs (fetch, intake, issue, send) and the web unsubscribes `serve` logs, with the
address and never the link's token."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter import logs
from newsletter.pipeline import ingest_file
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.subscribers import unsubscribe_url
from tests.http_server import Reply, http_server
from tests.smtp_server import smtp_server
from tests.web_server import serving_process

SECRET = "a-real-secret-key-for-the-logging-tests-0123456789"
CORPUS = Path("/work/shared/corpora/api/2026-04-10.json")  # a real reply of the API


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Leave the root logger as it was (`configure` changes the process's logging)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_fields(root_logging: None) -> None:
    stream = io.StringIO()
    logs.configure(verbosity=1, log_format=logs.JSON, stream=stream)
    log = logging.getLogger("newsletter.example")
    log.info(
        "ingested %s", "a.txt", extra={"event": "intake", "papers": 7, "day": date(2026, 4, 10)}
    )
    log.debug("not shown at -v")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it broke")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "ingested a.txt" and first["level"] == "info"
    assert first["logger"] == "newsletter.example"
    assert (first["event"], first["papers"], first["day"]) == ("intake", 7, "2026-04-10")
    stamp = datetime.fromisoformat(first["time"])
    assert stamp.tzinfo is not None and abs(datetime.now(UTC) - stamp).total_seconds() < 600
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
    assert "args" not in first and "msg" not in first  # only the caller's own fields


@pytest.mark.parametrize(
    ("verbosity", "service", "level"),
    [
        (0, False, logging.WARNING),
        (1, False, logging.INFO),
        (2, False, logging.DEBUG),
        (0, True, logging.INFO),
        (-1, True, logging.WARNING),
        (5, True, logging.DEBUG),
    ],
)
def test_levels(verbosity: int, service: bool, level: int) -> None:
    assert logs.level_for(verbosity, service=service) == level


def test_text_lines_are_brief_for_commands_and_stamped_for_services(root_logging: None) -> None:
    stream = io.StringIO()
    logs.configure(stream=stream)
    logging.getLogger("newsletter.x").warning("the disk is %d%% full", 91)
    logging.getLogger("newsletter.x").info("hidden by default")
    assert stream.getvalue() == "warning: the disk is 91% full\n"
    stream = io.StringIO()
    logs.configure(service=True, stream=stream)
    logging.getLogger("newsletter.x").info("shown for a service")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO newsletter.x: shown for a service\n",
        stream.getvalue(),
    )


# -- what `run` logs ------------------------------------------------------------------------


def noon_zone() -> str:
    """A fixed-offset zone whose clock reads 12:xx now: fetch and send times of the test
    lie on today's clock, clear of midnight."""
    offset = 12 - datetime.now(UTC).hour
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def service_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_TEMPLATES_DIR="templates",
        NEWSLETTER_SECRET_KEY=SECRET,
        NEWSLETTER_BASE_URL="https://digest.lab.example.org",
        NEWSLETTER_FROM_ADDRESS="Lab Digest <digest@lab.example.org>",
        NEWSLETTER_TIMEZONE=noon_zone(),
        NEWSLETTER_FETCH_TIME="10:00",  # passed
        NEWSLETTER_SEND_TIME="11:00",  # passed, within the grace window of 3 hours
        NEWSLETTER_SMTP_TIMEOUT="10",
    )
    env.update(more)
    return env


def events(stderr: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    return [record for record in records if "event" in record]


def test_run_logs_fetch_intake_issue_and_send_as_json(project: Path) -> None:
    reply = Reply(200, CORPUS.read_bytes())
    with http_server(reply) as source, smtp_server() as smtp:
        env = service_env(NEWSLETTER_SOURCE_URL=source.url(), NEWSLETTER_SMTP_PORT=str(smtp.port))
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "--log-format", "json", "run", "--once", "-v"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        received = len(smtp.recorder.received)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    found = events(result.stderr)
    by_event = {record["event"]: record for record in found}
    assert set(by_event) >= {"fetch", "intake", "issue", "send"}, found

    papers = len(json.loads(CORPUS.read_bytes()))
    fetch = by_event["fetch"]
    assert fetch["outcome"] == "written" and fetch["papers"] == papers
    assert fetch["file"].startswith("inbox/daily-papers-")
    intake = by_event["intake"]
    assert intake["file"].startswith("daily-papers-") and intake["papers"] == papers
    assert intake["shape"] and intake["new"] == papers
    issue = by_event["issue"]
    assert issue["subscribers"] == received > 0
    with Store(project / "newsletter.db") as store:
        built = store.latest_issue()
        assert built is not None and issue["issue"] == built.key
        assert issue["picks"] == store.planned_pick_count(built.id) >= received
    send = by_event["send"]
    assert (send["sent"], send["failed"], send["skipped"]) == (received, 0, 0)
    assert send["issue"] == issue["issue"] and send["dry_run"] is False


# -- web unsubscribes -------------------------------------------------------------------------


def unsubscribe_both_ways(project: Path, url: str) -> list[str]:
    """One-click (what a mail client POSTs) for Ada, the page's form for Grace; returns the
    two links' tokens."""
    settings = load_settings(base_url=url, secret_key=SECRET)
    tokens = []
    for address, form in (("ada@example.org", False), ("grace@example.org", True)):
        link = unsubscribe_url(url, address, settings.signing_key(dry_run=False))
        tokens.append(link.rsplit("/", 1)[1])
        if form:
            response = httpx.post(link, files={"List-Unsubscribe": (None, "One-Click")})
        else:
            response = httpx.post(
                link,
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert response.status_code == 200 and "unsubscribed" in response.text
    return tokens


def serve_and_unsubscribe(project: Path, options: list[str]) -> tuple[str, list[str]]:
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    env = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_TEMPLATES_DIR": "templates"}
    with serving_process(project, env, options) as (url, _pid):
        tokens = unsubscribe_both_ways(project, url)
        # A page load and a forged token too: none of it may put a token in the log.
        assert httpx.get(f"{url}/unsubscribe/{tokens[0]}").status_code == 200
        assert httpx.post(f"{url}/unsubscribe/{tokens[0]}x").status_code == 400
    return (project / "serve.log").read_text(), tokens


def test_serve_logs_each_web_unsubscribe_as_json_without_the_token(project: Path) -> None:
    log, tokens = serve_and_unsubscribe(project, ["-vv", "--log-format", "json"])
    records = [json.loads(line) for line in log.splitlines()]  # debug included: all JSON
    left = [record for record in records if record.get("event") == "unsubscribe"]
    assert [(r["email"], r["source"], r["new"]) for r in left] == [
        ("ada@example.org", "web", True),
        ("grace@example.org", "web", True),
    ]
    for token in tokens:
        assert token not in log
        assert token[:20] not in log  # not even a part of it


def test_serve_logs_web_unsubscribes_by_default_in_text(project: Path) -> None:
    log, tokens = serve_and_unsubscribe(project, [])
    lines = [line for line in log.splitlines() if "unsubscribed" in line]
    assert len(lines) == 2, log
    assert "ada@example.org (source: web)" in lines[0]
    assert "grace@example.org (source: web)" in lines[1]
    assert all(token not in log for token in tokens)
