"""Parse Markdown captures of the Daily Papers pages into `Paper` records (pure).

This module owns one shape of dump: the Markdown that scraping tools (reader services
such as r.jina.ai, crawlers such as Firecrawl or crawl4ai, HTML-to-Markdown converters
such as html2text, markdownify or pandoc) make of the day, Trending and search pages. Its
blocks and atoms come from `markdown_blocks.py` (markdown-it-py tokens); this module
says what they mean. Each paper is a title, then the rest of its card::

    [![](thumbnail)](https://huggingface.co/papers/2410.12345)    an image link: nothing
    [21](https://huggingface.co/login?next=%2Fpapers%2F2410.12345)  upvotes (`-` for 0)
    ### [Title](https://huggingface.co/papers/2410.12345)

    The abstract (maybe a link itself), or an AI one-line summary on Trending.

    * 21 authors                                   or an organisation
    ·
    Dec 11, 2024                                   maybe no year, "Published on ..."
    [3](https://huggingface.co/papers/2410.12345#community)      comments
    [owner/repo](https://github.com/owner/repo) ★ 1.2k           code and its stars

A title is a heading that links to a paper page (or arXiv), a plain heading, or a
paragraph that is nothing but a link to a paper page (maybe bold, maybe with its counts
beside it: `1. [Title](/papers/ID) ★ 1.2k`). Counts may sit
before the title or after it: a count whose link names its paper (the upvote button's
`login?next=/papers/ID`, the comment link's `/papers/ID#community`) goes to that paper;
other counts go to the card they are in, or to the next card when the page puts them
before each title. A heading or link that repeats the paper just read (a thumbnail's
alt text, a second link to the same paper) does not start another entry; the second
listing of each paper on Trending pages becomes a record that `deduplicate` merges.

The page date is, in order: the date in the page's own URL when the front matter or a
reader's header gives it (`.../papers/date/2024-12-11`, `?date=2024-12-11`); the page's
header date line (`Dec 11`, its year chosen as for the page text); the day the file was
received (Trending and search pages have no date).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import unquote

from newsletter.dumps.markdown_blocks import (
    BREAK,
    HEADING,
    PARAGRAPH,
    Atom,
    Block,
    Header,
    read_layout,
)
from newsletter.dumps.model import (
    MARKDOWN,
    METADATA_LINES,
    PAGE_CHROME,
    PAPER_LINKS,
    Dump,
    Paper,
    fold,
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
    SUBMITTED_BY_RE,
    DateLine,
    arxiv_id_of,
    hf_paper_id,
    is_chrome,
    is_signature_chrome,
    month_day_exists,
    page_url_date,
    parse_count,
    read_date_line,
    resolve_page_date,
    resolve_paper_date,
    split_meta_line,
    squash,
    stars_of,
    upvotes_of,
)
from newsletter.errors import DumpError

EXPECTED = (
    "expected a Markdown capture of the Daily Papers page: paper headings such as "
    "'### [Title](https://huggingface.co/papers/2410.12345)', each followed by its abstract"
)

_ZERO_RE = re.compile(r"^[-–—]$")  # the page shows "-" for no upvotes
_HAS_LETTER_RE = re.compile(r"[^\W\d_]")
_TRENDING_URL_RE = re.compile(r"/papers/trending\b")
_GITHUB_RE = re.compile(r"^(?:https?://)?(?:www\.)?github\.com/([\w.-]+)/([\w.-]+)", re.I)
_NAMED_PAPER_RE = re.compile(r"/papers/(\d{4}\.\d{4,5})(?![\d.])")
_COUNT_AT_END_RE = re.compile(r"(?:^|\s)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?[kK]|\d+)$")
_COUNT_IN_RE = re.compile(r"(?:^|\s)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?[kK]|\d+)(?:\s|$)")
_SENTENCE_END_RE = re.compile(r"[.!?]\s+[A-Z]")

# Headings that are page furniture, not papers (beyond the page's chrome lines).
_MARKDOWN_CHROME = frozenset(
    {"papers", "trending papers", "daily papers hugging face", "previous", "next", "search"}
)
_TRENDING_CHROME = frozenset({"trending papers", "trending papers hugging face"})
_SUMMARY_LABELS = frozenset({"ai generated summary", "ai summary", "summary"})
_PROJECT_LABELS = frozenset({"project page", "project website", "project", "homepage"})
_MAX_LABEL = 30  # a link's text that is a label ("arXiv Page"), not text of the card
_MAX_SUMMARY = 400  # an AI one-line summary is one sentence of at most this length

# What a side atom is: a count or link that is not text of the card.
_UPVOTES = "upvotes"
_STARS = "stars"
_REPO = "repo"
_COMMENTS = "comments"
_PROJECT = "project page"
_ARXIV = "arXiv link"
_SUBMITTER = "submitted by"
_LABEL = "summary label"
_DROP = "nothing"
_LEADING_KINDS = (_UPVOTES, _STARS, _REPO)  # may sit before the title of their card


@dataclass(frozen=True)
class _Side:
    kind: str
    value: int | str
    pos: int  # place in the page's sequence of atoms
    entry: int | None  # the entry it is inside, if any
    paper: str | None = None  # the paper its link names, if any
    own: bool = False  # beside its entry's title link: that entry's whatever the layout


@dataclass
class _Entry:
    title: str
    line: int
    arxiv_id: str | None
    hf_link: bool  # the title links to a Hugging Face paper page
    pos: int  # place of the title in the page's sequence of atoms
    content: list[tuple[str, int]] = field(default_factory=list)  # (text, block number)
    last_content: int = -1  # place of its last text atom
    summary_label: bool = False  # "AI-generated summary" labels its text
    key: str = ""  # paper_key(title), kept with the title

    def __post_init__(self) -> None:
        self.key = paper_key(self.title)


def _ids(links: Sequence[str]) -> list[str]:
    return [found for found in map(arxiv_id_of, links) if found]


def _is_title_text(text: str) -> bool:
    return bool(paper_key(text)) and bool(_HAS_LETTER_RE.search(text))


def _is_chrome_heading(text: str) -> bool:
    return is_chrome(text) or is_signature_chrome(text) or squash(text) in _MARKDOWN_CHROME


# ---------------------------------------------------------------------------------------
# What an atom is: text of the card, or a count, a link or a label beside it
# ---------------------------------------------------------------------------------------


def _classify(atom: Atom, after_repo: bool) -> tuple[str, int | str] | None:
    """The side kind and value of an atom, or None when it is text of the card."""
    text, href = atom.text, atom.href
    if href is not None:
        kind = _classify_link(text, href)
        if kind is not None:
            return kind
    if not text:
        return (_DROP, "")
    upvotes = upvotes_of(text)
    if upvotes is not None:
        if href is not None and not ("login" in href or "upvote" in href):
            return (_DROP, "")  # a number linked elsewhere (a page of results, a user)
        if after_repo and COUNT_RE.match(text):
            return (_STARS, upvotes)  # "[owner/repo](https://github.com/...) 1.2k"
        return (_UPVOTES, upvotes)
    stars = stars_of(text)
    if stars is not None:
        return (_STARS, stars)
    if SUBMITTED_BY_RE.match(text):
        return (_SUBMITTER, text)
    if squash(text) in _SUMMARY_LABELS:
        return (_LABEL, "")
    return None


def _classify_link(text: str, href: str) -> tuple[str, int | str] | None:
    github = _GITHUB_RE.match(href)
    if github:
        return (_REPO, f"https://github.com/{github.group(1)}/{github.group(2)}")
    if "#community" in href:
        count = _COUNT_IN_RE.search(text)  # "6", "💬 6", "6 comments"
        return (_COMMENTS, parse_count(count.group(1))) if count else (_DROP, "")
    if not hf_paper_id(href) and arxiv_id_of(href) and len(text) <= _MAX_LABEL:
        return (_ARXIV, arxiv_id_of(href) or "")
    if squash(text) in _PROJECT_LABELS:
        return (_PROJECT, href)
    return None


def _repo_stars(text: str) -> int | None:
    """Stars written in a GitHub link's text: "★ 1.2k", "owner/repo 1.2k"."""
    stars = stars_of(text)
    if stars is not None:
        return stars
    count = _COUNT_AT_END_RE.search(text)
    return parse_count(count.group(1)) if count else None


