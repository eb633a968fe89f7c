"""The records every dump reader produces, and the text clean-up they share.

`Paper` is one paper as a capture shows it; `Dump` is one parsed capture (its page date,
its papers, what it warned about, and the evidence that it is a Daily Papers page at
all). `paper_key` is a paper's identity across captures and days: its normalised title.
`merge` folds two records of the same paper into one, and `deduplicate` does that for a
whole list (Trending pages list every paper twice). Everything here is pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

# The shapes of capture a dump can have (see `sniff.py`).
PAGE_TEXT = "page text"
LINKED_TEXT = "page text with links"
API_JSON = "daily papers API JSON"
MARKDOWN = "Markdown"
HTML = "HTML"
TEXT_BROWSER = "text-browser dump"
SHAPES = (PAGE_TEXT, LINKED_TEXT, API_JSON, MARKDOWN, HTML, TEXT_BROWSER)

# What shows that a text is a capture of the Daily Papers pages (see `Dump.evidence`).
PAPER_LINKS = "paper links"
PAGE_CHROME = "page chrome"
METADATA_LINES = "entries with an authors and date line"
API_ENTRIES = "API paper entries"


@dataclass(frozen=True)
class Paper:
    """One paper as a capture shows it.

    `key` is the paper's identity across dumps: the normalised title (see `paper_key`).
    `authors` holds names where the capture has them (API JSON, HTML); `authors_count`
    the number the page shows. Counts are None when the capture does not show them,
    except `upvotes`, which is 0 then.
    """

    key: str
    title: str
    abstract: str
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int = 0
    arxiv_id: str | None = None
    line: int = 0  # 1-based line of the title in its dump (for messages)
    authors: tuple[str, ...] = ()
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dump:
    """A parsed dump: its page date, its papers and the warnings about skipped entries.

    `shape` says which capture it was (one of `SHAPES`), for logs and reports.
    `evidence` lists what showed it to be a Daily Papers capture (`PAPER_LINKS`, ...):
    a dump with none is refused (see `newsletter.dumps.parse_dump`)."""

    name: str
    page_date: date
    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shape: str = PAGE_TEXT
    evidence: tuple[str, ...] = ()


def paper_key(title: str) -> str:
    """The identity of a paper: its title, Unicode-normalised, case-folded, punctuation
    and whitespace collapsed. Two captures of the same paper give the same key."""
    text = unicodedata.normalize("NFKC", title).casefold()
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------
# Text clean-up
# ---------------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# A Markdown hard break left in plain text: a backslash at the end of a wrapped line.
_HARD_BREAK_RE = re.compile(r"\\(?=\s)")


def fold(text: object) -> str:
    """A text field as one line: hard line breaks and runs of spaces folded into one
    space, soft hyphens and zero-width characters removed; "" for a non-string."""
    if not isinstance(text, str):
        return ""
    return " ".join(text.translate(_INVISIBLE).split())


def clean_text(text: str) -> str:
    """`fold`, and a Markdown hard-break backslash left at a line end taken out
    ("Engage\\ with" -> "Engage with")."""
    return fold(_HARD_BREAK_RE.sub(" ", text))


def shorten(text: str, limit: int = 70) -> str:
    """A text cut to `limit` characters with an ellipsis, for messages."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------
# One record per paper
# ---------------------------------------------------------------------------------------

_COUNTS = ("upvotes", "comments", "github_stars", "authors_count")


def merge(first: Paper, second: Paper) -> Paper:
    """Two records of the same paper seen in one capture, as one: the first one's place
    and title; each field the first lacks taken from the second; the larger count; the
    longer abstract (a Trending card may show a one-line summary where the other
    listing shows the abstract)."""
    changes: dict[str, Any] = {}
    for spec in fields(Paper):
        name = spec.name
        mine, theirs = getattr(first, name), getattr(second, name)
        if name in _COUNTS:
            if theirs is not None and (mine is None or theirs > mine):
                changes[name] = theirs
        elif name == "abstract":
            if len(theirs) > len(mine):
                changes[name] = theirs
        elif name not in ("key", "title", "line") and not mine and theirs:
            changes[name] = theirs
    return replace(first, **changes) if changes else first


def deduplicate(papers: Iterable[Paper]) -> list[Paper]:
    """One record per paper, in first-seen order: records with the same key or the same
    arXiv id are merged (see `merge`)."""
    out: list[Paper] = []
    by_key: dict[str, int] = {}
    by_id: dict[str, int] = {}
    for paper in papers:
        index = by_key.get(paper.key)
        if index is None and paper.arxiv_id:
            index = by_id.get(paper.arxiv_id)
        if index is None:
            index = len(out)
            out.append(paper)
        else:
            out[index] = merge(out[index], paper)
        by_key[paper.key] = index
        if out[index].arxiv_id:
            by_id[out[index].arxiv_id or ""] = index
    return out


def merged(dump: Dump) -> Dump:
    """The dump with one record per paper (see `deduplicate`) and one warning saying how
    many entries were merged, if any. Every reader's dump passes through here."""
    kept = deduplicate(dump.papers)
    count = len(dump.papers) - len(kept)
    if count <= 0:
        return dump
    plural = "entry" if count == 1 else "entries"
    warning = f"{dump.name}: {count} duplicate {plural} merged into the paper listed first"
    return replace(dump, papers=kept, warnings=[*dump.warnings, warning])


def has_metadata_lines(papers: Iterable[Paper]) -> bool:
    """Does any paper show the page's metadata line: authors or organisation, and a date?"""
    return any(p.published and (p.authors_count or p.organization) for p in papers)
