"""Where log records go and how they look: stderr, as text for people or JSON for services.

stdout carries what the user asked for (summaries, tables, JSON); every log record goes to
stderr. The CLI calls `configure` once, before a command runs. How much is logged:
warnings by default, `-v` adds info and `-vv` debug. The long-running commands (`run`,
`serve`) start one step higher, at info: their log is all they have to say, and a
service under systemd that logs nothing when it works cannot be watched (`-q` brings
them down to warnings).

`--log-format json` writes one JSON object per line: `time`, `level`, `logger`,
`message`, plus the structured fields a call passed with `extra=` (`event`, `file`,
`papers`, `email`, ...), so a log collector can filter without parsing sentences.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

TEXT = "text"
JSON = "json"
FORMATS = (TEXT, JSON)

# What the service's text lines look like (a timestamp: they are read after the fact).
SERVICE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
# Libraries that log a line per request or job at info: kept at warnings unless -vv.
CHATTY = ("httpx", "httpcore", "apscheduler", "aiosmtplib", "asyncio", "multipart", "uvicorn")

# Every attribute a plain LogRecord has: the rest came from `extra=` and are fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

_installed: logging.Handler | None = None  # the handler `configure` added last


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class BriefFormatter(logging.Formatter):
    """`warning: message`, like the CLI's own `error:` lines: for commands a person runs."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def level_for(verbosity: int, *, service: bool) -> int:
    """The level for `-v` given `verbosity` times (negative: `-q`); services start at info."""
    step = verbosity + (1 if service else 0)
    return LEVELS[max(0, min(len(LEVELS) - 1, step))]


def formatter_for(log_format: str, *, stamped: bool) -> logging.Formatter:
    if log_format == JSON:
        return JsonFormatter()
    return logging.Formatter(SERVICE_FORMAT) if stamped else BriefFormatter()


def configure(
    *,
    verbosity: int = 0,
    log_format: str = TEXT,
    service: bool = False,
    stamped: bool | None = None,
    stream: TextIO | None = None,
) -> int:
    """Send every log record at or above the chosen level to stderr (`stream`), formatted
    as `log_format`; returns the level. Text lines carry a timestamp, level and logger
    when `stamped` (default: for a service; `run --once` from cron wants them too), else
    read `warning: ...` like the CLI's own messages. Calling it again replaces what it
    set up before (and leaves other handlers, such as a test's capture, alone)."""
    global _installed
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {', '.join(FORMATS)}")
    level = level_for(verbosity, service=service)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(log_format, stamped=service if stamped is None else stamped))
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(level)
    _installed = handler
    for name in CHATTY:
        logging.getLogger(name).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )
    return level