def _named_paper(href: str | None) -> str | None:
    """The paper a side link names: `/papers/ID#community`, `login?next=%2Fpapers%2FID`."""
    if not href:
        return None
    found = _NAMED_PAPER_RE.search(unquote(href))
    return found.group(1) if found else None


# ---------------------------------------------------------------------------------------
# Entries: each title and what follows it
# ---------------------------------------------------------------------------------------


@dataclass
class _Page:
    entries: list[_Entry] = field(default_factory=list)
    sides: list[_Side] = field(default_factory=list)
    before: list[Atom] = field(default_factory=list)  # text before the first entry
    chrome: bool = False  # a signature chrome line of the Daily Papers pages was seen
    trending: bool = False  # the page is the Trending page


class _Reader:
    """Reads the blocks in order into entries, side atoms and the text before them."""

    def __init__(self) -> None:
        self.page = _Page()
        self.current: _Entry | None = None
        self.pos = 0
        self.after_repo = False  # the previous atom of this block was a GitHub link
        self.drop_next = False  # the previous atom was "Submitted by" (a name follows)

    def block(self, number: int, block: Block) -> None:
        self.after_repo = False
        if block.kind == BREAK:
            self.current = None
        elif block.kind == HEADING:
            self._heading(number, block)
        else:
            self._paragraph(number, block)

    def _heading(self, number: int, block: Block) -> None:
        title = block.text
        ids = _ids(block.links)
        if ids and _is_title_text(title):
            self._title(number, block, title, ids[0])
        elif not block.links and _is_title_text(title) and not _is_chrome_heading(title):
            if read_date_line(title) is not None:  # "# Dec 11": the page's date
                self._content(number, block)
            elif self.current is None or paper_key(title) != self.current.key:
                self._start(block, title, None)
        else:
            self.page.chrome |= is_signature_chrome(title)
            self.page.trending |= squash(title) in _TRENDING_CHROME
            self.current = None  # a heading of the page ("Daily Papers", a tab)

    def _paragraph(self, number: int, block: Block) -> None:
        link = _title_link(block)
        if link is None:
            self._content(number, block)
            return
        started = self._title(number, block, link.text, arxiv_id_of(link.href or "") or "")
        if started:  # the counts beside a title link are its own ("[Title](...) ★ 1.2k")
            for atom in block.atoms:
                if atom is not link:
                    self._atom(number, atom, own=True)

    def _title(self, number: int, block: Block, title: str, arxiv_id: str) -> bool:
        """A title linking to a paper: a new entry (True), unless it is the paper just
        read (its second link, its thumbnail's alt text), which keeps its entry; a
        heading's text is the better title while the entry has no text yet."""
        current = self.current
        if current is None or (arxiv_id != current.arxiv_id and paper_key(title) != current.key):
            self._start(block, title, arxiv_id)
            return True
        if current.arxiv_id is None:
            current.arxiv_id = arxiv_id
            current.hf_link = any(hf_paper_id(link) for link in block.links)
        if block.kind == HEADING and not current.content:
            current.title, current.line, current.key = title, block.line, paper_key(title)
        elif paper_key(title) != current.key:
            self._content(number, block)  # the abstract as a link to the paper
        return False

    def _start(self, block: Block, title: str, arxiv_id: str | None) -> None:
        self.pos += 1  # the title's own place: what came before it is before it
        self.current = _Entry(
            title=title,
            line=block.line,
            arxiv_id=arxiv_id,
            hf_link=arxiv_id is not None and any(hf_paper_id(link) for link in block.links),
            pos=self.pos,
        )
        self.page.entries.append(self.current)

    def _content(self, number: int, block: Block) -> None:
        if self.current is None:
            self.page.chrome |= is_signature_chrome(block.text)
            self.page.trending |= squash(block.text) in _TRENDING_CHROME
        for atom in block.atoms:
            self._atom(number, atom)

    def _atom(self, number: int, atom: Atom, *, own: bool = False) -> None:
        self.pos += 1
        side = _classify(atom, self.after_repo)
        self.after_repo = side is not None and side[0] == _REPO
        if self.drop_next and side is None:
            self.drop_next = False
            return  # the user name after "Submitted by"
        if side is not None and side[0] == _SUBMITTER:
            self.drop_next = squash(atom.text) == "submitted by"
        elif side is None and atom.text.casefold().endswith("submitted by"):
            # "Published on Jun 2 · Submitted by" and then the name (a link)
            atom = Atom(atom.line, atom.text[: -len("submitted by")].rstrip(" ·⋅∙"), atom.href)
            self.drop_next = True
            if not atom.text:
                return
        if side is not None:
            self._side(side, atom, own)
        elif self.current is None:
            if not self.page.entries:
                self.page.before.append(atom)
        elif paper_key(atom.text) != self.current.key:  # not the title again
            self.current.content.append((atom.text, number))
            self.current.last_content = self.pos

    def _side(self, side: tuple[str, int | str], atom: Atom, own: bool) -> None:
        kind, value = side
        entry = len(self.page.entries) - 1 if self.current is not None else None
        if kind == _LABEL and self.current is not None:
            self.current.summary_label = True
        if kind in (_DROP, _LABEL, _SUBMITTER):
            return
        paper = _named_paper(atom.href) if kind in (_UPVOTES, _COMMENTS) else None
        self.page.sides.append(_Side(kind, value, self.pos, entry, paper, own))
        if kind == _REPO:
            stars = _repo_stars(atom.text)
            if stars is not None:
                self.page.sides.append(_Side(_STARS, stars, self.pos, entry, None, own))


