"""An issue's messages joined from blocks rendered and encoded once per issue.

Most of a digest is the same for every reader who gets it: a paper's block (its card:
title, authors, stats, summary, links) does not depend on the reader. The templates
wrap it in `{% call(card) paper_block(paper.card) %}` (see `render`), and `SharedBlocks`
renders each such block the first time a message of the issue needs it, encodes it,
keeps it, and leaves a marker in the reader's output instead. Per reader, Jinja renders
only what differs (the header lines, greeting, why-lines, the links with the reader's
tokens, the footer), and the message is joined as bytes:

* HTML part (base64): base64 turns each 57 bytes into one 76-character line, so every
  piece (the reader's, and each block) is followed by an HTML comment that brings its
  length to a multiple of 57 (`<!--` spaces `-->`: a comment shows nothing wherever it
  stands, unlike whitespace between inline elements). Each piece then encodes to whole
  lines on its own, and the part is the pieces' lines joined. The blocks' lines are
  made once per issue; only the reader's pieces are encoded per message.
* Text part: sent as it is (see `message.text_part`), so the blocks' bytes are joined
  with the reader's as they are. When a line would not fit (998 octets) or a piece
  holds a CR, the part is made whole, as `message.build_message` makes it.

What the joined message decodes to is `SharedBlocks.digest(marked)`: the digest as
rendering in place gives it, the padding comments in the HTML aside. Built by the
reference path (`message.build_message_reference`), that digest gives the same headers
and decoded parts; `tests/test_assembly.py` checks this on generated readers and papers.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any

from markupsafe import Markup

from newsletter.message import (
    BASE64_BLOCK,
    HTML_PART_HEADERS,
    base64_lines,
    crlf_lines,
    html_part,
    text_part,
    text_transfer_encoding,
)
from newsletter.paper_card import PaperCard
from newsletter.render import Digest, PaperBlocks, inline_block, limit_lines

log = logging.getLogger(__name__)

_SHORTEST_PAD = len("<!---->")


def padding(length: int) -> str:
    """The HTML comment that brings `length` bytes to a multiple of 57 ("" when they are)."""
    short = -length % BASE64_BLOCK
    if short == 0:
        return ""
    if short < _SHORTEST_PAD:
        short += BASE64_BLOCK
    return "<!--" + " " * (short - _SHORTEST_PAD) + "-->"


@dataclass(frozen=True)
class _Block:
    """One rendered paper block, in the forms the parts join."""

    text: str  # as rendered
    data: bytes  # UTF-8, CRLF line ends
    pad: str  # HTML only: the comment after it
    lines: bytes  # HTML only: base64 lines of data + pad
    has_cr: bool  # holds a CR: its line ends cannot be joined as they are


def _block(text: str, *, html: bool) -> _Block:
    data = text.encode("utf-8", "replace").replace(b"\n", b"\r\n")
    pad = padding(len(data)) if html else ""
    lines = base64_lines(data + pad.encode("ascii")) if html else b""
    return _Block(text, data, pad, lines, "\r" in text)


class _ContentTracker(HTMLParser):
    """Reads an HTML document in pieces and tells whether the end of what it read is
    plain content: outside any tag, comment, script or style, title or textarea. Only
    there does a comment show nothing (inside an attribute it would change the value)."""

    _TEXT_ONLY = frozenset({"title", "textarea"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self._text_only = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._text_only += tag in self._TEXT_ONLY

    def handle_endtag(self, tag: str) -> None:
        if tag in self._TEXT_ONLY and self._text_only:
            self._text_only -= 1

    def at_content(self) -> bool:
        return not self.rawdata and self.cdata_elem is None and not self._text_only


def comments_fit(pieces: Sequence[str]) -> bool:
    """Whether a padding comment may follow each of `pieces` but the last (the HTML is
    the pieces joined)."""
    tracker = _ContentTracker()
    for piece in pieces[:-1]:
        tracker.feed(piece)
        if not tracker.at_content():
            return False
    return True


class SharedBlocks:
    """The paper blocks of one issue, each rendered once (per process), by card; also the
    `message.Parts` that join a digest rendered with `self.blocks` into its two parts
    (`message.build_message(..., parts=shared)`).

    A marker is `NUL <nonce>:<n> NUL`: the nonce is random per instance, so no reader's
    data can forge one. A block called with anything but a `PaperCard` (a template that
    passes the reader's `paper`) is rendered in place, never shared."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(8)
        self._marker = f"\x00{nonce}:{{}}\x00"
        self._split = re.compile(f"\x00{nonce}:(\\d+)\x00")
        self._index: dict[tuple[bool, PaperCard], int] = {}
        self._by_id: dict[tuple[bool, int], tuple[PaperCard, int]] = {}
        self._blocks: list[_Block] = []
        self._padded: bool | None = None  # may the HTML carry padding comments? (first use)
        self.blocks = PaperBlocks(html=self._html_block, text=self._text_block)

    def __len__(self) -> int:
        return len(self._blocks)

    def _html_block(self, card: Any, caller: Callable[[Any], Any]) -> Any:
        return self._use(card, caller, html=True)

    def _text_block(self, card: Any, caller: Callable[[Any], Any]) -> Any:
        return self._use(card, caller, html=False)

    def _use(self, card: Any, caller: Callable[[Any], Any], *, html: bool) -> Any:
        if not isinstance(card, PaperCard):
            return inline_block(card, caller)
        # By the card's identity first (hashing its 16 fields costs more than a look-up;
        # an issue hands out one card object per paper), then by its value.
        found = self._by_id.get((html, id(card)))
        index = found[1] if found is not None and found[0] is card else None
        if index is None:
            index = self._index.get((html, card))
            if index is None:
                index = len(self._blocks)
                self._blocks.append(_block(str(caller(card)), html=html))
                self._index[(html, card)] = index
            self._by_id[(html, id(card))] = (card, index)  # the entry keeps the id in use
        marker = self._marker.format(index)
        return Markup(marker) if html else marker

    # -- what a marked digest stands for ------------------------------------------------

    def _pieces(self, marked: str) -> tuple[list[str], list[_Block]]:
        """The reader's pieces (one more than the blocks) and the blocks between them."""
        split = self._split.split(marked)
        return split[::2], [self._blocks[int(index)] for index in split[1::2]]

    def _joinable(self, pieces: list[str], blocks: list[_Block]) -> bool:
        return not any("\r" in piece for piece in pieces) and not any(b.has_cr for b in blocks)

    def _padding_fits(self, pieces: list[str], blocks: list[_Block]) -> bool:
        """Whether the HTML's pieces may be padded: checked on the first message, whose
        boundaries stand where the template puts its paper blocks (between elements in
        the project's templates). A template that puts one where a comment would show
        or change something gets its HTML encoded whole, and a warning."""
        if self._padded is None:
            joined: list[str] = [pieces[0]]
            for block, piece in zip(blocks, pieces[1:], strict=True):
                joined += (block.text, piece)
            self._padded = comments_fit(joined)
            if not self._padded:
                log.warning(
                    "the HTML template puts a paper_block where an HTML comment would "
                    "change the page (inside a tag, a comment, style or title): its "
                    "messages are encoded whole, which is slower; put {% call %} and "
                    "{% endcall %} between elements"
                )
        return self._padded

    def _pads(self, pieces: list[str], blocks: list[_Block]) -> bool:
        return (
            bool(blocks) and self._joinable(pieces, blocks) and self._padding_fits(pieces, blocks)
        )

    def resolve(self, marked: str) -> str:
        """`marked` with every block put back: what rendering in place gives."""
        pieces, blocks = self._pieces(marked)
        out = [pieces[0]]
        for block, piece in zip(blocks, pieces[1:], strict=True):
            out += (block.text, piece)
        return "".join(out)

    def resolve_html(self, marked: str) -> str:
        """The HTML the joined message carries: `resolve`, with each padding comment."""
        pieces, blocks = self._pieces(marked)
        if not self._pads(pieces, blocks):
            return self.resolve(marked)
        out: list[str] = []
        for piece, block in zip(pieces, blocks, strict=False):
            data = piece.encode("utf-8", "replace").replace(b"\n", b"\r\n")
            out += (piece, padding(len(data)), block.text, block.pad)
        out.append(pieces[-1])
        return "".join(out)

    def digest(self, marked: Digest) -> Digest:
        """The digest the joined message decodes to (for the reference path, and tests)."""
        text = limit_lines(self.resolve(marked.text))
        return replace(marked, html=self.resolve_html(marked.html), text=text)

    # -- the parts, joined ----------------------------------------------------------------

    def html_part(self, marked: str) -> bytes:
        pieces, blocks = self._pieces(marked)
        if not self._pads(pieces, blocks):
            return html_part(crlf_lines(self.resolve(marked)))
        out: list[bytes] = []
        for piece, block in zip(pieces, blocks, strict=False):
            data = piece.encode("utf-8", "replace").replace(b"\n", b"\r\n")
            out += (base64_lines(data + padding(len(data)).encode("ascii")), block.lines)
        last = pieces[-1].encode("utf-8", "replace").replace(b"\n", b"\r\n")
        if last:
            ends_line = last.endswith(b"\n")
        else:  # the HTML ends with the last block, and its padding if it has one
            ends_line = not blocks[-1].pad and blocks[-1].data.endswith(b"\n")
        out.append(base64_lines(last if ends_line else last + b"\r\n"))  # as crlf_lines
        return HTML_PART_HEADERS + b"".join(out)

    def text_part(self, marked: str) -> bytes:
        pieces, blocks = self._pieces(marked)
        if blocks and self._joinable(pieces, blocks):
            out = [pieces[0].encode("utf-8", "replace").replace(b"\n", b"\r\n")]
            for block, piece in zip(blocks, pieces[1:], strict=True):
                out += (block.data, piece.encode("utf-8", "replace").replace(b"\n", b"\r\n"))
            body = b"".join(out)
            if not body.endswith(b"\n"):
                body += b"\r\n"
            if text_transfer_encoding(body) != "quoted-printable":
                return text_part(body)
        return text_part(crlf_lines(limit_lines(self.resolve(marked))))
