"""The SQLite state on a real file: idempotent ingest, paper identity, ledger, schema checks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from newsletter.dumps import Dump, Paper, paper_key
from newsletter.errors import StoreError
from newsletter.store import SCHEMA_VERSION, PlannedPick, Store

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
