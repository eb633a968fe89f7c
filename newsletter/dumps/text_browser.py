"""Text-browser dumps of the Daily Papers pages: links written as numbered references.

This module owns one shape of dump: what `lynx -dump`, `elinks -dump`, `w3m -dump -o
display_link_number=1` and reference-link text exporters (html2text and the like) make of
the page. Every link is numbered; the numbers point into a list of URLs at the end::

    [19][thumbnail]                           lynx: the mark before the link's text
    [20]- 48                                  upvotes ("[ ] 12", "- 12", a bare count)
 [21]Sparse Mixture-of-Experts Routers Learn   the title (a heading: flush left in lynx,
 to Specialise by Token Frequency              "### " in exporters), maybe wrapped
       We study what the routers of ...        the abstract, hard-wrapped, maybe indented
       Submitted by [22]akhaliq
         * 7 authors                           or an organisation
       ·
       May 28                                  or "Mar 10, 2024", "Published on Mar 10"
       [27]3                                   comments: the link to "...#community"
    References                                 lynx: "  21. https://huggingface.co/papers/ID"
                                               exporters: "[21]: https://..."

Exporters write `[Title text][21]` instead, the link text wrapped over lines, and a long
heading may go on over a second `### ` line: both are joined into one title. The list of
URLs may be cut off (the file truncated): a title whose number has no URL is still read
from the structure (a heading, or a link line followed by an abstract or metadata), and
gets an arXiv id only from a URL that is there: its own (`huggingface.co/papers/<id>`),
else its comments link (`.../papers/<id>#community`) or its "arXiv Page" link.

Wrapped lines are joined with a space. A line ending in a soft hyphen (U+00AD) is a word
split in two: joined without a space, the soft hyphen dropped. A line ending in a hyphen
after a letter or digit is joined without a space, the hyphen kept ("state-of-" +
"the-art"; exporters wrap after hyphens, and text browsers never hyphenate words, so the
hyphen is the text's own), unless the next word is "and", "or", "to" and the like: that
hyphen was left hanging before a space ("high- and low-resource").

The page date: the date in a link to the page itself (`/papers/date/2025-05-30`, not the
Previous / Next links) that matches the header date line, else that header line (`May 30`,
its year from the Previous / Next dates or the day the file was received), else a lone
page-date link, else the day the file was received (Trending and search pages).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from newsletter.dumps.model import (
    METADATA_LINES,
    PAGE_CHROME,
    PAPER_LINKS,
    TEXT_BROWSER,
    Dump,
    Paper,
    fold,
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
    stars_of,
    upvotes_of,
)
from newsletter.errors import DumpError

EXPECTED = (
    "expected a text-browser dump of the Daily Papers page (lynx / w3m -dump, or a "
    "reference-link export): paper titles as numbered links such as '[12]Title' or "
    "'[Title][12]', each followed by its abstract, and the list of link URLs at the end"
)

# ---------------------------------------------------------------------------------------
# The list of link URLs
# ---------------------------------------------------------------------------------------

# "  12. https://...", lynx and elinks; the URL always has a scheme.
_NUMBERED_REF_RE = re.compile(r"^\s{0,6}(\d{1,4})\.\s+<?([A-Za-z][\w+.-]*:[^\s<>]*)>?\s*$")
# "[12]: https://..." (exporters; may be site-relative, may have a title) and
# "[12] https://..." (w3m).
_BRACKET_REF_RE = re.compile(
    r"^\s{0,6}\[(\d{1,4})\](?::\s*<?([^\s<>]+)>?|\s+<?([A-Za-z][\w+.-]*:[^\s<>]*)>?)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*$"
)
_REF_LABEL_RE = re.compile(
    r"^\s*(?:references|links|(?:visible|hidden)\s+links)\s*:?\s*$", re.IGNORECASE
)


def _reference(raw: str) -> tuple[int, str, str] | None:
    """A line of the reference list: its number, URL and style ("numbered" for
    `12. url` and `[12] url`, "definitions" for `[12]: url`)."""
    match = _NUMBERED_REF_RE.match(raw)
    if match:
        return int(match[1]), match[2], "numbered"
    match = _BRACKET_REF_RE.match(raw)
    if match:
        style = "definitions" if match[2] else "numbered"
        return int(match[1]), match[2] or match[3], style
    return None


@dataclass
class _References:
    body: list[tuple[int, str]]  # the other lines: (1-based number, text)
    urls: dict[int, str]  # link number -> URL (the first one listed)
    styles: Counter[str]  # how many lines of each style (see `_reference`)


def _split_references(lines: list[tuple[int, str]], terminated: bool) -> _References:
    """Set the reference list apart from the body. The last line of a file that does not
    end with a newline may be cut in the middle of its URL: its reference is not
    trusted."""
    out = _References([], {}, Counter())
    last = len(lines) - 1
    for index, (number, raw) in enumerate(lines):
        found = _reference(raw)
        if found is not None:
            out.styles[found[2]] += 1
            if terminated or index != last:
                out.urls.setdefault(found[0], found[1])
            continue
        if _REF_LABEL_RE.match(raw):
            continue
        out.body.append((number, raw))
    return out


# ---------------------------------------------------------------------------------------
# Logical lines: link marks, wrapped link texts and headings joined
# ---------------------------------------------------------------------------------------

_HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?\s*$")
_MARK = r"\[(?P<mark>\d{1,4})\]"
_REF = r"(?P<bang>!?)\[(?P<text>[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]\[(?P<ref>\d{1,4})\]"
_OTHER = r"(?P<box>\[[ xX*+-]?\])|\[(?P<image>[^\W\d_][^\[\]]{0,30})\]"
# "[3][23]" is a mark before a link's text in lynx style ("[12][IMG]"), and the link
# "3" (a comment count) in reference style: which one to try first is the document's.
_MARK_FIRST_RE = re.compile(f"{_MARK}|{_REF}|{_OTHER}")
_REF_FIRST_RE = re.compile(f"{_REF}|{_MARK}|{_OTHER}")
_MARK_BEFORE_TEXT_RE = re.compile(r"\[\d{1,4}\][^\W\d_]")
_REF_AFTER_TEXT_RE = re.compile(r"[^\W\d_]\]\[\d{1,4}\]")
_ESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")
_LIST_MARK_RE = re.compile(r"^(?:[*+•]\s+)+")
_NUMBERED_ITEM_RE = re.compile(r"^\d{1,3}[.)]\s+")
# What a text browser writes for a picture, whatever its alt text says.
_IMAGE_WORDS = frozenset(
    {"img", "image", "inline", "link", "thumbnail", "usemap", "button", "bild", "imagen"}
    | {"immagine", "afbeelding", "obraz", "изображение", "图片", "图像", "画像", "avatar", "logo"}
)
_ESCAPED_OPEN, _ESCAPED_CLOSE = "\ue000", "\ue001"
# "high- and low-resource": a hyphen left hanging before these words has a space after it.
_SUSPENDING_WORDS = frozenset({"and", "or", "nor", "to", "vs", "versus", "as", "und", "et"})
_MAX_WRAPPED = 8  # a link text wrapped over more lines than this is not one link


@dataclass(frozen=True)
class _Link:
    number: int
    text: str  # the link's text, one line ("" for a picture link)


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based line of the file where it starts
    para: int  # index of its paragraph (a run of non-blank lines)
    indent: int
    level: int  # heading level ("###" is 3), 0 for none
    text: str  # the plain text: link marks, pictures and escapes gone, one line
    links: tuple[_Link, ...]
    bare: str  # the text outside any link
    lead: bool  # the line starts with a link (after list marks)
    soft: bool  # the line ends with a soft hyphen (a word split over lines)
    tail: int  # the length of its last line in the file (to tell wrapped lines)


def _join(left: str, right: str) -> str:
    """Two wrapped pieces of text as one (see the module docstring for hyphens)."""
    if not left or not right:
        return left or right
    if left.endswith("\u00ad"):
        return left[:-1] + right
    if left.endswith("-") and left[-2:-1].isalnum() and right[0].isalnum():
        suspended = right.split(maxsplit=1)[0].casefold() in _SUSPENDING_WORDS
        return f"{left} {right}" if suspended else left + right
    return f"{left} {right}"


def _opens_link(text: str) -> bool:
    """Is a bracket left open at the end of this text (a link text wrapped on)?"""
    text = text.replace("\\[", "").replace("\\]", "")
    return text.count("[") > text.count("]")


def _heading(raw: str) -> tuple[int, str]:
    match = _HEADING_RE.match(raw)
    return (len(match[1]), match[2]) if match else (0, raw.strip())


def _continues_heading(level: int, text: str, raw: str) -> bool:
    """Is `raw` a second line of the heading `text` ("### Continues Here][14]")? It must
    be a heading of the same level that does not start a link of its own."""
    next_level, next_text = _heading(raw)
    if next_level != level or not next_text or not text or text[-1] in ".!?:":
        return False
    starts_link = next_text.startswith("[") and _MARK_FIRST_RE.match(next_text) is not None
    return not (starts_link and _MARK_FIRST_RE.search(text) is not None)


def _reference_style(body: list[tuple[int, str]], listed: Counter[str]) -> bool:
    """Is this a reference-link export (`[Text][12]`) rather than a text browser's dump
    (`[12]Text`)? Its reference list says (`[12]: url`), else its links do."""
    if listed:
        return listed["definitions"] > listed["numbered"]
    marks = refs = 0
    for _, raw in body:
        marks += len(_MARK_BEFORE_TEXT_RE.findall(raw))
        refs += len(_REF_AFTER_TEXT_RE.findall(raw))
    return refs > marks


def _logical_lines(body: list[tuple[int, str]], tokens: re.Pattern[str]) -> list[_Line]:
    """The non-blank lines of the body, a link text wrapped over several lines and a
    heading continued on the next `#` line each joined into one line. `tokens` is the
    document's link syntax (see `_reference_style`)."""
    out: list[_Line] = []
    para = 0
    blank = True
    index = 0
    while index < len(body):
        number, raw = body[index]
        raw = raw.expandtabs(8).rstrip()
        index += 1
        tail = len(raw)
        if not raw.strip():
            blank = True
            continue
        if blank:
            para += 1
            blank = False
        level, text = _heading(raw)
        stop = min(len(body), index + _MAX_WRAPPED)
        while index < stop and body[index][1].strip():
            following = body[index][1]
            if _opens_link(text):
                text = _join(text, _heading(following)[1] if level else following.strip())
            elif level and _continues_heading(level, text, following):
                text = _join(text, _heading(following)[1])
            else:
                break
            tail = len(following.expandtabs(8).rstrip())
            index += 1
        text = _LIST_MARK_RE.sub("", text)
        unnumbered = _NUMBERED_ITEM_RE.sub("", text)  # "1. [5]Title" in a numbered list
        if unnumbered.startswith("["):
            text = unnumbered
        plain, links, bare, lead = _tokenise(text, tokens)
        indent = len(raw) - len(raw.lstrip(" "))
        soft = text.endswith("\u00ad")
        out.append(_Line(number, para, indent, level, plain, links, bare, lead, soft, tail))
    return out


