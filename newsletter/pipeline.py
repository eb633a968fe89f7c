"""One issue end to end: ingest dumps, rank for each subscriber, render, deliver.

This module calls the stages in order and owns the rules that join them: which papers
an issue may hold, who receives it, how a re-run finds the work left to do, and what
forgetting a dump takes with it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TypeVar

from newsletter import collector, feedback, links
from newsletter.compose import (
    CHUNK,
    IssueContext,
    Job,
    MessageMaker,
    MessagePool,
    worker_count,
)
from newsletter.delivery import OutboxWriter, Outgoing, send_over_smtp
from newsletter.dumps import PAGE_TEXT, Dump, Paper, decode_dump
from newsletter.errors import DumpError, NotFoundError
from newsletter.preflight import require_safe_send
from newsletter.ranking import Match, Pick, Ranker
from newsletter.render import Digest, Renderer
from newsletter.roster import receiving_among, receiving_by_email, receiving_chunks, sync
from newsletter.semantic import Embedder, load_embedder, paper_vectors, topic_vectors
from newsletter.settings import Settings
from newsletter.store import DumpRecord, Forgotten, Issue, PlannedPick, StagedPlan, Store
from newsletter.subscribers import Subscriber, unsubscribe_url

WEEKLY_WINDOW = timedelta(days=7)
T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    """What one file gave: papers parsed, how many were new, warnings about skipped entries."""

    file: str
    papers: int
    new: int
    duplicate_file: bool
    warnings: list[str] = field(default_factory=list)
    shape: str = PAGE_TEXT


def embedder_for(settings: Settings) -> Embedder | None:
    """The semantic model when `ranking_model=semantic` and it is installed, else None
    (rank lexically; `load_embedder` says so once)."""
    return load_embedder() if settings.ranking_model == "semantic" else None


RANK_CHUNK = 10_000  # subscribers loaded and ranked at once: all an issue's build holds


class PoolRanking:
    """One pool of papers indexed once (with its vectors, when ranking semantically),
    then ranked against any number of chunks of subscribers."""

    def __init__(
        self, store: Store, pool: Sequence[Paper], *, today: date, embedder: Embedder | None
    ) -> None:
        vectors = paper_vectors(store, embedder, pool) if embedder is not None else None
        self.ranker = Ranker(pool, today=today, paper_vectors=vectors)
        self.embedder = embedder

    def rank(
        self,
        chunk: Sequence[Subscriber],
        *,
        delivered: dict[str, set[str]],
        marks: Mapping[str, Sequence[feedback.Mark]],
    ) -> list[list[Pick]]:
        """The picks of each subscriber of `chunk` (same order); each distinct topic of
        the chunk is embedded once. The readers' "more / less like this" marks re-score
        their own picks."""
        embedder = self.embedder
        topics = topic_vectors(embedder, chunk) if embedder is not None else None
        ranked = self.ranker.rank(chunk, delivered=delivered, topic_vectors=topics)
        return feedback.adjust(
            self.ranker, chunk, ranked, marks, delivered=delivered, topic_vectors=topics
        )


def rank_pool(
    store: Store,
    pool: Sequence[Paper],
    subscribers: Sequence[Subscriber],
    *,
    today: date,
    delivered: dict[str, set[str]],
    embedder: Embedder | None = None,
) -> Iterator[tuple[Subscriber, list[Pick]]]:
    """Each subscriber with their picks from `pool`, ranked RANK_CHUNK at a time against
    one index (the same picks as all at once: each subscriber is ranked on their own).
    With an embedder, paper vectors come from the store (embedded now only if missing)."""
    ranking = PoolRanking(store, pool, today=today, embedder=embedder)
    marks = feedback.marks_of(
        store, [s.key for s in subscribers] if len(subscribers) < 1000 else None
    )
    for start in range(0, len(subscribers), RANK_CHUNK):
        chunk = subscribers[start : start + RANK_CHUNK]
        ranked = ranking.rank(chunk, delivered=delivered, marks=marks)
        yield from zip(chunk, ranked, strict=True)


def ingest_file(store: Store, path: Path, embedder: Embedder | None = None) -> IngestReport:
    """Parse one dump file and record it; raises DumpError for a file that is not a dump.
    With an embedder, the new papers' vectors are computed and stored now, once."""
    try:
        data = path.read_bytes()
        received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError as exc:
        raise DumpError(f"cannot read the file: {exc.strerror or exc}", path=path) from exc
    return ingest_data(store, data, name=str(path), received_at=received_at, embedder=embedder)


