"""The inbox folder: tell complete dumps from files still arriving, ingest, file away.

A file is taken only when it is complete. Hidden and temporary names are never looked
at (`.*`, `*.part`, `*.tmp`, `*~`, and the browsers' `*.crdownload`, `*.partial`,
`*.download`), and a file must have kept its size and modification time for
`settle_seconds`: either its modification time is that old and it has not changed since
the previous look, or this process has seen it unchanged for that long. Every write moves
the modification time, so a dump still being copied is never half-read (a copier that
stops for longer than `settle_seconds` mid-file should write to a `.part` name and
rename it when done). The bytes read are checked against a second look at the file, and
a file that changed while being read waits for the next pass.

A taken file moves to `processed/`. A file that is not a dump moves to `rejected/`, with
`<name>.error.txt` beside it saying why (file, line, what was expected). A bad file never
blocks the next one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.errors import DumpError
from newsletter.parse_guard import GuardedParser, ParseStopped
from newsletter.pipeline import IngestReport, ingest_data
from newsletter.store import Store

PROCESSED = "processed"
REJECTED = "rejected"
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download")

log = logging.getLogger(__name__)

Signature = tuple[int, int]  # size, modification time (ns)


def is_candidate_name(name: str) -> bool:
    """May a file of this name be a finished dump? (Not hidden, not a temporary name.)"""
    lowered = name.lower()
    return not (
        name.startswith(".")
        or name.endswith("~")
        or lowered.endswith(TEMPORARY_SUFFIXES)
        or lowered.endswith(".error.txt")
    )


def _signature(stat: os.stat_result) -> Signature:
    return stat.st_size, stat.st_mtime_ns


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem.2.suffix` (3, 4...) when that is taken."""
    target = folder / name
    stem, dot, suffix = name.partition(".")
    number = 2
    while target.exists() or target.with_name(target.name + ".error.txt").exists():
        target = folder / (f"{stem}.{number}{dot}{suffix}" if dot else f"{name}.{number}")
        number += 1
    return target


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one file: ingested (`report`) or rejected (`error`)."""

    name: str  # the file's name in the inbox
    moved_to: Path | None  # where it is now (None if it could not be moved)
    report: IngestReport | None = None
    error: str | None = None
    error_file: Path | None = None


class Inbox:
    """Watches one folder; `scan` takes every complete file in it."""

    def __init__(
        self,
        folder: Path,
        *,
        settle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        parser: GuardedParser | None = None,
    ) -> None:
        self.folder = folder
        self.parser = parser  # None: parse in this process (the CLI, tests)
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._seen: dict[str, tuple[Signature, float]] = {}  # name -> (signature, since)
        self._stuck: dict[str, Signature] = {}  # could not be moved: not taken again

    def ready(self) -> list[Path]:
        """The files that are complete now, oldest first."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        now, wall = self._clock(), self._wall_clock()
        ready: list[tuple[int, str, Path]] = []
        present: set[str] = set()
        for entry in entries:
            if not is_candidate_name(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone between listing and looking
            present.add(entry.name)
            signature = _signature(stat)
            if self._stuck.get(entry.name) == signature:
                continue
            previous = self._seen.get(entry.name)
            if previous is not None and previous[0] == signature:
                since = previous[1]
            else:
                self._seen[entry.name] = (signature, now)
                since = now
                if previous is not None:
                    log.debug("%s: still being written (size %d)", entry.path, stat.st_size)
                    continue  # it changed since the last look
            quiet = wall - stat.st_mtime >= self.settle_seconds
            if quiet or now - since >= self.settle_seconds:
                ready.append((stat.st_mtime_ns, entry.name, Path(entry.path)))
        for name in set(self._seen) - present:
            del self._seen[name]
        for name in set(self._stuck) - present:
            del self._stuck[name]
        return [path for *_, path in sorted(ready)]

    def scan(self, store: Store) -> list[IntakeResult]:
        """Take every complete file: ingest it and move it to processed/ or rejected/."""
        results = []
        for path in self.ready():
            result = self.take(store, path)
            if result is not None:
                results.append(result)
        return results

    def take(self, store: Store, path: Path) -> IntakeResult | None:
        """Ingest one file and file it away; None if it changed while being read."""
        try:
            before = path.stat()
            data = path.read_bytes()
            after = path.stat()
        except FileNotFoundError:
            self._seen.pop(path.name, None)
            return None
        except OSError as exc:
            return self._reject(path, f"{path}: cannot read the file: {exc.strerror or exc}")
        if _signature(before) != _signature(after) or len(data) != after.st_size:
            self._seen[path.name] = (_signature(after), self._clock())
            return None
        received_at = datetime.fromtimestamp(after.st_mtime, tz=UTC)
        try:
            parsed = None
            if self.parser is not None:
                parsed = self.parser.parse(data, name=str(path), received_at=received_at)
            report = ingest_data(
                store, data, name=str(path), received_at=received_at, parsed=parsed
            )
        except ParseStopped:
            return None  # the service is stopping: the file is taken on the next start
        except DumpError as exc:
            return self._reject(path, str(exc))
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
            # A parser bug must not block the inbox: the file is set aside with the reason,
            # and the traceback goes to the log for a bug report.
            log.exception("%s: internal error while parsing", path)
            return self._reject(
                path,
                f"{path}: could not be parsed because of an internal error "
                f"({type(exc).__name__}: {exc}); please report it with this file",
            )
        moved = self._move(path, PROCESSED, _signature(after))
        return IntakeResult(path.name, moved, report=report)

    def _move(self, path: Path, subfolder: str, signature: Signature | None) -> Path | None:
        folder = self.folder / subfolder
        try:
            folder.mkdir(exist_ok=True)
            target = _free_name(folder, path.name)
            os.replace(path, target)
        except OSError as exc:
            log.error(
                "%s: cannot move it to %s/ (%s); it stays in the inbox and is not taken "
                "again until it changes: check the folder's permissions",
                path,
                folder,
                exc.strerror or exc,
            )
            if signature is not None:
                self._stuck[path.name] = signature
            return None
        self._seen.pop(path.name, None)
        return target

    def _reject(self, path: Path, error: str) -> IntakeResult:
        try:
            signature: Signature | None = _signature(path.stat())
        except OSError:
            signature = None
        moved = self._move(path, REJECTED, signature)
        error_file = None
        if moved is not None:
            error_file = moved.with_name(moved.name + ".error.txt")
            try:
                error_file.write_text(error_report(path.name, error, self.folder), "utf-8")
            except OSError as exc:
                log.error("cannot write %s: %s", error_file, exc.strerror or exc)
                error_file = None
        return IntakeResult(path.name, moved, error=error, error_file=error_file)


def error_report(name: str, error: str, inbox: Path) -> str:
    """The text of `<name>.error.txt`: what was wrong and what to do."""
    return (
        f"{name} was not ingested: it is not a Daily Papers dump that newsletter can read.\n"
        "\n"
        f"{error}\n"
        "\n"
        "A dump is a capture of the Hugging Face Daily Papers pages (a day, Trending or a\n"
        "search): the page text copied from the browser (with or without each link's URL),\n"
        "the page saved as HTML, a Markdown or text-browser (lynx, w3m) scrape, or the JSON\n"
        "of the daily papers API (/api/daily_papers; 'newsletter fetch' gets it for you).\n"
        "It must show paper links or arXiv ids, the page's own header, or entries with an\n"
        "authors and date line.\n"
        f"Fix the file or capture the page again, then put it into {inbox}/ again.\n"
    )
