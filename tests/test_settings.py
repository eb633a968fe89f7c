"""Settings: defaults work with no configuration; bad values fail at load with the variable name."""

from __future__ import annotations

import subprocess
from datetime import time
from pathlib import Path

import pytest

from newsletter.cli import main
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


# --- values that used to pass the checks and fail later (or never) -----------------------


def _status(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`newsletter status` through the CLI: its exit code and its lines on stderr."""
    code = main(["status"])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # before: accepted, then a send waited forever on a stuck server
        ("NEWSLETTER_SMTP_TIMEOUT", "inf", "NEWSLETTER_SMTP_TIMEOUT: Input should be a finite"),
        ("NEWSLETTER_SMTP_TIMEOUT", "86400", "NEWSLETTER_SMTP_TIMEOUT: Input should be less"),
        # before: accepted, then an OverflowError traceback at send time
        (
            "NEWSLETTER_SMTP_RATE_PER_SECOND",
            "inf",
            "NEWSLETTER_SMTP_RATE_PER_SECOND: Input should be a finite number",
        ),
        ("NEWSLETTER_SMTP_RATE_PER_HOUR", "nan", "NEWSLETTER_SMTP_RATE_PER_HOUR: Input should"),
        # before: a traceback (PosixPath('.') has an empty name)
        (
            "NEWSLETTER_DATABASE_PATH",
            "",
            "NEWSLETTER_DATABASE_PATH: is empty; set it to a path, or unset it for the default "
            "newsletter.db",
        ),
        ("NEWSLETTER_OUTBOX_DIR", " ", "NEWSLETTER_OUTBOX_DIR: is empty"),
        # before: accepted (the check looked at the start of the value only)
        (
            "NEWSLETTER_BASE_URL",
            "http://x y",
            "NEWSLETTER_BASE_URL: 'http://x y' contains a space or a control character (write "
            "a space as %20), e.g. https://news.lab.org",
        ),
        ("NEWSLETTER_BASE_URL", "https://news.lab.org:99999", "has an invalid port"),
        ("NEWSLETTER_BASE_URL", "https://news.lab.org/?list=1", "cannot hold a query"),
        ("NEWSLETTER_SOURCE_URL", "https://hf.co/api papers", "contains a space"),
        ("NEWSLETTER_FROM_ADDRESS", f"D <d@{'x' * 250}.org>", "longer than a domain name"),
    ],
)
def test_values_that_cannot_work_fail_at_start_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
    message: str,
) -> None:  # fmt: skip
    monkeypatch.setenv(variable, value)
    code, lines = _status(capsys)
    assert code == 1
    (line,) = lines
    assert line.startswith(f"error: invalid settings: {variable}: ") and message in line


def test_a_folder_as_the_database_is_refused(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "state").mkdir()
    monkeypatch.setenv("NEWSLETTER_DATABASE_PATH", "state")
    assert _status(capsys) == (
        1,
        [
            "error: invalid settings: NEWSLETTER_DATABASE_PATH: state is a folder; name the "
            "database file in it, e.g. state/newsletter.db"
        ],
    )


def test_a_dotenv_that_is_not_utf8_is_one_line_naming_it(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a UnicodeDecodeError traceback from every command."""
    (isolated / ".env").write_bytes(b"NEWSLETTER_SEND_TIME=08:00\n# caf\xe9 au lait\n")
    assert _status(capsys) == (
        1,
        [f"error: {isolated / '.env'}: not UTF-8 text (byte 0xe9 at offset 32); save it as UTF-8"],
    )


def test_the_smtp_ca_file_is_checked_at_start(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: accepted, and the first send said "the SMTP server did not accept a
    connection ([Errno 2] No such file or directory)"."""
    fix = "set it to a PEM file of CA certificates, or unset it"
    missing = isolated / "missing.pem"
    junk = isolated / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = {
        str(missing): f"{missing}: no such file; {fix}",
        str(junk): f"{junk}: not a PEM bundle of CA certificates (NO_CERTIFICATE_OR_CRL_FOUND); {fix}",
        str(isolated): f"{isolated}: cannot read it (Is a directory); {fix}",
    }  # fmt: skip
    for value, message in cases.items():
        monkeypatch.setenv("NEWSLETTER_SMTP_CA_FILE", value)
        assert _status(capsys) == (
            1,
            [f"error: invalid settings: NEWSLETTER_SMTP_CA_FILE: {message}"],
        )
    bundle = isolated / "ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(isolated / "key.pem"), "-out", str(bundle), "-subj", "/CN=lab CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("NEWSLETTER_SMTP_CA_FILE", str(bundle))
    assert load_settings().smtp_ca_file == bundle
    monkeypatch.setenv("NEWSLETTER_SMTP_CA_FILE", "")  # empty: unset
    assert load_settings().smtp_ca_file is None
