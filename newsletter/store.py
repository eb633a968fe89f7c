"""The SQLite state: dumps seen, papers, issues and the per-recipient delivery ledger.

One file (the `database_path` setting). Dumps are recorded by content hash, so ingesting
the same file twice changes nothing. Each issue freezes, at build time, who gets it and
which papers each recipient gets; the `deliveries` rows then move
`pending -> sending -> sent | failed`, committed at every step, and decide what a re-run
still has to do.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from newsletter.dumps import Dump, Paper
from newsletter.errors import StoreError

# 2: paper_embeddings (vectors of the semantic ranking model). Opening a version-1 file
# adds the table (every CREATE below is IF NOT EXISTS) and records version 2.
SCHEMA_VERSION = 2

_SCHEMA = """
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
    paper_count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS papers (
    key             TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    abstract        TEXT NOT NULL,
    authors_count   INTEGER,
    organization    TEXT,
    published       TEXT,
    upvotes         INTEGER NOT NULL DEFAULT 0,
    upvotes_as_of   TEXT NOT NULL,
    arxiv_id        TEXT,
    first_dump_id   INTEGER NOT NULL REFERENCES dumps(id),
    last_dump_id    INTEGER NOT NULL REFERENCES dumps(id)
);
CREATE INDEX IF NOT EXISTS papers_first_dump ON papers(first_dump_id);
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
CREATE TABLE IF NOT EXISTS deliveries (
    issue_id    INTEGER NOT NULL REFERENCES issues(id),
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    code        INTEGER,
    message     TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (issue_id, email)
);
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
"""

FloatVector = npt.NDArray[np.float32]

# `skipped`: the recipient unsubscribed or became inactive after the issue was built.
STATUSES = ("pending", "sending", "sent", "failed", "skipped")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class IngestResult:
    """What one dump added: `new` is False when the same content was ingested before."""

    dump_id: int
    new: bool
    papers: int
    new_papers: int


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
class Delivery:
    issue_id: int
    email: str
    status: str
    attempts: int
    code: int | None
    message: str | None


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    """A connection to the state database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
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
        tables = {
            row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
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
        # executescript commits any open transaction first, so the script carries its own.
        self._db.executescript(
            f"BEGIN IMMEDIATE;{_SCHEMA}"
            f"INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
            "COMMIT;"
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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- dumps and papers --------------------------------------------------------------

    def ingest(self, dump: Dump, *, data: bytes, received_at: datetime) -> IngestResult:
        """Record a parsed dump and its papers; the same content twice changes nothing."""
        digest = content_hash(data)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id, paper_count FROM dumps WHERE sha256=?", (digest,)
            ).fetchone()
            if row is not None:
                return IngestResult(row["id"], False, row["paper_count"], 0)
            dump_id = db.execute(
                "INSERT INTO dumps(sha256, name, page_date, received_at, ingested_at, paper_count)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    dump.name,
                    dump.page_date.isoformat(),
                    received_at.isoformat(timespec="seconds"),
                    _now(),
                    len(dump.papers),
                ),
            ).lastrowid
            assert dump_id is not None
            new_papers = 0
            as_of = dump.page_date.isoformat()
            for paper in dump.papers:
                existing = db.execute(
                    "SELECT upvotes_as_of FROM papers WHERE key=?", (paper.key,)
                ).fetchone()
                if existing is None:
                    new_papers += 1
                    db.execute(
                        "INSERT INTO papers(key, title, abstract, authors_count, organization,"
                        " published, upvotes, upvotes_as_of, arxiv_id, first_dump_id, last_dump_id)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            paper.key,
                            paper.title,
                            paper.abstract,
                            paper.authors_count,
                            paper.organization,
                            paper.published.isoformat() if paper.published else None,
                            paper.upvotes,
                            as_of,
                            paper.arxiv_id,
                            dump_id,
                            dump_id,
                        ),
                    )
                    continue
                # Seen before: keep the upvote count of the newest page, fill what was missing.
                newer = as_of >= existing["upvotes_as_of"]
                db.execute(
                    "UPDATE papers SET"
                    " upvotes = CASE WHEN ? THEN ? ELSE upvotes END,"
                    " upvotes_as_of = CASE WHEN ? THEN ? ELSE upvotes_as_of END,"
                    " arxiv_id = COALESCE(arxiv_id, ?),"
                    " authors_count = COALESCE(authors_count, ?),"
                    " organization = COALESCE(organization, ?),"
                    " published = COALESCE(published, ?),"
                    " last_dump_id = MAX(last_dump_id, ?)"
                    " WHERE key = ?",
                    (
                        newer,
                        paper.upvotes,
                        newer,
                        as_of,
                        paper.arxiv_id,
                        paper.authors_count,
                        paper.organization,
                        paper.published.isoformat() if paper.published else None,
                        dump_id,
                        paper.key,
                    ),
                )
            return IngestResult(dump_id, True, len(dump.papers), new_papers)

    def has_dump(self, sha256: str) -> bool:
        """Was a dump with this content (`content_hash` of its bytes) ingested before?"""
        row = self._db.execute("SELECT 1 FROM dumps WHERE sha256=?", (sha256,)).fetchone()
        return row is not None

    def latest_dump_id(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM dumps").fetchone()
        return int(row[0])

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

    def page_dates_up_to(self, dump_id: int) -> list[date]:
        rows = self._db.execute("SELECT DISTINCT page_date FROM dumps WHERE id <= ?", (dump_id,))
        return [date.fromisoformat(row[0]) for row in rows]

    def papers_by_key(self, keys: Iterable[str]) -> dict[str, Paper]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Paper] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT * FROM papers WHERE key IN ({marks})", chunk):
                found[row["key"]] = _paper(row)
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
        plan: Iterable[tuple[str, Sequence[PlannedPick]]],
    ) -> Issue:
        """Freeze an issue: who gets it (rows `pending`) and which papers each gets.
        If the issue already exists, it is returned unchanged."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM issues WHERE key=? AND dry_run=?", (key, int(dry_run))
            ).fetchone()
            if row is not None:
                return _issue(row)
            created = _now()
            issue_id = db.execute(
                "INSERT INTO issues(key, dry_run, issue_date, created_at, last_dump_id, fingerprint)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, int(dry_run), issue_date.isoformat(), created, last_dump_id, fingerprint),
            ).lastrowid
            assert issue_id is not None
            rows = plan if isinstance(plan, Sequence) else list(plan)
            # Two executemany calls in one transaction: 100k recipients and their ~1M
            # picks go in within seconds (a statement per row would take minutes).
            db.executemany(
                "INSERT INTO deliveries(issue_id, email, status, updated_at)"
                " VALUES (?, ?, 'pending', ?)",
                ((issue_id, email, created) for email, _ in rows),
            )
            db.executemany(
                "INSERT INTO delivery_papers(issue_id, email, position, paper_key, score, why)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (issue_id, email, position, pick.paper_key, pick.score, pick.why)
                    for email, picks in rows
                    for position, pick in enumerate(picks)
                ),
            )
            return Issue(issue_id, key, dry_run, issue_date, created, last_dump_id, fingerprint)

    def delete_issue(self, issue_id: int) -> None:
        """Forget an issue and its ledger (used only to rebuild a stale dry run)."""
        with self.transaction() as db:
            db.execute("DELETE FROM delivery_papers WHERE issue_id=?", (issue_id,))
            db.execute("DELETE FROM deliveries WHERE issue_id=?", (issue_id,))
            db.execute("DELETE FROM issues WHERE id=?", (issue_id,))

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

    def deliveries(self, issue_id: int, *, statuses: Sequence[str] = STATUSES) -> list[Delivery]:
        marks = ",".join("?" * len(statuses))
        rows = self._db.execute(
            f"SELECT * FROM deliveries WHERE issue_id=? AND status IN ({marks}) ORDER BY rowid",
            (issue_id, *statuses),
        )
        return [_delivery(row) for row in rows]

    def counts(self, issue_id: int) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE issue_id=? GROUP BY status", (issue_id,)
        ):
            counts[row[0]] = row[1]
        return counts

    def unfinished(self, issue_id: int) -> int:
        """Rows a run would still send: pending, left sending, or failed transiently."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue_id=? AND (status IN ('pending', 'sending')"
            " OR (status = 'failed' AND (code IS NULL OR code < 500)))",
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
    ) -> None:
        """Move one ledger row to `status`, committed before this returns."""
        if status not in STATUSES:
            raise ValueError(f"unknown delivery status {status!r}")
        self._db.execute(
            "UPDATE deliveries SET status=?, code=?, message=?, updated_at=?,"
            " attempts = attempts + ? WHERE issue_id=? AND email=?",
            (status, code, message, _now(), int(attempt), issue_id, email),
        )

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
                " attempts = attempts + ? WHERE issue_id=? AND email=?",
                ((status, now, int(attempt), issue_id, email) for email in emails),
            )

    def settle_in_flight(self, issue_id: int, *, to: str = "pending") -> int:
        """Rows left `sending` by a crash: move them to `to`; returns how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET status=?, updated_at=? WHERE issue_id=? AND status='sending'",
            (to, _now(), issue_id),
        )
        return cursor.rowcount

    def retry_transient_failures(self, issue_id: int) -> int:
        """Failed rows whose last error was transient (4xx, timeout, drop) go back to
        `pending`; permanent refusals (5xx) stay failed. Returns how many."""
        cursor = self._db.execute(
            "UPDATE deliveries SET status='pending', updated_at=? WHERE issue_id=?"
            " AND status='failed' AND (code IS NULL OR code < 500)",
            (_now(), issue_id),
        )
        return cursor.rowcount

    def delivered_paper_keys(self, emails: Iterable[str] | None = None) -> dict[str, set[str]]:
        """Paper keys each address really received (sent, not dry-run) in any issue."""
        query = (
            "SELECT dp.email, dp.paper_key FROM delivery_papers dp"
            " JOIN deliveries d ON d.issue_id = dp.issue_id AND d.email = dp.email"
            " JOIN issues i ON i.id = dp.issue_id"
            " WHERE i.dry_run = 0 AND d.status = 'sent'"
        )
        delivered: dict[str, set[str]] = {}
        wanted = None if emails is None else set(emails)
        for row in self._db.execute(query):
            if wanted is None or row[0] in wanted:
                delivered.setdefault(row[0], set()).add(row[1])
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
    )