def _tokenise(text: str, tokens: re.Pattern[str]) -> tuple[str, tuple[_Link, ...], str, bool]:
    """The plain text of a line, its links, the text outside them, and whether the line
    starts with a link. `[12]Text` (a mark before the text: the link's text runs to the
    next link) and `[Text][12]` are links; `[IMG]` and the like are pictures, dropped;
    `[ ]` (a checkbox) is kept."""
    if "[" not in text or "]" not in text:
        plain = _fold(text)
        return plain, (), plain, False
    text = text.replace("\\[", _ESCAPED_OPEN).replace("\\]", _ESCAPED_CLOSE)
    pieces: list[str] = []
    outside: list[str] = []
    links: list[tuple[int, list[str]]] = []
    current = outside  # where text goes: outside links, or into the link a mark opened
    lead: bool | None = None
    position = 0
    mark_end = -1
    for match in tokens.finditer(text):
        start = match.start()
        if start > position:
            pieces.append(text[position:start])
            current.append(text[position:start])
        kind = match.lastgroup
        if lead is None and kind in ("mark", "ref"):
            lead = not "".join(outside).strip()
        if kind == "mark":
            current = []
            links.append((int(match["mark"]), current))
            mark_end = match.end()
        elif kind == "ref":
            inner = match["text"]
            if match["bang"]:
                inner = ""
            elif "[" in inner:
                inner = _tokenise(inner, tokens)[0]
            pieces.append(inner)
            links.append((int(match["ref"]), [inner]))
            current = outside
        elif kind == "box" or not _is_picture(match["image"], start == mark_end):
            pieces.append(match.group())
            current.append(match.group())
        position = match.end()
    pieces.append(text[position:])
    current.append(text[position:])
    found = tuple(_Link(number, _fold("".join(parts)) if parts else "") for number, parts in links)
    return _fold("".join(pieces)), found, _fold("".join(outside)), bool(lead)


