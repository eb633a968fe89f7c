"""An issue is built and sent a chunk at a time (issue 16): the plan ranked in chunks of
the live list, staged and frozen at once, the ledger and the readers read back a page at
a time. These tests make the chunks tiny, so every path crosses many chunk boundaries,
and check the result against one ranking of everyone at once."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter import pipeline, roster
from newsletter.pipeline import (
    build_issue,
    candidate_papers,
    deliver,
    dry_run,
    ingest_file,
)
from newsletter.ranking import Ranker
from newsletter.settings import Settings, load_settings
from newsletter.store import Issue, PlannedPick, Store
from newsletter.subscribers import Subscriber, load_subscribers
from tests.factories import REAL_SEND_ENV
from tests.smtp_server import smtp_server

ISSUE_DATE = date(2026, 11, 22)  # a Sunday; NEWSLETTER_WEEKLY_DAY=6 below: weekly ones too
TOPICS = [
    "knowledge distillation",
    "continual learning",
    "machine translation",
    "reinforcement learning",
    "mathematical reasoning",
    "retrieval augmented generation",
    "quantum chromodynamics lattice",  # matches no sample paper: no message
]


def write_readers(path: Path, count: int) -> list[str]:
    """`count` readers, in no order of address, with varied topics, limits and
    frequencies; one paused; one address in capitals. Returns the active ones' keys."""
    lines = ["subscribers:"]
    active = []
    for n in range(count):
        address = f"r{(n * 7919) % 1000:03d}.{n}@example.org"
        if n == 5:
            address = "Zed.Capital@Example.org"
        lines += [
            f"  - email: {address}",
            f"    topics: [{TOPICS[n % len(TOPICS)]}, {TOPICS[(n * 3 + 1) % len(TOPICS)]}]",
            f"    max_papers: {1 + n % 4}",
            f"    frequency: {'weekly' if n % 5 == 0 else 'daily'}",
        ]
        if n == 8:
            lines.append("    active: false")
        else:
            active.append(address.lower())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return active


