"""The SQLite state: dumps seen, papers, issues and the per-recipient delivery ledger.

One file (the `database_path` setting). Dumps are recorded by content hash, so ingesting
the same file twice changes nothing. A paper is one row across dumps, shapes and days
(found by its normalised title, or by its arXiv id under another title); `dump_papers`
says which dumps listed it, so a dump can be forgotten again. Each issue freezes, at
build time, who gets it and which papers each recipient gets; the `deliveries` rows then
move `pending -> sending -> sent | failed | unknown | skipped`, committed at every step,
and decide what a re-run still has to do.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsletter.dumps import Dump, Paper
from newsletter.errors import DISK_FULL, NoDatabaseError, StoreError

# 2: paper_embeddings (vectors of the semantic ranking model).
# 3: the richer paper records (names, comments, GitHub, project page, AI summary and
#    keywords), each dump's shape, `dump_papers` (which dumps listed which paper), and
#    papers that may belong to no dump (`first_dump_id` NULL: kept for the issues that
#    delivered them after their dump was forgotten). Opening a version-1 or -2 file
#    upgrades it in one transaction (see `Store._upgrade`).
# 4: the `unknown` delivery status (the server took the whole message but its reply never
#    came), and two ledger columns: `permanent` (no later run retries the row) and
#    `unknown_outcomes`. Files of versions 1 to 3 are upgraded in one transaction.
# 5: the live subscriber list (`subscribers`, owned by roster.py), sign-ups waiting for
#    their confirmation (`signups`, signup.py) and readers' marks on papers (`feedback`,
#    feedback.py). New tables only: older files get them in the same upgrade transaction.
SCHEMA_VERSION = 5

# `first_dump_id` NULL: a paper detached from every dump (its dumps were forgotten, but
# an issue delivered it): past issues still show it, no future pool draws it.
_PAPERS = """
CREATE TABLE IF NOT EXISTS {name} (
    key             TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    abstract        TEXT NOT NULL,
    authors_count   INTEGER,
    organization    TEXT,
    published       TEXT,
    upvotes         INTEGER NOT NULL DEFAULT 0,
    upvotes_as_of   TEXT NOT NULL,
    arxiv_id        TEXT,
    first_dump_id   INTEGER REFERENCES dumps(id),
    last_dump_id    INTEGER REFERENCES dumps(id),
    authors         TEXT NOT NULL DEFAULT '[]',
    comments        INTEGER,
    github_repo     TEXT,
    github_stars    INTEGER,
    project_page    TEXT,
    ai_summary      TEXT,
    ai_keywords     TEXT NOT NULL DEFAULT '[]'
)"""

# `permanent`: a failed (or unknown) row no later run retries: a 5xx refusal, a message
# that cannot be built, an address the server cannot take; or an outcome unknown twice.
# `unknown_outcomes`: how often the server took the whole message and no reply came;
# the run after the first sends it once more, none after the second (see `mark_unknown`).
_DELIVERIES = """
CREATE TABLE IF NOT EXISTS {name} (
    issue_id    INTEGER NOT NULL REFERENCES issues(id),
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                    ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    code        INTEGER,
    message     TEXT,
    updated_at  TEXT NOT NULL,
    permanent   INTEGER NOT NULL DEFAULT 0,
    unknown_outcomes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (issue_id, email)
)"""

# The columns of `deliveries` in versions 1 to 3 (copied over when upgrading).
_OLD_DELIVERY_COLUMNS = "issue_id, email, status, attempts, code, message, updated_at"

# The columns of `papers` in versions 1 and 2 (copied over when upgrading).
_OLD_PAPER_COLUMNS = (
    "key, title, abstract, authors_count, organization, published, upvotes, upvotes_as_of,"
    " arxiv_id, first_dump_id, last_dump_id"
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dumps (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    page_date   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    paper_count INTEGER NOT NULL,
    shape       TEXT
);
{_PAPERS.format(name="papers")};
CREATE INDEX IF NOT EXISTS papers_first_dump ON papers(first_dump_id);
CREATE INDEX IF NOT EXISTS papers_arxiv_id ON papers(arxiv_id);
CREATE TABLE IF NOT EXISTS dump_papers (
    dump_id    INTEGER NOT NULL REFERENCES dumps(id),
    paper_key  TEXT NOT NULL REFERENCES papers(key),
    PRIMARY KEY (dump_id, paper_key)
);
CREATE INDEX IF NOT EXISTS dump_papers_paper ON dump_papers(paper_key);
CREATE TABLE IF NOT EXISTS issues (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL,
    dry_run       INTEGER NOT NULL,
    issue_date    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_dump_id  INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL DEFAULT '',
    UNIQUE (key, dry_run)
);
{_DELIVERIES.format(name="deliveries")};
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries(issue_id, status);
CREATE TABLE IF NOT EXISTS delivery_papers (
    issue_id   INTEGER NOT NULL,
    email      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    paper_key  TEXT NOT NULL REFERENCES papers(key),
    score      REAL NOT NULL,
    why        TEXT NOT NULL,
    PRIMARY KEY (issue_id, email, position)
);
CREATE INDEX IF NOT EXISTS delivery_papers_email ON delivery_papers(email);
CREATE TABLE IF NOT EXISTS paper_embeddings (
    key     TEXT NOT NULL REFERENCES papers(key),
    model   TEXT NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (key, model)
);
CREATE TABLE IF NOT EXISTS unsubscribes (
    email   TEXT PRIMARY KEY,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscribers (
    email       TEXT PRIMARY KEY,
    record      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'paused', 'unsubscribed')),
    origin      TEXT NOT NULL CHECK (origin IN ('file', 'web')),
    from_file   TEXT,
    position    INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscribers_state ON subscribers(state);
CREATE TABLE IF NOT EXISTS signups (
    email        TEXT PRIMARY KEY,
    record       TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    email      TEXT NOT NULL,
    paper_key  TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('more', 'less')),
    at         TEXT NOT NULL,
    PRIMARY KEY (email, paper_key)
);
"""

