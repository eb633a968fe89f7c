"""Parse Daily Papers page dumps into `Paper` records (pure: text in, papers out).

This module owns the `Paper` / `Dump` records, `paper_key` (the identity of a paper),
the sniffing that tells the shapes of a dump apart, and the page-text shape itself: the
text a browser gives when the Hugging Face "Daily Papers" page is copied, with or without
each link's URL on a line of its own. It knows the page chrome, the header date, the
shape of one entry (title, abstract, metadata block) and how years are given to dates
that have none. The other shapes live in `dumps_json.py` (the daily papers API) and
`dumps_markdown.py` (Markdown scrapes); `parse_dump` picks one from the content, never
from the file name. Parsing is pure (no clock, no files, no globals changed); only
`read_dump` touches the file system.

The format, as copied from the page::

    new / Get trending papers in your email inbox! / Subscribe / Daily Papers /
    byAK and the research community              (chrome, any order, may be missing)
    Dec 11                                       (the page date: no year)

    <title>

    <abstract: one line, or several wrapped lines>

      • 4 authors                                (or an organisation: "AI-at-Meta Meta AI")
    ·
    May 30, 2017 1                               (or "Aug 18", "Aug 18 6": no year;
                                                  the trailing number is the upvote count)

An entry may have no metadata block at all (title and abstract, then the next title).
Broken entries inside a good dump are skipped with a warning in `Dump.warnings`; a text
that is not a dump at all raises `DumpError`.

Some text exports put each link's URL on its own line after the link's text
(`https://huggingface.co/papers/2410.12345` under the title). Those lines carry no text of
the page: they are set aside before parsing, and the first paper URL inside an entry
gives the paper its arXiv id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from newsletter.errors import DumpError


@dataclass(frozen=True)
class Paper:
    """One paper as the page shows it.

    `key` is the paper's identity across dumps: the normalised title (see `paper_key`).
    Exactly one of `authors_count` / `organization` is set when the entry had metadata;
    both are None for entries with title and abstract only.
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


# The shapes of capture a dump can have (see `sniff`).
PAGE_TEXT = "page text"
LINKED_TEXT = "page text with links"
API_JSON = "daily papers API JSON"
MARKDOWN = "Markdown"
SHAPES = (PAGE_TEXT, LINKED_TEXT, API_JSON, MARKDOWN)


@dataclass(frozen=True)
class Dump:
    """A parsed dump: its page date, its papers and the warnings about skipped entries.

    `shape` says which capture it was (one of `SHAPES`), for logs and reports."""

    name: str
    page_date: date
    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shape: str = PAGE_TEXT


def paper_key(title: str) -> str:
    """The identity of a paper: its title, Unicode-normalised, case-folded, punctuation
    and whitespace collapsed. Two captures of the same paper give the same key."""
    text = unicodedata.normalize("NFKC", title).casefold()
    text = re.sub(r"[^\w]+", " ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------
# Vocabulary of the page
# ---------------------------------------------------------------------------------------

EXPECTED = "expected a Daily Papers page: a header date such as 'Dec 11' followed by paper entries"

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

# Whole lines (compared after `_squash`) that are page chrome, never a paper: the header,
# the period tabs and the site footer.
_CHROME = frozenset(
    {
        "new",
        "get trending papers in your email inbox",
        "subscribe",
        "daily papers",
        "byak and the research community",
        "by ak and the research community",
        "daily",
        "weekly",
        "monthly",
        "daily weekly monthly",
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
    }
)

_MIDDOT = frozenset({"·", "⋅", "∙"})  # the separator line of a metadata block
_AUTHORS_RE = re.compile(r"^(?:[•‣◦*·-]\s*)?(\d+)\s+authors?$", re.IGNORECASE)
_BULLET_RE = re.compile(r"^[•‣◦*]\s*")
# "Dec 11", "Sept. 5, 2024", "Feb 10 6", "Dec 11, 2024 1", "Feb 10 1,234", "Feb 10 1.2k"
_DATE_RE = re.compile(
    r"^(?P<month>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2})"
    r"(?:\s*,\s*(?P<year>\d{4}))?"
    r"(?:\s+(?P<upvotes>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?[kK]|\d+))?$"
)
_UPVOTES_RE = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?[kK]|\d+)$")

