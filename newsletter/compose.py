"""Render and build an issue's messages, on every core.

One Python process renders and builds on one core, so a large issue is composed by a
pool of worker processes (one per core). Each worker loads what every message of the
issue shares once, in its initializer: the settings, the issue, the templates (compiled
once) and the papers its recipients were given. The parent then sends small jobs (a
subscriber and the keys of their frozen picks, a few dozen per chunk) and either gets
the message bytes back (SMTP: the parent feeds the connections) or, in a dry run, has
the worker write the `.eml` itself, so 30 KB messages do not cross a pipe twice.

Small issues (fewer than `POOL_MIN_MESSAGES`) are composed in the calling process:
starting workers costs more than it saves there. `NEWSLETTER_COMPOSE_WORKERS` sets the
number of workers (0: always in-process). Workers end with the process that started
them, even when it is killed outright (see `_die_with_parent`).
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from newsletter import links
from newsletter.archive_links import FeedRef, IssueRef, archive_url, feed_url
from newsletter.assembly import SharedBlocks
from newsletter.delivery import OutboxWriter
from newsletter.dumps import Paper
from newsletter.message import build_message, list_id_for, message_id_for
from newsletter.ranking import Pick
from newsletter.render import Renderer
from newsletter.settings import Settings
from newsletter.store import Issue, PlannedPick
from newsletter.subscribers import Subscriber, unsubscribe_url

POOL_MIN_MESSAGES = 500  # below this, a pool's start-up costs more than it saves
CHUNK = 48  # jobs per task: amortises the pipe round trip, keeps the claimed batch small

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One message to compose: who gets it and the picks frozen for them."""

    subscriber: Subscriber
    picks: tuple[PlannedPick, ...]


@dataclass(frozen=True)
class IssueContext:
    """What every message of an issue shares (sent once to each worker)."""

    settings: Settings
    issue: Issue
    pages: dict[str, date]  # paper key -> the date of the Daily Papers page it came from
    papers: dict[str, Paper]


class MessageMaker:
    """Renders and builds the messages of one issue (in a worker, or in-process)."""

    def __init__(self, context: IssueContext, renderer: Renderer | None = None) -> None:
        self.context = context
        # Templates do not change under a running issue: no per-message stat() calls.
        self.renderer = (
            renderer.pinned()
            if renderer is not None
            else Renderer(context.settings.templates_dir, auto_reload=False)
        )
        issue = context.issue
        self._id_key = issue.key + (".dry" if issue.dry_run else "")
        self._signing_key = context.settings.signing_key(dry_run=issue.dry_run)
        self._domain = context.settings.sender_domain  # parsed once, not per message
        self._list_id = list_id_for(context.settings.digest_name, self._domain)
        self._writer: OutboxWriter | None = None
        # Each paper's block is rendered and encoded once, by the first message that has
        # it; every other message joins it as bytes (see `assembly`).
        self.shared = SharedBlocks()

    def unsubscribe_url(self, email: str) -> str:
        return unsubscribe_url(self.context.settings.base_url, email, self._signing_key)

    def message(self, subscriber: Subscriber, picks: Sequence[Pick]) -> bytes:
        settings = self.context.settings
        issue = self.context.issue
        unsubscribe_url = self.unsubscribe_url(subscriber.email)
        digest = self.renderer.render(
            subscriber=subscriber,
            picks=picks,
            issue_date=issue.issue_date,
            unsubscribe_url=unsubscribe_url,
            pages=self.context.pages,
            digest_name=settings.digest_name,
            archive_url=archive_url(
                settings.base_url,
                IssueRef(subscriber.key, issue.key, issue.dry_run),
                self._signing_key,
            ),
            feed_url=feed_url(
                settings.base_url, FeedRef(subscriber.key, issue.dry_run), self._signing_key
            ),
            manage_url=links.manage_url(settings.base_url, subscriber.email, self._signing_key),
            feedback_url=links.feedback_base(
                settings.base_url, subscriber.email, self._signing_key
            ),
            blocks=self.shared.blocks,
        )
        return build_message(
            from_address=settings.from_address,
            subscriber=subscriber,
            digest=digest,
            unsubscribe_url=unsubscribe_url,
            message_id=message_id_for(self._id_key, subscriber.email, self._domain),
            date=datetime.now(UTC),
            list_id=self._list_id,
            parts=self.shared,
        )

    def job_message(self, job: Job) -> bytes:
        papers = self.context.papers
        picks = [Pick(papers[p.paper_key], p.score, (), p.why) for p in job.picks]
        return self.message(job.subscriber, picks)

    def build(self, jobs: Sequence[Job]) -> list[bytes]:
        return [self.job_message(job) for job in jobs]

    def write(self, jobs: Sequence[Job]) -> list[str]:
        """Write each job's `.eml` (atomically); returns the ledger keys written."""
        if self._writer is None:
            settings = self.context.settings
            self._writer = OutboxWriter(settings.outbox_dir, self.context.issue.key)
        for job in jobs:
            self._writer.write(job.subscriber.email, self.job_message(job))
        return [job.subscriber.key for job in jobs]


