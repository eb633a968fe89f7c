"""Messages to one reader outside an issue: the sign-up confirmation and "you are
already subscribed", rendered from `templates/notices/` and delivered like an issue's
messages (SMTP through `delivery.connect` and `delivery.transmit`, or, for a server run
with `--dry-run`, a `.eml` file in `outbox/notices/`).

A folder of templates made before these existed (NEWSLETTER_TEMPLATES_DIR) still works:
a notice template missing there is taken from the package.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import jinja2

from newsletter.delivery import OutboxWriter, connect, transmit
from newsletter.errors import DeliveryError, TemplateError
from newsletter.message import header_value
from newsletter.settings import PACKAGED_TEMPLATES, Settings
from newsletter.subscribers import smtp_address

log = logging.getLogger(__name__)

Kind = Literal["confirm", "already"]
OUTBOX_FOLDER = "notices"


@dataclass(frozen=True)
class Notice:
    """One rendered notice: to whom, and the message bytes."""

    to: str
    subject: str
    message: bytes


def _environment(templates_dir: Path, *, html: bool) -> jinja2.Environment:
    folders = [templates_dir / "notices", PACKAGED_TEMPLATES / "notices"]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(folder) for folder in folders]),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


class Notices:
    """Renders and delivers notices; `dry_run` writes them to the outbox instead."""

    def __init__(self, settings: Settings, *, dry_run: bool) -> None:
        self.settings = settings
        self.dry_run = dry_run
        self._text = _environment(settings.templates_dir, html=False)
        self._html = _environment(settings.templates_dir, html=True)

    def render(self, kind: Kind, email: str, **context: Any) -> Notice:
        """The message of `kind` for `email`; the text template sets the subject."""
        values = {"email": email, **context}
        try:
            text_template = self._text.get_template(f"{kind}.txt.j2")
            module = text_template.make_module(values)
            text = str(module)
            subject = " ".join(str(getattr(module, "subject", "")).split())
            html = self._html.get_template(f"{kind}.html.j2").render(values)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or f"notices/{kind}"
            raise TemplateError(f"{where}: the notice template failed: {exc}") from exc
        message = EmailMessage()
        message["From"] = header_value(self.settings.from_address)
        message["To"] = header_value(email)
        message["Subject"] = header_value(subject or "Your research digest")
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self.settings.sender_domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(text, charset="utf-8")
        message.add_alternative(html, subtype="html", charset="utf-8")
        return Notice(email, subject, message.as_bytes())

    async def deliver(self, notice: Notice) -> Path | None:
        """Send `notice` (or write it, in a dry run: returns the file). DeliveryError
        says why it could not be sent, naming the server."""
        if self.dry_run:
            return OutboxWriter(self.settings.outbox_dir, OUTBOX_FOLDER).write(
                notice.to, notice.message
            )
        settings = self.settings
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        recipient, smtputf8 = smtp_address(notice.to)
        try:
            client = await connect(settings)
            try:
                await transmit(
                    client,
                    parseaddr(settings.from_address)[1],
                    recipient,
                    notice.message,
                    smtputf8=smtputf8,
                    timeout=settings.smtp_timeout,
                    data_timeout=settings.smtp_data_timeout,
                )
            finally:
                client.close()
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            raise DeliveryError(
                f"could not send the {notice.subject!r} email to {notice.to} through {where}: "
                f"{exc}; check NEWSLETTER_SMTP_HOST/_PORT and that the server runs"
            ) from exc
        except DeliveryError:
            raise
        log.info("sent %r to %s", notice.subject, notice.to)
        return None
