"""The crash window, measured: SIGKILL a real `newsletter send` at random points while it
sends, rerun it until it completes, and count what arrived twice.

`crash_window(concurrency)` in newsletter/delivery.py is the documented bound: one
message per connection can arrive twice per kill (the one the server took whose `sent`
was not yet committed). This sends a synthetic issue to `smtp_sink.py --record` (which
logs each accepted recipient before replying), kills the sender `--kills` times, each
once the sink has taken a random number of further messages plus a random sliver of
time, then lets a last run finish and compares:

    extra copies (sum over recipients of copies - 1)  <=  kills x crash_window(concurrency)

and checks nobody the ledger calls `sent` is missing at the sink.

    .venv/bin/python benchmarks/bench_crash.py [--subscribers 2000] [--kills 8] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import smtp_sink  # noqa: E402
from workload import CLI, bench_env, prepare  # noqa: E402

from newsletter.delivery import crash_window  # noqa: E402

# What a real send requires (preflight refuses the defaults): an https base URL on a real
# domain, a From address of one's own, a signing key of 32+ characters.
REAL_SEND = {
    "NEWSLETTER_BASE_URL": "https://news.example.org",
    "NEWSLETTER_FROM_ADDRESS": "Research Digest <digest@news.example.org>",
    "NEWSLETTER_SECRET_KEY": "bench-secret-key-long-enough-to-sign-links",
}
PROGRESS_DEADLINE = 120.0  # seconds a run may take to reach its kill point


@dataclass(frozen=True)
class CrashResult:
    kills: int
    concurrency: int
    sent: int  # ledger rows `sent` at the end
    received: int  # distinct recipients the sink took
    extra: int  # copies beyond the first, over all recipients
    doubled: int  # recipients who got more than one copy
    left: int  # ledger rows still pending, sending, failed or unknown
    seconds: float  # every run, kills and restarts included

    @property
    def allowed(self) -> int:
        return self.kills * crash_window(self.concurrency)

    @property
    def met(self) -> bool:
        complete = self.left == 0 and self.received == self.sent
        return self.kills > 0 and complete and self.extra <= self.allowed

    def summary(self) -> str:
        lost = f", {self.sent - self.received} lost" if self.received != self.sent else ""
        left = f", {self.left} not sent" if self.left else ""
        return (
            f"{self.extra} extra copies ({self.doubled} readers) after {self.kills} kills,"
            f" allowed {self.allowed}{lost}{left}"
        )


class Tally:
    """How many messages the sink has accepted so far: reads only what it appended since
    the last look (the file is re-read whole only at the end)."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open(encoding="utf-8")
        self.total = 0

    def count(self) -> int:
        self.total += self.handle.read().count("\n")
        return self.total


def _kill_during_sending(
    process: subprocess.Popen[bytes], tally: Tally, more: int, rng: random.Random
) -> bool:
    """Wait until the sink took `more` further messages (or the run ended), wait a random
    sliver more, and SIGKILL the run if it is still going. True if it was killed."""
    target = tally.count() + more
    deadline = time.monotonic() + PROGRESS_DEADLINE
    while tally.count() < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.01))
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def _send_until_complete(
    folder: Path, env: dict[str, str], tally: Tally, kills: int, rng: random.Random
) -> int:
    """Up to `kills` killed runs, then one that must finish; returns the kills made."""
    expected = sum(1 for line in (folder / "subscribers.yaml").open() if "- email:" in line)
    span = max(1, expected // (2 * max(1, kills)))  # kills spread over about half the issue
    made = 0
    with (folder / "send.log").open("ab") as log:
        for _ in range(kills):
            process = subprocess.Popen([*CLI, "send"], cwd=folder, env=env, stdout=log, stderr=log)
            if not _kill_during_sending(process, tally, rng.randint(1, span), rng):
                break
            made += 1
        last = subprocess.run([*CLI, "send"], cwd=folder, env=env, stdout=log, stderr=log)
    if last.returncode != 0:
        raise SystemExit(f"{folder / 'send.log'}: the last send failed; read the log's end")
    return made


def _ledger_counts(folder: Path, env: dict[str, str]) -> dict[str, int]:
    status = subprocess.run(
        [*CLI, "status", "--json"], cwd=folder, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    counts: dict[str, int] = json.loads(status.stdout)["counts"]
    return counts


def run_crash(
    folder: Path, *, subscribers: int, papers: int, kills: int, concurrency: int, seed: int
) -> CrashResult:
    """Kill and rerun a real send of a synthetic issue in `folder` (created, left there)."""
    folder.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date()
    record = folder / "received.txt"
    record.touch()
    sink, port = smtp_sink.spawn(record)
    env = bench_env(
        today, **REAL_SEND, NEWSLETTER_SMTP_PORT=str(port),
        NEWSLETTER_SMTP_CONCURRENCY=str(concurrency), NEWSLETTER_SMTP_TIMEOUT="5",
    )  # fmt: skip
    tally = Tally(record)
    try:
        prepare(folder, env, subscribers=subscribers, papers=papers, today=today, seed=seed)
        start = time.perf_counter()
        made = _send_until_complete(folder, env, tally, kills, random.Random(seed))
        seconds = time.perf_counter() - start
    finally:
        tally.handle.close()
        sink.terminate()
        sink.wait()
    copies = Counter(record.read_text(encoding="utf-8").split())
    counts = _ledger_counts(folder, env)
    return CrashResult(
        kills=made,
        concurrency=concurrency,
        sent=counts.get("sent", 0),
        received=len(copies),
        extra=sum(n - 1 for n in copies.values()),
        doubled=sum(1 for n in copies.values() if n > 1),
        left=sum(v for k, v in counts.items() if k not in ("sent", "skipped")),
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="newsletter-crash-", dir=ROOT / "benchmarks"))
    try:
        result = run_crash(
            folder, subscribers=args.subscribers, papers=args.papers, kills=args.kills,
            concurrency=args.concurrency, seed=args.seed,
        )  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    verdict = "met" if result.met else "MISSED"
    print(
        f"crash window, {args.concurrency} conn.: {result.summary()}; goal <= kills x "
        f"{crash_window(args.concurrency)}: {verdict}. {result.sent:,} sent in "
        f"{result.seconds:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    return 0 if result.met else 1


if __name__ == "__main__":
    raise SystemExit(main())