def ingest_data(
    store: Store,
    data: bytes,
    *,
    name: str,
    received_at: datetime,
    embedder: Embedder | None = None,
    parsed: Dump | None = None,
) -> IngestReport:
    """Parse the bytes of one dump (any shape) and record it; DumpError if not a dump.
    `parsed`: the dump already parsed from `data` (the service parses in a child
    process). With an embedder, the new papers' vectors are computed and stored now."""
    dump = parsed or decode_dump(data, name=name, received_at=received_at)
    result = store.ingest(dump, data=data, received_at=received_at)
    if embedder is not None:
        # The stored records: a paper that joined a row by its arXiv id has that row's key.
        paper_vectors(store, embedder, store.papers_by_key(result.keys).values())
    return IngestReport(
        file=name,
        papers=len(dump.papers),
        new=result.new_papers,
        duplicate_file=not result.new,
        warnings=list(dump.warnings),
        shape=dump.shape,
    )


def find_dump(store: Store, ref: str) -> DumpRecord:
    """The dump `ref` names: its id as `newsletter dumps` shows it, or the file name or
    path it was ingested under (the path as given then, the same file by another path,
    or the bare file name when only one dump has it)."""
    records = store.dumps()
    text = ref.strip()
    if text.isdigit():
        for record in records:
            if record.id == int(text):
                return record
    ways: list[Callable[[DumpRecord], bool]] = [
        lambda record: record.name == text,
        lambda record: os.path.abspath(record.name) == os.path.abspath(text),
        lambda record: Path(record.name).name == Path(text).name,
    ]
    for same in ways:
        found = [record for record in records if same(record)]
        if len(found) == 1:
            return found[0]
        if found:
            ids = ", ".join(str(record.id) for record in found)
            raise NotFoundError(
                f"{len(found)} dumps were ingested as {ref!r} (ids {ids}); name one by its id, "
                "as 'newsletter dumps' shows them"
            )
    raise NotFoundError(
        f"there is no dump {ref!r}; 'newsletter dumps' lists the ingested dumps with their "
        "ids and file names"
    )


def forget_dump(settings: Settings, store: Store, ref: str) -> Forgotten:
    """Forget the dump `ref` names (see `find_dump` and `Store.forget`), and the outbox
    folders of the dry-run issues that went with it."""
    record = find_dump(store, ref)
    forgotten = store.forget(record.id)
    if forgotten is None:  # forgotten by another process since it was looked up
        raise NotFoundError(f"dump {record.id} ({record.name}) was forgotten meanwhile")
    for key in forgotten.dry_runs:
        shutil.rmtree(OutboxWriter.folder_for(settings.outbox_dir, key), ignore_errors=True)
    return forgotten


def issue_date_now(settings: Settings) -> date:
    """Today in the configured time zone: the date an issue built now carries."""
    return datetime.now(settings.zone).date()


def is_receiving(subscriber: Subscriber, unsubscribed: set[str]) -> bool:
    return subscriber.active and subscriber.key not in unsubscribed


def candidate_papers(
    store: Store, *, issue_date: date, frequency: str, until_dump_id: int | None = None
) -> list[Paper]:
    """The pool an issue draws from (dumps up to `until_dump_id`, default all).

    Daily: papers first seen since the last issue that was really sent.
    Weekly: papers first seen in pages dated within the seven days up to the issue date.
    Papers a subscriber already received are removed later, per subscriber.
    """
    if frequency == "weekly":
        return store.papers_on_pages_between(
            issue_date - WEEKLY_WINDOW, issue_date, until_dump_id=until_dump_id
        )
    last = store.last_real_issue()
    return store.papers_since(last.last_dump_id if last else 0, until_dump_id=until_dump_id)


@dataclass(frozen=True)
class Plan:
    """Who would get what in the next issue (nothing is stored yet)."""

    issue_date: date
    last_dump_id: int
    picks: dict[str, list[Pick]]  # by subscriber key; only subscribers with picks
    subscribers: list[Subscriber]


