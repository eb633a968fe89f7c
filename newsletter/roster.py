"""The live subscriber list: who receives the digest, kept in the database.

Every issue, preview, ranking and listing reads the `subscribers` table (one row per
address: the preferences as JSON, a state and an origin). Two things write it:

* **The operator's subscribers YAML**, imported by `sync` whenever the file changed
  (its modification time and size, then its SHA-256, are kept in `meta`): at the start
  of every command that reads subscribers, before each issue the service builds, and
  by the web app. The merge is three-way, per field (name, topics, exclude, max_papers,
  frequency, active): each row keeps the entry as it was last imported (`from_file`);
  a field whose value in the file differs from that is an operator's edit and wins; any
  other field keeps the database's value, which a reader may have changed on the web.
  An entry new to a row that came from the web (the operator adds a reader to the file)
  takes the fields the entry sets. An entry removed from the file unsubscribes a
  subscriber who came from the file (a row that came from the web only loses its link
  to the file); putting it back revives them. The file itself is never written here.
* **Readers on the web** (sign-up, preferences, pause, leave; see `signup.py`,
  `membership.py`): those changes live only in the database, so the file keeps the
  operator's bytes and comments.

States: `active` (receives issues), `paused`, `unsubscribed`; `pending` sign-ups are
kept apart until they are confirmed (`signup.py`). `unsubscribed` is sticky against the
file: only the reader (signing up again) or the operator's `newsletter subscribe`
brings someone back, as the `unsubscribes` record (checked at send time) always did.

Rows are loaded without validating them again (they were validated on the way in),
with the garbage collector paused while a batch is built (the records hold no cycles,
and its passes over a growing heap cost more than the building): 100,000 subscribers
load in about a second. An issue reads them a chunk at a time (`receiving_chunks`,
`receiving_by_email`), never all at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from newsletter import collector
from newsletter.errors import SubscribersError
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import DEFAULT_MAX_PAPERS, Subscriber, Topic, parse_subscribers

log = logging.getLogger(__name__)

State = Literal["pending", "active", "paused", "unsubscribed"]
Origin = Literal["file", "web"]
# The fields the three-way merge decides one by one.
MERGED_FIELDS = ("name", "topics", "exclude", "max_papers", "frequency", "active")
# The `unsubscribes.source` of an entry the operator removed from the file.
REMOVED_FROM_FILE = "removed from the subscribers file"
_FILE_META = "subscribers_file"
_REVISION_META = "roster_revision"
_ORDER = " ORDER BY from_file IS NULL, position, created_at, email"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- records: a Subscriber as the database keeps it --------------------------------------


def record_of(subscriber: Subscriber) -> dict[str, Any]:
    """The preferences of `subscriber` as stored (JSON; `active` is the row's state)."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "topics": [[t.topic, t.weight] for t in subscriber.topics],
        "exclude": list(subscriber.exclude),
        "max_papers": subscriber.max_papers,
        "frequency": subscriber.frequency,
    }


def file_view(subscriber: Subscriber) -> dict[str, Any]:
    """A file entry's merged fields, as compared with the last import."""
    return {**record_of(subscriber), "active": subscriber.active}


def subscriber_of(record: Mapping[str, Any], *, active: bool) -> Subscriber:
    """The Subscriber a stored record describes, built without validating it again (the
    record was validated on its way in): what `Subscriber.model_construct` does, without
    its per-field bookkeeping, which would cost a second per 100,000 subscribers. Equal
    topics share one frozen `Topic`. `tests/test_roster.py` checks the result equals the
    validated model."""
    values = {
        "email": record["email"],
        "name": record.get("name"),
        "topics": tuple([_topic(topic, float(weight)) for topic, weight in record["topics"]]),
        "exclude": tuple(record.get("exclude", ())),
        "max_papers": int(record.get("max_papers", DEFAULT_MAX_PAPERS)),
        "frequency": record.get("frequency", "daily"),
        "active": active,
    }
    subscriber = _new(Subscriber)
    _set_dict(subscriber, values)
    _set_fields(subscriber, set(_FIELDS))
    _set_extra(subscriber, None)
    _set_private(subscriber, None)
    return subscriber


# The slots `subscriber_of` fills, their setters bound once: what `object.__setattr__`
# would find for each name (a frozen model's own `__setattr__` refuses), without looking
# it up again for each of 100,000 subscribers.
_new = Subscriber.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_FIELDS = ("email", "name", "topics", "exclude", "max_papers", "frequency", "active")


