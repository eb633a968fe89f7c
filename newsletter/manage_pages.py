"""The reader's own pages: `/manage/<token>` (preferences) and `/feedback/<token>/...`.

`/manage/<token>` (linked from every issue, the confirmation email and page) edits the
reader's row of the live list (roster.py): topics, excludes, frequency and number of
papers; pause and resume; unsubscribe (the same `leave` as the one-click link). It also
lists the papers the reader marked, each with a button that undoes the mark. Changes
apply to the next issue; the operator's file is never written, except that leaving
marks a listed entry `active: false` as it always did.

`/feedback/<token>/<more|less>/<paper key>` shows the paper and one button; only the
POST records the mark (mail scanners GET every link). Every form carries the CSRF
token (see reader_pages.py).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import feedback, links, roster
from newsletter.errors import SignupError
from newsletter.membership import leave
from newsletter.reader_pages import Pages
from newsletter.signup import requested_subscriber, split_topics
from newsletter.store import Store
from newsletter.subscribers import unsubscribe_url

ACTIONS = ("save", "pause", "resume", "unsubscribe", "undo")


class ManagePages(Pages):
    """The handlers of /manage/<token> and /feedback/<token>/<direction>/<paper>."""

    def routes(self) -> list[Route]:
        return [
            Route("/manage/{token}", self.manage, methods=["GET", "POST"]),
            Route(
                "/feedback/{token}/{direction}/{paper:path}",
                self.feedback,
                methods=["GET", "POST"],
            ),
        ]

    # -- /manage/<token> ---------------------------------------------------------------

    def act(self, email: str, action: str, form: dict[str, str]) -> str:
        """Carry out one form's action; returns what to tell the reader. SignupError
        says which field is wrong (nothing is changed then)."""
        with Store(self.settings.database_path) as store:
            member = roster.find(store, email)
            if member is None:
                raise SignupError("This address has no subscription.")
            if action == "save":
                current = member.subscriber
                wanted = requested_subscriber(
                    current.email,
                    split_topics(form.get("topics", "")),
                    frequency=form.get("frequency", current.frequency),
                    exclude=split_topics(form.get("exclude", "")),
                    max_papers=_number(form.get("max_papers", "")),
                ).model_copy(update={"name": current.name})
                roster.update_preferences(store, wanted)
                return "Saved. The next issue follows your new preferences."
            if action == "pause":
                roster.set_state(store, email, "paused")
                return "Paused: no issue is sent until you resume."
            if action == "resume":
                store.forget_unsubscribe(email)
                roster.set_state(store, email, "active")
                return "Resumed: the next issue will be sent to you."
            if action == "unsubscribe":
                leave(self.settings, store, email, source="preferences page")
                return "You are unsubscribed: no more issues will be sent to you."
            if action == "undo":
                feedback.unmark(store, email, form.get("paper", ""))
                return "The mark was removed."
        raise SignupError("Unknown action; reload the page and try again.")

    def load(self, email: str) -> tuple[roster.Member | None, list[feedback.Mark]]:
        with Store(self.settings.database_path) as store:
            roster.sync(self.settings, store, strict=False)
            member = roster.find(store, email)
            marks = feedback.marks_of(store, [email]).get(email, [])
        return member, marks

    async def manage(self, request: Request) -> Response:
        email = links.read_email("manage", request.path_params["token"], self.token_key)
        if email is None:
            return self.message(
                request,
                "This link does not work",
                "It is incomplete or was not made by this digest. Use the "
                "\u201cManage your subscription\u201d link of your latest issue.",
                400,
            )
        notice = problem = None
        if request.method == "POST":
            form = _fields(await request.form())
            try:
                notice = await run_in_threadpool(self.act, email, form.get("action", ""), form)
            except SignupError as exc:
                problem = str(exc)
        member, marks = await run_in_threadpool(self.load, email)
        if member is None:
            return self.message(
                request,
                "No subscription yet",
                "This address is not subscribed. If you signed up, follow the link in the "
                "confirmation email first.",
                404,
            )
        return self.page(
            request,
            "manage.html.j2",
            400 if problem else 200,
            member=member,
            subscriber=member.subscriber,
            topics="\n".join(t.topic for t in member.subscriber.topics),
            exclude="\n".join(member.subscriber.exclude),
            marks=marks,
            notice=notice,
            problem=problem,
            unsubscribe_url=unsubscribe_url(self.settings.base_url, email, self.token_key),
        )

    # -- /feedback/<token>/<direction>/<paper> -----------------------------------------

    def record(
        self, email: str, paper_key: str, direction: links.Direction, *, save: bool
    ) -> str | None:
        """The marked paper's title (None: no such paper); with `save`, the mark is stored."""
        with Store(self.settings.database_path) as store:
            found = store.papers_by_key([paper_key]).get(paper_key)
            if found is None:
                return None
            if save:
                feedback.mark(store, email, paper_key, direction)
        return found.title

    async def feedback(self, request: Request) -> Response:
        email = links.read_email("feedback", request.path_params["token"], self.token_key)
        direction = request.path_params["direction"]
        if email is None or direction not in links.DIRECTIONS:
            return self.message(
                request,
                "This link does not work",
                "It is incomplete or was not made by this digest; nothing was recorded.",
                400,
            )
        paper_key = request.path_params["paper"]
        save = request.method == "POST"
        title = await run_in_threadpool(self.record, email, paper_key, direction, save=save)
        if title is None:
            return self.message(
                request,
                "Paper not found",
                "This paper is no longer in the digest's database; nothing was recorded.",
                404,
            )
        return self.page(
            request,
            "feedback.html.j2",
            email=email,
            title=title,
            direction=direction,
            done=save,
            manage_url=links.manage_url(self.settings.base_url, email, self.token_key),
        )


def _fields(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _number(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise SignupError("The number of papers must be a whole number between 1 and 100.")
    return int(text)
