"""The words of the Daily Papers pages, shared by every reader of a text capture.

This module owns what a line of the page can be, whatever the capture: the page's
chrome (header, tabs, footer), a metadata line (`4 authors`, `·`, `May 30, 2017 1`), an
upvote or star count (`6`, `1,234`, `1.2k`), and the links that name a paper
(`huggingface.co/papers/2410.12345`, `arxiv.org/abs/2410.12345`) or a day's page
(`/papers/date/2024-12-11`). It also gives dates written without a year the right one. Pure: nothing here reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

# Whole lines (compared after `squash`) that are page chrome, never a paper: the header,
# the period tabs, the site's navigation and footer.
CHROME = frozenset(
    {
        "new",
        "get trending papers in your email inbox",
        "subscribe",
        "daily papers",
        "trending papers",
        "byak and the research community",
        "by ak and the research community",
        "daily",
        "weekly",
        "monthly",
        "daily weekly monthly",
        "trending",
        "system theme",
        "company",
        "tos",
        "privacy",
        "about",
        "jobs",
        "website",
        "models",
        "datasets",
        "spaces",
        "pricing",
        "docs",
        "community",
        "enterprise",
        "hugging face",
        "log in",
        "sign up",
        "papers",
        "previous",
        "next",
        "search",
        "upvote",
        "submit",
        "submit paper",
        "submitted by",
        "view all",
        "more",
        "collections",
        "posts",
        "solutions",
        "skip to content",
    }
)

# Chrome lines that only the Daily Papers pages show: seeing one is evidence that a
# text is a capture of them (generic words such as "Docs" or "Community" are not).
SIGNATURE_CHROME = frozenset(
    {
        "get trending papers in your email inbox",
        "byak and the research community",
        "by ak and the research community",
        "daily papers",
        "trending papers",
        "daily papers hugging face",
        "trending papers hugging face",
    }
)

MIDDOT = frozenset({"·", "⋅", "∙"})  # the separator of a metadata block
AUTHORS_RE = re.compile(r"^(?:[•‣◦*·⋅∙-]\s*)?(\d+)\s+authors?$", re.IGNORECASE)
BULLET_RE = re.compile(r"^[•‣◦*·⋅∙]\s*")
_COUNT = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?[kK]|\d+"
# "Dec 11", "Sept. 5, 2024", "Feb 10 6", "Dec 11, 2024 1", "Feb 10 1,234", "Feb 10 1.2k"
_DATE_RE = re.compile(
    r"^(?P<month>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2})(?!\d)"
    r"(?:\s*,\s*(?P<year>\d{4}))?"
    rf"(?:\s+(?P<upvotes>{_COUNT}))?$"
)
# A date line's prefix on some captures: "Published on Dec 11", "Submitted on ...".
_DATE_PREFIX_RE = re.compile(r"^(?:published|submitted)(?:\s+on)?\s+", re.IGNORECASE)
COUNT_RE = re.compile(rf"^(?:{_COUNT})$")
# A count as an upvote button renders in text: "[-] 12", "- 12", "▲ 12", "Upvote 12",
# and "-" or "[-]" alone for none.
UPVOTE_LINE_RE = re.compile(
    rf"^(?:\[\s*[-–—+▲^]?\s*\]|[-–—▲^]|upvote)\s*(?P<count>{_COUNT})?$", re.IGNORECASE
)
# GitHub stars as the Trending page shows them: "★ 1.2k", "1.2k stars", "Stars 512".
STARS_RE = re.compile(
    rf"^(?:[★⭐☆]\s*(?P<a>{_COUNT})|(?P<b>{_COUNT})\s*(?:[★⭐☆]|stars?)|stars?\s*:?\s*(?P<c>{_COUNT}))$",
    re.IGNORECASE,
)
SUBMITTED_BY_RE = re.compile(r"^submitted\s+by\b", re.IGNORECASE)

MAX_ORG_LENGTH = 200  # a longer line before "·" is text, not an organisation
MAX_TITLE_LENGTH = 300  # a plausible title is at most this many characters
MIN_ABSTRACT_LENGTH = 50  # an abstract is at least this long and longer than its title


def squash(line: str) -> str:
    """A line reduced for chrome comparison: case-folded words only."""
    return " ".join(re.sub(r"[^\w]+", " ", line.casefold()).split())


def is_chrome(line: str) -> bool:
    return squash(line) in CHROME


def is_signature_chrome(line: str) -> bool:
    return squash(line) in SIGNATURE_CHROME


def month_number(name: str) -> int | None:
    """1-12 for a full or abbreviated English month name (`Sep`, `Sept`, `September`)."""
    lowered = name.casefold()
    if len(lowered) < 3:
        return None
    for number, full in enumerate(_MONTHS, start=1):
        if full.startswith(lowered):
            return number
    return None


def parse_count(text: str) -> int:
    """A count as shown: `6`, `1,234`, `1.2k`."""
    if text[-1] in "kK":
        return round(float(text[:-1]) * 1000)
    return int(text.replace(",", ""))


def upvotes_of(text: str) -> int | None:
    """The count of an upvote line (`12`, `[-] 12`, `- 12`; `-` alone is 0), else None."""
    text = text.strip()
    if COUNT_RE.match(text):
        return parse_count(text)
    match = UPVOTE_LINE_RE.match(text)
    if match is None:
        return None
    return parse_count(match["count"]) if match["count"] else 0


def stars_of(text: str) -> int | None:
    """The count of a GitHub stars line (`★ 1.2k`, `512 stars`), else None."""
    match = STARS_RE.match(text.strip())
    if match is None:
        return None
    return parse_count(match["a"] or match["b"] or match["c"])


@dataclass(frozen=True)
class DateLine:
    """A date line as written: month and day, maybe a year, maybe an upvote count."""

    month: int
    day: int
    year: int | None
    upvotes: int | None


def read_date_line(text: str) -> DateLine | None:
    """The parts of a date line, or None when the line does not have the shape of one.

    A year needs its comma (`May 30, 2017`); a bare number after the day is the upvote
    count (`Feb 10 6`). "Published on" before it is allowed. The day is not checked
    against the month here."""
    match = _DATE_RE.match(_DATE_PREFIX_RE.sub("", text.strip()))
    if match is None:
        return None
    month = month_number(match["month"])
    if month is None:
        return None
    year = int(match["year"]) if match["year"] else None
    upvotes = parse_count(match["upvotes"]) if match["upvotes"] else None
    return DateLine(month, int(match["day"]), year, upvotes)


def month_day_exists(month: int, day: int) -> bool:
    try:
        date(2000, month, day)  # a leap year: Feb 29 exists
    except ValueError:
        return False
    return True


def latest_on_or_before(month: int, day: int, limit: date) -> date | None:
    """The latest date with this month and day that is not after `limit` (Feb 29 looks
    back to the last leap year); None when no year has such a date."""
    if not month_day_exists(month, day):
        return None
    for year in range(limit.year, limit.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= limit:
            return candidate
    return None


def resolve_page_date(header: DateLine, received_at: datetime) -> date | None:
    """The page's header date. Without a year: the latest such day not after the day the
    dump was received plus one (slack for time zones)."""
    if header.year is not None:
        try:
            return date(header.year, header.month, header.day)
        except ValueError:
            return None
    limit = received_at.date() + timedelta(days=1)
    return latest_on_or_before(header.month, header.day, limit)


def resolve_paper_date(line: DateLine, page_date: date) -> date | None:
    """A paper's date: as written when it has a year, else the latest such day on or
    before the page date (a paper is not published after the page that lists it)."""
    if line.year is not None:
        try:
            return date(line.year, line.month, line.day)
        except ValueError:
            return None
    return latest_on_or_before(line.month, line.day, page_date)


def split_meta_line(line: str) -> list[str]:
    """["who", "·", "date"] (or the parts present) for a metadata block written on one
    line ("• 4 authors · May 30, 2017"), else [line]."""
    if line in MIDDOT or not any(dot in line for dot in MIDDOT):
        return [line]
    cut = max(line.rfind(dot) for dot in MIDDOT)
    before, after = line[:cut].strip(), line[cut + 1 :].strip()
    after_is_date = bool(after) and read_date_line(after) is not None
    if after and not after_is_date:
        return [line]
    if before and not AUTHORS_RE.match(before) and len(before) > MAX_ORG_LENGTH:
        return [line]
    return [part for part in (before, line[cut], after) if part]


# ---------------------------------------------------------------------------------------
# Links that name a paper
# ---------------------------------------------------------------------------------------

_ARXIV_ID = r"(\d{4}\.\d{4,5})(?:v\d+)?"
# A paper's page on Hugging Face (absolute or site-relative).
_HF_PAPER_RE = re.compile(
    rf"(?:\b(?:huggingface\.co|hf\.co)|^|\s)/papers/{_ARXIV_ID}(?![\d.])", re.IGNORECASE
)
_ARXIV_URL_RE = re.compile(rf"\barxiv\.org/(?:abs|pdf|html)/{_ARXIV_ID}(?![\d.])", re.IGNORECASE)
URL_LINE_RE = re.compile(r"^[<(\[]?(https?://[^\s<>()\[\]]+)[>)\]]?$", re.IGNORECASE)


def hf_paper_id(url: str) -> str | None:
    """The arXiv id of a Hugging Face paper page URL (`.../papers/2410.12345`, also
    site-relative `/papers/...`), without its version; None for any other URL."""
    match = _HF_PAPER_RE.search(url.strip())
    return match.group(1) if match else None


def arxiv_id_of(url: str) -> str | None:
    """The arXiv id a paper URL points at (a Hugging Face paper page or
    `arxiv.org/abs|pdf|html/...`), without its version; None for any other URL."""
    found = hf_paper_id(url)
    if found:
        return found
    match = _ARXIV_URL_RE.search(url.strip())
    return match.group(1) if match else None


def is_arxiv_id(text: str) -> bool:
    return re.fullmatch(_ARXIV_ID, text.strip()) is not None


# The page of one day: "/papers/date/2025-03-11", "/papers?date=2025-03-11".
_PAGE_URL_DATE_RE = re.compile(r"/papers(?:/date/|/?\?(?:[^#\s]*&)?date=)(\d{4}-\d{2}-\d{2})")


def page_url_date(url: str) -> date | None:
    """The day a Daily Papers page URL is the page of (`.../papers/date/2025-03-11`,
    `...?date=2025-03-11`); None for any other URL or an impossible date."""
    match = _PAGE_URL_DATE_RE.search(url)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def is_paper_url_line(text: str) -> bool:
    """Is this line nothing but the URL of a paper?"""
    match = URL_LINE_RE.match(text.strip())
    return match is not None and arxiv_id_of(match.group(1)) is not None