@lru_cache(maxsize=65536)
def _topic(topic: str, weight: float) -> Topic:
    return Topic.model_construct(topic=topic, weight=weight)


@dataclass(frozen=True)
class Member:
    """One address on the live list: preferences, state and where it came from."""

    subscriber: Subscriber  # `active` is True exactly when the state is active
    state: State
    origin: Origin
    in_file: bool = False

    @property
    def active(self) -> bool:
        return self.state == "active"


def _member(row: sqlite3.Row) -> Member:
    return Member(
        subscriber_of(json.loads(row["record"]), active=row["state"] == "active"),
        row["state"],
        row["origin"],
        in_file=row["from_file"] is not None,
    )


# -- reading the live list ---------------------------------------------------------------


def receiving(settings: Settings, store: Store, *, strict: bool = True) -> list[Subscriber]:
    """Everyone who receives the next issue (state active), the file imported first if it
    changed, file entries first in file order. For listings and small batches: an issue
    reads the list a chunk at a time (`receiving_chunks`)."""
    sync(settings, store, strict=strict)
    rows = store.rows(f"SELECT record FROM subscribers WHERE state='active'{_ORDER}")
    return _built(record for (record,) in rows)


def receiving_chunks(
    settings: Settings, store: Store, *, size: int, strict: bool = True
) -> Iterator[list[Subscriber]]:
    """`receiving`, `size` subscribers at a time in the order of their address (the key
    an issue's plan is fingerprinted in), each chunk read when asked for: the caller
    holds one chunk, not the list. The file is imported first if it changed."""
    sync(settings, store, strict=strict)
    after = ""
    while True:
        # `+state`: walk the address index (in order, from `after`) rather than the
        # state index, which would sort every active row again for each chunk.
        rows = store.rows(
            "SELECT email, record FROM subscribers WHERE +state='active' AND email > ?"
            " ORDER BY email LIMIT ?",
            (after, size),
        )
        if not rows:
            return
        after = rows[-1][0]
        yield _built(record for _, record in rows)


def receiving_by_email(store: Store, emails: Sequence[str]) -> dict[str, Subscriber]:
    """Those of `emails` (ledger keys) who may receive mail right now, by key: active on
    the live list and not unsubscribed. How a send loads the readers of each chunk of
    its ledger (not synced: the issue's run synced when it started)."""
    rows = store.rows(
        "SELECT email, record FROM subscribers WHERE state='active'"
        " AND email IN (SELECT value FROM json_each(?))"
        " AND email NOT IN (SELECT email FROM unsubscribes)",
        (json.dumps(list(emails)),),
    )
    return dict(zip((email for email, _ in rows), _built(r for _, r in rows), strict=True))


def receiving_among(store: Store, emails: Sequence[str]) -> set[str]:
    """`receiving_by_email` without building anyone: which of `emails` may receive mail."""
    rows = store.rows(
        "SELECT email FROM subscribers WHERE state='active'"
        " AND email IN (SELECT value FROM json_each(?))"
        " AND email NOT IN (SELECT email FROM unsubscribes)",
        (json.dumps(list(emails)),),
    )
    return {email for (email,) in rows}


def _built(records: Iterable[str]) -> list[Subscriber]:
    """The active Subscribers of stored JSON records."""
    with collector.paused():
        return [subscriber_of(json.loads(record), active=True) for record in records]


def members(settings: Settings, store: Store, *, strict: bool = True) -> list[Member]:
    """Every address the database knows (file entries first, in file order), whatever
    its state, pending sign-ups included."""
    sync(settings, store, strict=strict)
    listed = [_member(row) for row in store.rows(f"SELECT * FROM subscribers{_ORDER}")]
    pending = store.rows("SELECT record FROM signups ORDER BY requested_at, email")
    waiting = {}
    for (record,) in pending:
        subscriber = subscriber_of(json.loads(record), active=False)
        waiting[subscriber.key] = Member(subscriber, "pending", "web")
    out = [
        waiting.pop(m.subscriber.key)
        if m.state == "unsubscribed" and m.subscriber.key in waiting
        else m
        for m in listed
    ]
    return out + [m for m in waiting.values() if m.subscriber.key not in _keys(listed)]


def _keys(listed: Iterable[Member]) -> set[str]:
    return {m.subscriber.key for m in listed}


def find(store: Store, email: str) -> Member | None:
    """The row of one address (not synced: callers sync once per request or command)."""
    found = store.rows("SELECT * FROM subscribers WHERE email=?", (email.strip().lower(),))
    return _member(found[0]) if found else None


