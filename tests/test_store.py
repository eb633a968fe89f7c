"""The SQLite state on a real file: idempotent ingest, paper identity across shapes and days,
the ledger, upgrades of older files, schema checks, forgetting a dump."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from newsletter.dumps import Dump, Paper, paper_key
from newsletter.errors import StoreError
from newsletter.pipeline import ingest_file
from newsletter.store import SCHEMA_VERSION, PlannedPick, Store
from tests.factories import fill, write_subscribers

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def paper(title: str, upvotes: int = 0, **extra: object) -> Paper:
    return Paper(
        key=paper_key(title), title=title, abstract=f"About {title}.", upvotes=upvotes, **extra
    )  # type: ignore[arg-type]


def dump(page: date, *papers: Paper) -> Dump:
    return Dump(name="x.txt", page_date=page, papers=list(papers))


def test_same_content_twice_changes_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        first = store.ingest(
            dump(date(2026, 11, 19), paper("A"), paper("B")), data=b"one", received_at=NOW
        )
        again = store.ingest(
            dump(date(2026, 11, 19), paper("A"), paper("B")), data=b"one", received_at=NOW
        )
        assert first.new and first.new_papers == 2
        assert not again.new and again.new_papers == 0 and again.dump_id == first.dump_id
        assert store.paper_count() == 2 and store.latest_dump_id() == first.dump_id


def test_same_paper_in_two_dumps_is_one_paper_with_newest_upvotes(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        store.ingest(dump(date(2026, 11, 20), paper("Deep Nets", 7)), data=b"new", received_at=NOW)
        # An older page ingested later must not overwrite the newer count...
        store.ingest(
            dump(date(2026, 11, 1), paper("deep  nets!", 2, arxiv_id="2411.00001")),
            data=b"old",
            received_at=NOW,
        )
        (stored,) = store.papers_since(0)
        assert stored.upvotes == 7
        assert stored.arxiv_id == "2411.00001"  # ...but fills what was missing
        store.ingest(
            dump(date(2026, 11, 21), paper("Deep Nets", 9)), data=b"newer", received_at=NOW
        )
        assert store.papers_since(0)[0].upvotes == 9
        assert store.paper_count() == 1


def test_papers_since_is_the_papers_first_seen_later(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        one = store.ingest(dump(date(2026, 11, 19), paper("A")), data=b"1", received_at=NOW)
        store.ingest(dump(date(2026, 11, 20), paper("A"), paper("B")), data=b"2", received_at=NOW)
        assert [p.title for p in store.papers_since(one.dump_id)] == ["B"]


def test_issue_ledger_and_delivered_papers(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        store.ingest(dump(date(2026, 11, 19), paper("A"), paper("B")), data=b"1", received_at=NOW)
        plan = [
            ("ada@example.org", [PlannedPick("a", 2.0, "why a"), PlannedPick("b", 1.0, "why b")])
        ]
        dry = store.create_issue(
            key="2026-11-22", dry_run=True, issue_date=date(2026, 11, 22), last_dump_id=1, plan=plan
        )
        real = store.create_issue(
            key="2026-11-22",
            dry_run=False,
            issue_date=date(2026, 11, 22),
            last_dump_id=1,
            plan=plan,
        )
        assert dry.id != real.id
        # Building the same issue again returns it unchanged.
        assert (
            store.create_issue(
                key="2026-11-22",
                dry_run=False,
                issue_date=date(2026, 11, 22),
                last_dump_id=1,
                plan=[],
            ).id
            == real.id
        )
        assert [p.paper_key for p in store.planned_picks(real.id, "ada@example.org")] == ["a", "b"]
        store.mark(dry.id, "ada@example.org", "sent")
        assert store.delivered_paper_keys() == {}  # dry runs deliver nothing
        store.mark(real.id, "ada@example.org", "sending", attempt=True)
        assert store.counts(real.id)["sending"] == 1
        assert store.delivered_paper_keys() == {}  # not yet accepted by the server
        assert store.settle_in_flight(real.id, to="pending") == 1
        store.mark(real.id, "ada@example.org", "sent")
        assert store.delivered_paper_keys() == {"ada@example.org": {"a", "b"}}
        assert store.last_real_issue() == real
        (row,) = store.deliveries(real.id)
        assert row.status == "sent" and row.attempts == 1


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as store:
        store.ingest(dump(date(2026, 11, 19), paper("A")), data=b"1", received_at=NOW)
        store.record_unsubscribe("Ada@Example.org", source="test")
    with Store(path) as store:
        assert store.paper_count() == 1
        assert store.unsubscribed() == {"ada@example.org"}
        assert not store.record_unsubscribe("ada@example.org", source="again")


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all, just text " * 100)
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(path) in str(caught.value) and "Move it aside" in str(caught.value)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not a newsletter database"):
        Store(path)


# -- schema version 3: upgrading older files -------------------------------------------

# The schema of version 2, as newsletter wrote it (version 1: without paper_embeddings).
V2_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE dumps (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    page_date   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    paper_count INTEGER NOT NULL
);
CREATE TABLE papers (
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
CREATE INDEX papers_first_dump ON papers(first_dump_id);
CREATE TABLE issues (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL,
    dry_run       INTEGER NOT NULL,
    issue_date    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_dump_id  INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL DEFAULT '',
    UNIQUE (key, dry_run)
);
CREATE TABLE deliveries (
    issue_id    INTEGER NOT NULL REFERENCES issues(id),
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    code        INTEGER,
    message     TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (issue_id, email)
);
CREATE INDEX deliveries_status ON deliveries(issue_id, status);
CREATE TABLE delivery_papers (
    issue_id   INTEGER NOT NULL,
    email      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    paper_key  TEXT NOT NULL REFERENCES papers(key),
    score      REAL NOT NULL,
    why        TEXT NOT NULL,
    PRIMARY KEY (issue_id, email, position)
);
CREATE INDEX delivery_papers_email ON delivery_papers(email);
CREATE TABLE paper_embeddings (
    key     TEXT NOT NULL REFERENCES papers(key),
    model   TEXT NOT NULL,
    vector  BLOB NOT NULL,
    PRIMARY KEY (key, model)
);
CREATE TABLE unsubscribes (email TEXT PRIMARY KEY, at TEXT NOT NULL, source TEXT NOT NULL);
"""

