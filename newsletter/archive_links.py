"""The signed links to a reader's own pages on the web: one sent issue (the email's "view
in browser" link, purpose "archive") and the Atom feed of everything they were sent
(purpose "feed"). Both are personal, so both carry a token signed with the key the
email's other links use (see `tokens.py`); a dry run's links name its dry-run issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter import tokens
from newsletter.subscribers import normalized_email

ARCHIVE_PATH = "/archive/{}"
FEED_PATH = "/feed/{}.atom"


@dataclass(frozen=True)
class IssueRef:
    """One reader's copy of one issue, as an archive link names it."""

    email: str
    issue_key: str
    dry_run: bool


@dataclass(frozen=True)
class FeedRef:
    """One reader's feed, as a feed link names it."""

    email: str
    dry_run: bool


def archive_url(base_url: str, ref: IssueRef, secret_key: str) -> str:
    """The web page of one reader's issue."""
    token = tokens.sign("archive", [ref.email, ref.issue_key, int(ref.dry_run)], secret_key)
    return base_url + ARCHIVE_PATH.format(token)


def feed_url(base_url: str, ref: FeedRef, secret_key: str) -> str:
    """One reader's Atom feed of their papers."""
    token = tokens.sign("feed", [ref.email, int(ref.dry_run)], secret_key)
    return base_url + FEED_PATH.format(token)


def read_archive_token(token: str, secret_key: str) -> IssueRef | None:
    """The issue an archive token names, or None for a forged, damaged or foreign one."""
    value = tokens.read("archive", token, secret_key)
    if not (isinstance(value, list) and len(value) == 3):
        return None
    email, key, dry = value
    if not (isinstance(key, str) and key and dry in (0, 1)):
        return None
    address = _address(email)
    return IssueRef(address, key, bool(dry)) if address else None


def read_feed_token(token: str, secret_key: str) -> FeedRef | None:
    """The feed a feed token names, or None for a forged, damaged or foreign one."""
    value = tokens.read("feed", token, secret_key)
    if not (isinstance(value, list) and len(value) == 2):
        return None
    email, dry = value
    address = _address(email)
    return FeedRef(address, bool(dry)) if address and dry in (0, 1) else None


def _address(value: object) -> str | None:
    """The ledger's form of a signed address (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        normalized_email(value)
    except ValueError:
        return None
    return value.strip().lower()
