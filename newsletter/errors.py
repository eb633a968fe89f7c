"""The one error hierarchy of the package.

Every error a user can cause (a bad file, a bad setting, a refused address) is a
`NewsletterError` whose message says what happened and how to fix it. Only `cli.py`
turns these into text and exit codes.
"""

from __future__ import annotations

import errno
from pathlib import Path

# The OS errors that mean the disk is full: "no space left on device", "quota exceeded".
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class NewsletterError(Exception):
    """Base class: a problem the user can act on; the message says how."""


class ConfigError(NewsletterError, ValueError):
    """A setting is missing, malformed or impossible."""


class LocatedError(NewsletterError, ValueError):
    """A problem in a file the user edits or supplies: the message starts `file:line:`."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")


class DumpError(LocatedError):
    """A file is not a Daily Papers dump (or cannot be read as one)."""


class SubscribersError(LocatedError):
    """The subscribers YAML file is missing, malformed or invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.field = field
        super().__init__(message, path=path, line=line)


class SignupError(NewsletterError, ValueError):
    """A sign-up or preferences form that cannot be accepted; says which field and why."""


class StoreError(NewsletterError, RuntimeError):
    """The SQLite state cannot be opened or is in an unexpected shape."""


class NoDatabaseError(StoreError):
    """A command that reads the state was pointed at a database file that does not exist
    (a mistyped NEWSLETTER_DATABASE_PATH, or nothing ingested in this folder yet)."""


class NotFoundError(NewsletterError, LookupError):
    """Something the user named (a dump, by id or file name) is not in the database."""


class TemplateError(NewsletterError, RuntimeError):
    """A template failed to load, compile or render."""


class DeliveryError(NewsletterError, RuntimeError):
    """Sending (or writing) messages failed in a way that stops the run."""


class FetchError(NewsletterError, RuntimeError):
    """The day's papers could not be fetched from the source: `url` is the request's URL
    (with its date), `status` the last HTTP status (None when no reply came)."""

    def __init__(self, message: str, *, url: str, status: int | None = None):
        self.url = url
        self.status = status
        super().__init__(message)


class AlreadyRunningError(NewsletterError, RuntimeError):
    """Another process holds the database's lock (a second `newsletter run`)."""

    def __init__(self, message: str, *, pid: int | None = None):
        self.pid = pid
        super().__init__(message)
