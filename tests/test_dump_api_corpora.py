"""The three real daily papers API responses in ../shared/corpora/api/ (the 2024,
early-2025 and 2026 forms) give every paper, with names, ids, counts, summaries and
keywords. The files are read from the shared folder at run time, never copied here."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from newsletter.dumps import API_JSON, parse_dump
from newsletter.dumps.model import paper_key

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "api"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FILES = ["2024-06-14.json", "2025-03-11.json", "2026-04-10.json"]


def _load(name: str) -> tuple[str, list[dict[str, object]]]:
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real API responses live in ../shared/corpora/api/")
    text = path.read_text("utf-8")
    return text, json.loads(text)


@pytest.mark.parametrize("name", FILES)
def test_every_entry_becomes_one_clean_paper(name: str) -> None:
    text, entries = _load(name)
    dump = parse_dump(text, name=name, received_at=RECEIVED)
    assert dump.shape == API_JSON
    # The day of the list: when entries were put on it (the 2025 form lists them the
    # day before in UTC and says no more).
    expected = date.fromisoformat(name.removesuffix(".json"))
    assert dump.page_date in (expected, expected.replace(day=expected.day - 1))
    assert len(dump.papers) == len(entries)
    for paper, entry in zip(dump.papers, entries, strict=True):
        raw = entry["paper"]
        assert isinstance(raw, dict)
        assert paper.arxiv_id == raw["id"]
        assert paper.title == " ".join(str(raw["title"]).split())  # hard breaks folded
        assert "\n" not in paper.abstract and paper.abstract
        names = [a["name"] for a in raw["authors"]]  # type: ignore[union-attr]
        assert list(paper.authors) == names
        assert paper.upvotes == raw["upvotes"]
        assert paper.comments == entry["numComments"]
        assert paper.key == paper_key(paper.title)
        # The line points at the entry's id in the file, for messages.
        assert f'"{raw["id"]}"' in text.split("\n")[paper.line - 1]


def test_the_newer_forms_keep_summaries_and_keywords() -> None:
    text, entries = _load("2026-04-10.json")
    dump = parse_dump(text, name="2026-04-10.json", received_at=RECEIVED)
    assert dump.page_date == date(2026, 4, 10)
    old_text, _ = _load("2024-06-14.json")
    assert parse_dump(old_text, name="old.json", received_at=RECEIVED).page_date == date(
        2024, 6, 14
    )
    with_summary = [p for p in dump.papers if p.ai_summary]
    assert len(with_summary) == sum(1 for e in entries if e["paper"].get("ai_summary"))  # type: ignore[union-attr]
    assert all(p.ai_keywords for p in with_summary)
    text, entries = _load("2025-03-11.json")
    dump = parse_dump(text, name="2025-03-11.json", received_at=RECEIVED)
    assert any(p.ai_keywords for p in dump.papers)
    assert any(
        p.github_repo and p.github_repo.startswith("https://github.com/") for p in dump.papers
    )
