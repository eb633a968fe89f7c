"""What the command line prints, and where: stdout for what was asked, logs on stderr
(warnings by default, -v for info, JSON lines for services), a re-run that says what it
found, progress only on a terminal, and a help page with an example for every command."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

from newsletter import __version__
from newsletter.cli import build_parser
from tests.smtp_server import Recorder, smtp_server

SECRET = "a-real-secret-key-for-the-output-tests-0123456789"


def cli_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SOURCE_URL"] = ""
    env["NEWSLETTER_TEMPLATES_DIR"] = "templates"
    env.update(more)
    return env


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ingest(project: Path) -> None:
    dumps = sorted(str(p) for p in (project / "dumps").iterdir())
    result = run("ingest", *dumps, cwd=project)
    assert result.returncode == 0, result.stderr


def smtp_env(port: int) -> dict[str, str]:
    """A real send that any preflight accepts: https base URL, own From, long key."""
    return cli_env(
        NEWSLETTER_SMTP_PORT=str(port),
        NEWSLETTER_SECRET_KEY=SECRET,
        NEWSLETTER_BASE_URL="https://digest.lab.example.org",
        NEWSLETTER_FROM_ADDRESS="Lab Digest <digest@lab.example.org>",
        NEWSLETTER_SMTP_TIMEOUT="10",
    )


# -- stdout and stderr ----------------------------------------------------------------------

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ")


def test_a_summary_has_no_log_lines_and_logs_go_to_stderr_only_with_v(project: Path) -> None:
    ingest(project)
    quiet = run("send", "--dry-run", cwd=project)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # nothing went wrong: no warning, no info
    assert "Dry run of issue" in quiet.stdout and "top match" in quiet.stdout
    assert not LOG_LINE.search(quiet.stdout)

    (project / "outbox").rename(project / "outbox-first")  # written again, same output
    with_v = run("-v", "send", "--dry-run", cwd=project)
    assert with_v.returncode == 0, with_v.stderr
    assert not LOG_LINE.search(with_v.stdout) and "info:" not in with_v.stdout
    info = with_v.stderr.splitlines()
    assert info and all(line.startswith("info: ") for line in info), info
    assert any(re.match(r"info: loaded \d+ subscribers", line) for line in info)


def test_log_format_json_writes_one_object_per_stderr_line(project: Path) -> None:
    ingest(project)
    result = run("send", "--dry-run", "-v", "--log-format", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records, "-v logs the run's steps"
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["level"] == "info" and record["logger"].startswith("newsletter")
    assert "Dry run of issue" in result.stdout  # the summary stays on stdout, as text


def test_a_bad_log_format_is_a_usage_error(project: Path) -> None:
    result = run("--log-format", "xml", "status", cwd=project)
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr


# -- a re-run says what it found --------------------------------------------------------------


def test_a_second_send_says_nothing_left_to_send_with_the_ledgers_counts(project: Path) -> None:
    ingest(project)
    refused = "grace@example.org"
    with smtp_server(Recorder(refuse_rcpt={refused: "550 5.1.1 no such mailbox"})) as server:
        env = smtp_env(server.port)
        first = run("send", cwd=project, env=env)
        delivered = len(server.recorder.received)
        assert delivered > 0
        assert first.returncode == 1  # one address refused for good
        (head,) = [line for line in first.stdout.splitlines() if line.startswith("Issue ")]
        assert f": sent {delivered}, failed 1" in head and "already" not in head

        second = run("send", cwd=project, env=env)
        assert len(server.recorder.received) == delivered  # nothing went out again
        (head,) = [line for line in second.stdout.splitlines() if line.startswith("Issue ")]
        assert head.endswith(
            f": nothing left to send: {delivered} already sent, 1 failed permanently"
        ), head
        assert f"sent {delivered}" not in head


def test_a_resend_counts_this_runs_work_apart_from_the_earlier_runs(project: Path) -> None:
    ingest(project)
    busy = "grace@example.org"
    recorder = Recorder(refuse_rcpt={busy: "451 4.3.0 try again later"})
    with smtp_server(recorder) as server:
        env = {**smtp_env(server.port), "NEWSLETTER_SMTP_MAX_ATTEMPTS": "1"}
        first = run("send", cwd=project, env=env)
        assert first.returncode == 1  # grace is left to retry
        sent = len(server.recorder.received)
        # Grace leaves before the retry: the resend skips her and sends nobody else.
        assert run("unsubscribe", busy, cwd=project, env=env).returncode == 0
        second = run("send", cwd=project, env=env)
        assert second.returncode == 0, second.stderr
        (head,) = [line for line in second.stdout.splitlines() if line.startswith("Issue ")]
        assert head.endswith(f": skipped 1; before this run: {sent} already sent"), head
        third = run("send", cwd=project, env=env)
        (head,) = [line for line in third.stdout.splitlines() if line.startswith("Issue ")]
        assert head.endswith(
            f": nothing left to send: {sent} already sent, 1 skipped (unsubscribed or inactive)"
        ), head
        assert len(server.recorder.received) == sent


def test_a_second_dry_run_says_the_messages_are_already_written(project: Path) -> None:
    ingest(project)
    first = run("send", "--dry-run", cwd=project)
    assert first.returncode == 0, first.stderr
    written = sorted((project / "outbox").glob("*/*.eml"))
    assert written and f"{len(written)} written now" in first.stdout
    stamps = [path.stat().st_mtime_ns for path in written]

    second = run("send", "--dry-run", cwd=project)
    assert second.returncode == 0, second.stderr
    assert f"nothing left to write: {len(written)} message(s) already in" in second.stdout
    assert "written now" not in second.stdout and "top match" not in second.stdout
    assert [path.stat().st_mtime_ns for path in written] == stamps


# -- progress only on a terminal --------------------------------------------------------------


def send_with_stderr(project: Path, env: dict[str, str], *, terminal: bool) -> str:
    """`newsletter send` with its stderr on a pseudo-terminal or a pipe; what it wrote there."""
    if not terminal:
        return run("send", cwd=project, env=env).stderr
    controller, terminal_end = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=terminal_end,
    )
    os.close(terminal_end)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(controller)
    return b"".join(chunks).decode(errors="replace")


def test_the_progress_bar_shows_on_a_terminal_only(project: Path) -> None:
    ingest(project)
    with smtp_server() as server:
        piped = send_with_stderr(project, smtp_env(server.port), terminal=False)
        assert len(server.recorder.received) > 0
        assert "[#" not in piped and "msg/s" not in piped

    # The same issue again on a fresh database, with stderr on a terminal.
    (project / "newsletter.db").unlink()
    ingest(project)
    with smtp_server() as server:
        on_terminal = send_with_stderr(project, smtp_env(server.port), terminal=True)
        assert len(server.recorder.received) > 0
    assert re.search(r"\[#+\.*\] sent \d+", on_terminal), on_terminal


# -- help, examples, version ------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse has no public way to list a parser's subcommands.
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def test_every_command_and_option_is_explained_with_an_example() -> None:
    parser = build_parser()
    commands = subcommands(parser)
    assert {"send", "subscribe", "run", "serve"} <= set(commands)  # and whatever is added
    for name, command in commands.items():
        assert command.description, f"'newsletter {name} --help' has no description"
        for action in command._actions:
            if action.help == argparse.SUPPRESS:
                continue
            what = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{name}: {what} has no help text"
        page = command.format_help()
        assert "\nexamples:\n" in page, f"'newsletter {name} --help' shows no example"
        example_lines = page.split("\nexamples:\n", 1)[1].splitlines()
        assert any(re.match(rf"\s+(.*\s)?newsletter {name}\b", line) for line in example_lines), (
            f"no example of 'newsletter {name}' in its help"
        )


def test_subscribe_help_explains_each_field(project: Path) -> None:
    page = run("subscribe", "--help", cwd=project).stdout
    for option in ("--name N", "--frequency", "--max-papers K"):
        (line,) = [line for line in page.splitlines() if line.strip().startswith(option)]
        explained = line.split(option, 1)[1].strip() or "next line"
        assert explained
    assert re.search(r"email\s+the subscriber's address", page)
    assert re.search(r"weekly: the best of the week", page)


def test_version_is_the_installed_distributions(project: Path) -> None:
    result = run("--version", cwd=project)
    assert result.returncode == 0
    try:
        expected = installed_version("newsletter")
    except PackageNotFoundError:
        expected = __version__
    assert result.stdout.strip() == f"newsletter {expected}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_options_work_before_or_after_the_command(project: Path, where: str) -> None:
    ingest(project)
    options = ["-v", "--log-format", "json"]
    args = [*options, "send", "--dry-run"] if where == "before" else ["send", "--dry-run", *options]
    result = run(*args, cwd=project)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["level"] for line in result.stderr.splitlines()][:1] == ["info"]