def revision(store: Store) -> int:
    """A number that changes with every write to the live list or the readers' marks
    (what cached pages depend on)."""
    found = store.rows("SELECT value FROM meta WHERE key=?", (_REVISION_META,))
    return int(found[0][0]) if found else 0


def bump(db: sqlite3.Connection) -> None:
    """Count a write to the live list (call inside the writing transaction)."""
    db.execute(
        "INSERT INTO meta(key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE"
        " SET value = CAST(value AS INTEGER) + 1",
        (_REVISION_META,),
    )


# -- writing: readers and the operator's commands ----------------------------------------


def set_state(store: Store, email: str, state: State) -> bool:
    """Move an address to `state`; False when the database has no row for it."""
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE subscribers SET state=?, updated_at=? WHERE email=?",
            (state, _now(), email.strip().lower()),
        )
        if cursor.rowcount:
            bump(db)
    return cursor.rowcount > 0


def update_preferences(store: Store, subscriber: Subscriber) -> None:
    """Replace the preferences of an existing row (a reader's edit on the web)."""
    with store.transaction() as db:
        db.execute(
            "UPDATE subscribers SET record=?, updated_at=? WHERE email=?",
            (json.dumps(record_of(subscriber), ensure_ascii=False), _now(), subscriber.key),
        )
        bump(db)


def activate(db: sqlite3.Connection, subscriber: Subscriber) -> None:
    """Make `subscriber` active with these preferences, in the caller's transaction: a
    new web subscriber, or one who left and came back (their marks and their link to
    the file, if any, are kept)."""
    now = _now()
    db.execute(
        "INSERT INTO subscribers(email, record, state, origin, created_at, updated_at)"
        " VALUES (?, ?, 'active', 'web', ?, ?) ON CONFLICT(email) DO UPDATE SET"
        " record=excluded.record, state='active', updated_at=excluded.updated_at",
        (subscriber.key, json.dumps(record_of(subscriber), ensure_ascii=False), now, now),
    )
    db.execute("DELETE FROM unsubscribes WHERE email=?", (subscriber.key,))
    bump(db)


# -- importing the operator's file -------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """What one import of the file changed."""

    added: int
    updated: int
    removed: int


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def sync(settings: Settings, store: Store, *, strict: bool = True) -> Imported | None:
    """Import the subscribers file if it changed since the last import; None if not.

    A file that cannot be read or is invalid raises SubscribersError (naming the file,
    line and field); with `strict=False` (the web app) that is logged and the live list
    stays as it was."""
    path = settings.subscribers_file
    try:
        return _sync(path, store)
    except SubscribersError as exc:
        if strict:
            raise
        log.warning("the subscribers file was not imported, the list stays as it was: %s", exc)
        return None


def _sync(path: Path, store: Store) -> Imported | None:
    identity = _identity(path)
    known = _known_file(store)
    if identity is None:
        # A missing file is a mistake to report, never "everyone was removed".
        raise SubscribersError(
            "file not found; copy subscribers.example.yaml there or set "
            "NEWSLETTER_SUBSCRIBERS_FILE",
            path=path,
        )
    if known.get("path") == str(path.resolve()) and known.get("stat") == list(identity):
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscribersError(f"cannot read the file: {exc.strerror or exc}", path=path) from exc
    digest = hashlib.sha256(data).hexdigest()
    stamp = {"path": str(path.resolve()), "stat": list(identity), "sha256": digest}
    if known.get("path") == stamp["path"] and known.get("sha256") == digest:
        with store.transaction() as db:
            _remember_file(db, stamp)  # touched, not changed
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubscribersError(f"cannot read the file: {exc}", path=path) from exc
    entries = parse_subscribers(text, path=path)
    with store.transaction() as db:
        if _known_file_in(db).get("sha256") == digest and known.get("path") == stamp["path"]:
            _remember_file(db, stamp)  # another process imported it meanwhile
            return None
        result = merge_file(db, entries)
        _remember_file(db, stamp)
        bump(db)
    log.debug(
        "imported %s: %d added, %d updated, %d removed",
        path,
        result.added,
        result.updated,
        result.removed,
    )
    return result


def _known_file(store: Store) -> dict[str, Any]:
    found = store.rows("SELECT value FROM meta WHERE key=?", (_FILE_META,))
    value = json.loads(found[0][0]) if found else {}
    return value if isinstance(value, dict) else {}