def _is_picture(word: str, after_mark: bool) -> bool:
    """`[IMG]`, `[thumbnail]`, `[Bild]`: a picture; any bracketed word right after a
    link mark (`[19][paper thumbnail]`) is the picture's alt text."""
    return after_mark or word.strip().casefold() in _IMAGE_WORDS


def _fold(text: str) -> str:
    """The text as one line, backslash escapes undone ("\\[" is "[")."""
    if not text:
        return text
    if "\\" in text:
        text = _ESCAPE_RE.sub(r"\1", text)
    if _ESCAPED_OPEN in text or _ESCAPED_CLOSE in text:
        text = text.replace(_ESCAPED_OPEN, "[").replace(_ESCAPED_CLOSE, "]")
    return fold(text)


# ---------------------------------------------------------------------------------------
# What each line is
# ---------------------------------------------------------------------------------------

_TEXT, _NAV, _SKIP, _CHROME, _AI = "text", "nav", "skip", "chrome", "ai summary label"
_UPVOTES, _COMMENTS, _COUNT, _STARS = "upvotes", "comments", "count", "stars"
_AUTHORS, _DATE, _DOT = "authors", "date", "dot"
_META = frozenset({_AUTHORS, _DATE, _DOT})

_AI_LABEL_RE = re.compile(r"^ai[- ](?:generated[- ])?summary\b\s*:?\s*(?P<rest>.*)$", re.I)
_COMMENTS_RE = re.compile(r"^(?P<count>\S+)\s+comments?$", re.IGNORECASE)
_STAR_WORDS_RE = re.compile(r"github|stars?|[★⭐☆]", re.IGNORECASE)
_GITHUB_RE = re.compile(r"^(?:https?://)?(?:www\.)?github\.com/([\w.-]+/[\w.-]+)", re.I)
_MIDDOT_SPLIT_RE = re.compile(r"\s*[·⋅∙]\s*")
_HAS_WORD_RE = re.compile(r"[^\W\d_]")
_NAV_SEPARATORS = " |·⋅∙-–—/•*,"
_MAX_NAV_TEXT = 60  # a link text longer than this is prose, not a menu item
_MAX_CHROME = 80  # a longer line is not one of the page's menu or header lines
_MAX_META = 80  # nor a date, an authors line or a count
_MAX_ROW_LINKS = 12  # a row of a card's links ("GitHub ★ 2.3k  arXiv Page") is short


