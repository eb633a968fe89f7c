"""Who is subscribed: joining and leaving, kept in step across the YAML file and the database.

A subscription lives in two places. The subscribers YAML (edited by `subscribers.py`)
says who the person is and what they read; the `unsubscribes` table (in `store.py`) is
the send-time record of who left, and it is what `pipeline.deliver` and `dry_run`
check before every message. Leaving writes the database first, so the next issue (even
one built already) skips the address whatever happens to the file, then marks the entry
`active: false` in the YAML so the file tells the truth. Joining edits the YAML first,
then forgets the database record. When the two race, the address ends up not receiving:
the safe side.

The command line and the web app (`newsletter unsubscribe`, the one-click link) call
the same `leave`, so both update both places.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from newsletter.errors import SubscribersError
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import (
    EditResult,
    Subscriber,
    SubscriberChange,
    load_subscribers,
    set_active,
    subscribe,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Left:
    """What `leave` did."""

    email: str
    newly_recorded: bool  # False: the database had recorded it before
    file_updated: bool  # the YAML entry was set to `active: false` just now
    listed: bool  # the address has an entry in the YAML
    file_problem: str | None = None  # why the YAML could not be updated (the DB record holds)


def leave(settings: Settings, store: Store, email: str, *, source: str) -> Left:
    """Unsubscribe `email` at once; harmless to repeat."""
    key = email.strip().lower()
    newly = store.record_unsubscribe(key, source=source)
    # One line per request, whatever the route: the address and where it came from
    # (never a link's token: it acts for the subscriber).
    log.info(
        "unsubscribed %s (source: %s)" if newly else "%s was already unsubscribed (source: %s)",
        key,
        source,
        extra={"event": "unsubscribe", "email": key, "source": source, "new": newly},
    )
    try:
        result = set_active(settings.subscribers_file, key, False)
    except SubscribersError as exc:
        # The database record already stops every send; the file is fixed by hand later.
        log.warning("%s unsubscribed, but the subscribers file was not updated: %s", key, exc)
        return Left(key, newly, False, listed=False, file_problem=str(exc))
    if result is None:
        return Left(key, newly, False, listed=False)
    return Left(key, newly, result.action == "updated", listed=True)


def join(settings: Settings, store: Store, change: SubscriberChange) -> EditResult:
    """Add or update a subscriber and clear any record of their leaving."""
    result = subscribe(settings.subscribers_file, change)
    store.forget_unsubscribe(result.subscriber.key)
    return result


@dataclass(frozen=True)
class Membership:
    """One subscriber as `newsletter subscribers` lists them."""

    subscriber: Subscriber
    unsubscribed: bool  # recorded in the database

    @property
    def active(self) -> bool:
        """Receives the next issue: active in the file and not unsubscribed."""
        return self.subscriber.active and not self.unsubscribed

    @property
    def state(self) -> str:
        if self.unsubscribed:
            return "unsubscribed"
        return "active" if self.subscriber.active else "paused"

    def as_json(self) -> dict[str, object]:
        s = self.subscriber
        return {
            "email": s.email,
            "name": s.name,
            "topics": [t.topic for t in s.topics],
            "weights": {t.topic: t.weight for t in s.topics if t.weight != 1.0},
            "exclude": list(s.exclude),
            "max_papers": s.max_papers,
            "frequency": s.frequency,
            "active": self.active,
            "state": self.state,
        }


def memberships(settings: Settings, store: Store) -> list[Membership]:
    """Every subscriber in the file, in file order, with what the database says."""
    left = store.unsubscribed()
    return [Membership(s, s.key in left) for s in load_subscribers(settings.subscribers_file)]
