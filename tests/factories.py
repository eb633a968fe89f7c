"""Test data written as real files in the project's formats."""

from __future__ import annotations

from pathlib import Path


def write_subscribers(path: Path, count: int) -> list[str]:
    """`count` subscribers who all want papers the samples have; returns their addresses."""
    emails = [f"reader{n:04d}@example.org" for n in range(count)]
    lines = ["subscribers:"]
    for n, address in enumerate(emails):
        topic = ["knowledge distillation", "continual learning", "machine translation"][n % 3]
        lines += [f"  - email: {address}", f"    topics: [{topic}]", "    max_papers: 3"]
    path.write_text("\n".join(lines) + "\n")
    return emails
