"""The archive on the web: `GET /archive/<token>` shows one reader's sent issue (the
email's "view in browser" link), `GET /feed/<token>.atom` their Atom feed.

Both links are personal and signed (see `archive_links.py`); a forged, damaged or foreign
token gets 400 and an issue that was never sent to the reader 404, both as the site's
error page. The pages carry the same no-store / no-referrer / noindex headers as every
other page of the site. `web.create_app` mounts these routes whether or not the server
listens beyond loopback: each answer shows only what the token's holder was sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from newsletter import roster
from newsletter.archive import archived_issue, feed_items
from newsletter.archive_links import (
    FeedRef,
    IssueRef,
    archive_url,
    feed_url,
    read_archive_token,
    read_feed_token,
)
from newsletter.feed import FeedWriter, feed_entry, feed_id
from newsletter.render import Renderer
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import Subscriber, unsubscribe_url

ATOM = "application/atom+xml; charset=utf-8"
ErrorPage = Callable[[str, int], Response]
BAD_LINK = (
    "This link is not valid: it may have been cut short when it was copied. "
    "Open it again from the email."
)
NOT_SENT = "There is no issue for this link: it was never sent to this address."


class ArchiveViews:
    """The handlers and what they share: one renderer (compiled once), the feed writer,
    and the subscriber list read once per version of the file."""

    def __init__(self, settings: Settings, *, error_page: ErrorPage, headers: Mapping[str, str]):
        self.settings = settings
        self.error_page = error_page
        self.headers = dict(headers)
        self.key = settings.signing_key(dry_run=True)  # the key the emails were signed with
        self.feeds = FeedWriter(settings.templates_dir / "web")
        self._lock = threading.Lock()
        self._renderer: Renderer | None = None

    # -- data (in a worker thread: SQLite, YAML and rendering block) ------------------------

    def renderer(self) -> Renderer:
        with self._lock:
            if self._renderer is None:
                self._renderer = Renderer(self.settings.templates_dir)
            return self._renderer

    def reader(self, store: Store, email: str) -> Subscriber | None:
        """The reader as the live list has them now, whatever their state (None: not on
        it: their issue is shown all the same, without their name and topics)."""
        member = roster.find(store, email)
        return member.subscriber if member else None

    def issue_html(self, ref: IssueRef) -> str | None:
        settings = self.settings
        with Store(settings.database_path) as store:
            found = archived_issue(settings, store, ref, self.reader(store, ref.email))
        if found is None:
            return None
        renderer = self.renderer()
        with self._lock:  # one reload of edited templates at a time
            digest = renderer.render(
                subscriber=found.reader,
                picks=found.picks,
                issue_date=found.issue.issue_date,
                unsubscribe_url=unsubscribe_url(settings.base_url, ref.email, self.key),
                pages=found.pages,
                digest_name=settings.digest_name,
                feed_url=feed_url(settings.base_url, FeedRef(ref.email, ref.dry_run), self.key),
                in_browser=True,
                past_issues=found.past,
            )
        return digest.html

    def feed_xml(self, ref: FeedRef, self_url: str) -> str:
        settings = self.settings
        domain = settings.sender_domain
        with Store(settings.database_path) as store:
            items = feed_items(store, ref)
            reader = self.reader(store, ref.email)
        links: dict[str, str] = {}
        for item in items:
            if item.issue.key not in links:
                issue_ref = IssueRef(ref.email, item.issue.key, item.issue.dry_run)
                links[item.issue.key] = archive_url(settings.base_url, issue_ref, self.key)
        return self.feeds.render(
            digest_name=settings.digest_name,
            reader=(reader.name if reader and reader.name else ref.email),
            feed_id=feed_id(domain, ref.email, ref.dry_run),
            self_url=self_url,
            entries=[
                feed_entry(item, domain=domain, email=ref.email, archive_url=links[item.issue.key])
                for item in items
            ],
        )

    # -- handlers --------------------------------------------------------------------------

    async def issue_page(self, request: Request) -> Response:
        ref = read_archive_token(request.path_params["token"], self.key)
        if ref is None:
            return self.error_page(BAD_LINK, 400)
        html = await run_in_threadpool(self.issue_html, ref)
        if html is None:
            return self.error_page(NOT_SENT, 404)
        return HTMLResponse(html, headers=self.headers)

    async def feed(self, request: Request) -> Response:
        ref = read_feed_token(request.path_params["token"], self.key)
        if ref is None:
            return self.error_page(BAD_LINK, 400)
        self_url = self.settings.base_url + request.url.path
        xml = await run_in_threadpool(self.feed_xml, ref, self_url)
        return Response(xml, media_type=ATOM, headers=self.headers)


def archive_routes(
    settings: Settings, *, error_page: ErrorPage, headers: Mapping[str, str]
) -> list[Route]:
    """The archive's routes, for `web.create_app`."""
    views = ArchiveViews(settings, error_page=error_page, headers=headers)
    return [
        Route("/archive/{token}", views.issue_page),
        Route("/feed/{token}.atom", views.feed),
    ]