def _known_file_in(db: sqlite3.Connection) -> dict[str, Any]:
    row = db.execute("SELECT value FROM meta WHERE key=?", (_FILE_META,)).fetchone()
    value = json.loads(row[0]) if row else {}
    return value if isinstance(value, dict) else {}


def _remember_file(db: sqlite3.Connection, stamp: Mapping[str, Any]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_FILE_META, json.dumps(stamp))
    )


def forget_file_import(store: Store) -> None:
    """Make the next `sync` import the file even if it looks unchanged."""
    with store.transaction() as db:
        db.execute("DELETE FROM meta WHERE key=?", (_FILE_META,))


def merge_file(db: sqlite3.Connection, entries: Sequence[Subscriber]) -> Imported:
    """Merge the file's entries into the live list (in the caller's transaction)."""
    rows = {row["email"]: row for row in db.execute("SELECT * FROM subscribers")}
    left = dict(db.execute("SELECT email, source FROM unsubscribes").fetchall())
    now = _now()
    writes: list[tuple[Any, ...]] = []
    revived: list[str] = []
    added = updated = 0
    for position, entry in enumerate(entries):
        row = rows.get(entry.key)
        merged = _merged(row, entry, left.get(entry.key))
        if merged is None:
            continue
        record, state = merged
        if state != "unsubscribed" and left.get(entry.key) == REMOVED_FROM_FILE:
            revived.append(entry.key)
        values = (
            json.dumps(record, ensure_ascii=False),
            state,
            json.dumps(file_view(entry), ensure_ascii=False),
            position,
        )
        if row is not None and values == (
            row["record"],
            row["state"],
            row["from_file"],
            row["position"],
        ):
            continue
        added += row is None
        updated += row is not None
        writes.append((entry.key, *values, now, now))
    db.executemany(
        "INSERT INTO subscribers(email, record, state, from_file, position, origin,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'file', ?, ?)"
        " ON CONFLICT(email) DO UPDATE SET record=excluded.record, state=excluded.state,"
        " from_file=excluded.from_file, position=excluded.position,"
        " updated_at=excluded.updated_at",
        writes,
    )
    db.executemany("DELETE FROM unsubscribes WHERE email=?", ((key,) for key in revived))
    removed = _detach_removed(db, rows, {entry.key for entry in entries}, now)
    return Imported(added, updated, removed)


def _merged(
    row: sqlite3.Row | None, entry: Subscriber, left_because: str | None
) -> tuple[dict[str, Any], State] | None:
    """The row's record and state after merging `entry` (see the module docstring)."""
    incoming = file_view(entry)
    if row is None:
        state: State = "active" if entry.active else "paused"
        if left_because is not None and left_because != REMOVED_FROM_FILE:
            state = "unsubscribed"
        return record_of(entry), state
    live = {**json.loads(row["record"]), "active": row["state"] == "active"}
    base = json.loads(row["from_file"]) if row["from_file"] is not None else None
    for name in MERGED_FIELDS:
        if base is None:
            wins = name in entry.model_fields_set
        else:
            wins = incoming[name] != base.get(name)
        if wins:
            live[name] = incoming[name]
    live["email"] = entry.email
    active = bool(live.pop("active"))
    if row["state"] == "unsubscribed":
        if left_because != REMOVED_FROM_FILE:
            return live, "unsubscribed"  # the reader left: only they (or `subscribe`) undo it
        active = entry.active  # the operator put a removed entry back
    return live, "active" if active else "paused"


def _detach_removed(
    db: sqlite3.Connection, rows: Mapping[str, sqlite3.Row], kept: set[str], now: str
) -> int:
    """Rows linked to the file whose entry is gone: a file subscriber is unsubscribed
    (recorded as removed by the operator), a web one only loses the link."""
    gone = [row for key, row in rows.items() if row["from_file"] is not None and key not in kept]
    db.executemany(
        "UPDATE subscribers SET from_file=NULL, position=NULL, updated_at=?,"
        " state = CASE WHEN origin='file' THEN 'unsubscribed' ELSE state END WHERE email=?",
        ((now, row["email"]) for row in gone),
    )
    db.executemany(
        "INSERT OR IGNORE INTO unsubscribes(email, at, source) VALUES (?, ?, ?)",
        ((row["email"], now, REMOVED_FROM_FILE) for row in gone if row["origin"] == "file"),
    )
    return sum(1 for row in gone if row["origin"] == "file")