def _title_link(block: Block) -> Atom | None:
    """The link of a title paragraph: its one link with text, to a paper, with the words
    of a title; nothing else but image links and counts ("[Title](...) ★ 1.2k")."""
    if block.kind != PARAGRAPH:
        return None
    links = [atom for atom in block.atoms if atom.href is not None and atom.text]
    if len(links) != 1 or arxiv_id_of(links[0].href or "") is None:
        return None
    link = links[0]
    if not _is_title_text(link.text) or len(link.text) > MAX_TITLE_LENGTH:
        return None
    for atom in block.atoms:
        if atom.href is None and _classify(atom, after_repo=False) is None:
            return None  # text beside the link: a sentence that mentions a paper
    return link


def _read_page(blocks: list[Block]) -> _Page:
    reader = _Reader()
    for number, block in enumerate(blocks):
        reader.block(number, block)
    return reader.page


# ---------------------------------------------------------------------------------------
# Side atoms to their papers
# ---------------------------------------------------------------------------------------


def _leads(sides: list[_Side], entries: list[_Entry]) -> bool:
    """Does the page put this kind of count before each title? Yes when one comes before
    the first title; no when one comes after the last title; else as most of them do:
    a count followed by text of its entry is that entry's."""
    sides = [side for side in sides if not side.own]
    if not sides:
        return False
    if any(side.pos < entries[0].pos for side in sides):
        return True
    if any(side.entry is not None and side.pos > entries[-1].pos for side in sides):
        return False
    inside = [side for side in sides if side.entry is not None]
    trailing = sum(1 for side in inside if entries[side.entry or 0].last_content > side.pos)
    return len(inside) - trailing > trailing


