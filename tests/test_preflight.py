"""The real-send preflight: each refusal leaves a real SMTP server without a message and
the ledger without a send; a configuration that passes does send."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.pipeline import ingest_file
from newsletter.preflight import (
    MIN_SECRET_CHARS,
    base_url_problem,
    from_address_problem,
    private_host,
    secret_key_problem,
    send_problems,
)
from newsletter.settings import DEV_SECRET_KEY, load_settings
from newsletter.store import Store
from tests.factories import REAL_SEND_ENV, write_subscribers
from tests.smtp_server import RunningServer, smtp_server

# -- the rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://news.lab.org",
        "https://127.0.0.1",
        "https://127.0.0.1:8443",
        "https://localhost:8000",
        "https://app.localhost",
        "https://10.1.2.3",
        "https://192.168.1.5",
        "https://172.16.0.1",
        "https://169.254.1.1",
        "https://[::1]:8000",
        "https://[fe80::1]",
        "https://0.0.0.0",
        "https://127.1",
        "https://2130706433",
        "https://[::ffff:127.0.0.1]",
        "https://newsserver",
        "https://news.lab.local",
        "https://digest.svc.internal",
        "https://100.64.0.1",
    ],
)
def test_base_urls_that_no_subscriber_can_reach_are_refused(url: str) -> None:
    problem = base_url_problem(url)
    assert problem is not None and problem.setting == "NEWSLETTER_BASE_URL"
    assert url in problem.message and "newsletter serve" in problem.message


# Written after the rules, and not used while writing them: other spellings of the same
# kinds of address.
@pytest.mark.parametrize(
    "url",
    [
        "https://0x7f000001",
        "https://LOCALHOST.",
        "https://[fd12:3456::1]",
        "https://[::]",
        "https://224.0.0.1",
        "https://017700000001",
        "https://printer.home.arpa",
        "https://mail.corp",
        "HTTP://news.lab.org",
    ],
)
def test_held_out_spellings_of_unreachable_base_urls(url: str) -> None:
    assert base_url_problem(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://news.lab.org",
        "https://news.example.org:8443/digest",
        "https://8.8.8.8",
        "https://[2606:4700::1111]",
        "https://1e100.net",
        "https://123.de",
    ],
)
def test_public_https_base_urls_pass(url: str) -> None:
    assert base_url_problem(url) is None


def test_private_host_says_what_kind_of_address() -> None:
    assert "loopback" in (private_host("127.0.0.2") or "")
    assert "private" in (private_host("10.0.0.1") or "")
    assert "link-local" in (private_host("169.254.0.9") or "")
    assert "unspecified" in (private_host("0.0.0.0") or "")
    assert "single-label" in (private_host("intranet") or "")


def test_the_placeholder_from_address_is_refused_however_it_is_written() -> None:
    default = str(load_settings().from_address)
    assert from_address_problem(default) is not None
    assert from_address_problem("Someone Else <DIGEST@Example.org>") is not None
    assert from_address_problem("Lab Digest <digest@lab.org>") is None
    assert from_address_problem("digest@news.example.org") is None


def test_secret_keys_must_be_long_and_private() -> None:
    for key in (None, "", "abc", "k" * (MIN_SECRET_CHARS - 1), DEV_SECRET_KEY):
        problem = secret_key_problem(key)
        assert problem is not None and problem.setting == "NEWSLETTER_SECRET_KEY"
        assert "newsletter init" in problem.message and "token_urlsafe" in problem.message
    assert secret_key_problem("k" * MIN_SECRET_CHARS) is None


def test_every_problem_is_reported_not_just_the_first() -> None:
    settings = load_settings(secret_key="abc")
    assert [p.setting for p in send_problems(settings)] == [
        "NEWSLETTER_BASE_URL",
        "NEWSLETTER_FROM_ADDRESS",
        "NEWSLETTER_SECRET_KEY",
    ]
    assert send_problems(load_settings(**_lowered(REAL_SEND_ENV))) == []


def _lowered(env: dict[str, str]) -> dict[str, str]:
    return {name.removeprefix("NEWSLETTER_").lower(): value for name, value in env.items()}


# -- real sends refused, with a real SMTP server ------------------------------------------


@pytest.fixture
def ready(project: Path) -> tuple[Path, list[str]]:
    """The samples ingested and five subscribers who want their papers."""
    emails = write_subscribers(project / "subscribers.yaml", 5)
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    return project, emails


def newsletter(
    folder: Path, server: RunningServer, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_SOURCE_URL="",
        NEWSLETTER_TEMPLATES_DIR="templates",
        NEWSLETTER_SMTP_PORT=str(server.port),
        # A zone whose clock reads 12:xx now, and a send time an hour or so ago:
        # `run --once` has a send due, whatever the time of day the tests run.
        NEWSLETTER_TIMEZONE=noon_zone(),
        NEWSLETTER_SEND_TIME="11:00",
        NEWSLETTER_SEND_GRACE="3h",
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def noon_zone() -> str:
    offset = 12 - datetime.now(UTC).hour  # local = UTC + offset, within -11..+12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")  # Etc/GMT-5 is UTC+5


def real_sends(folder: Path) -> int:
    """Messages the ledger records as handed to a server (none: no real issue at all)."""
    with Store(folder / "newsletter.db") as store:
        issue = store.last_real_issue()
        return 0 if issue is None else store.counts(issue.id)["sent"]


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("NEWSLETTER_BASE_URL", "http://127.0.0.1:8000", "is not https"),
        ("NEWSLETTER_BASE_URL", "https://10.0.0.7", "a private address (10.0.0.7)"),
        ("NEWSLETTER_FROM_ADDRESS", "Research Digest <digest@example.org>", "placeholder"),
        ("NEWSLETTER_SECRET_KEY", "abc", "is 3 characters long"),
    ],
)
@pytest.mark.parametrize("command", [["send"], ["run", "--once"]])
def test_each_refusal_sends_nothing(
    ready: tuple[Path, list[str]], command: list[str], setting: str, value: str, said: str
) -> None:
    folder, _ = ready
    with smtp_server() as server:
        result = newsletter(folder, server, *command, **{**REAL_SEND_ENV, setting: value})
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: NEWS")]
    assert len(problems) == 1 and problems[0].startswith(f"error: {setting}: ")
    assert said in problems[0]
    assert "nothing was sent" in result.stderr
    assert server.recorder.received == [] and server.recorder.connections == 0
    assert real_sends(folder) == 0


def test_the_defaults_are_refused_with_one_line_per_problem(
    ready: tuple[Path, list[str]],
) -> None:
    folder, _ = ready
    with smtp_server() as server:
        result = newsletter(folder, server, "send")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    for setting in ("BASE_URL", "FROM_ADDRESS", "SECRET_KEY"):
        assert sum(line.startswith(f"error: NEWSLETTER_{setting}: ") for line in lines) == 1
    assert server.recorder.received == [] and real_sends(folder) == 0


def test_the_service_refuses_at_start(ready: tuple[Path, list[str]]) -> None:
    folder, _ = ready
    with smtp_server() as server:
        result = newsletter(folder, server, "run", **{**REAL_SEND_ENV, "NEWSLETTER_SECRET_KEY": ""})
    assert result.returncode == 1  # it exits at once instead of waiting for the send time
    assert "error: NEWSLETTER_SECRET_KEY: is not set" in result.stderr
    assert server.recorder.received == [] and real_sends(folder) == 0


def test_dry_runs_are_not_held_to_the_rules(ready: tuple[Path, list[str]]) -> None:
    folder, emails = ready
    with smtp_server() as server:
        result = newsletter(folder, server, "send", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert server.recorder.received == []
    written = {path.stem for path in (folder / "outbox").rglob("*.eml")}
    assert written and written <= set(emails)


@pytest.mark.parametrize("command", [["send"], ["run", "--once"]])
def test_a_configuration_that_passes_sends(
    ready: tuple[Path, list[str]], command: list[str]
) -> None:
    folder, emails = ready
    with smtp_server() as server:
        result = newsletter(folder, server, *command, **REAL_SEND_ENV)
    assert result.returncode == 0, result.stderr
    received = server.recorder.recipients()
    assert received and set(received) <= set(emails)
    assert set(received.values()) == {1}
    assert real_sends(folder) == len(received)
    message = server.recorder.messages_to(next(iter(received)))[0]
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    assert "digest@news.example.org" in message["From"]
