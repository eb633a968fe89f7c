"""Deliver built messages: as `.eml` files (dry run) or over SMTP.

Whatever the transport, the ledger in `store.py` decides: a row is claimed
(`sending`, committed) before its message leaves and becomes `sent` only once the
message is on disk (dry run) or accepted by the server. Whatever goes wrong with one
recipient (their message, their address, an unexpected error) is recorded on their row
and the run goes on for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import random
import re
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

from newsletter.errors import DISK_FULL, DeliveryError, NewsletterError
from newsletter.message import seven_bit
from newsletter.settings import Settings
from newsletter.store import UNSUBSCRIBED_DURING_SEND, Store
from newsletter.subscribers import smtp_address

log = logging.getLogger(__name__)


_UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9@._+-]")
_LONGEST_STEM = 200  # bytes; with the hash and ".eml", under the usual 255-byte limit


def eml_name(email: str) -> str:
    """A file name for one recipient's message: readable, safe on every filesystem,
    one per address, the same on every run.

    An everyday address is its own name (`ada@example.org.eml`). When characters had
    to be replaced (`a&b@` and `a_b@` would both be `a_b@`, `üser@` and `öser@` both
    `_ser@`) or the address is very long, a short hash of the address follows a "~",
    which no unchanged name contains: `a_b@example.org~1f0c2a9e.eml`. The address is
    the ledger's key (lower-cased), so the writer and the report agree on the name."""
    key = email.strip().lower()
    safe = _UNSAFE_IN_NAMES.sub("_", key)
    if safe == key and len(safe) <= _LONGEST_STEM:
        return f"{safe}.eml"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:_LONGEST_STEM]}~{digest}.eml"


class OutboxWriter:
    """Writes one `.eml` per recipient into `outbox_dir/<issue>/`, atomically."""

    def __init__(self, outbox_dir: Path, issue_key: str) -> None:
        self.folder = self.folder_for(outbox_dir, issue_key)
        self._written = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox folder {self.folder}: {exc}; "
                "check NEWSLETTER_OUTBOX_DIR and its permissions"
            ) from exc

    @staticmethod
    def folder_for(outbox_dir: Path, issue_key: str) -> Path:
        return outbox_dir / re.sub(r"[^A-Za-z0-9._-]", "_", issue_key)

    def path_for(self, email: str) -> Path:
        return self.folder / eml_name(email)

    def write(self, email: str, message: bytes) -> Path:
        """Write (or rewrite) the recipient's file; readers never see a partial file, and
        a failed write leaves no temporary file behind. The temporary name is this
        process's and a counter (`O_EXCL` refuses one left by a crash, and the next
        number is taken): cheaper than `tempfile`'s random names, which cost as much as
        the write at 10,000 files a second. The file is private (0600): it holds the
        reader's signed links."""
        target = self.path_for(email)
        while True:
            self._written += 1
            temp = self.folder / f".{os.getpid()}.{self._written}.part"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._error(target, exc) from exc
            break
        try:
            try:
                view = memoryview(message)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise self._error(target, exc) from exc
            raise
        return target

    def _error(self, target: Path, exc: OSError) -> DeliveryError:
        if exc.errno in DISK_FULL:
            return DeliveryError(
                f"cannot write {target}: the disk is full ({exc.strerror}); free some space "
                f"in {self.folder} and run again: nothing was lost, the messages not written "
                "yet are written then"
            )
        return DeliveryError(f"cannot write {target}: {exc}")


# --- SMTP -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One message to send: the ledger row it belongs to and how to build its bytes."""

    email: str  # the ledger key (lower-cased address)
    to_address: str
    build: Callable[[], bytes]


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed: SMTP reply code (None for timeouts and drops) and text."""

    code: int | None
    message: str
    transient: bool


def classify(exc: BaseException) -> Failure:
    """4xx replies, timeouts and dropped connections are transient; 5xx are permanent, and
    so is a missing extension the message needs (SMTPUTF8)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return Failure(None, str(exc), False)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = int(exc.code)
        return Failure(code, " ".join(str(exc.message).split()), not 500 <= code < 600)
    if isinstance(exc, asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return Failure(None, "timed out", True)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return Failure(None, f"connection dropped: {exc}", True)
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | OSError):
        return Failure(None, f"cannot connect: {exc}", True)
    return Failure(None, f"{type(exc).__name__}: {exc}", True)


