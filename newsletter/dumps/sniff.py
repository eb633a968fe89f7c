"""Which shape of capture a text is, from its content alone (never its file name).

This module is the one place that tells the shapes apart: JSON (the daily papers API),
HTML (the page saved by a browser), a text-browser dump (lynx / w3m style, links as
numbered references), Markdown (crawlers, reader services), the page text with each
link's URL on its own line, and the plain page text a browser copies.
"""

from __future__ import annotations

import re
import unicodedata

from newsletter.dumps.model import (
    API_JSON,
    HTML,
    LINKED_TEXT,
    MARKDOWN,
    PAGE_TEXT,
    TEXT_BROWSER,
)
from newsletter.dumps.vocabulary import is_paper_url_line

# A number starts JSON only when it is an array item ("[1, 2]", "[1]"), not a link mark
# that text follows ("[1]Hugging Face", a text-browser dump).
_JSON_START_RE = re.compile(
    r"^\s*(?:\{|\[\s*(?:[{\[\]\"]|true|false|null"
    r"|-?\d[\d.eE+-]*\s*(?:,|\](?!\s*[^\s,\]}]))))"
)
_HTML_START_RE = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I | re.S
)
_HTML_TAGS_RE = re.compile(r"<(?:body|div|article|section|main|h[1-6]|p|a)[\s>]", re.I)
_FRONT_MATTER_RE = re.compile(r"^\s*---[ \t]*\r?\n")
_MD_LINK_RE = re.compile(r"\]\(\s*<?(?:https?://|/)[^)\s]*")
_ATX_HEADING_RE = re.compile(r"^[ ]{0,3}#{1,6}[ \t]+\S", re.MULTILINE)
# Numbered link references: "[12]Title" inline (lynx), "[Title][12]", and the list
# "References" / "  12. https://..." or "[12]: https://..." at the end.
_REFERENCE_MARK_RE = re.compile(r"\[\d{1,4}\]")
_REFERENCE_LIST_RE = re.compile(
    r"^(?:\s*references\s*$|\s{0,6}\d{1,4}\.\s+(?:https?://|file:)|\s{0,3}\[\d{1,4}\]:\s*\S)",
    re.IGNORECASE | re.MULTILINE,
)


def looks_binary(text: str) -> bool:
    """Does this text hold NULs or many control characters (a binary file decoded)?"""
    if "\x00" in text:
        return True
    sample = text[:20000]
    odd = sum(
        1
        for char in sample
        if char == "\ufffd" or (unicodedata.category(char) == "Cc" and char not in "\t\n\r\f\v")
    )
    return odd > max(2, len(sample) // 100)


def _is_text_browser(body: str) -> bool:
    """Numbered link marks throughout the text, and the reference list they point to
    (or at least many marks, when the list was cut off)."""
    marks = len(_REFERENCE_MARK_RE.findall(body))
    if marks < 3 or _MD_LINK_RE.search(body):
        return False
    return _REFERENCE_LIST_RE.search(body) is not None or marks >= 10


def _mostly_tags(body: str) -> bool:
    """HTML block tags, and more of them than Markdown links and headings (a converter
    such as pandoc leaves some raw `<div>` lines in its Markdown)."""
    head = body[:200000]
    tags = len(_HTML_TAGS_RE.findall(head))
    markdown = len(_MD_LINK_RE.findall(head)) + len(_ATX_HEADING_RE.findall(head))
    return tags >= 3 and tags > markdown


def sniff(text: str) -> str:
    """Which shape of capture this text is (one of `model.SHAPES`).

    JSON starts with `{` or `[` followed by a value (a number only as an array item:
    `[1]Hugging Face` is a link mark); HTML with a doctype or `<html>`, or starts with
    HTML block tags and has more of them than Markdown links and headings. A text-browser
    dump has numbered link
    marks (`[12]`) and their reference list. Markdown has front matter, a link written
    `[text](url)`, or at least two `#` headings. A text with a line that is only the URL
    of a paper is the export with links on their own lines. Anything else is read as the
    page text."""
    body = text.removeprefix("\ufeff")
    if _JSON_START_RE.match(body):
        return API_JSON
    if _HTML_START_RE.match(body) or (body.lstrip().startswith("<") and _mostly_tags(body)):
        return HTML
    if _is_text_browser(body):
        return TEXT_BROWSER
    if (
        _FRONT_MATTER_RE.match(body)
        or _MD_LINK_RE.search(body)
        or len(_ATX_HEADING_RE.findall(body)) >= 2
    ):
        return MARKDOWN
    for line in body.splitlines():
        if is_paper_url_line(line):
            return LINKED_TEXT
    return PAGE_TEXT
