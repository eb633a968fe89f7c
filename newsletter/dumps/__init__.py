"""Read captures of the Daily Papers pages into `Paper` records (pure: text in, papers out).

`parse_dump(text)` sniffs the shape of a capture (see `sniff.py`), hands it to that
shape's reader (one module per shape), and refuses what is not a Daily Papers capture:
a dump must show paper links or arXiv ids, the page's own chrome, or entries with an
authors and date line (`Dump.evidence`). READMEs, config files, other sites' pages and
other APIs' JSON are refused with the file named and what was missing. Only
`read_dump` touches the file system; nothing here reads the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from newsletter.dumps.api_json import parse_api_json
from newsletter.dumps.bounds import within_bounds
from newsletter.dumps.html import parse_html
from newsletter.dumps.markdown import parse_markdown
from newsletter.dumps.model import (
    API_JSON,
    HTML,
    LINKED_TEXT,
    MARKDOWN,
    PAGE_TEXT,
    SHAPES,
    TEXT_BROWSER,
    Dump,
    Paper,
    merged,
    paper_key,
)
from newsletter.dumps.page_text import parse_page_text
from newsletter.dumps.sniff import looks_binary, sniff
from newsletter.dumps.text_browser import parse_text_browser
from newsletter.dumps.vocabulary import arxiv_id_of, is_arxiv_id
from newsletter.errors import DumpError

__all__ = [
    "API_JSON",
    "HTML",
    "LINKED_TEXT",
    "MARKDOWN",
    "PAGE_TEXT",
    "SHAPES",
    "TEXT_BROWSER",
    "Dump",
    "Paper",
    "arxiv_id_of",
    "decode_dump",
    "is_arxiv_id",
    "paper_key",
    "parse_dump",
    "read_dump",
    "sniff",
]

EXPECTED = (
    "a dump is a capture of the Hugging Face Daily Papers pages: the page text, its HTML, "
    "a Markdown or text-browser scrape, or the JSON of /api/daily_papers"
)

_MISSING = (
    "no paper links or arXiv ids, no Daily Papers page chrome, and no entry with an authors "
    "and date line"
)


def parse_dump(text: str, *, name: str, received_at: datetime) -> Dump:
    """Parse the text of one dump, whatever its shape (see `sniff`).

    `received_at` (the file's modification time) stands in for the page's date where the
    capture gives none, and fixes the year of dates written without one. Raises
    DumpError when the text is not a Daily Papers dump."""
    if not text.strip("\ufeff \t\r\n"):
        raise DumpError(f"not a dump: the file is empty; {EXPECTED}", path=name)
    if looks_binary(text):
        raise DumpError(f"not a dump: the file looks binary, not text; {EXPECTED}", path=name)
    shape = sniff(text)
    if shape == API_JSON:
        dump = parse_api_json(text, name=name, received_at=received_at)
    elif shape == MARKDOWN:
        dump = parse_markdown(text, name=name, received_at=received_at)
    elif shape == HTML:
        dump = parse_html(text, name=name, received_at=received_at)
    elif shape == TEXT_BROWSER:
        dump = parse_text_browser(text, name=name, received_at=received_at)
    else:
        dump = parse_page_text(text, name=name, received_at=received_at)
    dump = within_bounds(merged(dump), received_at=received_at)
    if not dump.papers:
        raise DumpError(
            f"not a dump: no entry of it is a plausible paper ({len(dump.warnings)} "
            f"skipped; see the warnings); {EXPECTED}",
            path=name,
        )
    if not dump.evidence:
        count = len(dump.papers)
        raise DumpError(
            f"not a dump: read as {dump.shape} it gave {count} "
            f"{'entry' if count == 1 else 'entries'}, but it shows {_MISSING}; {EXPECTED}",
            path=name,
        )
    return dump


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