class RateLimiter:
    """At most `per_second` sends in any one-second window (and `per_hour` in any hour),
    across all connections: a sliding-window log of the last sends' times."""

    def __init__(
        self,
        per_second: float | None,
        per_hour: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows: list[tuple[float, int, deque[float]]] = []
        if per_second:
            self._windows.append((1.0, max(1, int(per_second)), deque()))
        if per_hour:
            self._windows.append((3600.0, max(1, int(per_hour)), deque()))
        self._clock = clock
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self._windows:
            return
        async with self._lock:
            while True:
                now = self._clock()
                wait = 0.0
                for span, limit, times in self._windows:
                    while times and times[0] <= now - span:
                        times.popleft()
                    if len(times) >= limit:
                        wait = max(wait, times[0] + span - now)
                if wait <= 0:
                    for _span, _limit, times in self._windows:
                        times.append(now)
                    return
                await asyncio.sleep(wait)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    unknown: int = 0  # handed over, no reply in time: may have arrived
    retried: int = 0
    skipped: list[str] = field(default_factory=list)  # unsubscribed during the run
    paused: str | None = None  # why the run stopped early, if it did
    stopped: bool = False  # the caller asked to stop (a clean shutdown)
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


class FatalDeliveryError(DeliveryError):
    """A problem no retry can fix (TLS not offered, bad credentials, sender refused)."""


class OutcomeUnknown(DeliveryError):
    """The server took the whole message but did not reply to the end of DATA within
    `smtp_data_timeout`: it may have delivered it (RFC 5321 4.5.3.2, RFC 1047)."""


def tls_context(settings: Settings) -> ssl.SSLContext:
    """How the server's certificate is checked: against NEWSLETTER_SMTP_CA_FILE when it is
    set, else the system's CAs."""
    context = ssl.create_default_context(cafile=settings.smtp_ca_file)
    return context


def _client(settings: Settings) -> aiosmtplib.SMTP:
    username = settings.smtp_username or None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=username,
        password=password,
        use_tls=settings.smtp_tls == "tls",
        # True: STARTTLS is required, a server that does not offer it is an error;
        # False: never upgrade (a local relay).
        start_tls=settings.smtp_tls == "starttls",
        validate_certs=True,
        tls_context=tls_context(settings) if settings.smtp_tls != "none" else None,
        timeout=settings.smtp_timeout,
    )


async def connect(settings: Settings) -> aiosmtplib.SMTP:
    """Open one SMTP session; configuration problems raise FatalDeliveryError."""
    client = _client(settings)
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        await client.connect()
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise FatalDeliveryError(
            f"the SMTP server {where} refused the login for {settings.smtp_username!r} "
            f"({exc.code} {exc.message}); check NEWSLETTER_SMTP_USERNAME and _PASSWORD"
        ) from exc
    except ssl.SSLError as exc:
        raise FatalDeliveryError(
            f"TLS with {where} failed ({exc}); check NEWSLETTER_SMTP_TLS, the port, and the "
            "server's certificate (NEWSLETTER_SMTP_CA_FILE for a private CA)"
        ) from exc
    except aiosmtplib.SMTPException as exc:
        if "STARTTLS" in str(exc).upper():
            raise FatalDeliveryError(
                f"the SMTP server {where} does not offer STARTTLS, which NEWSLETTER_SMTP_TLS="
                "starttls requires; nothing was sent in plain text. Use a server that offers "
                "it, or NEWSLETTER_SMTP_TLS=tls for implicit TLS"
            ) from exc
        raise
    return client


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def data_block(message: bytes) -> tuple[bytes, int]:
    """The message as DATA transmits it (CRLF line ends, a leading dot doubled, the
    final "." line; RFC 5321 4.5.2), and its size as SIZE counts it (RFC 1870)."""
    text = _LINE_ENDS.sub(b"\r\n", message)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return _LEADING_DOT.sub(b"..", text) + b".\r\n", len(text)


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for a server without ESMTP), once per connection."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


