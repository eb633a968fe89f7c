"""The plausible bounds of what a capture holds: what no real page shows is refused.

Every reader's `Dump` passes through `within_bounds` before it is used. It removes
control and bidirectional-override characters from every text (they would print raw to
a terminal or reorder a subject line), skips papers whose title cannot be a title (one
character, no letter, longer than any real title: an abstract taken as a title) with a
warning naming the line, cuts absurdly long texts, caps counts, drops paper dates outside
the years arXiv has existed, and refuses a page date that is not a plausible day for
the file. Pure: the clock is the `received_at` the caller passes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta

from newsletter.dumps.model import Dump, Paper, shorten
from newsletter.errors import DumpError

MAX_TITLE = 400  # characters: the longest real titles are about 250
MIN_TITLE_LETTERS = 2
MAX_ABSTRACT = 20_000  # characters: real abstracts are under 3,000
MAX_SHORT_TEXT = 500  # an organisation, a name, a keyword, a URL
MAX_COUNT = 10_000_000  # upvotes, comments, stars
FIRST_DAY = date(1991, 8, 14)  # arXiv's first day: nothing on the page is older
SLACK = timedelta(days=2)  # a page may be dated a little after the file's clock says
# A paper's own date may be a typo'd year ahead; beyond this it is no date at all.
PAPER_SLACK = timedelta(days=3 * 366)

# C0/C1 controls except tab and newline, DEL, and the bidirectional embeddings,
# overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LETTER_RE = re.compile(r"[^\W\d_]")


def safe_text(text: str, limit: int) -> str:
    """`text` without control or bidi-override characters, cut to `limit` characters."""
    cleaned = _UNSAFE_RE.sub("", text)
    return cleaned if len(cleaned) <= limit else shorten(cleaned, limit)


def _safe_optional(text: str | None) -> str | None:
    return None if text is None else safe_text(text, MAX_SHORT_TEXT) or None


def _count(value: int | None) -> int | None:
    return None if value is None else min(max(value, 0), MAX_COUNT)


def _title_problem(title: str) -> str | None:
    if len(title) > MAX_TITLE:
        return f"a title of {len(title):,} characters is text, not a title"
    if len(_LETTER_RE.findall(title)) < MIN_TITLE_LETTERS:
        return f"{title!r} is not a title (fewer than {MIN_TITLE_LETTERS} letters)"
    return None


def _bounded(paper: Paper, latest: date) -> tuple[Paper, str | None]:
    """The paper with its texts made safe and its numbers in range; and a warning when
    its date had to go."""
    published = paper.published
    warning = None
    if published is not None and not FIRST_DAY <= published <= latest:
        warning = f"date {published.isoformat()} is out of range: kept without a date"
        published = None
    clean = replace(
        paper,
        title=safe_text(paper.title, MAX_TITLE),
        abstract=safe_text(paper.abstract, MAX_ABSTRACT),
        organization=_safe_optional(paper.organization),
        authors=tuple(safe_text(name, MAX_SHORT_TEXT) for name in paper.authors),
        ai_summary=_safe_optional(paper.ai_summary),
        ai_keywords=tuple(safe_text(word, MAX_SHORT_TEXT) for word in paper.ai_keywords),
        github_repo=_safe_optional(paper.github_repo),
        project_page=_safe_optional(paper.project_page),
        published=published,
        upvotes=_count(paper.upvotes) or 0,
        comments=_count(paper.comments),
        github_stars=_count(paper.github_stars),
        authors_count=_count(paper.authors_count),
    )
    return clean, warning


def within_bounds(dump: Dump, *, received_at: datetime) -> Dump:
    """The dump with implausible papers skipped and every field made safe (see the module
    docstring). Raises DumpError when the page date is out of range."""
    latest = received_at.date() + SLACK
    if not FIRST_DAY <= dump.page_date <= latest:
        raise DumpError(
            f"the page date {dump.page_date.isoformat()} is out of range (a Daily Papers page "
            f"is dated between {FIRST_DAY.isoformat()} and the day the file was received, "
            f"{received_at.date().isoformat()}); capture the page again or fix its date",
            path=dump.name,
        )
    papers: list[Paper] = []
    warnings = list(dump.warnings)
    for paper in dump.papers:
        where = f"{dump.name}:{paper.line}" if paper.line else dump.name
        problem = _title_problem(_UNSAFE_RE.sub("", paper.title))
        if problem is not None:
            warnings.append(f"{where}: skipped entry: {problem}")
            continue
        clean, warning = _bounded(paper, max(dump.page_date, latest) + PAPER_SLACK)
        if warning is not None:
            warnings.append(f"{where}: entry {shorten(clean.title)!r}: {warning}")
        papers.append(clean)
    return replace(dump, papers=papers, warnings=warnings)
