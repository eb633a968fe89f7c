"""The web side of the newsletter: one-click unsubscribe (RFC 8058) and the issue previews.

A small Starlette app, served by uvicorn (`newsletter serve`):

* `GET /unsubscribe/<token>` shows a confirmation page with a button; `POST` with the body
  `List-Unsubscribe=One-Click` (what mail clients send, and what the button sends)
  unsubscribes at once and answers 200, no redirect. GET changes nothing, because mail
  scanners follow links. The token is signed (itsdangerous, see `subscribers.py`); a
  forged, truncated or foreign one gets 400 and changes nothing.
* `/` lists the subscribers with what the next issue would give each; `/preview/<email>`
  shows that issue as the email's HTML at phone and desktop width, the subject, the
  preheader, the text part and each pick's score and reason. These pages list the
  subscribers, so `serve` mounts them only when it listens on a loopback address.
  The index ranks every subscriber in one pass and keeps the result until the
  database, the subscribers file or the date changes (see `IndexPage`).
* `GET /healthz` answers `{"service": "newsletter", "version": ...}` (see `health.py`):
  how `newsletter check` knows that the base URL reaches this server.

Two guards sit in front of every route. Only requests naming this server in their Host
header are served (the host of `NEWSLETTER_BASE_URL`, or a loopback name): a web page
that rebinds its own DNS name to 127.0.0.1 must not read the previews or the
unsubscribe links in them. And no request body may exceed `MAX_BODY` (the forms and
the one-click POST are a few dozen bytes); a larger one gets 413 as soon as it is
known to be larger, without being held in memory.

Nothing here sends mail. The pages are Jinja templates in `templates/web/` (autoescaped,
reloaded when edited); the email itself comes from the one `Renderer` the app keeps,
which reloads edited email templates on the next page load.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
import uvicorn
from itsdangerous import BadData
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter import roster
from newsletter.archive_web import archive_routes
from newsletter.errors import ConfigError, NewsletterError, TemplateError
from newsletter.health import HEALTH_PATH, health_report
from newsletter.manage_pages import ManagePages
from newsletter.membership import leave, memberships
from newsletter.pipeline import next_picks_many, preview_digest
from newsletter.ranking import Pick
from newsletter.reader_pages import csrf_middleware
from newsletter.render import Digest, Renderer, paper_view
from newsletter.roster import Member
from newsletter.scheduler import next_issue_date, weekly_issue_date
from newsletter.settings import DEV_SECRET_KEY, Settings
from newsletter.signup_pages import SignupPages
from newsletter.store import Store
from newsletter.subscribers import normalized_email, read_unsubscribe_token, unsubscribe_url

log = logging.getLogger(__name__)

WEB_TEMPLATES = (
    "base.html.j2",
    "index.html.j2",
    "preview.html.j2",
    "unsubscribe.html.j2",
    "error.html.j2",
)
ONE_CLICK = "One-Click"
PHONE_WIDTH = 375
DESKTOP_WIDTH = 800
# The largest request body served: the one-click POST is 26 bytes, the forms a few hundred.
MAX_BODY = 64 * 1024
# Host names every server answers to, whatever its base URL (any port).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Pages carry capability tokens (unsubscribe) or subscriber data (previews): keep them out
# of caches, referrers and search engines.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}


def _web_environment(folder: Path) -> jinja2.Environment:
    missing = [name for name in WEB_TEMPLATES if not (folder / name).is_file()]
    if missing:
        raise TemplateError(
            f"{folder}: the web page templates {', '.join(missing)} are missing; copy the "
            "project's templates/web/ folder there (NEWSLETTER_TEMPLATES_DIR/web)"
        )
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        auto_reload=True,  # an edited page template shows on the next load
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Row:
    """One subscriber on the index page."""

    member: Member
    picks: list[Pick]


Clock = Callable[[], datetime]
FileIdentity = tuple[int, int, int] | None  # modification time (ns), size, inode
# What the index rows depend on; equal states give equal rows (see `IndexPage`).
DataState = tuple[date, FileIdentity, int, int, int, frozenset[str], int]


class IndexPage:
    """The index page, computed once per state and shared by the requests that want it.

    Two levels: the rows (every subscriber ranked, in one pass) are kept per data
    state; the page's HTML per data state and page templates, so a template edit
    renders the kept rows again without ranking anyone.

    The data state is the next issue's date (`scheduler.next_issue_date`: the daily and
    weekly pools move with it), the
    subscribers file's identity (an edit or an atomic replace changes its modification
    time, size or inode) and what the ranking reads from the database: the newest dump
    (new papers, updated upvotes), the newest real issue and how many of its messages
    went out (what each subscriber already received), and who unsubscribed. The
    templates' state is the identity of each file in `templates/web/`.

    One lock: concurrent requests for a new state wait for the one computation
    instead of each doing it again.
    """

    def __init__(
        self,
        settings: Settings,
        render: Callable[[list[Row], date], str],
        templates: Path,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.render = render
        self.templates = templates
        self.clock = clock
        self._lock = threading.Lock()
        self._rows: tuple[DataState, list[Row]] | None = None
        self._page: tuple[tuple[DataState, tuple[FileIdentity, ...]], str] | None = None

    def data_state(self, store: Store) -> DataState:
        last = store.last_real_issue()
        return (
            next_issue_date(self.settings, store, self.clock()),
            _file_identity(self.settings.subscribers_file),
            store.latest_dump_id(),
            last.id if last else 0,
            store.counts(last.id)["sent"] if last else 0,
            frozenset(store.unsubscribed()),
            roster.revision(store),
        )

    def html(self, store: Store) -> str:
        # The state is read before anything it describes: a change made while the page
        # is computed makes the next request's state differ, so the cache never hides it.
        state = self.data_state(store)
        key = (state, tuple(_file_identity(self.templates / name) for name in WEB_TEMPLATES))
        with self._lock:
            if self._page is not None and self._page[0] == key:
                return self._page[1]
            if self._rows is None or self._rows[0] != state:
                self._rows = (state, self.rows(store, state[0]))
            html = self.render(self._rows[1], state[0])
            self._page = (key, html)
            return html

    def rows(self, store: Store, issue_date: date) -> list[Row]:
        members = memberships(self.settings, store)
        subscribers = [m.subscriber for m in members]
        picks = next_picks_many(self.settings, store, subscribers, issue_date=issue_date)
        return [Row(member, picks[member.subscriber.key]) for member in members]


def _file_identity(path: Path) -> FileIdentity:
    try:
        stat = path.stat()
    except OSError:
        return None  # loading it says what is wrong
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class WebApp:
    """The state the handlers share: settings, one email renderer, the page templates."""

    def __init__(
        self, settings: Settings, *, preview: bool = True, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.preview = preview
        self.pages = _web_environment(settings.templates_dir / "web")
        # One renderer for the life of the server (it compiles the MJML once and reloads
        # edited templates); the lock keeps two requests from reloading it at once.
        self.renderer = Renderer(settings.templates_dir) if preview else None
        self._render_lock = threading.Lock()
        # The key the emails' links were signed with: the configured secret, or (without
        # one) the development key of dry runs and previews, whose links then work locally.
        self.token_key = settings.signing_key(dry_run=True)
        # What "now" is (tests fix it): the index names the next issue's date from it.
        self.clock = clock or (lambda: datetime.now(settings.zone))
        self.index_page = IndexPage(
            settings, self.render_index, templates=settings.templates_dir / "web", clock=self.clock
        )

    # -- pages ---------------------------------------------------------------------------

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.pages.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            line = getattr(exc, "lineno", None)
            raise TemplateError(
                f"{where}{f':{line}' if line else ''}: the page template failed: {exc}"
            ) from exc

    def page(self, name: str, status: int = 200, **context: Any) -> Response:
        return HTMLResponse(self.render(name, **context), status_code=status, headers=_HEADERS)

    def render_index(self, rows: list[Row], issue_date: date) -> str:
        return self.render(
            "index.html.j2",
            rows=rows,
            issue_date=issue_date,
            weekly_date=weekly_issue_date(self.settings, issue_date),
            subscribers_file=str(self.settings.subscribers_file),
        )

    def error_page(self, message: str, status: int) -> Response:
        try:
            return self.page("error.html.j2", status, message=message, code=status)
        except TemplateError as exc:  # the error page itself is broken: plain text then
            return PlainTextResponse(f"{message}\n\n{exc}", status_code=status, headers=_HEADERS)

    # -- data (run in a worker thread: SQLite and rendering block) ------------------------

    def unsubscribe_url(self, email: str) -> str:
        return unsubscribe_url(self.settings.base_url, email, self.token_key)

    def index_html(self) -> str:
        with Store(self.settings.database_path) as store:
            return self.index_page.html(store)

    def token_email(self, token: str) -> str | None:
        """The address a token names, or None for a token that is forged, damaged,
        signed with another key, or signed but not holding one email address."""
        try:
            value = read_unsubscribe_token(token, self.token_key)
        except BadData:  # a valid signature over a payload that does not decode
            return None
        if value is None:
            return None
        try:
            normalized_email(value)
        except ValueError:
            return None
        return value.strip().lower()

    def preview_of(self, email: str) -> tuple[Member, Digest | None, list[Pick]] | None:
        assert self.renderer is not None
        with Store(self.settings.database_path) as store:
            wanted = email.strip().lower()
            member = next(
                (m for m in memberships(self.settings, store) if m.subscriber.key == wanted), None
            )
            if member is None:
                return None
            with self._render_lock:
                digest, picks = preview_digest(
                    self.settings, store, member.subscriber, renderer=self.renderer
                )
        return member, digest, picks

    def is_unsubscribed(self, email: str) -> bool:
        with Store(self.settings.database_path) as store:
            return email in store.unsubscribed()

    def leave(self, email: str) -> None:
        with Store(self.settings.database_path) as store:
            leave(self.settings, store, email, source="web")

    # -- handlers ------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        # Rendering a thousand rows takes tens of milliseconds: not on the event loop.
        html = await run_in_threadpool(self.index_html)
        return HTMLResponse(html, headers=_HEADERS)

    async def preview_page(self, request: Request) -> Response:
        email = request.path_params["email"]
        found = await run_in_threadpool(self.preview_of, email)
        if found is None:
            return self.error_page(
                f"{email} is not in {self.settings.subscribers_file}; the index lists who is.",
                404,
            )
        member, digest, picks = found
        return self.page(
            "preview.html.j2",
            member=member,
            subscriber=member.subscriber,
            digest=digest,
            papers=[(paper_view(number, pick), pick.score) for number, pick in enumerate(picks, 1)],
            unsubscribe_url=self.unsubscribe_url(member.subscriber.email),
            from_address=self.settings.from_address,
            phone_width=PHONE_WIDTH,
            desktop_width=DESKTOP_WIDTH,
        )

    async def preview_html(self, request: Request) -> Response:
        """The email's HTML alone, as a mail client gets it (to open in its own tab)."""
        found = await run_in_threadpool(self.preview_of, request.path_params["email"])
        if found is None or found[1] is None:
            return self.error_page("No email for this address in the next issue.", 404)
        return HTMLResponse(found[1].html, headers=_HEADERS)

    async def unsubscribe(self, request: Request) -> Response:
        email = self.token_email(request.path_params["token"])
        if email is None:
            return self.page("unsubscribe.html.j2", 400, state="invalid", email=None)
        if request.method != "POST":
            already = await run_in_threadpool(self.is_unsubscribed, email)
            return self.page(
                "unsubscribe.html.j2", state="already" if already else "confirm", email=email
            )
        if not await _is_one_click(request):
            return self.page("unsubscribe.html.j2", 400, state="bad-request", email=email)
        await run_in_threadpool(self.leave, email)
        return self.page("unsubscribe.html.j2", state="done", email=email)

    async def on_error(self, request: Request, exc: Exception) -> Response:
        # Registered for NewsletterError only: a broken template or subscribers file is
        # shown to the person editing it, with the file and line.
        return self.error_page(str(exc), 500)


