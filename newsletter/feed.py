"""One reader's Atom feed (RFC 4287): every paper they were sent, for people who read
papers in a feed reader. Each entry is one paper of one issue: its title, its Hugging
Face page, its arXiv page, the authors, the TL;DR or excerpt with the reader's why-line,
and the time the issue was made.

The XML comes from an autoescaped Jinja template (`templates/web/feed.atom.j2`), never
from string concatenation; the characters XML 1.0 cannot hold at all (control
characters, lone surrogates) are removed from every value first. Ids are `urn:uuid:`
names derived from the sender's domain, the reader and the paper, so they stay the same
whatever link the feed was fetched with (links carry freshly signed tokens).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from newsletter.archive import FeedItem
from newsletter.errors import TemplateError
from newsletter.paper_card import paper_card
from newsletter.wording import format_date, one_line

FEED_TEMPLATE = "feed.atom.j2"
FEED_AUTHORS = 10  # authors named per entry
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """`value` without the characters an XML 1.0 document cannot contain."""
    return _NOT_XML.sub("", value)


@dataclass(frozen=True)
class FeedEntry:
    """One entry, its values cleaned for XML (the template escapes them)."""

    id: str
    title: str
    url: str
    arxiv_url: str
    archive_url: str
    issue_date: str
    updated: str
    authors: tuple[str, ...]
    summary: str


def entry_id(domain: str, email: str, issue_key: str, paper_key: str) -> str:
    return "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{domain}/{email}/{issue_key}/{paper_key}")
    )


def feed_id(domain: str, email: str, dry_run: bool) -> str:
    return "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{domain}/feed/{email}/{int(dry_run)}")
    )


def feed_entry(item: FeedItem, *, domain: str, email: str, archive_url: str) -> FeedEntry:
    card = paper_card(item.pick.paper)
    why = one_line(item.pick.why)
    summary = card.summary + (f" ({why})" if why else "")
    return FeedEntry(
        id=entry_id(domain, email, item.issue.key, item.pick.paper.key),
        title=xml_text(card.title),
        url=xml_text(card.url),
        arxiv_url=xml_text(card.arxiv_url),
        archive_url=xml_text(archive_url),
        issue_date=format_date(item.issue.issue_date),
        updated=_timestamp(item.issue.created_at),
        authors=tuple(xml_text(one_line(n)) for n in item.pick.paper.authors[:FEED_AUTHORS]),
        summary=xml_text(("TL;DR " if card.is_tldr else "") + summary),
    )


def _timestamp(value: str) -> str:
    """An RFC 3339 time (the issues table stores ISO 8601 with the offset)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


class FeedWriter:
    """Renders feeds with the template in `folder` (reloaded when edited)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            autoescape=True,
            auto_reload=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self,
        *,
        digest_name: str,
        reader: str,
        feed_id: str,
        self_url: str,
        entries: Sequence[FeedEntry],
    ) -> str:
        updated = max(
            (entry.updated for entry in entries),
            default=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        try:
            return self.env.get_template(FEED_TEMPLATE).render(
                feed_id=feed_id,
                title=xml_text(f"{digest_name}: papers for {reader}"),
                reader=xml_text(reader),
                digest_name=xml_text(digest_name),
                updated=updated,
                self_url=xml_text(self_url),
                entries=entries,
            )
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"{self.folder / FEED_TEMPLATE}: the feed template is missing; copy it from "
                "the project's templates/web/ folder"
            ) from exc
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"{self.folder / FEED_TEMPLATE}{f':{line}' if line else ''}"
            raise TemplateError(f"{where}: the feed template failed: {exc}") from exc
