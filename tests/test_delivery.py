"""SMTP delivery against a real aiosmtpd server: exactly once, faults, TLS, AUTH, rate, crash."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date
from functools import partial
from pathlib import Path

import pytest

from newsletter.delivery import (
    DeliveryStats,
    OutboxWriter,
    Outgoing,
    RateLimiter,
    claim_window,
    classify,
    crash_window,
    eml_name,
    send_over_smtp,
)
from newsletter.errors import ConfigError, DeliveryError, TemplateError
from newsletter.pipeline import build_issue, deliver, deliver_async, ingest_file
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers
from tests.factories import REAL_SEND_ENV, write_subscribers
from tests.smtp_server import Recorder, smtp_server

ISSUE_DATE = date(2026, 11, 22)


@pytest.fixture
def setup(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[str]]]:
    emails = write_subscribers(project / "subscribers.yaml", 12)
    for name, value in {
        **REAL_SEND_ENV,
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
            REAL_SEND_ENV,
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
    # Documented window: only the message each connection was handing over at a kill
    # (`crash_window(concurrency)`, one per connection) can arrive twice.
    assert duplicates <= kills * crash_window(concurrency), (duplicates, kills)
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
    os.environ.update(REAL_SEND_ENV, NEWSLETTER_SMTP_CONCURRENCY="2")
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


# --- one recipient's problem stays that recipient's -----------------------------------


def send_in_thread(port: int, deadline: float = 90.0, **env: str) -> tuple[Store, object]:
    """`run_send`, but a run that does not end by itself within `deadline` fails the test
    instead of hanging it."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            _, store, report = run_send(port, **env)
            store.close()  # a connection belongs to its thread
            outcome["report"] = report
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(deadline)
    assert not thread.is_alive(), f"the send did not end by itself within {deadline} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return Store(load_settings().database_path), outcome["report"]


def statuses(store: Store, issue_id: int) -> dict[str, str]:
    return {d.email: d.status for d in store.deliveries(issue_id)}


IDN_ASCII = "ascii@bücher.example"
IDN_UTF8 = "ünïcode@bücher.example"


