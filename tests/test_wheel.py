"""The package as a lab installs it: a wheel built from this checkout, installed with its
dependencies into a fresh virtual environment, run from an empty folder with nothing
pointing back at the checkout (`init`, `ingest`, `send --dry-run`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE_001

# What a wheel is built from: the package and the files its metadata names.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "newsletter")
PIP_TIMEOUT = 900  # seconds: the dependencies come from the package index (or pip's cache)


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: no NEWSLETTER_* settings, no PYTHONPATH."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("NEWSLETTER_") and name not in ("PYTHONPATH", "PYTHONHOME")
    }


def run(command: list[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """(the fresh environment's bin/, the wheel, the build's stderr)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: the build writes build/ and *.egg-info beside it
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(origin, source / name)
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", "dist"],
        cwd=root,
        timeout=PIP_TIMEOUT,
    )
    [wheel] = (root / "dist").glob("newsletter-*.whl")
    run([sys.executable, "-m", "venv", str(root / "venv")], cwd=root)
    bin_dir = root / "venv" / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=root,
        timeout=PIP_TIMEOUT)  # fmt: skip
    yield bin_dir, wheel, built.stderr


def test_the_build_prints_no_warnings(venv: tuple[Path, Path, str]) -> None:
    """pip's own notes about this machine's index settings are not the build's."""
    _, _, stderr = venv
    assert "Warning" not in stderr and "deprecated" not in stderr.lower(), stderr


def test_the_installed_package_is_the_wheels(venv: tuple[Path, Path, str], tmp_path: Path) -> None:
    bin_dir, wheel, _ = venv
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    where = run(
        [
            str(bin_dir / "python"),
            "-c",
            "import json, newsletter, importlib.metadata as m; "
            "d = m.distribution('newsletter'); "
            "print(json.dumps([newsletter.__file__, d.read_text('direct_url.json')]))",
        ],
        cwd=empty,
    )
    module, direct_url = json.loads(where.stdout)
    assert Path(module).is_relative_to(bin_dir.parent) and not Path(module).is_relative_to(REPO)
    assert "site-packages" in module
    origin = json.loads(direct_url)
    assert origin["url"] == wheel.as_uri() and "dir_info" not in origin  # not editable


def test_init_ingest_and_a_dry_run_from_an_empty_folder(
    venv: tuple[Path, Path, str], tmp_path: Path
) -> None:
    bin_dir, _, _ = venv
    newsletter = str(bin_dir / "newsletter")
    lab = tmp_path / "lab"
    lab.mkdir()
    made = run([newsletter, "init"], cwd=lab)
    assert "Created .env" in made.stdout and (lab / "inbox").is_dir()
    dump = lab / "inbox" / "daily-papers.txt"
    shutil.copy(SAMPLE_001, dump)
    ingested = run([newsletter, "ingest", "inbox/daily-papers.txt"], cwd=lab)
    assert "59 papers, 59 new" in ingested.stdout
    sent = run([newsletter, "send", "--dry-run"], cwd=lab)
    assert "1 message(s) in outbox/" in sent.stdout
    [eml] = (lab / "outbox").rglob("*.eml")
    assert eml.name == "ada@example.org.eml"
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"].addresses[0].addr_spec == "ada@example.org"
    assert str(message["Subject"]).startswith("Your research digest for ")
    assert message["List-Unsubscribe"] and message["Message-ID"]
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    assert "<html" in html.get_content().lower()  # the packaged MJML template, rendered
    assert "Reinforcement Learning" in text.get_content()
    assert not (lab / "templates").exists()  # the templates came from the package
