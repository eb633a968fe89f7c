"""A real spam filter reads the digest: Debian's SpamAssassin, local rules only
(`spamassassin -t -L`), on the `.eml` files of a dry run. No content rule may fire; only
the rules a message that never crossed a mail server cannot avoid are allowed, by name.

`make test` installs spamassassin when it is missing; this test installs it the same
way when it can (as root, with apt-get) and is skipped, saying why, only when it cannot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.pipeline import dry_run, ingest_file
from newsletter.settings import load_settings
from newsletter.store import Store
from tests.factories import api_paper, write_api_dump

# Rules that score nothing about the content and that a local, never-relayed message
# cannot help firing:
ALLOWED = {
    "NO_RECEIVED",  # "message has no Received headers": no server has handled it yet
    "NO_RELAYS",  # "message was not relayed via SMTP": the same, seen from the relays
    "HTML_MESSAGE",  # "HTML included in message": informational (0 points), every HTML mail
}
RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s")


def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found:
        return found
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "spamassassin"],
            capture_output=True,
            timeout=900,
            check=False,
        )
        found = shutil.which("spamassassin")
        if found:
            return found
    pytest.skip(
        "spamassassin is not installed and cannot be installed here (it needs apt-get as "
        "root): install Debian's spamassassin package ('make test' does) to run this check"
    )


def report(program: str, message: Path) -> tuple[float, list[tuple[float, str]]]:
    """The score and the rules that fired, as `spamassassin -t -L` reports them."""
    result = subprocess.run(
        [program, "-t", "-L"],
        input=message.read_bytes(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    text = result.stdout.decode("utf-8", "replace")
    assert "Content analysis details:" in text, result.stderr.decode("utf-8", "replace")
    details = text.split("Content analysis details:", 1)[1]
    score = float(re.search(r"\((-?\d+(?:\.\d+)?) points", details).group(1))  # type: ignore[union-attr]
    rules = [(float(m[1]), m[2]) for m in map(RULE_LINE.match, details.splitlines()) if m]
    return score, rules


def test_no_content_rule_fires_on_the_digest(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = spamassassin()
    # Links as a lab's deployment has them (https, standard port, its own domain).
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "https://news.lab.example.org")
    monkeypatch.setenv("NEWSLETTER_FROM_ADDRESS", "Lab Digest <digest@lab.example.org>")
    entries = [
        api_paper(
            f"2611.0{n}001",
            f"Continual Learning of Skills, Part {n}: Knowledge Distillation Revisited",
            "We distil a large teacher into a small student that keeps learning new tasks. "
            "The student forgets less than fine-tuning does, on six benchmarks.",
            ["Ada Quinn", "Bo Chen", "Chiara Rossi", "Dev Patel", "Eun-ji Kim"],
            day="2026-11-21",
            ai_summary="A student distilled from a teacher keeps learning without forgetting.",
            github="https://github.com/example/skills",
        )
        for n in range(1, 4)
    ]
    settings = load_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        ingest_file(store, write_api_dump(project / "api.json", entries))
        written = dry_run(settings, store)
    assert written.folder is not None
    messages = sorted(written.folder.glob("*.eml"))
    assert len(messages) >= 3
    for message in messages:
        score, rules = report(program, message)
        fired = {name for _, name in rules}
        assert fired <= ALLOWED, f"{message.name}: {sorted(fired - ALLOWED)} fired ({rules})"
        assert "HTML_FONT_LOW_CONTRAST" not in fired
        assert score <= 0, (message.name, rules)
