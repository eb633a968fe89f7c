"""A real HTTP server on 127.0.0.1 (port 0) for the fetch tests: it answers each request
with the next reply of a script (the last one repeats) and records every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted reply."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to stay silent before answering (a source that hangs)
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    path: str
    query: dict[str, list[str]]
    at: float  # time.monotonic() when it arrived


class RunningServer:
    """The server of one test: its base URL, and what it was asked."""

    def __init__(self, script: Sequence[Reply]) -> None:
        if not script:
            raise ValueError("a script needs at least one reply")
        self.script = list(script)
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, path: str = "/api/daily_papers") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.script[min(len(self.requests), len(self.script)) - 1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # hanging replies give up at once
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(10)


def _handler(server: RunningServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            reply = server.next_reply(Request(parts.path, parse_qs(parts.query), time.monotonic()))
            if reply.hang and server.stopping.wait(reply.hang):
                return
            if reply.drop:
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up first

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads `requests`

    return Handler


@contextmanager
def http_server(*script: Reply) -> Iterator[RunningServer]:
    """A running server replaying `script`; stopped on exit."""
    server = RunningServer(script)
    server.start()
    try:
        yield server
    finally:
        server.stop()
