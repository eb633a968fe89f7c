"""The block and inline layer of the Markdown reader: Markdown text to blocks of atoms.

This module owns what the Markdown syntax of a capture means, on markdown-it-py's
CommonMark tokenizer (with tables and strikethrough): the header that reader services
and crawlers put above the page (YAML front matter; `Title:` / `URL Source:` /
`Markdown Content:`), and the page's blocks in order (headings, paragraphs, list items,
table cells, rules), each cut into atoms: runs of text between line breaks and link
boundaries, and links with their text and target. `May 29[6](/papers/ID#community)` is
two atoms, the text "May 29" and the link "6". Code spans are text that is never a
link; code blocks, fences and HTML blocks are not part of the page; images, HTML tags
and emphasis marks are dropped; backslash escapes and entities are decoded; a hard
break (`\\` at a line end) is a line break like any other. What the atoms mean (titles,
counts, dates) is for `markdown.py`.

Linear in the input: markdown-it-py's inline parser is linear but slow on dense markup
(about 10 microseconds a character), so an inline run longer than `MAX_INLINE` is
parsed line by line, and a single line longer than that, which no title, abstract or
metadata line is, is left out and reported in `Layout.skipped`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.dumps.model import clean_text

HEADING = "heading"
PARAGRAPH = "paragraph"
BREAK = "break"  # a thematic break (`---`, `* * *`): the end of a card

MAX_INLINE = 20_000  # ten times the longest abstract arXiv takes


class _Parser(MarkdownIt):
    """CommonMark that keeps link targets as written: they are read for paper ids and
    repositories, never rendered, so percent-encoding them (a third of the time spent
    on a link-heavy capture) is skipped."""

    def normalizeLink(self, url: str) -> str:
        return url


_PARSER = _Parser("commonmark").enable(["table", "strikethrough"]).disable("inline")

_READER_HEADER_RE = re.compile(
    r"^(?:title|url source|published time|markdown content|warning|description):",
    re.IGNORECASE,
)
_HEADER_KEY_RE = re.compile(
    r"^\s*(url source|og:url|source_?url|source|canonical|url|title)\s*:\s*(\S.*?)\s*$",
    re.IGNORECASE,
)
_ATX_RE = re.compile(r"^[ ]{0,3}#{1,6}(?:[ \t]|$)")
_FENCE_RE = re.compile(r"^[ ]{0,3}(?:```|~~~)")
_BR_RE = re.compile(r"^<br\s*/?>$", re.IGNORECASE)
_MAX_HEADING_LINES = 6  # a heading's link wraps over at most this many lines


@dataclass(frozen=True)
class Atom:
    """A run of text between line breaks and link boundaries, or one link (its text
    with breaks as spaces; "" for an image link or an autolink, whose text is a URL)."""

    line: int
    text: str
    href: str | None = None


@dataclass
class Block:
    """One heading, paragraph or table cell (or a break), with its atoms; `text` is all
    of its text on one line (a title), `links` its link targets in order."""

    kind: str
    line: int
    atoms: list[Atom] = field(default_factory=list)
    text: str = ""
    links: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Header:
    """What a reader's header or YAML front matter says: the page's title and URLs."""

    title: str | None = None
    urls: tuple[str, ...] = ()


@dataclass
class Layout:
    """The blocks of a capture, its header, and the (line, length) of each line left
    out for being too long (see `MAX_INLINE`)."""

    header: Header
    blocks: list[Block]
    skipped: list[tuple[int, int]]


def read_layout(text: str) -> Layout:
    """The header and the blocks of a Markdown capture."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = _take_header(lines)
    _join_wrapped_heading_links(lines)
    env: dict[str, Any] = {}
    tokens = _PARSER.parse("\n".join(lines), env)
    skipped: list[tuple[int, int]] = []
    return Layout(header, _blocks(tokens, env, skipped), skipped)


# ---------------------------------------------------------------------------------------
# The header above the page
# ---------------------------------------------------------------------------------------