Ranked = list[tuple[Subscriber, list[Pick]]]  # one chunk: subscribers with their picks


def _ranked_for_issue(
    store: Store,
    chunks: Iterable[Sequence[Subscriber]],
    *,
    issue_date: date,
    weekly_day: int,
    embedder: Embedder | None,
    until_dump_id: int,
) -> Iterator[Ranked]:
    """For each chunk of subscribers, its receiving subscribers with picks (in the
    chunk's order), for an issue on `issue_date` covering the dumps up to
    `until_dump_id`. Weekly subscribers are included only on `weekly_day` (0 = Monday).
    Each frequency's pool is indexed once, at its first subscriber; what a chunk's
    readers received and marked is read with the chunk."""
    unsubscribed = store.unsubscribed()
    rankings: dict[str, PoolRanking | None] = {}
    by_pool: dict[tuple[str, ...], PoolRanking] = {}  # the two pools are often the same

    def ranking_for(frequency: str) -> PoolRanking | None:
        if frequency not in rankings:
            pool: list[Paper] = []
            if frequency == "daily" or issue_date.weekday() == weekly_day:
                pool = candidate_papers(
                    store, issue_date=issue_date, frequency=frequency, until_dump_id=until_dump_id
                )
            same = tuple(paper.key for paper in pool)
            if pool and same not in by_pool:
                by_pool[same] = PoolRanking(store, pool, today=issue_date, embedder=embedder)
            rankings[frequency] = by_pool.get(same)
        return rankings[frequency]

    for chunk in chunks:
        receiving = [s for s in chunk if is_receiving(s, unsubscribed)]
        keys = [s.key for s in receiving]
        delivered = store.delivered_paper_keys(keys)
        marks = feedback.marks_of(store, keys)
        picks: list[list[Pick]] = [[] for _ in receiving]
        for frequency in ("daily", "weekly"):
            where = [i for i, s in enumerate(receiving) if s.frequency == frequency]
            ranking = ranking_for(frequency) if where else None
            if ranking is not None:
                group = [receiving[i] for i in where]
                ranked = ranking.rank(group, delivered=delivered, marks=marks)
                for i, chosen in zip(where, ranked, strict=True):
                    picks[i] = chosen
        yield [(s, chosen) for s, chosen in zip(receiving, picks, strict=True) if chosen]


def plan_issue(
    store: Store,
    subscribers: Sequence[Subscriber],
    *,
    issue_date: date,
    weekly_day: int = 0,
    embedder: Embedder | None = None,
) -> Plan:
    """Who would get what in an issue on `issue_date` (nothing is stored)."""
    # The dumps a plan covers are fixed first: a dump ingested while it ranks (the
    # service ingests and sends at the same time) belongs to the next issue, not lost.
    until = store.latest_dump_id()
    ranked = _ranked_for_issue(
        store,
        _chunks_by_key(subscribers),
        issue_date=issue_date,
        weekly_day=weekly_day,
        embedder=embedder,
        until_dump_id=until,
    )
    picks = {subscriber.key: chosen for chunk in ranked for subscriber, chosen in chunk}
    return Plan(issue_date, until, picks, list(subscribers))


def _chunks_by_key(subscribers: Sequence[Subscriber]) -> Iterator[list[Subscriber]]:
    """`subscribers` in the order of their key (the plan's order), RANK_CHUNK at a time."""
    ordered = sorted(subscribers, key=lambda subscriber: subscriber.key)
    for start in range(0, len(ordered), RANK_CHUNK):
        yield ordered[start : start + RANK_CHUNK]


PlanRow = tuple[str, list[PlannedPick]]  # a recipient's key and picks, best first


