"""`newsletter check`: is this folder ready to send for real? One line per finding.

It looks at everything a real send depends on, in the order a send meets it: the
settings (with the real-send rules of `preflight.py` as errors), the templates, the
subscribers file, the database, the SMTP server (connect, EHLO, STARTTLS and AUTH as
configured; no message is sent) and whether `NEWSLETTER_BASE_URL` reaches this
project's `newsletter serve` (its `/healthz`). Each area is a small function that
returns findings; none of them stops the others. Any error makes the exit code 1.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Literal

import aiosmtplib
import httpx
import jinja2

from newsletter import __version__
from newsletter.delivery import tls_context
from newsletter.errors import NewsletterError, TemplateError
from newsletter.health import HEALTH_PATH, served_version
from newsletter.preflight import private_host, send_problems
from newsletter.render import Renderer
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers
from newsletter.web import WEB_TEMPLATES, WebApp

Level = Literal["ok", "warn", "error"]
SMTP_CHECK_TIMEOUT = 15.0  # seconds per SMTP step: a check should not hang for minutes
HTTP_CHECK_TIMEOUT = 5.0  # seconds for the /healthz request
# Domains nobody can send real mail from (RFC 2606, RFC 6761).
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True)
class Finding:
    """One line of the report: `ok`, `warn` or `error`, the area, what was found."""

    level: Level
    area: str
    message: str

    def __str__(self) -> str:
        return f"{self.level:<5} {self.area}: {self.message}"


Report = Callable[[Finding], None]


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any finding is an error, else 0 (warnings allowed)."""
    return 1 if any(finding.level == "error" for finding in findings) else 0


def run_checks(
    settings: Settings, report: Report, *, http: httpx.AsyncClient | None = None
) -> list[Finding]:
    """Every check, each finding passed to `report` as soon as it is known."""
    return asyncio.run(check_all(settings, report, http=http))


async def check_all(
    settings: Settings, report: Report, *, http: httpx.AsyncClient | None = None
) -> list[Finding]:
    """The checks in the order a send meets them; `http` serves the /healthz request
    (by default a fresh client that honours the proxy settings of the environment)."""
    findings: list[Finding] = []

    def add(new: Iterable[Finding]) -> None:
        for finding in new:
            findings.append(finding)
            report(finding)

    for area in (check_settings, check_templates, check_subscribers, check_database):
        add(area(settings))
    add(await check_smtp(settings))
    if http is None:
        async with httpx.AsyncClient(timeout=HTTP_CHECK_TIMEOUT, follow_redirects=True) as fresh:
            add([await check_base_url(settings, fresh)])
    else:
        add([await check_base_url(settings, http)])
    return findings


# -- settings ------------------------------------------------------------------------


def check_settings(settings: Settings) -> list[Finding]:
    """The real-send rules (errors), and settings that work but will likely disappoint."""
    findings = [
        Finding("error", problem.setting.removeprefix("NEWSLETTER_").lower(), str(problem))
        for problem in send_problems(settings)
    ]
    if not findings:
        key = settings.secret_key.get_secret_value() if settings.secret_key else ""
        findings.append(
            Finding(
                "ok",
                "settings",
                f"real sends allowed: links to {settings.base_url}, from "
                f"{settings.from_address}, a {len(key)}-character secret key",
            )
        )
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2].lower()
    placeholder = any(finding.area == "from_address" for finding in findings)
    if not placeholder and any(domain == d or domain.endswith(f".{d}") for d in EXAMPLE_DOMAINS):
        findings.append(
            Finding(
                "warn",
                "from_address",
                f"NEWSLETTER_FROM_ADDRESS is on {domain}, a domain reserved for examples: "
                "receiving servers will reject or junk its mail; use your own domain",
            )
        )
    return findings


# -- files ---------------------------------------------------------------------------


def check_templates(settings: Settings) -> list[Finding]:
    """The email templates (MJML included) and the web page templates load and compile."""
    try:
        Renderer(settings.templates_dir)
        pages = WebApp(settings, preview=False).pages
        for name in WEB_TEMPLATES:
            try:
                pages.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(
                    f"{exc.filename or name}:{exc.lineno}: Jinja syntax error: {exc.message}"
                ) from exc
    except NewsletterError as exc:
        return [Finding("error", "templates", str(exc))]
    return [
        Finding("ok", "templates", f"{settings.templates_dir}: the email and web templates compile")
    ]


