"""The page text: what a browser gives when the Daily Papers page is copied.

This module owns one shape of dump, with or without each link's URL on a line of its
own (some exporters write the URL under the link's text), and with or without blank
lines between all lines. The format, as copied from the page::

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
that is not a dump at all raises `DumpError`. URL lines carry no text of the page: they
are set aside before parsing, and the first paper URL inside an entry gives the paper
its arXiv id.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from newsletter.dumps.model import (
    LINKED_TEXT,
    METADATA_LINES,
    PAGE_CHROME,
    PAGE_TEXT,
    PAPER_LINKS,
    Dump,
    Paper,
    has_metadata_lines,
    paper_key,
    shorten,
)
from newsletter.dumps.vocabulary import (
    AUTHORS_RE,
    BULLET_RE,
    COUNT_RE,
    MAX_ORG_LENGTH,
    MAX_TITLE_LENGTH,
    MIDDOT,
    MIN_ABSTRACT_LENGTH,
    SUBMITTED_BY_RE,
    UPVOTE_LINE_RE,
    URL_LINE_RE,
    DateLine,
    arxiv_id_of,
    hf_paper_id,
    is_chrome,
    is_paper_url_line,
    is_signature_chrome,
    month_day_exists,
    parse_count,
    read_date_line,
    resolve_page_date,
    resolve_paper_date,
    split_meta_line,
    stars_of,
    upvotes_of,
)
from newsletter.errors import DumpError

EXPECTED = "expected a Daily Papers page: a header date such as 'Dec 11' followed by paper entries"


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
    date: DateLine | None
    upvotes: int


def _split_lines(text: str) -> list[tuple[int, str]]:
    """The lines of the text as (1-based number, stripped text), CRLF / CR / BOM handled.
    Only \\n and \\r end a line, so numbers match what an editor shows. A metadata block
    copied onto one line ("• 4 authors · May 30, 2017") is split into its three lines,
    which keep the number of the line they came from."""
    text = text.removeprefix("\ufeff")
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        out.extend((number, part) for part in split_meta_line(raw.strip()))
    return out


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


def _find_header(lines: list[tuple[int, str]], name: str) -> tuple[int, DateLine] | None:
    """Index (in `lines`) of the header date line and its parts: the first month-day line
    before the first metadata block (chrome and other lines before it are ignored);
    None when the capture has no header date (a Trending or search page)."""
    impossible: tuple[int, str] | None = None
    for index, (number, text) in enumerate(lines):
        if text in MIDDOT or AUTHORS_RE.match(text):
            break
        parsed = read_date_line(text)
        if parsed is None or parsed.upvotes is not None:
            continue
        if not month_day_exists(parsed.month, parsed.day):
            impossible = impossible or (number, text)
            continue
        return index, parsed
    if impossible is not None:
        raise DumpError(
            f"the header date {impossible[1]!r} is not a real date; {EXPECTED}",
            path=name,
            line=impossible[0],
        )
    return None


def _authors_only(items: list[_Line], index: int) -> _Meta:
    """The metadata block of an authors line that no "·" line follows."""
    after = index + 1
    parsed = read_date_line(items[after].text) if after < len(items) else None
    if parsed is None:
        return _Meta(index, index, items[index], None, None, 0)
    return _Meta(index, after, items[index], items[after], parsed, parsed.upvotes or 0)


def _find_metas(items: list[_Line], *, spaced: bool) -> list[_Meta]:
    """The metadata blocks among the non-blank lines, in order. `spaced`: every line is
    a paragraph of its own (an export with blank lines between all lines), so a count
    under the date belongs to it even across a blank line."""
    metas: list[_Meta] = []
    previous_end = -1
    index = 0
    while index < len(items):
        if items[index].text not in MIDDOT:
            if AUTHORS_RE.match(items[index].text) and (
                index + 1 >= len(items) or items[index + 1].text not in MIDDOT
            ):
                # "· 12 authors" with no "·" line after it: maybe a date line right
                # after (text extractions), maybe none (Trending cards).
                meta = _authors_only(items, index)
                metas.append(meta)
                previous_end = meta.last
                index = meta.last + 1
                continue
            index += 1
            continue
        who: _Line | None = None
        first = index
        if index - 1 > previous_end:
            candidate = items[index - 1]
            if AUTHORS_RE.match(candidate.text) or len(candidate.text) <= MAX_ORG_LENGTH:
                who = candidate
                first = index - 1
        date_line: _Line | None = None
        parsed: DateLine | None = None
        last = index
        if index + 1 < len(items):
            parsed = read_date_line(items[index + 1].text)
            if parsed is not None:
                date_line = items[index + 1]
                last = index + 1
        upvotes = 0
        if parsed is not None and parsed.upvotes is not None:
            upvotes = parsed.upvotes
        elif (
            date_line is not None
            and last + 1 < len(items)
            and (items[last + 1].para == date_line.para or spaced)
            and COUNT_RE.match(items[last + 1].text)
        ):
            # The count on a line of its own right under the date.
            upvotes = parse_count(items[last + 1].text)
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
    return [group for group in groups if not all(is_chrome(line.text) for line in group)]


def _joined(paragraph: list[_Line]) -> str:
    return " ".join(line.text for line in paragraph)


def _plausible(title: list[_Line], abstract: list[_Line]) -> bool:
    """Does this pair of paragraphs look like a title and its abstract?"""
    title_text = _joined(title)
    abstract_text = _joined(abstract)
    return (
        len(title) == 1
        and len(title_text) <= MAX_TITLE_LENGTH
        and len(abstract_text) >= MIN_ABSTRACT_LENGTH
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

    left: list[list[_Line]] = field(default_factory=list)

    def left_over(self, paragraph: list[_Line]) -> None:
        self.left.append(paragraph)

    def report_left_overs(self) -> None:
        """Warn about the paragraphs that became no paper, except the other listing of a
        paper the page shows twice (Trending): its title (maybe cut short with "…") or
        its summary again."""
        known = {paper_key(text) for paper in self.papers for text in (paper.title, paper.abstract)}
        keys = sorted(known)
        for paragraph in self.left:
            text = _joined(paragraph)
            key = paper_key(text.rstrip(".…"))
            if key in known:
                continue
            if text.endswith(("…", "...")) and key:
                at = bisect.bisect_left(keys, key)
                if at < len(keys) and keys[at].startswith(key):
                    continue
            if len(paragraph) == 1 and len(text) <= MAX_TITLE_LENGTH:
                self.skip(paragraph[0].number, repr(shorten(text)), "title with no abstract")
            else:
                self.skip(paragraph[0].number, repr(shorten(text)), "text with no title")

    def add(self, title_para: list[_Line], abstract_para: list[_Line], meta: _Meta | None) -> None:
        title = _joined(title_para)
        abstract = _joined(abstract_para)
        line = title_para[0].number
        what = repr(shorten(title))
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
        published = None
        if meta.date is not None and meta.date_line is not None:
            published = resolve_paper_date(meta.date, self.page_date)
        if meta.date is not None and meta.date_line is not None and published is None:
            self.skip(
                line,
                what,
                f"impossible date {meta.date_line.text!r} on line {meta.date_line.number}",
            )
            return
        authors = AUTHORS_RE.match(meta.who.text)
        self.papers.append(
            Paper(
                key=key,
                title=title,
                abstract=abstract,
                authors_count=int(authors.group(1)) if authors else None,
                organization=None if authors else BULLET_RE.sub("", meta.who.text),
                published=published,
                upvotes=meta.upvotes,
                line=line,
            )
        )


@dataclass(frozen=True)
class _Start:
    """Where the entries start: after the header date, or at the top without one."""

    page_date: date
    items: list[_Line]
    header_text: str  # for messages: the header line quoted, or "the top of the file"
    header_number: int | None


def _start(lines: list[tuple[int, str]], name: str, received_at: datetime) -> _Start:
    found = _find_header(lines, name)
    if found is None:
        return _Start(received_at.date(), _non_blank(lines, 0), "the top of the file", None)
    header_index, header = found
    number, text = lines[header_index]
    page_date = resolve_page_date(header, received_at)
    if page_date is None:
        raise DumpError(
            f"the header date {text!r} is not a real date; {EXPECTED}", path=name, line=number
        )
    return _Start(page_date, _non_blank(lines, header_index + 1), repr(text), number)


def _read_entries(builder: _Builder, items: list[_Line]) -> None:
    """Pair the paragraphs between metadata blocks into entries (see `_pair`)."""
    metas = _find_metas(items, spaced=bool(items) and items[-1].para == len(items))
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
    builder.report_left_overs()


def _evidence(papers: list[Paper], links: _Links | None, chrome: bool) -> tuple[str, ...]:
    evidence = []
    if links and links.hf_pages:
        evidence.append(PAPER_LINKS)
    if chrome:
        evidence.append(PAGE_CHROME)
    if has_metadata_lines(papers):
        evidence.append(METADATA_LINES)
    return tuple(evidence)


def parse_page_text(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse the page text (a browser copy), with or without URL lines.

    `received_at` (the file's modification time) fixes the year of the page's header
    date, and is the page date of a capture without one; nothing here looks at the
    current time. Raises DumpError when the text holds no paper entry."""
    lines = _split_lines(text)
    lines, links = _set_aside_url_lines(lines)
    lines = _without_placeholders(lines)
    lines, side = _set_aside_side_lines(lines, links.comments if links else set())
    start = _start(lines, name, received_at)
    builder = _Builder(name, start.page_date)
    _read_entries(builder, start.items)
    papers = _with_side_counts(_with_arxiv_ids(builder.papers, links), side)
    if not papers:
        why = f"no paper entry found after {start.header_text}"
        if builder.skipped:
            plural = "entry" if builder.skipped == 1 else "entries"
            why += f" ({builder.skipped} broken {plural} skipped)"
        raise DumpError(f"not a dump: {why}; {EXPECTED}", path=name, line=start.header_number)
    return Dump(
        name=name,
        page_date=start.page_date,
        papers=papers,
        warnings=builder.warnings,
        shape=LINKED_TEXT if links is not None else PAGE_TEXT,
        evidence=_evidence(papers, links, any(is_signature_chrome(line) for _, line in lines)),
    )