class BodyTooLarge(Exception):
    """A request body passed `BodyLimit`'s limit while the app was reading it."""


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 (pure ASGI middleware).

    A declared Content-Length over the limit is refused before anything is read. A body
    without one (chunked) is counted as the app reads it, chunk by chunk from
    `receive()`, and the read fails as soon as the count passes the limit, so no more
    than the limit (plus the one chunk the server handed over) is ever held. uvicorn
    reads and drops the rest of the body itself, with its own small buffer.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not (declared.isdigit() and int(declared) <= self.limit):
            await self.refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(f"the request body passed {self.limit} bytes")
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:  # too late for a status; the server drops the connection
                raise
            await self.refuse(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(
            f"The request body is larger than {self.limit // 1024} KiB; this server only "
            "takes small forms (an unsubscribe POST is 26 bytes).",
            status_code=413,
            headers=_HEADERS,
        )
        await response(scope, receive, send)


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host header values (without port) the server answers: the base URL's host
    and the loopback names."""
    host = (urlsplit(settings.base_url).hostname or "").lower()
    if ":" in host:  # an IPv6 literal is bracketed in a Host header
        host = f"[{host}]"
    return list(dict.fromkeys([*([host] if host else []), *LOOPBACK_HOSTS]))


def has_real_key(settings: Settings) -> bool:
    """A secret key is configured and it is not the public development key."""
    key = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
    return bool(key) and key != DEV_SECRET_KEY


async def _is_one_click(request: Request) -> bool:
    """The body RFC 8058 prescribes: `List-Unsubscribe=One-Click`, as a URL-encoded or a
    multipart form (a bare URL-encoded body without a content type is accepted too)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        return form.get("List-Unsubscribe") == ONE_CLICK
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body.strip()).get("List-Unsubscribe") == [ONE_CLICK]


