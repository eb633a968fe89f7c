"""Sign-up with double opt-in: a request waits in `signups` until its link is followed.

`request` records what a reader asked for and says which email to send: a confirmation
link for an address that does not receive the digest yet, or "you are already
subscribed, manage here" for one that does (active or paused). The web page shows the
same answer either way, so the form cannot tell anyone whether an address is known.
`confirm` turns the waiting request into an active subscriber (a second confirmation
finds them active and changes nothing). A request older than `confirm_max_age` is
purged: it never gets a digest (only the `subscribers` table receives issues).

Nothing here sends mail or reads the clock by itself: `now` is a parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from newsletter import roster
from newsletter.errors import SignupError
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import Subscriber

MAX_TOPICS = 20
MAX_TOPIC_CHARS = 100


def split_topics(text: str) -> list[str]:
    """Topics typed one per line or separated by commas (or semicolons), in order,
    without blanks or repeats (case-insensitively)."""
    seen: dict[str, str] = {}
    for part in re.split(r"[\n\r,;]+", text):
        topic = " ".join(part.split())
        if topic and topic.lower() not in seen:
            seen[topic.lower()] = topic
    return list(seen.values())


def requested_subscriber(
    email: str,
    topics: Sequence[str],
    *,
    frequency: str = "daily",
    exclude: Sequence[str] = (),
    max_papers: int | None = None,
) -> Subscriber:
    """The subscriber a form describes; SignupError names the field that is wrong."""
    if not email.strip():
        raise SignupError("Enter your email address.")
    if not topics:
        raise SignupError("Enter at least one topic, one per line or separated by commas.")
    if len(topics) > MAX_TOPICS:
        raise SignupError(f"Enter at most {MAX_TOPICS} topics (you entered {len(topics)}).")
    long = next((t for t in [*topics, *exclude] if len(t) > MAX_TOPIC_CHARS), None)
    if long is not None:
        raise SignupError(f"A topic may have at most {MAX_TOPIC_CHARS} characters: {long[:40]}…")
    if frequency not in ("daily", "weekly"):
        raise SignupError("Choose daily or weekly.")
    fields: dict[str, object] = {
        "email": email,
        "topics": list(topics),
        "exclude": list(exclude),
        "frequency": frequency,
    }
    if max_papers is not None:
        fields["max_papers"] = max_papers
    try:
        return Subscriber.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else "form"
        if where == "email":
            raise SignupError(f"{email.strip()!r} is not a valid email address.") from exc
        if where == "max_papers":
            raise SignupError("The number of papers must be between 1 and 100.") from exc
        raise SignupError(f"{where}: {error['msg']}") from exc


Answer = Literal["confirm", "already"]


def request(
    settings: Settings, store: Store, subscriber: Subscriber, *, now: datetime | None = None
) -> Answer:
    """Record a sign-up; "confirm": send the confirmation link, "already": the address
    receives the digest (active or paused), send the manage link instead."""
    now = now or datetime.now(UTC)
    purge(settings, store, now=now)
    roster.sync(settings, store, strict=False)
    member = roster.find(store, subscriber.key)
    if member is not None and member.state in ("active", "paused"):
        return "already"
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO signups(email, record, requested_at) VALUES (?, ?, ?)",
            (
                subscriber.key,
                json.dumps(roster.record_of(subscriber), ensure_ascii=False),
                now.isoformat(timespec="seconds"),
            ),
        )
        roster.bump(db)
    return "confirm"


Confirmed = Literal["confirmed", "already", "expired"]


def confirm(
    settings: Settings, store: Store, email: str, *, now: datetime | None = None
) -> Confirmed:
    """Activate the sign-up waiting for `email`. "already": nothing waits but the
    address is active (a second confirmation); "expired": nothing waits (purged, or
    never asked for)."""
    purge(settings, store, now=now or datetime.now(UTC))
    key = email.strip().lower()
    with store.transaction() as db:
        row = db.execute("SELECT record FROM signups WHERE email=?", (key,)).fetchone()
        if row is not None:
            roster.activate(db, roster.subscriber_of(json.loads(row[0]), active=True))
            db.execute("DELETE FROM signups WHERE email=?", (key,))
            return "confirmed"
    member = roster.find(store, key)
    return "already" if member is not None and member.state == "active" else "expired"


def is_pending(store: Store, email: str) -> bool:
    return bool(store.rows("SELECT 1 FROM signups WHERE email=?", (email.strip().lower(),)))


def purge(settings: Settings, store: Store, *, now: datetime | None = None) -> int:
    """Forget sign-ups older than `confirm_max_age`; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=settings.confirm_max_age)
    with store.transaction() as db:
        cursor = db.execute(
            "DELETE FROM signups WHERE requested_at < ?", (cutoff.isoformat(timespec="seconds"),)
        )
        if cursor.rowcount:
            roster.bump(db)
    return cursor.rowcount
