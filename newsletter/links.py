"""The signed links that act for one reader: manage, confirm and feedback.

Each carries a token from `tokens.py` (its own purpose, so a manage token is refused at
/confirm or /unsubscribe and vice versa; rotating NEWSLETTER_SECRET_KEY invalidates all).
The unsubscribe link lives in `subscribers.py`, which made it first.

A digest has two feedback links per paper. Signing each of them separately would cost
about as much as rendering the email, so one feedback token per message names the
reader, and the direction and the paper's key follow it in the path:
`/feedback/<token>/more/<paper key>`. The token is what proves the reader; the paper and
the direction only say what they mark, and the server checks the paper exists.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import quote

from newsletter import tokens
from newsletter.subscribers import normalized_email

Direction = Literal["more", "less"]
DIRECTIONS: tuple[Direction, ...] = ("more", "less")


def manage_url(base_url: str, email: str, key: str) -> str:
    """The reader's preferences page."""
    return f"{base_url}/manage/{tokens.sign('manage', email.strip().lower(), key)}"


def confirm_url(base_url: str, email: str, key: str) -> str:
    """The link that confirms a sign-up (it expires: see `read_email`'s max_age)."""
    return f"{base_url}/confirm/{tokens.sign('confirm', email.strip().lower(), key)}"


def feedback_base(base_url: str, email: str, key: str) -> str:
    """The start of every feedback link of one message (see `feedback_url`)."""
    return f"{base_url}/feedback/{tokens.sign('feedback', email.strip().lower(), key)}"


def feedback_url(base: str, direction: Direction, paper_key: str) -> str:
    return f"{base}/{direction}/{_path_segment(paper_key)}"


@lru_cache(maxsize=65536)  # an issue's papers recur in every reader's links
def _path_segment(paper_key: str) -> str:
    return quote(paper_key, safe="")


def read_email(
    purpose: tokens.Purpose, token: str, key: str, *, max_age: int | None = None
) -> str | None:
    """The address a token of `purpose` names, or None for a token that is forged,
    damaged, made for another purpose or key, expired, or not holding an address."""
    value = tokens.read(purpose, token, key, max_age=max_age)
    if not isinstance(value, str):
        return None
    try:
        normalized_email(value)
    except ValueError:
        return None
    return value.strip().lower()