# Two dumps (pages of Nov 19 and 20), three papers, and issue 2026-11-20 sent to Ada
# with paper "a" (the ledger points at it).
OLD_ROWS = """
INSERT INTO dumps VALUES (1, 'h1', 'inbox/one.txt', '2026-11-19', 'x', '2026-11-19T08:00:00+00:00', 2);
INSERT INTO dumps VALUES (2, 'h2', 'inbox/two.txt', '2026-11-20', 'x', '2026-11-20T08:00:00+00:00', 2);
INSERT INTO papers VALUES ('a', 'A', 'About A.', 3, NULL, NULL, 4, '2026-11-19', NULL, 1, 1);
INSERT INTO papers VALUES ('b', 'B', 'About B.', NULL, NULL, NULL, 6, '2026-11-20', '2411.00002', 1, 2);
INSERT INTO papers VALUES ('c', 'C', 'About C.', NULL, NULL, NULL, 1, '2026-11-20', NULL, 2, 2);
INSERT INTO issues VALUES (1, '2026-11-20', 0, '2026-11-20', 'x', 1, '');
INSERT INTO deliveries VALUES (1, 'ada@example.org', 'sent', 1, NULL, NULL, 'x');
INSERT INTO delivery_papers VALUES (1, 'ada@example.org', 0, 'a', 1.5, 'matches A');
"""


