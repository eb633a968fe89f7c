"""`subscribe`, `unsubscribe`, `subscribers` and `serve` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from newsletter.settings import DEV_SECRET_KEY
from newsletter.store import Store
from newsletter.subscribers import unsubscribe_token
from tests.test_cli import run


@pytest.fixture(autouse=True)
def started(project: Path) -> None:
    """A newsletter whose database exists: these commands refuse a missing one."""
    Store(project / "newsletter.db").close()


def listing(project: Path) -> dict[str, dict[str, object]]:
    result = run("subscribers", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    return {entry["email"]: entry for entry in json.loads(result.stdout)}


def test_subscribe_unsubscribe_round_trip(project: Path) -> None:
    before = (project / "subscribers.yaml").read_text()
    header = before[: before.index("subscribers:")]
    added = run(
        "subscribe",
        "kim@example.org",
        "--topic",
        "speech recognition",
        "--topic",
        "audio",
        "--exclude",
        "music",
        "--name",
        "Kim",
        "--frequency",
        "weekly",
        "--max-papers",
        "6",
        cwd=project,
    )
    assert added.returncode == 0, added.stderr
    assert "Subscribed kim@example.org" in added.stdout
    kim = listing(project)["kim@example.org"]
    assert kim["topics"] == ["speech recognition", "audio"]
    assert (kim["frequency"], kim["active"], kim["max_papers"]) == ("weekly", True, 6)

    left = run("unsubscribe", "kim@example.org", cwd=project)
    assert left.returncode == 0, left.stderr and "Unsubscribed" in left.stdout
    assert listing(project)["kim@example.org"]["active"] is False
    assert "active: false" in (project / "subscribers.yaml").read_text()
    twice = run("unsubscribe", "kim@example.org", cwd=project)
    assert twice.returncode == 0 and "already unsubscribed" in twice.stdout

    back = run("subscribe", "kim@example.org", "--topic", "audio", cwd=project)
    assert back.returncode == 0, back.stderr
    assert listing(project)["kim@example.org"]["active"] is True  # the DB record is cleared
    assert (project / "subscribers.yaml").read_text().startswith(header)


def test_a_one_click_unsubscribe_shows_in_the_listing(project: Path) -> None:
    """The web app records in the database; `subscribers` reflects it (and the file)."""
    from newsletter.membership import leave
    from newsletter.settings import load_settings
    from newsletter.store import Store

    settings = load_settings()
    with Store(project / "newsletter.db") as store:
        leave(settings, store, "alan@example.org", source="one-click")
    entry = listing(project)["alan@example.org"]
    assert entry["active"] is False and entry["state"] == "unsubscribed"
    plain = run("subscribers", cwd=project)
    assert "alan@example.org" in plain.stdout and "unsubscribed" in plain.stdout


def test_bad_edits_fail_with_one_line_and_change_nothing(project: Path) -> None:
    before = (project / "subscribers.yaml").read_bytes()
    for args, says in [
        (["subscribe", "ada@example.org", "--max-papers", "0"], "max_papers"),
        (["subscribe", "not-an-address", "--topic", "x"], "not a valid email address"),
        (["subscribe", "new@example.org"], "--topic"),
        (["unsubscribe", "nobody@example.org"], "nobody@example.org"),
    ]:
        result = run(*args, cwd=project)
        assert result.returncode == 1, args
        assert says in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert (project / "subscribers.yaml").read_bytes() == before
    assert run("subscribers", "--json", cwd=project).returncode == 0


def test_serve_answers_and_unsubscribes(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("Serving on http://127.0.0.1:"), first
        url = first.split()[2].rstrip("/")
        assert httpx.get(f"{url}/", timeout=60).status_code == 200
        token = unsubscribe_token("barbara@example.org", DEV_SECRET_KEY)
        response = httpx.post(
            f"{url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=60
        )
        assert response.status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
    assert listing(project)["barbara@example.org"]["active"] is False


def test_preview_serve_and_help(project: Path) -> None:
    for command in (["subscribe"], ["unsubscribe"], ["subscribers"], ["serve"]):
        result = run(*command, "--help", cwd=project)
        assert result.returncode == 0 and "usage:" in result.stdout
    assert "--serve" in run("preview", "--help", cwd=project).stdout
    missing = run("preview", cwd=project)
    assert missing.returncode == 1 and "--serve" in missing.stderr