FloatVector = npt.NDArray[np.float32]

# `skipped`: the recipient unsubscribed or became inactive after the issue was built.
# `unknown`: the server took the whole message but did not answer in time: it may have
# arrived (resent once by the next run, see `Store.resend_unknown`).
STATUSES = ("pending", "sending", "sent", "failed", "skipped", "unknown")
UNSUBSCRIBED_DURING_SEND = "unsubscribed while the issue was being sent"


# A plan being built: private to the connection (TEMP), copied by `create_issue`.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS staged_deliveries (email TEXT NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS staged_picks (email TEXT NOT NULL, position INTEGER"
    " NOT NULL, paper_key TEXT NOT NULL, score REAL NOT NULL, why TEXT NOT NULL)",
)
STAGE_BATCH = 2000  # recipients staged per statement


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class IngestResult:
    """What one dump added: `new` is False when the same content was ingested before.
    `keys` are the stored papers it listed (a paper found by its arXiv id keeps the key
    of the row it joined)."""

    dump_id: int
    new: bool
    papers: int
    new_papers: int
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class DumpRecord:
    """One ingested dump: `papers` it listed, `new_papers` it was the first to bring.
    `shape` is None for dumps ingested before the store recorded shapes."""

    id: int
    name: str
    shape: str | None
    page_date: date
    papers: int
    new_papers: int
    ingested_at: datetime


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a dump did to its papers.

    `removed`: papers only it listed, deleted with their vectors. `shared`: papers other
    dumps (`other_dumps`) also listed, kept. `delivered`: papers only it listed that a
    real issue sent, kept (detached) for that issue's history; `planned`: the same for a
    real issue still being sent. `dry_runs`: keys of dry-run issues that drew on removed
    papers, deleted so the next dry run rebuilds them."""

    dump: DumpRecord
    removed: int
    shared: int
    other_dumps: tuple[int, ...]
    delivered: int
    planned: int
    dry_runs: tuple[str, ...]


@dataclass(frozen=True)
class Issue:
    id: int
    key: str
    dry_run: bool
    issue_date: date
    created_at: str
    last_dump_id: int
    fingerprint: str = ""


@dataclass(frozen=True)
class PlannedPick:
    """One paper frozen into an issue for one recipient."""

    paper_key: str
    score: float
    why: str


@dataclass(frozen=True)
class StagedPlan:
    """A plan written into the connection's staging tables (`Store.stage_plan`), not yet
    an issue: `create_issue` freezes it in one short transaction."""

    recipients: int
    picks: int


@dataclass(frozen=True)
class Delivery:
    issue_id: int
    email: str
    status: str
    attempts: int
    code: int | None
    message: str | None
    permanent: bool = False  # no later run retries it
    unknown_outcomes: int = 0


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    """A connection to the state database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open the database at `path`. With `create` it is made (and its folders) when
        missing; without, a missing file is refused (`NoDatabaseError`) and nothing is
        made: SQLite itself is told not to create it, so there is no window between a
        check and the open."""
        self.path = Path(path)
        if create:
            self._make_folder()
        self._db = self._connect(create=create)
        self._set_up()

    def _make_folder(self) -> None:
        if self.path.parent == Path(""):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                disk_full_message(self.path, str(exc.strerror))
                if exc.errno in DISK_FULL
                else f"{self.path}: cannot create its folder ({exc.strerror}); check "
                "NEWSLETTER_DATABASE_PATH and the folder's permissions"
            ) from exc

    def _connect(self, *, create: bool) -> _Connection:
        # mode=rw: SQLite opens the file for reading and writing, never creates it.
        target = self.path if create else f"{self.path.absolute().as_uri()}?mode=rw"
        try:
            db = sqlite3.connect(
                target, timeout=30, isolation_level=None, factory=_Connection, uri=not create
            )
        except sqlite3.OperationalError as exc:
            if not create and not self.path.exists():
                raise NoDatabaseError(no_database_message(self.path)) from exc
            raise StoreError(
                f"{self.path}: cannot open the database ({exc}); check the file's "
                "permissions and NEWSLETTER_DATABASE_PATH"
            ) from exc
        db.path = self.path
        return db

    def _set_up(self) -> None:
        """Pragmas, then create or upgrade the schema."""
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives the process being killed (what the ledger's
            # exactly-once rules are about) without a disk sync per commit; only a power
            # loss can drop the last commits, which then means a resend, never a skip.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: cannot open the database ({exc}); it is damaged or not a "
                "newsletter database. Move it aside and run again to start a fresh one."
            ) from exc

    # -- lifecycle ---------------------------------------------------------------------

    def _migrate(self) -> None:
        tables = _tables(self._db)
        if "meta" in tables:
            version = _version(self._db)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: the database has schema version {version}, newer than this "
                    f"program's {SCHEMA_VERSION}; upgrade newsletter or use another database_path."
                )
            if version == SCHEMA_VERSION:
                return
        elif tables:
            raise StoreError(
                f"{self.path}: this SQLite file holds other tables ({', '.join(sorted(tables))}) "
                "and is not a newsletter database; set NEWSLETTER_DATABASE_PATH to another file."
            )
        # Rebuilding `papers` (see `_upgrade`) needs foreign keys off while the old table is
        # dropped, and SQLite ignores that pragma inside a transaction: set it around one.
        self._db.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.transaction() as db:
                self._upgrade(db)
        finally:
            self._db.execute("PRAGMA foreign_keys = ON")

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Create the schema, or bring a file of an older version to the current one, in the
        caller's transaction (a failure leaves the file as it was).

        Version 3 lets a paper outlive its dumps (`first_dump_id` NULL), and SQLite cannot
        drop a NOT NULL with ALTER TABLE, so `papers` is rebuilt: a new table with every
        column, the rows copied, the old one dropped, the new one renamed (SQLite's own
        recipe; the keys, which the ledger and the vectors point to, are unchanged).
        `dumps` gets its `shape` column with ALTER TABLE; `dump_papers` starts out with
        what the old rows know: the first and the last dump that listed each paper.

        Version 4 adds the `unknown` status to the CHECK of `deliveries`, which ALTER
        TABLE cannot change either: `deliveries` is rebuilt the same way, its rows
        copied, a failure with a 5xx code marked `permanent` (the rule that decided it
        until then)."""
        if "meta" in _tables(db) and _version(db) >= SCHEMA_VERSION:
            return  # another process upgraded it while this one waited for the lock
        old_papers = _columns(db, "papers")
        rebuild = bool(old_papers) and "ai_keywords" not in old_papers
        if rebuild:
            db.execute(_PAPERS.format(name="papers_v3"))
            db.execute(
                f"INSERT INTO papers_v3({_OLD_PAPER_COLUMNS})"
                f" SELECT {_OLD_PAPER_COLUMNS} FROM papers"
            )
            db.execute("DROP TABLE papers")
            db.execute("ALTER TABLE papers_v3 RENAME TO papers")
        old_deliveries = _columns(db, "deliveries")
        if old_deliveries and "permanent" not in old_deliveries:
            db.execute(_DELIVERIES.format(name="deliveries_v4"))
            db.execute(
                f"INSERT INTO deliveries_v4({_OLD_DELIVERY_COLUMNS}, permanent)"
                f" SELECT {_OLD_DELIVERY_COLUMNS},"
                " status = 'failed' AND COALESCE(code >= 500, 0) FROM deliveries"
            )
            db.execute("DROP TABLE deliveries")
            db.execute("ALTER TABLE deliveries_v4 RENAME TO deliveries")
        if _columns(db, "dumps") and "shape" not in _columns(db, "dumps"):
            db.execute("ALTER TABLE dumps ADD COLUMN shape TEXT")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if rebuild:
            db.execute(
                "INSERT OR IGNORE INTO dump_papers(dump_id, paper_key)"
                " SELECT first_dump_id, key FROM papers"
                " UNION SELECT last_dump_id, key FROM papers"
            )
        for table in ("papers", "dump_papers"):
            problem = db.execute(f"PRAGMA foreign_key_check({table})").fetchone()
            if problem is not None:
                raise StoreError(
                    f"{self.path}: cannot upgrade the database to schema version "
                    f"{SCHEMA_VERSION}: {table} row {problem[1]} points to a missing "
                    f"{problem[2]} row; nothing was changed. Keep using the previous version "
                    "of newsletter with this file, or move it aside to start a fresh one."
                )
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        if self._db.in_transaction:  # left open by a ROLLBACK that failed (see _roll_back)
            self._db.execute("ROLLBACK")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._roll_back(exc)
            raise

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one read-only statement, outside any transaction (for the modules
        that own a table of their own: roster.py, signup.py, feedback.py)."""
        return self._db.execute(sql, parameters).fetchall()

    def _roll_back(self, cause: BaseException) -> None:
        """Undo the open transaction after `cause`, never hiding it: after a full disk or
        an I/O error SQLite may have rolled back already (a ROLLBACK then fails with "no
        transaction is active"), and a ROLLBACK that fails is only noted on `cause`."""
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("ROLLBACK")
        except (sqlite3.Error, StoreError) as exc:
            cause.add_note(f"the ROLLBACK after it failed too: {exc}")

    # -- dumps and papers --------------------------------------------------------------

    def ingest(self, dump: Dump, *, data: bytes, received_at: datetime) -> IngestResult:
        """Record a parsed dump and its papers; the same content twice changes nothing.

        A paper joins the row of the same key, or else the row with its arXiv id (the
        same paper under a slightly different title in another capture): the counts of
        the newest page win, what the row lacks is filled in, and a longer abstract
        replaces a shorter summary (see `_joined`)."""
        digest = content_hash(data)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id, paper_count FROM dumps WHERE sha256=?", (digest,)
            ).fetchone()
            if row is not None:
                listed = db.execute(
                    "SELECT paper_key FROM dump_papers WHERE dump_id=? ORDER BY rowid", (row["id"],)
                )
                keys = tuple(key for (key,) in listed)
                return IngestResult(row["id"], False, row["paper_count"], 0, keys)
            # Ids are never reused: issues remember the last dump they covered, and a
            # forgotten dump's id given to a new dump would hide its papers from them.
            dump_id = _dump_id_high_water(db) + 1
            db.execute(
                "INSERT INTO dumps(id, sha256, name, page_date, received_at, ingested_at,"
                " paper_count, shape) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    dump_id,
                    digest,
                    dump.name,
                    dump.page_date.isoformat(),
                    received_at.isoformat(timespec="seconds"),
                    _now(),
                    len(dump.papers),
                    dump.shape,
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_dump_id', ?)",
                (str(dump_id),),
            )
            new_papers = 0
            as_of = dump.page_date.isoformat()
            keys_listed: dict[str, None] = {}
            for paper in dump.papers:
                existing = db.execute("SELECT * FROM papers WHERE key=?", (paper.key,)).fetchone()
                if existing is None and paper.arxiv_id:
                    existing = db.execute(
                        "SELECT * FROM papers WHERE arxiv_id=? ORDER BY rowid LIMIT 1",
                        (paper.arxiv_id,),
                    ).fetchone()
                if existing is None:
                    values = _new_row(paper, as_of, dump_id)
                    new_papers += 1
                    db.execute(
                        f"INSERT INTO papers({', '.join(values)})"
                        f" VALUES ({', '.join('?' * len(values))})",
                        tuple(values.values()),
                    )
                else:
                    values = _joined(existing, paper, as_of, dump_id)
                    # A paper detached from every dump (forgotten) comes back as new.
                    new_papers += existing["first_dump_id"] is None
                    db.execute(
                        f"UPDATE papers SET {', '.join(f'{name} = ?' for name in values)}"
                        " WHERE key = ?",
                        (*values.values(), values["key"]),
                    )
                db.execute(
                    "INSERT OR IGNORE INTO dump_papers(dump_id, paper_key) VALUES (?, ?)",
                    (dump_id, values["key"]),
                )
                keys_listed[str(values["key"])] = None
            return IngestResult(dump_id, True, len(dump.papers), new_papers, tuple(keys_listed))

    def has_dump(self, sha256: str) -> bool:
        """Was a dump with this content (`content_hash` of its bytes) ingested before?"""
        row = self._db.execute("SELECT 1 FROM dumps WHERE sha256=?", (sha256,)).fetchone()
        return row is not None

    def latest_dump_id(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM dumps").fetchone()
        return int(row[0])

    def dumps(self) -> list[DumpRecord]:
        """Every dump ingested (and not forgotten), oldest first."""
        rows = self._db.execute(
            "SELECT d.*, (SELECT COUNT(*) FROM papers p WHERE p.first_dump_id = d.id)"
            " AS new_papers FROM dumps d ORDER BY d.id"
        )
        return [_dump_record(row) for row in rows]

    def forget(self, dump_id: int) -> Forgotten | None:
        """Remove a dump and the papers only it listed (with their vectors); None if there
        is no such dump.

        Papers other dumps also listed stay, their first and last dump moved to the
        remaining ones. A paper a real issue's ledger holds is never deleted: it stays,
        detached from every dump, so that issue still renders and reports, and no future
        pool draws it. Dry-run issues that drew on removed papers are deleted. The dump's
        content hash goes with it: the same file can be ingested again."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT d.*, (SELECT COUNT(*) FROM papers p WHERE p.first_dump_id = d.id)"
                " AS new_papers FROM dumps d WHERE d.id=?",
                (dump_id,),
            ).fetchone()
            if row is None:
                return None
            record = _dump_record(row)
            high_water = _dump_id_high_water(db)
            db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('last_dump_id', ?)",
                (str(high_water),),
            )
            listed = {
                key
                for (key,) in db.execute(
                    "SELECT paper_key FROM dump_papers WHERE dump_id=:d"
                    " UNION SELECT key FROM papers WHERE first_dump_id=:d OR last_dump_id=:d",
                    {"d": dump_id},
                )
            }
            also: dict[str, set[int]] = {}
            for key, other in db.execute(
                "SELECT paper_key, dump_id FROM dump_papers"
                " WHERE dump_id != ? AND paper_key IN (SELECT value FROM json_each(?))",
                (dump_id, _json(listed)),
            ):
                also.setdefault(key, set()).add(other)
            only = listed - also.keys()
            in_real_issues = _ledger_keys(db, only, real=True)
            delivered = _ledger_keys(db, only, real=True, sent=True)
            removed = only - in_real_issues
            dry_runs = db.execute(
                "SELECT id, key FROM issues WHERE dry_run = 1 AND id IN"
                " (SELECT issue_id FROM delivery_papers"
                "  WHERE paper_key IN (SELECT value FROM json_each(?)))"
                " ORDER BY id",
                (_json(removed),),
            ).fetchall()
            for issue_id, _ in dry_runs:
                _delete_issue(db, issue_id)
            db.execute("DELETE FROM dump_papers WHERE dump_id=?", (dump_id,))
            for table, column in (("paper_embeddings", "key"), ("papers", "key")):
                db.execute(
                    f"DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))",
                    (_json(removed),),
                )
            db.execute(
                "UPDATE papers SET"
                " first_dump_id = (SELECT MIN(dump_id) FROM dump_papers WHERE paper_key = key),"
                " last_dump_id = (SELECT MAX(dump_id) FROM dump_papers WHERE paper_key = key)"
                " WHERE key IN (SELECT value FROM json_each(?))",
                (_json(listed - removed),),
            )
            db.execute("DELETE FROM dumps WHERE id=?", (dump_id,))
            return Forgotten(
                dump=record,
                removed=len(removed),
                shared=len(also),
                other_dumps=tuple(sorted(set().union(*also.values()))),
                delivered=len(delivered),
                planned=len(in_real_issues - delivered),
                dry_runs=tuple(key for _, key in dry_runs),
            )

    def latest_page_date(self, *, after_dump_id: int = 0) -> date | None:
        row = self._db.execute(
            "SELECT MAX(page_date) FROM dumps WHERE id > ?", (after_dump_id,)
        ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def papers_since(self, dump_id: int, *, until_dump_id: int | None = None) -> list[Paper]:
        """Papers first seen in a dump after `dump_id` (and up to `until_dump_id`)."""
        until = self.latest_dump_id() if until_dump_id is None else until_dump_id
        rows = self._db.execute(
            "SELECT * FROM papers WHERE first_dump_id > ? AND first_dump_id <= ?"
            " ORDER BY first_dump_id, rowid",
            (dump_id, until),
        )
        return [_paper(row) for row in rows]

    def papers_on_pages_between(
        self, first: date, last: date, *, until_dump_id: int | None = None
    ) -> list[Paper]:
        """Papers first seen on a page dated after `first` and up to `last` (in dumps up
        to `until_dump_id`, default all)."""
        until = self.latest_dump_id() if until_dump_id is None else until_dump_id
        rows = self._db.execute(
            "SELECT p.* FROM papers p JOIN dumps d ON d.id = p.first_dump_id"
            " WHERE d.page_date > ? AND d.page_date <= ? AND d.id <= ?"
            " ORDER BY p.first_dump_id, p.rowid",
            (first.isoformat(), last.isoformat(), until),
        )
        return [_paper(row) for row in rows]

    def papers_by_key(self, keys: Iterable[str]) -> dict[str, Paper]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Paper] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT * FROM papers WHERE key IN ({marks})", chunk):
                found[row["key"]] = _paper(row)
        return found

    def page_dates_of(self, keys: Iterable[str]) -> dict[str, date]:
        """The date of the page each paper came from (the dump that first listed it,
        which is also what put it into an issue's pool); a paper whose dumps were all
        forgotten has none."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, date] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, page_date in self._db.execute(
                "SELECT p.key, d.page_date FROM papers p JOIN dumps d ON d.id = p.first_dump_id"
                f" WHERE p.key IN ({marks})",
                chunk,
            ):
                found[key] = date.fromisoformat(page_date)
        return found

    def embeddings(self, keys: Iterable[str], *, model: str) -> dict[str, FloatVector]:
        """Stored vectors of `model` for these paper keys (absent keys are left out)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, FloatVector] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f"SELECT key, vector FROM paper_embeddings WHERE model=? AND key IN ({marks})",
                (model, *chunk),
            ):
                found[row["key"]] = np.frombuffer(row["vector"], dtype=np.float32).copy()
        return found

    def save_embeddings(self, vectors: Mapping[str, FloatVector], *, model: str) -> None:
        """Store one vector of `model` per paper key (float32), replacing older ones."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO paper_embeddings(key, model, vector) VALUES (?, ?, ?)",
                [
                    (key, model, np.asarray(vector, dtype=np.float32).tobytes())
                    for key, vector in vectors.items()
                ],
            )

    def paper_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM papers").fetchone()[0])

    # -- issues and the ledger ---------------------------------------------------------

    def last_real_issue(self) -> Issue | None:
        """The newest issue that was really sent (dry runs deliver nothing)."""
        row = self._db.execute(
            "SELECT * FROM issues WHERE dry_run = 0 ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return _issue(row) if row else None

    def find_issue(self, key: str, *, dry_run: bool) -> Issue | None:
        row = self._db.execute(
            "SELECT * FROM issues WHERE key=? AND dry_run=?", (key, int(dry_run))
        ).fetchone()
        return _issue(row) if row else None

    def issue_by_id(self, issue_id: int) -> Issue | None:
        row = self._db.execute("SELECT * FROM issues WHERE id=?", (issue_id,)).fetchone()
        return _issue(row) if row else None

    def latest_issue(self) -> Issue | None:
        row = self._db.execute("SELECT * FROM issues ORDER BY id DESC LIMIT 1").fetchone()
        return _issue(row) if row else None

    def create_issue(
        self,
        *,
        key: str,
        dry_run: bool,
        issue_date: date,
        last_dump_id: int,
        fingerprint: str = "",
        plan: Iterable[tuple[str, Sequence[PlannedPick]]] | StagedPlan,
        replacing: int | None = None,
    ) -> Issue:
        """Freeze an issue: who gets it (rows `pending`, in plan order) and which papers
        each gets. `plan`: the rows, or a plan staged before (`stage_plan`). `replacing`:
        an issue deleted in the same transaction (a stale dry run), so the key never
        goes without an issue. If the issue already exists, it is returned unchanged."""
        if not isinstance(plan, StagedPlan):
            self.stage_plan(plan)
        try:
            with self.transaction() as db:
                if replacing is not None:
                    _delete_issue(db, replacing)
                row = db.execute(
                    "SELECT * FROM issues WHERE key=? AND dry_run=?", (key, int(dry_run))
                ).fetchone()
                if row is not None:
                    return _issue(row)
                created = _now()
                issue_id = db.execute(
                    "INSERT INTO issues(key, dry_run, issue_date, created_at, last_dump_id,"
                    " fingerprint) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, int(dry_run), issue_date.isoformat(), created, last_dump_id, fingerprint),
                ).lastrowid
                assert issue_id is not None
                _copy_staged(db, issue_id, created)
                return Issue(issue_id, key, dry_run, issue_date, created, last_dump_id, fingerprint)
        finally:
            self.discard_staged()

    def stage_plan(self, plan: Iterable[tuple[str, Sequence[PlannedPick]]]) -> StagedPlan:
        """Write a plan (recipient, picks best first) into this connection's staging
        tables as it is produced, STAGE_BATCH recipients at a time: a plan of 100k
        recipients is never held in memory, and no lock is taken on the database while
        it is ranked (TEMP tables are private to the connection, on a temporary file).
        `create_issue` then copies it in one short transaction."""
        self.discard_staged()
        rows = iter(plan)
        recipients = picks = 0
        while batch := list(itertools.islice(rows, STAGE_BATCH)):
            self._db.executemany(
                "INSERT INTO temp.staged_deliveries(email) VALUES (?)",
                ((email,) for email, _ in batch),
            )
            self._db.executemany(
                "INSERT INTO temp.staged_picks(email, position, paper_key, score, why)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    (email, position, pick.paper_key, pick.score, pick.why)
                    for email, chosen in batch
                    for position, pick in enumerate(chosen)
                ),
            )
            recipients += len(batch)
            picks += sum(len(chosen) for _, chosen in batch)
        return StagedPlan(recipients, picks)

    def discard_staged(self) -> None:
        """Empty the staging tables (made anew)."""
        # No rollback journal for what is only ever staged: with one, refilling the
        # tables cost ten times their first filling (SQLite 3.40), and a failed plan is
        # discarded anyway.
        self._db.execute("PRAGMA temp.journal_mode = OFF")
        self._db.execute("DROP TABLE IF EXISTS temp.staged_deliveries")
        self._db.execute("DROP TABLE IF EXISTS temp.staged_picks")
        for statement in _STAGING:
            self._db.execute(statement)

    def delete_issue(self, issue_id: int) -> None:
        """Forget an issue and its ledger (used only to rebuild a stale dry run)."""
        with self.transaction() as db:
            _delete_issue(db, issue_id)

    def planned_picks(self, issue_id: int, email: str) -> list[PlannedPick]:
        rows = self._db.execute(
            "SELECT paper_key, score, why FROM delivery_papers"
            " WHERE issue_id=? AND email=? ORDER BY position",
            (issue_id, email),
        )
        return [PlannedPick(row["paper_key"], row["score"], row["why"]) for row in rows]

    def planned_picks_many(
        self, issue_id: int, emails: Sequence[str]
    ) -> dict[str, list[PlannedPick]]:
        """`planned_picks` for many recipients in one query per 500 addresses."""
        found: dict[str, list[PlannedPick]] = {email: [] for email in emails}
        for start in range(0, len(emails), 500):
            chunk = list(emails[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT email, paper_key, score, why FROM delivery_papers"
                f" WHERE issue_id=? AND email IN ({marks}) ORDER BY email, position",
                (issue_id, *chunk),
            )
            for email, paper_key, score, why in rows:
                found[email].append(PlannedPick(paper_key, score, why))
        return found

    def planned_pick_count(self, issue_id: int) -> int:
        """How many papers the issue's plan holds, all recipients together."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM delivery_papers WHERE issue_id=?", (issue_id,)
        ).fetchone()
        return int(row[0])

    def issue_papers(self, issue_id: int) -> dict[str, Paper]:
        """Every paper picked for anyone in the issue, by key."""
        rows = self._db.execute(
            "SELECT * FROM papers WHERE key IN"
            " (SELECT DISTINCT paper_key FROM delivery_papers WHERE issue_id=?)",
            (issue_id,),
        )
        return {row["key"]: _paper(row) for row in rows}

    def recipient_summaries(self, issue_id: int) -> list[tuple[str, int, str, float]]:
        """(email, papers, top title, top score) of every `sent` row, in ledger order:
        one query, for the report of a large issue."""
        rows = self._db.execute(
            "SELECT d.email,"
            " (SELECT COUNT(*) FROM delivery_papers c"
            "   WHERE c.issue_id = d.issue_id AND c.email = d.email),"
            " p.title, dp.score"
            " FROM deliveries d"
            " JOIN delivery_papers dp"
            "   ON dp.issue_id = d.issue_id AND dp.email = d.email AND dp.position = 0"
            " JOIN papers p ON p.key = dp.paper_key"
            " WHERE d.issue_id = ? AND d.status = 'sent' ORDER BY d.rowid",
            (issue_id,),
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def received_issues(self, email: str, *, dry_run: bool, limit: int = 1000) -> list[Issue]:
        """The issues (real, or dry runs) whose message to `email` went out (`sent`, or
        `unknown`: the server took it), newest first. Found through the picks' index on
        the address (every recipient of an issue has picks), not a scan of the ledger."""
        rows = self._db.execute(
            "SELECT i.* FROM issues i JOIN deliveries d ON d.issue_id = i.id AND d.email = ?"
            " WHERE i.id IN (SELECT issue_id FROM delivery_papers WHERE email = ?)"
            " AND i.dry_run = ? AND d.status IN ('sent', 'unknown')"
            " ORDER BY i.issue_date DESC, i.id DESC LIMIT ?",
            (email, email, int(dry_run), limit),
        )
        return [_issue(row) for row in rows]

    def deliveries(self, issue_id: int, *, statuses: Sequence[str] = STATUSES) -> list[Delivery]:
        marks = ",".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT * FROM deliveries WHERE issue_id=? AND status IN ({marks}) ORDER BY rowid",
            (issue_id, *statuses),
        )
        return [_delivery(row) for row in rows]

    def pending_pages(self, issue_id: int, *, size: int) -> Iterator[list[str]]:
        """The addresses of the issue's `pending` rows in ledger order, `size` at a time.
        Each page is read when asked for (after the row id of the last one), so a caller
        may mark the rows it was given meanwhile, and never holds the whole ledger."""
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT rowid, email FROM deliveries WHERE issue_id=? AND status='pending'"
                " AND rowid > ? ORDER BY rowid LIMIT ?",
                (issue_id, after, size),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [row[1] for row in rows]

    def counts(self, issue_id: int) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE issue_id=? GROUP BY status", (issue_id,)
        ):
            counts[row[0]] = row[1]
        return counts

    def unfinished(self, issue_id: int) -> int:
        """Rows a run would still send: pending, left sending, failed transiently, or of
        an outcome unknown once."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue_id=? AND (status IN ('pending', 'sending')"
            " OR (status IN ('failed', 'unknown') AND NOT permanent))",
            (issue_id,),
        ).fetchone()
        return int(row[0])

    def mark(
        self,
        issue_id: int,
        email: str,
        status: str,
        *,
        code: int | None = None,
        message: str | None = None,
        attempt: bool = False,
        permanent: bool = False,
    ) -> None:
        """Move one ledger row to `status`, committed before this returns. A `permanent`
        failure is never retried by a later run."""
        if status not in STATUSES or status == "unknown":
            raise ValueError(f"unknown delivery status {status!r} (`mark_unknown` sets unknown)")
        self._db.execute(
            "UPDATE deliveries SET status=?, code=?, message=?, updated_at=?,"
            " attempts = attempts + ?, permanent=? WHERE issue_id=? AND email=?",
            (status, code, message, _now(), int(attempt), int(permanent), issue_id, email),
        )

    def mark_unknown(self, issue_id: int, email: str, message: str) -> bool:
        """The server took the whole message but its reply never came: it may have
        arrived. The first time, the next run sends it once more (`resend_unknown`); the
        second time is final. Returns True when a later run will resend it."""
        self._db.execute(
            "UPDATE deliveries SET status='unknown', code=NULL, message=?, updated_at=?,"
            " permanent = unknown_outcomes > 0, unknown_outcomes = unknown_outcomes + 1"
            " WHERE issue_id=? AND email=?",
            (message, _now(), issue_id, email),
        )
        row = self._db.execute(
            "SELECT permanent FROM deliveries WHERE issue_id=? AND email=?", (issue_id, email)
        ).fetchone()
        return row is not None and not row[0]

    def mark_many(
        self, issue_id: int, emails: Iterable[str], status: str, *, attempt: bool = False
    ) -> None:
        """`mark` for a batch of rows in one transaction (one commit, one sync): how
        large issues claim rows `sending` and confirm them `sent`."""
        if status not in STATUSES:
            raise ValueError(f"unknown delivery status {status!r}")
        now = _now()
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status=?, code=NULL, message=NULL, updated_at=?,"
                " attempts = attempts + ?, permanent=0 WHERE issue_id=? AND email=?",
                ((status, now, int(attempt), issue_id, email) for email in emails),
            )

    def claim(self, issue_id: int, emails: Sequence[str]) -> list[str]:
        """Claim rows `sending` (one attempt more) in one transaction, except those whose
        address has unsubscribed meanwhile (the web page or the CLI recorded it while the
        issue was being sent): those become `skipped`. Returns the skipped ones."""
        now = _now()
        with self.transaction() as db:
            gone = {
                email
                for (email,) in db.execute(
                    "SELECT email FROM unsubscribes WHERE email IN"
                    " (SELECT value FROM json_each(?))",
                    (_json(emails),),
                )
            }
            skipped = [email for email in emails if email in gone]
            db.executemany(
                "UPDATE deliveries SET status='skipped', code=NULL, message=?, updated_at=?,"
                " permanent=0 WHERE issue_id=? AND email=?",
                ((UNSUBSCRIBED_DURING_SEND, now, issue_id, email) for email in skipped),
            )
            db.executemany(
                "UPDATE deliveries SET status='sending', code=NULL, message=NULL, updated_at=?,"
                " attempts = attempts + 1, permanent=0 WHERE issue_id=? AND email=?",
                ((now, issue_id, email) for email in emails if email not in gone),
            )
        return skipped

    def settle_in_flight(self, issue_id: int, *, to: str = "pending") -> int:
        """Rows left `sending` by a crash: move them to `to`; returns how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET status=?, updated_at=? WHERE issue_id=? AND status='sending'",
            (to, _now(), issue_id),
        )
        return cursor.rowcount

    def retry_transient_failures(self, issue_id: int) -> int:
        """Failed rows whose last error was transient (4xx, timeout, drop) go back to
        `pending`; permanent failures (5xx, a message that cannot be built, ...) stay
        failed. Returns how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET status='pending', updated_at=? WHERE issue_id=?"
            " AND status='failed' AND NOT permanent",
            (_now(), issue_id),
        )
        return cursor.rowcount

    def resend_unknown(self, issue_id: int) -> int:
        """Rows whose outcome was unknown once go back to `pending` (their message may
        arrive twice); those unknown a second time stay. Returns how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET status='pending', updated_at=? WHERE issue_id=?"
            " AND status='unknown' AND NOT permanent",
            (_now(), issue_id),
        )
        return cursor.rowcount

    def delivered_paper_keys(self, emails: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Paper keys each address really received (sent, not dry-run) in any issue (of
        `emails` only, when given: found through the picks' index on the address, so a
        chunk of an issue's readers costs a look-up each, not a scan of every ledger)."""
        query = (
            "SELECT dp.email, dp.paper_key FROM delivery_papers dp"
            " JOIN deliveries d ON d.issue_id = dp.issue_id AND d.email = dp.email"
            " JOIN issues i ON i.id = dp.issue_id"
            " WHERE i.dry_run = 0 AND d.status = 'sent'"
        )
        parameters: tuple[str, ...] = ()
        if emails is not None:
            query += " AND dp.email IN (SELECT value FROM json_each(?))"
            parameters = (_json(set(emails)),)
        delivered: dict[str, set[str]] = {}
        for email, paper_key in self._db.execute(query, parameters):
            delivered.setdefault(email, set()).add(paper_key)
        return delivered

    # -- unsubscribes ------------------------------------------------------------------

    def record_unsubscribe(self, email: str, *, source: str) -> bool:
        """Record that an address left; returns False if it had already."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO unsubscribes(email, at, source) VALUES (?, ?, ?)",
            (email.lower(), _now(), source),
        )
        return cursor.rowcount > 0

    def forget_unsubscribe(self, email: str) -> None:
        """An address subscribed again."""
        self._db.execute("DELETE FROM unsubscribes WHERE email=?", (email.lower(),))

    def unsubscribed(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT email FROM unsubscribes")}

    def is_unsubscribed(self, email: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM unsubscribes WHERE email=?", (email.lower(),)
        ).fetchone()
        return row is not None


_LOW_SPACE = 1 << 20  # bytes: an I/O error with less free space than this is a full disk


def no_database_message(path: Path) -> str:
    return (
        f"{path}: no database here (NEWSLETTER_DATABASE_PATH); run `newsletter init`, "
        "`newsletter ingest FILE` or `newsletter fetch` first, or fix the path"
    )


def disk_full_message(path: Path, reason: str) -> str:
    """What to say when the disk under the database is full."""
    return (
        f"{path}: the disk is full ({reason}); free some space in {path.absolute().parent} "
        "and run again: nothing was lost"
    )


def _failure(path: Path, exc: sqlite3.Error) -> StoreError | None:
    """The StoreError for a failure of the disk under the database (full, or failing
    reads and writes), naming the file and what to do; None for other errors (a bug
    keeps its traceback). A failed statement changed nothing: SQLite undid it, and the
    transaction around it is rolled back (see `Store.transaction`)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    if code == sqlite3.SQLITE_FULL:
        return StoreError(disk_full_message(path, str(exc)))
    if code == sqlite3.SQLITE_IOERR:
        try:
            free = shutil.disk_usage(path.absolute().parent).free
        except OSError:
            free = _LOW_SPACE
        if free < _LOW_SPACE:  # a write that found no space can surface as an I/O error
            return StoreError(disk_full_message(path, str(exc)))
        return StoreError(
            f"{path}: the disk failed to read or write the database ({exc}); check the disk "
            "(and its free space) and run again: nothing was lost"
        )
    return None