# -- the worker side: one MessageMaker per process, made by the initializer ---------------

_maker: MessageMaker | None = None
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0  # where prctl is missing: how often a worker looks for its parent


def _die_with_parent(parent: int) -> None:
    """End this worker when the process that started it dies, however it dies.

    A worker waits on a pipe whose write end every worker also holds, so a killed
    parent (SIGKILL, the OOM killer) never gives it an end of file: it would wait
    forever, re-parented to PID 1. On Linux the kernel sends SIGTERM when the parent
    goes (`PR_SET_PDEATHSIG`; strictly, when the thread that forked the worker ends:
    with "fork" the pool forks every worker at the first submit, from the thread that
    then waits for the pool's shutdown). Elsewhere a thread looks every second.

    SIGTERM gets its default action back first: a forked worker inherits the parent's
    handlers, and `newsletter run` catches SIGTERM to stop cleanly, which would make
    the worker ignore it. The parent may have died before the prctl call: checked last.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "set_wakeup_fd"):
        signal.set_wakeup_fd(-1)  # the parent's event loop wakeup socket is not ours
    watched = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            watched = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
        except (OSError, AttributeError):
            watched = False
    if not watched:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _start_worker(context: IssueContext, parent: int, renderer: Renderer | None) -> None:
    global _maker
    _die_with_parent(parent)
    _maker = MessageMaker(context, renderer)


def _worker_build(jobs: Sequence[Job]) -> list[bytes]:
    assert _maker is not None, "the pool initializer did not run"
    return _maker.build(jobs)


def _worker_write(jobs: Sequence[Job]) -> list[str]:
    assert _maker is not None, "the pool initializer did not run"
    return _maker.write(jobs)


class _InProcess(Executor):
    """Runs each task at `submit` (small issues, or NEWSLETTER_COMPOSE_WORKERS=0)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future


class MessagePool:
    """Composes jobs on a pool of processes or in-process; use as a context manager."""

    def __init__(self, context: IssueContext, *, workers: int, renderer: Renderer) -> None:
        self.workers = workers
        self._local = MessageMaker(context, renderer) if workers == 0 else None
        self._frozen = False
        self._executor: Executor
        if workers == 0:
            self._executor = _InProcess()
        else:
            # fork: workers start at once with the modules already imported (spawn would
            # re-import numpy/scipy in each); they use no inherited thread or connection.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            # The forked workers share the parent's heap (100k subscribers, the plan)
            # copy-on-write; frozen objects are never visited by their garbage collector,
            # so those pages stay shared instead of being copied into every worker.
            gc.collect()
            gc.freeze()
            self._frozen = True
            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_start_worker,
                # Forked, a worker is handed the parent's loaded templates as they are
                # (compiling the MJML again would cost each worker a second); spawned,
                # it loads them itself.
                initargs=(context, os.getpid(), renderer if method == "fork" else None),
            )

    def __enter__(self) -> MessagePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._frozen:
            gc.unfreeze()

    @property
    def window(self) -> int:
        """Chunks to keep submitted at once: enough to keep every worker busy."""
        return max(2, 2 * self.workers)

    def build(self, jobs: Sequence[Job]) -> Future[list[bytes]]:
        if self._local is not None:
            return self._executor.submit(self._local.build, jobs)
        return self._executor.submit(_worker_build, jobs)

    def write(self, jobs: Sequence[Job]) -> Future[list[str]]:
        if self._local is not None:
            return self._executor.submit(self._local.write, jobs)
        return self._executor.submit(_worker_write, jobs)


def worker_count(settings: Settings, messages: int) -> int:
    """How many worker processes to compose `messages` messages with (0: in-process)."""
    if settings.compose_workers is not None:
        return settings.compose_workers
    if messages < POOL_MIN_MESSAGES:
        return 0
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
