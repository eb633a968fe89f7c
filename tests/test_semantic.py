"""The semantic signal: the real MiniLM model on ONNX Runtime (the `semantic` extra,
installed by `make test`), stored paper vectors (schema 2 and the migration from 1), the ranker's blend and
its why-lines, and the lexical fallback when the extra is missing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from newsletter import ranking
from newsletter.dumps import Paper, paper_key
from newsletter.pipeline import ingest_file, next_picks
from newsletter.ranking import Ranker
from newsletter.semantic import MODEL_NAME, load_embedder, paper_vectors, topic_vectors
from newsletter.settings import load_settings
from newsletter.store import SCHEMA_VERSION, Store
from newsletter.subscribers import Subscriber, Topic

TODAY = date(2024, 12, 11)


def reader(*topics: str) -> Subscriber:
    return Subscriber(email="r@example.org", topics=[Topic(topic=t) for t in topics])


def paper(title: str, abstract: str) -> Paper:
    return Paper(key=paper_key(title), title=title, abstract=abstract)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_model_loads_offline_and_embeds_meaning() -> None:
    embedder = load_embedder()
    assert embedder is not None and embedder.name == MODEL_NAME
    vectors = embedder.encode(
        [
            "model compression",
            "We prune 50% of the weights of a large network and quantise the rest to 4 bits.",
            "A benchmark of Norwegian news articles for reading comprehension.",
        ]
    )
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_closeness_alone_picks_only_above_the_threshold_and_says_so() -> None:
    near = paper("Pruning and Quantisation", "We make networks smaller. " * 5)
    far = paper("Norwegian Reading", "A benchmark of news articles. " * 5)
    worded = paper("Model Compression Survey", "Model compression methods reviewed. " * 5)
    topic = unit(1, 0, 0)
    vectors = {
        near.key: unit(1, 1, 0),  # cosine 0.71: close
        far.key: unit(0.2, 1, 0),  # cosine 0.20: below the threshold
        worded.key: unit(0, 0, 1),  # cosine 0: its words match
    }
    ranker = Ranker([near, far, worded], today=TODAY, paper_vectors=vectors)
    (picks,) = ranker.rank(
        [reader("model compression")], topic_vectors={"model compression": topic}
    )
    by_title = {pick.paper.title: pick for pick in picks}
    assert set(by_title) == {"Pruning and Quantisation", "Model Compression Survey"}
    assert by_title["Pruning and Quantisation"].why == "Close to model compression"
    assert by_title["Model Compression Survey"].why.startswith(
        'Matches model compression ("model compression"'
    )
    # Without topic vectors the same ranker is purely lexical.
    (lexical,) = ranker.rank([reader("model compression")])
    assert [pick.paper.title for pick in lexical] == ["Model Compression Survey"]


def test_words_are_named_before_closeness_when_both_drive_a_pick() -> None:
    both = paper("Model Compression for Fast Inference", "We prune models. " * 5)
    vectors = {both.key: unit(1, 1, 0)}
    ranker = Ranker([both], today=TODAY, paper_vectors=vectors)
    topics = {"model compression": unit(0, 0, 1), "efficient inference": unit(1, 1, 0.1)}
    (picks,) = ranker.rank(
        [reader("model compression", "efficient inference")], topic_vectors=topics
    )
    assert picks[0].why.startswith('Matches model compression ("model compression" in title)')
    assert picks[0].why.endswith("; close to efficient inference")
    assert sorted(m.close for m in picks[0].matches) == [False, True]


def test_semantic_scores_blend_words_and_closeness() -> None:
    worded = paper("Model Compression", "Model compression. " * 5)
    ranker = Ranker([worded], today=TODAY, paper_vectors={worded.key: unit(1, 0)})
    subscriber = reader("model compression")
    lexical = ranker.scores([subscriber])[0, 0]
    close = ranker.scores([subscriber], topic_vectors={"model compression": unit(1, 0)})[0, 0]
    far = ranker.scores([subscriber], topic_vectors={"model compression": unit(0, 1)})[0, 0]
    # No upvotes, no date: the priors are 1. Cosine 1 gives closeness 1, cosine 0 gives 0.
    weight = ranking.SEMANTIC_WEIGHT
    assert 0 < lexical < 1
    assert close == pytest.approx((1 - weight) * lexical + weight)
    assert far == pytest.approx((1 - weight) * lexical)


def test_schema_1_databases_upgrade_and_keep_their_papers(project: Path) -> None:
    path = project / "state.db"
    with Store(path) as store:
        ingest_file(store, sorted((project / "dumps").iterdir())[0])
        key = store.papers_since(0)[0].key
        count = store.paper_count()
    # Make it a version-1 database: no embeddings table, version 1 recorded.
    db = sqlite3.connect(path)
    db.execute("DROP TABLE paper_embeddings")
    db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    db.commit()
    db.close()
    with Store(path) as store:
        version = store._db.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert int(version.fetchone()[0]) == SCHEMA_VERSION
        assert store.paper_count() == count
        store.save_embeddings({key: np.arange(4, dtype=np.float32)}, model="m")
    with Store(path) as store:
        found = store.embeddings([key, "no such paper"], model="m")
        assert set(found) == {key}
        np.testing.assert_array_equal(found[key], np.arange(4, dtype=np.float32))
        assert store.embeddings([key], model="other") == {}


class CountingEmbedder:
    """The real model, counting how many texts it was asked to embed."""

    def __init__(self) -> None:
        embedder = load_embedder()
        assert embedder is not None
        self._inner = embedder
        self.name = embedder.name
        self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self._inner.encode(texts)


def test_ingest_embeds_new_papers_once_and_ranking_embeds_only_the_missing(project: Path) -> None:
    dumps = sorted((project / "dumps").iterdir())
    embedder = CountingEmbedder()
    with Store(project / "state.db") as store:
        ingest_file(store, dumps[0], embedder)  # semantic on: embedded at ingest
        first = embedder.texts
        assert first == store.paper_count()
        ingest_file(store, dumps[1])  # ingested while semantic was off
        papers = store.papers_since(0)
        vectors = paper_vectors(store, embedder, papers)  # lazily fills the gap
        assert set(vectors) == {p.key for p in papers}
        assert embedder.texts == len(papers)
        paper_vectors(store, embedder, papers)
        assert embedder.texts == len(papers)  # nothing embedded twice
    subscribers = [reader("Model Compression"), reader("model compression", "fairness")]
    topics = topic_vectors(embedder, subscribers)
    assert set(topics) == {"model compression", "fairness"}
    assert embedder.texts == len(papers) + 2  # each distinct topic once


def test_semantic_setting_ranks_with_the_model(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_RANKING_MODEL", "semantic")
    settings = load_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        subscriber = reader("model compression", "efficient LLM inference")
        semantic = next_picks(settings, store, subscriber)
        lexical = next_picks(load_settings(ranking_model="lexical"), store, subscriber)
    assert len(semantic) > len(lexical)
    assert any("lose to " in pick.why for pick in semantic)
    assert {p.paper.key for p in lexical} <= {p.paper.key for p in semantic}


FALLBACK = """
import logging, sys
sys.modules["onnxruntime"] = None  # as if the semantic extra were not installed
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from newsletter.pipeline import next_picks
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.subscribers import Subscriber, Topic
subscriber = Subscriber(email="r@example.org", topics=[Topic(topic="knowledge distillation")])
with Store(sys.argv[1]) as store:
    for model in ("semantic", "semantic", "lexical"):
        picks = next_picks(load_settings(ranking_model=model), store, subscriber)
        print(model, [p.paper.key for p in picks], [p.why for p in picks])
"""


def test_without_the_extra_ranking_is_lexical_and_says_so_once(project: Path) -> None:
    with Store(project / "state.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(project / "state.db")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    semantic_1, semantic_2, lexical = (line.split(" ", 1)[1] for line in lines)
    assert semantic_1 == semantic_2 == lexical  # the same lexical picks and why-lines
    assert "knowledge distillation" in lexical
    assert result.stderr.count("semantic ranking is unavailable") == 1
    assert "ranking lexically" in result.stderr
