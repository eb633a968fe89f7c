"""`newsletter check` against real parts: aiosmtpd with AUTH and TLS, the web app under
uvicorn, an unrelated HTTP server, real files and a real database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter import __version__
from newsletter.check import (
    Finding,
    check_all,
    check_base_url,
    check_database,
    check_smtp,
    check_subscribers,
    check_templates,
    exit_code,
)
from newsletter.pipeline import ingest_file
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.web import create_app
from tests.factories import REAL_SEND_ENV
from tests.http_server import Reply, http_server
from tests.smtp_server import RunningServer, smtp_server
from tests.web_server import running

LOGIN = {"digest": "the-right-password"}
LINE = re.compile(r"^(ok   |warn |error) [a-z_]+: \S.*$")


def settings_for(server: RunningServer | None = None, **more: object) -> Settings:
    smtp = {"smtp_port": server.port} if server is not None else {}
    return load_settings(**smtp, **more)


def smtp_lines(settings: Settings) -> list[Finding]:
    return asyncio.run(check_smtp(settings))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def free_port() -> int:
    """A port nothing listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP ----------------------------------------------------------------------------------


def test_smtp_login_that_works_is_one_ok_line_and_sends_nothing() -> None:
    with smtp_server(logins=LOGIN) as server:
        settings = settings_for(server, smtp_username="digest", smtp_password=LOGIN["digest"])
        findings = smtp_lines(settings)
    assert [str(f) for f in findings] == [f"ok    smtp: 127.0.0.1:{server.port} EHLO ok, AUTH ok"]
    assert server.recorder.connections == 1 and server.recorder.received == []


def test_a_wrong_password_is_an_error_naming_the_settings() -> None:
    with smtp_server(logins=LOGIN) as server:
        findings = smtp_lines(settings_for(server, smtp_username="digest", smtp_password="no"))
    (finding,) = findings
    assert finding.level == "error" and f"127.0.0.1:{server.port}" in finding.message
    assert "AUTH refused for 'digest' (535" in finding.message
    assert "NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD" in finding.message
    assert server.recorder.received == []


def test_a_dead_smtp_port_is_an_error_naming_host_and_port() -> None:
    port = free_port()
    (finding,) = smtp_lines(settings_for(smtp_port=port))
    assert str(finding).startswith(f"error smtp: 127.0.0.1:{port}: cannot connect (")
    assert "NEWSLETTER_SMTP_HOST and NEWSLETTER_SMTP_PORT" in finding.message


def test_a_login_where_the_server_offers_auth_only_inside_tls_is_an_error(
    certificate: tuple[Path, Path],
) -> None:
    tls = server_tls(certificate)
    with smtp_server(tls_context=tls, logins=LOGIN, auth_require_tls=True) as server:
        settings = settings_for(server, smtp_username="digest", smtp_password=LOGIN["digest"])
        (plain,) = smtp_lines(settings)
        (inside_tls,) = smtp_lines(
            settings.model_copy(update={"smtp_tls": "starttls", "smtp_ca_file": certificate[0]})
        )
    assert plain.level == "error" and "EHLO ok, but the server offers no AUTH" in plain.message
    assert "NEWSLETTER_SMTP_TLS=starttls" in plain.message
    assert str(inside_tls).endswith("EHLO ok, STARTTLS ok, AUTH ok")
    assert server.recorder.received == []


def test_starttls_and_auth_with_a_verified_certificate(certificate: tuple[Path, Path]) -> None:
    with smtp_server(tls_context=server_tls(certificate), logins=LOGIN) as server:
        settings = settings_for(
            server,
            smtp_tls="starttls",
            smtp_ca_file=str(certificate[0]),
            smtp_username="digest",
            smtp_password=LOGIN["digest"],
        )
        ok = smtp_lines(settings)
        unknown_ca = smtp_lines(settings.model_copy(update={"smtp_ca_file": None}))
    assert [str(f) for f in ok] == [
        f"ok    smtp: 127.0.0.1:{server.port} EHLO ok, STARTTLS ok, AUTH ok"
    ]
    (refused,) = unknown_ca
    assert refused.level == "error" and "STARTTLS failed" in refused.message
    assert "NEWSLETTER_SMTP_CA_FILE" in refused.message
    assert server.recorder.received == []


