"""Benchmark one issue end to end and print one table: parse, rank, render, build, the
dry run (`newsletter send --dry-run`, to the last `.eml` on disk) and SMTP sending, each
with its per-item cost, its throughput, the ceiling measured in the same run and the ratio.

    make bench                                        # 100,000 subscribers x 100 papers
    make bench BENCH_ARGS="--subscribers 10000 --send 2000"

Ceilings, measured in the same run on the same machine:
* write: a bare loop writing the same number of same-sized files to the same disk;
* send: a bare aiosmtplib loop sending the same pre-built messages to the same sink
  (`smtp_sink.py`, a minimal asyncio server fast enough not to be the limit), against
  our `send_over_smtp` with a real Store ledger, rate limiter and retries;
* build: the `EmailMessage` reference builder, for comparison (not a ceiling).
Peak memory: the largest process (ru_maxrss) and the sum over the dry run's process
tree (sampled from /proc; forked workers share pages, so the sum over-counts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiosmtplib  # noqa: E402
from synth import generate, write_dump  # noqa: E402

from newsletter.delivery import Outgoing, send_over_smtp  # noqa: E402
from newsletter.dumps import read_dump  # noqa: E402
from newsletter.message import build_message, build_message_reference  # noqa: E402
from newsletter.ranking import Ranker  # noqa: E402
from newsletter.render import Renderer  # noqa: E402
from newsletter.settings import Settings  # noqa: E402
from newsletter.store import Store  # noqa: E402
from newsletter.subscribers import load_subscribers  # noqa: E402

Row = tuple[str, int, float, float | None, str]  # stage, items, seconds, ceiling/s, note
BIN = Path(sys.executable).parent


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def tree_pss_mb(pid: int) -> float:
    """Memory of a process and all its descendants, in MB: the proportional set size
    (a page shared by the forked workers counts once in all, not once per process)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(next(x for x in rollup.splitlines() if x.startswith("Pss:")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def dry_run(folder: Path, env: dict[str, str]) -> tuple[float, float, int, list[int]]:
    """`newsletter send --dry-run` as a user runs it: wall seconds, peak tree PSS (MB),
    messages written, their sizes."""
    peak = 0.0
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(BIN / "newsletter"), "send", "--dry-run"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    while process.poll() is None:
        peak = max(peak, tree_pss_mb(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"the dry run failed: {process.stderr.read().decode()}")  # type: ignore[union-attr]
    sizes = [entry.stat().st_size for entry in (folder / "outbox").glob("*/*.eml")]
    return wall, peak, len(sizes), sizes


def bare_writes(folder: Path, sizes: list[int]) -> float:
    """The disk's ceiling: write the same number of same-sized files, nothing else."""
    folder.mkdir()
    payloads = {size: b"x" * size for size in set(sizes)}
    start = time.perf_counter()
    for index, size in enumerate(sizes):
        with open(folder / f"{index}.eml", "wb") as handle:
            handle.write(payloads[size])
    return time.perf_counter() - start


async def bare_send(port: int, messages: list[bytes], connections: int) -> float:
    queue = list(reversed(messages))

    async def one() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        while queue:
            await client.sendmail("digest@example.org", ["r@example.org"], queue.pop())
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return time.perf_counter() - start


def full_send(folder: Path, port: int, messages: list[bytes], connections: int) -> float:
    """`send_over_smtp` with a real ledger: N pending rows, each claimed and confirmed."""
    settings = Settings(
        database_path=folder / f"send{connections}.db",
        smtp_port=port,
        smtp_concurrency=connections,
        secret_key="bench",  # type: ignore[arg-type]
    )
    store = Store(settings.database_path)
    emails = [f"r{i}@example.org" for i in range(len(messages))]
    # Rows straight into the ledger: `create_issue` would also want papers to point to.
    with store.transaction() as db:
        db.execute(
            "INSERT INTO issues(key, dry_run, issue_date, created_at, last_dump_id)"
            " VALUES ('bench', 0, '2026-01-01', '', 0)"
        )
        issue_id = db.execute("SELECT id FROM issues").fetchone()[0]
        db.executemany(
            "INSERT INTO deliveries(issue_id, email, status, updated_at) VALUES (?, ?, 'pending', '')",
            [(issue_id, e) for e in emails],
        )
    outgoing = (Outgoing(e, e, (lambda m=m: m)) for e, m in zip(emails, messages, strict=True))
    start = time.perf_counter()
    stats = asyncio.run(
        send_over_smtp(
            settings, store, issue_id, outgoing, total=len(messages),
            sender="digest@example.org", progress=False,
        )
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert stats.sent == len(messages), stats
    assert store.counts(issue_id)["sent"] == len(messages)
    store.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--rank-papers", type=int, default=1000, help="the heavy-day pool")
    parser.add_argument("--sample", type=int, default=2000, help="digests timed in-process")
    parser.add_argument("--send", type=int, default=5000, help="messages per SMTP run")
    parser.add_argument("--connections", default="1,4,8")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-", dir=ROOT / "benchmarks"))
    today = datetime.now(UTC).date()
    rows: list[Row] = []
    print(f"work folder {work}; {os.cpu_count()} cores", file=sys.stderr)
    generate(
        work, subscribers=args.subscribers, papers=args.papers, page_date=today, seed=args.seed
    )
    (work / "templates").symlink_to(ROOT / "newsletter" / "templates")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_WEEKLY_DAY"] = str(today.weekday())  # weekly subscribers get it too

    # parse (in-process) and ingest (the CLI, as a user runs it)
    dump, seconds = timed(read_dump, work / "dumps" / "page.txt")
    rows.append(("parse", len(dump.papers), seconds, None, "papers, one page"))
    subprocess.run(
        [str(BIN / "newsletter"), "ingest", "dumps/page.txt"], cwd=work, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip

    # rank (in-process): the day's pool, and the heavy day's
    subscribers, seconds = timed(load_subscribers, work / "subscribers.yaml")
    rows.append(("load subscribers", len(subscribers), seconds, None, "YAML + validation"))
    ranker, index_s = timed(Ranker, dump.papers, today=today)
    picks, rank_s = timed(ranker.rank, subscribers)
    rows.append(("rank", len(subscribers), index_s + rank_s, None, f"x {len(dump.papers)} papers"))
    heavy = work / "heavy" / "page.txt"
    write_dump(heavy, args.rank_papers, today, random.Random(args.seed))
    heavy_papers = read_dump(heavy).papers
    heavy_ranker, index_s = timed(Ranker, heavy_papers, today=today)
    _, rank_s = timed(heavy_ranker.rank, subscribers)
    del heavy_ranker
    rows.append(
        (
            "rank (heavy day)",
            len(subscribers),
            index_s + rank_s,
            None,
            f"x {len(heavy_papers)} papers",
        )
    )

    # render and build (in-process, one core) on a sample of real digests
    renderer = Renderer(work / "templates", auto_reload=False)
    sample = [(s, p) for s, p in zip(subscribers, picks, strict=True) if p][: args.sample]
    del picks
    start = time.perf_counter()
    digests = [
        renderer.render(subscriber=s, picks=p, issue_date=today,
                        unsubscribe_url="https://news.example.org/unsubscribe/x")
        for s, p in sample
    ]  # fmt: skip
    rows.append(
        ("render", len(digests), time.perf_counter() - start, None, "Jinja on compiled MJML")
    )
    kwargs = dict(from_address="Digest <digest@example.org>",
                  unsubscribe_url="https://news.example.org/unsubscribe/x",
                  message_id="<bench.1@example.org>", date=datetime.now(UTC))  # fmt: skip
    start = time.perf_counter()
    messages = [
        build_message(subscriber=s, digest=d, **kwargs)
        for (s, _), d in zip(sample, digests, strict=True)
    ]  # type: ignore[arg-type]
    build_s = time.perf_counter() - start
    few = min(200, len(digests))
    start = time.perf_counter()
    for (s, _), d in zip(sample[:few], digests[:few], strict=True):
        build_message_reference(subscriber=s, digest=d, **kwargs)  # type: ignore[arg-type]
    reference_rate = few / (time.perf_counter() - start)
    rows.append(("build", len(messages), build_s, None,
                 f"EmailMessage path: {reference_rate:,.0f}/s"))  # fmt: skip
    del subscribers, ranker, digests

    # the dry run, end to end, and the disk's ceiling in the same run
    wall, tree_peak, written, sizes = dry_run(work, env)
    bare = bare_writes(work / "bare", sizes)
    rows.append(("write (dry run)", written, wall, written / bare if bare else None,
                 "newsletter send --dry-run, wall"))  # fmt: skip
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    # SMTP: the bare client's ceiling and our full path, same sink, same messages
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "smtp_sink.py")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sink.stdout is not None
    port = int(sink.stdout.readline().split()[1])
    outgoing = [messages[i % len(messages)] for i in range(args.send)]
    size = sum(map(len, outgoing)) // max(1, len(outgoing))
    try:
        for connections in map(int, args.connections.split(",")):
            ceiling = asyncio.run(bare_send(port, outgoing, connections))
            ours = full_send(work, port, outgoing, connections)
            rows.append((f"send, {connections} conn.", len(outgoing), ours,
                         len(outgoing) / ceiling, f"~{size // 1024} KB messages"))  # fmt: skip
    finally:
        sink.terminate()
        sink.wait()

    header = (
        f"{'stage':<20} {'items':>8} {'seconds':>8} {'per item':>10} {'per s':>9} "
        f"{'ceiling/s':>10} {'ratio':>6}  note"
    )
    print(header)
    print("-" * len(header))
    for stage, items, seconds, ceiling, note in rows:
        rate = items / seconds if seconds else 0.0
        per = seconds / items * 1000 if items else 0.0
        ceiling_text = f"{ceiling:>10,.0f}" if ceiling else f"{'':>10}"
        ratio = f"{rate / ceiling:>6.0%}" if ceiling else f"{'':>6}"
        print(
            f"{stage:<20} {items:>8,} {seconds:>8.2f} {per:>8.3f}ms {rate:>9,.0f} "
            f"{ceiling_text} {ratio}  {note}"
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: dry run process tree {tree_peak:,.0f} MB (peak PSS, sampled), largest child "
        f"{children_peak:,.0f} MB (ru_maxrss); this benchmark process {own:,.0f} MB. "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end."
    )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
