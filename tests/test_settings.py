"""Settings: defaults work with no configuration; bad values fail at load with the variable name."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.settings import DAILY_PAPERS_API, DEV_SECRET_KEY, load_settings


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.database_path == Path("newsletter.db")
    assert settings.outbox_dir == Path("outbox")
    assert settings.smtp_tls == "none" and settings.smtp_concurrency == 4
    assert settings.send_time == time(7, 0)
    assert settings.signing_key(dry_run=True) == DEV_SECRET_KEY


def test_environment_and_dotenv(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".env").write_text(
        "NEWSLETTER_SEND_TIME=18:45\nNEWSLETTER_TIMEZONE=Europe/Berlin\n"
    )
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", "America/New_York")
    settings = load_settings()
    assert settings.send_time == time(18, 45)
    assert settings.timezone == "America/New_York"  # the environment wins over .env


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NEWSLETTER_TIMEZONE", "Mars/Olympus", "NEWSLETTER_TIMEZONE"),
        ("NEWSLETTER_SEND_TIME", "25:00", "NEWSLETTER_SEND_TIME"),
        ("NEWSLETTER_SMTP_TLS", "ssl", "NEWSLETTER_SMTP_TLS"),
        ("NEWSLETTER_SMTP_PORT", "0", "NEWSLETTER_SMTP_PORT"),
        ("NEWSLETTER_BASE_URL", "example.org", "NEWSLETTER_BASE_URL"),
        ("NEWSLETTER_FROM_ADDRESS", "nobody", "NEWSLETTER_FROM_ADDRESS"),
        ("NEWSLETTER_WEEKLY_DAY", "someday", "NEWSLETTER_WEEKLY_DAY"),
        ("NEWSLETTER_SOURCE_URL", "huggingface.co/api", "NEWSLETTER_SOURCE_URL"),
        ("NEWSLETTER_FETCH_TIMEOUT", "0", "NEWSLETTER_FETCH_TIMEOUT"),
        ("NEWSLETTER_FETCH_TIME", "6 am", "NEWSLETTER_FETCH_TIME"),
        ("NEWSLETTER_FETCH_RETRY_INTERVAL", "-5", "NEWSLETTER_FETCH_RETRY_INTERVAL"),
    ],
)
def test_impossible_values_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=expected):
        load_settings()


def test_weekday_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_WEEKLY_DAY", "Friday")
    assert load_settings().weekly_day == 4


def test_password_without_user_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "smtp_username" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_real_send_requires_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        load_settings().signing_key(dry_run=False)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "k" * 32)
    assert load_settings().signing_key(dry_run=False) == "k" * 32


def test_fetching_defaults_to_the_api_an_hour_before_the_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NEWSLETTER_SOURCE_URL")  # the tests' fixture turns fetching off
    settings = load_settings()
    assert settings.source_url == DAILY_PAPERS_API
    assert settings.fetch_timeout == 60 and settings.fetch_retry_interval == 20
    assert settings.fetch_time == time(6, 0)
    monkeypatch.setenv("NEWSLETTER_SEND_TIME", "18:45:30")
    assert load_settings().fetch_time == time(17, 45, 30)
    monkeypatch.setenv("NEWSLETTER_SEND_TIME", "00:20")
    assert load_settings().fetch_time == time(0, 0)  # not before midnight
    monkeypatch.setenv("NEWSLETTER_SOURCE_URL", "  ")
    assert load_settings().source_url == ""  # empty: fetching is off


def test_fetch_time_is_parsed_like_the_send_time_and_must_come_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_SEND_TIME", "07:30")
    monkeypatch.setenv("NEWSLETTER_FETCH_TIME", "5:15")
    assert load_settings().fetch_time == time(5, 15)
    monkeypatch.setenv("NEWSLETTER_FETCH_TIME", "07:29:59")
    assert load_settings().fetch_time == time(7, 29, 59)
    for late in ("07:30", "09:00"):
        monkeypatch.setenv("NEWSLETTER_FETCH_TIME", late)
        with pytest.raises(ConfigError, match="NEWSLETTER_FETCH_TIME") as caught:
            load_settings()
        assert "before the send time 07:30" in str(caught.value)