@pytest.fixture
def idn_setup(setup: tuple[Path, list[str]]) -> tuple[Path, list[str]]:
    """The usual twelve subscribers, two with an internationalised address among the first."""
    project, emails = setup
    every = [emails[0], IDN_UTF8, IDN_ASCII, *emails[1:]]
    lines = ["subscribers:"]
    for n, address in enumerate(every):
        topic = ["knowledge distillation", "continual learning", "machine translation"][n % 3]
        lines += [f"  - email: {address}", f"    topics: [{topic}]", "    max_papers: 3"]
    (project / "subscribers.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return project, every


def test_idn_domain_goes_out_as_punycode_and_utf8_local_part_fails_alone(
    idn_setup: tuple[Path, list[str]],
) -> None:
    _, every = idn_setup
    plain = [e for e in every if e.isascii()]
    with smtp_server() as server:  # no SMTPUTF8 offered
        store, report = send_in_thread(server.port)
        received = server.recorder.recipients()
        envelopes = dict(server.recorder.envelopes)
    issue_id = report.issue.id  # type: ignore[attr-defined]
    ledger = statuses(store, issue_id)
    # Everyone after the two IDN addresses got the issue, exactly once.
    assert all(received[e] == 1 for e in plain)
    # The IDN domain travels as its A-label, in the envelope and in the To header.
    assert received["ascii@xn--bcher-kva.example"] == 1
    assert "ascii@xn--bcher-kva.example" in envelopes
    (message,) = server.recorder.messages_to("ascii@xn--bcher-kva.example")
    assert message["To"].addresses[0].addr_spec == "ascii@xn--bcher-kva.example"
    assert ledger[IDN_ASCII] == "sent"
    # The UTF-8 local part needs SMTPUTF8, which this server does not offer: that one
    # recipient fails with the reason, and nothing is left `sending`.
    assert ledger[IDN_UTF8] == "failed"
    (failed,) = store.deliveries(issue_id, statuses=("failed",))
    assert failed.message is not None and "SMTPUTF8" in failed.message
    assert sorted(set(ledger.values())) == ["failed", "sent"]
    # Not retried: the next run sends nothing.
    with smtp_server() as again:
        send_in_thread(again.port)
        assert again.recorder.received == []


def test_utf8_local_part_goes_out_with_smtputf8_when_offered(
    idn_setup: tuple[Path, list[str]],
) -> None:
    _, every = idn_setup
    with smtp_server(smtputf8=True) as server:
        store, report = send_in_thread(server.port)
        received = server.recorder.recipients()
        envelopes = dict(server.recorder.envelopes)
    assert report.complete  # type: ignore[attr-defined]
    assert sum(received.values()) == len(every) and set(received.values()) == {1}
    assert "SMTPUTF8" in envelopes["ünïcode@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in envelopes["ascii@xn--bcher-kva.example"]  # only where needed
    (raw,) = [data for rcpt, data in server.recorder.received if rcpt.startswith("ünïcode@")]
    message = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert message["To"].addresses[0].username == "ünïcode"  # UTF-8, as SMTPUTF8 allows


def test_unexpected_error_for_one_recipient_is_recorded_and_the_run_goes_on(
    setup: tuple[Path, list[str]],
) -> None:
    _, emails = setup
    settings = load_settings()
    with Store(settings.database_path) as store:
        issue = build_issue(
            settings, store, load_subscribers(settings.subscribers_file), dry_run=False,
            issue_date=ISSUE_DATE,
        )  # fmt: skip
        keys = [d.email for d in store.deliveries(issue.id)]

        def build(key: str) -> bytes:
            if key == keys[4]:
                raise RuntimeError("the message builder broke")
            return f"Subject: hi\r\nTo: {key}\r\n\r\nHello\r\n".encode()

        outgoing = [
            # A NUL in the address: the SMTP library refuses it with a ValueError.
            Outgoing(key, key.replace("@", "\0@") if key == keys[1] else key, partial(build, key))
            for key in keys
        ]
        with smtp_server() as server:
            os.environ["NEWSLETTER_SMTP_PORT"] = str(server.port)

            async def send() -> tuple[DeliveryStats, set[asyncio.Task[object]]]:
                stats = await asyncio.wait_for(
                    send_over_smtp(
                        load_settings(), store, issue.id, outgoing, total=len(keys),
                        sender="digest@example.org", progress=False,
                    ),
                    60,
                )  # fmt: skip
                return stats, asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

            stats, leftover = asyncio.run(send())
            received = server.recorder.recipients()
        ledger = {d.email: d for d in store.deliveries(issue.id)}
    assert leftover == set()  # no worker is left waiting on the queue
    assert set(received) == set(keys) - {keys[1], keys[4]}
    assert stats.sent == len(keys) - 2 and stats.failed == 2
    assert ledger[keys[1]].status == "failed" and (ledger[keys[1]].message or "").startswith(
        "ValueError: "
    )
    assert ledger[keys[4]].status == "failed"
    assert ledger[keys[4]].message == "RuntimeError: the message builder broke"
    assert {ledger[k].status for k in keys} == {"sent", "failed"}


def test_an_error_outside_any_recipient_ends_the_run_with_no_task_left(
    setup: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    _, emails = setup
    settings = load_settings()
    claims = 0
    real_claim = Store.claim

    def failing_claim(self: Store, issue_id: int, batch: Sequence[str]) -> list[str]:
        nonlocal claims
        claims += 1
        if claims == 2:  # the database fails while the first batch is being sent
            raise sqlite3.OperationalError("disk I/O error")
        return real_claim(self, issue_id, batch)

    monkeypatch.setattr(Store, "claim", failing_claim)

    async def send(store: Store) -> set[asyncio.Task[object]]:
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await asyncio.wait_for(
                deliver_async(load_settings(), store, issue_date=ISSUE_DATE, progress=False), 60
            )
        return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]

    with smtp_server(Recorder(on_data=lambda rcpt, a: time.sleep(0.05))) as server:  # type: ignore[func-returns-value]
        os.environ["NEWSLETTER_SMTP_PORT"] = str(server.port)
        with Store(settings.database_path) as store:
            leftover = asyncio.run(send(store))
            counts = store.counts(store.find_issue(ISSUE_DATE.isoformat(), dry_run=False).id)  # type: ignore[union-attr]
    assert leftover == set()
    # What the server accepted is recorded; only messages in flight when the run was
    # cancelled can be left `sending` (the next run sends them again, as after a crash).
    assert counts["sent"] == len(server.recorder.received)
    assert counts["sending"] <= 3 and counts["sent"] + counts["sending"] + counts["pending"] == 12


# --- a slow server: the reply to the end of DATA has its own timeout ----------------


def test_slow_end_of_data_reply_within_the_data_timeout_is_sent_once(
    setup: tuple[Path, list[str]],
) -> None:
    _, emails = setup
    slow = set(emails[::4])
    recorder = Recorder(
        on_data=lambda rcpt, attempt: "slow" if rcpt in slow else None, slow_seconds=1.2
    )
    with smtp_server(recorder) as server:
        store, report = send_in_thread(server.port, smtp_timeout="0.4", smtp_data_timeout="10")
        received = server.recorder.recipients()
    assert received == {e: 1 for e in emails}
    assert report.complete  # type: ignore[attr-defined]
    assert set(statuses(store, report.issue.id).values()) == {"sent"}  # type: ignore[attr-defined]


def test_end_of_data_timeout_is_an_unknown_outcome_resent_at_most_once(
    setup: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from newsletter.cli import main

    _, emails = setup
    slow = set(emails[::4])
    still_slow = set(emails[:1])  # slow again on the second run; the others are not
    wait = 1.5
    first = Recorder(on_data=lambda rcpt, a: "slow" if rcpt in slow else None, slow_seconds=wait)
    with smtp_server(first) as server:
        store, report = send_in_thread(server.port, smtp_data_timeout="0.5")
        time.sleep(wait)  # the server finishes taking its time
        received = server.recorder.recipients()
    issue_id = report.issue.id  # type: ignore[attr-defined]
    assert received == {e: 1 for e in emails}  # the server took every message once
    ledger = statuses(store, issue_id)
    assert {e for e, s in ledger.items() if s == "unknown"} == slow
    assert not report.complete  # type: ignore[attr-defined]
    (unknown,) = {d.message for d in store.deliveries(issue_id, statuses=("unknown",))}
    assert unknown is not None and "may have arrived" in unknown

    # `newsletter status` says so, as text and as JSON.
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "unknown 3" in text and "may have arrived" in text
    assert all(f"unknown {e}" in text for e in slow)
    assert main(["status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["counts"]["unknown"] == len(slow)
    assert {u["email"] for u in shown["unknown"]} == slow
    assert all(u["resend"] for u in shown["unknown"])

    # The next run sends each of them once more (the rest are not sent again) ...
    second = Recorder(
        on_data=lambda rcpt, a: "slow" if rcpt in still_slow else None, slow_seconds=wait
    )
    with smtp_server(second) as server:
        store, report = send_in_thread(server.port, smtp_data_timeout="0.5")
        time.sleep(wait)
        assert server.recorder.recipients() == {e: 1 for e in slow}
    ledger = statuses(store, issue_id)
    assert {e for e, s in ledger.items() if s == "unknown"} == still_slow
    assert {e for e, s in ledger.items() if s == "sent"} == set(emails) - still_slow
    assert main(["status", "--json"]) == 0
    assert [u["resend"] for u in json.loads(capsys.readouterr().out)["unknown"]] == [False]

    # ... and never again.
    with smtp_server() as server:
        send_in_thread(server.port, smtp_data_timeout="0.5")
        assert server.recorder.received == []
    assert statuses(store, issue_id) == ledger


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_data_timeout_must_be_positive_and_finite(value: str) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_DATA_TIMEOUT"):
        load_settings(smtp_data_timeout=value)


def test_data_timeout_defaults_to_rfc_5321s_ten_minutes() -> None:
    assert load_settings().smtp_data_timeout == 600


# --- an unsubscribe during a running send -------------------------------------------


def test_unsubscribe_during_a_rate_limited_send_is_honoured(
    setup: tuple[Path, list[str]],
) -> None:
    _, emails = setup
    settings = load_settings()
    with Store(settings.database_path) as store:
        issue = build_issue(
            settings, store, load_subscribers(settings.subscribers_file), dry_run=False,
            issue_date=ISSUE_DATE,
        )  # fmt: skip
        keys = [d.email for d in store.deliveries(issue.id)]
    # keys[5] is claimed with the first batch and waits for the rate limit; keys[10] is
    # claimed later. Both leave as the first message reaches the server.
    leaving = {keys[5], keys[10]}
    left: list[float] = []

    def unsubscribe_once(rcpt: str, attempt: int) -> None:
        if not left:
            with Store(settings.database_path) as web:  # as the one-click page does
                for email in sorted(leaving):
                    web.record_unsubscribe(email, source="web")
            left.append(time.monotonic())

    with smtp_server(Recorder(on_data=unsubscribe_once)) as server:  # type: ignore[arg-type]
        store, report = send_in_thread(server.port, smtp_rate_per_second="4")
        received = server.recorder.recipients()
    assert left, "no message reached the server"
    assert received == {e: 1 for e in emails if e not in leaving}
    ledger = statuses(store, issue.id)
    assert {e for e, s in ledger.items() if s == "skipped"} == leaving
    assert set(report.skipped) == leaving  # type: ignore[attr-defined]
    assert report.complete  # type: ignore[attr-defined]


# --- a message that cannot be built ------------------------------------------------


@pytest.mark.parametrize("first_gets", [3, 1])
def test_a_message_that_cannot_be_built_fails_alone_with_the_template_line(
    setup: tuple[Path, list[str]], first_gets: int
) -> None:
    project, _ = setup
    # Every other subscriber gets one paper; the subject wants a second one.
    lines = ["subscribers:"]
    emails = [f"reader{n:04d}@example.org" for n in range(12)]
    for n, address in enumerate(emails):
        most = first_gets if n % 2 == 0 else 4 - first_gets
        lines += [
            f"  - email: {address}",
            "    topics: [knowledge distillation, continual learning, machine translation]",
            f"    max_papers: {most}",
        ]
    (project / "subscribers.yaml").write_text("\n".join(lines) + "\n")
    (project / "templates" / "subject.txt.j2").write_text(
        "{#- Both titles -#}\n{{ papers[0].title }} and {{ papers[1].title }}\n"
    )
    with smtp_server() as server:
        store, report = send_in_thread(server.port)
        received = server.recorder.recipients()
    issue_id = report.issue.id  # type: ignore[attr-defined]
    one_paper = {e for e in emails if len(store.planned_picks(issue_id, e)) == 1}
    assert one_paper and one_paper != set(emails)
    assert received == {e: 1 for e in emails if e not in one_paper}
    failed = {d.email: d for d in store.deliveries(issue_id, statuses=("failed",))}
    assert set(failed) == one_paper
    path = Path("templates") / "subject.txt.j2"  # as NEWSLETTER_TEMPLATES_DIR names it
    assert all((d.message or "").startswith(f"{path}:2: ") for d in failed.values())
    assert {d.status for d in store.deliveries(issue_id)} == {"sent", "failed"}
    with smtp_server() as again:  # not retried automatically
        send_in_thread(again.port)
        assert again.recorder.received == []


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


def test_an_outbox_write_steps_over_a_temporary_file_a_crash_left(tmp_path: Path) -> None:
    """A crashed run can leave `.<pid>.<n>.part` behind, and a later process can get the
    same pid: the writer takes the next number instead of failing or overwriting it."""
    writer = OutboxWriter(tmp_path, "2026-11-22")
    left = [writer.folder / f".{os.getpid()}.{n}.part" for n in (1, 2)]
    for path in left:
        path.write_bytes(b"left by a crash")
    target = writer.write("ada@example.org", b"the message")
    assert target.read_bytes() == b"the message"
    assert target.stat().st_mode & 0o777 == 0o600  # it holds the reader's signed links
    assert all(path.read_bytes() == b"left by a crash" for path in left)
    assert sorted(p.name for p in writer.folder.iterdir()) == sorted(
        [path.name for path in left] + ["ada@example.org.eml"]
    )
