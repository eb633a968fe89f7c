"""Parse the JSON of the Hugging Face daily papers API into `Paper` records (pure).

This module owns one shape of dump: what `/api/daily_papers` returns, saved to a file.
That is a list of entries, each with a `paper` object::

    [{"paper": {"id": "2410.12345", "title": "...", "summary": "...", "upvotes": 21,
                "publishedAt": "2024-10-15T17:59:59.000Z",
                "submittedOnDailyAt": "2024-10-16T04:01:02.000Z",
                "authors": [{"name": "..."}, ...],
                "organization": {"name": "facebook", "fullname": "AI at Meta"}},
      "publishedAt": "...", "title": "...", "numComments": 3}, ...]

Newer responses add fields: `ai_summary`, `ai_keywords`, `githubRepo`, `githubStars`,
`projectPage`, `organization`; they are kept when present, and fields this module does not
know are ignored, never errors. Entries may also be bare paper objects,
and the list may sit under one key of an object (`{"papers": [...]}`). Titles and
summaries have hard line breaks, which are folded into spaces.

The page date is the newest day an entry was put on Daily Papers (`submittedOnDailyAt`);
without one (the 2024 form), the newest `publishedAt` of the entries themselves (when
they were listed; the paper's own `publishedAt` is arXiv's); without either, the day the
file was received. `papers_from_entries` turns one list of entries into papers; the HTML reader uses it for
the same list embedded in a saved page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from newsletter.dumps.model import (
    API_ENTRIES,
    API_JSON,
    Dump,
    Paper,
    fold,
    paper_key,
    shorten,
)
from newsletter.dumps.vocabulary import is_arxiv_id
from newsletter.errors import DumpError

EXPECTED = (
    "expected the JSON of the Hugging Face daily papers API: a list of entries, each with a "
    '"paper" object that has at least a "title"'
)


def _day(value: object) -> date | None:
    """The date of an ISO 8601 timestamp (`2024-10-15T17:59:59.000Z`) or date, else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):  # not NaN, not 1e400
        return max(int(min(value, 1e12)), 0)
    return 0


def _organization(value: object) -> str | None:
    if isinstance(value, str):
        return fold(value) or None
    if isinstance(value, dict):
        for field in ("fullname", "name"):
            text = fold(value.get(field))
            if text:
                return text
    return None


def _entries(data: object, name: str) -> list[Any]:
    """The list of entries: the top-level list, or the one list of objects under a key."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [
            value
            for value in data.values()
            if isinstance(value, list) and any(isinstance(item, dict) for item in value)
        ]
        if len(lists) == 1:
            return lists[0]
        if "paper" in data or "title" in data:
            return [data]  # one entry saved on its own
    kind = type(data).__name__ if not isinstance(data, dict) else "an object"
    raise DumpError(
        f"not a dump: the JSON holds {kind}, not a list of papers; {EXPECTED}", path=name
    )


class _Lines:
    """Finds the line of each entry in the text, for messages: where its id or title is.
    Entries come in text order, so the search and the line count only move forward
    (linear in the size of the text, however many entries)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.line = 1

    def find(self, *needles: str) -> int:
        for needle in needles:
            if not needle:
                continue
            found = self.text.find(json.dumps(needle), self.position)
            if found < 0:
                found = self.text.find(json.dumps(needle, ensure_ascii=False), self.position)
            if found >= 0:
                self.line += self.text.count("\n", self.position, found)
                self.position = found
                return self.line
        return 0


def _names(value: object) -> tuple[str, ...]:
    """Author names from the API's `authors` list (objects with a `name`, or strings)."""
    if not isinstance(value, list):
        return ()
    names = (fold(item.get("name")) if isinstance(item, dict) else fold(item) for item in value)
    return tuple(name for name in names if name)


def _keywords(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(word for word in map(fold, value) if word))


def _optional_count(value: object) -> int | None:
    return None if value is None or isinstance(value, bool) else _count(value)


def _url(value: object) -> str | None:
    text = fold(value)
    return text if text.startswith(("https://", "http://")) else None


def _has_evidence(entry: dict[str, Any], paper: dict[str, Any]) -> bool:
    """Does this entry look like the API's: a `paper` object with a title and an arXiv
    id or a summary, or a bare paper with an arXiv id, a title and a summary?"""
    raw_id = paper.get("id")
    has_id = isinstance(raw_id, str) and is_arxiv_id(raw_id)
    has_title = bool(fold(paper.get("title")))
    has_summary = bool(fold(paper.get("summary")))
    if paper is not entry:
        return has_title and (has_id or has_summary)
    return has_id and has_title and has_summary