# ---------------------------------------------------------------------------------------
# Side lines: upvote buttons, GitHub stars, image placeholders
# ---------------------------------------------------------------------------------------

# "[image]", "[Bild]", "[Imagen]", "[图片]": what text extractions leave for a picture.
_PLACEHOLDER_RE = re.compile(r"^[\[(（【]\s*[^\W\d_][^\[\]()（）【】]{0,30}[\])）】]$")
# A bracketed word inside a line ("[Bild] [Bild] · 8 authors": the avatars).
_BRACKETED_WORD_RE = re.compile(r"\[[^\W\d_]{1,20}\]")
_REPEATED = 3  # a bracketed word seen this often is a placeholder, wherever it stands


def _without_placeholders(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Lines with the image placeholders a text extraction left inside them removed: a
    bracketed word ("[Bild]", "[image]", "[画像]") that the text repeats at least
    `_REPEATED` times is no word of a title or abstract."""
    seen: dict[str, int] = {}
    for _, line in lines:
        if "[" in line:
            for word in _BRACKETED_WORD_RE.findall(line):
                seen[word] = seen.get(word, 0) + 1
    repeated = {word for word, count in seen.items() if count >= _REPEATED}
    if not repeated:
        return lines
    out: list[tuple[int, str]] = []
    for number, line in lines:
        if "[" in line:
            line = _BRACKETED_WORD_RE.sub(
                lambda match: "" if match.group(0) in repeated else match.group(0), line
            )
            line = " ".join(line.split())
        out.append((number, line))
    return out


@dataclass(frozen=True)
class _Side:
    """Counts on lines of their own that are not part of any title or abstract."""

    upvotes: list[tuple[int, int]] = field(default_factory=list)  # (line number, count)
    stars: list[tuple[int, int]] = field(default_factory=list)
    comments: list[tuple[int, int]] = field(default_factory=list)


_MAX_COUNT_LENGTH = 9  # "1,234,567": a longer run of digits is text, not a count


def _alone(lines: list[tuple[int, str]], index: int) -> bool:
    """Is line `index` a paragraph of its own (blank or nothing before and after)?"""
    before = index == 0 or not lines[index - 1][1]
    after = index + 1 == len(lines) or not lines[index + 1][1]
    return before and after


def _set_aside_side_lines(
    lines: list[tuple[int, str]], comment_lines: set[int]
) -> tuple[list[tuple[int, str]], _Side]:
    """Take out upvote-button lines ("[-] 12", "▲ 12", a count standing alone), GitHub
    stars ("★ 1.2k"), comment counts (linked to #community), "Submitted by" lines and
    image placeholders ("[image]", "[Bild]"); keep the counts with their lines. A blank
    line takes the place of each, so paragraphs stay apart."""
    kept: list[tuple[int, str]] = []
    side = _Side()
    for index, (number, line) in enumerate(lines):
        count = len(line) <= _MAX_COUNT_LENGTH and COUNT_RE.match(line) is not None
        if number in comment_lines and count:
            side.comments.append((number, parse_count(line)))
        elif (UPVOTE_LINE_RE.match(line) and not count) or (count and _alone(lines, index)):
            side.upvotes.append((number, upvotes_of(line) or 0))
        elif (stars := stars_of(line)) is not None:
            side.stars.append((number, stars))
        elif not (SUBMITTED_BY_RE.match(line) or _PLACEHOLDER_RE.match(line)):
            kept.append((number, line))
            continue
        kept.append((number, ""))
    return kept, side


def _owner(starts: list[tuple[int, int]], number: int, leading: bool) -> int | None:
    """Index of the paper a side line belongs to, from the (title line, paper index)
    pairs in line order: the next title's paper when the page puts these lines before
    each title (`leading`), else the previous title's."""
    at = bisect.bisect_left(starts, (number, -1))
    if leading:
        while at < len(starts) and starts[at][0] <= number:
            at += 1
        return starts[at][1] if at < len(starts) else None
    return starts[at - 1][1] if at > 0 else None


def _with_side_counts(papers: list[Paper], side: _Side) -> list[Paper]:
    """Give each paper the upvotes, stars and comments on the side lines it owns."""
    if not papers:
        return papers
    starts = sorted((paper.line, index) for index, paper in enumerate(papers))
    out = list(papers)
    for entries, name in ((side.upvotes, "upvotes"), (side.stars, "stars"), (side.comments, "")):
        leading = bool(entries) and name != "" and entries[0][0] < starts[0][0]
        for number, count in entries:
            index = _owner(starts, number, leading)
            if index is None:
                continue
            paper = out[index]
            if name == "upvotes":
                out[index] = replace(paper, upvotes=count)
            elif name == "stars":
                out[index] = replace(paper, github_stars=count)
            else:
                out[index] = replace(paper, comments=count)
    return out


# ---------------------------------------------------------------------------------------
# Links: arXiv ids, URL lines
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Links:
    """The URLs an export wrote beside the page's text."""

    papers: list[tuple[int, str]]  # (line number, arXiv id) of each paper URL
    hf_pages: int  # how many point at a Hugging Face paper page
    comments: set[int]  # line numbers of counts linked to a paper's #community


_TRAILING_URL_RE = re.compile(r"^(?P<text>.*\S)\s+[<(](?P<url>https?://[^\s<>()]+)[>)]$")


def _set_aside_url_lines(
    lines: list[tuple[int, str]],
) -> tuple[list[tuple[int, str]], _Links | None]:
    """Take out the URLs of an export that writes each link's URL on its own line (or
    after its text, `Title <https://...>`), when it has one pointing at a paper. A URL
    line ends its link's text, so it becomes a blank line (the title's link separates
    it from the abstract). None as the second value for a plain page text."""
    if not any(is_paper_url_line(text) or _TRAILING_URL_RE.match(text) for _, text in lines):
        return lines, None
    kept: list[tuple[int, str]] = []
    links = _Links([], 0, set())
    for number, text in lines:
        whole = URL_LINE_RE.match(text)
        trailing = None if whole else _TRAILING_URL_RE.match(text)
        if whole is None and trailing is None:
            kept.append((number, text))
            continue
        url = whole.group(1) if whole else trailing["url"] if trailing else ""
        kept.append((number, trailing["text"] if trailing else ""))
        arxiv_id = arxiv_id_of(url)
        if arxiv_id is None:
            continue
        if "#community" in url:
            previous = next((item for item in reversed(kept) if item[1]), None)
            if previous is not None and COUNT_RE.match(previous[1]):
                links.comments.add(previous[0])
            continue
        links.papers.append((number, arxiv_id))
        links = replace(links, hf_pages=links.hf_pages + bool(hf_paper_id(url)))
    if not links.papers:
        return lines, None
    return kept, links


def _with_arxiv_ids(papers: list[Paper], found: _Links | None) -> list[Paper]:
    """Give each paper the first paper URL between its title and the next paper's title
    (the title's own link comes right under it; the abstract's link, if any, after)."""
    if not found or not found.papers:
        return papers
    link_lines = [number for number, _ in found.papers]  # in line order
    starts = sorted(paper.line for paper in papers)
    out: list[Paper] = []
    for paper in papers:
        following = bisect.bisect_right(starts, paper.line)
        end = starts[following] if following < len(starts) else None
        at = bisect.bisect_right(link_lines, paper.line)
        if at < len(link_lines) and (end is None or link_lines[at] < end):
            paper = replace(paper, arxiv_id=found.papers[at][1])
        out.append(paper)
    return out
