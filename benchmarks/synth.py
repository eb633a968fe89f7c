"""Synthetic data at scale, as files in the project's own formats.

Writes into a folder:

* `subscribers.yaml`: N subscribers in the format of `subscribers.example.yaml`, with 1 to 5
  topics each (2- and 3-word phrases mined from the sample titles, drawn Zipf-like so many
  are shared, some weighted), a fifth with an exclude term, a tenth weekly, a third with a
  display name (some non-ASCII);
* `dumps/page.txt`: one Daily Papers page (the text format `newsletter.dumps` parses) dated
  `--date`, holding M papers: the real sample abstracts resampled (sentences shuffled, so
  no two abstracts are the same text) under varied titles built from the mined phrases.
  The file's modification time is set to that date, so the page gets that year.

    .venv/bin/python benchmarks/synth.py /tmp/bench --subscribers 100000 --papers 100
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ranking import CONNECTORS, mine_phrases, sample_entries  # noqa: E402

from newsletter.ranking import STOPWORDS  # noqa: E402

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FIRST_NAMES = ["Ada", "Grace", "Alan", "Zoë", "Jürgen", "Łucja", "Søren", "Mei", "Ravi", "Ana"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Ørsted", "Müller", "Nowak", "Kierkegaard", "Li"]


def _short(day: date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}"


def _vary(abstract: str, rng: random.Random) -> str:
    """The same sentences in another order: realistic text, a different document."""
    sentences = re.split(r"(?<=[.!?])\s+", abstract.strip())
    rng.shuffle(sentences)
    return " ".join(sentences)


def write_dump(path: Path, n_papers: int, page_date: date, rng: random.Random) -> None:
    """One page of `n_papers` entries in the format a browser copy of the page gives."""
    entries = sample_entries()
    phrases = mine_phrases([title for title, _ in entries])
    lines = ["Daily Papers", "", "byAK and the research community", "", _short(page_date), ""]
    for index in range(n_papers):
        _, abstract = rng.choice(entries)
        title = (
            f"{rng.choice(phrases).title()} {rng.choice(CONNECTORS)} "
            f"{rng.choice(phrases).title()} {index}"
        )
        published = page_date - timedelta(days=rng.randint(0, 30))
        upvotes = int(rng.expovariate(1 / 15))
        lines += [title, "", _vary(abstract, rng), ""]
        lines += [f"  • {rng.randint(1, 12)} authors", "·", f"{_short(published)} {upvotes}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    stamp = datetime(page_date.year, page_date.month, page_date.day, 12, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_subscribers(path: Path, count: int, rng: random.Random) -> None:
    """`count` subscribers; written line by line (a YAML library would take longer)."""
    phrases = mine_phrases([title for title, _ in sample_entries()])
    ranks = [1.0 / (rank + 1) ** 0.8 for rank in range(len(phrases))]  # Zipf-like popularity
    words = sorted({w for p in phrases for w in p.split() if w not in STOPWORDS and len(w) > 4})
    out = ["subscribers:"]
    for index in range(count):
        out.append(f"  - email: reader{index:06d}@bench.example.org")
        if rng.random() < 0.33:
            out.append(
                f"    name: {_quote(rng.choice(FIRST_NAMES) + ' ' + rng.choice(LAST_NAMES))}"
            )
        out.append("    topics:")
        for topic in dict.fromkeys(rng.choices(phrases, weights=ranks, k=rng.randint(1, 5))):
            weight = rng.choice([1, 1, 1, 1, 2, 0.5])
            out.append(
                f"      - {_quote(topic)}"
                if weight == 1
                else f"      - {{topic: {_quote(topic)}, weight: {weight}}}"
            )
        if rng.random() < 0.2:
            excluded = ", ".join(map(_quote, rng.sample(words, rng.randint(1, 2))))
            out.append(f"    exclude: [{excluded}]")
        if rng.random() < 0.3:
            out.append(f"    max_papers: {rng.choice([3, 5, 20])}")
        if rng.random() < 0.1:
            out.append("    frequency: weekly")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def generate(folder: Path, *, subscribers: int, papers: int, page_date: date, seed: int) -> None:
    rng = random.Random(seed)
    write_subscribers(folder / "subscribers.yaml", subscribers, rng)
    write_dump(folder / "dumps" / "page.txt", papers, page_date, rng)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--date", type=date.fromisoformat, default=date.today())
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    generate(
        args.folder,
        subscribers=args.subscribers,
        papers=args.papers,
        page_date=args.date,
        seed=args.seed,
    )
    print(f"wrote {args.subscribers} subscribers and {args.papers} papers into {args.folder}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