_MAX_ORG_LENGTH = 200  # a longer line before "·" is text, not an organisation
_MAX_TITLE_LENGTH = 300  # a plausible title is one line of at most this many characters
_MIN_ABSTRACT_LENGTH = 50  # ... followed by an abstract at least this long and longer than it


def _squash(line: str) -> str:
    """A line reduced for chrome comparison: case-folded words only."""
    return " ".join(re.sub(r"[^\w]+", " ", line.casefold()).split())


def _is_chrome(line: str) -> bool:
    return _squash(line) in _CHROME


def _month_number(name: str) -> int | None:
    """1-12 for a full or abbreviated English month name (`Sep`, `Sept`, `September`)."""
    lowered = name.casefold()
    if len(lowered) < 3:
        return None
    for number, full in enumerate(_MONTHS, start=1):
        if full.startswith(lowered):
            return number
    return None


def _parse_count(text: str) -> int:
    """An upvote count as shown: `6`, `1,234`, `1.2k`."""
    if text[-1] in "kK":
        return round(float(text[:-1]) * 1000)
    return int(text.replace(",", ""))


@dataclass(frozen=True)
class _DateLine:
    """A date line as written: month and day, maybe a year, maybe an upvote count."""

    month: int
    day: int
    year: int | None
    upvotes: int | None


def _read_date_line(text: str) -> _DateLine | None:
    """The parts of a date line, or None when the line does not have the shape of one.

    A year needs its comma (`May 30, 2017`); a bare number after the day is the upvote
    count (`Feb 10 6`). The day is not checked against the month here."""
    match = _DATE_RE.match(text)
    if match is None:
        return None
    month = _month_number(match["month"])
    if month is None:
        return None
    year = int(match["year"]) if match["year"] else None
    upvotes = _parse_count(match["upvotes"]) if match["upvotes"] else None
    return _DateLine(month, int(match["day"]), year, upvotes)


def _month_day_exists(month: int, day: int) -> bool:
    try:
        date(2000, month, day)  # a leap year: Feb 29 exists
    except ValueError:
        return False
    return True


