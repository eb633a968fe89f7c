"""Parse a dump in a child process, bounded in time and size, so no file can hold the
service: the scheduler, the stop signal and the send never wait on a parser.

A parser that runs longer than `parse_timeout` seconds (or a file larger than
`max_dump_bytes`) is a `DumpError` for that file, which is then rejected like any other
non-dump, and the child is killed. Parsing holds the GIL, so a thread would not do:
each file is parsed by `python -m newsletter.parse_guard`, a fresh interpreter that
reads the bytes on stdin and writes the pickled `Dump` (or the error) on stdout.
`stop()` kills a parse in progress at once.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

from newsletter.dumps import Dump, decode_dump
from newsletter.errors import DumpError

POLL = 0.1  # seconds between two looks at the stop flag while a child parses


class ParseStopped(Exception):
    """The service is stopping: the parse in progress was abandoned (the file stays)."""


class GuardedParser:
    """Parses dumps one at a time, each in a child process; one per service."""

    def __init__(self, *, timeout: float, max_bytes: int) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._stopping = threading.Event()

    def parse(self, data: bytes, *, name: str, received_at: datetime) -> Dump:
        """The dump in `data`; DumpError when it is not one, too large or too slow."""
        if len(data) > self.max_bytes:
            raise DumpError(
                f"not ingested: the file has {len(data):,} bytes, more than the "
                f"{self.max_bytes:,} a dump may have (NEWSLETTER_MAX_DUMP_MB); a day's "
                "page is well under 10 MB: check that this is a capture of it",
                path=name,
            )
        if self._stopping.is_set():
            raise ParseStopped(name)
        # The bytes go in through a file: a pipe would need writing alongside the waits.
        with tempfile.TemporaryFile() as source:
            source.write(data)
            source.seek(0)
            child = subprocess.Popen(
                [sys.executable, "-m", "newsletter.parse_guard", name, received_at.isoformat()],
                stdin=source,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                out, err = self._wait(child, name)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        return _result(out, err, child.returncode, name)

    def _wait(self, child: subprocess.Popen[bytes], name: str) -> tuple[bytes, bytes]:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return child.communicate(timeout=POLL)
            except subprocess.TimeoutExpired:
                pass
            if self._stopping.is_set():
                raise ParseStopped(name)
            if time.monotonic() >= deadline:
                raise DumpError(
                    f"not ingested: parsing took longer than {self.timeout:g} s "
                    "(NEWSLETTER_PARSE_TIMEOUT) and was stopped; a real capture parses "
                    "in well under a second: check the file",
                    path=name,
                )

    def stop(self) -> None:
        """Abandon a parse in progress and start no other (the service is stopping)."""
        self._stopping.set()


def _result(out: bytes, err: bytes, code: int | None, name: str) -> Dump:
    if code == 0:
        kind, value = pickle.loads(out)
        if kind == "dump" and isinstance(value, Dump):
            return value
        if kind == "error" and isinstance(value, tuple):
            message, path, line = value
            error = DumpError("", path=path, line=line)
            error.args = (message,)
            raise error
    last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
    raise DumpError(
        f"could not be parsed: the parser stopped with exit code {code} ({last}); "
        "please report it with this file",
        path=name,
    )


def main() -> None:
    """The child: bytes on stdin, ("dump", Dump) or ("error", (message, path, line))
    pickled on stdout."""
    name, received = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    data = sys.stdin.buffer.read()
    try:
        result: tuple[str, object] = ("dump", decode_dump(data, name=name, received_at=received))
    except DumpError as exc:
        result = ("error", (str(exc), exc.path, exc.line))
    sys.stdout.buffer.write(pickle.dumps(result))


if __name__ == "__main__":
    main()