def test_starttls_required_but_not_offered_is_an_error() -> None:
    with smtp_server() as server:
        (finding,) = smtp_lines(settings_for(server, smtp_tls="starttls"))
    assert finding.level == "error" and "does not offer STARTTLS" in finding.message
    assert "NEWSLETTER_SMTP_TLS" in finding.message


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    with smtp_server(implicit_tls=server_tls(certificate)) as server:
        settings = settings_for(server, smtp_tls="tls", smtp_ca_file=str(certificate[0]))
        (ok,) = smtp_lines(settings)
        (plain,) = smtp_lines(settings.model_copy(update={"smtp_tls": "none"}))
    assert str(ok) == (
        f"ok    smtp: 127.0.0.1:{server.port} TLS ok, EHLO ok, "
        "no AUTH configured (NEWSLETTER_SMTP_USERNAME is unset)"
    )
    assert plain.level == "error"  # a TLS port spoken to in plain text never greets


# -- the base URL ------------------------------------------------------------------------


def base_url_finding(base_url: str) -> Finding:
    async def check() -> Finding:
        async with httpx.AsyncClient(timeout=5, follow_redirects=True) as http:
            return await check_base_url(load_settings(base_url=base_url), http)

    return asyncio.run(check())


def test_healthz_identifies_the_project(project: Path) -> None:
    with running(lambda url: create_app(load_settings(base_url=url))) as url:
        reply = httpx.get(f"{url}/healthz", timeout=10)
        finding = base_url_finding(url)
    assert reply.status_code == 200
    assert reply.json() == {"service": "newsletter", "version": __version__}
    assert str(finding) == f"ok    base_url: {url} answers as newsletter serve {__version__}"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html><body>Welcome to nginx!</body></html>", "text/html"),
        Reply(200, json.dumps({"status": "ok"}).encode()),
        Reply(404, b"not found", "text/plain"),
        Reply(502, b"Bad Gateway", "text/plain"),
    ],
)
def test_an_unrelated_server_is_not_this_projects_serve(reply: Reply) -> None:
    with http_server(reply) as server:
        finding = base_url_finding(server.url(""))
    assert finding.level == "error"
    assert f"answered HTTP {reply.status}, but not as this project's serve" in finding.message
    assert "NEWSLETTER_BASE_URL" in finding.message
    assert [request.path for request in server.requests] == ["/healthz"]


def test_another_version_of_serve_is_a_warning() -> None:
    body = json.dumps({"service": "newsletter", "version": "0.0.1"}).encode()
    with http_server(Reply(200, body)) as server:
        finding = base_url_finding(server.url(""))
    assert finding.level == "warn" and "serve 0.0.1, but this is" in finding.message


def test_a_base_url_nobody_answers_is_an_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    finding = base_url_finding(url)
    assert str(finding).startswith(f"error base_url: {url}/healthz did not answer (")
    assert "start `newsletter serve` behind it" in finding.message


# -- files and the database --------------------------------------------------------------


def test_a_missing_database_is_named_and_not_created(isolated: Path) -> None:
    (finding,) = check_database(load_settings(database_path="state/typo.db"))
    assert finding.level == "warn" and str(isolated / "state" / "typo.db") in finding.message
    assert "NEWSLETTER_DATABASE_PATH" in finding.message
    assert not (isolated / "state").exists()


