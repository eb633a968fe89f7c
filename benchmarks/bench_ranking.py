"""Benchmark `newsletter.ranking`: index a pool of papers, rank many subscribers.

Synthesises realistic inputs from the sample dumps: papers are sample abstracts
resampled with varied titles (built from phrases of the sample titles), subscribers have
1 to 5 topics drawn (Zipf-like, so many are shared) from 2- and 3-word phrases mined from
the sample titles, a fifth of them exclude a term, and a third have delivered papers.

    .venv/bin/python benchmarks/bench_ranking.py                      # 100000 x 1000 and x 100
    .venv/bin/python benchmarks/bench_ranking.py --subscribers 20000 --papers 500

Each configuration runs in its own process so that its peak memory (ru_maxrss) is its
own. Times are wall-clock seconds of `Ranker(...)` (index) and `rank(...)` (scoring,
top-k and the Pick objects).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.dumps import Paper, paper_key  # noqa: E402
from newsletter.ranking import STOPWORDS, Ranker  # noqa: E402
from newsletter.subscribers import Subscriber, Topic  # noqa: E402

TODAY = date(2024, 12, 11)
CONNECTORS = ["for", "with", "via", "in", "and", "towards", "beyond", "from"]


def sample_entries() -> list[tuple[str, str]]:
    """(title, abstract) of every sample paper: a title line, a blank line, an abstract."""
    entries: list[tuple[str, str]] = []
    for path in sorted((ROOT / "samples" / "dumps").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i in range(len(lines) - 2):
            title, blank, abstract = lines[i].strip(), lines[i + 1].strip(), lines[i + 2].strip()
            if title and len(title) < 300 and not blank and len(abstract) > 200:
                entries.append((title, abstract))
    return entries


def mine_phrases(titles: list[str]) -> list[str]:
    """2- and 3-word n-grams of the titles that neither start nor end with a stopword."""
    phrases: dict[str, None] = {}
    for title in titles:
        for part in re.split(r"[:,;?!()]", title):
            words = re.findall(r"[A-Za-z][A-Za-z0-9-]*", part)
            for n in (2, 3):
                for i in range(len(words) - n + 1):
                    gram = words[i : i + n]
                    if gram[0].lower() in STOPWORDS or gram[-1].lower() in STOPWORDS:
                        continue
                    phrases[" ".join(gram).lower()] = None
    return list(phrases)


def make_papers(count: int, rng: random.Random) -> list[Paper]:
    entries = sample_entries()
    phrases = mine_phrases([title for title, _ in entries])
    papers: list[Paper] = []
    for index in range(count):
        _, abstract = rng.choice(entries)
        title = (
            f"{rng.choice(phrases).title()} {rng.choice(CONNECTORS)} "
            f"{rng.choice(phrases).title()} ({index})"
        )
        papers.append(
            Paper(
                key=paper_key(title),
                title=title,
                abstract=abstract,
                authors_count=rng.randint(1, 12),
                published=TODAY - timedelta(days=rng.randint(0, 400)),
                upvotes=int(rng.expovariate(1 / 15)),
            )
        )
    return papers


def make_subscribers(
    count: int, papers: list[Paper], rng: random.Random
) -> tuple[list[Subscriber], dict[str, list[str]]]:
    phrases = mine_phrases([title for title, _ in sample_entries()])
    ranks = [1.0 / (rank + 1) ** 0.8 for rank in range(len(phrases))]  # Zipf-like popularity
    words = sorted({w for p in phrases for w in p.split() if w not in STOPWORDS and len(w) > 4})
    subscribers: list[Subscriber] = []
    delivered: dict[str, list[str]] = {}
    for index in range(count):
        chosen = set(rng.choices(phrases, weights=ranks, k=rng.randint(1, 5)))
        topics = tuple(
            Topic.model_construct(topic=topic, weight=rng.choice([1.0, 1.0, 1.0, 0.5, 2.0, 3.0]))
            for topic in chosen
        )
        exclude = tuple(rng.sample(words, rng.randint(1, 2))) if rng.random() < 0.2 else ()
        email = f"reader{index}@example.com"
        # model_construct: the data is already valid; validating 100k addresses is not
        # what this benchmark measures.
        subscribers.append(
            Subscriber.model_construct(
                email=email,
                name=None,
                topics=topics,
                exclude=exclude,
                max_papers=rng.choice([10, 10, 10, 5, 20]),
                frequency="daily",
                active=True,
            )
        )
        if rng.random() < 0.33:
            delivered[email] = [paper.key for paper in rng.sample(papers, min(5, len(papers)))]
    return subscribers, delivered


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(n_subscribers: int, n_papers: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    papers = make_papers(n_papers, rng)
    subscribers, delivered = make_subscribers(n_subscribers, papers, rng)
    setup_mb = peak_mb()
    start = time.perf_counter()
    ranker = Ranker(papers, today=TODAY)
    built = time.perf_counter()
    picks = ranker.rank(subscribers, delivered=delivered)
    ranked = time.perf_counter()
    n_picks = sum(len(chosen) for chosen in picks)
    return {
        "subscribers": n_subscribers,
        "papers": n_papers,
        "distinct_topics": len({t.topic.casefold() for s in subscribers for t in s.topics}),
        "index_s": built - start,
        "rank_s": ranked - built,
        "picks": n_picks,
        "empty": sum(1 for chosen in picks if not chosen),
        "setup_mb": setup_mb,
        "peak_mb": peak_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument(
        "--also-papers",
        type=int,
        default=100,
        help="a second pool size to run with the same subscribers count (0: none)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_one(args.subscribers, args.papers, args.seed)))
        return 0

    sizes = [args.papers] + ([args.also_papers] if args.also_papers not in (0, args.papers) else [])
    rows = []
    for n_papers in sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                f"--subscribers={args.subscribers}",
                f"--papers={n_papers}",
                f"--seed={args.seed}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    header = (
        f"{'subscribers':>11} {'papers':>6} {'topics':>6} {'index s':>8} {'rank s':>7} "
        f"{'total s':>8} {'picks':>9} {'empty':>6} {'setup MB':>9} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['subscribers']:>11,} {row['papers']:>6,} {row['distinct_topics']:>6,} "
            f"{row['index_s']:>8.2f} {row['rank_s']:>7.2f} "
            f"{row['index_s'] + row['rank_s']:>8.2f} {row['picks']:>9,} {row['empty']:>6,} "
            f"{row['setup_mb']:>9.0f} {row['peak_mb']:>8.0f}"
        )
    print("(peak MB: ru_maxrss of the process after ranking; setup MB: after synthesising inputs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
