"""Who is subscribed: joining and leaving, kept in step across the database and the file.

The live list is the database (`roster.py`); the subscribers YAML is the operator's way
to edit it. Leaving writes the database first (the `unsubscribes` record, which every
send checks, and the row's state), so the next issue (even one built already) skips the
address whatever happens to the file; then, for an address listed in the YAML, marks
its entry `active: false` so the file tells the truth. Joining from the command line
edits the YAML first, imports it, then clears any record of leaving. When the two race,
the address ends up not receiving: the safe side.

The command line, the web pages (preferences, one-click link) call the same `leave`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from newsletter import roster
from newsletter.errors import SubscribersError
from newsletter.roster import Member
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import EditResult, SubscriberChange, set_active, subscribe

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
    roster.sync(settings, store, strict=False)
    newly = store.record_unsubscribe(key, source=source)
    roster.set_state(store, key, "unsubscribed")
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
    """Add or update a subscriber in the file, import it, and make them active again
    (clearing any record of their leaving or pausing)."""
    result = subscribe(settings.subscribers_file, change)
    store.forget_unsubscribe(result.subscriber.key)
    roster.sync(settings, store)
    roster.set_state(store, result.subscriber.key, "active")
    return result


def member_json(member: Member) -> dict[str, object]:
    """One member as `newsletter subscribers --json` shows them."""
    s = member.subscriber
    return {
        "email": s.email,
        "name": s.name,
        "topics": [t.topic for t in s.topics],
        "weights": {t.topic: t.weight for t in s.topics if t.weight != 1.0},
        "exclude": list(s.exclude),
        "max_papers": s.max_papers,
        "frequency": s.frequency,
        "active": member.active,
        "state": member.state,
        "origin": member.origin,
        "in_file": member.in_file,
    }


def memberships(settings: Settings, store: Store) -> list[Member]:
    """Everyone on the live list (file entries first, in file order), any state."""
    return roster.members(settings, store)
