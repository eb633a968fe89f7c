"""SMTP delivery against a real aiosmtpd server: exactly once, faults, TLS, AUTH, rate, crash."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from newsletter.delivery import RateLimiter, claim_window, classify, eml_name
from newsletter.errors import DeliveryError, TemplateError
from newsletter.pipeline import build_issue, deliver, ingest_file
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers
from tests.factories import write_subscribers
from tests.smtp_server import Recorder, smtp_server

ISSUE_DATE = date(2026, 11, 22)


@pytest.fixture
def setup(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[str]]]:
    emails = write_subscribers(project / "subscribers.yaml", 12)
    for name, value in {
        "NEWSLETTER_SECRET_KEY": "delivery-test-secret",
        "NEWSLETTER_BASE_URL": "https://news.example.org",
        "NEWSLETTER_SMTP_TIMEOUT": "1.5",
        "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01",
        "NEWSLETTER_SMTP_CONCURRENCY": "3",
    }.items():
        monkeypatch.setenv(name, value)
    with Store(load_settings().database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    yield project, emails


def run_send(port: int, **env: str) -> tuple[Settings, Store, object]:
    os.environ["NEWSLETTER_SMTP_PORT"] = str(port)
    for name, value in env.items():
        os.environ[f"NEWSLETTER_{name.upper()}"] = value
    settings = load_settings()
    store = Store(settings.database_path)
    report = deliver(settings, store, issue_date=ISSUE_DATE, progress=False)
    return settings, store, report


def test_every_recipient_once_over_reused_connections(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    with smtp_server() as server:
        _, store, report = run_send(server.port)
        received = server.recorder.recipients()
        connections = server.recorder.connections
    assert received == {e: 1 for e in emails}
    assert connections <= 3  # one session per connection sends many messages
    assert report.complete and report.counts["sent"] == len(emails)  # type: ignore[attr-defined]
    message = server.recorder.messages_to(emails[0])[0]
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    # Running again sends nothing more.
    with smtp_server() as again:
        run_send(again.port)
        assert again.recorder.received == []


def test_permanent_refusals_fail_only_those_and_are_not_retried(
    setup: tuple[Path, list[str]],
) -> None:
    _, emails = setup
    refused = {emails[1]: "550 5.1.1 No such user", emails[4]: "553 5.1.3 Bad address"}
    recorder = Recorder(refuse_rcpt=refused)
    with smtp_server(recorder) as server:
        _, store, report = run_send(server.port)
    assert not report.complete  # type: ignore[attr-defined]
    assert set(server.recorder.recipients()) == set(emails) - set(refused)
    failed = {
        d.email: (d.code, d.message, d.attempts)
        for d in store.deliveries(report.issue.id, statuses=("failed",))
    }  # type: ignore[attr-defined]
    assert failed[emails[1]][:2] == (550, "5.1.1 No such user")
    assert failed[emails[4]][0] == 553
    assert all(attempts == 1 for *_, attempts in failed.values())
    with smtp_server() as again:
        run_send(again.port)
        assert again.recorder.received == []  # 5xx is permanent: not retried by a re-run


@pytest.mark.parametrize(
    "fault", ["421 4.3.0 Try later", "451 4.3.0 Local error", "452 4.3.1 Full", "drop", "stall"]
)
def test_transient_faults_are_retried_and_delivered_once(
    setup: tuple[Path, list[str]], fault: str
) -> None:
    _, emails = setup
    flaky = set(emails[::3])
    recorder = Recorder(
        on_data=lambda rcpt, attempt: fault if rcpt in flaky and attempt == 1 else None
    )
    with smtp_server(recorder) as server:
        _, store, report = run_send(server.port)
    assert server.recorder.recipients() == {e: 1 for e in emails}
    assert report.complete  # type: ignore[attr-defined]
    attempts = {d.email: d.attempts for d in store.deliveries(report.issue.id)}  # type: ignore[attr-defined]
    assert all(attempts[e] == 2 for e in flaky)


def test_server_that_looks_down_pauses_the_run(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    recorder = Recorder(on_data=lambda rcpt, attempt: "421 4.3.2 Shutting down")
    with smtp_server(recorder) as server:
        _, store, report = run_send(server.port, smtp_pause_after="4", smtp_max_attempts="3")
    assert report.paused and "looks down" in report.paused  # type: ignore[attr-defined]
    counts = report.counts  # type: ignore[attr-defined]
    assert counts["sent"] == 0 and counts["pending"] >= len(emails) - 4
    assert sum(server.recorder.data_attempts.values()) < len(emails) * 3  # no burning through
    with smtp_server() as healthy:
        _, _, later = run_send(healthy.port)
        assert healthy.recorder.recipients() == {e: 1 for e in emails}
        assert later.complete  # type: ignore[attr-defined]


def test_dead_server_is_a_clear_error_and_loses_nothing(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    with smtp_server() as server:
        port = server.port
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}"):
        run_send(port)
    with Store(load_settings().database_path) as store:
        issue = store.find_issue(ISSUE_DATE.isoformat(), dry_run=False)
        assert issue is not None and store.counts(issue.id)["pending"] == len(emails)


def test_unsubscribed_before_sending_is_skipped(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    settings = load_settings()
    with Store(settings.database_path) as store:
        subscribers = load_subscribers(settings.subscribers_file)
        build_issue(settings, store, subscribers, dry_run=False, issue_date=ISSUE_DATE)
        store.record_unsubscribe(emails[2], source="test")  # after they were selected
    with smtp_server() as server:
        _, _, report = run_send(server.port)
    assert emails[2] not in server.recorder.recipients()
    assert report.counts["skipped"] == 1 and report.complete  # type: ignore[attr-defined]


def test_template_error_stops_the_run_before_anything_is_sent(
    setup: tuple[Path, list[str]],
) -> None:
    project, _ = setup
    (project / "templates" / "digest.txt.j2").write_text("{% for p in picks %}unclosed")
    with smtp_server() as server:
        with pytest.raises(TemplateError):
            run_send(server.port)
        assert server.recorder.received == []


def test_rate_limit_holds_in_every_one_second_window(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    stamps: list[float] = []
    recorder = Recorder(on_data=lambda rcpt, attempt: stamps.append(time.monotonic()) or None)  # type: ignore[func-returns-value]
    with smtp_server(recorder) as server:
        run_send(server.port, smtp_rate_per_second="5")
    assert server.recorder.recipients() == {e: 1 for e in emails}
    stamps.sort()
    # The server sees DATA a little after the client hands it over, and on a loaded machine
    # arrivals bunch up by up to ~0.2 s: check 0.8 s windows (no limiter: all 12 in a blink).
    worst = max(sum(1 for t in stamps if s <= t < s + 0.8) for s in stamps)
    assert worst <= 5
    assert stamps[-1] - stamps[0] >= (len(emails) - 5) / 5 * 0.9


def test_rate_limiter_never_exceeds_the_window() -> None:
    import asyncio

    async def burst() -> list[float]:
        limiter = RateLimiter(4)
        stamps = []
        for _ in range(10):
            await limiter.acquire()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(burst())
    assert max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps) <= 4
    assert stamps[-1] - stamps[0] >= 1.0  # 10 sends at 4/s need more than a second


def test_classify_by_reply_code() -> None:
    import aiosmtplib

    assert classify(aiosmtplib.SMTPResponseException(451, "later")).transient
    assert not classify(aiosmtplib.SMTPResponseException(550, "no")).transient
    assert classify(aiosmtplib.SMTPServerDisconnected("gone")).transient
    assert classify(TimeoutError()).transient


# --- TLS and AUTH -------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_starttls_required_but_not_offered_sends_nothing(setup: tuple[Path, list[str]]) -> None:
    _, emails = setup
    with smtp_server() as server:  # no TLS context: the server does not offer STARTTLS
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            run_send(server.port, smtp_tls="starttls")
        assert server.recorder.received == []


def test_starttls_with_verified_certificate(
    setup: tuple[Path, list[str]], certificate: tuple[Path, Path]
) -> None:
    _, emails = setup
    with smtp_server(tls_context=server_context(certificate)) as server:
        with pytest.raises(DeliveryError, match="TLS"):  # certificates are verified by default
            run_send(server.port, smtp_tls="starttls")
        run_send(server.port, smtp_tls="starttls", smtp_ca_file=str(certificate[0]))
        assert server.recorder.recipients() == {e: 1 for e in emails}


def test_implicit_tls(setup: tuple[Path, list[str]], certificate: tuple[Path, Path]) -> None:
    _, emails = setup
    with smtp_server(implicit_tls=server_context(certificate)) as server:
        run_send(server.port, smtp_tls="tls", smtp_ca_file=str(certificate[0]))
        assert server.recorder.recipients() == {e: 1 for e in emails}


def test_auth_and_the_password_never_logged(
    setup: tuple[Path, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    _, emails = setup
    caplog.set_level(logging.DEBUG)
    with smtp_server(logins={"lab": "s3cret-pass"}) as server:
        with pytest.raises(DeliveryError, match="refused the login"):
            run_send(server.port, smtp_username="lab", smtp_password="wrong-pass")
        run_send(server.port, smtp_username="lab", smtp_password="s3cret-pass")
        assert server.recorder.recipients() == {e: 1 for e in emails}
    assert "s3cret-pass" not in caplog.text and "wrong-pass" not in caplog.text


# --- the crash test -----------------------------------------------------------------


def test_sigkill_at_random_points_then_rerun_delivers_everyone(project: Path) -> None:
    emails = write_subscribers(project / "subscribers.yaml", 300)
    concurrency = 4
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    with smtp_server() as server:
        env.update(
            NEWSLETTER_SECRET_KEY="crash-test",
            NEWSLETTER_SMTP_PORT=str(server.port),
            NEWSLETTER_SMTP_CONCURRENCY=str(concurrency),
            NEWSLETTER_SMTP_TIMEOUT="5",
        )
        command = [sys.executable, "-m", "newsletter"]
        subprocess.run(
            [*command, "ingest", *map(str, sorted((project / "dumps").iterdir()))],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
        rng = random.Random(int(os.environ.get("CRASH_SEED", time.time_ns())))
        kills = 0
        for round_number in range(30):
            process = subprocess.Popen(
                [*command, "send"],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            if round_number < 6:
                # Kill at a random point of the sending itself (not of start-up): once the
                # server has taken 1 to 40 more messages, plus a random sliver of time.
                target = len(server.recorder.received) + rng.randint(1, 40)
                deadline = time.monotonic() + 60
                while (
                    len(server.recorder.received) < target
                    and process.poll() is None
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.01))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    continue
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err.decode()
            break
        received = server.recorder.recipients()
    assert kills >= 1, "the process finished before any kill: make the run longer"
    assert set(received) == set(emails), "a recipient is missing"
    duplicates = sum(n - 1 for n in received.values())
    # Documented window: only the rows claimed but not yet confirmed at a kill (at most
    # `claim_window(concurrency)`, the ledger being written in batches) can arrive twice.
    assert duplicates <= kills * claim_window(concurrency), (duplicates, kills)
    status = subprocess.run(
        [*command, "status", "--json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(status.stdout)["counts"]
    assert counts["sent"] == len(emails) and counts["pending"] == counts["sending"] == 0


def test_claimed_rows_never_exceed_the_documented_window(project: Path) -> None:
    emails = write_subscribers(project / "subscribers.yaml", 60)
    for name, value in {"SECRET_KEY": "window", "SMTP_CONCURRENCY": "2"}.items():
        os.environ[f"NEWSLETTER_{name}"] = value
    settings = load_settings()
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    seen: list[int] = []

    def count_sending(rcpt: str, attempt: int) -> None:
        import sqlite3

        with sqlite3.connect(settings.database_path) as db:  # a reader beside the sender
            seen.append(
                db.execute("SELECT COUNT(*) FROM deliveries WHERE status='sending'").fetchone()[0]
            )

    with smtp_server(Recorder(on_data=count_sending)) as server:  # type: ignore[arg-type]
        _, _, report = run_send(server.port)
    assert server.recorder.recipients() == {e: 1 for e in emails}
    assert report.complete  # type: ignore[attr-defined]
    assert len(seen) == len(emails)
    assert 1 <= max(seen) <= claim_window(2)  # what a crash at any moment could resend


# --- the dry-run outbox ------------------------------------------------------------------


def test_eml_names_are_distinct_readable_and_stable() -> None:
    addresses = ["a&b@example.org", "a_b@example.org", "üser@example.org", "öser@example.org"]
    names = [eml_name(address) for address in addresses]
    assert len(set(names)) == 4
    assert names[1] == "a_b@example.org.eml"  # unchanged addresses keep their own name
    assert re.fullmatch(r"a_b@example\.org~[0-9a-f]{8}\.eml", names[0])
    assert [eml_name(a) for a in addresses] == names  # the same on every run
    assert eml_name("Ada@Example.org") == eml_name("ada@example.org")  # one ledger key
    long_one = f"{'a' * 64}@{'b' * 60}.{'c' * 60}.{'d' * 60}.{'e' * 60}.example.org"
    assert len(eml_name(long_one).encode()) <= 255 and eml_name(long_one) != eml_name(
        "x" + long_one
    )


_WRITE_PAST_THE_LIMIT = """
import resource, signal, sys
from pathlib import Path
from newsletter.delivery import OutboxWriter
from newsletter.errors import DeliveryError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
writer = OutboxWriter(Path("outbox"), "2026-11-22")
writer.write("small@example.org", b"x" * 100)
try:
    writer.write("big@example.org", b"x" * 100_000)
except DeliveryError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_failed_outbox_write_leaves_no_temporary_file(isolated: Path) -> None:
    """A real write error (the kernel's file size limit): one clear error, no `.part`."""
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_PAST_THE_LIMIT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    assert "cannot write outbox/2026-11-22/big@example.org.eml" in done.stdout
    folder = isolated / "outbox" / "2026-11-22"
    assert sorted(p.name for p in folder.iterdir()) == ["small@example.org.eml"]
