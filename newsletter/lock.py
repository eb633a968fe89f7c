"""One process at a time per database: the lock file beside it.

`newsletter run` (and a real `newsletter send`) holds an exclusive `flock` on
`<database>.lock` for as long as it runs, with its pid written in the file so that a
second one can say who is in the way. The kernel drops the lock when the process ends,
however it ends, so a crash never leaves a stale lock behind; the file itself stays.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from newsletter.errors import AlreadyRunningError

_TRIES = 5


def lock_path(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + ".lock")


def _read_holder(path: Path) -> tuple[int | None, str]:
    """The pid and command written in a lock file (None, "" when unreadable)."""
    try:
        first, _, rest = path.read_text(encoding="utf-8").partition("\n")
    except OSError:
        return None, ""
    return (int(first) if first.strip().isdigit() else None), rest.strip()


class DatabaseLock:
    """An exclusive lock on one database, taken by `acquire` and dropped by `release`."""

    def __init__(self, database_path: Path, *, command: str) -> None:
        self.database_path = database_path
        self.path = lock_path(database_path)
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> DatabaseLock:
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        # A few tries: `holder` (the status command) takes the lock shared for an instant.
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt + 1 < _TRIES:
                    time.sleep(0.05)
        else:
            os.close(fd)
            pid, command = _read_holder(self.path)
            who = f"pid {pid}" if pid is not None else "another process"
            what = f" ('newsletter {command}')" if command else ""
            stop = f"stop it first (kill {pid})" if pid is not None else "stop it first"
            raise AlreadyRunningError(
                f"{self.database_path} is in use by {who}{what}; only one may run per "
                f"database: {stop}, or set NEWSLETTER_DATABASE_PATH to another database",
                pid=pid,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{self.command}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass  # the lock still goes with the descriptor
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


@dataclass(frozen=True)
class Holder:
    """Who holds a database's lock: its pid (None while it has not written it yet) and
    the command it recorded: "run" (the service), "run --once" or "send"."""

    pid: int | None
    command: str

    @property
    def is_service(self) -> bool:
        return self.command == "run"


def holder(database_path: Path) -> Holder | None:
    """The process that holds the database's lock, or None if none does."""
    path = lock_path(database_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return Holder(*_read_holder(path))
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