async def healthz(request: Request) -> Response:
    """Which service answers here (for `newsletter check` and monitoring)."""
    return JSONResponse(health_report(), headers={"Cache-Control": "no-store"})


def create_app(
    settings: Settings,
    *,
    preview: bool = True,
    clock: Clock | None = None,
    dry_run: bool = False,
) -> Starlette:
    """The ASGI app; `preview=False` leaves out the pages that list subscribers. `clock`
    gives "now" (default: the system clock in NEWSLETTER_TIMEZONE). `dry_run` writes
    the sign-up emails to the outbox instead of sending them."""
    web = WebApp(settings, preview=preview, clock=clock)
    routes = [
        Route("/unsubscribe/{token}", web.unsubscribe, methods=["GET", "POST"]),
        Route(HEALTH_PATH, healthz),
    ]
    routes += archive_routes(settings, error_page=web.error_page, headers=_HEADERS)
    # The readers' own pages: sign-up, confirmation, preferences, feedback.
    routes += SignupPages(settings, web.token_key, dry_run=dry_run).routes()
    routes += ManagePages(settings, web.token_key).routes()
    if preview:
        routes += [
            Route("/", web.index),
            Route("/preview/{email}", web.preview_page),
            Route("/preview/{email}/html", web.preview_html),
        ]
    middleware = [
        Middleware(
            TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings), www_redirect=False
        ),
        Middleware(BodyLimit, limit=MAX_BODY),
        Middleware(csrf_middleware(settings, web.token_key)),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={NewsletterError: web.on_error},
    )
    app.state.web = web
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one)."""
    if not 0 <= port <= 65535:  # the OS would take it modulo 65536
        raise ConfigError(f"cannot listen on port {port}: use 1 to 65535, or 0 for a free one")
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}; check --host") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
            "(or stop what is using it)"
        ) from exc
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ready: Callable[[str], None] | None = None,
    dry_run: bool = False,
) -> None:
    """Run the app until interrupted. Beyond loopback it needs a real secret key (the
    development key is public) and serves only the unsubscribe endpoint."""
    local = is_loopback(host)
    if not local and not has_real_key(settings):
        raise ConfigError(
            f"refusing to listen on {host} without NEWSLETTER_SECRET_KEY (or with the "
            "development key as its value): the links would be checked with a public key; "
            "set the key the emails were sent with"
        )
    app = create_app(settings, preview=local, dry_run=dry_run)
    sock = bind(host, port)
    url = url_of(sock)
    if ready is not None:
        ready(f"Serving on {url}/ (Ctrl-C stops)")
        if local:
            ready(f"Previews: {url}/  (one page per subscriber: {url}/preview/<email>)")
        else:
            ready("Previews are off: they list subscribers, so they are served on loopback only")
        ready(f"Unsubscribe links in emails point to {settings.base_url}/unsubscribe/...")
        ready(
            f"Sign-up form: {url}/subscribe"
            + (" (emails go to the outbox: --dry-run)" if dry_run else "")
        )
    # No access log: the unsubscribe URLs carry tokens that act for the subscriber. No
    # logging config of uvicorn's own: its records go where the CLI sends every log
    # (`logs.py`: stderr, text or JSON).
    config = uvicorn.Config(app, lifespan="off", access_log=False, log_config=None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
