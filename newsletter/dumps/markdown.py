"""Parse Markdown scrapes of the Daily Papers page into `Paper` records (pure).

This module owns one shape of dump: the Markdown that scraping tools (reader services,
crawlers, HTML-to-Markdown converters) make of the page. Each paper is a heading that
links to its page, then the rest of its card::

    ### [Title](https://huggingface.co/papers/2410.12345)

    The abstract, maybe a link itself, maybe hard-wrapped or with `\\` line breaks.

    [21](https://huggingface.co/login?next=...)      upvotes (often a link; `-` for zero)
    * 21 authors                                     or an organisation
    ·
    Dec 11, 2024                                     maybe without a year
    [3](https://huggingface.co/papers/2410.12345#community)   maybe a comment count

Around the list there may be YAML front matter, a reader's header (`URL Source: ...`),
navigation links and a footer: none of it is a paper. A title may also be a heading
without a link, or a paragraph that is nothing but a link to a paper page. The arXiv id
of the title's link is kept.

The page date is, in order: the date in the page's own URL when the front matter or
header gives it (`.../papers/date/2024-12-11`); the page's header date line (`Dec 11`,
its year chosen as for the page text); the day the file was received.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from newsletter.dumps.model import (
    MARKDOWN,
    METADATA_LINES,
    PAGE_CHROME,
    PAPER_LINKS,
    Dump,
    Paper,
    deduplicate,
    duplicates_warning,
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
)
from newsletter.errors import DumpError

EXPECTED = (
    "expected a Markdown capture of the Daily Papers page: paper headings such as "
    "'### [Title](https://huggingface.co/papers/2410.12345)', each followed by its abstract"
)

_HEADING_RE = re.compile(r"^[ ]{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^[ ]{0,3}(?:=+|-+)[ \t]*$")
_RULE_RE = re.compile(r"^[ ]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE_RE = re.compile(r"^[ ]{0,3}(```|~~~)")
_LIST_RE = re.compile(r"^[ \t]*(?:[*+\-•]|\d{1,3}[.)])[ \t]+")
_QUOTE_RE = re.compile(r"^[ \t]*>+[ \t]?")
_BRACKETS = r"(?:[^\[\]]|\[[^\[\]]*\])*"  # link text: one level of nested brackets
_IMAGE_RE = re.compile(rf"!\[{_BRACKETS}\]\([^)]*\)")
_LINK_RE = re.compile(
    rf"\[({_BRACKETS})\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)", re.DOTALL
)
_REF_LINK_RE = re.compile(rf"\[({_BRACKETS})\]\[[^\]]*\]")
_AUTOLINK_RE = re.compile(r"<(https?://[^>\s]+)>")
_CODE_RE = re.compile(r"(`+)([^`]+?)\1")  # a code span: its text is code, never a link
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG_RE = re.compile(r"</?[A-Za-z][^>\n]*>")
_STRONG_RE = re.compile(r"\*\*|__")
_EM_RE = re.compile(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])")
_ESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ZERO_RE = re.compile(r"^[-–—]$")  # the page shows "-" for no upvotes
_DATE_PREFIX_RE = re.compile(r"^(?:published|submitted)(?:\s+on)?\s+", re.IGNORECASE)
_SUBMITTED_BY_RE = re.compile(r"^submitted\s+by\b", re.IGNORECASE)
_HAS_LETTER_RE = re.compile(r"[^\W\d_]")
_SOURCE_KEY_RE = re.compile(
    r"^\s*(url|source|sourceurl|source_url|og:url|canonical|url source)\s*:\s*(\S+)",
    re.IGNORECASE,
)
_READER_HEADER_RE = re.compile(
    r"^(?:title|url source|published time|markdown content|warning):", re.IGNORECASE
)

# Headings that are page furniture, not papers (beyond the page text's chrome lines).
_MARKDOWN_CHROME = frozenset(
    {"papers", "trending papers", "daily papers hugging face", "previous", "next", "search"}
)


@dataclass
class _Block:
    kind: str  # "heading", "para" or "break"
    line: int  # 1-based line where it starts
    raw: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    title: str
    line: int
    arxiv_id: str | None
    hf_link: bool = False  # the title links to a Hugging Face paper page
    items: list[tuple[int, str]] = field(default_factory=list)


def _inline(raw: str) -> tuple[str, list[str]]:
    """Markdown text to plain text (line breaks kept), and the link targets in order."""
    urls: list[str] = []
    text = _CODE_RE.sub(lambda match: match.group(2).replace("](", "] ("), raw)
    text = re.sub(r"\\\n", "\n", text)  # a backslash hard break
    text = text.removesuffix("\\")
    text = _BR_RE.sub("\n", text)
    text = _IMAGE_RE.sub("", text)

    def autolink(match: re.Match[str]) -> str:
        urls.append(match.group(1))
        return ""

    def link(match: re.Match[str]) -> str:
        urls.append(match.group(2))
        return match.group(1)

    text = _AUTOLINK_RE.sub(autolink, text)
    for _ in range(3):  # a link inside a link's text (after images are gone)
        text, count = _LINK_RE.subn(link, text)
        if not count:
            break
    text = _REF_LINK_RE.sub(r"\1", text)
    text = _TAG_RE.sub("", text)
    text = _STRONG_RE.sub("", text).replace("`", "")
    text = _EM_RE.sub(r"\1", text)
    text = _ESCAPE_RE.sub(r"\1", text)
    return html.unescape(text), urls


def _fold(text: str) -> str:
    return " ".join(text.split())


def _is_count(text: str) -> bool:
    return bool(COUNT_RE.match(text) or _ZERO_RE.match(text))


def _count(text: str) -> int:
    return 0 if _ZERO_RE.match(text) else parse_count(text)


def _date_of(text: str) -> DateLine | None:
    return read_date_line(_DATE_PREFIX_RE.sub("", text))


def _blocks(lines: list[str], start: int) -> list[_Block]:
    """Headings, paragraphs (runs of non-blank lines) and breaks (rules), in order."""
    blocks: list[_Block] = []
    para: _Block | None = None
    in_fence = False
    for index in range(start, len(lines)):
        line = lines[index]
        number = index + 1
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            para = None
            continue
        if in_fence:
            continue
        if not line.strip():
            para = None
            continue
        heading = _HEADING_RE.match(line)
        if heading:
            blocks.append(_Block("heading", number, [heading.group(2)]))
            para = None
            continue
        if (
            blocks
            and blocks[-1].kind == "heading"
            and blocks[-1].line + len(blocks[-1].raw) == number
        ):
            if _link_goes_on(blocks[-1].raw, line):  # a heading's link wrapped onto this line
                blocks[-1].raw.append(line.strip())
                continue
        if para is not None and _SETEXT_RE.match(line) and len(para.raw) == 1:
            para.kind = "heading"  # "Title" underlined with === or ---
            para = None
            continue
        if _RULE_RE.match(line):
            blocks.append(_Block("break", number))
            para = None
            continue
        if para is None:
            para = _Block("para", number)
            blocks.append(para)
        para.raw.append(_LIST_RE.sub("", _QUOTE_RE.sub("", line)))
    return blocks


def _link_goes_on(raw: list[str], line: str) -> bool:
    """Does a heading's link continue on `line`: its text still open (`[Title and`), or
    its target still to come (`[Title]` then `(https://...)`)? At most a few lines."""
    if len(raw) >= 6:
        return False
    text = "\n".join(raw).rstrip()
    return text.count("[") > text.count("]") or (
        text.endswith("]") and line.lstrip().startswith("(")
    )


def _front_matter(lines: list[str]) -> tuple[int, date | None]:
    """Skip YAML front matter and a reader's header; return where the content starts and
    the page date if the page's own URL carries one."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    header: list[str] = []
    if start < len(lines) and lines[start].strip() == "---":
        for end in range(start + 1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                header = lines[start + 1 : end]
                start = end + 1
                break
    else:
        scan = start
        while scan < len(lines) and (
            not lines[scan].strip() or _READER_HEADER_RE.match(lines[scan])
        ):
            if lines[scan].strip():
                header.append(lines[scan])
            if lines[scan].lower().startswith("markdown content:"):
                start = scan + 1
                break
            scan += 1
    for line in header:
        source = _SOURCE_KEY_RE.match(line)
        found = page_url_date(source.group(2)) if source else None
        if found:
            return start, found
    return start, None


def _is_title_link(raw: list[str], text: str, urls: list[str]) -> bool:
    """A paragraph that is nothing but one link, with words for text: a title."""
    joined = _STRONG_RE.sub("", " ".join(part.strip() for part in raw)).strip()
    return (
        len(urls) == 1
        and _LINK_RE.fullmatch(_IMAGE_RE.sub("", joined).strip()) is not None
        and bool(_HAS_LETTER_RE.search(text))
        and len(_fold(text)) <= MAX_TITLE_LENGTH
    )


def _any_hf(urls: list[str]) -> bool:
    return any(hf_paper_id(url) for url in urls)


def _is_chrome_heading(text: str) -> bool:
    squashed = " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())
    return is_chrome(text) or squashed in _MARKDOWN_CHROME


def _entries(blocks: list[_Block]) -> tuple[list[_Entry], list[tuple[int, str]]]:
    """Group the blocks into entries; also return the lines before the first entry."""
    entries: list[_Entry] = []
    before: list[tuple[int, str]] = []
    current: _Entry | None = None

    def lines_of(block: _Block, text: str) -> list[tuple[int, str]]:
        return [
            (block.line + offset, part.strip())
            for offset, part in enumerate(text.split("\n"))
            if part.strip()
        ]

    for block in blocks:
        if block.kind == "break":
            current = None
            continue
        text, urls = _inline("\n".join(block.raw))
        ids = [found for found in map(arxiv_id_of, urls) if found]
        title = _fold(text)
        if block.kind == "heading":
            if ids and paper_key(title):
                current = _Entry(title, block.line, ids[0], _any_hf(urls))
                entries.append(current)
            elif not urls and paper_key(title) and not _is_chrome_heading(title):
                if _date_of(title) is not None:  # "# Dec 11": the page's date, not a paper
                    (current.items if current else before).append((block.line, title))
                    continue
                current = _Entry(title, block.line, None)
                entries.append(current)
            else:
                current = None  # a heading of the page ("Daily Papers", a nav link)
            continue
        if (
            ids
            and (current is None or ids[0] != current.arxiv_id)
            and _is_title_link(block.raw, text, urls)
        ):
            current = _Entry(title, block.line, ids[0], _any_hf(urls))
            entries.append(current)
            continue
        (current.items if current else before).extend(lines_of(block, text))
    return entries, before


@dataclass(frozen=True)
class _Fields:
    abstract: str
    upvotes: int
    who: str | None
    when: DateLine | None
    when_text: str | None


def _split_meta(line: str) -> list[str]:
    """A metadata line written on one line ("21 · 4 authors · Dec 11, 2024") as separate
    lines: ["21", "4 authors", "·", "Dec 11, 2024"]; any other line as it is. (A leading
    "·" is what is left of "- · ..." once the "-" of no upvotes was read as a bullet.)"""
    parts = [part.strip() for part in re.split("|".join(map(re.escape, MIDDOT)), line)]
    if parts and not parts[0]:
        parts = parts[1:]
    if len(parts) >= 2 and _date_of(parts[-1]) is not None:
        if all(0 < len(part) <= MAX_ORG_LENGTH for part in parts[:-1]):
            return [*parts[:-1], "·", parts[-1]]
    return split_meta_line(line)


def _fields(items: list[tuple[int, str]]) -> _Fields:
    """Split the lines of one card into abstract, upvotes, who and date."""
    texts = [
        part for _, text in items if not _SUBMITTED_BY_RE.match(text) for part in _split_meta(text)
    ]
    count = len(texts)
    dates = [_date_of(text) for text in texts]
    mid: int | None = None
    dots = [i for i, text in enumerate(texts) if text in MIDDOT]
    if dots:
        mid = next((i for i in dots if i + 1 < count and dates[i + 1] is not None), dots[0])
    who_at: int | None = None
    date_at: int | None = None
    upvotes_at: int | None = None
    if mid is not None:
        # ... upvotes, who, "·", date: the metadata hangs on the separator.
        date_at = mid + 1 if mid + 1 < count and dates[mid + 1] is not None else None
        before = mid - 1
        if before >= 0 and not _is_count(texts[before]):
            if AUTHORS_RE.match(texts[before]) or len(texts[before]) <= MAX_ORG_LENGTH:
                who_at = before
        end = who_at if who_at is not None else mid
    else:
        # No separator: an authors line or a date line starts the metadata, if any.
        marks = [i for i, text in enumerate(texts) if AUTHORS_RE.match(text) or dates[i]]
        end = marks[0] if marks else count
        if marks and AUTHORS_RE.match(texts[end]):
            who_at = end
            date_at = end + 1 if end + 1 < count and dates[end + 1] is not None else None
        elif marks:
            date_at = end
        else:
            while end > 0 and _is_count(texts[end - 1]):
                end -= 1  # trailing counts: upvotes, then maybe comments
            upvotes_at = end if end < count else None
    if upvotes_at is None and end > 0 and _is_count(texts[end - 1]):
        end -= 1
        upvotes_at = end
    abstract = " ".join(text for text in texts[:end] if not is_chrome(text))
    when = dates[date_at] if date_at is not None else None
    upvotes = 0
    if upvotes_at is not None:
        upvotes = _count(texts[upvotes_at])
    elif when is not None and when.upvotes is not None:
        upvotes = when.upvotes
    return _Fields(
        abstract=_fold(abstract),
        upvotes=upvotes,
        who=texts[who_at] if who_at is not None else None,
        when=when,
        when_text=texts[date_at] if date_at is not None else None,
    )


def _page_date_from(before: list[tuple[int, str]], received_at: datetime) -> date | None:
    """The header date line among the lines before the first paper."""
    for _, text in before:
        for part in split_meta_line(text):
            parsed = _date_of(part)
            if parsed is None or parsed.upvotes is not None:
                continue
            if month_day_exists(parsed.month, parsed.day):
                return resolve_page_date(parsed, received_at)
    return None


def parse_markdown(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse a Markdown capture of the page. Raises DumpError when it holds no paper."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start, url_date = _front_matter(lines)
    entries, before = _entries(_blocks(lines, start))
    page_date = url_date or _page_date_from(before, received_at) or received_at.date()

    papers: list[Paper] = []
    warnings: list[str] = []
    for entry in entries:
        what = repr(shorten(entry.title))
        where = f"{name}:{entry.line}"
        key = paper_key(entry.title)
        fields = _fields(entry.items)
        has_meta = fields.who is not None or fields.when is not None
        if not fields.abstract and entry.arxiv_id is None and not has_meta:
            warnings.append(f"{where}: skipped entry {what}: title with no abstract")
            continue
        published = None
        if fields.when is not None:
            published = resolve_paper_date(fields.when, page_date)
            if published is None:
                warnings.append(
                    f"{where}: entry {what}: impossible date {fields.when_text!r}: kept without"
                )
        authors = AUTHORS_RE.match(fields.who) if fields.who else None
        paper = Paper(
            key=key,
            title=entry.title,
            abstract=fields.abstract,
            authors_count=int(authors.group(1)) if authors else None,
            organization=(
                BULLET_RE.sub("", fields.who).strip() or None
                if fields.who and not authors
                else None
            ),
            published=published,
            upvotes=fields.upvotes,
            arxiv_id=entry.arxiv_id,
            line=entry.line,
        )
        papers.append(paper)
    if not papers:
        why = "no paper entry found"
        if entries:
            why += f" ({len(entries)} heading(s) without an abstract skipped)"
        raise DumpError(f"not a dump: {why}; {EXPECTED}", path=name)
    kept = deduplicate(papers)
    evidence = []
    if any(entry.hf_link for entry in entries):
        evidence.append(PAPER_LINKS)
    if any(is_signature_chrome(text) for _, text in before):
        evidence.append(PAGE_CHROME)
    if any(p.published and (p.authors_count or p.organization) for p in kept):
        evidence.append(METADATA_LINES)
    return Dump(
        name=name,
        page_date=page_date,
        papers=kept,
        warnings=warnings + duplicates_warning(name, len(papers), len(kept)),
        shape=MARKDOWN,
        evidence=tuple(evidence),
    )
