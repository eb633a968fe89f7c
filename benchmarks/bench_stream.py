"""Memory and loading of one large dry run: the live list read, then `send --dry-run`.

Prints, for N subscribers (benchmarks/synth.py writes them) x M papers:

    load          every active subscriber read from a synced database, JSON-decoded and
                  built: as one list (`roster.receiving`) and as an issue reads them,
                  RANK_CHUNK at a time (`roster.receiving_chunks`); CPU and wall
                  seconds, best of --repeat
    dry run       `newsletter -v send --dry-run` as a user runs it (cwd = the work folder,
                  this tree on PYTHONPATH): wall seconds, the peak PSS summed over the
                  process and its forked compose workers (sampled from /proc every 0.1 s;
                  PSS splits a page shared by the workers between them, so it counts once),
                  and the phase timings the command logs with -v

The work folder is kept (and reused with --work): the database is copied from a pristine
one (ingested and synced) before each dry run, and the outbox emptied, so every run
plans and writes the whole issue.

    .venv/bin/python benchmarks/bench_stream.py --subscribers 10000 [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import generate  # noqa: E402
from workload import tree_pss_mb  # noqa: E402

from newsletter import roster  # noqa: E402
from newsletter.pipeline import RANK_CHUNK  # noqa: E402
from newsletter.settings import load_settings  # noqa: E402
from newsletter.store import Store  # noqa: E402

PRISTINE = "pristine.db"


def cli(work: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", *args],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def prepare(work: Path, env: dict[str, str], subscribers: int, papers: int) -> None:
    """Data, templates, the dump ingested and the list synced, kept as PRISTINE."""
    if (work / PRISTINE).exists():
        return
    work.mkdir(parents=True, exist_ok=True)
    generate(work, subscribers=subscribers, papers=papers, page_date=date.today(), seed=7)
    (work / "templates").unlink(missing_ok=True)
    (work / "templates").symlink_to(ROOT / "newsletter" / "templates")
    process = cli(work, env, "ingest", "dumps/page.txt")
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"ingest failed: {err.decode()}")
    settings = load_settings(
        subscribers_file=work / "subscribers.yaml", database_path=work / PRISTINE
    )
    shutil.copy(work / "newsletter.db", work / PRISTINE)
    with Store(work / PRISTINE) as store:
        roster.sync(settings, store)


def load(work: Path, repeat: int) -> list[tuple[str, int, float, float]]:
    """(way, subscribers, best wall s, best CPU s) of reading the whole live list:
    `roster.receiving` (one list) and `roster.receiving_chunks` (what an issue reads)."""
    settings = load_settings(
        subscribers_file=work / "subscribers.yaml", database_path=work / PRISTINE
    )
    ways: dict[str, Callable[[Store], int]] = {
        "receiving": lambda store: len(roster.receiving(settings, store)),
        "receiving_chunks": lambda store: sum(
            len(chunk) for chunk in roster.receiving_chunks(settings, store, size=RANK_CHUNK)
        ),
    }
    out = []
    with Store(work / PRISTINE) as store:
        for way, read in ways.items():
            walls, cpus, count = [], [], 0
            for _ in range(repeat):
                start, used = time.perf_counter(), time.process_time()
                count = read(store)
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - used)
            out.append((way, count, min(walls), min(cpus)))
    return out


def dry_run(work: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak tree PSS (MB), .eml files written, the -v log."""
    for name in ("newsletter.db", "newsletter.db-wal", "newsletter.db-shm"):
        (work / name).unlink(missing_ok=True)
    shutil.copy(work / PRISTINE, work / "newsletter.db")
    shutil.rmtree(work / "outbox", ignore_errors=True)
    peak = 0.0
    start = time.perf_counter()
    process = cli(work, env, "-v", "send", "--dry-run")
    while process.poll() is None:
        peak = max(peak, tree_pss_mb(process.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    log = process.stderr.read().decode() if process.stderr else ""
    if process.returncode:
        raise SystemExit(f"the dry run failed: {log}")
    written = sum(1 for _ in (work / "outbox").glob("*/*.eml"))
    return wall, peak, written, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, help="work folder (kept; reused when prepared)")
    parser.add_argument("--no-dry-run", action="store_true", help="measure the load only")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-stream-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_WEEKLY_DAY"] = str(date.today().weekday())  # weekly readers get it too
    env["PYTHONPATH"] = str(ROOT)
    prepare(work, env, args.subscribers, args.papers)
    print(f"work folder {work}; {os.cpu_count()} cores")
    for way, count, wall, cpu in load(work, args.repeat):
        print(f"load     {way}: {count:,} active subscribers, wall {wall:.2f} s, cpu {cpu:.2f} s")
    print(f"         load average {os.getloadavg()[0]:.2f}")
    if not args.no_dry_run:
        wall, peak, written, log = dry_run(work, env)
        print(f"dry run  {written:,} .eml: wall {wall:.1f} s, peak tree PSS {peak:,.0f} MB")
        print(f"         load average {os.getloadavg()[0]:.2f}")
        for line in log.splitlines():
            print(f"         | {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
