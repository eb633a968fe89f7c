"""A real uvicorn server for tests: the newsletter web app on 127.0.0.1, port 0, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from newsletter.web import bind, url_of


@contextmanager
def running(make_app: Callable[[str], ASGIApp]) -> Iterator[str]:
    """Serve the app `make_app(base_url)` until the block ends; yields the base URL
    (http://127.0.0.1:PORT), known before the app is made so its links can point at it."""
    sock = bind("127.0.0.1", 0)
    url = url_of(sock)
    server = uvicorn.Server(
        uvicorn.Config(make_app(url), lifespan="off", access_log=False, log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # Wait on the server's own flag, not a clock: the socket already listens, so a
        # request sent now would queue anyway; this just keeps shutdown orderly.
        while not server.started and thread.is_alive():
            thread.join(0.01)
        assert server.started, "the web server did not start"
        yield url
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
