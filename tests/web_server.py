"""Real uvicorn servers for tests: the newsletter web app on 127.0.0.1, port 0, either in
a thread of the test process or as its own `newsletter serve` process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from newsletter.web import bind, url_of

REPO = Path(__file__).resolve().parent.parent


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


@contextmanager
def serving_process(
    folder: Path, env: Mapping[str, str], options: Sequence[str] = ()
) -> Iterator[tuple[str, int]]:
    """`newsletter [options] serve --port 0` as its own process, run in `folder` with the
    variables `env` added; yields its base URL and process id (to read its memory in
    /proc). Its log goes to `folder/serve.log`."""
    with (folder / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", *options, "serve", "--port", "0"],
            cwd=folder,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        url = None
        # `serve` prints this once its socket listens (requests sent now queue).
        for line in process.stdout:
            match = re.search(r"Serving on (http://\S+?)/? ", line)
            if match:
                url = match[1]
                break
        assert url, f"newsletter serve did not start: {(folder / 'serve.log').read_text()}"
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
