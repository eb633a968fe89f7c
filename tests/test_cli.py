"""The command line as a user runs it: a real process, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.store import Store
from tests.factories import REAL_SEND_ENV
from tests.smtp_server import Recorder, smtp_server


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    full_env["NEWSLETTER_SOURCE_URL"] = ""  # never huggingface.co from a test
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_json_reports_each_file(project: Path) -> None:
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    result = run("ingest", *dumps, "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    assert [(r["papers"], r["new"]) for r in reports] == [(23, 23), (59, 59)]
    assert all(r["warnings"] == [] for r in reports)
    again = json.loads(run("ingest", *dumps, "--json", cwd=project).stdout)
    assert [(r["papers"], r["new"]) for r in again] == [(23, 0), (59, 0)]


def test_not_a_dump_is_one_clear_line_and_exit_1(project: Path) -> None:
    bogus = project / "notes.txt"
    bogus.write_text("Shopping list\n\nmilk\neggs\n")
    result = run("ingest", str(bogus), cwd=project)
    assert result.returncode == 1
    assert "notes.txt" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    debug = run("--debug", "ingest", str(bogus), cwd=project)
    assert debug.returncode == 1 and "notes.txt" in debug.stderr


def test_rank_json_and_send_dry_run(project: Path) -> None:
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    assert run("ingest", *dumps, cwd=project).returncode == 0
    ranked = run("rank", "ada@example.org", "--json", cwd=project)
    assert ranked.returncode == 0, ranked.stderr
    picks = json.loads(ranked.stdout)
    assert 0 < len(picks) <= 8
    assert all({"title", "score", "why"} <= set(p) for p in picks)
    assert [p["score"] for p in picks] == sorted((p["score"] for p in picks), reverse=True)
    assert any(
        "distillation" in p["title"].lower() or "continual" in p["title"].lower() for p in picks[:3]
    )

    sent = run("send", "--dry-run", cwd=project)
    assert sent.returncode == 0, sent.stderr
    assert "ada@example.org" in sent.stdout and "top match" in sent.stdout
    written = list((project / "outbox").glob("*/*.eml"))
    assert "ada@example.org.eml" in {p.name for p in written}

    status = json.loads(run("status", "--json", cwd=project).stdout)
    assert status["counts"]["sent"] == len(written) and status["failed"] == []


def test_preview_writes_html_and_text(project: Path) -> None:
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    run("ingest", *dumps, cwd=project)
    result = run("preview", "grace@example.org", cwd=project)
    assert result.returncode == 0, result.stderr
    html_path = Path(
        next(
            line.split(": ", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("HTML: ")
        )
    )
    assert html_path.is_absolute() or (project / html_path).exists()
    html = (project / html_path).read_text()
    assert "<html" in html and "translation" in html.lower()


def test_unknown_subscriber_and_bad_setting(project: Path) -> None:
    result = run("rank", "who@example.org", cwd=project)
    assert result.returncode == 1 and "who@example.org" in result.stderr
    bad = run("status", cwd=project, env={"NEWSLETTER_TIMEZONE": "Nowhere/Land"})
    assert bad.returncode == 1 and "NEWSLETTER_TIMEZONE" in bad.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["ingest"],
        ["dumps"],
        ["forget"],
        ["fetch"],
        ["send"],
        ["rank"],
        ["preview"],
        ["status"],
        ["run"],
    ],
)
def test_help_everywhere(project: Path, command: list[str]) -> None:
    result = run(*command, "--help", cwd=project)
    assert result.returncode == 0 and "usage:" in result.stdout


def ingest_samples(project: Path) -> list[str]:
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    result = run("ingest", *dumps, cwd=project)
    assert result.returncode == 0, result.stderr
    return dumps


def test_dumps_lists_what_was_ingested(project: Path) -> None:
    missing = run("dumps", cwd=project)
    assert missing.returncode == 1 and "newsletter.db: no database here" in missing.stderr
    Store(project / "newsletter.db").close()  # started, nothing ingested yet
    empty = run("dumps", cwd=project)
    assert empty.returncode == 0 and "No dump has been ingested yet" in empty.stdout
    assert json.loads(run("dumps", "--json", cwd=project).stdout) == []
    first, second = ingest_samples(project)

    listing = run("dumps", cwd=project)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["id", "shape", "page", "papers", "new", "ingested", "file"]
    assert [row.split()[:6] for row in rows] == [
        ["1", "page", "text", "2025-12-11", "23", "23"],
        ["2", "page", "text", "2026-11-19", "59", "59"],
    ]
    assert rows[0].endswith(first) and rows[1].endswith(second)

    listed = json.loads(run("dumps", "--json", cwd=project).stdout)
    assert [
        (d["id"], d["file"], d["shape"], d["page_date"], d["papers"], d["new_papers"])
        for d in listed
    ] == [
        (1, first, "page text", "2025-12-11", 23, 23),
        (2, second, "page text", "2026-11-19", 59, 59),
    ]
    assert all(datetime.fromisoformat(d["ingested_at"]).tzinfo is not None for d in listed)


def test_forget_by_id_and_by_name_then_ingest_again(project: Path) -> None:
    first, second = ingest_samples(project)
    assert run("send", "--dry-run", cwd=project).returncode == 0
    (outbox,) = (project / "outbox").iterdir()

    by_id = run("forget", "1", cwd=project)
    assert by_id.returncode == 0, by_id.stderr
    lines = by_id.stdout.splitlines()
    assert lines[0] == (
        f"Forgot dump 1 ({first}, page text, page of 2025-12-11): 23 papers removed, "
        "0 kept (in no other dump), 0 kept because already delivered"
    )
    # The dry run drew on the forgotten papers: it is gone, files and all.
    assert any(f"dry run of issue {outbox.name}" in line for line in lines[1:])
    assert not outbox.exists()
    assert [d["id"] for d in json.loads(run("dumps", "--json", cwd=project).stdout)] == [2]

    by_name = run("forget", Path(second).name, cwd=project)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith(f"Forgot dump 2 ({second}, page text, page of 2026-11-19)")
    assert "59 papers removed" in by_name.stdout
    assert json.loads(run("dumps", "--json", cwd=project).stdout) == []

    again = json.loads(run("ingest", first, second, "--json", cwd=project).stdout)
    assert [(r["new"], r["already_ingested"]) for r in again] == [(23, False), (59, False)]
    listed = json.loads(run("dumps", "--json", cwd=project).stdout)
    assert [(d["id"], d["file"]) for d in listed] == [(3, first), (4, second)]


@pytest.mark.parametrize("dump", ["42", "no-such-dump.txt"])
def test_forget_an_unknown_dump_is_one_clear_line(project: Path, dump: str) -> None:
    ingest_samples(project)
    result = run("forget", dump, cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert dump in line and "newsletter dumps" in line
    assert len(json.loads(run("dumps", "--json", cwd=project).stdout)) == 2


def _status_until(project: Path, env: dict[str, str], wanted: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        status = run("status", cwd=project, env=env)
        assert status.returncode == 0, status.stderr
        if wanted in status.stdout or time.monotonic() > deadline:
            return status.stdout
        time.sleep(0.2)


def test_status_says_which_command_holds_the_database(project: Path) -> None:
    """Before: "Service: running (pid N)" while a plain `newsletter send` held the lock."""
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    assert run("ingest", *dumps, cwd=project).returncode == 0
    env = {**REAL_SEND_ENV, "NEWSLETTER_SMTP_TIMEOUT": "60"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    full_env.update(env, NEWSLETTER_SOURCE_URL="")
    stalling = Recorder(on_data=lambda rcpt, attempt: "stall", stall_seconds=60)
    with smtp_server(stalling) as server:
        full_env["NEWSLETTER_SMTP_PORT"] = env["NEWSLETTER_SMTP_PORT"] = str(server.port)
        command = [sys.executable, "-m", "newsletter"]
        send = subprocess.Popen([*command, "send"], cwd=project, env=full_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            shown = _status_until(project, env, "a send is running")
            assert f"Service: not running; a send is running (pid {send.pid})" in shown
            state = json.loads(run("status", "--json", cwd=project, env=env).stdout)
            assert state["service_pid"] is None
            assert state["lock"] == {"pid": send.pid, "command": "send"}
        finally:
            send.kill()
            send.wait(30)
    # The service itself (nothing due: the send time is hours away).
    later = f"{(datetime.now(UTC).hour + 12) % 24:02d}:00"
    full_env.update(NEWSLETTER_SEND_TIME=later, NEWSLETTER_TIMEZONE="UTC")
    service = subprocess.Popen([*command, "run", "--dry-run"], cwd=project, env=full_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        shown = _status_until(project, env, "Service: running")
        assert f"Service: running (pid {service.pid})" in shown
        state = json.loads(run("status", "--json", cwd=project, env=env).stdout)
        assert state["service_pid"] == service.pid
        assert state["lock"] == {"pid": service.pid, "command": "run"}
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(60) == 0
    assert "Service: not running ('newsletter run' starts it)" in run("status", cwd=project).stdout
