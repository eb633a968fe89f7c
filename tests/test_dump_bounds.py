"""What no real capture holds is refused or repaired, with a warning naming the line:
absurd titles, control and bidi-override characters, out-of-range dates and counts,
JSON nested or numbered to crash a parser. `newsletter ingest` never shows a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.dumps import parse_dump
from newsletter.errors import DumpError

RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ABSTRACT = (
    "We study how a model learns from a stream of tasks without forgetting the earlier "
    "ones, and show that a small replay buffer is enough on three benchmarks."
)


def entry(arxiv_id: str, title: str, **paper: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": arxiv_id,
        "title": title,
        "summary": ABSTRACT,
        "upvotes": 3,
        "authors": [{"name": "Ada Lovelace"}],
        "publishedAt": "2026-11-20T10:00:00.000Z",
        "submittedOnDailyAt": "2026-11-21T04:00:00.000Z",
    }
    body.update(paper)
    return {"paper": body, "numComments": 1}


def parse(entries: list[dict[str, object]]) -> tuple[list[str], list[str]]:
    dump = parse_dump(json.dumps(entries, indent=2), name="day.json", received_at=RECEIVED)
    return [paper.title for paper in dump.papers], dump.warnings


def test_implausible_titles_are_skipped_with_their_line() -> None:
    titles, warnings = parse(
        [
            entry("2611.00001", "x" * 1_000_118),
            entry("2611.00002", "1"),
            entry("2611.00003", "x"),
            entry("2611.00004", "A Real Title About Continual Learning"),
        ]
    )
    assert titles == ["A Real Title About Continual Learning"]
    assert len(warnings) == 3
    assert all(warning.startswith("day.json:") for warning in warnings)
    assert "1,000,118 characters" in warnings[0]


def test_control_and_bidi_override_characters_are_removed() -> None:
    titles, _ = parse([entry("2611.00005", "Safe\x1b[31m Title\x07 with \u202eevil\u202c text")])
    assert titles == ["Safe[31m Title with evil text"]


def test_counts_too_large_for_anything_are_capped() -> None:
    text = json.dumps([entry("2611.00006", "Counting Things Well")]).replace(
        '"upvotes": 3', '"upvotes": 1e400'
    )
    dump = parse_dump(text, name="big.json", received_at=RECEIVED)
    assert dump.papers[0].upvotes == 0  # infinity is no count
    text = text.replace("1e400", "1e20")
    assert parse_dump(text, name="big.json", received_at=RECEIVED).papers[0].upvotes == 10**7


def test_out_of_range_page_date_is_refused() -> None:
    bad = entry("2611.00007", "A Paper From The Far Future", submittedOnDailyAt="9999-12-31")
    with pytest.raises(DumpError, match=r"^day\.json: the page date 9999-12-31 is out of range"):
        parse([bad])


def test_deeply_nested_json_is_a_clear_error() -> None:
    text = "[" * 5000 + "]" * 5000
    with pytest.raises(DumpError, match=r"nested too deeply"):
        parse_dump(text, name="deep.json", received_at=RECEIVED)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        ("huge.json", json.dumps([entry("2611.00008", "Big Counts")]).replace("3,", "1e400,")),
        ("wide.json", json.dumps([entry("2611.00009", "Wide Counts")]).replace("3,", "1e20,")),
    ],
)
def test_ingest_never_shows_a_traceback(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "ingest", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1)
    if result.returncode == 1:
        assert result.stderr.startswith(f"error: {path}")
    else:
        assert "1 papers, 1 new" in result.stdout
