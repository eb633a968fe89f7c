"""Benchmark the preview index (`GET /` of `newsletter serve`) with many subscribers.

Builds a project in a temporary folder: N subscribers written like `synth.py` does
(1 to 5 topics each, mined from the sample titles, some weighted, a fifth with an
exclude, a tenth weekly), the two sample dumps (plus, with `--papers`, one synthetic
page of that many papers dated today) and the project's templates. Then runs
`newsletter serve --port 0` there as its own process (uvicorn, as a user runs it) and
times `GET /`:

* cold: the first request after start;
* recompute: after the subscribers file is touched, so nothing cached can be reused;
* sequential: one request after another, on one keep-alive connection;
* concurrent: `--concurrency` clients at once (one thread and connection each), each
  sending requests until `--concurrent-requests` were sent in all.

    .venv/bin/python benchmarks/bench_preview_index.py                    # 1,000 subscribers
    .venv/bin/python benchmarks/bench_preview_index.py --client httpx --papers 100
    .venv/bin/python benchmarks/bench_preview_index.py --subscribers 300 --sequential 1 \\
        --recompute 0 --concurrent-requests 0                             # one request

The page for 1,000 subscribers is about 0.5 MB. The default client is the standard
library's `http.client`, which reads a body in one C call; httpx (`--client httpx`)
spends ~10 ms of Python per page, so 50 httpx clients in one process mostly time the
client. Every response is checked: 200, one card per subscriber.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from synth import write_dump, write_subscribers  # noqa: E402

from newsletter.pipeline import ingest_file  # noqa: E402
from newsletter.store import Store  # noqa: E402

SAMPLES = ROOT / "samples" / "dumps"
CARD = b'class="card subscriber"'

Get = Callable[[], float]  # one GET /, checked; returns its latency in seconds


def build_project(folder: Path, subscribers: int, papers: int, seed: int) -> None:
    rng = random.Random(seed)
    shutil.copytree(ROOT / "newsletter" / "templates", folder / "templates")
    write_subscribers(folder / "subscribers.yaml", subscribers, rng)
    dumps = sorted(SAMPLES.glob("*.txt"))
    if papers:
        dumps.append(folder / "dumps" / "today.txt")
        write_dump(dumps[-1], papers, datetime.now(UTC).date(), rng)
    with Store(folder / "newsletter.db") as store:
        for path in dumps:
            ingest_file(store, path)


def start_server(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """`newsletter serve --port 0` in `folder`; returns the process and its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", "0"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"Serving on (http://\S+?)/? ", line)
        if match:
            return process, match[1]
    process.wait()
    raise SystemExit(f"the server did not start (exit code {process.returncode})")


def client(kind: str, url: str, expected: int) -> Get:
    """A function sending GET / over its own keep-alive connection."""

    def check(status: int, body: bytes) -> None:
        if status != 200 or body.count(CARD) != expected:
            raise SystemExit(f"GET / answered {status} with {body.count(CARD)} of {expected}")

    if kind == "httpx":
        session = httpx.Client(timeout=None)

        def get_httpx() -> float:
            start = time.perf_counter()
            response = session.get(f"{url}/")
            elapsed = time.perf_counter() - start
            check(response.status_code, response.content)
            return elapsed

        return get_httpx

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)

    def get_stdlib() -> float:
        start = time.perf_counter()
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        check(response.status, body)
        return elapsed

    return get_stdlib


def concurrent(make: Callable[[], Get], clients: int, total: int) -> tuple[list[float], float]:
    """`clients` threads sharing `total` requests: each request's latency, the wall time."""
    latencies: list[float] = []
    left = total
    lock = threading.Lock()

    def loop(get: Get) -> None:
        nonlocal left
        while True:
            with lock:
                if left <= 0:
                    return
                left -= 1
            latencies.append(get())

    threads = [threading.Thread(target=loop, args=(make(),)) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def line(name: str, values: list[float], extra: str = "") -> str:
    if not values:
        return f"{name:<26} (not run)"
    return (
        f"{name:<26} n={len(values):<4} p50 {percentile(values, 0.5) * 1000:9.1f} ms"
        f"   p99 {percentile(values, 0.99) * 1000:9.1f} ms{extra}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=0, help="a page of papers dated today")
    parser.add_argument("--sequential", type=int, default=50, help="sequential requests")
    parser.add_argument("--recompute", type=int, default=5, help="requests after a touch")
    parser.add_argument("--concurrency", type=int, default=50, help="clients at once")
    parser.add_argument(
        "--concurrent-requests", type=int, default=500, help="requests over all clients"
    )
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-preview-") as tmp:
        folder = Path(tmp)
        build_project(folder, args.subscribers, args.papers, args.seed)
        print(
            f"GET / with {args.subscribers} subscribers; papers: the samples"
            f"{f' + {args.papers} dated today' if args.papers else ''}; client: {args.client}; "
            f"{date.today()}, load average {os.getloadavg()[0]:.1f} at start"
        )
        process, url = start_server(folder)
        try:
            get = client(args.client, url, args.subscribers)
            cold = [get()]
            recompute = []
            subscribers_file = folder / "subscribers.yaml"
            for step in range(args.recompute):
                stamp = subscribers_file.stat().st_mtime + 1 + step
                os.utime(subscribers_file, (stamp, stamp))
                recompute.append(get())
            sequential = [get() for _ in range(args.sequential)]
            together, wall = concurrent(
                lambda: client(args.client, url, args.subscribers),
                args.concurrency,
                args.concurrent_requests,
            )
        finally:
            process.terminate()
            process.wait()
    print(line("cold (first request)", cold))
    print(line("recompute (file touched)", recompute))
    print(line("sequential", sequential))
    rate = f"   ({len(together) / wall:.1f} requests/s)" if together else ""
    print(line(f"{args.concurrency} concurrent", together, rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