def _latest_on_or_before(month: int, day: int, limit: date) -> date | None:
    """The latest date with this month and day that is not after `limit` (Feb 29 looks
    back to the last leap year); None when no year has such a date."""
    if not _month_day_exists(month, day):
        return None
    for year in range(limit.year, limit.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= limit:
            return candidate
    return None


def _resolve_page_date(header: _DateLine, received_at: datetime) -> date | None:
    """The page's header date. Without a year: the latest such day not after the day the
    dump was received plus one (slack for time zones)."""
    if header.year is not None:
        try:
            return date(header.year, header.month, header.day)
        except ValueError:
            return None
    limit = received_at.date() + timedelta(days=1)
    return _latest_on_or_before(header.month, header.day, limit)


def _resolve_paper_date(line: _DateLine, page_date: date) -> date | None:
    """A paper's date: as written when it has a year, else the latest such day on or
    before the page date (a paper is not published after the page that lists it)."""
    if line.year is not None:
        try:
            return date(line.year, line.month, line.day)
        except ValueError:
            return None
    return _latest_on_or_before(line.month, line.day, page_date)


# ---------------------------------------------------------------------------------------
# Lines, paragraphs and metadata blocks
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    text: str  # stripped
    para: int  # index of its paragraph (a run of non-blank lines)


@dataclass(frozen=True)
class _Meta:
    """A metadata block: who (authors or organisation), "·", the date line."""

    first: int  # index (in the non-blank line list) of its first line
    last: int  # index of its last line
    who: _Line | None
    date_line: _Line | None
    date: _DateLine | None
    upvotes: int


def _split_lines(text: str) -> list[tuple[int, str]]:
    """The lines of the text as (1-based number, stripped text), CRLF / CR / BOM handled.
    Only \\n and \\r end a line, so numbers match what an editor shows. A metadata block
    copied onto one line ("• 4 authors · May 30, 2017") is split into its three lines,
    which keep the number of the line they came from."""
    text = text.removeprefix("\ufeff")
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        out.extend((number, part) for part in _split_inline_meta(raw.strip()))
    return out


def _split_inline_meta(line: str) -> list[str]:
    """["who", "·", "date"] (or the parts present) for a one-line metadata block, else [line]."""
    if line in _MIDDOT or not any(dot in line for dot in _MIDDOT):
        return [line]
    cut = max(line.rfind(dot) for dot in _MIDDOT)
    before, after = line[:cut].strip(), line[cut + 1 :].strip()
    after_is_date = bool(after) and _read_date_line(after) is not None
    if after and not after_is_date:
        return [line]
    if before and not _AUTHORS_RE.match(before) and len(before) > _MAX_ORG_LENGTH:
        return [line]
    return [part for part in (before, line[cut], after) if part]


def _non_blank(lines: list[tuple[int, str]], start: int) -> list[_Line]:
    """The non-blank lines from index `start` on, each with its paragraph number."""
    out: list[_Line] = []
    para = 0
    previous_blank = True
    for number, text in lines[start:]:
        if not text:
            previous_blank = True
            continue
        if previous_blank:
            para += 1
            previous_blank = False
        out.append(_Line(number, text, para))
    return out


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:20000]
    odd = sum(
        1
        for char in sample
        if char == "\ufffd" or (unicodedata.category(char) == "Cc" and char not in "\t\n\r\f\v")
    )
    return odd > max(2, len(sample) // 100)


def _find_header(lines: list[tuple[int, str]], name: str) -> tuple[int, _DateLine]:
    """Index (in `lines`) of the header date line and its parts: the first month-day line
    before the first metadata block (chrome and other lines before it are ignored)."""
    impossible: tuple[int, str] | None = None
    for index, (number, text) in enumerate(lines):
        if text in _MIDDOT:
            break
        parsed = _read_date_line(text)
        if parsed is None or parsed.upvotes is not None:
            continue
        if not _month_day_exists(parsed.month, parsed.day):
            impossible = impossible or (number, text)
            continue
        return index, parsed
    if impossible is not None:
        raise DumpError(
            f"the header date {impossible[1]!r} is not a real date; {EXPECTED}",
            path=name,
            line=impossible[0],
        )
    raise DumpError(f"not a dump: no header date found; {EXPECTED}", path=name)


def _find_metas(items: list[_Line]) -> list[_Meta]:
    """The metadata blocks among the non-blank lines, in order."""
    metas: list[_Meta] = []
    previous_end = -1
    index = 0
    while index < len(items):
        if items[index].text not in _MIDDOT:
            index += 1
            continue
        who: _Line | None = None
        first = index
        if index - 1 > previous_end:
            candidate = items[index - 1]
            if _AUTHORS_RE.match(candidate.text) or len(candidate.text) <= _MAX_ORG_LENGTH:
                who = candidate
                first = index - 1
        date_line: _Line | None = None
        parsed: _DateLine | None = None
        last = index
        if index + 1 < len(items):
            parsed = _read_date_line(items[index + 1].text)
            if parsed is not None:
                date_line = items[index + 1]
                last = index + 1
        upvotes = 0
        if parsed is not None and parsed.upvotes is not None:
            upvotes = parsed.upvotes
        elif (
            date_line is not None
            and last + 1 < len(items)
            and items[last + 1].para == date_line.para
            and _UPVOTES_RE.match(items[last + 1].text)
        ):
            # The count on a line of its own right under the date.
            upvotes = _parse_count(items[last + 1].text)
            last += 1
        metas.append(_Meta(first, last, who, date_line, parsed, upvotes))
        previous_end = last
        index = last + 1
    return metas


def _paragraphs(items: list[_Line]) -> list[list[_Line]]:
    """Group consecutive lines of one paragraph; drop paragraphs that are all chrome."""
    groups: list[list[_Line]] = []
    for item in items:
        if groups and groups[-1][-1].para == item.para:
            groups[-1].append(item)
        else:
            groups.append([item])
    return [group for group in groups if not all(_is_chrome(line.text) for line in group)]


def _joined(paragraph: list[_Line]) -> str:
    return " ".join(line.text for line in paragraph)


def _plausible(title: list[_Line], abstract: list[_Line]) -> bool:
    """Does this pair of paragraphs look like a title and its abstract?"""
    title_text = _joined(title)
    abstract_text = _joined(abstract)
    return (
        len(title) == 1
        and len(title_text) <= _MAX_TITLE_LENGTH
        and len(abstract_text) >= _MIN_ABSTRACT_LENGTH
        and len(abstract_text) > len(title_text)
    )


def _pair(
    paragraphs: list[list[_Line]], anchored: bool
) -> tuple[list[tuple[list[_Line], list[_Line]]], list[list[_Line]], bool]:
    """Split a run of paragraphs into (title, abstract) pairs of consecutive paragraphs.

    `anchored`: the run is followed by a metadata block, which belongs to a pair ending
    at the last paragraph. Returns the pairs, the paragraphs left over, and whether the
    last pair is the anchored one. Best total score wins: an anchored pair scores 3 when
    plausible and 1 when not (the metadata vouches for it); a pair without metadata
    scores 2 and must be plausible; a left-over paragraph scores 0. Ties keep the
    earlier pairing, so a title that lost its abstract is the one left over.
    """
    count = len(paragraphs)
    # best[i]: (score, choice) for paragraphs[i:]; choice True = pair i with i+1.
    best: list[tuple[int, bool]] = [(0, False)] * (count + 2)
    for i in range(count - 1, -1, -1):
        score, choice = best[i + 1][0], False
        if i + 1 < count:
            plausible = _plausible(paragraphs[i], paragraphs[i + 1])
            if anchored and i + 2 == count:
                gain: int | None = 3 if plausible else 1
            else:
                gain = 2 if plausible else None
            if gain is not None and gain + best[i + 2][0] >= score:
                score, choice = gain + best[i + 2][0], True
        best[i] = (score, choice)
    pairs: list[tuple[list[_Line], list[_Line]]] = []
    left: list[list[_Line]] = []
    ends_anchored = False
    i = 0
    while i < count:
        if best[i][1]:
            pairs.append((paragraphs[i], paragraphs[i + 1]))
            ends_anchored = anchored and i + 2 == count
            i += 2
        else:
            left.append(paragraphs[i])
            i += 1
    return pairs, left, ends_anchored


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------


@dataclass
class _Builder:
    """Collects the papers and warnings of one parse (local to one call)."""

    name: str
    page_date: date
    papers: list[Paper] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: int = 0

    def skip(self, line: int, what: str, why: str) -> None:
        self.skipped += 1
        self.warnings.append(f"{self.name}:{line}: skipped entry {what}: {why}")

    def left_over(self, paragraph: list[_Line]) -> None:
        text = _joined(paragraph)
        if len(paragraph) == 1 and len(text) <= _MAX_TITLE_LENGTH:
            self.skip(paragraph[0].number, repr(_shorten(text)), "title with no abstract")
        else:
            self.skip(paragraph[0].number, repr(_shorten(text)), "text with no title")

    def add(self, title_para: list[_Line], abstract_para: list[_Line], meta: _Meta | None) -> None:
        title = _joined(title_para)
        abstract = _joined(abstract_para)
        line = title_para[0].number
        what = repr(_shorten(title))
        key = paper_key(title)
        if not key:
            self.skip(line, what, "the title has no letter or digit to identify the paper")
            return
        if meta is None:
            self.papers.append(Paper(key=key, title=title, abstract=abstract, line=line))
            return
        if meta.who is None:
            self.skip(line, what, "metadata block has no authors or organisation line")
            return
        if meta.date is None or meta.date_line is None:
            self.skip(line, what, f"metadata block (line {meta.who.number}) has no date line")
            return
        published = _resolve_paper_date(meta.date, self.page_date)
        if published is None:
            self.skip(
                line,
                what,
                f"impossible date {meta.date_line.text!r} on line {meta.date_line.number}",
            )
            return
        authors = _AUTHORS_RE.match(meta.who.text)
        self.papers.append(
            Paper(
                key=key,
                title=title,
                abstract=abstract,
                authors_count=int(authors.group(1)) if authors else None,
                organization=None if authors else _BULLET_RE.sub("", meta.who.text),
                published=published,
                upvotes=meta.upvotes,
                line=line,
            )
        )

    def deduplicated(self) -> list[Paper]:
        """One paper per key: a later entry replaces an earlier one (it carries the later
        upvote count) and takes its place in page order."""
        position: dict[str, int] = {}
        out: list[Paper] = []
        for paper in self.papers:
            if paper.key not in position:
                position[paper.key] = len(out)
                out.append(paper)
                continue
            earlier = out[position[paper.key]]
            self.warnings.append(
                f"{self.name}:{paper.line}: duplicate entry {_shorten(paper.title)!r}"
                f" (also at line {earlier.line}): kept the later one"
            )
            out[position[paper.key]] = paper
        return out


def parse_page_text(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse the page text (a browser copy), with or without URL lines.

    `received_at` (the file's modification time) fixes the year of the page's header
    date; nothing here looks at the current time. Raises DumpError when the text is not a
    dump (no header date, or no paper)."""
    lines = _split_lines(text)
    lines, links = _set_aside_url_lines(lines)
    header_index, header = _find_header(lines, name)
    header_number, header_text = lines[header_index]
    page_date = _resolve_page_date(header, received_at)
    if page_date is None:
        raise DumpError(
            f"the header date {header_text!r} is not a real date; {EXPECTED}",
            path=name,
            line=header_number,
        )

    builder = _Builder(name, page_date)
    items = _non_blank(lines, header_index + 1)
    metas = _find_metas(items)
    if not metas:
        raise DumpError(
            f"not a dump: no paper entry with an authors and date block after the header date"
            f" {header_text!r}; {EXPECTED}",
            path=name,
            line=header_number,
        )
    start = 0
    for meta in metas:
        paragraphs = _paragraphs(items[start : meta.first])
        pairs, left, ends_anchored = _pair(paragraphs, anchored=True)
        for paragraph in left:
            builder.left_over(paragraph)
        for number, (title_para, abstract_para) in enumerate(pairs):
            is_last = number == len(pairs) - 1
            builder.add(title_para, abstract_para, meta if is_last and ends_anchored else None)
        if not paragraphs:
            first_line = items[meta.first].number
            builder.skip(first_line, "at its metadata", "metadata with no title or abstract")
        start = meta.last + 1
    # After the last metadata block: entries without metadata, then maybe a footer.
    pairs, left, _ = _pair(_paragraphs(items[start:]), anchored=False)
    for paragraph in left:
        builder.left_over(paragraph)
    for title_para, abstract_para in pairs:
        builder.add(title_para, abstract_para, None)

    papers = builder.deduplicated()
    if not papers:
        why = f"no paper entry found after the header date {header_text!r}"
        if builder.skipped:
            plural = "entry" if builder.skipped == 1 else "entries"
            why += f" ({builder.skipped} broken {plural} skipped)"
        raise DumpError(f"not a dump: {why}; {EXPECTED}", path=name, line=header_number)
    return Dump(
        name=name,
        page_date=page_date,
        papers=_with_arxiv_ids(papers, links),
        warnings=builder.warnings,
        shape=LINKED_TEXT if links is not None else PAGE_TEXT,
    )


# ---------------------------------------------------------------------------------------
# Links: arXiv ids, URL lines
# ---------------------------------------------------------------------------------------

_ARXIV_ID = r"(\d{4}\.\d{4,5})(?:v\d+)?"
# A paper's page on Hugging Face (absolute or site-relative) or on arXiv.
_PAPER_URL_RE = re.compile(
    rf"(?:\b(?:huggingface\.co|hf\.co)|^)/papers/{_ARXIV_ID}(?![\d.])"
    rf"|\barxiv\.org/(?:abs|pdf|html)/{_ARXIV_ID}(?![\d.])",
    re.IGNORECASE,
)
_URL_LINE_RE = re.compile(r"^[<(\[]?(https?://[^\s<>()\[\]]+)[>)\]]?$", re.IGNORECASE)


def arxiv_id_of(url: str) -> str | None:
    """The arXiv id a paper URL points at (`.../papers/2410.12345`, `arxiv.org/abs/...`),
    without its version; None for any other URL (a date page, a login link...)."""
    match = _PAPER_URL_RE.search(url.strip())
    if match is None:
        return None
    return match.group(1) or match.group(2)


def is_arxiv_id(text: str) -> bool:
    return re.fullmatch(_ARXIV_ID, text.strip()) is not None


def _is_paper_url_line(text: str) -> bool:
    match = _URL_LINE_RE.match(text)
    return match is not None and arxiv_id_of(match.group(1)) is not None


def _set_aside_url_lines(
    lines: list[tuple[int, str]],
) -> tuple[list[tuple[int, str]], list[tuple[int, str]] | None]:
    """Remove the lines that are nothing but a URL, when the text is an export with link
    URLs on their own lines (it has such a line pointing at a paper). Returns the other
    lines and the (line number, arXiv id) of each paper URL; None as the second value for
    a plain page text."""
    if not any(_is_paper_url_line(text) for _, text in lines):
        return lines, None
    kept: list[tuple[int, str]] = []
    links: list[tuple[int, str]] = []
    for number, text in lines:
        match = _URL_LINE_RE.match(text)
        if match is None:
            kept.append((number, text))
            continue
        arxiv_id = arxiv_id_of(match.group(1))
        if arxiv_id is not None:
            links.append((number, arxiv_id))
    return kept, links


def _with_arxiv_ids(papers: list[Paper], links: list[tuple[int, str]] | None) -> list[Paper]:
    """Give each paper the first paper URL between its title and the next paper's title
    (the title's own link comes right under it; the abstract's link, if any, after)."""
    if not links:
        return papers
    starts = sorted(paper.line for paper in papers)
    out: list[Paper] = []
    for paper in papers:
        later = [line for line in starts if line > paper.line]
        end = later[0] if later else None
        found = next(
            (
                arxiv_id
                for number, arxiv_id in links
                if number > paper.line and (end is None or number < end)
            ),
            None,
        )
        out.append(replace(paper, arxiv_id=found) if found else paper)
    return out


# ---------------------------------------------------------------------------------------
# Sniffing and reading
# ---------------------------------------------------------------------------------------

_JSON_START_RE = re.compile(r"^\s*(?:\{|\[\s*(?:[{\[\]\"]|-?\d|true|false|null))")
_FRONT_MATTER_RE = re.compile(r"^\s*---[ \t]*\r?\n")
_MD_LINK_RE = re.compile(r"\]\(\s*<?(?:https?://|/)[^)\s]*")
_ATX_HEADING_RE = re.compile(r"^[ ]{0,3}#{1,6}[ \t]+\S", re.MULTILINE)


def sniff(text: str) -> str:
    """Which shape of capture this text is, from its content alone (one of `SHAPES`).

    JSON starts with `{` or `[` followed by a value. Markdown has front matter, a link
    written `[text](url)`, or at least two `#` headings, none of which a browser copy of the
    page contains. A text with a line that is only the URL of a paper is the export with
    links on their own lines. Anything else is read as the page text."""
    body = text.removeprefix("\ufeff")
    if _JSON_START_RE.match(body):
        return API_JSON
    if (
        _FRONT_MATTER_RE.match(body)
        or _MD_LINK_RE.search(body)
        or len(_ATX_HEADING_RE.findall(body)) >= 2
    ):
        return MARKDOWN
    for line in body.splitlines():
        if _is_paper_url_line(line.strip()):
            return LINKED_TEXT
    return PAGE_TEXT


def parse_dump(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse the text of one dump, whatever its shape (see `sniff`).

    `received_at` (the file's modification time) stands in for the page's date where the
    capture gives none, and fixes the year of dates written without one; nothing here
    looks at the current time. Raises DumpError when the text is not a dump."""
    if not text.strip("\ufeff \t\r\n"):
        raise DumpError(f"not a dump: the file is empty; {EXPECTED}", path=name)
    if _looks_binary(text):
        raise DumpError(f"not a dump: the file looks binary, not text; {EXPECTED}", path=name)
    shape = sniff(text)
    # The other shapes' modules import this one (records, dates, chrome): imported here.
    if shape == API_JSON:
        from newsletter.dumps_json import parse_api_json

        return parse_api_json(text, name=name, received_at=received_at)
    if shape == MARKDOWN:
        from newsletter.dumps_markdown import parse_markdown

        return parse_markdown(text, name=name, received_at=received_at)
    return parse_page_text(text, name=name, received_at=received_at)


def decode_dump(data: bytes, *, name: str, received_at: datetime) -> Dump:
    """Parse the bytes of one dump (UTF-8, with or without a byte-order mark)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DumpError(
            f"not a dump: the file is not UTF-8 text (byte {exc.start}); {EXPECTED}", path=name
        ) from exc
    return parse_dump(text, name=name, received_at=received_at)


def read_dump(path: Path) -> Dump:
    """Read one dump file and parse it; its modification time is `received_at`."""
    try:
        data = path.read_bytes()
        stamp = path.stat().st_mtime
    except OSError as exc:
        raise DumpError(f"cannot read the file: {exc.strerror or exc}", path=path) from exc
    return decode_dump(data, name=str(path), received_at=datetime.fromtimestamp(stamp, tz=UTC))