def _take_header(lines: list[str]) -> Header:
    """Read YAML front matter or a reader's header at the top and blank its lines (line
    numbers stay those of the file)."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    found: list[str] = []
    end = start
    if start < len(lines) and lines[start].strip() == "---":
        for index in range(start + 1, len(lines)):
            if lines[index].strip() in ("---", "..."):
                found, end = lines[start + 1 : index], index + 1
                break
    else:
        scan = start
        while scan < len(lines) and (
            not lines[scan].strip() or _READER_HEADER_RE.match(lines[scan])
        ):
            if lines[scan].lower().startswith("markdown content:"):
                found, end = lines[start:scan], scan + 1
                break
            scan += 1
    lines[start:end] = [""] * (end - start)
    return _header_of(found)


def _header_of(found: list[str]) -> Header:
    title: str | None = None
    urls: list[str] = []
    for line in found:
        match = _HEADER_KEY_RE.match(line)
        if match is None:
            continue
        value = match.group(2).strip("'\"")
        if match.group(1).casefold() != "title":
            urls.append(value)
        elif title is None:
            title = value
    return Header(title=title, urls=tuple(urls))


def _join_wrapped_heading_links(lines: list[str]) -> None:
    """`### [Title that` / `wraps](https://...)`: join a heading whose link is still open
    at the end of its line with the lines that close it (a backslash hard break at the
    line end dropped); the joined lines are left blank."""
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or not _ATX_RE.match(line) or not _link_open(line, _next(lines, index)):
            continue
        joined = line
        for later in range(index + 1, min(index + _MAX_HEADING_LINES, len(lines))):
            if not lines[later].strip():
                break
            joined = joined.rstrip().removesuffix("\\") + " " + lines[later].strip()
            lines[later] = ""
            if not _link_open(joined, _next(lines, later)):
                break
        lines[index] = joined


def _next(lines: list[str], index: int) -> str:
    return lines[index + 1] if index + 1 < len(lines) else ""


def _link_open(text: str, following: str) -> bool:
    """Is a link still open at the end of `text`: its text (`[Title and`), or its target
    still to come on the next line (`[Title]` then `(https://...)`)?"""
    stripped = text.rstrip()
    return stripped.count("[") > stripped.count("]") or (
        stripped.endswith("]") and following.lstrip().startswith("(")
    )


# ---------------------------------------------------------------------------------------
# Blocks from the token stream
# ---------------------------------------------------------------------------------------


def _blocks(
    tokens: Sequence[Token], env: dict[str, Any], skipped: list[tuple[int, int]]
) -> list[Block]:
    blocks: list[Block] = []
    line = 1
    for index, token in enumerate(tokens):
        if token.map is not None:
            line = token.map[0] + 1
        if token.type == "hr":
            blocks.append(Block(BREAK, line))
        elif token.type == "list_item_open" and tokens[index + 1].type == "list_item_close":
            if token.markup == "-":  # an empty "-" item: the page's "-" for no upvotes
                blocks.append(Block(PARAGRAPH, line, [Atom(line, "-")], "-"))
        elif token.type == "inline":
            opening = tokens[index - 1]
            reader = _InlineReader(line)
            _read_inline(reader, token.content, line, env, skipped)
            block = reader.block(line)
            if opening.type == "heading_open" and _is_plain_heading(opening, token):
                block.kind = HEADING
                blocks.append(block)
            else:
                blocks.append(block)
                if opening.type == "heading_open" and opening.markup == "-":
                    blocks.append(Block(BREAK, line))  # a paragraph above a `---` rule
    return blocks


def _is_plain_heading(opening: Token, inline: Token) -> bool:
    """An ATX heading, or a setext heading of one line: several lines above `===` or
    `---` are a paragraph (and a rule) in a capture, not a heading."""
    return opening.markup not in ("=", "-") or "\n" not in inline.content.strip()


def _read_inline(
    reader: _InlineReader,
    content: str,
    line: int,
    env: dict[str, Any],
    skipped: list[tuple[int, int]],
) -> None:
    """Feed one inline run to `reader`: whole, or line by line when it is too long to be
    one piece of a card (see `MAX_INLINE`)."""
    if len(content) <= MAX_INLINE:
        reader.feed(_inline_tokens(content, env))
        return
    for offset, part in enumerate(content.split("\n")):
        if offset:
            reader.line_break()
        if len(part) > MAX_INLINE:
            skipped.append((line + offset, len(part)))
            continue
        reader.feed(_inline_tokens(part, env))


def _inline_tokens(content: str, env: dict[str, Any]) -> list[Token]:
    tokens: list[Token] = []
    _PARSER.inline.parse(content, _PARSER, env, tokens)
    return tokens


class _InlineReader:
    """Turns inline tokens into atoms: text runs end at line breaks and at links."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.atoms: list[Atom] = []
        self.whole: list[str] = []  # all of the text, for a title
        self.links: list[str] = []
        self.text: list[str] = []  # the text run being read
        self.href: str | None = None  # the link being read
        self.link_text: list[str] = []
        self.link_line = line

    def feed(self, tokens: Sequence[Token]) -> None:
        for token in tokens:
            kind = token.type
            if kind in ("text", "text_special", "code_inline"):
                self._add(token.content)
            elif kind in ("softbreak", "hardbreak"):
                self.line_break()
            elif kind == "html_inline" and _BR_RE.match(token.content.strip()):
                self.line_break()
            elif kind == "link_open":
                self._flush()
                self.href = str(token.attrs.get("href", ""))
                self.link_text = []
                self.link_line = self.line
                self.whole.append(" ")
            elif kind == "link_close":
                self._close_link(autolink=token.markup == "autolink")
            # images, HTML tags and emphasis marks carry no text of the page

    def _add(self, text: str) -> None:
        (self.link_text if self.href is not None else self.text).append(text)
        self.whole.append(text)

    def line_break(self) -> None:
        if self.href is not None:
            self.link_text.append(" ")
        else:
            self._flush()
        self.whole.append(" ")
        self.line += 1

    def _flush(self) -> None:
        text = clean_text("".join(self.text))
        self.text = []
        if text:
            self.atoms.append(Atom(self.line, text))

    def _close_link(self, *, autolink: bool) -> None:
        href = self.href or ""
        text = "" if autolink else clean_text("".join(self.link_text))
        if autolink:  # its text is its URL: not text of the page
            del self.whole[len(self.whole) - len(self.link_text) :]
        self.atoms.append(Atom(self.link_line, text, href))
        self.links.append(href)
        self.href = None
        self.whole.append(" ")

    def block(self, line: int) -> Block:
        if self.href is not None:  # cannot happen with CommonMark tokens; be safe
            self._close_link(autolink=False)
        self._flush()
        return Block(
            PARAGRAPH,
            line,
            self.atoms,
            clean_text("".join(self.whole)),
            self.links,
        )
