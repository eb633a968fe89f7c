"""Ranking: what a subscriber would notice in their digest, on the real sample papers."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from newsletter import ranking
from newsletter.dumps import Paper, paper_key
from newsletter.lexicon import Lexicon
from newsletter.ranking import Analyzer, Match, Pick, Ranker
from newsletter.subscribers import Subscriber, Topic

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "dumps"
TODAY = date(2024, 12, 11)

# --------------------------------------------------------------------------- helpers


@cache
def sample_papers() -> tuple[Paper, ...]:
    """Every sample paper: a title line, a blank line, then the abstract on one line.

    (A tiny local reader: `newsletter.dumps.parse_dump` is written separately.)"""
    papers: list[Paper] = []
    for path in sorted(SAMPLES.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i in range(len(lines) - 2):
            title, blank, abstract = lines[i].strip(), lines[i + 1].strip(), lines[i + 2].strip()
            if title and len(title) < 300 and not blank and len(abstract) > 200:
                papers.append(
                    Paper(key=paper_key(title), title=title, abstract=abstract, line=i + 1)
                )
    assert len(papers) > 60
    return tuple(papers)


@cache
def sample_ranker() -> Ranker:
    return Ranker(sample_papers(), today=TODAY)


def reader(
    *topics: str | tuple[str, float],
    exclude: Sequence[str] = (),
    max_papers: int = 10,
    email: str = "reader@example.com",
) -> Subscriber:
    return Subscriber(
        email=email,
        topics=tuple(
            Topic(topic=t) if isinstance(t, str) else Topic(topic=t[0], weight=t[1]) for t in topics
        ),
        exclude=tuple(exclude),
        max_papers=max_papers,
    )


def paper(
    title: str,
    abstract: str,
    *,
    key: str | None = None,
    upvotes: int = 0,
    published: date | None = None,
) -> Paper:
    return Paper(
        key=key or paper_key(title),
        title=title,
        abstract=abstract,
        upvotes=upvotes,
        published=published,
    )


def titles(picks: Sequence[Pick]) -> list[str]:
    return [pick.paper.title for pick in picks]


FILLER = (  # an abstract's worth of words that match none of the topics below
    "Our approach trains a compact network with a modest budget and evaluates it on "
    "several public benchmarks, where it reports consistent gains over strong baselines. "
    "We describe the architecture, the optimisation schedule and the data pipeline, and "
    "we analyse the cost of each component in memory and wall-clock time. Ablations show "
    "which parts matter most, and an error analysis describes the cases the method still "
    "gets wrong, such as rare categories, long inputs and noisy annotations. We release "
    "the code, the trained checkpoints and the evaluation scripts so that others can "
    "reproduce every number reported here and extend the study to new settings."
)


# ------------------------------------------------------------------ the sample papers


def test_obviously_relevant_sample_papers_come_first() -> None:
    kd, cl, mt, rl, nothing = sample_ranker().rank(
        [
            reader("knowledge distillation", email="kd@example.com"),
            reader("continual learning", email="cl@example.com"),
            reader("machine translation", email="mt@example.com"),
            reader("reinforcement learning", email="rl@example.com"),
            reader("quantum chromodynamics lattice", email="qcd@example.com"),
        ]
    )
    assert "Knowledge Distillation via Token-level Relationship Graph" in titles(kd[:3])
    assert all("Knowledge Distillation" in title for title in titles(kd[:3]))

    assert set(titles(cl[:3])) >= {
        "Beyond Not-Forgetting: Continual Learning with Backward Knowledge Transfer",
        "Exclusive Supermask Subnetwork Training for Continual Learning",
    }
    assert set(titles(mt[:2])) == {
        "Machine Translation Advancements of Low-Resource Indian Languages by Transfer Learning",
        "Investigating Neural Machine Translation for Low-Resource Languages: "
        "Using Bavarian as a Case Study",
    }
    # "RL" in a title is reinforcement learning (an acronym the papers define).
    assert set(titles(rl[:3])) == {
        "Bridging Supervised Learning and Reinforcement Learning in Math Reasoning",
        "Reinforcement Learning Improves Traversal of Hierarchical Knowledge in LLMs",
        "RL on Incorrect Synthetic Data Scales the Efficiency of LLM Math Reasoning by Eight-Fold",
    }
    assert nothing == []
    for picks in (kd, cl, mt, rl):
        assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


def test_stemming_matches_other_forms_of_the_words() -> None:
    graphs, distilling = sample_ranker().rank(
        [
            reader("commonsense knowledge graphs", email="a@example.com"),
            reader("distilling", email="b@example.com"),
        ]
    )
    assert titles(graphs)[0] == (
        "Snowman: A Million-scale Chinese Commonsense Knowledge Graph Distilled from "
        "Foundation Model"
    )
    assert graphs[0].matches[0].words == ("commonsense knowledge graph",)
    found = " ".join(titles(distilling))
    assert "Distilled" in found and "Distillation" in found


def test_why_names_the_topic_and_words_found_in_the_paper() -> None:
    subscriber = reader(
        "knowledge distillation", "continual learning", "mixture of experts", "machine translation"
    )
    (picks,) = sample_ranker().rank([subscriber])
    assert picks
    for pick in picks:
        text = " ".join(f"{pick.paper.title} {pick.paper.abstract}".lower().split())
        assert pick.matches
        assert pick.why.startswith("Matches ")
        for match in pick.matches:
            assert match.topic in {t.topic for t in subscriber.topics}
            assert match.topic in pick.why
            assert match.words and all(word in text for word in match.words)
            assert all(f'"{word}"' in pick.why for word in match.words)
        assert [m.score for m in pick.matches] == sorted(
            (m.score for m in pick.matches), reverse=True
        )
    graph = next(p for p in picks if p.paper.title.startswith("Knowledge Distillation via"))
    assert graph.why == (
        'Matches knowledge distillation ("knowledge distillation" in title and abstract)'
    )
    moe = next(p for p in picks if p.paper.title.startswith("Meta-DMoE"))
    assert moe.matches[0].words == ("mixture-of-experts",)


def test_why_joins_a_phrase_written_with_hyphens() -> None:
    (picks,) = sample_ranker().rank([reader("retrieval augmented generation")])
    assert picks
    assert picks[0].matches[0].words == ("retrieval-augmented generation",)
    assert picks[0].why.endswith('("retrieval-augmented generation" in abstract)')


def test_a_stored_reason_is_shown_as_is() -> None:
    pick = Pick(sample_papers()[0], 1.5, (), "Matches agents (stored)")
    assert pick.why == "Matches agents (stored)"
    match = Match("rl", ("reinforcement learning",), 2.0, ("title",))
    assert Pick(sample_papers()[0], 2.0, (match,)).why == (
        'Matches rl ("reinforcement learning" in title)'
    )


# ------------------------------------------------------------------------ behaviour


def test_a_phrase_must_occur_as_a_phrase() -> None:
    together = paper(
        "Replay Buffers Revisited",
        "We study continual learning of language models without forgetting. " + FILLER,
    )
    apart = paper(
        "Memory for Streams",
        "Data arrive in a continual stream; learning from it, models forget. " + FILLER,
    )
    ranker = Ranker([together, apart], today=TODAY)
    (picks,) = ranker.rank([reader("continual learning")])
    assert titles(picks) == ["Replay Buffers Revisited"]
    scores = ranker.scores([reader("continual learning")])[0]
    assert scores[1] < scores[0]


def test_a_long_topic_needs_all_its_words_and_most_of_its_phrase() -> None:
    llm_reasoning = paper(
        "Large Language Models Think in Steps", "Large language model reasoning. " + FILLER
    )
    llm_only = paper("Large Language Models Recall Facts", "Large language models. " + FILLER)
    apart = paper(
        "Reasoning with Graphs", "Large graphs; language model; reasoning traces. " + FILLER
    )
    ranker = Ranker([*sample_papers(), llm_only, apart, llm_reasoning], today=TODAY)
    (picks,) = ranker.rank([reader("large language model reasoning", max_papers=100)])
    # "large language model" is the acronym LLM: a title with "LLM Reasoning" has the phrase.
    assert set(titles(picks)[:2]) == {
        "Large Language Models Think in Steps",
        "Harnessing Negative Signals: Reinforcement Distillation from Teacher Data for LLM "
        "Reasoning",
    }
    first = next(p for p in picks if p.paper is llm_reasoning)
    assert first.matches[0].words == ("large language model reasoning",)
    assert "Large Language Models Recall Facts" not in titles(picks)  # no "reasoning"
    # "LLM" is a word every paper here uses: a paper with "reasoning" alone is taken too,
    # at half the score, so after the papers with the whole phrase.
    graphs = picks[titles(picks).index("Reasoning with Graphs")]
    assert graphs.score < first.score / 2


def test_title_counts_more_than_abstract() -> None:
    in_title = paper("Knowledge Distillation for Detectors", "A study of detectors. " + FILLER)
    in_abstract = paper("A Study of Detectors", "Knowledge distillation for detectors. " + FILLER)
    (picks,) = Ranker([in_abstract, in_title], today=TODAY).rank([reader("knowledge distillation")])
    assert titles(picks) == ["Knowledge Distillation for Detectors", "A Study of Detectors"]


def test_topic_weight_changes_the_order() -> None:
    ranker = sample_ranker()
    mt_heavy, kd_heavy = ranker.rank(
        [
            reader(("machine translation", 3), ("knowledge distillation", 1), email="a@b.org"),
            reader(("machine translation", 1), ("knowledge distillation", 3), email="c@d.org"),
        ]
    )
    assert "Machine Translation" in mt_heavy[0].paper.title
    assert "Knowledge Distillation" in kd_heavy[0].paper.title
    assert mt_heavy[0].matches[0].topic == "machine translation"


def test_one_strong_topic_beats_all_topics_weakly() -> None:
    strong = paper(
        "Knowledge Distillation at Scale",
        "Knowledge distillation compresses models; we scale knowledge distillation. " + FILLER,
    )
    weak = paper(
        "A Broad Study",
        "We touch on knowledge distillation, continual learning and machine translation. " + FILLER,
    )
    subscriber = reader(
        "knowledge distillation", "continual learning", "machine translation", max_papers=100
    )
    ranker = Ranker([*sample_papers(), weak, strong], today=TODAY)
    (picks,) = ranker.rank([subscriber])
    assert titles(picks).index("Knowledge Distillation at Scale") < titles(picks).index(
        "A Broad Study"
    )
    weak_pick = next(p for p in picks if p.paper is weak)
    assert len(weak_pick.matches) == 3  # every topic contributed to the weak paper
    assert "knowledge distillation" in weak_pick.why and "machine translation" in weak_pick.why


def test_a_paper_mainly_about_an_excluded_term_is_dropped() -> None:
    pool = [
        paper("A Survey of Knowledge Distillation", "Knowledge distillation methods. " + FILLER),
        paper(
            "Distilling Detectors",
            "Knowledge distillation for detectors. We survey prior work in a survey. " + FILLER,
        ),
        paper(
            "Distilling Parsers",
            "Knowledge distillation for parsers; prior surveys missed it. " + FILLER,
        ),
        paper("Distilling Taggers", "Knowledge distillation for taggers. " + FILLER),
    ]
    ranker = Ranker(pool, today=TODAY)
    kept, everything = ranker.rank(
        [
            reader("knowledge distillation", exclude=["Surveys"], email="a@example.com"),
            reader("knowledge distillation", email="b@example.com"),
        ]
    )
    # in the title, or twice in the abstract: out; a passing mention: kept
    assert sorted(titles(kept)) == ["Distilling Parsers", "Distilling Taggers"]
    assert len(everything) == 4


def test_an_excluded_phrase_needs_the_phrase() -> None:
    pool = [
        paper("Diffusion Models for Audio", "Distillation for diffusion models. " + FILLER),
        paper("Models of Diffusion", "Distillation for heat diffusion. " + FILLER),
    ]
    ranker = Ranker(pool, today=TODAY)
    (everything,) = ranker.rank([reader("distillation")])
    assert len(everything) == 2
    (picks,) = ranker.rank([reader("distillation", exclude=["diffusion models"])])
    assert titles(picks) == ["Models of Diffusion"]


def test_delivered_papers_are_never_picked_again() -> None:
    ranker = sample_ranker()
    subscriber = reader("knowledge distillation", email="Reader@Example.com")
    (first,) = ranker.rank([subscriber])
    delivered = {subscriber.key: {first[0].paper.key, first[2].paper.key, "not-in-the-pool"}}
    (second,) = ranker.rank([subscriber], delivered=delivered)
    assert titles(second)[: len(first) - 2] == [first[1].paper.title, *titles(first[3:])]
    assert not {first[0].paper.key, first[2].paper.key} & {p.paper.key for p in second}
    other = reader("knowledge distillation", email="other@example.com")
    (theirs,) = ranker.rank([other], delivered=delivered)
    assert titles(theirs) == titles(first)


def test_max_papers_is_respected_and_never_padded() -> None:
    three, many = sample_ranker().rank(
        [
            reader("learning", max_papers=3, email="a@example.com"),
            reader("continual learning", max_papers=100, email="b@example.com"),
        ]
    )
    assert len(three) == 3
    cl = [p for p in sample_papers() if "continual" in f"{p.title} {p.abstract}".lower()]
    assert 0 < len(many) <= len(cl) + 3  # only matching papers, far fewer than 100
    assert all(p.matches for p in many)


def test_priors_break_ties_but_never_make_a_paper_relevant() -> None:
    abstract = "We propose a knowledge distillation method for detectors. " + FILLER
    old = paper("Distilled Detectors", abstract, key="old", published=TODAY - timedelta(400))
    popular = paper(
        "Distilled Detectors", abstract, key="popular", upvotes=90, published=TODAY - timedelta(400)
    )
    fresh = paper("Distilled Detectors", abstract, key="fresh", published=TODAY)
    famous = paper(
        "Quantum Error Correction",
        "Surface codes on qubits. " + FILLER,
        key="famous",
        upvotes=100_000,
        published=TODAY,
    )
    ranker = Ranker([old, famous, popular, fresh], today=TODAY)
    (picks,) = ranker.rank([reader("knowledge distillation")])
    assert [p.paper.key for p in picks] == ["popular", "fresh", "old"]
    assert picks[0].score / picks[-1].score < 1.2  # the priors are small
    assert ranker.scores([reader("knowledge distillation")])[0][1] == 0.0


def test_duplicate_keys_in_the_pool_are_ranked_once() -> None:
    one = paper("Distilled Detectors", "Knowledge distillation for detectors. " + FILLER)
    again = paper("Distilled Detectors", one.abstract, upvotes=5)
    ranker = Ranker([one, again], today=TODAY)
    (picks,) = ranker.rank([reader("knowledge distillation")])
    assert [p.paper for p in picks] == [again]


def test_edge_cases() -> None:
    ranker = sample_ranker()
    assert ranker.rank([]) == []
    assert Ranker([], today=TODAY).rank([reader("agents")]) == [[]]
    (stopwords,) = ranker.rank([reader("the of and")])
    assert stopwords == []


# ----------------------------------------------- vectorised == per-pair reference


def reference_scores(pool: Sequence[Paper], subscribers: Sequence[Subscriber]) -> np.ndarray:
    """The documented formula, one (subscriber, paper) pair at a time, in plain Python."""
    analyzer = Analyzer(Lexicon.learn(f"{p.title}. {p.abstract}" for p in pool))
    fields = [
        (
            analyzer.features(p.title),
            analyzer.features(p.abstract),
            analyzer.features("; ".join(p.ai_keywords)),
        )
        for p in pool
    ]
    n = len(pool)
    averages = [sum(f[i].length for f in fields) / n for i in range(3)]
    shares = [ranking.TITLE_SHARE, 1 - ranking.TITLE_SHARE, ranking.KEYWORDS_SHARE]
    bs = [ranking.B_TITLE, ranking.B_ABSTRACT, ranking.B_KEYWORDS]
    df: dict[str, int] = {}
    for three in fields:
        for feature in set().union(*(f.counts for f in three)):
            df[feature] = df.get(feature, 0) + 1

    def weight(d: int, feature: str) -> float:
        total = 0.0
        for i, field in enumerate(fields[d]):
            norm = 1.0 if averages[i] == 0 else 1 / (1 - bs[i] + bs[i] * field.length / averages[i])
            tf = field.counts.get(feature, 0) * norm
            total += shares[i] * tf * (ranking.K1 + 1) / (tf + ranking.K1)
        return idf(feature) * total

    def idf(feature: str) -> float:
        return math.log(1 + (n - df.get(feature, 0) + 0.5) / (df.get(feature, 0) + 0.5))

    def excluded(d: int, term: str) -> bool:
        terms = analyzer.topic_terms(term)
        needed = terms.bigrams or terms.unigrams
        title, abstract, _ = fields[d]
        return bool(needed) and (
            all(title.counts.get(f, 0) > 0 for f in needed)
            or min(abstract.counts.get(f, 0) for f in needed) >= 2
        )

    def topic_score(d: int, text: str) -> float:
        terms = analyzer.topic_terms(text)
        query = terms.weights()
        best = (ranking.K1 + 1) * sum(w * idf(f) for f, w in query.items())
        bm25 = sum(w * weight(d, f) for f, w in query.items())
        every_word = bool(terms.unigrams) and all(weight(d, f) > 0 for f in terms.unigrams)
        near = sum(1 for f in terms.pairs if weight(d, f) > 0)
        if every_word and near >= ranking.MIN_NEAR_SHARE * len(terms.pairs) - 1e-9:
            return bm25 / best
        needed = [u for u in terms.unigrams if u not in ranking.GENERIC]
        if 0 < len(needed) < len(terms.unigrams) and all(weight(d, f) > 0 for f in needed):
            return ranking.RELAXED_SHARE * bm25 / best
        return 0.0

    out = np.zeros((len(subscribers), n))
    for s, subscriber in enumerate(subscribers):
        topics: dict[str, float] = {}
        for topic in subscriber.topics:
            key = topic.topic.casefold()
            topics[key] = max(topics.get(key, 0.0), topic.weight)
        for d, p in enumerate(pool):
            if any(excluded(d, term) for term in subscriber.exclude):
                continue
            parts = [w * topic_score(d, text) for text, w in topics.items()]
            relevance = sum(x**4 for x in parts) ** 0.25
            prior = 1 + 0.10 * min(math.log1p(p.upvotes) / math.log1p(1000), 1.0)
            if p.published is not None:
                prior += 0.05 * 0.5 ** (max((TODAY - p.published).days, 0) / 30)
            out[s, d] = relevance * prior
    return out


def random_case(seed: int) -> tuple[list[Paper], list[Subscriber]]:
    rng = random.Random(seed)
    pool = [
        Paper(
            key=p.key,
            title=p.title,
            abstract=p.abstract,
            upvotes=rng.choice([0, 0, 3, 40, 700, 5000]),
            published=rng.choice([None, TODAY - timedelta(rng.randint(-3, 500))]),
            ai_keywords=rng.choice([(), tuple(p.title.split(":")[0].split()[:3])]),
        )
        for p in rng.sample(sample_papers(), 24)
    ]
    words = [w for p in pool for w in p.title.replace(":", " ").split() if len(w) > 3]
    phrases = [
        "knowledge distillation",
        "continual learning",
        "language models",
        "reinforcement learning",
        "large language models",
        "distillation",
        "knowledge transfer",
        "domain adaptation",
        "transfer learning",
        "Reasoning",
        "mixture of experts",
        "low-resource languages",
        "quantum chromodynamics",
    ]
    for p in pool:  # phrases from the pool's own titles
        parts = p.title.split()
        start = rng.randrange(len(parts))
        phrases.append(" ".join(parts[start : start + rng.randint(1, 4)]))
    subscribers = [
        reader(
            *[
                (rng.choice(phrases), rng.choice([0.5, 1.0, 1.0, 2.0, 7.5]))
                for _ in range(rng.randint(1, 5))
            ],
            exclude=rng.sample(words, rng.randint(0, 2)) if rng.random() < 0.4 else (),
            max_papers=rng.randint(1, 8),
            email=f"r{i}@example.com",
        )
        for i in range(40)
    ]
    return pool, subscribers


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dense", [True, False])
def test_vectorised_scores_equal_the_per_pair_reference(
    seed: int, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dense:
        monkeypatch.setattr(ranking, "DENSE_TOPIC_LIMIT", 0)
    monkeypatch.setattr(ranking, "SUBSCRIBER_BLOCK", 7)  # several blocks
    pool, subscribers = random_case(seed)
    ranker = Ranker(pool, today=TODAY)
    expected = reference_scores(ranker.papers, subscribers)
    assert (expected > 0).sum() > 40  # the case is not trivially empty
    np.testing.assert_allclose(ranker.scores(subscribers), expected, rtol=1e-9, atol=1e-12)

    for subscriber, picks, row in zip(subscribers, ranker.rank(subscribers), expected, strict=True):
        best = sorted(row[row > 0], reverse=True)[: subscriber.max_papers]
        np.testing.assert_allclose([p.score for p in picks], best, rtol=1e-9)
        for pick in picks:
            column = ranker.papers.index(pick.paper)
            assert pick.score == pytest.approx(row[column], rel=1e-9)
            parts = [m.score for m in pick.matches]
            assert sum(x**4 for x in parts) ** 0.25 <= pick.score * (1 + 1e-12)  # priors add


def test_topics_shared_by_many_subscribers_are_scored_once() -> None:
    subscribers = [reader("Knowledge Distillation", email=f"r{i}@example.com") for i in range(50)]
    subscribers.append(reader("knowledge distillation", email="x@example.com"))
    picks = sample_ranker().rank(subscribers)
    assert all(titles(p) == titles(picks[-1]) for p in picks)  # case does not matter
    assert picks[0][0].matches[0] is picks[1][0].matches[0]  # one Match, shared
    assert picks[0][0].matches[0].topic == "Knowledge Distillation"  # as they wrote it
    assert picks[-1][0].matches[0].topic == "knowledge distillation"