@dataclass(frozen=True)
class _Item:
    """One line of an entry (or one part of a metadata line) and what it is."""

    line: _Line
    kind: str
    text: str
    count: int | None = None
    when: DateLine | None = None
    url: str | None = None  # the URL of the line's only link


def _items(line: _Line, urls: dict[int, str]) -> list[_Item]:
    """What a line is: one item, or several for a metadata line ("7 authors · May 28")."""
    url = urls.get(line.links[0].number) if len(line.links) == 1 else None
    if url is None and len(line.links) <= _MAX_ROW_LINKS and _is_nav(line):
        # A row of links ("GitHub ★ 2.3k  arXiv Page"): the GitHub one may give stars.
        for link in line.links:
            stars = _counted(line, link.text, urls.get(link.number))
            if stars is not None and stars.kind == _STARS:
                return [stars]
    parts = _meta_parts(line.text)
    if parts is None:
        return [_item(line, line.text, url)]
    return [_item(line, part, url) for part in parts]


def _is_meta_text(text: str) -> bool:
    return bool(
        AUTHORS_RE.match(text)
        or read_date_line(text) is not None
        or upvotes_of(text) is not None
        or stars_of(text) is not None
    )


def _meta_parts(text: str) -> list[str] | None:
    """A metadata line split at its `·` separators, or None when it is not one: every
    part is an authors line, a date, a count, or one short organisation name."""
    if text in MIDDOT or not any(dot in text for dot in MIDDOT):
        return None
    parts = _MIDDOT_SPLIT_RE.split(text)
    others = [part for part in parts if part and not _is_meta_text(part)]
    meta = sum(1 for part in parts if part) - len(others)
    if not meta or len(others) > 1 or any(len(part) > MAX_ORG_LENGTH for part in others):
        return None
    out: list[str] = []
    for index, part in enumerate(parts):
        if index:
            out.append("·")
        if part:
            out.append(part)
    return out


def _item(line: _Line, text: str, url: str | None) -> _Item:
    if text in MIDDOT:
        return _Item(line, _DOT, text)
    ai = _AI_LABEL_RE.match(text)
    if ai:
        return _Item(line, _AI, ai["rest"])
    if SUBMITTED_BY_RE.match(text):
        return _Item(line, _SKIP, text)
    if len(text) <= _MAX_META:
        found = _meta_item(line, text, url)
        if found is not None:
            return found
    if not any(char.isalnum() for char in text):
        return _Item(line, _SKIP, text)  # a picture's place, a separator
    return _Item(line, _NAV if _is_nav(line) else _TEXT, text, url=url)


def _meta_item(line: _Line, text: str, url: str | None) -> _Item | None:
    """A short line of the page's own: chrome, an authors line, a date, a count."""
    if _is_chrome(text):
        return _Item(line, _CHROME, text)
    authors = AUTHORS_RE.match(text)
    if authors:
        return _Item(line, _AUTHORS, text, int(authors[1]))
    when = read_date_line(text)
    if when is not None:
        return _Item(line, _DATE, text, when.upvotes, when)
    return _counted(line, text, url)


def _counted(line: _Line, text: str, url: str | None) -> _Item | None:
    """A count line: upvotes, comments or GitHub stars, told apart by its words or its
    link (`#community` for comments, the log-in page for upvotes, GitHub for stars);
    `_COUNT` when nothing tells."""
    stars = stars_of(text)
    github = _GITHUB_RE.match(url or "")
    if stars is None and github and COUNT_RE.match(_STAR_WORDS_RE.sub("", text).strip()):
        stars = parse_count(_STAR_WORDS_RE.sub("", text).strip())
    if stars is not None:
        return _Item(line, _STARS, text, stars, url=url)
    comments = _COMMENTS_RE.match(text)
    if comments and COUNT_RE.match(comments["count"]):
        return _Item(line, _COMMENTS, text, parse_count(comments["count"]), url=url)
    count = upvotes_of(text)
    if count is None:
        return None
    if url and ("#community" in url or "/discussions" in url):
        return _Item(line, _COMMENTS, text, count, url=url)
    if not COUNT_RE.match(text) or (url and ("/login" in url or "upvote" in url)):
        return _Item(line, _UPVOTES, text, count, url=url)
    return _Item(line, _COUNT, text, count, url=url)


def _is_chrome(text: str) -> bool:
    return len(text) <= _MAX_CHROME and is_chrome(text)


