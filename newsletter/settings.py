"""Every knob of the service: its default, its environment variable, its checks.

Values come from `NEWSLETTER_*` environment variables or a `.env` file in the working
directory (environment wins). Defaults make `make demo` work with no configuration;
paths are relative to the working directory. Impossible values fail here, at start.
"""

from __future__ import annotations

import re
import ssl
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
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

# The templates shipped inside the package: the default wherever `newsletter` is installed.
PACKAGED_TEMPLATES = Path(str(resources.files("newsletter").joinpath("templates")))

# Used only for dry runs and previews when no secret_key is configured: tokens signed
# with it are never sent to anyone.
DEV_SECRET_KEY = "newsletter-dev-key-not-for-real-sends"

DAILY_PAPERS_API = "https://huggingface.co/api/daily_papers"
MAX_DOMAIN_CHARS = 253  # the longest DNS name (a Message-ID ends in the sender's domain)
MAX_DIGEST_NAME = 60  # the digest's name heads the email and its List-Id header
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
        allow_inf_nan=False,  # "inf" would mean: wait forever, or crash the rate limiter
    )

    # Files and folders (relative paths are relative to the working directory)
    database_path: Path = Field(
        default=Path("newsletter.db"),
        description="the SQLite state file: papers, issues and who was sent what",
    )
    inbox_dir: Path = Field(
        default=Path("inbox"), description="where new dumps arrive (fetched or copied in)"
    )
    outbox_dir: Path = Field(
        default=Path("outbox"), description="where dry runs and previews write their files"
    )
    subscribers_file: Path = Field(
        default=Path("subscribers.yaml"), description="who receives the digest, and on what"
    )
    templates_dir: Path = Field(
        default=PACKAGED_TEMPLATES,
        description="your own copy of the templates (`newsletter init --templates` makes one); "
        "default: the ones inside the package",
    )

    # What the email says about itself
    from_address: str = Field(
        default="Research Digest <digest@example.org>",
        description="the From header: a name and an address your mail server may send as",
    )
    digest_name: str = Field(
        default="Research Digest",
        description="the digest's name: the email's header, its List-Id and the feed's title",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where `newsletter serve` is reached from outside (https): the start "
        "of every unsubscribe link",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs the links in emails; real sends need one of 32 characters or more",
    )

    # SMTP
    smtp_host: str = Field(default="127.0.0.1", description="the SMTP server")
    smtp_port: int = Field(
        default=25, ge=1, le=65535, description="its port (25, 587 with starttls, 465 with tls)"
    )
    smtp_username: str | None = Field(default=None, description="AUTH user name; unset: no AUTH")
    smtp_password: SecretStr | None = Field(default=None, description="AUTH password")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none, starttls or tls"
    )
    smtp_timeout: float = Field(
        default=30.0, gt=0, le=3600, description="seconds to wait for each SMTP reply"
    )
    # RFC 5321 4.5.3.2 says 10 minutes: the message is handed over by then, so giving up
    # early risks a duplicate.
    smtp_data_timeout: float = Field(
        default=600.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds to wait for the reply to the end of a message",
    )
    smtp_concurrency: int = Field(
        default=4, ge=1, le=64, description="connections to the SMTP server at once"
    )
    smtp_rate_per_second: float | None = Field(
        default=None, gt=0, description="at most this many messages a second; unset: no limit"
    )
    smtp_rate_per_hour: float | None = Field(
        default=None, gt=0, description="at most this many messages an hour; unset: no limit"
    )
    smtp_max_attempts: int = Field(
        default=4, ge=1, le=20, description="tries per message on a temporary failure"
    )
    smtp_retry_base_delay: float = Field(
        default=1.0, ge=0, description="seconds before the first retry; doubles each time"
    )
    smtp_pause_after: int = Field(
        default=10,
        ge=1,
        description="temporary failures in a row after which sending pauses until the next run",
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="an extra CA bundle (PEM), e.g. a lab's private CA"
    )

    # Schedule
    send_time: time = Field(
        default=time(7, 0), description="when the daily issue goes out (HH:MM, in timezone)"
    )
    # Fetching the day's papers from the source (an empty source_url: only the inbox)
    source_url: str = Field(
        default=DAILY_PAPERS_API,
        description="where `fetch` and the service get the day's papers; empty: no fetching",
    )
    fetch_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="the longest one fetch may take, in seconds, retries included",
    )
    # None becomes FETCH_LEAD before send_time (in the validator, which sees send_time)
    fetch_time: time = Field(
        default=None,  # type: ignore[assignment]
        description="when the service fetches the day's papers (HH:MM, before send_time); "
        "default: one hour before send_time",
    )
    fetch_retry_interval: float = Field(
        default=20.0,
        gt=0,
        le=24 * 60,
        description="minutes between fetches after a failure or an empty day, until send_time",
    )
    timezone: str = Field(default="UTC", description="the zone of the times, e.g. Europe/Berlin")
    weekly_day: int = Field(
        default=0, ge=0, le=6, description="the day weekly subscribers get theirs (monday..sunday)"
    )

    # Composing: worker processes that render and build messages
    compose_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="worker processes that build messages; unset: one per core from 500 "
        "messages on; 0: none",
    )

    # The service (`newsletter run`)
    intake_interval: float = Field(
        default=5.0, gt=0, le=3600, description="seconds between two looks at the inbox"
    )
    settle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="a file unchanged this many seconds is complete and may be taken",
    )
    parse_timeout: float = Field(
        default=60.0, gt=0, le=3600, description="seconds one dump may take to parse"
    )
    max_dump_mb: float = Field(
        default=64.0, gt=0, le=4096, description="a larger file in the inbox is rejected unread"
    )
    send_grace: timedelta = Field(
        default=timedelta(hours=3),
        description="how late a missed send still goes out (hours, or e.g. 90m)",
    )

    # Ranking
    ranking_model: Literal["lexical", "semantic"] = Field(
        default="lexical",
        description="lexical, or semantic (needs the extra: pip install 'newsletter[semantic]')",
    )

    # Readers on the web (`newsletter serve`): sign-up links expire after this many hours;
    # sign-ups are throttled per address and per client ("N/second|minute|hour|day").
    confirm_max_age: float = Field(
        default=48.0,
        gt=0,
        le=24 * 30,
        description="hours a sign-up's confirmation link works; unconfirmed sign-ups are "
        "purged after it",
    )
    signup_limit_per_address: str = Field(
        default="3/hour", description="sign-ups accepted per address (N/second|minute|hour|day)"
    )
    signup_limit_per_client: str = Field(
        default="20/hour", description="sign-ups accepted per client IP (N/minute, N/hour, ...)"
    )

    @field_validator("signup_limit_per_address", "signup_limit_per_client")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate; use a count per unit, e.g. 3/hour or 20/minute"
            ) from None
        return value

    @field_validator(
        "database_path",
        "inbox_dir",
        "outbox_dir",
        "subscribers_file",
        "templates_dir",
        mode="before",
    )
    @classmethod
    def _path_given(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and not value.strip():
            default = cls.model_fields[str(info.field_name)].default
            raise ValueError(f"is empty; set it to a path, or unset it for the default {default}")
        return value

    @field_validator("database_path")
    @classmethod
    def _database_is_a_file(cls, value: Path) -> Path:
        if value.is_dir():
            raise ValueError(
                f"{value} is a folder; name the database file in it, e.g. {value / 'newsletter.db'}"
            )
        return value

    @field_validator("smtp_ca_file", mode="before")
    @classmethod
    def _blank_ca_file_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_ca_file")
    @classmethod
    def _readable_ca_bundle(cls, value: Path | None) -> Path | None:
        """The file must hold PEM certificates that TLS can load: checked now, not at the
        first connection (where it read as "the server did not accept a connection")."""
        if value is None:
            return value
        fix = "set it to a PEM file of CA certificates, or unset it"
        try:
            ssl.create_default_context(cafile=value)
        except ssl.SSLError as exc:  # (an OSError too: first)
            raise ValueError(
                f"{value}: not a PEM bundle of CA certificates ({exc.reason or exc}); {fix}"
            ) from None
        except FileNotFoundError:
            raise ValueError(f"{value}: no such file; {fix}") from None
        except OSError as exc:
            raise ValueError(f"{value}: cannot read it ({exc.strerror}); {fix}") from None
        return value

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
        problem = value and _url_problem(value, base=False)
        if problem:
            raise ValueError(
                f"{value!r} {problem}, e.g. {DAILY_PAPERS_API}, or empty to only watch the inbox"
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
        value = value.strip()
        problem = _url_problem(value, base=True)
        if problem:
            raise ValueError(f"{value!r} {problem}, e.g. https://news.lab.org")
        return value.rstrip("/")

    @field_validator("digest_name")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or len(value) > MAX_DIGEST_NAME:
            raise ValueError(
                f"{value!r} must be a name of 1 to {MAX_DIGEST_NAME} characters, "
                "e.g. 'Lab Reading List'"
            )
        return value

    @field_validator("from_address")
    @classmethod
    def _from_has_address(cls, value: str) -> str:
        from email.utils import parseaddr

        address = parseaddr(value)[1]
        if "@" not in address:
            raise ValueError(f"{value!r} has no address; use e.g. 'Digest <digest@lab.org>'")
        if len(address.rpartition("@")[2]) > MAX_DOMAIN_CHARS:
            raise ValueError(f"{value!r}: the domain is longer than a domain name can be")
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


def _url_problem(value: str, *, base: bool) -> str | None:
    """What is wrong with an http(s) URL setting, or None. A base URL is the start of
    every link (`{base}/unsubscribe/<token>`): it cannot carry a query or a fragment."""
    if any(char.isspace() or not char.isprintable() for char in value):
        return "contains a space or a control character (write a space as %20)"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    try:
        if parts.port == 0:
            return "has an invalid port"
    except ValueError:  # not a number, or over 65535
        return "has an invalid port"
    if base and (parts.query or parts.fragment):
        return "cannot hold a query (?) or a fragment (#): links are built by adding to it"
    return None


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors (and a .env file that cannot be read)
    into one clear ConfigError."""
    env_file = Path(str(Settings.model_config.get("env_file") or ".env")).absolute()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            env = f"NEWSLETTER_{name.upper()}" if error["loc"] else "settings"
            cause = error.get("ctx", {}).get("error")
            message = str(cause) if error["type"] == "value_error" and cause else error["msg"]
            problems.append(f"{env}: {message}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{env_file}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"{env_file}: cannot read it ({exc.strerror}); fix its permissions or remove it"
        ) from exc
