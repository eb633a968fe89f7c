"""A database path that does not exist: the commands that read state refuse it in one
line naming it, and create nothing; only `init`, `ingest`, `fetch` (and the service)
start a database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from newsletter.cli import main
from newsletter.errors import NoDatabaseError
from newsletter.store import Store
from tests.factories import REAL_SEND_ENV
from tests.http_server import Reply, http_server
from tests.smtp_server import Recorder, smtp_server
from tests.test_fetch import api_body

TYPO = Path("typo") / "state" / "newsletter.db"  # its folders do not exist either

READERS = [
    ["send", "--dry-run"],
    ["status"],
    ["status", "--json"],
    ["rank", "ada@example.org"],
    ["preview", "ada@example.org"],
    ["dumps"],
    ["forget", "1"],
    ["subscribers"],
    ["subscribe", "kim@example.org", "--topic", "speech recognition"],
    ["unsubscribe", "ada@example.org"],
    ["serve", "--port", "0"],
    ["preview", "--serve", "--port", "0"],
]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under `folder`, with the files' bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def refusal(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {path}: no database here (NEWSLETTER_DATABASE_PATH); run `newsletter init`, "
        "`newsletter ingest FILE` or `newsletter fetch` first, or fix the path"
    )


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_missing_database_is_refused_and_nothing_is_created(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_PATH", str(TYPO))
    before = snapshot(project)
    assert main(command) == 1
    refusal(capsys, TYPO)
    assert snapshot(project) == before  # no database, no folder, no lock, no file edited


def test_a_real_send_to_a_missing_database_sends_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With settings a real send accepts, the missing database is what stops it."""
    before = snapshot(project)
    recorder = Recorder()
    with smtp_server(recorder) as server:
        for name, value in {
            **REAL_SEND_ENV,
            "NEWSLETTER_DATABASE_PATH": str(TYPO),
            "NEWSLETTER_SMTP_PORT": str(server.port),
        }.items():
            monkeypatch.setenv(name, value)
        assert main(["send"]) == 1
    refusal(capsys, TYPO)
    assert recorder.received == [] and recorder.connections == 0
    assert snapshot(project) == before


def test_an_existing_folder_without_the_file_is_refused_too(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default path, in a folder where nothing was ingested: the folder exists."""
    before = snapshot(project)
    assert main(["status"]) == 1
    refusal(capsys, Path("newsletter.db"))
    assert snapshot(project) == before


def test_ingest_starts_the_database_and_then_the_readers_work(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_PATH", str(TYPO))
    dumps = sorted(str(path) for path in (project / "dumps").iterdir())
    assert main(["ingest", *dumps]) == 0
    assert (project / TYPO).is_file()
    capsys.readouterr()
    assert main(["dumps"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + len(dumps)
    assert main(["send", "--dry-run"]) == 0
    assert "message(s) in outbox/" in capsys.readouterr().out


def test_the_store_opens_an_existing_file_without_creating(tmp_path: Path) -> None:
    missing = tmp_path / "a b#?" / "x.db"  # characters a file: URI must escape
    with pytest.raises(NoDatabaseError, match="no database here"):
        Store(missing, create=False)
    assert not missing.parent.exists()
    missing.parent.mkdir()
    with Store(missing) as store:
        store.record_unsubscribe("ada@example.org", source="cli")
    with Store(missing, create=False) as store:  # the same file, not another one
        assert store.is_unsubscribed("ada@example.org")
    assert sorted(os.listdir(missing.parent)) == ["x.db"]


def test_a_database_that_cannot_be_opened_is_not_called_missing(tmp_path: Path) -> None:
    """A file that is there but not readable as SQLite: the damage is reported."""
    broken = tmp_path / "newsletter.db"
    broken.write_bytes(b"not a database at all" * 100)
    with pytest.raises(Exception) as caught:
        Store(broken, create=False)
    assert not isinstance(caught.value, NoDatabaseError)
    assert "damaged or not a newsletter database" in str(caught.value)
    assert broken.read_bytes() == b"not a database at all" * 100
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(broken).execute("SELECT 1 FROM sqlite_master")


def test_fetch_starts_the_database_where_the_path_says(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fetch` is one of the commands that may start a database (the papers' next stop)."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_PATH", str(TYPO))
    with http_server(Reply(200, api_body())) as server:
        monkeypatch.setenv("NEWSLETTER_SOURCE_URL", server.url())
        assert main(["fetch", "--date", "2026-11-25"]) == 0
    assert "Fetched 3 papers" in capsys.readouterr().out
    assert (isolated / TYPO).is_file()
    assert main(["status"]) == 0  # now there is a database to read


@pytest.mark.parametrize(
    "command",
    [["send", "--dry-run"], ["send"], ["rank", "ada@example.org"], ["preview", "ada@example.org"]],
    ids=" ".join,
)
def test_a_database_with_nothing_ingested_says_so(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """Before: "No subscriber has a relevant paper", as if the papers had been read."""
    for name, value in REAL_SEND_ENV.items():  # settings a real send accepts
        monkeypatch.setenv(name, value)
    Store(project / "newsletter.db").close()  # started (as `init` leaves it), no dump yet
    assert main(command) == 1
    assert capsys.readouterr().err.strip() == (
        "error: newsletter.db: nothing ingested here yet; run `newsletter ingest FILE`, or "
        "`newsletter fetch` and let `newsletter run` take it in"
    )
    with Store(project / "newsletter.db") as store:
        assert store.latest_issue() is None  # no issue built, nothing written
    assert not (project / "outbox").exists()