def _owner(side: _Side, entries: list[_Entry], starts: list[int], leading: bool) -> int | None:
    """The entry a side atom belongs to: the paper its link names when that is the entry
    it is in or the next one; else the next entry when counts lead, else its own."""
    if side.own:
        return side.entry
    following = bisect_right(starts, side.pos)
    nearby = [index for index in (side.entry, following) if index is not None]
    if side.paper is not None:
        for index in nearby:
            if index < len(entries) and entries[index].arxiv_id == side.paper:
                return index
    if leading:
        return following if following < len(entries) else None
    return side.entry


def _assign(page: _Page) -> list[dict[str, list[int | str]]]:
    """For each entry, the values of each kind of side atom that belong to it."""
    out: list[dict[str, list[int | str]]] = [{} for _ in page.entries]
    if not page.entries:
        return out
    starts = [entry.pos for entry in page.entries]
    for kind in (_UPVOTES, _STARS, _REPO, _COMMENTS, _PROJECT, _ARXIV):
        sides = [side for side in page.sides if side.kind == kind]
        if not sides:
            continue
        leading = kind in _LEADING_KINDS and _leads(sides, page.entries)
        for side in sides:
            owner = _owner(side, page.entries, starts, leading)
            if owner is not None:
                out[owner].setdefault(kind, []).append(side.value)
    return out


# ---------------------------------------------------------------------------------------
# The fields of one card
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    abstract: str
    upvotes: int
    who: str | None
    when: DateLine | None
    when_text: str | None


def _is_count(text: str) -> bool:
    return bool(COUNT_RE.match(text) or _ZERO_RE.match(text))


def _count(text: str) -> int:
    return 0 if _ZERO_RE.match(text) else parse_count(text)


def _split_meta(line: str) -> list[str]:
    """A metadata line written on one line ("21 · 4 authors · Dec 11, 2024") as separate
    lines: ["21", "4 authors", "·", "Dec 11, 2024"]; any other line as it is. (A leading
    "·" is what is left of "- · ..." once the "-" of no upvotes was read as a bullet.)"""
    if not any(dot in line for dot in MIDDOT):
        return [line]
    parts = [part.strip() for part in re.split("|".join(map(re.escape, MIDDOT)), line)]
    if parts and not parts[0]:
        parts = parts[1:]
    if len(parts) >= 2 and read_date_line(parts[-1]) is not None:
        if all(0 < len(part) <= MAX_ORG_LENGTH for part in parts[:-1]):
            return [*parts[:-1], "·", parts[-1]]
    return split_meta_line(line)


