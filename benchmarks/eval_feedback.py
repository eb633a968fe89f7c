"""Measure what "more / less like this" marks do, on the judged set in benchmarks/relevance/.

For every judged profile, a simulated reader receives the ranker's picks and marks the
first MARKS of them by the judgements: grade >= 1 -> "more like this", grade 0 -> "less
like this". Then the remaining papers (every paper but the marked ones) are ranked
again, without the marks (the ranker alone, the marked papers counted as delivered)
and with them (`feedback.rerank`, the product's code path), and nDCG@10 of both is
measured against the judgements of the remaining papers. Profiles whose first ranking
picked nothing have nothing to mark and score the same both ways.

    .venv/bin/python benchmarks/eval_feedback.py                 # lexical
    .venv/bin/python benchmarks/eval_feedback.py --model semantic
    .venv/bin/python benchmarks/eval_feedback.py --marks 5 --verbose

Reads whatever profiles.yaml and qrels.tsv hold.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_ranking import (  # noqa: E402
    CUTOFF,
    embed,
    load_papers,
    load_profiles,
    load_qrels,
    split_of,
)

from newsletter.feedback import Mark, rerank  # noqa: E402
from newsletter.ranking import Pick, Ranker  # noqa: E402

MARKS = 3


def ndcg(got: Sequence[int], grades: Sequence[int]) -> float | None:
    def dcg(gains: Sequence[int]) -> float:
        import math

        return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains[:CUTOFF]))

    ideal = dcg(sorted(grades, reverse=True))
    return dcg(got) / ideal if ideal > 0 else None


def run(model: str, marks_per_profile: int, verbose: bool) -> dict[str, tuple[float, float, int]]:
    papers = load_papers()
    profiles = load_profiles()
    qrels = load_qrels(papers)  # pairs not listed are grade 0
    today = max(paper.published for paper in papers if paper.published is not None)
    vectors = embed(papers, profiles) if model == "semantic" else None
    ranker = Ranker(papers, today=today, paper_vectors=vectors[0] if vectors else None)
    topics = vectors[1] if vectors else None
    first = ranker.rank(profiles, topic_vectors=topics)
    rows: list[tuple[str, float, float]] = []
    for profile, picks in zip(profiles, first, strict=True):
        grades = qrels.get(profile.key, {})
        marked = picks[:marks_per_profile]
        marks = [
            Mark(p.paper, "more" if grades.get(p.paper.key, 0) >= 1 else "less", "") for p in marked
        ]
        seen = {p.paper.key for p in marked}
        remaining = [g for key, g in grades.items() if key not in seen]
        without: list[Pick] = ranker.rank(
            [profile], delivered={profile.key: seen}, topic_vectors=topics
        )[0]
        with_marks = (
            rerank(ranker, profile, marks, delivered=seen, topic_vectors=topics)
            if marks
            else without
        )
        before = ndcg([grades.get(p.paper.key, 0) for p in without], remaining)
        after = ndcg([grades.get(p.paper.key, 0) for p in with_marks], remaining)
        if before is None or after is None:
            continue
        rows.append((profile.email, before, after))
        if verbose:
            kinds = "".join("+" if m.direction == "more" else "-" for m in marks)
            print(f"  {profile.email:36} marks {kinds:5} {before:.3f} -> {after:.3f}")
    out: dict[str, tuple[float, float, int]] = {}
    for group in ("all", "tune", "check"):
        chosen = [r for r in rows if group == "all" or split_of(r[0]) == group]
        if chosen:
            out[group] = (
                sum(r[1] for r in chosen) / len(chosen),
                sum(r[2] for r in chosen) / len(chosen),
                len(chosen),
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("lexical", "semantic", "both"), default="lexical")
    parser.add_argument("--marks", type=int, default=MARKS, help="picks the reader marks")
    parser.add_argument("--verbose", action="store_true", help="one line per profile")
    args = parser.parse_args()
    models = ("lexical", "semantic") if args.model == "both" else (args.model,)
    for model in models:
        print(
            f"model: {model}; the reader marks the first {args.marks} picks; "
            f"nDCG@{CUTOFF} on the remaining papers"
        )
        results = run(model, args.marks, args.verbose)
        print(f"  {'group':6} {'profiles':>8} {'without marks':>14} {'with marks':>11}")
        for group, (before, after, count) in results.items():
            print(f"  {group:6} {count:>8} {before:>14.3f} {after:>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