def check_subscribers(settings: Settings) -> list[Finding]:
    """The subscribers file reads and validates; someone would receive an issue."""
    path = settings.subscribers_file
    try:
        subscribers = load_subscribers(path)
    except NewsletterError as exc:
        return [Finding("error", "subscribers", str(exc))]
    active = [s for s in subscribers if s.active]
    weekly = sum(s.frequency == "weekly" for s in active)
    summary = (
        f"{path}: {len(subscribers)} subscriber(s), {len(active)} active "
        f"({len(active) - weekly} daily, {weekly} weekly)"
    )
    if not active:
        return [
            Finding(
                "warn",
                "subscribers",
                f"{summary}: nobody would receive an issue; "
                "add one with 'newsletter subscribe EMAIL --topic T'",
            )  # fmt: skip
        ]
    return [Finding("ok", "subscribers", summary)]


def check_database(settings: Settings) -> list[Finding]:
    """The database exists and opens; what it holds. A missing one is not created."""
    path = settings.database_path
    if not path.exists():
        return [
            Finding(
                "warn",
                "database",
                f"{path.absolute()} does not exist yet: 'newsletter fetch', 'ingest' or 'run' "
                "creates it; if you expected one, check NEWSLETTER_DATABASE_PATH",
            )
        ]
    try:
        with Store(path, create=False) as store:  # never made by a check
            dumps = store.dumps()
            papers = store.paper_count()
            issue = store.latest_issue()
            counts = store.counts(issue.id) if issue is not None else {}
    except NewsletterError as exc:
        return [Finding("error", "database", str(exc))]
    if not dumps:
        return [
            Finding(
                "warn",
                "database",
                f"{path}: no dump ingested yet; 'newsletter fetch' or "
                "'newsletter ingest FILE' brings the papers in",
            )  # fmt: skip
        ]
    last = max(dump.ingested_at for dump in dumps)
    latest = "no issue yet"
    if issue is not None:
        sent = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no recipient"
        latest = f"last issue {issue.key}{' (dry run)' if issue.dry_run else ''}: {sent}"
    return [
        Finding(
            "ok",
            "database",
            f"{path}: {len(dumps)} dump(s), {papers} paper(s), last ingest {_when(last)}; {latest}",
        )
    ]


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M %Z}".strip()


# -- the SMTP server -----------------------------------------------------------------


class StepFailed(Exception):
    """One SMTP step failed; the message is the finding's text."""