def test_the_database_says_what_it_holds(project: Path) -> None:
    settings = load_settings()
    Store(settings.database_path).close()
    (empty,) = check_database(settings)
    assert empty.level == "warn" and "no dump ingested yet" in empty.message
    with Store(settings.database_path) as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
        papers = store.paper_count()
    (full,) = check_database(settings)
    assert full.level == "ok"
    assert f"newsletter.db: 2 dump(s), {papers} paper(s), last ingest 20" in full.message
    assert full.message.endswith("; no issue yet")


def test_a_file_that_is_no_database_is_an_error(isolated: Path) -> None:
    (isolated / "newsletter.db").write_text("subscribers:\n")
    (finding,) = check_database(load_settings())
    assert finding.level == "error" and "newsletter.db" in finding.message


def test_subscribers_and_templates_errors_name_the_file(project: Path) -> None:
    (project / "subscribers.yaml").write_text("subscribers:\n  - email: ada@example.org\n")
    (subscribers,) = check_subscribers(load_settings())
    assert subscribers.level == "error" and "subscribers.yaml:2" in subscribers.message
    (project / "templates" / "web" / "index.html.j2").write_text("{% if x %}\n")
    (templates,) = check_templates(load_settings())
    assert templates.level == "error" and "index.html.j2" in templates.message


# -- the whole check ---------------------------------------------------------------------


@pytest.fixture
def ingested(project: Path) -> Iterator[Path]:
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    yield project


def test_everything_ready_exits_zero(ingested: Path) -> None:
    """The base URL is a public https name, so its /healthz is asked of the real app
    in-process (httpx's ASGI transport): the check cannot reach such a name here."""
    with smtp_server(logins=LOGIN) as server:
        settings = load_settings(
            **{name.removeprefix("NEWSLETTER_").lower(): v for name, v in REAL_SEND_ENV.items()},
            smtp_port=server.port,
            smtp_username="digest",
            smtp_password=LOGIN["digest"],
        )
        seen: list[Finding] = []

        async def check() -> list[Finding]:
            transport = httpx.ASGITransport(app=create_app(settings))
            async with httpx.AsyncClient(transport=transport) as http:
                return await check_all(settings, seen.append, http=http)

        findings = asyncio.run(check())
    assert findings == seen  # each reported as it was found
    assert [f.area for f in findings if f.level == "ok"] == [
        "settings", "templates", "subscribers", "database", "smtp", "base_url"
    ]  # fmt: skip
    assert all(f.level != "error" for f in findings) and exit_code(findings) == 0
    assert server.recorder.received == []


def test_the_command_prints_one_line_per_finding_and_fails_on_errors(ingested: Path) -> None:
    with (
        smtp_server(logins=LOGIN) as smtp,
        running(lambda url: create_app(load_settings(base_url=url))) as url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_SOURCE_URL="",
            NEWSLETTER_TEMPLATES_DIR="templates",
            NEWSLETTER_BASE_URL=url,
            NEWSLETTER_SECRET_KEY="short",
            NEWSLETTER_SMTP_PORT=str(smtp.port),
            NEWSLETTER_SMTP_USERNAME="digest",
            NEWSLETTER_SMTP_PASSWORD=LOGIN["digest"],
        )
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "check"],
            cwd=ingested,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert all(LINE.match(line) for line in lines), lines
    assert f"error base_url: NEWSLETTER_BASE_URL: {url} is not https" in result.stdout
    assert "error secret_key: NEWSLETTER_SECRET_KEY: is 5 characters long" in result.stdout
    assert "error from_address: NEWSLETTER_FROM_ADDRESS: is still the built-in" in result.stdout
    assert f"ok    smtp: 127.0.0.1:{smtp.port} EHLO ok, AUTH ok" in lines
    assert f"ok    base_url: {url} answers as newsletter serve {__version__}" in lines
    assert any(line.startswith("ok    database: newsletter.db: 2 dump(s)") for line in lines)
    assert smtp.recorder.received == []


def test_check_has_a_help_text_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from newsletter.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "--help"])
    shown = capsys.readouterr().out
    assert "no message is sent" in shown and "examples:\n  newsletter check\n" in shown
