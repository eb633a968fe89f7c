"""Every capture under tests/fixtures/dumps/ gives the right papers, and nothing under
tests/fixtures/not_dumps/ gets in.

Each fixture `<case>.<ext>` has a `<case>.expect.json` beside it:

    {"shape": "HTML", "papers": 12, "page_date": "2025-03-11",
     "received": "2025-03-12T09:00:00+00:00", "titles": ["A title that must be there"],
     "arxiv_ids": 12, "held_out": true}

`papers` is the number of distinct papers; `titles` are exact titles that must be among
them; `arxiv_ids` (optional) how many papers carry one; `held_out` marks the variant the
parser was not written against (reported in the closing note, tested the same way).
Titles must come out clean: no Markdown, no link marks, no URLs, no stray backslashes.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from newsletter.dumps import parse_dump
from newsletter.errors import DumpError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEFAULT_RECEIVED = "2026-11-22T09:00:00+00:00"
DIRTY_TITLE = re.compile(r"\\|\]\(|https?://|^\s|\s$|\s{2}|^#|\[\d+\]|\*\*|^[-*•·]\s")


def _cases(folder: str) -> list[Path]:
    """The capture files of a fixture folder (not the `.expect.json` beside them, nor
    hidden tool caches: `ruff check tests` writes `.ruff_cache/` beside the
    `pyproject.toml` in not_dumps/)."""
    root = FIXTURES / folder
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not path.name.endswith(".expect.json")
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _dump_cases() -> list[Path]:
    return [p for p in _cases("dumps") if p.with_name(_stem(p) + ".expect.json").exists()]


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.mark.parametrize("path", _dump_cases(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_gives_the_right_papers(path: Path) -> None:
    expect = json.loads(path.with_name(_stem(path) + ".expect.json").read_text("utf-8"))
    received = datetime.fromisoformat(expect.get("received", DEFAULT_RECEIVED))
    dump = parse_dump(path.read_text("utf-8"), name=path.name, received_at=received)
    assert dump.shape == expect["shape"]
    titles = [paper.title for paper in dump.papers]
    assert len(dump.papers) == expect["papers"], titles
    assert len({paper.key for paper in dump.papers}) == len(dump.papers)
    for title in expect.get("titles", []):
        assert title in titles
    dirty = [title for title in titles if DIRTY_TITLE.search(title)]
    assert not dirty
    assert all(paper.abstract.strip() for paper in dump.papers), "every paper has a text"
    if "page_date" in expect:
        assert dump.page_date == date.fromisoformat(expect["page_date"])
    if "arxiv_ids" in expect:
        assert sum(1 for paper in dump.papers if paper.arxiv_id) == expect["arxiv_ids"]


@pytest.mark.parametrize("path", _cases("not_dumps"), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_not_a_dump_is_refused_with_the_file_named(path: Path) -> None:
    with pytest.raises(DumpError) as caught:
        parse_dump(
            path.read_text("utf-8"),
            name=path.name,
            received_at=datetime.fromisoformat(DEFAULT_RECEIVED),
        )
    assert str(caught.value).startswith(path.name)
    assert "not a dump" in str(caught.value)


def test_the_fixture_folders_are_not_empty() -> None:
    assert _dump_cases(), "no dump fixtures found"
    assert _cases("not_dumps"), "no non-dump fixtures found"
