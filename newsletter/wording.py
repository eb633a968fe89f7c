"""How text is shortened and formatted for readers: dates, counts, lists, and cuts at word
and sentence boundaries. Pure functions, shared by the email, the archive and the feed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ELLIPSIS = "\u2026"
EXCERPT_CHARS = 300  # abstract excerpt length
# Whole sentences are kept when they fill at least this share of the room, and may run
# over it by SENTENCE_SLACK (a complete thought reads better than a cut one); otherwise
# the abstract is cut at a word boundary.
SENTENCE_SHARE = 0.45
SENTENCE_SLACK = 1.15


def one_line(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to a single space."""
    return " ".join(text.split())


def format_date(value: date) -> str:
    """`Nov 1, 2022` (English month names, whatever the process locale)."""
    return f"{MONTHS[value.month - 1]} {value.day}, {value.year}"


def format_short_date(value: date) -> str:
    """`Nov 1`."""
    return f"{MONTHS[value.month - 1]} {value.day}"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 author`, `4 authors`."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def join_words(items: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_TRAILING = " ,;:.-\u2013\u2014"


def shorten(text: str, limit: int = 70) -> str:
    """At most `limit` characters plus an ellipsis, cut at a word boundary when there is
    one in the last 40% (else mid-word, for very long unbroken words)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    if cut < limit * 0.6:
        cut = limit
    return text[:cut].rstrip(_TRAILING) + ELLIPSIS


def fit(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, the ellipsis included: whole when it fits,
    else cut at the last word boundary that leaves room for the ellipsis (mid-word only
    when the first word alone is too long)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    room = limit - 1
    cut = text.rfind(" ", 0, room + 1)
    head = text[:cut].rstrip(_TRAILING) if cut > 0 else ""
    if not head:
        head = text[:room].rstrip(_TRAILING) or text[:room]
    return head + ELLIPSIS


# Words after which a full stop does not end a sentence (compared in lower case, without
# the stop): Latin and reference abbreviations common in abstracts.
_ABBREVIATIONS = frozenset(
    "e.g i.e et al etc vs cf fig figs eq eqs sec secs tab ref refs approx resp no nos "
    "dr mr mrs ms prof st vol pp ch app incl esp".split()
)
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_LAST_WORD = re.compile(r"([\w.]+)\.?$")


def sentence_ends(text: str) -> list[int]:
    """The offsets just after each sentence's closing punctuation (the last sentence's
    end is not included unless the text ends there). A stop after an abbreviation
    (`e.g.`, `et al.`, `Fig.`), a single letter (`A. Author`) or inside a number is not
    an end."""
    ends: list[int] = []
    for found in _SENTENCE_END.finditer(text):
        if found.group()[0] == ".":
            word = _LAST_WORD.search(text, 0, found.start() + 1)
            token = word.group(1).lower().rstrip(".") if word else ""
            initials = bool(token) and all(len(p) <= 1 for p in token.split("."))  # `A.`, `U.S.`
            if token in _ABBREVIATIONS or initials:
                continue
        ends.append(found.end())
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        ends.append(len(stripped))
    return ends


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of an abstract in about `limit` characters: whole sentences when they
    fill most of the room (up to SENTENCE_SLACK times it), else a cut at a word boundary
    with an ellipsis."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    fitting = [end for end in sentence_ends(text) if end <= limit * SENTENCE_SLACK]
    if fitting and fitting[-1] >= limit * SENTENCE_SHARE:
        return text[: fitting[-1]]
    return shorten(text, limit)