async def transmit(
    client: aiosmtplib.SMTP,
    sender: str,
    recipient: str,
    message: bytes,
    *,
    smtputf8: bool,
    timeout: float,
    data_timeout: float,
) -> None:
    """One mail transaction (MAIL, RCPT, DATA) on an open connection.

    Everything until the message is handed over has `timeout` in total. The reply to the
    end of DATA then has `data_timeout` of its own: the server has the message and may be
    scanning or queueing it, so giving up early is how duplicates happen. A timeout
    there raises OutcomeUnknown, unless part of the message had not even left (a plain
    timeout, safe to retry). `smtputf8`: the address needs SMTPUTF8 (RFC 6531); a server
    that does not offer it gets SMTPNotSupported before anything is sent."""
    options: list[str] = []
    encoding = "ascii"
    async with asyncio.timeout(timeout):
        if client.is_ehlo_or_helo_needed:
            await _greet(client)
        if not message.isascii():  # an 8bit text part, or SMTPUTF8 headers
            if client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            elif not smtputf8:
                message = seven_bit(message)  # RFC 6152: 8bit only where it is offered
        block, size = data_block(message)
        if smtputf8:
            if not client.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported(
                    f"the address {recipient} has a non-ASCII local part, which only a server "
                    "offering SMTPUTF8 takes, and this one does not: not sent (and not "
                    "retried). Ask the subscriber for an ASCII address, or use an SMTP "
                    "server that offers SMTPUTF8"
                )
            options.append("SMTPUTF8")
            encoding = "utf-8"
        if client.supports_extension("size"):
            options.append(f"SIZE={size}")
        try:
            await client.mail(sender, options=options, encoding=encoding)
            await client.rcpt(recipient, encoding=encoding)
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except aiosmtplib.SMTPResponseException:
            try:  # end the refused transaction; the connection serves the next message
                await client.rset()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
            raise
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost before DATA")
        protocol.write(block)
    try:
        reply = await protocol.read_response(timeout=data_timeout)
    except aiosmtplib.SMTPTimeoutError as exc:
        transport = protocol.transport
        unsent = (
            transport.get_write_buffer_size()
            if isinstance(transport, asyncio.WriteTransport)
            else 0
        )
        client.close()
        if unsent:
            raise
        raise OutcomeUnknown(
            f"the server took the whole message but did not reply within {data_timeout:g} s "
            "(NEWSLETTER_SMTP_DATA_TIMEOUT): it may have arrived"
        ) from exc
    except aiosmtplib.SMTPException:
        client.close()
        raise
    if reply.code != 250:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