@pytest.fixture
def settings(project: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://news.example.org")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("NEWSLETTER_WEEKLY_DAY", "6")
    write_readers(project / "subscribers.yaml", 40)
    return load_settings()


@pytest.fixture
def store(settings: Settings, project: Path) -> Store:
    store = Store(settings.database_path)
    for path in sorted((project / "dumps").iterdir()):
        ingest_file(store, path)
    return store


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 4 subscribers at a time, read 3 ledger rows at a time, compose 2 per job."""
    monkeypatch.setattr(pipeline, "RANK_CHUNK", 4)
    monkeypatch.setattr(pipeline, "SEND_PAGE", 3)
    monkeypatch.setattr(pipeline, "CHUNK", 2)


def receiving_now(settings: Settings, store: Store) -> list[Subscriber]:
    """The active subscribers of the file, validated, minus the unsubscribed."""
    gone = store.unsubscribed()
    return [
        s for s in load_subscribers(settings.subscribers_file) if s.active and s.key not in gone
    ]


def one_ranking(store: Store, subscribers: list[Subscriber]) -> dict[str, list[str]]:
    """Each subscriber's picks (paper keys, best first) from ranking everyone at once,
    one Ranker per frequency's pool: what the chunked plan must equal."""
    expected: dict[str, list[str]] = {}
    for frequency in ("daily", "weekly"):
        group = [s for s in subscribers if s.frequency == frequency]
        pool = candidate_papers(store, issue_date=ISSUE_DATE, frequency=frequency)
        ranked = Ranker(pool, today=ISSUE_DATE).rank(group) if pool and group else []
        for subscriber, picks in zip(group, ranked, strict=True):
            if picks:
                expected[subscriber.key] = [pick.paper.key for pick in picks]
    return expected


def ledger(store: Store, issue: Issue) -> dict[str, list[PlannedPick]]:
    emails = [d.email for d in store.deliveries(issue.id)]
    return store.planned_picks_many(issue.id, emails)


def documented_fingerprint(plan: dict[str, list[PlannedPick]]) -> str:
    """The fingerprint as defined before streaming: the rows sorted by key, hashed."""
    digest = hashlib.sha256()
    for key in sorted(plan):
        digest.update(key.encode())
        for pick in plan[key]:
            digest.update(b"\0" + pick.paper_key.encode() + f"{pick.score:.6f}".encode())
    return digest.hexdigest()[:16]


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.usefixtures("tiny_chunks")
def test_a_dry_run_in_tiny_chunks_writes_what_one_ranking_of_everyone_picks(
    settings: Settings, store: Store
) -> None:
    store.record_unsubscribe("r000.0@example.org", source="test")
    expected = one_ranking(store, receiving_now(settings, store))
    assert len(expected) > 3 * pipeline.RANK_CHUNK  # many chunks, of both frequencies
    assert {"weekly", "daily"} <= {
        s.frequency for s in receiving_now(settings, store) if s.key in expected
    }
    report = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert report.folder is not None
    files = {path.stem: path for path in report.folder.glob("*.eml")}
    assert set(files) == set(expected)  # one file each; none for the paused or unsubscribed
    plan = ledger(store, report.issue)
    assert {key: [p.paper_key for p in picks] for key, picks in plan.items()} == expected
    assert report.written_now == len(expected) and report.complete
    assert [line.email for line in report.recipients] == sorted(expected)  # in key order
    titles = {p.key: p.title for p in store.papers_since(0)}
    for key, path in files.items():
        message = read_eml(path)
        assert message["To"].addresses[0].addr_spec.lower() == key
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        positions = [text.find(titles[paper]) for paper in expected[key]]
        assert -1 not in positions and positions == sorted(positions), key
    assert "zed.capital@example.org" in files  # built from the live list by its key
    assert report.issue.fingerprint == documented_fingerprint(plan)


def test_the_plan_and_its_fingerprint_do_not_depend_on_the_chunk_size(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = build_issue(settings, store, dry_run=True, issue_date=ISSUE_DATE, key="whole")
    monkeypatch.setattr(pipeline, "RANK_CHUNK", 3)
    chunked = build_issue(settings, store, dry_run=True, issue_date=ISSUE_DATE, key="chunked")
    assert ledger(store, chunked) == ledger(store, whole)
    assert chunked.fingerprint == whole.fingerprint == documented_fingerprint(ledger(store, whole))
    # Given subscribers (not the live list) are planned in the same order, to the same plan.
    given = build_issue(
        settings,
        store,
        list(reversed(receiving_now(settings, store))),
        dry_run=True,
        issue_date=ISSUE_DATE,
        key="given",
    )
    assert given.fingerprint == whole.fingerprint
    assert [d.email for d in store.deliveries(given.id)] == sorted(ledger(store, whole))


@pytest.mark.usefixtures("tiny_chunks")
def test_a_run_stopped_between_chunks_writes_only_what_is_left(
    settings: Settings, store: Store
) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert first.folder is not None
    emails = [line.email for line in first.recipients]
    # A run killed midway: the chunk in flight left `sending`, later ones never claimed,
    # their files not written; rows spread over several ledger pages.
    in_flight, unclaimed = emails[4:6], emails[9:10] + emails[-3:]
    for address in in_flight + unclaimed:
        (first.folder / f"{address}.eml").unlink()
    for address in in_flight:
        store.mark(first.issue.id, address, "sending")
    for address in unclaimed:
        store.mark(first.issue.id, address, "pending")
    untouched = first.folder / f"{emails[0]}.eml"
    os.utime(untouched, (1_000_000_000, 1_000_000_000))
    again = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert again.issue.id == first.issue.id  # the same plan: resumed, not rebuilt
    assert again.written_now == len(in_flight) + len(unclaimed)
    assert {p.stem for p in first.folder.glob("*.eml")} == set(emails)
    assert untouched.stat().st_mtime == 1_000_000_000  # not written again
    assert again.counts["sent"] == len(emails) and again.complete


@pytest.mark.usefixtures("tiny_chunks")
def test_an_edit_in_a_late_chunk_rebuilds_the_dry_run_in_one_piece(
    settings: Settings, store: Store
) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    same = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert same.issue == first.issue and same.written_now == 0
    last = max(line.email for line in first.recipients)  # in the last chunk by key
    path = settings.subscribers_file
    text = path.read_text(encoding="utf-8")
    entry = text.lower().index(f"email: {last}")
    edited = text[:entry] + text[entry:].replace("max_papers:", "max_papers: 1 #", 1)
    path.write_text(edited, encoding="utf-8")
    os.utime(path, (os.stat(path).st_atime, os.stat(path).st_mtime + 10))
    rebuilt = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert rebuilt.issue.fingerprint != first.issue.fingerprint
    # Replaced, rows and all: one issue for the key, its ledger the new plan alone.
    assert store.find_issue(first.issue.key, dry_run=True) == rebuilt.issue
    assert rebuilt.issue.fingerprint == documented_fingerprint(ledger(store, rebuilt.issue))
    assert len(store.planned_picks(rebuilt.issue.id, last)) == 1
    assert rebuilt.written_now == sum(rebuilt.counts.values()) == len(first.recipients)
    assert rebuilt.folder is not None
    assert {p.stem for p in rebuilt.folder.glob("*.eml")} == {
        line.email for line in rebuilt.recipients
    }


def test_a_plan_that_fails_midway_leaves_the_issue_as_it_was(
    settings: Settings, store: Store
) -> None:
    old = build_issue(settings, store, dry_run=True, issue_date=ISSUE_DATE)
    before = ledger(store, old)

    def failing() -> Iterator[tuple[str, list[PlannedPick]]]:
        yield "a@example.org", [PlannedPick(next(iter(store.issue_papers(old.id))), 1.0, "x")]
        raise RuntimeError("the ranking failed")

    with pytest.raises(RuntimeError, match="the ranking failed"):
        store.create_issue(
            key=old.key,
            dry_run=True,
            issue_date=ISSUE_DATE,
            last_dump_id=old.last_dump_id,
            plan=failing(),
            replacing=old.id,
        )
    assert store.find_issue(old.key, dry_run=True) == old
    assert ledger(store, old) == before
    # The staging tables are reusable: the next plan goes in whole.
    again = store.create_issue(
        key="next",
        dry_run=True,
        issue_date=ISSUE_DATE,
        last_dump_id=old.last_dump_id,
        plan=list(before.items()),
    )
    assert ledger(store, again) == before


def test_the_live_list_reads_in_chunks_by_address_and_by_email(
    settings: Settings, store: Store
) -> None:
    everyone = receiving_now(settings, store)
    chunks = list(roster.receiving_chunks(settings, store, size=7))
    assert [len(c) for c in chunks[:-1]] == [7] * (len(chunks) - 1) and 0 < len(chunks[-1]) <= 7
    flat = [s for chunk in chunks for s in chunk]
    assert [s.key for s in flat] == sorted(s.key for s in everyone)
    assert {s.key: s for s in flat} == {s.key: s for s in everyone}  # equal to validated
    store.record_unsubscribe(flat[1].key, source="test")
    asked = [flat[0].key, flat[1].key, "r008.8@example.org", "nobody@example.org"]
    found = roster.receiving_by_email(store, asked)
    assert found == {flat[0].key: flat[0]}  # not unsubscribed, paused, or unknown
    assert roster.receiving_among(store, asked) == {flat[0].key}


def test_what_a_chunk_of_readers_received_is_read_for_them_alone(
    settings: Settings, store: Store
) -> None:
    real = build_issue(settings, store, dry_run=False, issue_date=ISSUE_DATE)
    emails = [d.email for d in store.deliveries(real.id)]
    store.mark_many(real.id, emails[::2], "sent")
    everyone = store.delivered_paper_keys()
    assert set(everyone) == set(emails[::2])
    some = [emails[0], emails[1], emails[2], "nobody@example.org"]
    assert store.delivered_paper_keys(some) == {e: everyone[e] for e in some if e in everyone}


@pytest.mark.usefixtures("tiny_chunks")
def test_an_smtp_send_in_tiny_pages_reaches_every_reader_once(
    project: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**REAL_SEND_ENV, "NEWSLETTER_SMTP_CONCURRENCY": "2"}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    issue = build_issue(settings, store, dry_run=False, issue_date=ISSUE_DATE)
    recipients = [d.email for d in store.deliveries(issue.id)]
    left = recipients[len(recipients) // 2]  # leaves after the issue was built
    roster.set_state(store, left, "unsubscribed")
    with smtp_server() as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(server.port))
        report = deliver(load_settings(), store, issue_date=ISSUE_DATE, progress=False)
        received = {rcpt.lower(): n for rcpt, n in server.recorder.recipients().items()}
    assert received == {e: 1 for e in recipients if e != left}
    assert report.skipped == [left] and report.counts["skipped"] == 1
    assert report.complete and report.sent_now == len(recipients) - 1