class Fingerprint:
    """What a plan holds, as a short hash fed row by row in the order of the
    recipients' keys (the plan is built in that order): who gets which papers, with
    which scores. A dry run is rebuilt when it changes."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def rows(self, rows: Iterable[PlanRow]) -> Iterator[PlanRow]:
        """`rows`, passed through, each added to the fingerprint."""
        update = self._digest.update
        for key, picks in rows:
            # One update per row: the same bytes as one per key and one per pick.
            parts = [key, *(f"\0{pick.paper_key}{pick.score:.6f}" for pick in picks)]
            update("".join(parts).encode())
            yield key, picks

    def hexdigest(self) -> str:
        return self._digest.hexdigest()[:16]


def _plan_rows(chunks: Iterable[Ranked]) -> Iterator[PlanRow]:
    """The plan as compact ledger rows, a chunk at a time. A pick's reason is worded
    once per distinct set of matches (most readers who get a paper get it for the same
    topic: wording it per pick cost more than the ranking)."""
    worded: dict[tuple[Match, ...], str] = {}  # by value, across chunks
    for chunk in chunks:
        # By the identities of the chunk's Match objects first (cheaper than hashing
        # them): they stay alive, held by its picks, while this cache is used.
        whys: dict[tuple[int, ...], str] = {}
        for subscriber, chosen in chunk:
            yield subscriber.key, [_planned(pick, whys, worded) for pick in chosen]


def _planned(
    pick: Pick, whys: dict[tuple[int, ...], str], worded: dict[tuple[Match, ...], str]
) -> PlannedPick:
    if pick.reason:
        return PlannedPick(pick.paper.key, pick.score, pick.reason)
    same = tuple(map(id, pick.matches))
    why = whys.get(same)
    if why is None:
        why = worded.get(pick.matches)
        if why is None:
            why = worded[pick.matches] = pick.why
        whys[same] = why
    return PlannedPick(pick.paper.key, pick.score, why)


def _stage_plan(
    settings: Settings,
    store: Store,
    subscribers: Sequence[Subscriber] | None,
    *,
    issue_date: date,
    until_dump_id: int,
) -> tuple[StagedPlan, str]:
    """Rank `subscribers` (default: the live list, RANK_CHUNK at a time) and stage the
    plan in the store as it is made; returns it and its fingerprint."""
    started = time.monotonic()
    reading = _Reading(
        receiving_chunks(settings, store, size=RANK_CHUNK)
        if subscribers is None
        else _chunks_by_key(subscribers)
    )
    ranked = _ranked_for_issue(
        store,
        reading.chunks(),
        issue_date=issue_date,
        weekly_day=settings.weekly_day,
        embedder=embedder_for(settings),
        until_dump_id=until_dump_id,
    )
    fingerprint = Fingerprint()
    with collector.paused():  # the plan's objects hold no cycles (see `collector`)
        staged = store.stage_plan(fingerprint.rows(_plan_rows(ranked)))
    log.info("loaded %d subscribers in %.1f s", reading.count, reading.seconds)
    log.info(
        "planned %d recipient(s), %d pick(s) in %.1f s",
        staged.recipients,
        staged.picks,
        time.monotonic() - started,
    )
    return staged, fingerprint.hexdigest()


class _Reading:
    """Chunks of subscribers passed through, counted and their reading timed."""

    def __init__(self, chunks: Iterator[list[Subscriber]]) -> None:
        self._chunks = chunks
        self.count = 0
        self.seconds = 0.0

    def chunks(self) -> Iterator[list[Subscriber]]:
        while True:
            started = time.monotonic()
            chunk = next(self._chunks, None)
            self.seconds += time.monotonic() - started
            if chunk is None:
                return
            self.count += len(chunk)
            yield chunk


def build_issue(
    settings: Settings,
    store: Store,
    subscribers: Sequence[Subscriber] | None = None,
    *,
    dry_run: bool,
    issue_date: date,
    key: str | None = None,
) -> Issue:
    """Find or freeze the issue for `issue_date`, for `subscribers` (default: the live
    list, read RANK_CHUNK at a time: the plan is ranked chunk by chunk and staged in
    the database as it is made, so no list of all readers or picks is held).

    A real issue, once built, never changes: re-runs send what is left of it. A dry-run
    issue is rebuilt when what it would contain changed (new dumps, edited subscribers),
    so the outbox always shows one current set; the new plan replaces the old in one
    transaction.
    """
    key = key or issue_date.isoformat()
    if subscribers is None:
        # Even for an issue already built: who may still receive it is read from the list.
        sync(settings, store)
    existing = store.find_issue(key, dry_run=dry_run)
    if existing is not None and not dry_run:
        return existing
    # The dumps the issue covers are fixed first: one ingested while it ranks (the
    # service ingests and sends at the same time) belongs to the next issue, not lost.
    last_dump_id = store.latest_dump_id()
    staged, fingerprint = _stage_plan(
        settings, store, subscribers, issue_date=issue_date, until_dump_id=last_dump_id
    )
    if existing is not None and existing.fingerprint == fingerprint:
        store.discard_staged()
        return existing
    issue = store.create_issue(
        key=key,
        dry_run=dry_run,
        issue_date=issue_date,
        last_dump_id=last_dump_id,
        fingerprint=fingerprint,
        plan=staged,
        replacing=existing.id if existing is not None else None,
    )
    if existing is not None:
        shutil.rmtree(OutboxWriter.folder_for(settings.outbox_dir, key), ignore_errors=True)
    return issue


def next_picks(settings: Settings, store: Store, subscriber: Subscriber) -> list[Pick]:
    """What one subscriber would receive if the next issue were built now."""
    today = issue_date_now(settings)
    pool = candidate_papers(store, issue_date=today, frequency=subscriber.frequency)
    if not pool:
        return []
    delivered = store.delivered_paper_keys([subscriber.key])
    ((_, picks),) = rank_pool(
        store, pool, [subscriber], today=today, delivered=delivered, embedder=embedder_for(settings)
    )
    return picks


def next_picks_many(
    settings: Settings,
    store: Store,
    subscribers: Sequence[Subscriber],
    *,
    issue_date: date | None = None,
) -> dict[str, list[Pick]]:
    """`next_picks` for many subscribers at once, by subscriber key: one index per
    frequency's pool and one look-up of what each already received, instead of one of
    each per subscriber (the same picks: each subscriber is still ranked on their own).
    `issue_date`: the date the next issue carries (default: today)."""
    today = issue_date or issue_date_now(settings)
    embedder = embedder_for(settings)
    picks: dict[str, list[Pick]] = {subscriber.key: [] for subscriber in subscribers}
    delivered = store.delivered_paper_keys(picks.keys())
    for frequency in ("daily", "weekly"):
        group = [s for s in subscribers if s.frequency == frequency]
        pool = candidate_papers(store, issue_date=today, frequency=frequency) if group else []
        if not pool:
            continue
        ranked = rank_pool(store, pool, group, today=today, delivered=delivered, embedder=embedder)
        picks.update((subscriber.key, chosen) for subscriber, chosen in ranked)
    return picks


def preview_digest(
    settings: Settings, store: Store, subscriber: Subscriber, renderer: Renderer | None = None
) -> tuple[Digest | None, list[Pick]]:
    """The rendered next issue of one subscriber (None when nothing matches); sends nothing."""
    picks = next_picks(settings, store, subscriber)
    if not picks:
        return None, picks
    renderer = renderer or Renderer(settings.templates_dir)
    key = settings.signing_key(dry_run=True)
    digest = renderer.render(
        subscriber=subscriber,
        picks=picks,
        issue_date=issue_date_now(settings),
        unsubscribe_url=unsubscribe_url(settings.base_url, subscriber.email, key),
        pages=store.page_dates_of(pick.paper.key for pick in picks),
        digest_name=settings.digest_name,
        manage_url=links.manage_url(settings.base_url, subscriber.email, key),
        feedback_url=links.feedback_base(settings.base_url, subscriber.email, key),
    )
    return digest, picks


@dataclass(frozen=True)
class RecipientLine:
    email: str
    papers: int
    top_title: str
    top_score: float
    path: Path | None


@dataclass
class SendReport:
    issue: Issue
    counts: dict[str, int]
    recipients: list[RecipientLine]
    folder: Path | None = None
    skipped: list[str] = field(default_factory=list)
    paused: str | None = None
    resent_in_flight: int = 0
    written_now: int = 0  # dry run: files written by this run (the rest were already there)
    sent_now: int = 0  # SMTP: messages this run handed over and the server accepted
    failed_now: int = 0  # SMTP: messages this run tried that failed (now or for good)
    unknown_now: int = 0  # SMTP: handed over by this run, no reply in time
    stopped: bool = False  # a clean stop was asked for before every message went out

    @property
    def complete(self) -> bool:
        """Every selected recipient ended `sent` (skipped ones are no longer selected)."""
        unsettled = ("pending", "sending", "failed", "unknown")
        return all(self.counts.get(s, 0) == 0 for s in unsettled)


SEND_PAGE = 1000  # ledger rows read at once when sending: the readers a send holds


def _skip_departed(store: Store, issue: Issue) -> list[str]:
    """Mark `skipped` the pending rows of readers who left or paused since the issue
    was built (before anything is sent); returns their addresses."""
    skipped: list[str] = []
    for emails in store.pending_pages(issue.id, size=SEND_PAGE):
        here = receiving_among(store, emails)
        skipped += _skip(store, issue, [email for email in emails if email not in here])
    return skipped


def _skip(store: Store, issue: Issue, emails: Sequence[str]) -> Sequence[str]:
    for email in emails:
        store.mark(issue.id, email, "skipped", message="unsubscribed or inactive")
    return emails


def _pending_readers(store: Store, issue: Issue, skipped: list[str]) -> Iterator[Subscriber]:
    """The readers of the issue's pending rows, in ledger order, loaded SEND_PAGE at a
    time from the live list. One who left since `_skip_departed` ran is skipped now
    (added to `skipped`)."""
    for emails in store.pending_pages(issue.id, size=SEND_PAGE):
        readers = receiving_by_email(store, emails)
        skipped += _skip(store, issue, [email for email in emails if email not in readers])
        yield from (readers[email] for email in emails if email in readers)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def dry_run(settings: Settings, store: Store, *, issue_date: date | None = None) -> SendReport:
    """Write the issue as one `.eml` per recipient under `outbox_dir/<issue>/`.

    Large issues are composed and written by worker processes (see `compose`), chunk by
    chunk, while this process keeps the ledger: a chunk's rows are claimed `sending` in
    one transaction before it is handed out, and marked `sent` in one transaction after
    its files are renamed into place. A crash leaves at most the chunks in flight
    `sending`; the next run writes them again (a file write is safe to repeat). The
    readers and their picks are read from the database a chunk at a time, so this
    process (and the workers forked from it) holds one chunk, not the issue."""
    issue_date = issue_date or issue_date_now(settings)
    # Preflight: templates compile before anything is built or written.
    renderer = Renderer(settings.templates_dir)
    mark = time.monotonic()
    issue = build_issue(settings, store, dry_run=True, issue_date=issue_date)
    log.info("issue %s ready in %.1f s", issue.key, time.monotonic() - mark)
    mark = time.monotonic()
    writer = OutboxWriter(settings.outbox_dir, issue.key)
    store.settle_in_flight(issue.id, to="pending")
    skipped = _skip_departed(store, issue)
    todo = store.counts(issue.id)["pending"]
    written = 0
    if todo:
        context = issue_context(settings, store, issue)
        workers = worker_count(settings, todo)
        with MessagePool(context, workers=workers, renderer=renderer) as pool:
            written = _write_all(pool, store, issue, _pending_readers(store, issue, skipped))
        log.info("wrote %d message(s) in %.1f s", written, time.monotonic() - mark)
    lines = [
        RecipientLine(email, papers, title, score, writer.path_for(email))
        for email, papers, title, score in store.recipient_summaries(issue.id)
    ]
    report = SendReport(issue, store.counts(issue.id), lines, writer.folder, skipped)
    report.written_now = written
    return report


def _write_all(pool: MessagePool, store: Store, issue: Issue, readers: Iterable[Subscriber]) -> int:
    """Hand `readers` to the pool CHUNK at a time, at most `pool.window` chunks in
    flight, each chunk's picks read and its rows claimed `sending` as it goes out and
    marked `sent` when its files are in place. Returns how many were handed out."""
    in_flight: dict[Future[list[str]], Sequence[str]] = {}
    chunks = _batches(readers, CHUNK)
    handed = 0
    more = True
    while more or in_flight:
        while more and len(in_flight) < pool.window:
            chunk = next(chunks, None)
            if chunk is None:
                more = False
                break
            emails = [subscriber.key for subscriber in chunk]
            planned = store.planned_picks_many(issue.id, emails)
            jobs = [Job(s, tuple(planned[s.key])) for s in chunk]
            store.mark_many(issue.id, emails, "sending", attempt=True)
            in_flight[pool.write(jobs)] = emails
            handed += len(jobs)
        if not in_flight:
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        written = [email for future in done for email in future.result()]
        for future in done:
            del in_flight[future]
        store.mark_many(issue.id, written, "sent")
    return handed


PREFLIGHT_TRIES = 20  # recipients tried before a template error counts as everyone's


def preflight(todo: Sequence[Subscriber], build: Callable[[Subscriber], bytes]) -> None:
    """One full message renders before any is sent. A template that fails for the first
    recipient may fail only on their data (`papers[1]` and a one-paper digest): then the
    next ones are tried, and one that renders is enough (the others are recorded failed
    when their turn comes). When none of the first PREFLIGHT_TRIES renders, the template
    fails for everyone: its error stops the run before anything is sent."""
    first: Exception | None = None
    for subscriber in todo[:PREFLIGHT_TRIES]:
        try:
            build(subscriber)
        except Exception as exc:  # kept: raised below if no recipient's message builds
            first = first or exc
        else:
            return
    if first is not None:
        raise first


def issue_context(settings: Settings, store: Store, issue: Issue) -> IssueContext:
    """What every message of the issue shares, the papers of all its picks included."""
    papers = store.issue_papers(issue.id)
    return IssueContext(
        settings=settings, issue=issue, pages=store.page_dates_of(papers), papers=papers
    )


def deliver(
    settings: Settings,
    store: Store,
    *,
    issue_date: date | None = None,
    progress: bool | None = None,
) -> SendReport:
    """`deliver_async` for callers without an event loop (the `send` command)."""
    return asyncio.run(deliver_async(settings, store, issue_date=issue_date, progress=progress))


async def deliver_async(
    settings: Settings,
    store: Store,
    *,
    issue_date: date | None = None,
    progress: bool | None = None,
    stop: asyncio.Event | None = None,
) -> SendReport:
    """Send the issue of `issue_date` (default today) over SMTP; re-runs send what is left.

    Rows left `sending` by a crash are sent again (the message may or may not have reached
    the server before the crash: at most `crash_window(smtp_concurrency)` messages, one
    per connection, can arrive twice;
    their Message-ID is the same, so clients can fold them). Rows that failed transiently
    are retried; permanent failures (5xx, a message that cannot be built) are not. Rows
    whose outcome was unknown once are sent once more. When `stop` is set, delivery stops
    cleanly (see `send_over_smtp`): what was not handed to the server stays `pending`.
    """
    require_safe_send(settings)  # no real send with dead or forgeable links
    issue_date = issue_date or issue_date_now(settings)
    renderer = Renderer(settings.templates_dir)  # preflight: templates compile
    issue = build_issue(settings, store, dry_run=False, issue_date=issue_date)
    maker = MessageMaker(issue_context(settings, store, issue), renderer)

    def build(subscriber: Subscriber) -> bytes:
        return maker.job_message(
            Job(subscriber, tuple(store.planned_picks(issue.id, subscriber.key)))
        )

    in_flight = store.settle_in_flight(issue.id, to="pending")
    if in_flight:
        log.warning(
            "issue %s: %d message(s) were in flight when the last run stopped; sending them "
            "again (they may arrive twice)",
            issue.key,
            in_flight,
        )
    store.retry_transient_failures(issue.id)
    unknown = store.resend_unknown(issue.id)
    if unknown:
        log.warning(
            "issue %s: %d message(s) had an unknown outcome (the server took them but did "
            "not reply in time); sending them once more (they may arrive twice)",
            issue.key,
            unknown,
        )
    skipped = _skip_departed(store, issue)
    todo = store.counts(issue.id)["pending"]
    stats = None
    if todo:
        readers = _pending_readers(store, issue, skipped)
        first = list(itertools.islice(readers, PREFLIGHT_TRIES))
        preflight(first, build)
        outgoing = (
            Outgoing(s.key, s.email, functools.partial(build, s))
            for s in itertools.chain(first, readers)
        )
        stats = await send_over_smtp(
            settings,
            store,
            issue.id,
            outgoing,
            total=todo,
            sender=parseaddr(settings.from_address)[1],
            progress=progress,
            stop_requested=stop,
        )
    return SendReport(
        issue,
        store.counts(issue.id),
        [],
        None,
        skipped + (stats.skipped if stats else []),
        paused=stats.paused if stats else None,
        resent_in_flight=in_flight,
        stopped=stats.stopped if stats else False,
        sent_now=stats.sent if stats else 0,
        failed_now=stats.failed if stats else 0,
        unknown_now=stats.unknown if stats else 0,
    )