class Breaker:
    """Counts consecutive transient failures across all connections."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.last: Failure | None = None

    def ok(self) -> None:
        self.streak = 0

    def fail(self, failure: Failure) -> bool:
        """Record a transient failure; True when the server looks down."""
        self.streak += 1
        self.last = failure
        return self.streak >= self.limit


def backoff_delay(attempt: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (1, 2, ...)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class Progress:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, total: int, stats: DeliveryStats, *, enabled: bool | None = None) -> None:
        self.total = total
        self.stats = stats
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0

    def update(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        stats = self.stats
        done = stats.sent + stats.failed + stats.unknown + len(stats.skipped)
        width = 30
        filled = int(width * done / self.total) if self.total else width
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] sent {self.stats.sent}"
            f"  failed {self.stats.failed}  remaining {self.total - done}"
            f"  {self.stats.rate:.1f} msg/s "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(force=True)
            sys.stderr.write("\n")


def claim_batch(concurrency: int) -> int:
    """Rows claimed `sending` in one transaction."""
    return max(8, 2 * concurrency)


def claim_window(concurrency: int) -> int:
    """The most rows `sending` at any moment (claimed ahead of the connections)."""
    return 2 * claim_batch(concurrency)


def crash_window(concurrency: int) -> int:
    """The most messages that can arrive twice after a crash: one per connection, the
    message the server took whose `sent` was not yet committed. Rows claimed but not yet
    handed over are sent again by the next run, but they never arrived: no duplicate."""
    return concurrency


class ClaimWindow:
    """The ledger side of sending: rows are claimed `sending` a batch at a time (one
    commit per batch), before any of them is handed to a connection; a message the
    server accepted is committed `sent` at once, before its connection takes the next
    one. In WAL mode with synchronous=NORMAL a commit is a write to the log, not a disk
    sync, and it survives the process being killed: so a kill can only repeat the message
    each connection was handing over (`crash_window`). A new batch is claimed only when
    the claimed-but-unfinished rows leave room in the window (`claim_window`)."""

    def __init__(self, store: Store, issue_id: int, batch: int) -> None:
        self.store = store
        self.issue_id = issue_id
        self.batch = batch
        self.window = 2 * batch
        self.open = 0  # claimed, not yet finished (sent, failed or given back)
        self._changed = asyncio.Event()

    async def claim(self, emails: list[str]) -> list[str]:
        """Claim the rows `sending`, but those unsubscribed meanwhile, which become
        `skipped`: returns the skipped ones."""
        while self.open and self.open + len(emails) > self.window:
            self._changed.clear()
            await self._changed.wait()
        skipped = self.store.claim(self.issue_id, emails)
        self.open += len(emails) - len(skipped)
        return skipped

    def confirm(self, email: str) -> None:
        """The server accepted the message: `sent`, committed before anything else runs."""
        self.store.mark_many(self.issue_id, [email], "sent")

    def release(self) -> None:
        """One claimed row is finished (whatever its outcome)."""
        self.open -= 1
        self._changed.set()


async def send_over_smtp(
    settings: Settings,
    store: Store,
    issue_id: int,
    outgoing: Iterable[Outgoing],
    *,
    total: int,
    sender: str,
    progress: bool | None = None,
    stop_requested: asyncio.Event | None = None,
) -> DeliveryStats:
    """Send every message over `smtp_concurrency` reused connections.

    Ledger rule per message: `sending` is committed before the message is handed to the
    server (claimed with its batch, see `ClaimWindow`), `sent` committed right after its
    250 reply to DATA. A crash leaves at most `claim_window(smtp_concurrency)` rows
    `sending`; the next run sends those again, but only the one message per connection
    that the server had taken can arrive twice (`crash_window`). A 5xx reply marks it `failed` (no
    retry). 4xx replies, timeouts and drops are retried on a fresh connection with backoff,
    up to `smtp_max_attempts`, then marked `failed` (a later run retries those). After
    `smtp_pause_after` consecutive transient failures the run pauses: nothing more is
    claimed and the rest stay `pending`.

    No reply to the end of DATA within `smtp_data_timeout` marks it `unknown` (the server
    has the message: not retried in this run; the next run sends it once more, see
    `Store.mark_unknown`). A message that cannot be built, an address the server cannot
    take (a non-ASCII local part without SMTPUTF8), or any unexpected error for one
    recipient marks that recipient `failed` (permanent: no later run retries it) and the
    run goes on. A recipient who unsubscribes while the run is under way is `skipped`:
    checked when rows are claimed and again just before each message is handed over.

    Clean stop: once `stop_requested` is set, no new message is claimed. A message already
    handed to the server finishes (its reply decides `sent` or `failed`); a message waiting
    for a retry or for the rate limit goes back to `pending`, as do all unclaimed rows. So
    after a clean stop no row is left `sending`, and the next run sends exactly the rest.

    The producer and the workers run in one task group: an error that escapes one of them
    (the database failing, say) cancels the others, so the run always ends; rows then
    left `sending` are sent again by the next run, as after a crash.
    """
    stats = DeliveryStats()
    bar = Progress(total, stats, enabled=progress)
    limiter = RateLimiter(settings.smtp_rate_per_second, settings.smtp_rate_per_hour)
    breaker = Breaker(settings.smtp_pause_after)
    queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=settings.smtp_concurrency * 4)
    stop = asyncio.Event()
    fatal: list[BaseException] = []
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    if stop_requested is not None and stop_requested.is_set():
        stats.stopped = True
        return stats

    # Preflight: one connection must open before anything is claimed.
    try:
        first = await connect(settings)
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        failure = classify(exc)
        raise DeliveryError(
            f"cannot start sending: the SMTP server {where} "
            f"did not accept a connection ({failure.code or ''} {failure.message}). Nothing "
            f"was sent; all {total} recipient(s) stay pending. Check NEWSLETTER_SMTP_HOST/_PORT "
            "and that the server runs, then run 'newsletter send' again"
        ) from exc

    claims = ClaimWindow(store, issue_id, claim_batch(settings.smtp_concurrency))
    unclaimed: list[str] = []  # claimed, then not sent because the run stopped

    async def relay_stop() -> None:
        assert stop_requested is not None
        await stop_requested.wait()
        stats.stopped = True
        stop.set()

    async def produce() -> None:
        try:
            items = iter(outgoing)
            while not stop.is_set():
                batch = list(itertools.islice(items, claims.batch))
                if not batch:
                    break
                skipped = await claims.claim([item.email for item in batch])
                if skipped:
                    stats.skipped.extend(skipped)
                    log.info("%d recipient(s) unsubscribed during the send: skipped", len(skipped))
                    gone = set(skipped)
                    batch = [item for item in batch if item.email not in gone]
                for index, item in enumerate(batch):
                    if stop.is_set():
                        unclaimed.extend(i.email for i in batch[index:])
                        break
                    await queue.put(item)
            for _ in range(settings.smtp_concurrency):
                await queue.put(None)  # the workers finish what is queued, then stop
        except BaseException:
            # Failed or cancelled: the task group cancels the workers too, but a
            # cancellation can be lost (Python 3.11's wait_for, which aiosmtplib uses,
            # drops one that meets a reply), and such a worker would wait on the queue
            # for ever. So what is queued goes back, and each worker gets its sentinel at
            # once (no await: it cannot block, even cancelled).
            while not queue.empty():
                if (left := queue.get_nowait()) is not None:
                    unclaimed.append(left.email)
            for _ in range(settings.smtp_concurrency):
                queue.put_nowait(None)
            raise

    async def worker(client: aiosmtplib.SMTP | None) -> None:
        try:
            while (item := await queue.get()) is not None:
                if stop.is_set():
                    unclaimed.append(item.email)  # drain the queue; the row goes back to pending
                    claims.release()
                    continue
                try:
                    client = await deliver_one(client, item)
                except FatalDeliveryError as exc:
                    fatal.append(exc)
                    stop.set()
                finally:
                    claims.release()
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    def record_failure(item: Outgoing, failure: Failure) -> None:
        store.mark(
            issue_id,
            item.email,
            "failed",
            code=failure.code,
            message=failure.message,
            permanent=not failure.transient,
        )
        stats.failed += 1
        bar.update()

    def looks_down(failure: Failure) -> bool:
        """Count a transient failure; pause the run when the server looks down."""
        if not breaker.fail(failure):
            return False
        stats.paused = (
            f"the SMTP server {where} looks down: "
            f"{breaker.streak} transient failures in a row (last: "
            f"{failure.code or ''} {failure.message}). The run is paused; the rest "
            "stay pending: run 'newsletter send' again when the server is back"
        )
        stop.set()
        return True

    def prepare(item: Outgoing) -> tuple[bytes, str, bool] | None:
        """The message, the envelope address and whether it needs SMTPUTF8; None (the
        row marked failed, for good) when the message cannot be built."""
        try:
            message = item.build()
            recipient, smtputf8 = smtp_address(item.to_address)
        except Exception as exc:  # recorded on the row: one recipient, not the whole run
            reason = str(exc) if isinstance(exc, NewsletterError) else _described(exc)
            log.error("%s: cannot build the message: %s", item.to_address, reason)
            record_failure(item, Failure(None, reason, transient=False))
            return None
        return message, recipient, smtputf8

    async def deliver_one(client: aiosmtplib.SMTP | None, item: Outgoing) -> aiosmtplib.SMTP | None:
        prepared = prepare(item)
        if prepared is None:
            return client
        message, recipient, smtputf8 = prepared
        for attempt in range(1, settings.smtp_max_attempts + 1):
            if stop.is_set():
                store.mark(issue_id, item.email, "pending")
                return client
            await limiter.acquire()
            if stop.is_set():
                store.mark(issue_id, item.email, "pending")  # claimed, never handed over
                return client
            if store.is_unsubscribed(item.email):  # the rate limit can wait for hours
                store.mark(issue_id, item.email, "skipped", message=UNSUBSCRIBED_DURING_SEND)
                stats.skipped.append(item.email)
                bar.update()
                return client
            try:
                if client is None or not client.is_connected:
                    client = await connect(settings)
                if attempt > 1:  # the first attempt was claimed with its batch
                    store.mark(issue_id, item.email, "sending", attempt=True)
                await transmit(
                    client,
                    sender,
                    recipient,
                    message,
                    smtputf8=smtputf8,
                    timeout=settings.smtp_timeout,
                    data_timeout=settings.smtp_data_timeout,
                )
            except FatalDeliveryError:
                store.mark(issue_id, item.email, "pending")
                raise
            except OutcomeUnknown as exc:
                # Not retried here: the server may have it. The next run sends it once.
                resend = store.mark_unknown(issue_id, item.email, str(exc))
                stats.unknown += 1
                log.warning(
                    "%s: %s; %s",
                    item.to_address,
                    exc,
                    "the next run sends it once more" if resend else "it is not sent again",
                )
                bar.update()
                looks_down(Failure(None, "no reply to the end of DATA", True))
                return None  # `transmit` closed the connection
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                failure = classify(exc)
                if isinstance(exc, aiosmtplib.SMTPSenderRefused) and not failure.transient:
                    store.mark(issue_id, item.email, "pending")
                    raise FatalDeliveryError(
                        f"the SMTP server refused the sender {sender} ({failure.code} "
                        f"{failure.message}); check NEWSLETTER_FROM_ADDRESS"
                    ) from exc
                if not failure.transient:
                    breaker.ok()  # a 5xx reply proves the server is up
                    record_failure(item, failure)
                    log.warning(
                        "%s: not sent: %s %s", item.to_address, failure.code or "", failure.message
                    )
                    return client
                # Transient: this connection is suspect; retry on a fresh one.
                if client is not None:
                    client.close()
                client = None
                if looks_down(failure):
                    store.mark(
                        issue_id, item.email, "pending", code=failure.code, message=failure.message
                    )
                    return client
                if attempt == settings.smtp_max_attempts:
                    record_failure(item, failure)
                    return client
                store.mark(
                    issue_id, item.email, "pending", code=failure.code, message=failure.message
                )
                stats.retried += 1
                await asyncio.sleep(backoff_delay(attempt, settings.smtp_retry_base_delay))
                continue
            except Exception as exc:  # recorded on the row: one recipient, not the whole run
                log.exception("%s: unexpected error while sending", item.to_address)
                if client is not None:
                    client.close()  # the session is in an unknown state
                record_failure(item, Failure(None, _described(exc), transient=False))
                return None
            claims.confirm(item.email)
            breaker.ok()
            stats.sent += 1
            bar.update()
            return client
        return client

    clients: list[aiosmtplib.SMTP | None] = [first] + [None] * (settings.smtp_concurrency - 1)
    relay = asyncio.create_task(relay_stop()) if stop_requested is not None else None
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for client in clients:
                group.create_task(worker(client))
    except BaseExceptionGroup as errors:
        error = _first_error(errors)
        raise error from error.__cause__
    finally:
        while not queue.empty():  # claimed, never handed to a worker (the group failed)
            if (left := queue.get_nowait()) is not None:
                unclaimed.append(left.email)
        if unclaimed:
            store.mark_many(issue_id, unclaimed, "pending")
        if relay is not None:
            relay.cancel()
        bar.close()
    if fatal:
        raise fatal[0]
    return stats


def _described(exc: BaseException) -> str:
    """An unexpected error as a ledger message: its type and text."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _first_error(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that made a task group fail (the others are what it cancelled)."""
    first = errors.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first
