"""Time one digest's render (subject, preheader, HTML and text) with the real templates,
on a real day of papers: the API reply of 2026-04-10 in ../shared/corpora/api/ (read at
run time) or, without it, the sample dumps. Prints the median of several runs.

    .venv/bin/python benchmarks/bench_render.py [--runs 7] [--repeat 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.dumps import Paper, parse_dump  # noqa: E402
from newsletter.ranking import Ranker  # noqa: E402
from newsletter.render import Renderer  # noqa: E402
from newsletter.subscribers import Subscriber  # noqa: E402

CAPTURE = REPO.parent / "shared" / "corpora" / "api" / "2026-04-10.json"
RECEIVED = datetime(2026, 4, 11, tzinfo=UTC)


def papers() -> tuple[str, list[Paper]]:
    files = [CAPTURE] if CAPTURE.exists() else sorted((REPO / "samples" / "dumps").glob("*.txt"))
    found: list[Paper] = []
    for path in files:
        found += parse_dump(path.read_text("utf-8"), name=path.name, received_at=RECEIVED).papers
    return ", ".join(path.name for path in files), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    source, pool = papers()
    reader = Subscriber(
        email="ada@example.org",
        name="Ada",
        topics=["agents", "video generation", "reinforcement learning", "language models"],
    )
    (picks,) = Ranker(pool, today=date(2026, 4, 10)).rank([reader])
    renderer = Renderer(REPO / "newsletter" / "templates", auto_reload=False)
    kwargs = dict(
        subscriber=reader,
        picks=picks,
        issue_date=date(2026, 4, 11),
        unsubscribe_url="https://news.example.org/unsubscribe/token",
        pages={paper.key: date(2026, 4, 10) for paper in pool},
        archive_url="https://news.example.org/archive/token",
        feed_url="https://news.example.org/feed/token.atom",
    )
    digest = renderer.render(**kwargs)  # type: ignore[arg-type]
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for _ in range(args.repeat):
            renderer.render(**kwargs)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - start) / args.repeat * 1000)
    print(f"papers from {source}: {len(picks)} picked")
    print(
        f"render: {statistics.median(timings):.3f} ms per digest (median of {args.runs} x "
        f"{args.repeat}; min {min(timings):.3f}); HTML {len(digest.html):,} bytes, "
        f"text {len(digest.text):,} bytes"
    )


if __name__ == "__main__":
    main()