def old_database(path: Path, version: int) -> None:
    schema = V2_SCHEMA
    if version == 1:
        schema = (
            schema[: schema.index("CREATE TABLE paper_embeddings")]
            + schema[schema.index("CREATE TABLE unsubscribes") :]
        )
    db = sqlite3.connect(path)
    db.executescript(schema + OLD_ROWS)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    if version == 2:
        db.execute("INSERT INTO paper_embeddings VALUES ('c', 'm', ?)", (b"\0" * 8,))
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_database_is_upgraded_in_place(tmp_path: Path, version: int) -> None:
    path = tmp_path / "state.db"
    old_database(path, version)
    with Store(path) as store:
        by_key = store.papers_by_key(["a", "b", "c"])
        assert [p.upvotes for p in by_key.values()] == [4, 6, 1]
        assert by_key["a"].authors_count == 3 and by_key["a"].authors == ()
        assert by_key["b"].arxiv_id == "2411.00002" and by_key["b"].ai_keywords == ()
        assert [(d.id, d.shape, d.new_papers) for d in store.dumps()] == [
            (1, None, 2),
            (2, None, 1),
        ]
        assert store.delivered_paper_keys() == {"ada@example.org": {"a"}}
        assert [p.key for p in store.papers_since(1)] == ["c"]
        # The richer fields are stored from now on.
        store.ingest(
            dump(date(2026, 11, 21), paper("B", 9, arxiv_id="2411.00002", authors=("Kim",))),
            data=b"three",
            received_at=NOW,
        )
        assert store.papers_by_key(["b"])["b"].authors == ("Kim",)
        # What the old rows knew of who listed what is enough to forget a dump: "c" was
        # only in dump 2, "b" also in dump 1.
        gone = store.forget(2)
        assert gone is not None and (gone.removed, gone.shared) == (1, 1)
        assert store.papers_by_key(["c"]) == {}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    Store(path).close()  # opening it again changes nothing


def test_a_failed_upgrade_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old_database(path, 2)
    with sqlite3.connect(path) as db:  # a paper pointing at a dump that does not exist
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("UPDATE papers SET first_dump_id = 7 WHERE key = 'c'")
    with pytest.raises(StoreError, match="nothing was changed"):
        Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
        columns = {row[1] for row in db.execute("PRAGMA table_info(papers)")}
        assert "ai_keywords" not in columns
        assert "shape" not in {row[1] for row in db.execute("PRAGMA table_info(dumps)")}


# -- schema version 4: the unknown outcome ----------------------------------------------

# `deliveries` as versions 1 to 3 wrote it (no `unknown` in the CHECK, no new columns).
V3_DELIVERIES = """
CREATE TABLE deliveries (
    issue_id    INTEGER NOT NULL REFERENCES issues(id),
    email       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    code        INTEGER,
    message     TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (issue_id, email)
);
CREATE INDEX deliveries_status ON deliveries(issue_id, status);
"""


def ledger_issue(store: Store, emails: list[str]) -> int:
    store.ingest(dump(date(2026, 11, 20), paper("A")), data=b"a", received_at=NOW)
    issue = store.create_issue(
        key="2026-11-20",
        dry_run=False,
        issue_date=date(2026, 11, 20),
        last_dump_id=1,
        plan=[(email, [PlannedPick(paper_key("A"), 1.0, "A")]) for email in emails],
    )
    return issue.id