@dataclass(frozen=True)
class _Meta:
    """Where the metadata of a card is among its texts: its first index (the end of the
    abstract), its last, and the indexes of who, the date and an upvote count."""

    end: int
    last: int | None = None
    who: int | None = None
    when: int | None = None
    upvotes: int | None = None


def _is_who(texts: list[str], dates: list[DateLine | None], index: int) -> bool:
    """Can texts[index] be the authors line or organisation of a metadata block?"""
    if not 0 <= index < len(texts) or dates[index] is not None or _is_count(texts[index]):
        return False
    return bool(AUTHORS_RE.match(texts[index])) or len(texts[index]) <= MAX_ORG_LENGTH


def _with_upvotes(
    texts: list[str], start: int, last: int, who: int | None, when: int | None
) -> _Meta:
    """The metadata from `start` to `last`, and the count right before it (upvotes)."""
    upvotes = start - 1 if start > 0 and _is_count(texts[start - 1]) else None
    return _Meta(start if upvotes is None else upvotes, last, who, when, upvotes)


def _meta_at_dot(texts: list[str], dates: list[DateLine | None], dots: list[int]) -> _Meta:
    """The metadata hangs on the separator: "who · date", or "date · N authors"."""
    count = len(texts)

    def dated(index: int) -> bool:
        return 0 <= index < count and dates[index] is not None

    mid = next((i for i in dots if dated(i + 1)), None)
    if mid is None:
        mid = next((i for i in dots if dated(i - 1)), dots[0])
    if dated(mid + 1):
        who = mid - 1 if _is_who(texts, dates, mid - 1) else None
        return _with_upvotes(texts, mid if who is None else who, mid + 1, who, mid + 1)
    if dated(mid - 1):  # "Published on May 29 · 7 authors"
        who = mid + 1 if mid + 1 < count and AUTHORS_RE.match(texts[mid + 1]) else None
        return _with_upvotes(texts, mid - 1, mid if who is None else who, who, mid - 1)
    who = mid - 1 if _is_who(texts, dates, mid - 1) else None
    return _with_upvotes(texts, mid if who is None else who, mid, who, None)


def _find_meta(texts: list[str], dates: list[DateLine | None]) -> _Meta:
    dots = [i for i, text in enumerate(texts) if text in MIDDOT]
    if dots:
        return _meta_at_dot(texts, dates, dots)
    # No separator: an authors line or a date line starts the metadata, if any.
    count = len(texts)
    marks = [i for i, text in enumerate(texts) if AUTHORS_RE.match(text) or dates[i]]
    if not marks:
        end = count
        while end > 0 and _is_count(texts[end - 1]):
            end -= 1  # trailing counts: upvotes, then maybe comments
        return _Meta(end, upvotes=end if end < count else None)
    first = marks[0]
    if AUTHORS_RE.match(texts[first]):
        when = first + 1 if first + 1 < count and dates[first + 1] is not None else None
        return _with_upvotes(texts, first, first if when is None else when, first, when)
    return _with_upvotes(texts, first, first, None, first)


def _fields(content: list[tuple[str, int]]) -> _Fields:
    """Split the text of one card into abstract, upvotes, who and date. The abstract is
    the text before the metadata, or when there is none, the block right after it."""
    pairs = [(part, block) for text, block in content for part in _split_meta(text)]
    texts = [text for text, _ in pairs]
    dates = [read_date_line(text) for text in texts]
    meta = _find_meta(texts, dates)
    abstract = fold(" ".join(text for text in texts[: meta.end] if not is_chrome(text)))
    last = meta.last
    if not abstract and last is not None and last + 1 < len(pairs):
        block = pairs[last + 1][1]
        after = [text for text, number in pairs[last + 1 :] if number == block]
        abstract = fold(" ".join(text for text in after if not is_chrome(text)))
    when = dates[meta.when] if meta.when is not None else None
    upvotes = 0
    if meta.upvotes is not None:
        upvotes = _count(texts[meta.upvotes])
    elif when is not None and when.upvotes is not None:
        upvotes = when.upvotes
    return _Fields(
        abstract=abstract,
        upvotes=upvotes,
        who=texts[meta.who] if meta.who is not None else None,
        when=when,
        when_text=texts[meta.when] if meta.when is not None else None,
    )


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------


