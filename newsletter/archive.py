"""A reader's sent issues, shown again: one issue as its web page, and the papers of all of
them as the entries of their feed.

Nothing is stored for this at send time. The ledger already keeps, for every issue and
recipient, the papers picked in their order with the score and the why-line
(`delivery_papers`), and a delivered paper stays in the database even when its dump is
forgotten. So an archived issue is rendered again from the ledger, with the same
templates, the same picks and the same why-lines as the email. Storing each recipient's
rendered HTML instead would cost about 30 KB per recipient per issue (3 GB for one issue
to 100,000 readers) to save a render of a few milliseconds when someone clicks "view in
browser". What may differ from the email: the papers' counts (upvotes, comments) are the
newest the database has, and template edits since the send show.

Only issues whose message to the reader went out (`sent`, or `unknown`: the server took
it) are shown; a reader who has left the list keeps their archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from newsletter.archive_links import FeedRef, IssueRef, archive_url
from newsletter.daily_pages import PageLink
from newsletter.ranking import Pick
from newsletter.settings import Settings
from newsletter.store import Issue, Store
from newsletter.subscribers import Subscriber, Topic
from newsletter.wording import format_date

PAST_ISSUES = 12  # earlier issues linked from an archived one
FEED_ISSUES = 50  # issues a feed covers, newest first
# The topics of a reader who is no longer on the list (their archive stays readable).
FORMER_TOPICS = ("the topics you chose",)


@dataclass(frozen=True)
class ArchivedIssue:
    """One reader's copy of one issue, ready to render."""

    issue: Issue
    reader: Subscriber
    picks: list[Pick]
    pages: dict[str, date]  # paper key -> the Daily Papers page it came from
    past: list[PageLink]  # the reader's other issues, newest first


@dataclass(frozen=True)
class FeedItem:
    """One paper a reader was sent, in one issue."""

    issue: Issue
    position: int
    pick: Pick


def stand_in(email: str) -> Subscriber:
    """The reader of an archived issue who is no longer on the subscriber list."""
    return Subscriber(email=email, topics=tuple(Topic(topic=t) for t in FORMER_TOPICS))


def stored_picks(store: Store, issue: Issue, email: str) -> list[Pick]:
    """The picks frozen into `issue` for `email`, in their order, as the email had them
    (a paper missing from the database is left out)."""
    planned = store.planned_picks(issue.id, email)
    papers = store.papers_by_key(p.paper_key for p in planned)
    return [Pick(papers[p.paper_key], p.score, (), p.why) for p in planned if p.paper_key in papers]


def archived_issue(
    settings: Settings, store: Store, ref: IssueRef, reader: Subscriber | None
) -> ArchivedIssue | None:
    """The issue `ref` names as its reader received it, or None when there is no such
    issue or its message to them never went out."""
    received = store.received_issues(ref.email, dry_run=ref.dry_run)
    issue = next((issue for issue in received if issue.key == ref.issue_key), None)
    if issue is None:
        return None
    picks = stored_picks(store, issue, ref.email)
    key = settings.signing_key(dry_run=True)
    past = [
        PageLink(
            format_date(other.issue_date),
            archive_url(settings.base_url, IssueRef(ref.email, other.key, other.dry_run), key),
        )
        for other in received
        if other.id != issue.id
    ][:PAST_ISSUES]
    return ArchivedIssue(
        issue=issue,
        reader=reader or stand_in(ref.email),
        picks=picks,
        pages=store.page_dates_of(pick.paper.key for pick in picks),
        past=past,
    )


def feed_items(store: Store, ref: FeedRef, *, issues: int = FEED_ISSUES) -> list[FeedItem]:
    """Every paper the reader was sent in their last `issues` issues, newest issue first
    and in each issue's order."""
    items: list[FeedItem] = []
    for issue in store.received_issues(ref.email, dry_run=ref.dry_run, limit=issues):
        picks = stored_picks(store, issue, ref.email)
        items += [FeedItem(issue, index, pick) for index, pick in enumerate(picks)]
    return items
