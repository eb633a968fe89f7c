"""Fuzzing the intake: every fixture capture, cut, spliced, repeated and sprinkled with
hostile bytes, gives either a dump within bounds or a DumpError naming the file; never
another exception, never a title that is not one. A fixed seed and a time bound keep it
reproducible and short (the same seed gives the same mutations on every run)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

from newsletter.dumps import parse_dump
from newsletter.dumps.bounds import MAX_TITLE
from newsletter.errors import DumpError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SEED = 20261125
TIME_BOUND = 45.0  # seconds for the whole run
HOSTILE = [
    "\x1b[2J",
    "\x07",
    "\u202e",
    "\u2066",
    "\x00",
    "\ufeff",
    "[" * 50,
    "*_" * 40,
    "<div>" * 30,
    "](",
    '{"paper": ',
    "\n·\n",
    "  • 9 authors\n",
    "Feb 30, 2024\n",
    "9999-12-31",
    "1e400",
    "\\\n",
    "x" * 5000,
]


def _captures() -> list[tuple[str, str]]:
    out = []
    for path in sorted((FIXTURES / "dumps").rglob("*")):
        if path.is_file() and not path.name.endswith(".expect.json"):
            out.append((path.name, path.read_text("utf-8")))
    return out


def _mutate(text: str, rng: random.Random) -> str:
    kind = rng.randrange(5)
    at = rng.randrange(len(text) + 1)
    if kind == 0:  # cut off, as a truncated download
        return text[:at]
    if kind == 1:  # hostile bytes dropped in
        return text[:at] + rng.choice(HOSTILE) + text[at:]
    if kind == 2:  # a slice repeated
        end = min(len(text), at + rng.randrange(1, 4000))
        return text[:end] + text[at:end] * rng.randrange(2, 5) + text[end:]
    if kind == 3:  # lines shuffled locally
        lines = text.split("\n")
        start = rng.randrange(len(lines))
        window = lines[start : start + 12]
        rng.shuffle(window)
        return "\n".join(lines[:start] + window + lines[start + 12 :])
    return text.replace("\n", rng.choice(["\r\n", "\r", "\n\n", " "]))  # line ends changed


def test_mutated_captures_never_crash_the_intake() -> None:
    rng = random.Random(SEED)
    captures = _captures()
    assert captures
    deadline = time.monotonic() + TIME_BOUND
    runs = outcomes = 0
    while time.monotonic() < deadline and runs < 400:
        name, text = captures[runs % len(captures)]
        mutated = _mutate(text, rng)
        runs += 1
        try:
            dump = parse_dump(mutated, name=name, received_at=RECEIVED)
        except DumpError as exc:
            assert str(exc).startswith(name), exc
            continue
        outcomes += 1
        for paper in dump.papers:
            assert 0 < len(paper.title) <= MAX_TITLE
            assert not any(char in paper.title for char in "\x1b\x07\u202e\u2066\x00")
            assert paper.upvotes >= 0
    assert runs >= len(captures)  # every capture was fuzzed at least once
    assert outcomes > 0  # most mutations still read as dumps
