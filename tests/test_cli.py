"""The command line as a user runs it: a real process, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


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
    "command", [[], ["ingest"], ["send"], ["rank"], ["preview"], ["status"], ["run"], ["fetch"]]
)
def test_help_everywhere(project: Path, command: list[str]) -> None:
    result = run(*command, "--help", cwd=project)
    assert result.returncode == 0 and "usage:" in result.stdout
