"""Parse the Daily Papers pages saved as HTML by a browser into `Paper` records (pure).

This module owns one shape of dump: huggingface.co/papers (a day, the Trending page, a
search) saved with "Save page as", before or after the page's scripts ran. It reads the
markup with a real HTML parser (selectolax / lexbor), never with regexes over the markup.

Two ways in, in order of preference:

1. The page is server-rendered Svelte: the list sits as JSON in an attribute,
   `<div class="SVELTE_HYDRATER contents" data-target="DailyPapers" data-props="{...}">`.
   Any `data-props` object that holds a list of API entries (objects with a `paper`
   object, or bare papers with `id`, `title` and `summary`), under whatever key, gives
   the papers exactly as the API JSON does (`api_json.papers_from_entries`).
2. Otherwise the cards are read from the DOM. A card is found from its title link (a
   link to `/papers/<arXiv id>` in or around a heading, or standing alone in its block):
   it is the largest element around the title link that holds no other paper's title
   link; CSS class names are never used. Within a card: the abstract or AI summary (the
   longest text), the authors (`<li title="Name">` avatars, "· 12 authors"), the
   organisation's link, the upvote count, the comment count (the `#community` link), the
   date ("Published on Mar 10"), the GitHub link and its stars, the project page.

Scripts, styles, templates and SVG are ignored, and so are links in the site's nav,
header and footer. The page date is the props' `date`; else the date in the page's own
URL (canonical link, `og:url`, the "saved from url" comment); else the page's header
date (`Mar 11`); else the day the file was received. The Trending page lists each paper
twice in some captures: records are merged by arXiv id and title.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from newsletter.dumps.api_json import papers_from_entries
from newsletter.dumps.model import (
    API_ENTRIES,
    HTML,
    METADATA_LINES,
    PAGE_CHROME,
    PAPER_LINKS,
    Dump,
    Paper,
    deduplicate,
    fold,
    has_metadata_lines,
    paper_key,
    shorten,
)
from newsletter.dumps.vocabulary import (
    AUTHORS_RE,
    CHROME,
    COUNT_RE,
    MAX_ORG_LENGTH,
    MAX_TITLE_LENGTH,
    MIDDOT,
    MIN_ABSTRACT_LENGTH,
    SUBMITTED_BY_RE,
    hf_paper_id,
    is_signature_chrome,
    parse_count,
    read_date_line,
    resolve_page_date,
    resolve_paper_date,
    split_meta_line,
    squash,
    stars_of,
)
from newsletter.errors import DumpError

EXPECTED = (
    "expected the Daily Papers page saved as HTML: paper cards whose title links to "
    "https://huggingface.co/papers/<arXiv id>, or the page's embedded data-props list"
)

_IGNORED_TAGS = ("script", "style", "noscript", "template", "svg")
_CHROME_TAGS = frozenset({"nav", "header", "footer"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Tags that do not start a line of their own (links do: each is read on its own).
_INLINE_TAGS = frozenset(
    {"span", "b", "strong", "i", "em", "time", "small", "sup", "sub", "code", "abbr", "mark"}
    | {"s", "u", "q", "cite", "bdi", "font", "label", "img", "data", "var", "kbd", "wbr"}
)
_TOP_TAGS = frozenset({"html", "body", "main", "-document"})  # never a card
# The date in the page's own URL: /papers/date/2025-03-11 or /papers?date=2025-03-11.
_URL_DATE_RE = re.compile(r"/papers(?:/date/|/?\?(?:[^#\s]*&)?date=)(\d{4}-\d{2}-\d{2})")
_SAVED_FROM = "saved from url="
# Link texts that are not a title, even standing alone.
_LINK_WORDS: frozenset[str] = frozenset(
    {"read more", "view paper", "paper", "pdf", "arxiv", "abstract", "discussion", "comments"}
)
# First path segments of huggingface.co that are site pages, not a user or organisation.
_SITE_PATHS = frozenset(
    {
        "papers",
        "models",
        "datasets",
        "spaces",
        "docs",
        "blog",
        "posts",
        "collections",
        "login",
        "join",
        "pricing",
        "enterprise",
        "settings",
        "search",
        "learn",
        "tasks",
        "organizations",
        "new",
        "notifications",
        "terms-of-service",
        "privacy",
        "chat",
    }
)
_HF_HOSTS = frozenset({"", "huggingface.co", "www.huggingface.co", "hf.co"})
_AI_LABELS = frozenset({"ai summary", "ai generated summary", "summary by ai", "tl dr", "tldr"})
_MAX_SUMMARY_LENGTH = 320  # a one-sentence AI summary is at most about this long
_MAX_SIBLINGS = 64  # how far to look beside a link for running text
_TITLE_WINDOW = 20000  # how far after a paper's id its title is looked for (characters)


# ---------------------------------------------------------------------------------------
# Lines, for messages
# ---------------------------------------------------------------------------------------


class _Locator:
    """Finds the line of each paper in the raw text, for messages: where its id (then its
    title) next appears. Papers come in text order, so the search and the line count only
    move forward (linear in the size of the text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.line = 1

    def _move(self, found: int) -> int:
        self.line += self.text.count("\n", self.position, found)
        self.position = found
        return self.line

    def find(self, paper_id: str, title: str) -> int:
        """The line of the title (as written, escaped or not) near the next mention of
        the paper's id, else the line of that mention; 0 when neither is found."""
        at = self.text.find(paper_id, self.position) if paper_id else -1
        start = at if at >= 0 else self.position
        for needle in (escape(title, quote=True), escape(title, quote=False), title):
            found = self.text.find(needle, start, start + _TITLE_WINDOW) if needle else -1
            if found >= 0:
                return self._move(found)
        return self._move(at) if at >= 0 else 0


# ---------------------------------------------------------------------------------------
# The embedded props
# ---------------------------------------------------------------------------------------


def _is_entry(item: object) -> bool:
    """An API entry: an object with a `paper` object that has a title, or a bare paper
    object with an `id`, a `title` and a `summary`."""
    if not isinstance(item, dict):
        return False
    paper = item.get("paper")
    if isinstance(paper, dict):
        return isinstance(paper.get("title"), str)
    return all(isinstance(item.get(key), str) for key in ("id", "title", "summary"))


def _entry_lists(value: object, depth: int = 0) -> Iterator[list[Any]]:
    """The lists of API entries in a props object, under whatever keys (a few levels)."""
    if depth > 4:
        return
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            if 2 * sum(1 for item in value if _is_entry(item)) >= len(value):
                yield value
                return
        for item in value:
            if isinstance(item, dict):
                yield from _entry_lists(item, depth + 1)
    elif isinstance(value, dict):
        if depth == 0 and _is_entry(value):
            yield [value]  # a props object that is one entry (a card of its own)
            return
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _entry_lists(item, depth + 1)


def _iso_day(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


@dataclass
class _Props:
    entries: list[Any] = field(default_factory=list)
    page_date: date | None = None
    warnings: list[str] = field(default_factory=list)


def _read_props(tree: LexborHTMLParser, name: str) -> _Props:
    """The API entries embedded in `data-props` attributes, and the page's `date`."""
    out = _Props()
    for node in tree.css("[data-props]"):
        raw = node.attributes.get("data-props") or ""
        if "paper" not in raw and "summary" not in raw:
            continue  # the header's, the theme switcher's: not worth decoding
        try:
            props = json.loads(raw)
        except json.JSONDecodeError as exc:
            target = node.attributes.get("data-target") or node.tag
            out.warnings.append(
                f"{name}: the data-props of {target} are not JSON ({exc.msg}): ignored"
            )
            continue
        lists = list(_entry_lists(props))
        for entries in lists:
            out.entries.extend(entries)
        if lists and out.page_date is None and isinstance(props, dict):
            out.page_date = _iso_day(props.get("date"))
    return out


# ---------------------------------------------------------------------------------------
# Title links and cards
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TitleLink:
    node: LexborNode
    paper_id: str
    title: str
    rank: int  # 0: in or around a heading; 1: a link standing alone in its block


def _text(node: LexborNode) -> str:
    return fold(node.text(deep=True))


def _in_chrome(node: LexborNode) -> bool:
    """Is this node inside the site's nav, header or footer (not a card's own)?"""
    parent = node.parent
    while parent is not None:
        tag = parent.tag or ""
        if tag == "article":
            return False
        if tag in _CHROME_TAGS:
            return True
        parent = parent.parent
    return False


def _in_heading(node: LexborNode) -> bool:
    parent = node.parent
    for _ in range(3):
        if parent is None:
            return False
        if parent.tag in _HEADINGS:
            return True
        parent = parent.parent
    return False


def _stands_alone(node: LexborNode) -> bool:
    """Is this link alone in its block (no running text beside it)?"""
    for step in ("prev", "next"):
        sibling = getattr(node, step)
        for _ in range(_MAX_SIBLINGS):
            if sibling is None:
                break
            if sibling.is_text_node and (sibling.text_content or "").strip():
                return False
            sibling = getattr(sibling, step)
    return True


def _plausible_title(text: str) -> bool:
    if not 0 < len(text) <= MAX_TITLE_LENGTH or AUTHORS_RE.match(text):
        return False
    words = squash(text)
    return any(char.isalpha() for char in words) and words not in CHROME | _LINK_WORDS


def _title_link(node: LexborNode) -> _TitleLink | None:
    """The link as a paper's title link, or None when it is another link."""
    href = node.attributes.get("href") or ""
    paper_id = hf_paper_id(href)
    if paper_id is None or "#" in href or _in_chrome(node):
        return None
    heading = node.css_first("h1, h2, h3, h4, h5, h6")
    if heading is not None:
        title, rank = _text(heading), 0
    else:
        title = _text(node)
        rank = 0 if _in_heading(node) else 1
        if rank == 1 and not _stands_alone(node):
            return None
    if not _plausible_title(title):
        return None
    return _TitleLink(node, paper_id, title, rank)


def _mark_ancestors(links: list[_TitleLink]) -> dict[int, str]:
    """For every element above a title link: the paper id of the title links it holds,
    or "" when it holds several papers' (each element is marked at most twice)."""
    marks: dict[int, str] = {}
    for link in links:
        node = link.node.parent
        while node is not None and node.tag not in _TOP_TAGS:
            seen = marks.get(node.mem_id)
            if seen == "":
                break  # and so are all the elements above it
            if seen is None:
                marks[node.mem_id] = link.paper_id
            elif seen != link.paper_id:
                marks[node.mem_id] = ""
            node = node.parent
    return marks


def _cards(tree: LexborHTMLParser) -> list[tuple[LexborNode, _TitleLink]]:
    """Each card with its title link, in page order: the largest element around a title
    link that holds no other paper's title link."""
    links = [link for node in tree.css("a[href]") if (link := _title_link(node))]
    marks = _mark_ancestors(links)
    cards: dict[int, tuple[LexborNode, _TitleLink]] = {}
    for link in links:
        card = link.node
        parent = card.parent
        while parent is not None and marks.get(parent.mem_id) == link.paper_id:
            card, parent = parent, parent.parent
        known = cards.get(card.mem_id)
        if known is None or link.rank < known[1].rank:
            cards[card.mem_id] = (card, link)  # a card keeps its place in the page
    return list(cards.values())


def _foreign_heading(card: LexborNode, link: _TitleLink) -> bool:
    """Does the element hold a heading that is not its paper's title (an article with
    sections, a page's header): then it is not a card."""
    return any(
        (text := _text(heading)) and text != link.title
        for heading in card.css("h1, h2, h3, h4, h5, h6")
    )


# ---------------------------------------------------------------------------------------
# What a card shows
# ---------------------------------------------------------------------------------------

_COMMENTS, _GITHUB, _PROFILE, _PROJECT, _OTHER = "comments", "github", "profile", "project", "-"


@dataclass
class _Card:
    """What one card shows, as read from its elements in page order."""

    title: str
    page_date: date
    texts: list[str] = field(default_factory=list)  # long texts: abstract candidates
    ai_label: bool = False
    authors: list[str] = field(default_factory=list)
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int | None = None
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    submitted_by: bool = False  # the next profile link is the submitter's

    def has_metadata(self) -> bool:
        return bool(
            self.texts
            or self.authors
            or self.published
            or self.github_repo
            or self.organization
            or any(n is not None for n in (self.upvotes, self.comments, self.authors_count))
        )


def _link_kind(href: str, text: str) -> tuple[str, str]:
    """What a link in a card is (`_COMMENTS`, `_GITHUB`, ...) and its normalised URL or,
    for a profile, its name."""
    try:
        parts = urlsplit(href.strip())
    except ValueError:
        return _OTHER, ""
    host = parts.netloc.lower()
    segments = [segment for segment in parts.path.split("/") if segment]
    if parts.fragment == "community" and hf_paper_id(href):
        return _COMMENTS, ""
    if host in ("github.com", "www.github.com") and len(segments) >= 2:
        repo = segments[1].removesuffix(".git")
        return _GITHUB, f"https://github.com/{segments[0]}/{repo}"
    if squash(text) == "project page" and parts.scheme in ("http", "https"):
        return _PROJECT, href.strip()
    if host in _HF_HOSTS and len(segments) == 1 and segments[0].lower() not in _SITE_PATHS:
        return _PROFILE, segments[0]
    return _OTHER, ""


def _first_count(text: str) -> int | None:
    for word in text.split():
        if COUNT_RE.match(word):
            return parse_count(word)
    return None


def _in_author_item(node: LexborNode) -> bool:
    parent = node.parent
    for _ in range(2):
        if parent is None:
            return False
        if parent.tag == "li" and parent.attributes.get("title"):
            return True
        parent = parent.parent
    return False


def _read_link(card: _Card, node: LexborNode, kinds: dict[int, str]) -> None:
    """A link in a card: comments, GitHub, project page or organisation; the kind of
    link around each of its texts is noted in `kinds`."""
    text = fold(node.text(deep=True, separator=" "))  # "GitHub" and its "4.8k" apart
    kind, value = _link_kind(node.attributes.get("href") or "", text)
    for inner in node.traverse(include_text=True):
        if inner.is_text_node:
            kinds[inner.mem_id] = kind
    if kind == _COMMENTS and card.comments is None:
        card.comments = _first_count(text)
    elif kind == _GITHUB and card.github_repo is None:
        card.github_repo = value
        card.github_stars = _first_count(text)
    elif kind == _PROJECT and card.project_page is None:
        card.project_page = value
    elif kind == _PROFILE and not _in_author_item(node):
        if card.submitted_by:
            card.submitted_by = False  # the submitter: not the organisation
            return
        image = node.css_first("img[alt]")
        name = text or fold(image.attributes.get("alt") if image is not None else "") or value
        if card.organization is None and len(name) <= MAX_ORG_LENGTH:
            card.organization = name


def _read_element(card: _Card, node: LexborNode, kinds: dict[int, str]) -> None:
    tag = node.tag
    if tag == "a":
        _read_link(card, node, kinds)
    elif tag == "li":
        name = fold(node.attributes.get("title"))
        if name and name not in card.authors:
            card.authors.append(name)
    elif tag == "time" and card.published is None:
        card.published = _iso_day(node.attributes.get("datetime"))
    elif tag == "p":
        text = _text(node)
        if len(text) >= MIN_ABSTRACT_LENGTH and text != card.title:
            card.texts.append(text)


def _read_text(card: _Card, text: str) -> bool:
    """A short text of a card: a count, an authors count, a date or a label. False when
    it is none of these."""
    if SUBMITTED_BY_RE.match(text):
        card.submitted_by = True
    elif len(text) < 30 and squash(text) in _AI_LABELS:
        card.ai_label = True
    elif (authors := AUTHORS_RE.match(text)) is not None:
        card.authors_count = int(authors.group(1))
    elif (stars := stars_of(text)) is not None:
        card.github_stars = card.github_stars if card.github_stars is not None else stars
    elif COUNT_RE.match(text):
        if card.upvotes is None:
            card.upvotes = parse_count(text)
    elif (when := read_date_line(text)) is not None:
        published = resolve_paper_date(when, card.page_date)
        if when.upvotes is not None and card.upvotes is None:
            card.upvotes = when.upvotes  # "Mar 10 21": the vote box beside the date
        if card.published is None or text.casefold().startswith("published"):
            card.published = published or card.published
    else:
        return False
    return True


def _line_key(node: LexborNode) -> int:
    """The element whose line a text is on: its nearest ancestor that is a link or not an
    inline element (texts split by inline tags or comments are one line, as shown)."""
    parent = node.parent
    while parent is not None and parent.tag in _INLINE_TAGS:
        parent = parent.parent
    return parent.mem_id if parent is not None else 0


class _Lines:
    """Joins the texts of a card into the lines a reader sees, and reads each line."""

    def __init__(self, card: _Card) -> None:
        self.card = card
        self.key = -1
        self.kind = ""
        self.pieces: list[str] = []

    def add(self, node: LexborNode, kind: str) -> None:
        key = _line_key(node)
        if key != self.key:
            self.flush()
            self.key, self.kind = key, kind
        self.pieces.append(node.text_content or "")

    def flush(self) -> None:
        """Read the line: its parts as metadata (texts in separate elements are separate
        words: "612" and "4.8k" side by side are not "6124.8k"), else as a long text
        (joined as written, so that a highlighted word keeps its punctuation)."""
        pieces, kind = self.pieces, self.kind
        self.pieces, self.key = [], -1
        if not pieces or kind in (_COMMENTS, _GITHUB, _PROJECT):
            return  # a link's texts are read with the link
        spaced = fold(" ".join(pieces))
        if len(spaced) <= MAX_TITLE_LENGTH:  # a longer line is text, never metadata
            parts = [part for part in split_meta_line(spaced) if part not in MIDDOT]
            if any([_read_text(self.card, part) for part in parts]):
                return
        text = fold("".join(pieces))
        if len(text) >= MIN_ABSTRACT_LENGTH:
            if text != self.card.title:
                self.card.texts.append(text)
            return
        for piece in pieces:  # "612" "4.8k": counts side by side, read one by one
            if piece := fold(piece):
                _read_text(self.card, piece)


def _read_card(node: LexborNode, link: _TitleLink, page_date: date) -> _Card:
    card = _Card(title=link.title, page_date=page_date)
    kinds: dict[int, str] = {}
    lines = _Lines(card)
    for inner in node.traverse(include_text=True):
        if inner.is_text_node:
            lines.add(inner, kinds.get(inner.mem_id, ""))
            continue
        if inner.tag == "a":
            lines.flush()  # "Submitted by" is read before the link that follows it
        _read_element(card, inner, kinds)
    lines.flush()
    return card


def _is_summary(text: str) -> bool:
    """Is this text the size of an AI one-line summary (one sentence, short)?"""
    body = text.rstrip(" .!?")
    sentences = sum(body.count(end) for end in (". ", "? ", "! "))
    return len(text) <= _MAX_SUMMARY_LENGTH and sentences == 0


def _card_paper(card: _Card, link: _TitleLink, line: int) -> Paper:
    abstract = max(card.texts, key=len, default="")
    authors = tuple(card.authors)
    count = card.authors_count if card.authors_count is not None else len(authors) or None
    summary = abstract if abstract and (card.ai_label or _is_summary(abstract)) else None
    return Paper(
        key=paper_key(link.title),
        title=link.title,
        abstract=abstract,
        authors_count=count,
        organization=card.organization,
        published=card.published,
        upvotes=card.upvotes or 0,
        arxiv_id=link.paper_id,
        line=line,
        authors=authors,
        comments=card.comments,
        github_repo=card.github_repo,
        github_stars=card.github_stars,
        project_page=card.project_page,
        ai_summary=summary,
    )


def _dom_papers(
    cards: list[tuple[LexborNode, _TitleLink]], page_date: date, locate: _Locator, name: str
) -> tuple[list[Paper], list[str]]:
    papers: list[Paper] = []
    warnings: list[str] = []
    for node, link in cards:
        line = locate.find(f"/papers/{link.paper_id}", link.title)
        where = f"{name}:{line}" if line else name
        if _foreign_heading(node, link):
            warnings.append(
                f"{where}: {shorten(link.title)!r} is not in a card of its own: skipped"
            )
            continue
        card = _read_card(node, link, page_date)
        if not card.has_metadata():
            warnings.append(f"{where}: {shorten(link.title)!r} has a title only: skipped")
            continue
        papers.append(_card_paper(card, link, line))
    return papers, warnings


# ---------------------------------------------------------------------------------------
# The page: its date and its evidence
# ---------------------------------------------------------------------------------------


def _page_urls(tree: LexborHTMLParser) -> Iterator[str]:
    """The page's own URL as the capture gives it: the "saved from url" comment, the
    canonical link, `og:url`."""
    root = tree.root
    for top in (root.parent if root is not None else None, root, tree.head):
        child = top.child if top is not None else None
        while child is not None:
            comment = child.comment_content if child.is_comment_node else None
            if comment and _SAVED_FROM in comment:
                yield comment.split(_SAVED_FROM, 1)[1].split(")", 1)[-1].strip()
            child = child.next
    for node in tree.css('link[rel="canonical"]'):
        yield node.attributes.get("href") or ""
    for node in tree.css('meta[property="og:url"]'):
        yield node.attributes.get("content") or ""


def _url_date(tree: LexborHTMLParser) -> date | None:
    for url in _page_urls(tree):
        match = _URL_DATE_RE.search(url)
        day = _iso_day(match.group(1)) if match else None
        if day is not None:
            return day
    return None


def _header_date(
    tree: LexborHTMLParser, first_card: LexborNode | None, received_at: datetime
) -> date | None:
    """The date the page's header shows (`Mar 11`), in the text before the first card."""
    body = tree.body
    if body is None:
        return None
    stop = first_card.mem_id if first_card is not None else None
    for node in body.traverse(include_text=True):
        if node.mem_id == stop:
            break
        if node.is_text_node:
            when = read_date_line(fold(node.text_content))
            if when is not None and when.upvotes is None:
                return resolve_page_date(when, received_at)
    return None


def _shows_chrome(tree: LexborHTMLParser) -> bool:
    """Does the page's title or main heading say Daily Papers (or Trending Papers)?"""
    texts = [_text(node) for node in tree.css("title, h1")]
    texts += [
        node.attributes.get("content") or "" for node in tree.css('meta[property="og:title"]')
    ]
    return any(is_signature_chrome(text) for text in texts)


def _evidence(papers: list[Paper], *, chrome: bool, api: bool) -> tuple[str, ...]:
    evidence = [PAPER_LINKS] if papers else []
    if api:
        evidence.append(API_ENTRIES)
    if chrome:
        evidence.append(PAGE_CHROME)
    if has_metadata_lines(papers):
        evidence.append(METADATA_LINES)
    return tuple(evidence)


def parse_html(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse a Daily Papers page saved as HTML (see the module's docstring).

    `received_at` fixes the year of a header date written without one and is the page
    date of a capture that shows none. Raises DumpError when the page holds no paper."""
    tree = LexborHTMLParser(text.removeprefix("\ufeff"))
    tree.strip_tags(list(_IGNORED_TAGS))
    props = _read_props(tree, name)
    cards = _cards(tree)
    page_date = (
        props.page_date
        or _url_date(tree)
        or _header_date(tree, cards[0][0] if cards else None, received_at)
        or received_at.date()
    )
    warnings = list(props.warnings)
    found = papers_from_entries(props.entries, name=name, lines=_Locator(text).find)
    if found.papers:
        papers = found.papers
        warnings += found.warnings
    else:
        papers, more = _dom_papers(cards, page_date, _Locator(text), name)
        warnings += more
    if not papers:
        raise DumpError(
            f"not a dump: no paper card or embedded paper list found; {EXPECTED}", path=name
        )
    kept = deduplicate(papers)
    if not found.papers:  # a card without text, once its twin (if any) is merged in
        warnings += [
            f"{name}:{paper.line}: {shorten(paper.title)!r} shows no abstract or summary: kept"
            for paper in kept
            if not paper.abstract
        ]
    return Dump(
        name=name,
        page_date=page_date,
        papers=papers,  # their duplicates are merged with the other shapes' (model.merged)
        warnings=warnings,
        shape=HTML,
        evidence=_evidence(kept, chrome=_shows_chrome(tree), api=found.evidenced > 0),
    )