def _is_nav(line: _Line) -> bool:
    """A line of links only, each short: a menu, a footer row, a name."""
    return (
        bool(line.links)
        and not line.bare.strip(_NAV_SEPARATORS)
        and all(len(link.text) <= _MAX_NAV_TEXT for link in line.links)
    )


# ---------------------------------------------------------------------------------------
# Titles and entries
# ---------------------------------------------------------------------------------------

_PAPER, _MAYBE = "paper", "maybe"  # a title link to a paper page; one whose URL is missing
# "... most of it." and "... by 2.8x." end sentences, not titles ("vs.", "et al." do not).
_SENTENCE_RE = re.compile(r"\b(?!(?:vs|al|etc|Inc|Ltd)\.)\w{2,}\.(?=\s|$)")


@dataclass(frozen=True)
class _Title:
    text: str
    line: int  # 1-based line of the file
    url: str | None
    strength: str  # _PAPER or _MAYBE
    first: int  # index of its first line in the logical lines
    last: int  # index of its last line


@dataclass
class _Entry:
    title: _Title
    items: list[_Item] = field(default_factory=list)
    started: bool = False  # it has shown text or metadata (more than its title)

    def add(self, items: list[_Item]) -> None:
        self.items.extend(items)
        self.started = self.started or any(
            item.kind == _TEXT or item.kind in _META for item in items
        )


def _title_link(line: _Line, urls: dict[int, str]) -> tuple[_Link, str] | None:
    """The link that makes this line a title, if it can be one, and how sure that is:
    a line that is one link and nothing else, whose text reads like a title, pointing at
    a paper's page on Hugging Face (`_PAPER`; an arXiv link is the card's "arXiv Page"
    link), or at no known URL (`_MAYBE`, the list was cut off)."""
    if len(line.links) != 1 or not line.lead or line.bare:
        return None
    link = line.links[0]
    text = link.text
    if (
        not _HAS_WORD_RE.search(text)
        or len(text) > MAX_TITLE_LENGTH
        or _is_chrome(text)
        or _is_meta_text(text)
        or _AI_LABEL_RE.match(text)
    ):
        return None
    url = urls.get(link.number)
    if url is None:
        return link, _MAYBE
    if "#" not in url and hf_paper_id(url):
        return link, _PAPER
    return None