def test_a_version_3_ledger_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store(path) as store:
        issue_id = ledger_issue(store, ["ada@x.org", "bob@x.org", "cy@x.org", "di@x.org"])
    with sqlite3.connect(path) as db:  # back to how version 3 wrote the ledger
        db.execute("DROP TABLE deliveries")
        db.executescript(V3_DELIVERIES)
        db.executemany(
            "INSERT INTO deliveries VALUES (?, ?, ?, 1, ?, ?, 'x')",
            [
                (issue_id, "ada@x.org", "sent", None, None),
                (issue_id, "bob@x.org", "failed", 550, "no such user"),
                (issue_id, "cy@x.org", "failed", 451, "try later"),
                (issue_id, "di@x.org", "failed", None, "timed out"),
            ],
        )
        db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    with Store(path) as store:
        rows = {d.email: d for d in store.deliveries(issue_id)}
        assert {e: (d.status, d.code, d.message) for e, d in rows.items()} == {
            "ada@x.org": ("sent", None, None),
            "bob@x.org": ("failed", 550, "no such user"),
            "cy@x.org": ("failed", 451, "try later"),
            "di@x.org": ("failed", None, "timed out"),
        }
        assert [e for e, d in rows.items() if d.permanent] == ["bob@x.org"]  # the 5xx
        assert store.unfinished(issue_id) == 2
        assert store.retry_transient_failures(issue_id) == 2  # as before: not the 5xx
        store.mark_unknown(issue_id, "ada@x.org", "no reply")  # the CHECK takes it now
        assert store.counts(issue_id)["unknown"] == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(deliveries)")}
        assert "deliveries_status" in indexes