class _Connection(sqlite3.Connection):
    """A connection whose statements report a full or failing disk as a StoreError
    naming the database (every statement of the store goes through these two)."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            failure = _failure(self.path, exc)
            if failure is None:
                raise
            raise failure from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            failure = _failure(self.path, exc)
            if failure is None:
                raise
            raise failure from exc


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _dump_id_high_water(db: sqlite3.Connection) -> int:
    """The largest dump id ever given, forgotten dumps included."""
    row = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM dumps), 0),"
        " COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key='last_dump_id'), 0))"
    ).fetchone()
    return int(row[0])


def _json(values: Collection[str]) -> str:
    """A list of values as one JSON parameter (`IN (SELECT value FROM json_each(?))`)."""
    return json.dumps(sorted(values))


def _ledger_keys(
    db: sqlite3.Connection, keys: Collection[str], *, real: bool, sent: bool = False
) -> set[str]:
    """Those of `keys` that a real (or dry-run) issue's ledger holds; with `sent`, only
    those in a row that was sent."""
    query = (
        "SELECT DISTINCT dp.paper_key FROM delivery_papers dp"
        " JOIN issues i ON i.id = dp.issue_id"
        " WHERE i.dry_run = ? AND dp.paper_key IN (SELECT value FROM json_each(?))"
    )
    if sent:
        query += (
            " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = dp.issue_id"
            " AND d.email = dp.email AND d.status = 'sent')"
        )
    return {key for (key,) in db.execute(query, (int(not real), _json(keys)))}


def _copy_staged(db: sqlite3.Connection, issue_id: int, created: str) -> None:
    """The staged plan into the ledger of `issue_id` (in the caller's transaction): two
    INSERT ... SELECT statements, so 100k recipients and ~1M picks go in within seconds
    without passing through Python."""
    db.execute(
        "INSERT INTO deliveries(issue_id, email, status, updated_at)"
        " SELECT ?, email, 'pending', ? FROM temp.staged_deliveries ORDER BY rowid",
        (issue_id, created),
    )
    db.execute(
        "INSERT INTO delivery_papers(issue_id, email, position, paper_key, score, why)"
        " SELECT ?, email, position, paper_key, score, why FROM temp.staged_picks"
        " ORDER BY rowid",
        (issue_id,),
    )


def _delete_issue(db: sqlite3.Connection, issue_id: int) -> None:
    db.execute("DELETE FROM delivery_papers WHERE issue_id=?", (issue_id,))
    db.execute("DELETE FROM deliveries WHERE issue_id=?", (issue_id,))
    db.execute("DELETE FROM issues WHERE id=?", (issue_id,))


def _new_row(paper: Paper, as_of: str, dump_id: int) -> dict[str, Any]:
    """The `papers` columns of a paper seen for the first time."""
    return {
        "key": paper.key,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "published": paper.published.isoformat() if paper.published else None,
        "upvotes": paper.upvotes,
        "upvotes_as_of": as_of,
        "arxiv_id": paper.arxiv_id,
        "first_dump_id": dump_id,
        "last_dump_id": dump_id,
        "authors": json.dumps(list(paper.authors), ensure_ascii=False),
        "comments": paper.comments,
        "github_repo": paper.github_repo,
        "github_stars": paper.github_stars,
        "project_page": paper.project_page,
        "ai_summary": paper.ai_summary,
        "ai_keywords": json.dumps(list(paper.ai_keywords), ensure_ascii=False),
    }


# Counts that move from day to day: the newest page's value wins (`upvotes_as_of`).
_DAILY_COUNTS = ("upvotes", "comments", "github_stars")


def _joined(row: sqlite3.Row, paper: Paper, as_of: str, dump_id: int) -> dict[str, Any]:
    """A stored paper's columns after another capture of it (on the page of `as_of`):
    its key and title stay; the newest page's counts win (a page that does not show a
    count keeps the stored one); what the row lacks is filled in; a longer abstract
    replaces a shorter one-line summary."""
    seen = _new_row(paper, as_of, dump_id)
    values = dict(zip(row.keys(), tuple(row), strict=True))
    newer = as_of >= row["upvotes_as_of"]
    for name in _DAILY_COUNTS:
        if seen[name] is not None and (newer or values[name] is None):
            values[name] = seen[name]
    values["upvotes_as_of"] = max(as_of, row["upvotes_as_of"])
    for name in (
        "arxiv_id",
        "authors_count",
        "organization",
        "published",
        "github_repo",
        "project_page",
        "ai_summary",
    ):
        if values[name] is None:
            values[name] = seen[name]
    for name in ("authors", "ai_keywords"):
        if not json.loads(values[name]):
            values[name] = seen[name]
    if len(paper.abstract) > len(values["abstract"]):
        values["abstract"] = paper.abstract
    if values["first_dump_id"] is None:
        values["first_dump_id"] = dump_id
    values["last_dump_id"] = max(values["last_dump_id"] or 0, dump_id)
    return values


def _paper(row: sqlite3.Row) -> Paper:
    return Paper(
        key=row["key"],
        title=row["title"],
        abstract=row["abstract"],
        authors_count=row["authors_count"],
        organization=row["organization"],
        published=date.fromisoformat(row["published"]) if row["published"] else None,
        upvotes=row["upvotes"],
        arxiv_id=row["arxiv_id"],
        authors=tuple(json.loads(row["authors"])),
        comments=row["comments"],
        github_repo=row["github_repo"],
        github_stars=row["github_stars"],
        project_page=row["project_page"],
        ai_summary=row["ai_summary"],
        ai_keywords=tuple(json.loads(row["ai_keywords"])),
    )


def _dump_record(row: sqlite3.Row) -> DumpRecord:
    return DumpRecord(
        id=row["id"],
        name=row["name"],
        shape=row["shape"],
        page_date=date.fromisoformat(row["page_date"]),
        papers=row["paper_count"],
        new_papers=row["new_papers"],
        ingested_at=datetime.fromisoformat(row["ingested_at"]),
    )


def _issue(row: sqlite3.Row) -> Issue:
    return Issue(
        id=row["id"],
        key=row["key"],
        dry_run=bool(row["dry_run"]),
        issue_date=date.fromisoformat(row["issue_date"]),
        created_at=row["created_at"],
        last_dump_id=row["last_dump_id"],
        fingerprint=row["fingerprint"],
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        issue_id=row["issue_id"],
        email=row["email"],
        status=row["status"],
        attempts=row["attempts"],
        code=row["code"],
        message=row["message"],
        permanent=bool(row["permanent"]),
        unknown_outcomes=row["unknown_outcomes"],
    )
