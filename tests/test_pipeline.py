"""One issue end to end on the real sample dumps: ingest, rank, render, dry-run to .eml files."""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.cli import main
from newsletter.errors import NotFoundError
from newsletter.pipeline import (
    build_issue,
    dry_run,
    find_dump,
    forget_dump,
    ingest_data,
    ingest_file,
    plan_issue,
)
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers, read_unsubscribe_token
from tests.factories import fill, write_subscribers

ISSUE_DATE = date(2026, 11, 22)  # a Sunday: weekly subscribers get nothing today


@pytest.fixture
def settings(project: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://news.example.org")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-secret-key")
    return load_settings()


@pytest.fixture
def store(settings: Settings, project: Path) -> Store:
    store = Store(settings.database_path)
    for path in sorted((project / "dumps").iterdir()):
        ingest_file(store, path)
    return store


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def titles_in(text: str, titles: list[str]) -> list[str]:
    """The given titles in the order they first appear in `text`."""
    found = [(text.find(t), t) for t in titles if t in text]
    return [t for _, t in sorted(found)]


def test_dry_run_writes_one_valid_message_per_recipient(settings: Settings, store: Store) -> None:
    report = dry_run(settings, store, issue_date=ISSUE_DATE)
    files = sorted(report.folder.glob("*.eml")) if report.folder else []
    active = [s for s in load_subscribers(settings.subscribers_file) if s.active]
    assert {line.email for line in report.recipients} == {f.stem for f in files}
    assert "paused@example.org.eml" not in {f.name for f in files}  # inactive
    assert len(files) >= 3 and len(files) <= len(active)
    titles = [p.title for p in store.papers_since(0)]
    for path in files:
        raw = path.read_bytes()
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        message = read_eml(path)
        for header in ("From", "To", "Subject", "Date", "Message-ID"):
            assert len(message.get_all(header) or []) == 1, header
        assert message["To"].addresses[0].addr_spec == path.stem
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = re.fullmatch(
            r"<(https://news\.example\.org/unsubscribe/(\S+))>", message["List-Unsubscribe"]
        )
        assert url, message["List-Unsubscribe"]
        assert read_unsubscribe_token(url[2], "test-secret-key") == path.stem
        assert message.get_content_type() == "multipart/alternative"
        text_part, html_part = message.iter_parts()
        assert text_part.get_content_type() == "text/plain"
        assert html_part.get_content_type() == "text/html"
        text, html = text_part.get_content(), html_part.get_content()
        planned = [p.paper_key for p in store.planned_picks(report.issue.id, path.stem)]
        picked = [p.title for p in store.papers_by_key(planned).values()]
        picked_in_order = [store.papers_by_key([k])[k].title for k in planned]
        # The same papers, in the same order, in both parts; no other sample paper.
        assert titles_in(text, titles) == picked_in_order
        assert titles_in(htmllib.unescape(html), titles) == picked_in_order
        assert sorted(picked) == sorted(picked_in_order)
        assert url[1] in html and url[1] in text


def test_dry_run_twice_yields_one_set(settings: Settings, store: Store) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert first.folder is not None
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    second = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert second.issue.id == first.issue.id
    assert {p.name: p.read_bytes() for p in second.folder.iterdir()} == before  # type: ignore[union-attr]
    assert [p.name for p in settings.outbox_dir.iterdir()] == [first.folder.name]
    assert second.counts == first.counts and second.counts["sent"] == len(before)


def test_new_dump_rebuilds_the_dry_run_instead_of_adding_a_set(
    settings: Settings, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(settings.database_path)
    ingest_file(store, project / "dumps" / "000_12e940f9937f08e2.txt")
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    ingest_file(store, project / "dumps" / "001_7885534340268e4e.txt")
    second = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert second.issue.last_dump_id > first.issue.last_dump_id
    assert [p.name for p in settings.outbox_dir.iterdir()] == [second.folder.name]  # type: ignore[union-attr]
    assert sum(second.counts.values()) == len(list(second.folder.glob("*.eml")))  # type: ignore[union-attr]


def test_unsubscribed_after_a_dry_run_is_left_out_of_the_next(
    settings: Settings, store: Store
) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert (first.folder / "ada@example.org.eml").exists()  # type: ignore[operator]
    store.record_unsubscribe("ada@example.org", source="test")
    report = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert "ada@example.org" not in {line.email for line in report.recipients}
    assert not (report.folder / "ada@example.org.eml").exists()  # type: ignore[operator]
    assert len(list(report.folder.glob("*.eml"))) == len(first.recipients) - 1  # type: ignore[union-attr]


def test_subscriber_without_relevant_paper_gets_no_email(settings: Settings, store: Store) -> None:
    path = Path(settings.subscribers_file)
    path.write_text(
        path.read_text()
        + "\n  - email: nobody@example.org\n    topics: [quantum chromodynamics lattice]\n"
    )
    report = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert "nobody@example.org" not in {line.email for line in report.recipients}
    assert not (report.folder / "nobody@example.org.eml").exists()  # type: ignore[operator]


def test_papers_really_delivered_are_not_picked_again(settings: Settings, store: Store) -> None:
    subscribers = load_subscribers(settings.subscribers_file)
    real = build_issue(settings, store, subscribers, dry_run=False, issue_date=ISSUE_DATE)
    ada_first = [p.paper_key for p in store.planned_picks(real.id, "ada@example.org")]
    assert ada_first
    # Before it is sent, the next plan may still pick them (nothing was delivered)...
    store.mark(real.id, "ada@example.org", "sent")
    # ...after, the pool is empty for daily subscribers (all papers predate the issue),
    # and even a weekly look-back never offers Ada a paper she already received.
    later = plan_issue(store, subscribers, issue_date=date(2026, 11, 23), weekly_day=0)
    assert "ada@example.org" not in later.picks
    ada = next(s for s in subscribers if s.key == "ada@example.org")
    weekly = plan_issue(
        store,
        [ada.model_copy(update={"frequency": "weekly"})],
        issue_date=date(2026, 11, 23),
        weekly_day=0,
    )
    assert not set(ada_first) & {p.paper.key for p in weekly.picks.get("ada@example.org", [])}


def test_weekly_subscribers_only_on_their_day(settings: Settings, store: Store) -> None:
    subscribers = [
        s.model_copy(update={"frequency": "weekly"})
        for s in load_subscribers(settings.subscribers_file)
    ]
    # Page dates are Nov 19 and Dec 11 (2025): only the Nov 19 page is within a week of Nov 23.
    monday = plan_issue(store, subscribers, issue_date=date(2026, 11, 23), weekly_day=0)
    tuesday = plan_issue(store, subscribers, issue_date=date(2026, 11, 24), weekly_day=0)
    assert monday.picks and not tuesday.picks


def _content(message: EmailMessage) -> tuple[object, ...]:
    """What a reader sees of a message (Date and the MIME boundary vary per build)."""
    headers = [(k, str(v)) for k, v in message.items() if k not in ("Date", "Content-Type")]
    return (headers, [part.get_content() for part in message.iter_parts()])


def test_dry_run_on_worker_processes_writes_the_same_messages(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert first.folder is not None
    in_process = {p.name: _content(read_eml(p)) for p in first.folder.glob("*.eml")}
    assert in_process
    store.delete_issue(first.issue.id)  # the next run builds and writes it all again
    for path in first.folder.glob("*.eml"):
        path.unlink()
    monkeypatch.setenv("NEWSLETTER_COMPOSE_WORKERS", "2")
    pooled = load_settings()
    assert pooled.compose_workers == 2
    report = dry_run(pooled, store, issue_date=ISSUE_DATE)
    assert report.folder == first.folder
    assert {p.name: _content(read_eml(p)) for p in report.folder.glob("*.eml")} == in_process
    assert not list(report.folder.glob(".*"))  # no temporary file left behind
    assert report.counts["sent"] == len(in_process) and report.complete
    assert [line.email for line in report.recipients] == [line.email for line in first.recipients]


def test_dry_run_redoes_rows_a_crash_left_sending(settings: Settings, store: Store) -> None:
    first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert first.folder is not None and first.recipients
    victim = first.recipients[0].email
    (first.folder / f"{victim}.eml").unlink()
    store.mark(first.issue.id, victim, "sending")  # claimed, then the process died
    again = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert (first.folder / f"{victim}.eml").exists()
    assert again.counts["sent"] == len(first.recipients) and again.counts["sending"] == 0


def test_a_dump_is_found_by_id_path_or_file_name(settings: Settings, project: Path) -> None:
    samples = sorted((project / "dumps").iterdir())
    received = datetime(2026, 11, 22, tzinfo=UTC)
    with Store(settings.database_path) as store:
        # The inbox ingests each day's capture under the same name.
        for sample in samples:
            ingest_data(store, sample.read_bytes(), name="inbox/papers.txt", received_at=received)
        ingest_file(store, Path("dumps") / samples[0].name)  # the same content: nothing new
        ingest_data(
            store, b"x" + samples[0].read_bytes(), name="inbox/other.txt", received_at=received
        )
        assert find_dump(store, "3").name == "inbox/other.txt"
        assert find_dump(store, str(Path("inbox/other.txt").resolve())).id == 3
        assert find_dump(store, "other.txt").id == 3
        for ambiguous in ("papers.txt", "inbox/papers.txt", "./inbox/papers.txt"):
            with pytest.raises(NotFoundError, match=r"2 dumps .* \(ids 1, 2\)"):
                find_dump(store, ambiguous)
        with pytest.raises(NotFoundError, match="'newsletter dumps' lists"):
            find_dump(store, "4")
        assert forget_dump(settings, store, "2").dump.page_date == date(2026, 11, 19)
        assert find_dump(store, "papers.txt").id == 1


def test_addresses_that_look_alike_get_a_file_each(
    settings: Settings, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`a&b@` and `a_b@` (and `üser@`, `öser@`) once shared one file name: the run said
    "4 written" and left 2 files, each holding the last message written to it."""
    addresses = ["a&b@example.org", "a_b@example.org", "üser@example.org", "öser@example.org"]
    (project / "subscribers.yaml").write_text(
        "subscribers:\n"
        + "".join(f"  - email: {a}\n    topics: [knowledge distillation]\n" for a in addresses),
        encoding="utf-8",
    )
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    assert main(["ingest", *dumps]) == 0
    assert main(["send", "--dry-run"]) == 0
    assert "4 message(s) in" in capsys.readouterr().out
    folder = next((project / "outbox").iterdir())
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 4
    # SMTPUTF8 messages carry raw UTF-8 headers: parse the text to read them as characters.
    to = {
        str(email.message_from_string(f.read_bytes().decode(), policy=email.policy.default)["To"])
        for f in files
    }
    assert to == set(addresses)  # each file holds its own recipient
    assert (folder / "a_b@example.org.eml").exists()  # an everyday address is its own name
    # The names are stable: a re-run finds the same files and rewrites none.
    with Store(settings.database_path) as store:
        again = dry_run(settings, store)
    assert again.written_now == 0
    assert sorted(line.path.resolve() for line in again.recipients if line.path) == files


def test_a_full_outbox_is_one_clear_error_and_a_rerun_writes_the_rest(
    project: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox on a real disk that fills up while workers write: one line, no `.part`
    file left behind, and once there is space again the next run writes the rest."""
    write_subscribers(project / "subscribers.yaml", 100)
    monkeypatch.setenv("NEWSLETTER_OUTBOX_DIR", str(small_disk / "outbox"))
    monkeypatch.setenv("NEWSLETTER_COMPOSE_WORKERS", "2")
    assert main(["ingest", *sorted(str(p) for p in (project / "dumps").iterdir())]) == 0
    filler = fill(small_disk, leave=256 * 1024)  # room for a few messages only
    command = [sys.executable, "-m", "newsletter", "send", "--dry-run"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    folder = next((small_disk / "outbox").iterdir())
    assert re.fullmatch(
        rf"error: cannot write {re.escape(str(folder))}/\S+\.eml: the disk is full \(No space "
        rf"left on device\); free some space in {re.escape(str(folder))} and run again: "
        "nothing was lost, the messages not written yet are written then",
        line,
    )
    assert 0 < len(list(folder.glob("*.eml"))) < 100
    assert list(folder.glob(".*")) == []  # no temporary file left behind
    filler.unlink()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "100 message(s) in" in done.stdout
    assert len(list(folder.glob("*.eml"))) == 100 and list(folder.glob(".*")) == []