@dataclass(frozen=True)
class _Layout:
    """How the dump sets its text: the indentation of most text lines (3 in lynx, 0 in
    w3m and exporters), and the width it wraps lines at."""

    indent: int
    width: int

    @classmethod
    def of(cls, lines: list[_Line]) -> _Layout:
        text = [line for line in lines if len(line.text) >= 40]
        indents = Counter(line.indent for line in text if not line.links)
        tails = sorted(line.tail for line in text)
        return cls(
            indent=indents.most_common(1)[0][0] if indents else 0,
            width=tails[(len(tails) - 1) * 98 // 100] if tails else 80,
        )

    def wrapped(self, line: _Line, following: _Line) -> bool:
        """Was `line` broken there because the next word did not fit on it?"""
        word = following.text.split(maxsplit=1)[0] if following.text else ""
        return line.tail + 1 + len(word) > self.width


def _continuation(lines: list[_Line], index: int, layout: _Layout) -> int:
    """Index of the last line of the title starting at `index`: a title wrapped onto
    lines of the same indentation and paragraph, with no links, at most a title's length.
    All of them when the title is a heading set off from the text (outdented, as lynx
    writes headings); else the lines it was wrapped onto (each line before full to the
    wrap width). Never lines that read as sentences (a summary under a title that
    happened to fill its line)."""
    first = lines[index]
    last = index
    size = len(first.text)
    while (
        last + 1 < len(lines)
        and size <= MAX_TITLE_LENGTH
        and lines[last + 1].para == first.para
        and lines[last + 1].indent == first.indent
        and not lines[last + 1].links
        and not _is_meta_text(lines[last + 1].text)
    ):
        last += 1
        size += 1 + len(lines[last].text)
    if size > MAX_TITLE_LENGTH:
        last -= 1  # the paragraph goes on past a title's length
    end = index
    if first.indent < layout.indent:
        end = last
    else:
        while end < last and layout.wrapped(lines[end], lines[end + 1]):
            end += 1
    if any(_SENTENCE_RE.search(line.text) for line in lines[index + 1 : end + 1]):
        return index
    return end


@dataclass(frozen=True)
class _Document:
    """A dump's lines, its link URLs and layout, and what each line is (worked out once:
    entries are found more than once when would-be titles are dropped)."""

    lines: list[_Line]
    urls: dict[int, str]
    layout: _Layout
    items: list[list[_Item]]  # what each line is, as a line of an entry
    links: list[tuple[_Link, str] | None]  # each line's title link (see `_title_link`)

    @classmethod
    def of(cls, lines: list[_Line], urls: dict[int, str]) -> _Document:
        return cls(
            lines,
            urls,
            _Layout.of(lines),
            [_items(line, urls) for line in lines],
            [_title_link(line, urls) for line in lines],
        )


def _title_at(doc: _Document, index: int, current: _Entry | None) -> _Title | None:
    """The title starting at line `index`, if one does. A link to the paper the current
    entry is about, or a link whose URL is missing, right under the title is part of the
    entry (an abstract written as a link); a link whose URL is missing is a title only
    when it stands as one: a heading, an outdented line, or a line followed by text or
    metadata."""
    found = doc.links[index]
    if found is None:
        return None
    link, strength = found
    url = doc.urls.get(link.number)
    lines = doc.lines
    if current is not None and not current.started:
        same = url is not None and arxiv_id_of(url) == arxiv_id_of(current.title.url or "")
        if same or strength == _MAYBE:
            return None
    last = _continuation(lines, index, doc.layout)
    line = lines[index]
    if strength == _MAYBE and not (line.level or line.indent < doc.layout.indent):
        after = lines[last + 1] if last + 1 < len(lines) else None
        if after is None or not _reads_on(after):
            return None
    text = link.text
    for extra in lines[index + 1 : last + 1]:
        text = _join(text, extra.text)
    return _Title(text, line.number, url, strength, index, last)


def _reads_on(line: _Line) -> bool:
    """Does this line, after a title, start the paper's text or metadata?"""
    return bool(
        AUTHORS_RE.match(line.text)
        or read_date_line(line.text)
        or (len(line.text) >= 40 and not _is_nav(line))
    )


def _entries(doc: _Document, rejected: set[int]) -> tuple[list[_Item], list[_Entry]]:
    """The items before the first title, and the entries: each title with the items of
    the lines up to the next title."""
    head: list[_Item] = []
    entries: list[_Entry] = []
    index = 0
    while index < len(doc.lines):
        current = entries[-1] if entries else None
        title = None
        if index not in rejected:
            title = _title_at(doc, index, current)
        if title is not None:
            entries.append(_Entry(title))
            index = title.last + 1
            continue
        if current is None:
            head.extend(doc.items[index])
        else:
            current.add(doc.items[index])
        index += 1
    return head, entries


def _holds_a_paper(entry: _Entry) -> bool:
    """Is there enough under a title whose URL is missing to call it a paper: an
    abstract, or an authors (or organisation) and date line?"""
    text = sum(len(item.text) for item in entry.items if item.kind == _TEXT)
    kinds = {item.kind for item in entry.items}
    return text >= MIN_ABSTRACT_LENGTH or (_DATE in kinds and bool(kinds & {_AUTHORS, _DOT}))


def _find_entries(lines: list[_Line], urls: dict[int, str]) -> tuple[list[_Item], list[_Entry]]:
    """The entries, without the would-be titles (URL missing) that hold no paper."""
    doc = _Document.of(lines, urls)
    rejected: set[int] = set()
    for _ in range(3):
        head, entries = _entries(doc, rejected)
        more = {
            entry.title.first
            for entry in entries
            if entry.title.strength == _MAYBE and not _holds_a_paper(entry)
        }
        if not more:
            break
        rejected |= more
    return head, entries


# ---------------------------------------------------------------------------------------
# One paper from one entry
# ---------------------------------------------------------------------------------------


@dataclass
class _Carry:
    """Counts a card shows before its title, carried from one entry to the next (the page
    puts the upvote button, or the stars, above each title)."""

    upvotes: int | None = None
    stars: int | None = None
    repo: str | None = None


@dataclass
class _Fields:
    abstract: str = ""
    ai_summary: str | None = None
    authors_count: int | None = None
    organization: str | None = None
    when: _Item | None = None
    upvotes: int | None = None
    comments: int | None = None
    stars: int | None = None
    repo: str | None = None
    project_page: str | None = None
    paper_url: str | None = None  # a paper URL of the entry (its comments link)


def _organisations(items: list[_Item]) -> set[int]:
    """Index of the item that names the organisation, if one does: a name on its own
    line next to a `·` (before it, or after it when the date comes first), or before a
    date. The first `·` or date with a line of text or links beside it decides."""
    for index, item in enumerate(items):
        if item.kind not in (_DOT, _DATE):
            continue
        sides = (-1, 1) if item.kind == _DOT else (-1,)
        beside = [found for step in sides if (found := _beside(items, index, step)) is not None]
        names = [found for found in beside if _names(items, found, index)]
        if names:
            return {names[0]}
        if beside:
            break
    return set()


def _beside(items: list[_Item], index: int, step: int) -> int | None:
    """The index of the nearest line of text or links before (-1) or after (1) `index`,
    past pictures and the like; None when another kind of line comes first."""
    index += step
    while 0 <= index < len(items) and items[index].kind == _SKIP:
        index += step
    if 0 <= index < len(items) and items[index].kind in (_TEXT, _NAV):
        return index
    return None


def _names(items: list[_Item], index: int, separator: int) -> bool:
    """Is this line (next to the `·` or date at `separator`) a name on its own line, not
    a line of the abstract?"""
    who = items[index]
    if len(who.text) > MAX_ORG_LENGTH:
        return False
    if who.kind == _NAV or who.line is items[separator].line:
        return True
    step = -1 if index < separator else 1
    neighbour = index + step
    return not (
        0 <= neighbour < len(items)
        and items[neighbour].kind == _TEXT
        and items[neighbour].line.para == who.line.para
    )


def _runs(items: list[_Item], orgs: set[int]) -> tuple[list[_Item], list[_Item]]:
    """The abstract's lines and the AI summary's lines: the first run of text lines, and
    the paragraph after an "AI-generated summary" label. Any other line ends a run."""
    abstract: list[_Item] = []
    summary: list[_Item] = []
    target: list[_Item] | None = None
    for index, item in enumerate(items):
        if item.kind == _SKIP:
            continue
        if item.kind == _AI and not summary:
            target = summary
            if item.text:
                summary.append(item)
            continue
        if item.kind == _TEXT and index not in orgs:
            if target is summary and summary and summary[-1].line.para != item.line.para:
                target = None  # the AI summary is one paragraph
            if target is None and not abstract:
                target = abstract
            if target is not None:
                target.append(item)
            continue
        target = None
    return abstract, summary


def _joined(items: list[_Item]) -> str:
    text = ""
    for position, item in enumerate(items):
        if position and items[position - 1].line.soft:
            text += item.text
        else:
            text = _join(text, item.text)
    return text


def _github(url: str | None) -> str | None:
    match = _GITHUB_RE.match(url or "")
    return f"https://github.com/{match[1].removesuffix('.git')}" if match else None


def _carried(items: list[_Item]) -> _Carry:
    """The counts above the first title (the first card's upvotes, or stars)."""
    carry = _Carry()
    for item in items:
        if item.kind in (_UPVOTES, _COUNT):
            carry.upvotes = item.count
        elif item.kind == _STARS:
            carry.stars, carry.repo = item.count, _github(item.url)
    return carry


def _fields(entry: _Entry, carry: _Carry, leading: tuple[bool, bool]) -> tuple[_Fields, _Carry]:
    """The fields of one entry, and the counts its lines carry to the next entry."""
    lead_upvotes, lead_stars = leading
    orgs = _organisations(entry.items)
    abstract, summary = _runs(entry.items, orgs)
    out = _Fields(_joined(abstract), _joined(summary) or None)
    out.upvotes, out.stars, out.repo = carry.upvotes, carry.stars, carry.repo
    ahead = _Carry()
    for index, item in enumerate(entry.items):
        kind = item.kind
        if index in orgs:
            out.organization = out.organization or BULLET_RE.sub("", item.text) or None
        elif kind == _AUTHORS and out.authors_count is None:
            out.authors_count = item.count
        elif kind == _DATE and out.when is None:
            out.when = item
            if item.count is not None and not lead_upvotes:
                out.upvotes = item.count
        elif kind == _COMMENTS and out.comments is None:
            out.comments = item.count
            out.paper_url = item.url if item.url and hf_paper_id(item.url) else out.paper_url
        elif kind == _UPVOTES or (kind == _COUNT and lead_upvotes):
            if not lead_upvotes:
                out.upvotes = item.count if out.upvotes is None else out.upvotes
            elif kind == _COUNT and out.comments is None:
                out.comments = item.count
            else:
                ahead.upvotes = item.count
        elif kind == _COUNT:
            if out.upvotes is None:
                out.upvotes = item.count
            elif out.comments is None:
                out.comments = item.count
        elif kind == _STARS and lead_stars:
            ahead.stars, ahead.repo = item.count, _github(item.url)
        elif kind == _STARS and out.stars is None:
            out.stars, out.repo = item.count, out.repo or _github(item.url)
        elif kind == _NAV and item.url:
            out.repo = out.repo or _github(item.url)
            out.paper_url = out.paper_url or (item.url if arxiv_id_of(item.url) else None)
            if "project page" in item.text.casefold():
                out.project_page = out.project_page or item.url
    return out, ahead


# ---------------------------------------------------------------------------------------
# The page date
# ---------------------------------------------------------------------------------------

_PREV_NEXT_RE = re.compile(r"^\W*(?:previous|prev|next|older|newer)\b|^\s*[«‹←→›»]", re.I)
_PREV_NEXT_WORDS_RE = re.compile(r"\b(?:previous|prev|next)\b|[«‹←→›»]", re.IGNORECASE)


def _header_date(head: list[_Line]) -> DateLine | None:
    """The page's header date line (`May 30`, maybe between Previous and Next)."""
    for line in head:
        text = fold(_PREV_NEXT_WORDS_RE.sub(" ", line.text))
        found = read_date_line(text)
        if found is not None and found.upvotes is None and month_day_exists(found.month, found.day):
            return found
    return None


def _page_date(
    head: list[_Line], lines: list[_Line], urls: dict[int, str], received_at: datetime
) -> date:
    """The day the page lists (see the module docstring)."""
    around: list[date] = []  # the Previous / Next days
    shown: set[int] = set()
    for line in lines:
        for link in line.links:
            shown.add(link.number)
            if link.text and _PREV_NEXT_RE.match(link.text):
                day = page_url_date(urls.get(link.number, ""))
                if day is not None:
                    around.append(day)
    own = [
        day
        for day in (
            *(page_url_date(urls.get(link.number, "")) for line in head for link in line.links),
            *(page_url_date(line.text) for line in head),
            *(page_url_date(url) for number, url in urls.items() if number not in shown),
        )
        if day is not None and day not in around
    ]
    header = _header_date(head)
    if header is None:
        return own[0] if own else received_at.date()
    for day in own:
        if (day.month, day.day) == (header.month, header.day):
            return day
    nearest = _nearest(header, min(around)) if header.year is None and around else None
    return nearest or resolve_page_date(header, received_at) or received_at.date()


def _nearest(header: DateLine, near: date) -> date | None:
    """The date with the header's month and day nearest to `near` (a Previous day)."""
    options = []
    for year in (near.year - 1, near.year, near.year + 1):
        try:
            options.append(date(year, header.month, header.day))
        except ValueError:
            continue
    return min(options, key=lambda day: abs((day - near).days), default=None)


# ---------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------


def _paper(
    entry: _Entry, fields: _Fields, page_date: date, warnings: list[str], name: str
) -> Paper:
    title = entry.title
    published = None
    if fields.when is not None and fields.when.when is not None:
        published = resolve_paper_date(fields.when.when, page_date)
        if published is None:
            warnings.append(
                f"{name}:{title.line}: entry {shorten(title.text)!r}: impossible date "
                f"{fields.when.text!r} on line {fields.when.line.number}: kept without"
            )
    arxiv_id = arxiv_id_of(title.url or "") or arxiv_id_of(fields.paper_url or "")
    return Paper(
        key=paper_key(title.text),
        title=title.text,
        abstract=fields.abstract or fields.ai_summary or "",
        authors_count=fields.authors_count,
        organization=fields.organization,
        published=published,
        upvotes=fields.upvotes or 0,
        arxiv_id=arxiv_id,
        line=title.line,
        comments=fields.comments,
        github_repo=fields.repo,
        github_stars=fields.stars,
        project_page=fields.project_page,
        ai_summary=fields.ai_summary,
    )


def _papers(
    head: list[_Item], entries: list[_Entry], page_date: date, name: str
) -> tuple[list[Paper], list[str]]:
    leading = (
        any(item.kind in (_UPVOTES, _COUNT) for item in head),
        any(item.kind == _STARS for item in head),
    )
    carry = _carried(head)
    papers: list[Paper] = []
    warnings: list[str] = []
    for entry in entries:
        fields, carry = _fields(entry, carry, leading)
        has_meta = fields.when is not None or fields.authors_count is not None
        if not (fields.abstract or fields.ai_summary) and not has_meta:
            if entry.title.strength != _PAPER:
                continue
        if not paper_key(entry.title.text):
            warnings.append(
                f"{name}:{entry.title.line}: skipped entry {shorten(entry.title.text)!r}: "
                "the title has no letter or digit to identify the paper"
            )
            continue
        papers.append(_paper(entry, fields, page_date, warnings, name))
    return papers, warnings


def parse_text_browser(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse a text-browser dump (see the module docstring). `received_at` (the file's
    modification time) is the page date of a capture without one, and fixes the year of
    a header date written without one. Raises DumpError when the text holds no paper."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    numbered = list(enumerate(text.split("\n"), 1))
    if numbered and not numbered[-1][1]:
        numbered.pop()
    references = _split_references(numbered, terminated=text.endswith("\n"))
    urls = references.urls
    style = _reference_style(references.body, references.styles)
    lines = _logical_lines(references.body, _REF_FIRST_RE if style else _MARK_FIRST_RE)
    head_items, entries = _find_entries(lines, urls)
    first = entries[0].title.first if entries else len(lines)
    page_date = _page_date(lines[:first], lines, urls, received_at)
    papers, warnings = _papers(head_items, entries, page_date, name)
    if not papers:
        marks = sum(len(line.links) for line in lines)
        raise DumpError(
            f"not a dump: no paper entry found among {marks} numbered links "
            f"({len(urls)} with a URL); {EXPECTED}",
            path=name,
        )
    evidence = []
    if any(hf_paper_id(entry.title.url or "") for entry in entries):
        evidence.append(PAPER_LINKS)
    if any(len(line.text) <= _MAX_CHROME and is_signature_chrome(line.text) for line in lines):
        evidence.append(PAGE_CHROME)
    # "7 authors" and a date; an organisation and a date is how a news page signs its
    # stories too ("By Dana Whitfield · Mar 11"), so it is no evidence here.
    if any(p.published and p.authors_count for p in papers):
        evidence.append(METADATA_LINES)
    return Dump(
        name=name,
        page_date=page_date,
        papers=papers,
        warnings=warnings,
        shape=TEXT_BROWSER,
        evidence=tuple(evidence),
    )