def test_an_unknown_outcome_is_resent_once_then_never(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        issue_id = ledger_issue(store, ["ada@x.org"])
        assert store.mark_unknown(issue_id, "ada@x.org", "no reply")  # resent next run
        assert store.unfinished(issue_id) == 1
        assert store.resend_unknown(issue_id) == 1
        store.mark(issue_id, "ada@x.org", "sending", attempt=True)
        store.mark(issue_id, "ada@x.org", "failed", message="451 later")  # 4xx: retried
        assert store.retry_transient_failures(issue_id) == 1
        assert not store.mark_unknown(issue_id, "ada@x.org", "no reply")  # the second time
        (row,) = store.deliveries(issue_id)
        assert (row.status, row.permanent, row.unknown_outcomes) == ("unknown", True, 2)
        assert store.resend_unknown(issue_id) == 0 and store.unfinished(issue_id) == 0


def test_claiming_skips_who_unsubscribed_meanwhile(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        issue_id = ledger_issue(store, ["ada@x.org", "bob@x.org"])
        store.record_unsubscribe("Bob@X.org", source="web")
        assert store.claim(issue_id, ["ada@x.org", "bob@x.org"]) == ["bob@x.org"]
        rows = {d.email: (d.status, d.attempts) for d in store.deliveries(issue_id)}
        assert rows == {"ada@x.org": ("sending", 1), "bob@x.org": ("skipped", 0)}
        assert store.is_unsubscribed("BOB@x.org") and not store.is_unsubscribed("ada@x.org")


# -- one record per paper across shapes and days ---------------------------------------

LCM = "Large Concept Models: Language Modeling in a Sentence Representation Space"
SAMPLE_000 = (
    Path(__file__).resolve().parent.parent / "samples" / "dumps" / "000_12e940f9937f08e2.txt"
)


def api_json(upvotes: int, comments: int, day: str) -> str:
    """The daily papers API's JSON with one entry: the Large Concept Models paper."""
    entry = {
        "paper": {
            "id": "2412.08821",
            "title": LCM,
            "summary": "LLMs have revolutionized the field of artificial intelligence.",
            "authors": [
                {"_id": "a1", "name": "Loïc Barrault"},
                {"_id": "a2", "name": "Paul-Ambroise Duquenne"},
            ],
            "publishedAt": "2024-12-11T18:20:00.000Z",
            "submittedOnDailyAt": f"{day}T01:43:54.164Z",
            "upvotes": upvotes,
            "ai_keywords": ["concept", "SONAR"],
            "githubRepo": "https://github.com/facebookresearch/large_concept_model",
        },
        "numComments": comments,
        "title": LCM,
    }
    return json.dumps([entry], ensure_ascii=False)


def write(path: Path, text: str, received: datetime) -> Path:
    path.write_text(text, encoding="utf-8")
    os.utime(path, (received.timestamp(), received.timestamp()))
    return path


def test_the_same_paper_from_api_json_and_page_text_is_one_record(tmp_path: Path) -> None:
    received = datetime(2024, 12, 20, tzinfo=UTC)
    # The page of Dec 11 (1 upvote, 21 authors, no names, the full abstract), and the
    # API JSON of Dec 13 (30 upvotes, 4 comments, names, a one-sentence summary),
    # ingested newest first: the order of arrival does not matter.
    api = write(tmp_path / "daily.json", api_json(30, 4, "2024-12-13"), received)
    page = write(tmp_path / "page.txt", SAMPLE_000.read_text(encoding="utf-8"), received)
    with Store(tmp_path / "state.db") as store:
        ingest_file(store, api)
        ingest_file(store, page)
        rows = [p for p in store.papers_since(0) if "concept" in p.key]
        assert len(rows) == 1
        (lcm,) = rows
        assert (lcm.upvotes, lcm.comments) == (30, 4)  # the newest page's counts
        assert lcm.authors == ("Loïc Barrault", "Paul-Ambroise Duquenne")  # from the JSON
        assert lcm.arxiv_id == "2412.08821" and lcm.ai_keywords == ("concept", "SONAR")
        assert lcm.github_repo == "https://github.com/facebookresearch/large_concept_model"
        assert lcm.abstract.startswith("LLMs have") and "SONAR" in lcm.abstract  # the longer one
        assert lcm.authors_count == 2
        # A newer page's counts replace them again.
        ingest_file(store, write(tmp_path / "later.json", api_json(41, 6, "2024-12-14"), received))
        (lcm,) = (p for p in store.papers_since(0) if "concept" in p.key)
        assert (lcm.upvotes, lcm.comments) == (41, 6)
        assert store.paper_count() == 23


def test_an_arxiv_id_finds_the_paper_under_another_title(tmp_path: Path) -> None:
    first = paper("Deep Nets for Graphs", 3, arxiv_id="2411.00001")
    retitled = Paper(
        key=paper_key("Deep Networks on Graphs"),
        title="Deep Networks on Graphs",
        abstract="A longer abstract than the one-line summary the first capture had.",
        upvotes=9,
        arxiv_id="2411.00001",
        comments=2,
        authors=("Ada Lovelace", "Alan Turing"),
        ai_summary="Graphs, deeply.",
        project_page="https://example.org/deep",
    )
    older = Paper(
        key=paper_key("Deep nets for graph data"),
        title="Deep nets for graph data",
        abstract="Short.",
        upvotes=1,
        arxiv_id="2411.00001",
        comments=7,
        github_stars=5,
    )
    with Store(tmp_path / "state.db") as store:
        one = store.ingest(dump(date(2026, 11, 19), first), data=b"1", received_at=NOW)
        two = store.ingest(dump(date(2026, 11, 20), retitled), data=b"2", received_at=NOW)
        three = store.ingest(dump(date(2026, 11, 18), older), data=b"3", received_at=NOW)
        assert (one.new_papers, two.new_papers, three.new_papers) == (1, 0, 0)
        assert two.keys == three.keys == (first.key,)
        assert store.paper_count() == 1
        (stored,) = store.papers_since(0)
        assert (stored.key, stored.title) == (first.key, "Deep Nets for Graphs")
        assert (stored.upvotes, stored.comments) == (9, 2)  # the page of Nov 20 is newest
        assert stored.github_stars == 5  # lacking until the older page showed it
        assert stored.authors == ("Ada Lovelace", "Alan Turing")
        assert (stored.ai_summary, stored.project_page) == (
            "Graphs, deeply.",
            "https://example.org/deep",
        )
        assert stored.abstract == retitled.abstract
        assert store.papers_since(one.dump_id) == []  # first seen in dump 1, not new later
        assert [(d.id, d.new_papers) for d in store.dumps()] == [(1, 1), (2, 0), (3, 0)]


# -- forgetting a dump -----------------------------------------------------------------

ADA = "ada@example.org"


def sent_issue(store: Store, key: str, keys: list[str], *, status: str = "sent") -> int:
    issue = store.create_issue(
        key=key,
        dry_run=False,
        issue_date=date.fromisoformat(key),
        last_dump_id=store.latest_dump_id(),
        plan=[(ADA, [PlannedPick(k, 1.0, f"why {k}") for k in keys])],
    )
    store.mark(issue.id, ADA, status)
    return issue.id


def test_forget_removes_what_only_that_dump_brought(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        one = store.ingest(
            dump(date(2026, 11, 19), paper("A"), paper("B"), paper("C"), paper("E")),
            data=b"1",
            received_at=NOW,
        )
        real = sent_issue(store, "2026-11-19", ["a"])  # Ada received A
        pending = sent_issue(store, "2026-11-20", ["e"], status="pending")  # E not yet
        two = store.ingest(
            dump(date(2026, 11, 20), paper("B", 5), paper("D")), data=b"2", received_at=NOW
        )
        dry = store.create_issue(
            key="2026-11-21",
            dry_run=True,
            issue_date=date(2026, 11, 21),
            last_dump_id=two.dump_id,
            plan=[(ADA, [PlannedPick("c", 1.0, "why c"), PlannedPick("d", 0.5, "why d")])],
        )
        vector = np.ones(4, dtype=np.float32)
        store.save_embeddings({k: vector for k in "abcde"}, model="m")

        gone = store.forget(one.dump_id)

        assert gone is not None
        assert (gone.removed, gone.shared, gone.other_dumps) == (1, 1, (two.dump_id,))
        assert (gone.delivered, gone.planned, gone.dry_runs) == (1, 1, ("2026-11-21",))
        assert gone.dump.name == "x.txt" and gone.dump.papers == 4
        # C is gone with its vector; the dry run that drew on it is gone too.
        assert set(store.papers_by_key("abcde")) == {"a", "b", "d", "e"}
        assert set(store.embeddings("abcde", model="m")) == {"a", "b", "d", "e"}
        assert store.find_issue("2026-11-21", dry_run=True) is None
        assert store.issue_by_id(dry.id) is None
        # B now counts as first seen in dump 2, with the count it had.
        assert [(p.key, p.upvotes) for p in store.papers_since(0)] == [("b", 5), ("d", 0)]
        assert [(d.id, d.new_papers) for d in store.dumps()] == [(two.dump_id, 2)]
        # A and E stay for their issues, in no future pool.
        assert set(store.issue_papers(real)) == {"a"} and set(store.issue_papers(pending)) == {"e"}
        assert store.recipient_summaries(real) == [(ADA, 1, "A", 1.0)]
        assert store.delivered_paper_keys() == {ADA: {"a"}}
        pool = store.papers_on_pages_between(date(2026, 11, 1), date(2026, 11, 30))
        assert {p.key for p in pool} == {"b", "d"}

        # The same content is accepted again: what it brought comes back, A and E too.
        again = store.ingest(
            dump(date(2026, 11, 19), paper("A"), paper("B"), paper("C"), paper("E")),
            data=b"1",
            received_at=NOW,
        )
        assert again.new and again.dump_id > two.dump_id
        assert again.new_papers == 3  # A, C and E; B was in dump 2
        assert {p.key for p in store.papers_since(two.dump_id)} == {"a", "c", "e"}

    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_forgotten_dump_id_is_never_given_again(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as store:
        store.ingest(dump(date(2026, 11, 19), paper("A")), data=b"1", received_at=NOW)
        two = store.ingest(dump(date(2026, 11, 20), paper("B")), data=b"2", received_at=NOW)
        sent_issue(store, "2026-11-20", ["a"])  # covered dumps 1 and 2
        assert store.forget(two.dump_id) is not None
        assert store.forget(two.dump_id) is None
    with Store(tmp_path / "state.db") as store:  # a new connection: nothing in memory
        again = store.ingest(dump(date(2026, 11, 20), paper("B")), data=b"2", received_at=NOW)
        assert again.dump_id == two.dump_id + 1
        # The next daily issue (after the one that covered up to dump 2) gets B.
        last = store.last_real_issue()
        assert last is not None
        assert [p.key for p in store.papers_since(last.last_dump_id)] == ["b"]


# --- a full disk --------------------------------------------------------------------------


def test_a_full_database_reports_the_disk_not_the_failed_rollback(tmp_path: Path) -> None:
    """SQLite rolls a transaction back by itself on SQLITE_FULL; the ROLLBACK after it then
    failed with "cannot rollback - no transaction is active", which hid the real error."""
    path = tmp_path / "state.db"
    samples = sorted(Path(__file__).parent.parent.glob("samples/dumps/*.txt"))[:2]
    with Store(path) as store:
        ingest_file(store, samples[0])
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: full
        with pytest.raises(StoreError) as caught:
            ingest_file(store, samples[1])
        assert str(caught.value) == (
            f"{path}: the disk is full (database or disk is full); free some space in "
            f"{tmp_path} and run again: nothing was lost"
        )
        cause = caught.value.__cause__
        assert isinstance(cause, sqlite3.OperationalError)
        assert cause.sqlite_errorcode == sqlite3.SQLITE_FULL
        assert not store._db.in_transaction and [d.id for d in store.dumps()] == [1]
        store._db.execute("PRAGMA max_page_count = 1073741823")  # space again: resume
        assert ingest_file(store, samples[1]).new > 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_rollback_that_fails_does_not_hide_the_error(tmp_path: Path) -> None:
    """A ROLLBACK that fails itself (here interrupted by SQLite's progress handler) is
    noted on the error that caused it, and the next transaction starts clean."""
    with Store(tmp_path / "state.db") as store:
        with pytest.raises(ValueError, match="the real problem") as caught:
            with store.transaction() as db:
                db.execute("INSERT INTO meta(key, value) VALUES ('half', 'done')")
                db.set_progress_handler(lambda: 1, 1)  # every statement is interrupted
                raise ValueError("the real problem")
        assert any("ROLLBACK" in note for note in caught.value.__notes__)
        store._db.set_progress_handler(None, 1)
        assert store._db.in_transaction  # SQLite could not roll back...
        with store.transaction() as db:  # ...so the next transaction rolls it back first
            assert db.execute("SELECT * FROM meta WHERE key='half'").fetchone() is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args], capture_output=True, text=True, timeout=300
    )


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exit 1 and one `error:` line, no traceback (log lines aside)."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return line


# 0 bytes left: SQLite cannot even open the file (before: "it is damaged ... Move it
# aside"); 64 KB left: it opens, and a write fails (before: a sqlite3 traceback).
@pytest.mark.parametrize("leave", [0, 64 * 1024])
def test_a_full_disk_under_the_database(
    project: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch, leave: int
) -> None:
    database = small_disk / "newsletter.db"
    monkeypatch.setenv("NEWSLETTER_DATABASE_PATH", str(database))
    write_subscribers(project / "subscribers.yaml", 1000)  # a ledger larger than 64 KB
    first, second = sorted(str(p) for p in (project / "dumps").iterdir())
    assert _cli("ingest", first).returncode == 0
    filler = fill(small_disk, leave=leave)
    full = re.compile(
        rf"error: {re.escape(str(database))}: the disk is full \((database or disk is full|disk "
        rf"I/O error)\); free some space in {re.escape(str(small_disk))} and run again: "
        "nothing was lost"
    )
    assert full.fullmatch(_one_error_line(_cli("ingest", second)))
    assert full.fullmatch(_one_error_line(_cli("send", "--dry-run")))
    filler.unlink()
    with sqlite3.connect(database) as db:  # intact, and holding only what was committed
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT name FROM dumps").fetchall() == [(first,)]
        assert db.execute("SELECT COUNT(*) FROM issues").fetchone() == (0,)
    # With space again, the same commands resume.
    assert "new" in _cli("ingest", second).stdout
    sent = _cli("send", "--dry-run")
    assert sent.returncode == 0, sent.stderr
    assert "1000 message(s) in" in sent.stdout