@dataclass
class EntryPapers:
    """What `papers_from_entries` made of a list of API entries: the papers (in list
    order, not yet deduplicated), the warnings about skipped entries, the days entries
    were put on Daily Papers and were published, and how many entries look like the API's."""

    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    listed: list[date] = field(default_factory=list)
    published: list[date] = field(default_factory=list)
    evidenced: int = 0


def _listed_day(entry: dict[str, Any], paper: dict[str, Any]) -> date | None:
    for when in (paper.get("submittedOnDailyAt"), entry.get("submittedOnDailyAt")):
        day = _day(when)
        if day is not None:
            return day
    return None


def _paper_of(entry: dict[str, Any], paper: dict[str, Any], title: str, line: int) -> Paper:
    """The record of one API entry (`paper` is its paper object, or the entry itself)."""
    authors = paper.get("authors")
    abstract = fold(paper.get("summary")) or fold(entry.get("summary"))
    organization = _organization(paper.get("organization")) or _organization(
        entry.get("organization")
    )
    raw_id = paper.get("id")
    return Paper(
        key=paper_key(title),
        title=title,
        abstract=abstract or fold(paper.get("ai_summary")),
        authors_count=len(authors) if isinstance(authors, list) and authors else None,
        organization=organization,
        published=_day(paper.get("publishedAt")) or _day(entry.get("publishedAt")),
        upvotes=_count(paper.get("upvotes", entry.get("upvotes"))),
        arxiv_id=raw_id.strip() if isinstance(raw_id, str) and is_arxiv_id(raw_id) else None,
        line=line,
        authors=_names(authors),
        comments=_optional_count(entry.get("numComments", paper.get("numComments"))),
        github_repo=_url(paper.get("githubRepo")),
        github_stars=_optional_count(paper.get("githubStars")),
        project_page=_url(paper.get("projectPage")),
        ai_summary=fold(paper.get("ai_summary")) or None,
        ai_keywords=_keywords(paper.get("ai_keywords")),
    )


def papers_from_entries(
    entries: list[Any], *, name: str, lines: Callable[[str, str], int]
) -> EntryPapers:
    """The papers of a list of API entries (objects with a `paper` object, or bare paper
    objects). `lines(arxiv_id, title)` gives the 1-based line of an entry in the file
    (0 when unknown); it is called once per entry, in list order. Entries that are not
    objects or have no title are skipped with a warning `name:line: ...`."""
    out = EntryPapers()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            out.warnings.append(f"{name}: entry {number} is not an object: skipped")
            continue
        paper = entry["paper"] if isinstance(entry.get("paper"), dict) else entry
        raw_id = paper.get("id")
        arxiv_id = raw_id.strip() if isinstance(raw_id, str) and is_arxiv_id(raw_id) else ""
        title = fold(paper.get("title")) or fold(entry.get("title"))
        raw_title = paper.get("title")
        line = lines(arxiv_id, raw_title if isinstance(raw_title, str) else "")
        where = f"{name}:{line}" if line else name
        if not paper_key(title):
            out.warnings.append(f"{where}: skipped entry {number}: it has no title")
            continue
        record = _paper_of(entry, paper, title, line)
        if not (fold(paper.get("summary")) or fold(entry.get("summary"))):
            out.warnings.append(f"{where}: entry {number} {shorten(title)!r} has no summary: kept")
        # The entry's own publishedAt is when it was put on Daily Papers; the paper's
        # is when arXiv published it.
        put_on_list = _day(entry.get("publishedAt")) if paper is not entry else None
        listed_on = put_on_list or record.published
        if listed_on is not None:
            out.published.append(listed_on)
        listed = _listed_day(entry, paper)
        if listed is not None:
            out.listed.append(listed)
        if _has_evidence(entry, paper):
            out.evidenced += 1
        out.papers.append(record)
    return out


def parse_api_json(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse a saved daily papers API response. Raises DumpError when it is not one (bad
    JSON, not a list of papers, or no entry with a title)."""
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise DumpError(
            f"not a dump: the JSON is malformed ({exc.msg}, column {exc.colno}); {EXPECTED}",
            path=name,
            line=exc.lineno,
        ) from exc
    except RecursionError as exc:
        raise DumpError(
            f"not a dump: the JSON is nested too deeply to be an API response; {EXPECTED}",
            path=name,
        ) from exc
    entries = _entries(data, name)
    found = papers_from_entries(entries, name=name, lines=_Lines(text).find)
    if not found.papers:
        why = "the list is empty" if not entries else "no entry has a title"
        raise DumpError(f"not a dump: {why}; {EXPECTED}", path=name, line=1)
    page_date = max(found.listed or found.published or [received_at.date()])
    return Dump(
        name=name,
        page_date=page_date,
        papers=found.papers,
        warnings=found.warnings,
        shape=API_JSON,
        evidence=(API_ENTRIES,) if found.evidenced else (),
    )
