"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, in a background thread.

It records every message it accepts and can be told to misbehave per recipient:
reply 4xx/5xx, drop the connection mid-DATA, stall past the client's timeout, or take
its time and then accept (a slow but healthy server). It can offer SMTPUTF8, and can
leave out 8BITMIME.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# What to do with a DATA for a recipient: None = accept, "421 ..."/"451 ..."/"550 ..." = that
# reply, "drop" = close the connection without a reply, "stall" = wait past the timeout,
# "slow" = take (record) the message, then wait `slow_seconds` before the 250 reply: what
# a loaded MTA does, so a client that gives up meanwhile has still delivered it.
Action = str | None


@dataclass
class Recorder:
    """The handler: what the server received, and the misbehaviour it was told to show."""

    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." at RCPT
    on_data: Callable[[str, int], Action] = lambda rcpt, attempt: None
    stall_seconds: float = 3.0
    slow_seconds: float = 1.0
    received: list[tuple[str, bytes]] = field(default_factory=list)
    # Each accepted message's envelope as the client sent it: RCPT TO, MAIL FROM options.
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    data_attempts: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    offer_8bitmime: bool = True  # False: a server that takes only 7-bit bodies (RFC 6152)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if not self.offer_8bitmime:
            return [line for line in responses if "8BITMIME" not in line]
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.refuse_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0].lower()
        with self.lock:
            self.data_attempts[rcpt] += 1
            attempt = self.data_attempts[rcpt]
        action = self.on_data(rcpt, attempt)
        if action == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 dropped"  # never reaches the client
        if action == "stall":
            await asyncio.sleep(self.stall_seconds)
            return "451 too late"
        if action and action != "slow":
            return action
        content = envelope.original_content or b""
        with self.lock:
            self.received.append((rcpt, content))
            self.envelopes.append((envelope.rcpt_tos[0], list(envelope.mail_options)))
        if action == "slow":
            await asyncio.sleep(self.slow_seconds)
        return "250 2.0.0 Queued"

    # -- what the tests read ------------------------------------------------------------

    def recipients(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.received)

    def messages_to(self, rcpt: str) -> list[email.message.EmailMessage]:
        with self.lock:
            raw = [data for to, data in self.received if to == rcpt.lower()]
        return [email.message_from_bytes(data, policy=email.policy.default) for data in raw]  # type: ignore[misc]


@dataclass
class RunningServer:
    host: str
    port: int
    recorder: Recorder


@contextmanager
def smtp_server(
    recorder: Recorder | None = None,
    *,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    logins: dict[str, str] | None = None,
    smtputf8: bool = False,
    auth_require_tls: bool = False,
) -> Iterator[RunningServer]:
    """Run a recording aiosmtpd server on 127.0.0.1 with an OS-chosen port (offering
    SMTPUTF8 only when asked; with `auth_require_tls`, AUTH only inside TLS)."""
    recorder = recorder or Recorder()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and logins is not None
            and logins.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False)

    def factory() -> SMTP:
        return SMTP(
            recorder,
            hostname="test.local",
            tls_context=tls_context,
            authenticator=authenticator if logins is not None else None,
            auth_require_tls=auth_require_tls,
            enable_SMTPUTF8=smtputf8,
        )

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(factory, "127.0.0.1", 0, ssl=implicit_tls)
        )
        holder["server"] = server
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield RunningServer("127.0.0.1", holder["port"], recorder)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
