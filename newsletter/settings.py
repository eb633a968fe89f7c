"""Every knob of the service: its default, its environment variable, its checks.

Values come from `NEWSLETTER_*` environment variables or a `.env` file in the working
directory (environment wins). Defaults make `make demo` work with no configuration;
paths are relative to the working directory. Impossible values fail here, at start.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.errors import ConfigError

# Used only for dry runs and previews when no secret_key is configured: tokens signed
# with it are never sent to anyone.
DEV_SECRET_KEY = "newsletter-dev-key-not-for-real-sends"

DAILY_PAPERS_API = "https://huggingface.co/api/daily_papers"
FETCH_LEAD = timedelta(hours=1)  # the default fetch time is this long before the send time


def parse_time_of_day(value: object) -> object:
    """`HH:MM` or `HH:MM:SS` as a `time`; anything but a string is left to pydantic."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*", value)
        if not match or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
            raise ValueError(f"{value!r} is not a time of day; use HH:MM, e.g. 07:30")
        return time(int(match[1]), int(match[2]), int(match[3] or 0))
    return value


def _clock(at: time) -> str:
    return f"{at:%H:%M}" + (f":{at:%S}" if at.second else "")


class Settings(BaseSettings):
    """The service's configuration (environment variable = NEWSLETTER_ + field name)."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSLETTER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # Files and folders
    database_path: Path = Path("newsletter.db")
    inbox_dir: Path = Path("inbox")
    outbox_dir: Path = Path("outbox")
    subscribers_file: Path = Path("subscribers.yaml")
    templates_dir: Path = Path("templates")

    # What the email says about itself
    from_address: str = "Research Digest <digest@example.org>"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None

    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = Field(default=30.0, gt=0)
    # The wait for the reply to the end of DATA (RFC 5321 4.5.3.2: 10 minutes): the
    # message is handed over by then, so giving up early risks a duplicate.
    smtp_data_timeout: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    smtp_concurrency: int = Field(default=4, ge=1, le=64)
    smtp_rate_per_second: float | None = Field(default=None, gt=0)
    smtp_rate_per_hour: float | None = Field(default=None, gt=0)
    smtp_max_attempts: int = Field(default=4, ge=1, le=20)
    smtp_retry_base_delay: float = Field(default=1.0, ge=0)  # seconds; doubles per retry
    smtp_pause_after: int = Field(default=10, ge=1)  # consecutive transient failures
    smtp_ca_file: Path | None = None  # extra CA bundle, e.g. a lab's private CA

    # Schedule
    send_time: time = time(7, 0)
    # Fetching the day's papers from the source (an empty source_url: only the inbox)
    source_url: str = DAILY_PAPERS_API
    fetch_timeout: float = Field(default=60.0, gt=0, le=3600)  # seconds, retries included
    # None becomes FETCH_LEAD before send_time (in the validator, which sees send_time)
    fetch_time: time = None  # type: ignore[assignment]
    fetch_retry_interval: float = Field(default=20.0, gt=0, le=24 * 60)  # minutes
    timezone: str = "UTC"
    weekly_day: int = Field(default=0, ge=0, le=6)  # weekday of weekly issues, 0 = Monday

    # Composing: worker processes that render and build messages (None: one per core
    # for large issues, in-process for small ones; 0: always in-process)
    compose_workers: int | None = Field(default=None, ge=0, le=64)

    # The service (`newsletter run`)
    intake_interval: float = Field(default=5.0, gt=0, le=3600)  # seconds between inbox looks
    settle_seconds: float = Field(default=5.0, ge=0, le=3600)  # unchanged this long = complete
    parse_timeout: float = Field(default=60.0, gt=0, le=3600)  # seconds one dump may parse
    max_dump_mb: float = Field(default=64.0, gt=0, le=4096)  # a larger file is no dump
    send_grace: timedelta = timedelta(hours=3)  # a missed send still goes out this late

    # Ranking
    ranking_model: Literal["lexical", "semantic"] = "lexical"

    @field_validator("send_time", mode="before")
    @classmethod
    def _parse_send_time(cls, value: object) -> object:
        return parse_time_of_day(value)

    @field_validator("fetch_time", mode="before")
    @classmethod
    def _fetch_before_send(cls, value: object, info: ValidationInfo) -> object:
        """Unset: FETCH_LEAD before the send time (not before 00:00). Set: it must come
        before the send time, or the issue would be built before its papers arrive."""
        send = info.data.get("send_time")
        if value is None or (isinstance(value, str) and not value.strip()):
            if not isinstance(send, time):
                return time(0, 0)  # send_time itself is invalid and reported as such
            day = date(2000, 1, 1)
            wall = datetime.combine(day, send) - FETCH_LEAD
            return wall.time() if wall.date() == day else time(0, 0)
        at = parse_time_of_day(value)
        if isinstance(at, time) and isinstance(send, time) and at >= send:
            raise ValueError(
                f"{_clock(at)} is not before the send time {_clock(send)} "
                "(NEWSLETTER_SEND_TIME): the papers must be fetched before the issue is built; "
                "set an earlier time, or unset it for one hour before the send time"
            )
        return at

    @field_validator("source_url")
    @classmethod
    def _source_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"https?://[^/\s]+", value):
            raise ValueError(
                f"{value!r} must be an absolute http(s) URL, e.g. {DAILY_PAPERS_API}, "
                "or empty to only watch the inbox"
            )
        return value

    @field_validator("send_grace", mode="before")
    @classmethod
    def _parse_grace(cls, value: object) -> object:
        """A plain number is hours; "90m", "2h30m", "45s" say their unit."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(hours=value)
        if isinstance(value, str):
            text = value.strip().lower()
            if re.fullmatch(r"\d+(?:\.\d+)?", text):
                return timedelta(hours=float(text))
            parts = re.fullmatch(
                r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", text
            )
            if parts and text:
                hours, minutes, seconds = (float(part or 0) for part in parts.groups())
                return timedelta(hours=hours, minutes=minutes, seconds=seconds)
            if not text.startswith("p"):  # ISO 8601 durations (PT3H) go to pydantic
                raise ValueError(
                    f"{value!r} is not a duration; use hours (3), or e.g. 90m, 2h30m, 45s"
                )
        return value

    @field_validator("send_grace")
    @classmethod
    def _grace_within_a_day(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value < timedelta(hours=24):
            raise ValueError("must be at least 0 and less than 24 hours, e.g. 3 (hours) or 90m")
        return value

    @field_validator("weekly_day", mode="before")
    @classmethod
    def _weekday_name(cls, value: object) -> object:
        names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        if isinstance(value, str) and not value.strip().isdigit():
            wanted = value.strip().lower()
            for number, name in enumerate(names):
                if len(wanted) >= 3 and name.startswith(wanted):
                    return number
            raise ValueError(f"{value!r} is not a weekday; use e.g. 'monday' or 0 (Monday) to 6")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not a time zone name; use one like 'Europe/Berlin' or 'UTC'"
            ) from exc
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(
                f"{value!r} must be an absolute http(s) URL, e.g. https://news.lab.org"
            )
        return value.rstrip("/")

    @field_validator("from_address")
    @classmethod
    def _from_has_address(cls, value: str) -> str:
        from email.utils import parseaddr

        if "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value!r} has no address; use e.g. 'Digest <digest@lab.org>'")
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> Settings:
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("smtp_password is set but smtp_username is not; set both or neither")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sender_domain(self) -> str:
        from email.utils import parseaddr

        return parseaddr(self.from_address)[1].rpartition("@")[2] or "localhost"

    def signing_key(self, *, dry_run: bool) -> str:
        """The key that signs unsubscribe tokens; real sends require a configured one."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        if dry_run:
            return DEV_SECRET_KEY
        raise ConfigError(
            "secret_key is not set: real sends need it to sign unsubscribe links; "
            "set NEWSLETTER_SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors into one clear ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            env = f"NEWSLETTER_{name.upper()}" if error["loc"] else "settings"
            problems.append(f"{env}: {error['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
