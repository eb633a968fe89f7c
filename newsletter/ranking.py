"""Score papers for subscribers and say why (pure, vectorised).

Data in, data out: `Ranker(papers, today=...)` indexes a pool of papers once and
`Ranker.rank(subscribers, delivered=...)` returns each subscriber's picks, best first.
Nothing here reads files or the clock, and no module state changes.

Text analysis (newsletter/analysis.py, with newsletter/lexicon.py)
    Words are stemmed (Snowball English) after dropping stopwords; every text yields
    unigram, bigram and near-pair features (two kept terms at most 4 words apart in one
    segment, either order). Acronyms and their expansions are one term: the lexicon is
    learned when the ranker is built, from the definitions in the pool's own abstracts
    ("sparse mixture of experts (MoE)") plus a small curated table (LLM, RAG, ViT,
    ASR, ...), so a topic "MoE" finds "mixture-of-experts" and "LLM distillation" finds
    "distilling large language models (LLMs)". Hyphenated words are read whole where
    people also write them as one word ("pre-training" = "pretraining", "in-context").

Paper weights (BM25F with a saturation per field, computed once in `Ranker.__init__`)
    For feature t of paper d and each field f (title, abstract, the capture's
    ai_keywords), tf_f~ = tf_f / (1 - b_f + b_f * len_f / avg_f) (b = 0.3, 0.75, 0.3),
    and the field saturates on its own before the fields add up:
        W(d, t) = idf(t) * sum_f share_f * tf_f~ * (k1 + 1) / (tf_f~ + k1),   k1 = 1.2,
        share = 0.6 title, 0.4 abstract (adding up to 1), + 0.2 keywords on top,
        idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))   (always > 0).
    A word repeated all over a long abstract reaches at most 0.4 of what the title and
    abstract together give; a paper without keywords loses nothing it could have had.

Topics
    A one-word topic queries its stem with weight 1. A multi-word topic puts 0.6 of its
    weight on its bigrams (the phrase in order), 0.25 on its near pairs (the pair of
    each bigram, in any order, close together) and 0.15 on its single words (each share
    split equally), so "continual learning" scores mainly through the phrase:
        topic score   S(q, d) = sum_t qw(q, t) * W(d, t) / S_max(q),
                      S_max(q) = (k1 + 1) * sum_t qw(q, t) * idf(t)
    S is in [0, 1.1): the share of the best score a paper could reach for that topic, so
    topics with rare and common words compare fairly when they are combined. The topic
    is relevant to the paper only when every word of the topic occurs in the paper and
    at least half of its pairs (MIN_NEAR_SHARE) occur near each other, and then
    contributes
        s(q, d) = weight(q) * S(q, d),    otherwise 0.
    The threshold is on what matched, not on BM25 magnitudes, so it means the same in a
    pool of 10 papers or of 100,000: a one-word topic needs its word; a two-word topic
    its two words close together; a three-word topic all its words and one of its two
    pairs close; a four-word one all its words and two of its three pairs. A paper with
    the exact phrase scores higher than one with the words near each other.
    Precision without starving broad topics: the words every AI paper uses (GENERIC:
    "AI", "LLM", "model", "network", "deep", "large", ...) are not needed when a topic
    has others too. A paper with every other word of "medical AI" or "LLM agents" (but
    not the whole phrase) is relevant at RELAXED_SHARE = 0.5 of its score, so it comes
    after the papers with the whole phrase and still fills a digest that has room.

Combining a subscriber's topics
    relevance = (sum_j s_j ** 4) ** (1/4), a soft maximum over the relevant topics: one
    topic alone gives its own score, two equal ones 1.19 times it, three 1.32 times, five
    1.5 times; so a paper matching one topic strongly (say at 0.8) beats one matching
    three topics weakly (at 0.55 each).

The semantic signal (optional: `Ranker(..., paper_vectors=)` and `rank(...,
topic_vectors=)`, unit vectors from newsletter/semantic.py)
    cosine c(q, d) of the topic's and the paper's vectors (one topics x papers matrix
    product per `rank` call), closeness = clip((c - 0.2) / (1 - 0.2), 0, 1), and
        S'(q, d) = 0.7 * S(q, d) + 0.3 * closeness(q, d)
    where the topic's words matched (as above) or c >= CLOSE_THRESHOLD = 0.45, else 0.
    The weight and the threshold were chosen on the tune half of the judged set
    (benchmarks/relevance/, all-MiniLM-L6-v2, short topic vs title + abstract): a
    paper is picked by meaning alone only when it is clearly closer than the usual
    unrelated one. Such a pick is explained as "close to <topic>"; a topic whose words
    matched is explained by its words. The topic scores
    S' then combine exactly as below.

Priors (multiplicative and small, so they only reorder relevant papers: 0 stays 0)
    score = relevance * (1 + 0.10 * min(log1p(upvotes) / log1p(1000), 1)
                           + 0.05 * 0.5 ** (age_days / 30))
    age_days is `today - published` (0 when published after `today`); a paper without a
    publication date gets no recency bonus. A relevant paper gains at most 15%.

Exclusions
    A paper is "mainly about" an exclude term, and never picked for that subscriber,
    when the term's phrase (all its bigrams; its stem for a one-word term) occurs in the
    title, or at least twice in the abstract. Matching is on stems, so excluding
    "surveys" also excludes "A Survey of ...". A passing mention in the abstract does
    not exclude a paper: a topic's own words often appear in related-work sentences.

Picks
    At most `max_papers` papers with score > 0 (at least one topic relevant), none
    excluded, none whose key is in `delivered[subscriber.key]`, best score first (exact
    ties are broken deterministically). Papers sharing a key are ranked once (the
    capture with the most upvotes is kept). A subscriber with no relevant paper gets [].

Vectorisation
    `Ranker.__init__` builds the paper x feature BM25F matrix once (CSR). Each `rank`
    call dedupes topic texts (case-insensitively) into a sparse topic x feature query
    matrix and multiplies it with the paper matrix (topic x paper scores and coverages,
    thresholded and raised to the 4th power). A sparse subscriber x topic matrix of
    (weight / max weight) ** 4 then combines topics for a block of subscribers in one
    sparse product, excluded and delivered papers are removed with a sparse mask, and
    top-k runs on the block's nonzeros with `argpartition`, rows bucketed by their number
    of relevant papers and padded into dense blocks. Python loops only run over
    subscribers and their topics (to build the sparse inputs), over distinct
    (topic, paper) matches (to explain them) and over the picks (to build `Pick`s),
    never over (subscriber, paper) pairs. The cyclic garbage collector is paused while
    `rank` creates its objects (see `collector.paused`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from newsletter import collector
from newsletter.analysis import (
    NEAR_MARK,
    NEAR_SHARE,
    NEAR_WINDOW,
    PHRASE_SHARE,
    STOPWORDS,
    WORD_SHARE,
    Analyzer,
    Reading,
    Text,
    TopicTerms,
    count,
    explain,
)
from newsletter.dumps import Paper
from newsletter.lexicon import Lexicon
from newsletter.subscribers import Subscriber

__all__ = [
    "NEAR_MARK",
    "NEAR_SHARE",
    "NEAR_WINDOW",
    "PHRASE_SHARE",
    "STOPWORDS",
    "WORD_SHARE",
    "Analyzer",
    "Match",
    "Pick",
    "Ranker",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

# BM25F
K1 = 1.2
TITLE_SHARE = 0.6  # of a word's weight from the title; the rest from the abstract
KEYWORDS_SHARE = 0.2  # on top, from the capture's ai_keywords (when it has them)
B_TITLE = 0.3
B_ABSTRACT = 0.75
B_KEYWORDS = 0.3
FIELDS = ("title", "abstract", "keywords")

# Topic queries and the relevance threshold
MIN_NEAR_SHARE = 0.5  # of a multi-word topic's pairs that must be near (plus every word)
# Words any AI paper uses: a topic with other words too ("medical AI", "LLM distillation")
# also takes papers with those other words alone, at RELAXED_SHARE of the score.
GENERIC = frozenset({"ai", "llm", "lm", "vlm", "mllm", "lmm", "model", "network", "deep", "larg"})
RELAXED_SHARE = 0.5
COMBINE_POWER = 4  # soft maximum over a subscriber's topics (must stay 4: two square roots)

# The semantic signal (only with vectors: see newsletter/semantic.py)
SEMANTIC_WEIGHT = 0.3  # share of a topic's score from closeness; the rest from its words
CLOSE_FLOOR = 0.2  # cosine at which closeness starts (0 below, 1 at cosine 1)
CLOSE_THRESHOLD = 0.45  # cosine from which closeness alone makes a topic relevant (see below)

# Priors
UPVOTE_PRIOR = 0.10
UPVOTE_SATURATION = 1000
RECENCY_PRIOR = 0.05
RECENCY_HALF_LIFE_DAYS = 30.0

# Exclusions: occurrences of the term's phrase in the abstract that make a paper "about" it
EXCLUDE_ABSTRACT_COUNT = 2

# Memory limits
DENSE_TOPIC_LIMIT = 12_500_000  # topic x paper scores kept dense up to this many elements
SUBSCRIBER_BLOCK = 16_384  # subscribers scored together
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Match:
    """One topic that contributed to a paper's score, and the words that matched.

    `score` is the topic's contribution: its weight times its normalised BM25F score
    (before the priors). `words` are the matched phrases, then the other matched words,
    as written in the paper (lower case); `places` says for each where it occurs:
    "title", "abstract" or "title and abstract" (or "keywords": only in the capture's
    ai_keywords).
    """

    topic: str
    words: tuple[str, ...]
    score: float
    places: tuple[str, ...] = ()
    close: bool = False  # picked by meaning alone: the paper's vector is close to the topic's

    def describe(self) -> str:
        """How the topic was found, without saying it twice: `continual learning in the
        title and abstract` when the topic itself was found, `rl ("reinforcement
        learning" in the title)` for other words, `knowledge distillation in the title,
        with "teacher" in the abstract` for both; `close to topic` for a semantic-only
        match."""
        if self.close:
            return f"close to {self.topic}"
        itself: list[str] = []
        others: dict[str, list[str]] = {}
        for index, word in enumerate(self.words):
            place = self.places[index] if index < len(self.places) else ""
            if _same_words(word, self.topic):
                itself.append(place)
            else:
                others.setdefault(place, []).append(f'"{word}"')
        quoted = ", ".join(
            _join_and(words) + (f" in the {place}" if place else "")
            for place, words in others.items()
        )
        found = [place for place in itself if place]
        direct = f"{self.topic} in the {found[0]}" if found else self.topic
        if not others:
            return direct
        if itself:
            return f"{direct}, with {quoted}"
        return f"{self.topic} ({quoted})"


_ALNUM_RUN = re.compile(r"[^\W_]+")


def _same_words(first: str, second: str) -> bool:
    """The same words, whatever the case, hyphens and punctuation between them."""
    return _ALNUM_RUN.findall(first.casefold()) == _ALNUM_RUN.findall(second.casefold())


@dataclass(frozen=True, slots=True)
class Pick:
    """A paper chosen for one subscriber, with its score and the reason.

    `reason` is a stored explanation (a pick read back from the database has no
    matches); when empty, `why` is rendered from `matches`.
    """

    paper: Paper
    score: float
    matches: tuple[Match, ...]
    reason: str = ""

    @property
    def why(self) -> str:
        """One human line: which topics and words drove the score, e.g.
        `Matches knowledge distillation in the title`."""
        if self.reason:
            return self.reason
        # What the words matched first, then what only the meaning is close to.
        lexical = [match.describe() for match in self.matches if not match.close]
        close = [match.topic for match in self.matches if match.close]
        parts = []
        if lexical:
            parts.append("Matches " + _join_and(lexical))
        if close:
            parts.append(("close to " if parts else "Close to ") + _join_and(close))
        return "; ".join(parts)


def _join_and(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ----------------------------------------------------------------------------- ranker


@dataclass
class _Batch:
    """Everything `rank` derives from one list of subscribers.

    A "slot" is one distinct topic of one subscriber; a "slot key" one distinct
    (topic as written, weight), which is what a `Match` depends on besides the paper.
    """

    size: int
    topics: list[TopicTerms]  # by topic id (distinct case-folded topic texts)
    relevance4: Any  # CSR topic x paper: (topic score) ** 4 where relevant
    relevance: Any  # topic x paper topic scores where relevant, plus a zero last row
    lexical: Any  # the same shape: nonzero where the words matched (None: = relevance)
    mix: Any  # CSR subscriber x topic: (weight / max weight) ** 4
    max_weight: FloatArray  # per subscriber
    slot_topic: IntArray  # subscriber x slot: topic id (the zero row where no slot)
    slot_weight: FloatArray  # subscriber x slot
    slot_key: IntArray  # subscriber x slot: slot key
    key_text: list[str]  # by slot key
    key_weight: list[float]
    key_topic: list[int]
    masked: Any  # CSR subscriber x paper, nonzero = never pick (delivered), or None
    exclude: Any  # CSR subscriber x exclude term, or None
    exclude_hits: Any  # CSR exclude term x paper, or None
    max_papers: IntArray


class Ranker:
    """Index a pool of papers once, then rank any number of subscribers against it."""

    def __init__(
        self,
        papers: Sequence[Paper],
        *,
        today: date,
        paper_vectors: Mapping[str, npt.NDArray[np.floating[Any]]] | None = None,
    ) -> None:
        """`paper_vectors` (unit vectors by paper key, from `newsletter.semantic`) turn on
        the semantic signal for the topics given vectors in `rank`; a paper without one
        is ranked on its words alone."""
        pool: dict[str, Paper] = {}
        for paper in papers:
            kept = pool.get(paper.key)
            if kept is None or paper.upvotes > kept.upvotes:
                pool[paper.key] = paper
        self._papers: tuple[Paper, ...] = tuple(pool.values())
        self._index = {paper.key: index for index, paper in enumerate(self._papers)}
        self._texts: dict[int, tuple[Text, ...]] = {}
        self._analyzer = Analyzer(
            Lexicon.learn(f"{paper.title}. {paper.abstract}" for paper in self._papers)
        )

        vocabulary: dict[str, int] = {}
        matrices: list[tuple[list[int], list[int], list[float]]] = []
        scales: list[FloatArray] = []
        analysed: list[list[Reading]] = [[], [], []]
        for field_index, b in enumerate((B_TITLE, B_ABSTRACT, B_KEYWORDS)):
            rows: list[int] = []
            cols: list[int] = []
            vals: list[float] = []
            lengths: list[int] = []
            for row, paper in enumerate(self._papers):
                reading = self._analyzer.read(_field_text(paper, field_index))
                analysed[field_index].append(reading)
                found = count(reading, surfaces=False)
                lengths.append(found.length)
                for feature, value in found.counts.items():
                    rows.append(row)
                    cols.append(vocabulary.setdefault(feature, len(vocabulary)))
                    vals.append(float(value))
            matrices.append((rows, cols, vals))
            scales.append(_field_scale(lengths, b))
        self._analysed = list(zip(*analysed, strict=True))
        self._vocabulary = vocabulary
        shape = (len(self._papers), len(vocabulary))
        title, abstract, keywords = (
            sp.csr_matrix((vals, (rows, cols)), shape=shape) for rows, cols, vals in matrices
        )
        # Each field saturates on its own, then the fields add up with their shares: a
        # word repeated all over a long abstract never outweighs the title.
        saturated = sp.csr_matrix(
            TITLE_SHARE * _saturate(sp.diags(scales[0]) @ title)
            + (1.0 - TITLE_SHARE) * _saturate(sp.diags(scales[1]) @ abstract)
            + KEYWORDS_SHARE * _saturate(sp.diags(scales[2]) @ keywords)
        )
        saturated.sum_duplicates()
        saturated.eliminate_zeros()
        n_papers = len(self._papers)
        df = np.bincount(saturated.indices, minlength=len(vocabulary)).astype(np.float64)
        self._idf: FloatArray = np.log1p((n_papers - df + 0.5) / (df + 0.5))
        weights = self._idf[saturated.indices] * np.asarray(saturated.data, dtype=np.float64)
        bm25 = sp.csr_matrix((weights, saturated.indices, saturated.indptr), shape=shape)
        present = sp.csr_matrix(
            (np.ones_like(weights), saturated.indices, saturated.indptr), shape=shape
        )
        self._weights_t: Any = bm25.T.tocsr()  # feature x paper
        self._present_t: Any = present.T.tocsr()
        self._title_tf: Any = title.tocsc()
        self._abstract_tf: Any = abstract.tocsc()
        self._prior: FloatArray = _priors(self._papers, today)
        self._prior4: FloatArray = np.asarray(self._prior**COMBINE_POWER, dtype=np.float64)
        self._vectors: npt.NDArray[np.float32] | None = None
        if paper_vectors:
            dims = {len(vector) for vector in paper_vectors.values()}
            if len(dims) != 1:
                raise ValueError(f"paper vectors of different lengths: {sorted(dims)}")
            self._vectors = np.zeros((n_papers, dims.pop()), dtype=np.float32)
            for row, paper in enumerate(self._papers):
                vector = paper_vectors.get(paper.key)
                if vector is not None:
                    self._vectors[row] = vector

    @property
    def papers(self) -> tuple[Paper, ...]:
        """The pool as ranked (duplicate keys removed), in column order of `scores`."""
        return self._papers

    def rank(
        self,
        subscribers: Sequence[Subscriber],
        *,
        delivered: Mapping[str, Collection[str]] | None = None,
        topic_vectors: Mapping[str, npt.NDArray[np.floating[Any]]] | None = None,
    ) -> list[list[Pick]]:
        """For each subscriber (same order), the picks best first: at most `max_papers`,
        only papers above the relevance threshold, none excluded, none whose key is in
        `delivered[subscriber.key]`. `topic_vectors` (by case-folded topic text) add the
        semantic signal when the ranker has paper vectors."""
        result: list[list[Pick]] = [[] for _ in subscribers]
        if not subscribers or not self._papers:
            return result
        with collector.paused():  # a million acyclic Picks: no full collections
            batch = self._prepare(subscribers, delivered or {}, topic_vectors)
            matches: dict[int, tuple[Match, ...]] = {}
            explained: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
            for low in range(0, batch.size, SUBSCRIBER_BLOCK):
                high = min(batch.size, low + SUBSCRIBER_BLOCK)
                keys = self._block_keys(batch, low, high, mask_delivered=True)
                rows, cols, values = _top_k(keys, batch.max_papers[low:high])
                if len(rows):
                    self._picks(batch, low, rows, cols, values, result, matches, explained)
        return result

    def scores(
        self,
        subscribers: Sequence[Subscriber],
        *,
        topic_vectors: Mapping[str, npt.NDArray[np.floating[Any]]] | None = None,
    ) -> FloatArray:
        """Dense subscriber x paper scores (0 = not relevant or excluded), ignoring
        `delivered` and `max_papers`: for inspecting and testing small batches."""
        out = np.zeros((len(subscribers), len(self._papers)))
        if not subscribers or not self._papers:
            return out
        batch = self._prepare(subscribers, {}, topic_vectors)
        for low in range(0, batch.size, SUBSCRIBER_BLOCK):
            high = min(batch.size, low + SUBSCRIBER_BLOCK)
            keys = sp.coo_matrix(self._block_keys(batch, low, high, mask_delivered=False))
            out[low + keys.row, keys.col] = _score(keys.data, batch.max_weight[low + keys.row])
        return out

    # -------------------------------------------------------------------- internals

    def _query(
        self, terms: Sequence[TopicTerms]
    ) -> tuple[Any, Any, Any, Any, FloatArray, FloatArray]:
        """For topics: the CSR (topics x features) query weights; the CSR of their words
        alone, each 1 / number of words (its product with presence is 1 when every word
        occurs); and each topic's best possible BM25F score (k1 + 1) * sum_t qw(t) *
        idf(t). Features absent from the pool are left out of the matrices (they match
        nothing) but count in the weights and the best score (with df = 0)."""
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        word_rows: list[int] = []
        word_cols: list[int] = []
        word_vals: list[float] = []
        pair_rows: list[int] = []
        pair_cols: list[int] = []
        pair_vals: list[float] = []
        need_rows: list[int] = []
        need_cols: list[int] = []
        need_vals: list[float] = []
        free = np.zeros(len(terms))
        best = np.zeros(len(terms))
        unknown_idf = math.log1p((len(self._papers) + 0.5) / 0.5)
        for row, term in enumerate(terms):
            total = 0.0
            for feature, weight in term.weights().items():
                col = self._vocabulary.get(feature)
                if col is None:
                    total += weight * unknown_idf
                else:
                    total += weight * float(self._idf[col])
                    rows.append(row)
                    cols.append(col)
                    vals.append(weight)
            best[row] = (K1 + 1.0) * total
            # Every word counts 1 / (number of words); the pairs share 1 / MIN_NEAR_SHARE
            # over the words' total, so `needed @ present >= 1 + 1` reads "every word and
            # at least MIN_NEAR_SHARE of the pairs" (a topic without pairs gets its 1 free).
            pairs = term.pairs
            for feature in term.unigrams:
                col = self._vocabulary.get(feature)
                if col is not None:
                    word_rows.append(row)
                    word_cols.append(col)
                    word_vals.append(1.0 / len(term.unigrams))
            needed = [u for u in term.unigrams if u not in GENERIC]
            if 0 < len(needed) < len(term.unigrams):
                for feature in needed:
                    col = self._vocabulary.get(feature)
                    if col is not None:
                        need_rows.append(row)
                        need_cols.append(col)
                        need_vals.append(1.0 / len(needed))
            if not pairs:
                free[row] = 1.0
            for feature in pairs:
                col = self._vocabulary.get(feature)
                if col is not None:
                    pair_rows.append(row)
                    pair_cols.append(col)
                    pair_vals.append(1.0 / (MIN_NEAR_SHARE * len(pairs)))
        shape = (len(terms), len(self._vocabulary))
        query = sp.csr_matrix((vals, (rows, cols)), shape=shape)
        words = sp.csr_matrix((word_vals, (word_rows, word_cols)), shape=shape)
        near = sp.csr_matrix((pair_vals, (pair_rows, pair_cols)), shape=shape)
        needed = sp.csr_matrix((need_vals, (need_rows, need_cols)), shape=shape)
        return query, words, near, needed, free, best

    def _prepare(
        self,
        subscribers: Sequence[Subscriber],
        delivered: Mapping[str, Collection[str]],
        topic_vectors: Mapping[str, npt.NDArray[np.floating[Any]]] | None = None,
    ) -> _Batch:
        analyzer = self._analyzer
        n_subscribers = len(subscribers)
        n_papers = len(self._papers)
        topic_ids: dict[str, int] = {}
        topics: list[TopicTerms] = []
        key_ids: dict[tuple[str, float], int] = {}
        key_text: list[str] = []
        key_weight: list[float] = []
        key_topic: list[int] = []
        exclude_ids: dict[str, int] = {}
        excludes: list[TopicTerms] = []
        slot_rows: list[int] = []
        slot_keys: list[int] = []
        ex_rows: list[int] = []
        ex_cols: list[int] = []
        del_rows: list[int] = []
        del_cols: list[int] = []
        max_papers: list[int] = []
        index = self._index
        for row, subscriber in enumerate(subscribers):
            max_papers.append(subscriber.max_papers)
            for topic in subscriber.topics:
                slot_key = key_ids.get((topic.topic, topic.weight))
                if slot_key is None:
                    folded = topic.topic.casefold()
                    topic_id = topic_ids.get(folded)
                    if topic_id is None:
                        topic_id = topic_ids[folded] = len(topics)
                        topics.append(analyzer.topic_terms(topic.topic))
                    slot_key = key_ids[(topic.topic, topic.weight)] = len(key_text)
                    key_text.append(topic.topic)
                    key_weight.append(float(topic.weight))
                    key_topic.append(topic_id)
                slot_rows.append(row)
                slot_keys.append(slot_key)
            for term in subscriber.exclude:
                folded = term.casefold()
                exclude_id = exclude_ids.get(folded)
                if exclude_id is None:
                    exclude_id = exclude_ids[folded] = len(excludes)
                    excludes.append(analyzer.topic_terms(term))
                ex_rows.append(row)
                ex_cols.append(exclude_id)
            if delivered:
                keys = delivered.get(subscriber.key)
                if keys:
                    for paper_key in keys:
                        col = index.get(paper_key)
                        if col is not None:
                            del_rows.append(row)
                            del_cols.append(col)

        # Topic x paper: normalised BM25F score, kept where the topic is relevant.
        query, words, near, needed, free, best = self._query(topics)
        inverse_best = np.divide(1.0, best, out=np.zeros_like(best), where=best > 0)
        score = sp.csr_matrix(sp.diags(inverse_best) @ query @ self._weights_t)
        every_word = sp.csr_matrix(words @ self._present_t) >= 1.0 - _EPS
        near_enough = sp.csr_matrix(near @ self._present_t)
        if free.any():
            near_enough = sp.csr_matrix(near_enough + sp.diags(free) @ every_word)
        relevant = sp.csr_matrix(every_word.multiply(near_enough >= 1.0 - _EPS), dtype=np.float64)
        relaxed = sp.csr_matrix(needed @ self._present_t >= 1.0 - _EPS, dtype=np.float64)
        relaxed = relaxed - relaxed.multiply(relevant)
        relevance = sp.csr_matrix(score.multiply(relevant + RELAXED_SHARE * relaxed))
        relevance.eliminate_zeros()
        n_topics = len(topics)
        lexical: Any = None
        if self._vectors is not None and topic_vectors:
            lexical = relevance
            relevance = self._blend(relevance, list(topic_ids), topic_vectors)
        dense = (n_topics + 1) * n_papers <= DENSE_TOPIC_LIMIT
        extended: Any = sp.vstack([relevance, sp.csr_matrix((1, n_papers))]).tocsr()
        if dense:
            extended = extended.toarray()
        if lexical is not None:
            lexical = sp.vstack([lexical, sp.csr_matrix((1, n_papers))]).tocsr()
            if dense:
                lexical = lexical.toarray()

        # Slots: one per distinct topic of a subscriber (the heaviest weight if repeated).
        rows_a = np.asarray(slot_rows, dtype=np.int64)
        keys_a = np.asarray(slot_keys, dtype=np.int64)
        topic_of_key = np.asarray(key_topic, dtype=np.int64)
        weight_of_key = np.asarray(key_weight, dtype=np.float64)
        topic_a = topic_of_key[keys_a] if len(keys_a) else keys_a
        weight_a = weight_of_key[keys_a] if len(keys_a) else np.zeros(0)
        order = np.lexsort((-weight_a, topic_a, rows_a))
        first = np.ones(len(order), dtype=bool)
        first[1:] = (rows_a[order][1:] != rows_a[order][:-1]) | (
            topic_a[order][1:] != topic_a[order][:-1]
        )
        kept = order[first]
        rows_a, keys_a = rows_a[kept], keys_a[kept]
        topic_a, weight_a = topic_a[kept], weight_a[kept]

        max_weight = np.zeros(n_subscribers)
        np.maximum.at(max_weight, rows_a, weight_a)
        safe_max = np.where(max_weight > 0, max_weight, 1.0)
        mix = sp.csr_matrix(
            ((weight_a / safe_max[rows_a]) ** COMBINE_POWER, (rows_a, topic_a)),
            shape=(n_subscribers, n_topics),
        )
        counts = np.bincount(rows_a, minlength=n_subscribers)
        width = max(int(counts.max()) if n_subscribers else 0, 1)
        starts = np.zeros(n_subscribers, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        position = np.arange(len(rows_a)) - starts[rows_a]
        slot_topic = np.full((n_subscribers, width), n_topics, dtype=np.int64)
        slot_weight = np.zeros((n_subscribers, width))
        slot_key_grid = np.full((n_subscribers, width), -1, dtype=np.int64)
        slot_topic[rows_a, position] = topic_a
        slot_weight[rows_a, position] = weight_a
        slot_key_grid[rows_a, position] = keys_a

        exclude = exclude_hits = masked = None
        if excludes:
            exclude = sp.csr_matrix(
                (np.ones(len(ex_rows)), (ex_rows, ex_cols)), shape=(n_subscribers, len(excludes))
            )
            exclude_hits = self._exclude_hits(excludes)
        if del_rows:
            masked = sp.csr_matrix(
                (np.ones(len(del_rows)), (del_rows, del_cols)), shape=(n_subscribers, n_papers)
            )
        return _Batch(
            size=n_subscribers,
            topics=topics,
            relevance4=relevance.power(COMBINE_POWER).tocsr(),
            relevance=extended,
            lexical=lexical,
            mix=mix,
            max_weight=max_weight,
            slot_topic=slot_topic,
            slot_weight=slot_weight,
            slot_key=slot_key_grid,
            key_text=key_text,
            key_weight=key_weight,
            key_topic=key_topic,
            masked=masked,
            exclude=exclude,
            exclude_hits=exclude_hits,
            max_papers=np.asarray(max_papers, dtype=np.int64),
        )

    def _blend(
        self,
        lexical: Any,
        folded_topics: Sequence[str],
        topic_vectors: Mapping[str, npt.NDArray[np.floating[Any]]],
    ) -> Any:
        """CSR topic x paper scores with the semantic signal: one matrix product of the
        topic vectors with the paper vectors (cosines, in blocks of topics to bound
        memory), then (1 - SEMANTIC_WEIGHT) * lexical + SEMANTIC_WEIGHT * closeness, kept
        where the words matched or the cosine reaches CLOSE_THRESHOLD."""
        assert self._vectors is not None
        papers = self._vectors
        dim = papers.shape[1]
        queries = np.zeros((len(folded_topics), dim), dtype=np.float32)
        for row, folded in enumerate(folded_topics):
            vector = topic_vectors.get(folded)
            if vector is not None and len(vector) == dim:
                queries[row] = vector
        lexical = sp.csr_matrix(lexical)
        block = max(1, DENSE_TOPIC_LIMIT // max(len(papers), 1))
        parts: list[Any] = []
        for low in range(0, len(folded_topics), block):
            cosine = (queries[low : low + block] @ papers.T).astype(np.float64)
            closeness = np.clip((cosine - CLOSE_FLOOR) / (1.0 - CLOSE_FLOOR), 0.0, 1.0)
            words = lexical[low : low + block].toarray()
            keep = (words > 0) | (cosine >= CLOSE_THRESHOLD - _EPS)
            blended = np.where(
                keep, (1.0 - SEMANTIC_WEIGHT) * words + SEMANTIC_WEIGHT * closeness, 0.0
            )
            parts.append(sp.csr_matrix(blended))
        out = sp.csr_matrix(sp.vstack(parts)) if parts else lexical
        out.eliminate_zeros()
        return out

    def _exclude_hits(self, excludes: Sequence[TopicTerms]) -> Any:
        """CSR (exclude term x paper), 1 where the paper is mainly about the term: its
        phrase (every bigram, or its only stem) in the title or at least
        EXCLUDE_ABSTRACT_COUNT times in the abstract (the fewest occurrences of its
        bigrams, for a term of three words or more)."""
        terms: list[int] = []
        columns: list[list[int]] = []
        for row, term in enumerate(excludes):
            needed = [self._vocabulary.get(f) for f in (term.bigrams or term.unigrams)]
            if needed and all(col is not None for col in needed):
                terms.append(row)  # else: stopwords only, or a phrase absent from the pool
                columns.append([col for col in needed if col is not None])
        hits_rows: list[IntArray] = []
        hits_cols: list[IntArray] = []
        group = max(1, 4_000_000 // max(len(self._papers), 1) // 4)
        for first in range(0, len(terms), group):
            chunk = columns[first : first + group]
            flat = [col for cols in chunk for col in cols]
            starts = np.cumsum([0] + [len(cols) for cols in chunk[:-1]])
            title = np.minimum.reduceat(self._title_tf[:, flat].toarray(), starts, axis=1)
            abstract = np.minimum.reduceat(self._abstract_tf[:, flat].toarray(), starts, axis=1)
            papers, which = np.nonzero((title > 0) | (abstract >= EXCLUDE_ABSTRACT_COUNT))
            hits_rows.append(np.asarray(terms[first : first + group], dtype=np.int64)[which])
            hits_cols.append(papers)
        rows = np.concatenate(hits_rows) if hits_rows else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(hits_cols) if hits_cols else np.zeros(0, dtype=np.int64)
        return sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(excludes), len(self._papers))
        )

    def _block_keys(self, batch: _Batch, low: int, high: int, *, mask_delivered: bool) -> Any:
        """CSR (subscribers [low, high) x papers) of ordering keys, only where relevant:
        key = sum_j (w_j / max w) ** 4 * s_j ** 4 * prior ** 4, so that
        score = max w * key ** (1/4). Excluded (and delivered) papers are left out."""
        keys = sp.csr_matrix(batch.mix[low:high] @ batch.relevance4)
        drop = None
        if batch.exclude is not None:
            drop = sp.csr_matrix(batch.exclude[low:high] @ batch.exclude_hits)
        if mask_delivered and batch.masked is not None:
            delivered = batch.masked[low:high]
            drop = delivered if drop is None else drop + delivered
        if drop is not None and drop.nnz:
            drop.data[:] = 1.0
            keys = sp.csr_matrix(keys - keys.multiply(drop))
            keys.eliminate_zeros()
        keys.data *= self._prior4[keys.indices]
        return keys

    def _picks(
        self,
        batch: _Batch,
        low: int,
        rows: IntArray,
        cols: IntArray,
        values: FloatArray,
        result: list[list[Pick]],
        matches: dict[int, tuple[Match, ...]],
        explained: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]],
    ) -> None:
        """Turn the picks of a block (flat, grouped by row, best first) into `Pick`s."""
        n_papers = len(self._papers)
        subscriber = rows + low
        scores = _score(values, batch.max_weight[subscriber])
        # Contribution of each slot of the subscriber to each pick, best first.
        slot_topic = batch.slot_topic[subscriber]
        contributions = batch.slot_weight[subscriber] * _gather(
            batch.relevance, slot_topic, cols[:, None]
        )
        order = np.argsort(-contributions, axis=1, kind="stable")
        contributions = np.take_along_axis(contributions, order, axis=1)
        slot_keys = np.take_along_axis(batch.slot_key[subscriber], order, axis=1)
        match_ids = slot_keys * n_papers + cols[:, None]
        positive = contributions > 0
        n_matches = positive.sum(axis=1)

        # One Match per distinct (topic as written, weight, paper), kept as a 1-tuple.
        distinct, where = np.unique(match_ids[positive], return_index=True)
        for match_id, contribution in zip(
            distinct.tolist(), contributions[positive][where].tolist(), strict=True
        ):
            if match_id not in matches:
                key, col = divmod(match_id, n_papers)
                topic_id = batch.key_topic[key]
                words = explained.get((topic_id, col))
                if words is None:
                    fields = zip(FIELDS, self._paper_texts(col), strict=True)
                    words = explained[(topic_id, col)] = explain(batch.topics[topic_id], fields)
                close = batch.lexical is not None and not (
                    float(_gather(batch.lexical, np.asarray(topic_id), np.asarray(col))) > 0
                )
                matches[match_id] = (
                    Match(
                        batch.key_text[key],
                        () if close else words[0],
                        contribution,
                        () if close else words[1],
                        close=close,
                    ),
                )

        matches[-1] = ()  # for a pick without a positive slot (cannot happen: defensive)
        firsts = np.where(n_matches > 0, match_ids[:, 0], -1).tolist()
        found: list[tuple[Match, ...]] = list(map(matches.__getitem__, firsts))
        multi = np.flatnonzero(n_matches > 1)
        for index, ids, n_found in zip(
            multi.tolist(), match_ids[multi].tolist(), n_matches[multi].tolist(), strict=True
        ):
            found[index] = tuple([matches[m][0] for m in ids[:n_found]])
        pool = self._papers
        papers = [pool[col] for col in cols.tolist()]
        picks = list(map(Pick, papers, scores.tolist(), found))
        bounds = np.flatnonzero(np.diff(rows)) + 1
        starts = [0, *bounds.tolist()]
        ends = [*bounds.tolist(), len(rows)]
        for row, start, end in zip(rows[starts].tolist(), starts, ends, strict=True):
            result[low + row] = picks[start:end]

    def _paper_texts(self, col: int) -> tuple[Text, ...]:
        cached = self._texts.get(col)
        if cached is None:
            cached = self._texts[col] = tuple(Text(reading) for reading in self._analysed[col])
        return cached


def _field_text(paper: Paper, field_index: int) -> str:
    """The text of one field of a paper: title, abstract, or the capture's ai_keywords
    (one segment each, so no phrase runs from one keyword into the next)."""
    if field_index == 0:
        return paper.title
    if field_index == 1:
        return paper.abstract
    return "; ".join(paper.ai_keywords)


def _score(keys: FloatArray, max_weight: FloatArray) -> FloatArray:
    """The final score from an ordering key: max weight * key ** (1/4)."""
    return np.asarray(max_weight * np.sqrt(np.sqrt(keys)), dtype=np.float64)


def _top_k(keys: Any, limits: IntArray) -> tuple[IntArray, IntArray, FloatArray]:
    """The best `limits[r]` entries of each row of a CSR matrix with positive data, as
    flat (row, col, value) arrays grouped by row, best first (exact ties: deterministic,
    lower column first among the entries kept).

    Rows are bucketed by their number of entries (up to 2**i) and each bucket is padded
    into a dense block for `argpartition`, so the work follows the nonzeros, not the
    full width."""
    indptr = np.asarray(keys.indptr, dtype=np.int64)
    indices = np.asarray(keys.indices, dtype=np.int64)
    data = np.asarray(keys.data, dtype=np.float64)
    lengths = np.diff(indptr)
    out_rows: list[IntArray] = []
    out_cols: list[IntArray] = []
    out_vals: list[FloatArray] = []
    if len(lengths) == 0 or not lengths.any():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    buckets = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    buckets[lengths == 0] = -1
    for bucket in np.unique(buckets[buckets >= 0]).tolist():
        rows = np.flatnonzero(buckets == bucket)
        width = 1 << bucket
        offsets = np.arange(width)
        valid = offsets[None, :] < lengths[rows, None]
        where = np.where(valid, indptr[rows, None] + offsets[None, :], 0)
        vals = np.where(valid, data[where], 0.0)
        cols = np.where(valid, indices[where], -1)
        k = int(min(width, limits[rows].max()))
        if k < width:
            part = np.argpartition(-vals, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(vals, part, axis=1)
            cols = np.take_along_axis(cols, part, axis=1)
        order = np.lexsort((cols, -vals), axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        cols = np.take_along_axis(cols, order, axis=1)
        keep = (vals > 0) & (np.arange(vals.shape[1])[None, :] < limits[rows, None])
        out_rows.append(np.broadcast_to(rows[:, None], vals.shape)[keep])
        out_cols.append(cols[keep])
        out_vals.append(vals[keep])
    rows_all = np.concatenate(out_rows)
    order = np.argsort(rows_all, kind="stable")
    return rows_all[order], np.concatenate(out_cols)[order], np.concatenate(out_vals)[order]


def _gather(matrix: Any, rows: IntArray, cols: IntArray) -> FloatArray:
    """matrix[rows, cols] with broadcasting, for a dense array or a CSR matrix."""
    if isinstance(matrix, np.ndarray):
        return np.asarray(matrix[rows, cols], dtype=np.float64)
    rows_b, cols_b = np.broadcast_arrays(rows, cols)
    flat = np.asarray(matrix[rows_b.ravel(), cols_b.ravel()], dtype=np.float64)
    return flat.reshape(rows_b.shape)


def _field_scale(lengths: Sequence[int], b: float) -> FloatArray:
    """1 / (1 - b + b * length / average length), per paper."""
    values = np.asarray(lengths, dtype=np.float64)
    average = float(values.mean()) if len(values) else 0.0
    if average <= 0:
        return np.ones(len(values), dtype=np.float64)
    return np.asarray(1.0 / (1.0 - b + b * values / average), dtype=np.float64)


def _saturate(frequencies: Any) -> Any:
    """BM25 saturation of a CSR matrix of normalised frequencies: f (k1 + 1) / (f + k1)."""
    out = sp.csr_matrix(frequencies, dtype=np.float64)
    out.data = out.data * (K1 + 1.0) / (out.data + K1)
    return out


def _priors(papers: Sequence[Paper], today: date) -> FloatArray:
    """1 + the upvote and recency bonuses of each paper (at most 1.15)."""
    upvotes = np.asarray([max(paper.upvotes, 0) for paper in papers], dtype=np.float64)
    popularity = np.minimum(np.log1p(upvotes) / math.log1p(UPVOTE_SATURATION), 1.0)
    recency = np.asarray(
        [
            0.0
            if paper.published is None
            else 0.5 ** (max((today - paper.published).days, 0) / RECENCY_HALF_LIFE_DAYS)
            for paper in papers
        ],
        dtype=np.float64,
    )
    return np.asarray(1.0 + UPVOTE_PRIOR * popularity + RECENCY_PRIOR * recency, dtype=np.float64)
