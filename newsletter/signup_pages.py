"""The sign-up pages: `/subscribe` (the form) and `/confirm/<token>` (double opt-in).

POST /subscribe answers the same page ("check your inbox") whatever the address: a new
one is sent a confirmation link, one that already receives the digest a "you are
already subscribed" email with its preferences link, so the form tells nobody which
addresses are known. A filled hidden honeypot field (bots fill every field), and a
second and third request for one address within the limit, get the same answer and
send nothing. A client over its limit (NEWSLETTER_SIGNUP_LIMIT_PER_CLIENT) gets 429.
The limits are counted in memory by the `limits` library (one server process).

GET /confirm/<token> shows a button and changes nothing (mail scanners follow links);
its POST confirms. The link expires after NEWSLETTER_CONFIRM_MAX_AGE hours.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import links, roster, signup
from newsletter.errors import DeliveryError, SignupError
from newsletter.notices import Notices
from newsletter.reader_pages import Pages, client_address
from newsletter.settings import Settings
from newsletter.store import Store
from newsletter.subscribers import Subscriber
from newsletter.suggest import suggested_topics

log = logging.getLogger(__name__)

HONEYPOT = "website"  # a field people never see; bots fill it
SUGGESTION_DAYS = 30  # topics are suggested from the pages of this many recent days


class Throttle:
    """Sign-ups allowed per address and per client, in a moving window."""

    def __init__(self, settings: Settings) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_address = parse(settings.signup_limit_per_address)
        self.per_client = parse(settings.signup_limit_per_client)

    def client_allowed(self, client: str) -> bool:
        return self.limiter.hit(self.per_client, "client", client)

    def address_allowed(self, email: str) -> bool:
        return self.limiter.hit(self.per_address, "address", email.strip().lower())


class SignupPages(Pages):
    """The handlers of /subscribe and /confirm/<token>."""

    def __init__(self, settings: Settings, token_key: str, *, dry_run: bool) -> None:
        super().__init__(settings, token_key)
        self.notices = Notices(settings, dry_run=dry_run)
        self.throttle = Throttle(settings)
        self.max_age = int(settings.confirm_max_age * 3600)

    def routes(self) -> list[Route]:
        return [
            Route("/subscribe", self.subscribe, methods=["GET", "POST"]),
            Route("/confirm/{token}", self.confirm, methods=["GET", "POST"]),
        ]

    # -- /subscribe --------------------------------------------------------------------

    def suggestions(self) -> list[str]:
        with Store(self.settings.database_path) as store:
            newest = store.latest_page_date() or date.today()
            papers = store.papers_on_pages_between(newest - timedelta(days=SUGGESTION_DAYS), newest)
        return suggested_topics(papers)

    async def form(self, request: Request, status: int = 200, **values: str) -> Response:
        return self.page(
            request,
            "subscribe.html.j2",
            status,
            suggestions=await run_in_threadpool(self.suggestions),
            honeypot=HONEYPOT,
            email=values.get("email", ""),
            topics=values.get("topics", ""),
            frequency=values.get("frequency", "daily"),
            problem=values.get("problem"),
        )

    async def subscribe(self, request: Request) -> Response:
        if request.method != "POST":
            return await self.form(request)
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in ("email", "topics", "frequency")}
        if not self.throttle.client_allowed(client_address(request)):
            return self.message(
                request,
                "Too many sign-ups",
                "Too many sign-ups came from your network in a short time. Wait an hour "
                "and try again.",
                429,
            )
        try:
            wanted = signup.requested_subscriber(
                values["email"],
                signup.split_topics(values["topics"]),
                frequency=values["frequency"] or "daily",
            )
        except SignupError as exc:
            return await self.form(request, 400, **values, problem=str(exc))
        if str(form.get(HONEYPOT) or ""):
            log.info("sign-up ignored: the hidden field was filled (a bot)")
        elif not self.throttle.address_allowed(wanted.key):
            log.info("sign-up for %s ignored: too many for this address", wanted.key)
        else:
            try:
                await self.send_answer(wanted)
            except DeliveryError as exc:
                log.error("%s", exc)
                return self.message(
                    request,
                    "Could not send the email",
                    "The confirmation email could not be sent just now. Try again in a few "
                    "minutes.",
                    503,
                )
        return self.page(request, "subscribe_sent.html.j2", email=wanted.email)

    async def send_answer(self, wanted: Subscriber) -> None:
        """Record the sign-up and send its confirmation, or the manage link to an address
        that already receives the digest."""
        answer = await run_in_threadpool(self.record, wanted)
        base = self.settings.base_url
        manage = links.manage_url(base, wanted.email, self.token_key)
        if answer == "already":
            notice = self.notices.render("already", wanted.email, manage_url=manage)
        else:
            notice = self.notices.render(
                "confirm",
                wanted.email,
                topics=[t.topic for t in wanted.topics],
                frequency=wanted.frequency,
                confirm_url=links.confirm_url(base, wanted.email, self.token_key),
                manage_url=manage,
                hours=f"{self.settings.confirm_max_age:g}",
            )
        await self.notices.deliver(notice)

    def record(self, wanted: Subscriber) -> signup.Answer:
        with Store(self.settings.database_path) as store:
            return signup.request(self.settings, store, wanted)

    # -- /confirm/<token> --------------------------------------------------------------

    def confirm_now(self, email: str) -> signup.Confirmed:
        with Store(self.settings.database_path) as store:
            return signup.confirm(self.settings, store, email)

    def state(self, email: str) -> str:
        """ "ask" (a sign-up waits), "already" (active), or "expired"."""
        with Store(self.settings.database_path) as store:
            signup.purge(self.settings, store)
            if signup.is_pending(store, email):
                return "ask"
            member = roster.find(store, email)
        return "already" if member is not None and member.active else "expired"

    async def confirm(self, request: Request) -> Response:
        email = links.read_email(
            "confirm", request.path_params["token"], self.token_key, max_age=self.max_age
        )
        if email is None:
            return self.message(
                request,
                "This confirmation link does not work",
                "It has expired or is incomplete. Sign up again to get a new one.",
                400,
            )
        if request.method == "POST":
            state: str = await run_in_threadpool(self.confirm_now, email)
        else:
            state = await run_in_threadpool(self.state, email)
        return self.page(
            request,
            "confirm.html.j2",
            410 if state == "expired" else 200,
            email=email,
            state=state,
            manage_url=links.manage_url(self.settings.base_url, email, self.token_key),
        )
