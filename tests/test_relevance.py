"""Ranking quality on the judged set (benchmarks/relevance/) must not regress.

The floors sit a little under the measured values (lexical nDCG@10 mean 0.579, semantic
0.727, see benchmarks/eval_ranking.py): a change that makes the digests measurably worse
fails here; a better ranker should raise the floors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import eval_ranking

LEXICAL_FLOOR = 0.56
SEMANTIC_FLOOR = 0.70


def test_the_judged_set_covers_every_profile_and_paper() -> None:
    qrels = eval_ranking.load_qrels()
    papers = {paper.key for paper in eval_ranking.load_papers()}
    profiles = eval_ranking.load_profiles()
    assert len(profiles) >= 12 and sum(1 for p in profiles if p.exclude) >= 2
    for profile in profiles:
        assert set(qrels[profile.key]) == papers  # every pair judged, titles join


@pytest.mark.parametrize(
    ("model", "floor"), [("lexical", LEXICAL_FLOOR), ("semantic", SEMANTIC_FLOOR)]
)
def test_ndcg_stays_above_its_floor(model: str, floor: float) -> None:
    results = eval_ranking.evaluate(model)
    summary = eval_ranking.summarise(results)
    assert summary.ndcg_mean >= floor
    # The profile with nothing relevant in the samples gets an empty digest.
    assert [r.picks for r in results if r.ndcg is None] == [0]
    # Every pick carries a reason a subscriber can read.
    assert all(why for r in results for _, _, why in r.top)
