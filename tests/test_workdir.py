"""`newsletter init`: a working folder with a generated .env (every setting, from the
Settings model), an example subscriber, the inbox, the database, and an editable copy
of the templates on request; nothing that exists is overwritten."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from datetime import time, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from newsletter.cli import main
from newsletter.settings import Settings, load_settings
from newsletter.subscribers import load_subscribers
from newsletter.workdir import env_text
from tests.conftest import SAMPLE_001


def newsletter(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def uncommented(text: str) -> str:
    """Every `# NEWSLETTER_X=value` line of a generated .env made active (those with a
    value: an empty one means unset)."""
    return re.sub(r"(?m)^# (NEWSLETTER_[A-Z0-9_]+=.+)$", r"\1", text)


def test_init_makes_a_working_folder_and_says_what_next(isolated: Path) -> None:
    made = newsletter("init", "lab", cwd=isolated)
    assert made.returncode == 0, made.stderr
    lab = isolated / "lab"
    env = (lab / ".env").read_text(encoding="utf-8")
    key = re.search(r"(?m)^NEWSLETTER_SECRET_KEY=(\S+)$", env)
    assert key is not None and len(key[1]) >= 32
    assert stat.S_IMODE((lab / ".env").stat().st_mode) == 0o600  # it holds the key
    subscribers = load_subscribers(lab / "subscribers.yaml")
    assert [s.email for s in subscribers] == ["ada@example.org"]
    assert (lab / "inbox").is_dir() and (lab / "newsletter.db").is_file()
    # The next steps, in the order a lab needs them.
    assert "cd lab" in made.stdout
    steps = re.findall(r"(?m)^  \d\. (newsletter \w+|edit [\w.]+)", made.stdout)
    assert steps == [
        "edit .env",
        "edit subscribers.yaml",
        "newsletter check",
        "newsletter fetch",
        "newsletter run",
    ]
    # A second folder gets another key.
    again = newsletter("init", "lab2", cwd=isolated)
    assert again.returncode == 0
    assert key[1] not in (isolated / "lab2" / ".env").read_text(encoding="utf-8")


def test_env_lists_every_setting_with_its_default(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = env_text("k" * 43)
    for name, info in Settings.model_fields.items():
        assert info.description, f"Settings.{name} has no description for the .env"
        variable = f"NEWSLETTER_{name.upper()}"
        assert re.search(rf"(?m)^# {re.escape(info.description)}\n#? ?{variable}=", text), name
    # Made active, the commented defaults load as exactly the defaults.
    monkeypatch.delenv("NEWSLETTER_SOURCE_URL")
    (isolated / ".env").write_text(uncommented(text), encoding="utf-8")
    loaded = load_settings().model_dump(exclude={"secret_key"})
    assert loaded == Settings(_env_file=None).model_dump(exclude={"secret_key"})  # type: ignore[call-arg]
    assert load_settings().secret_key.get_secret_value() == "k" * 43  # type: ignore[union-attr]


class Extended(Settings):
    """A settings model with fields added later (by another change): the generated
    .env must list them with no change to the generator."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", env_file=".env")
    archive_dir: Path = Field(default=Path("archive/pages"), description="where pages go")
    quiet_from: time = Field(default=time(22, 30, 15), description="quiet hours start")
    retry_window: timedelta = Field(default=timedelta(minutes=90), description="retry window")
    ratio: float = Field(default=0.25, description="a fraction")
    greeting: str = Field(default='Hello "lab" # team', description="a phrase with marks")
    mode: Literal["fast", "careful"] = Field(default="careful", description="how")


def test_fields_added_to_the_model_are_listed_and_read_back(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SOURCE_URL")
    text = env_text("k" * 43, model=Extended)
    for name in ("archive_dir", "quiet_from", "retry_window", "ratio", "greeting", "mode"):
        assert f"# NEWSLETTER_{name.upper()}=" in text
    (isolated / ".env").write_text(uncommented(text), encoding="utf-8")
    assert Extended().model_dump(exclude={"secret_key"}) == Extended(
        _env_file=None  # type: ignore[call-arg]
    ).model_dump(exclude={"secret_key"})
    assert 'NEWSLETTER_GREETING="Hello \\"lab\\" # team"' in uncommented(text)


def test_init_keeps_what_exists_and_says_so(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated / ".env").write_text("NEWSLETTER_SEND_TIME=06:00\n", encoding="utf-8")
    (isolated / "subscribers.yaml").write_text("subscribers: []\n", encoding="utf-8")
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert (isolated / ".env").read_text(encoding="utf-8") == "NEWSLETTER_SEND_TIME=06:00\n"
    assert (isolated / "subscribers.yaml").read_text(encoding="utf-8") == "subscribers: []\n"
    kept = next(line for line in out.splitlines() if line.startswith("Kept "))
    assert ".env" in kept and "subscribers.yaml" in kept and "not overwritten" in kept
    assert "Created inbox/" in out and (isolated / "inbox").is_dir()
    assert "cd " not in out  # already in the folder


def test_init_in_a_folder_that_cannot_be_made_is_one_clear_line(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated / "taken").write_text("a file, not a folder\n", encoding="utf-8")
    assert main(["init", "taken/lab"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "taken" in err and "\n" not in err
    assert (isolated / "taken").read_text(encoding="utf-8") == "a file, not a folder\n"


def test_init_templates_makes_an_editable_copy_that_is_used(isolated: Path) -> None:
    folder = isolated / "a lab folder" / "news"  # spaces, and folders to make
    made = newsletter("init", str(folder), "--templates", cwd=isolated)
    assert made.returncode == 0, made.stderr
    assert "NEWSLETTER_TEMPLATES_DIR=templates\n" in (folder / ".env").read_text()
    subject = folder / "templates" / "subject.txt.j2"
    assert (folder / "templates" / "web" / "preview.html.j2").is_file()
    edited = subject.read_text(encoding="utf-8").replace(
        "Your research", "[Lab digest] Your research"
    )
    subject.write_text(edited, encoding="utf-8")
    dump = folder / "inbox" / SAMPLE_001.name
    dump.write_bytes(SAMPLE_001.read_bytes())
    assert newsletter("ingest", str(dump), cwd=folder).returncode == 0
    sent = newsletter("send", "--dry-run", cwd=folder)
    assert sent.returncode == 0, sent.stderr
    [eml] = (folder / "outbox").rglob("ada@example.org*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert str(message["Subject"]).startswith("[Lab digest] Your research digest")
    # A second init with --templates keeps the edited copy.
    again = newsletter("init", "--templates", cwd=folder)
    assert "templates/subject.txt.j2" in again.stdout and "[Lab digest]" in subject.read_text()
    assert "add NEWSLETTER_TEMPLATES_DIR" not in again.stdout  # the kept .env names them


def test_init_uses_the_database_path_the_folder_sets(isolated: Path) -> None:
    (isolated / "lab").mkdir()
    (isolated / "lab" / ".env").write_text(
        "NEWSLETTER_DATABASE_PATH=state/digest.db\n", encoding="utf-8"
    )
    made = newsletter("init", "lab", cwd=isolated)
    assert made.returncode == 0, made.stderr
    assert (isolated / "lab" / "state" / "digest.db").is_file()
    assert not (isolated / "lab" / "newsletter.db").exists()
    assert os.path.join("lab", "state", "digest.db") in made.stdout