async def check_smtp(settings: Settings) -> list[Finding]:
    """Connect, EHLO, STARTTLS and AUTH as configured; never MAIL FROM, so nothing is sent."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls == "tls",
        start_tls=False,  # each step by hand, to say which one failed
        validate_certs=True,
        tls_context=tls_context(settings) if settings.smtp_tls != "none" else None,
        timeout=min(settings.smtp_timeout, SMTP_CHECK_TIMEOUT),
    )
    done: list[str] = []
    try:
        await _connect(client, settings, done)
        await _starttls(client, settings, done)
        await _login(client, settings, done)
    except StepFailed as exc:
        return [Finding("error", "smtp", f"{where}: {exc}")]
    finally:
        await _close(client)
    return [Finding("ok", "smtp", f"{where} {', '.join(done)}"), *_smtp_warnings(settings, client)]


async def _connect(client: aiosmtplib.SMTP, settings: Settings, done: list[str]) -> None:
    try:
        await client.connect()
    except (ssl.SSLError, aiosmtplib.SMTPConnectError) as exc:
        if settings.smtp_tls == "tls" and _tls_failure(exc):
            raise StepFailed(
                f"TLS failed ({_reason(exc)}): check NEWSLETTER_SMTP_TLS (tls is implicit TLS, "
                "usually port 465) and NEWSLETTER_SMTP_CA_FILE for a private CA"
            ) from exc
        raise StepFailed(_unreachable(exc)) from exc
    except (OSError, aiosmtplib.SMTPException) as exc:
        raise StepFailed(_unreachable(exc)) from exc
    if settings.smtp_tls == "tls":
        done.append("TLS ok")
    try:
        await client.ehlo()
    except (OSError, aiosmtplib.SMTPException) as exc:
        raise StepFailed(f"EHLO was refused ({_reason(exc)}): is this an SMTP server?") from exc
    done.append("EHLO ok")


async def _starttls(client: aiosmtplib.SMTP, settings: Settings, done: list[str]) -> None:
    if settings.smtp_tls != "starttls":
        return
    if not client.supports_extension("starttls"):
        raise StepFailed(
            "EHLO ok, but the server does not offer STARTTLS, which NEWSLETTER_SMTP_TLS="
            "starttls requires: use a server (or port, usually 587) that offers it, or "
            "NEWSLETTER_SMTP_TLS=tls for implicit TLS"
        )
    try:
        await client.starttls()
        await client.ehlo()  # the extensions offered inside TLS (AUTH often only there)
    except (OSError, aiosmtplib.SMTPException) as exc:
        raise StepFailed(
            f"EHLO ok, STARTTLS failed ({_reason(exc)}): check the server's certificate "
            "(NEWSLETTER_SMTP_CA_FILE for a private CA) and NEWSLETTER_SMTP_HOST (the name "
            "the certificate is for)"
        ) from exc
    done.append("STARTTLS ok")


async def _login(client: aiosmtplib.SMTP, settings: Settings, done: list[str]) -> None:
    if not settings.smtp_username:
        done.append("no AUTH configured (NEWSLETTER_SMTP_USERNAME is unset)")
        return
    if not client.supports_extension("auth"):
        raise StepFailed(
            f"{', '.join(done)}, but the server offers no AUTH although "
            "NEWSLETTER_SMTP_USERNAME is set: many servers offer it only inside TLS "
            "(NEWSLETTER_SMTP_TLS=starttls), or on their submission port; unset "
            "NEWSLETTER_SMTP_USERNAME for a relay that needs no login"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    try:
        await client.login(settings.smtp_username, password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise StepFailed(
            f"{', '.join(done)}, AUTH refused for {settings.smtp_username!r} ({exc.code} "
            f"{exc.message}): check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"
        ) from exc
    except (OSError, aiosmtplib.SMTPException) as exc:
        raise StepFailed(f"{', '.join(done)}, AUTH failed ({_reason(exc)})") from exc
    done.append("AUTH ok")


def _smtp_warnings(settings: Settings, client: aiosmtplib.SMTP) -> list[Finding]:
    """Plain text over a network that is not local: it works, but anyone on the way reads."""
    if settings.smtp_tls != "none" or private_host(settings.smtp_host.lower()):
        return []
    if settings.smtp_username:
        return [
            Finding(
                "warn",
                "smtp",
                "the password goes over the network in plain text: set "
                "NEWSLETTER_SMTP_TLS=starttls (or tls)",
            )  # fmt: skip
        ]
    if client.supports_extension("starttls"):
        return [
            Finding(
                "warn",
                "smtp",
                "the server offers STARTTLS but NEWSLETTER_SMTP_TLS=none "
                "sends in plain text: set NEWSLETTER_SMTP_TLS=starttls",
            )  # fmt: skip
        ]
    return []


async def _close(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (OSError, aiosmtplib.SMTPException):
        client.close()


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "ssl" in str(exc).lower() or "certificate" in str(exc).lower()


def _unreachable(exc: BaseException) -> str:
    return (
        f"cannot connect ({_reason(exc)}): check NEWSLETTER_SMTP_HOST and NEWSLETTER_SMTP_PORT, "
        "and that the server runs and lets this machine in"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the web side --------------------------------------------------------------------


async def check_base_url(settings: Settings, http: httpx.AsyncClient) -> Finding:
    """Does NEWSLETTER_BASE_URL reach this project's `serve` (the unsubscribe links)?"""
    url = settings.base_url + HEALTH_PATH
    fix = "point NEWSLETTER_BASE_URL at where `newsletter serve` is reached (behind HTTPS)"
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        return Finding(
            "error",
            "base_url",
            f"{url} did not answer ({_reason(exc)}): start `newsletter serve` behind it, or {fix}",
        )
    try:
        version = served_version(response.json()) if response.status_code == 200 else None
    except ValueError:
        version = None
    if version is None:
        return Finding(
            "error",
            "base_url",
            f"{url} answered HTTP {response.status_code}, but not as this project's serve: {fix}",
        )
    if version != __version__:
        return Finding(
            "warn",
            "base_url",
            f"{settings.base_url} answers as newsletter serve {version}, but this is "
            f"{__version__}: restart `newsletter serve` after an upgrade",
        )
    return Finding("ok", "base_url", f"{settings.base_url} answers as newsletter serve {version}")