def _url_date(header: Header) -> date | None:
    return next(filter(None, map(page_url_date, header.urls)), None)


def _page_date_from(before: list[Atom], received_at: datetime) -> date | None:
    """The header date line among the text before the first paper."""
    for atom in before:
        for part in split_meta_line(atom.text):
            parsed = read_date_line(part)
            if parsed is None or parsed.upvotes is not None:
                continue
            if month_day_exists(parsed.month, parsed.day):
                return resolve_page_date(parsed, received_at)
    return None


def _is_summary(text: str) -> bool:
    """An AI one-line summary: one sentence, short, not a cut-off abstract."""
    return (
        0 < len(text) <= _MAX_SUMMARY
        and not text.endswith(("…", "..."))
        and not _SENTENCE_END_RE.search(text)
    )


@dataclass(frozen=True)
class _Context:
    name: str
    page_date: date
    trending: bool


def _paper(
    entry: _Entry, sides: dict[str, list[int | str]], context: _Context, warnings: list[str]
) -> Paper | None:
    """The paper of one entry, or None (with a warning) when it has nothing but a title."""
    what = repr(shorten(entry.title))
    where = f"{context.name}:{entry.line}"
    fields = _fields(entry.content)
    arxiv_id = entry.arxiv_id or next((str(v) for v in sides.get(_ARXIV, [])), None)
    has_meta = fields.who is not None or fields.when is not None
    if not fields.abstract and arxiv_id is None and not has_meta:
        warnings.append(f"{where}: skipped entry {what}: title with no abstract")
        return None
    published = None
    if fields.when is not None:
        published = resolve_paper_date(fields.when, context.page_date)
        if published is None:
            warnings.append(
                f"{where}: entry {what}: impossible date {fields.when_text!r}: kept without"
            )
    authors = AUTHORS_RE.match(fields.who) if fields.who else None
    summary = entry.summary_label or (context.trending and _is_summary(fields.abstract))

    def most(kind: str) -> int | None:
        values = [value for value in sides.get(kind, []) if isinstance(value, int)]
        return max(values) if values else None

    def first(kind: str) -> str | None:
        return next((value for value in sides.get(kind, []) if isinstance(value, str)), None)

    upvotes = most(_UPVOTES)
    return Paper(
        key=entry.key,
        title=entry.title,
        abstract=fields.abstract,
        authors_count=int(authors.group(1)) if authors else None,
        organization=(
            BULLET_RE.sub("", fields.who).strip() or None if fields.who and not authors else None
        ),
        published=published,
        upvotes=upvotes if upvotes is not None else fields.upvotes,
        arxiv_id=arxiv_id,
        line=entry.line,
        comments=most(_COMMENTS),
        github_repo=first(_REPO),
        github_stars=most(_STARS),
        project_page=first(_PROJECT),
        ai_summary=fields.abstract if summary and fields.abstract else None,
    )


def parse_markdown(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse a Markdown capture of the page. Raises DumpError when it holds no paper."""
    layout = read_layout(text)
    page = _read_page(layout.blocks)
    header_title = layout.header.title or ""
    trending = (
        page.trending
        or squash(header_title) in _TRENDING_CHROME
        or any(_TRENDING_URL_RE.search(url) for url in layout.header.urls)
    )
    page_date = (
        _url_date(layout.header) or _page_date_from(page.before, received_at) or received_at.date()
    )
    warnings = [
        f"{name}:{line}: left out a line of {length:,} characters "
        "(longer than any title, abstract or metadata line)"
        for line, length in layout.skipped
    ]
    context = _Context(name, page_date, trending)
    papers = [
        paper
        for entry, sides in zip(page.entries, _assign(page), strict=True)
        if (paper := _paper(entry, sides, context, warnings)) is not None
    ]
    if not papers:
        why = "no paper entry found"
        if page.entries:
            why += f" ({len(page.entries)} heading(s) without an abstract skipped)"
        raise DumpError(f"not a dump: {why}; {EXPECTED}", path=name)
    evidence = []
    if any(entry.hf_link for entry in page.entries):
        evidence.append(PAPER_LINKS)
    if page.chrome or is_signature_chrome(header_title):
        evidence.append(PAGE_CHROME)
    if has_metadata_lines(papers):
        evidence.append(METADATA_LINES)
    return Dump(
        name=name,
        page_date=page_date,
        papers=papers,
        warnings=warnings,
        shape=MARKDOWN,
        evidence=tuple(evidence),
    )
