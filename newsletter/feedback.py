"""Readers' marks on papers ("more like this", "less like this") and their effect on ranking.

Storage: one row per (reader, paper) in `feedback`; marking a paper again replaces the
direction, and the preferences page can undo a mark.

Effect (`adjust`, called by the pipeline right after `Ranker.rank`, through the ranker's
public API only): each candidate paper is compared with the reader's marked papers by
the cosine of TF-IDF vectors of title + abstract (stemmed words, idf over the pool and
the marked papers). With s+ the highest similarity to a paper marked "more" and s- to
one marked "less":

* a paper the topics picked scores  score * (1 + MORE_WEIGHT * s+) * (1 - LESS_WEIGHT * s-);
* a paper at least DROP_SIMILARITY like a "less" paper (and more like it than like any
  "more" paper) is dropped: below the threshold, like a paper no topic matches;
* a paper no topic matched is picked when it is at least ADD_SIMILARITY like a "more"
  paper, scoring ADD_WEIGHT * s+ (the reader's own example stands in for a topic), unless
  the reader's excludes touch it;
* a pick at least EXPLAIN_SIMILARITY like a "more" paper says so in its why-line:
  'like "<title>", which you marked'.

The constants were set on the tune half of the judged set (`benchmarks/eval_feedback.py`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import snowballstemmer

from newsletter import roster
from newsletter.dumps import Paper
from newsletter.links import Direction
from newsletter.ranking import Pick, Ranker
from newsletter.store import Store
from newsletter.subscribers import Subscriber, Topic

MORE_WEIGHT = 1.0
LESS_WEIGHT = 1.0
DROP_SIMILARITY = 0.45
ADD_SIMILARITY = 0.30
ADD_WEIGHT = 0.5
EXPLAIN_SIMILARITY = 0.15

_WORD = re.compile(r"[^\W\d_]{3,}")
_STOP = frozenset(
    "and are as at be been but by can for from has have how into its more not our of on "
    "or such than that the their them then there these they this those through to under "
    "using via was we were what when where which while who will with without also based "
    "both each over other only well new show shows results paper propose proposed approach "
    "method methods model models".split()
)


@dataclass(frozen=True)
class Mark:
    """One paper a reader marked."""

    paper: Paper
    direction: Direction
    at: str


# -- storage ---------------------------------------------------------------------------


def mark(store: Store, email: str, paper_key: str, direction: Direction) -> bool:
    """Record a mark (replacing an earlier one on the same paper); False when there is no
    such paper."""
    if not store.papers_by_key([paper_key]):
        return False
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO feedback(email, paper_key, direction, at) VALUES (?, ?, ?, ?)",
            (email.strip().lower(), paper_key, direction, datetime.now(UTC).isoformat()),
        )
        roster.bump(db)
    return True


def unmark(store: Store, email: str, paper_key: str) -> bool:
    """Undo a mark; False when there was none."""
    with store.transaction() as db:
        cursor = db.execute(
            "DELETE FROM feedback WHERE email=? AND paper_key=?",
            (email.strip().lower(), paper_key),
        )
        if cursor.rowcount:
            roster.bump(db)
    return cursor.rowcount > 0


def marks_of(store: Store, emails: Iterable[str] | None = None) -> dict[str, list[Mark]]:
    """Each reader's marks, newest first (of `emails` only, when given); marks on papers
    no longer in the database are left out."""
    if emails is None:
        rows = store.rows("SELECT * FROM feedback ORDER BY at DESC")
    else:
        rows = store.rows(
            "SELECT * FROM feedback WHERE email IN (SELECT value FROM json_each(?))"
            " ORDER BY at DESC",
            (json.dumps(sorted({e.lower() for e in emails})),),
        )
    papers = store.papers_by_key({row["paper_key"] for row in rows})
    marks: dict[str, list[Mark]] = {}
    for row in rows:
        paper = papers.get(row["paper_key"])
        if paper is not None:
            marks.setdefault(row["email"], []).append(Mark(paper, row["direction"], row["at"]))
    return marks


# -- text similarity -------------------------------------------------------------------


class Similarity:
    """TF-IDF vectors (title + abstract, stemmed words) of a set of papers, L2-normalised,
    so the cosine of two papers is one sparse dot product."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        stemmer = snowballstemmer.stemmer("english")
        counts = [
            Counter(
                stemmer.stemWords(
                    w for w in _WORD.findall(f"{p.title} {p.abstract}".lower()) if w not in _STOP
                )
            )
            for p in papers
        ]
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for row, found in enumerate(counts):
            for word, count in found.items():
                rows.append(row)
                cols.append(vocabulary.setdefault(word, len(vocabulary)))
                vals.append(1.0 + math.log(count))
        shape = (len(papers), len(vocabulary))
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=shape)
        df = np.bincount(matrix.indices, minlength=len(vocabulary))
        idf = np.log((1 + len(papers)) / (1 + df)) + 1.0
        matrix = sp.csr_matrix(matrix @ sp.diags(idf))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self.matrix: Any = sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)
        self.index = {paper.key: row for row, paper in enumerate(papers)}

    def best(
        self, targets: Sequence[str], examples: Sequence[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """For each target paper key: the highest cosine to one of the example keys, and
        which example (its index) it is."""
        if not examples:
            return np.zeros(len(targets)), np.zeros(len(targets), dtype=np.int64)
        t = self.matrix[[self.index[key] for key in targets]]
        e = self.matrix[[self.index[key] for key in examples]]
        cosines = np.asarray((t @ e.T).todense())
        return cosines.max(axis=1), cosines.argmax(axis=1)


# -- the effect on one reader's ranking ------------------------------------------------


def adjust(
    ranker: Ranker,
    subscribers: Sequence[Subscriber],
    ranked: list[list[Pick]],
    marks: Mapping[str, Sequence[Mark]],
    *,
    delivered: Mapping[str, Collection[str]] | None = None,
    topic_vectors: Mapping[str, Any] | None = None,
) -> list[list[Pick]]:
    """`ranked` (one list of picks per subscriber, from `ranker.rank`) with each marking
    reader's picks re-scored from their marks; the others are returned as they were."""
    out = list(ranked)
    for index, subscriber in enumerate(subscribers):
        theirs = marks.get(subscriber.key)
        if theirs:
            out[index] = rerank(
                ranker,
                subscriber,
                theirs,
                delivered=(delivered or {}).get(subscriber.key, ()),
                topic_vectors=topic_vectors,
            )
    return out


def _excluded(ranker: Ranker, subscriber: Subscriber) -> set[str]:
    """Papers the reader's excludes touch (as topics, the words anywhere): a paper added
    for its likeness alone must not be one of them."""
    if not subscriber.exclude:
        return set()
    probe = Subscriber.model_construct(
        email=subscriber.email,
        topics=tuple(Topic.model_construct(topic=term, weight=1.0) for term in subscriber.exclude),
        exclude=(),
        max_papers=len(ranker.papers),
        frequency=subscriber.frequency,
        active=True,
    )
    return {pick.paper.key for pick in ranker.rank([probe])[0]}


def rerank(
    ranker: Ranker,
    subscriber: Subscriber,
    marks: Sequence[Mark],
    *,
    delivered: Collection[str] = (),
    topic_vectors: Mapping[str, Any] | None = None,
) -> list[Pick]:
    """One reader's picks with their marks applied (see the module docstring)."""
    pool = ranker.papers
    everyone = subscriber.model_copy(update={"max_papers": max(1, len(pool))})
    by_topic = {
        pick.paper.key: pick
        for pick in ranker.rank(
            [everyone], delivered={subscriber.key: delivered}, topic_vectors=topic_vectors
        )[0]
    }
    marked = {m.paper.key for m in marks}
    candidates = [p for p in pool if p.key not in marked and p.key not in delivered]
    if not candidates:
        return []
    examples = {m.paper.key: m.paper for m in marks}
    similarity = Similarity(_union(candidates, examples.values()))
    more = [m for m in marks if m.direction == "more"]
    less = [m for m in marks if m.direction == "less"]
    keys = [p.key for p in candidates]
    s_more, which = similarity.best(keys, [m.paper.key for m in more])
    s_less, _ = similarity.best(keys, [m.paper.key for m in less])
    blocked = _excluded(ranker, subscriber)
    scored: list[Pick] = []
    for paper, plus, minus, example in zip(
        candidates, s_more.tolist(), s_less.tolist(), which.tolist(), strict=True
    ):
        pick = by_topic.get(paper.key)
        if minus >= DROP_SIMILARITY and minus >= plus:
            continue
        like = more[example].paper.title if more and plus >= EXPLAIN_SIMILARITY else None
        if pick is not None:
            score = pick.score * (1 + MORE_WEIGHT * plus) * max(0.0, 1 - LESS_WEIGHT * minus)
            reason = f'{pick.why}; like "{like}", which you marked' if like else pick.reason
            scored.append(Pick(paper, score, pick.matches, reason))
        elif plus >= ADD_SIMILARITY and paper.key not in blocked:
            score = ADD_WEIGHT * plus * max(0.0, 1 - LESS_WEIGHT * minus)
            scored.append(
                Pick(paper, score, (), f'Like "{more[example].paper.title}", which you marked')
            )
    scored = [pick for pick in scored if pick.score > 0]
    scored.sort(key=lambda pick: (-pick.score, pick.paper.key))
    return scored[: subscriber.max_papers]


def _union(candidates: Sequence[Paper], examples: Iterable[Paper]) -> list[Paper]:
    seen = {paper.key for paper in candidates}
    return [*candidates, *(paper for paper in examples if paper.key not in seen)]
