"""Get the day's papers from the source (the Daily Papers API) and put them into the inbox.

This module owns the one request the service makes to the outside world:
`GET NEWSLETTER_SOURCE_URL?date=YYYY-MM-DD` with httpx, retried while the source is
briefly unavailable, and the reply's way into `NEWSLETTER_INBOX_DIR`:

- **Retries.** 429 and 5xx replies, timeouts, refused, failed and dropped connections are
  tried again after an exponential backoff with jitter (or after the reply's
  `Retry-After`, in seconds or as an HTTP date). `fetch_timeout` bounds the whole fetch,
  waits included: each request gets what is left, and a wait that would end past the
  deadline is not started. Other 4xx replies are not retried.
- **The reply** must be the API's JSON: a list of entries (or an object holding it) that
  reads as a dump (`dumps.decode_dump`). An HTML page, cut-off JSON or JSON of another
  shape is a `FetchError`; an empty list is a day without papers (weekends).
- **The file** is written under a hidden `.part` name the inbox never takes, synced, then
  renamed to `daily-papers-<date>-<sha256[:12]>.json`: the inbox sees all of it or none.
  Content already in the inbox, in `inbox/processed/` or in the database is not written
  again.

Nothing is written unless the reply is a complete, valid list of papers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal

import httpx

from newsletter import __version__
from newsletter.dumps import decode_dump
from newsletter.errors import ConfigError, DumpError, FetchError
from newsletter.inbox import PROCESSED, is_candidate_name
from newsletter.settings import Settings
from newsletter.store import Store, content_hash

BACKOFF_BASE = 1.0  # seconds before the first retry; doubles with every retry...
BACKOFF_CAP = 30.0  # ...up to this; plus up to half as much again of random jitter
MAX_BODY = 64 * 1024 * 1024  # bytes; a day's list is a few hundred kB
FILE_PREFIX = "daily-papers-"
HEADERS = {"Accept": "application/json", "User-Agent": f"newsletter/{__version__}"}

log = logging.getLogger(__name__)

FetchStatus = Literal["written", "unchanged", "no papers"]


@dataclass(frozen=True)
class FetchResult:
    """What one fetch did: wrote a file, found its content already there, or found that
    the day has no papers."""

    day: date
    status: FetchStatus
    papers: int
    path: Path | None  # the file written ('written'), else None
    url: str  # the request, date included
    same_as: Path | None = None  # 'unchanged': the file already holding it (None: the database)


@dataclass(frozen=True)
class Reply:
    """A complete HTTP reply (the body is read only for 2xx)."""

    status: int
    reason: str
    content_type: str
    retry_after: str | None
    body: bytes

    @property
    def status_text(self) -> str:
        return f"{self.status} {self.reason}".strip()


def request_url(source_url: str, day: date) -> str:
    """The source URL with `date=YYYY-MM-DD` added to (or replacing it in) its query."""
    return str(httpx.URL(source_url).copy_merge_params({"date": day.isoformat()}))


def file_name(day: date, digest: str) -> str:
    return f"{FILE_PREFIX}{day.isoformat()}-{digest[:12]}.json"


def fetched_files(inbox_dir: Path, day: date) -> list[Path]:
    """The files a fetch for `day` wrote, still in the inbox or already processed."""
    pattern = f"{FILE_PREFIX}{day.isoformat()}-*.json"
    return sorted([*inbox_dir.glob(pattern), *(inbox_dir / PROCESSED).glob(pattern)])


# ---------------------------------------------------------------------------------------
# The request, with retries
# ---------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header as seconds from `now`: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max((when - now).total_seconds(), 0.0)
    return max(seconds, 0.0) if seconds == seconds else None  # NaN: ignored


def backoff(retry: int) -> float:
    """Seconds before retry number `retry` (1, 2, ...): exponential, capped, with jitter."""
    delay: float = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (retry - 1))
    return delay + random.uniform(0, delay / 2)


def _transport_text(exc: httpx.TransportError) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({detail})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection was dropped ({detail})"
    return f"the connection failed ({detail})"


def _advice(status: int | None, failure: str, settings: Settings) -> str:
    dump = f"put a dump into {settings.inbox_dir}/"
    if status == 429:
        return f"the source is limiting requests, try again later or {dump}"
    if status is not None:
        return f"the source is down, try again later or {dump}"
    if failure == "timed out":
        return (
            f"the source did not answer in time (NEWSLETTER_FETCH_TIMEOUT is "
            f"{settings.fetch_timeout:g} s), try again later or {dump}"
        )
    if failure.startswith("cannot connect"):
        return (
            f"the source cannot be reached: check the network and NEWSLETTER_SOURCE_URL, or {dump}"
        )
    return f"the connection to the source keeps failing, try again later or {dump}"


async def _get(client: httpx.AsyncClient, url: str, left: float) -> Reply:
    async with client.stream("GET", url, timeout=httpx.Timeout(left)) as response:
        chunks: list[bytes] = []
        if response.is_success:
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY:
                    raise FetchError(
                        f"{url}: the reply is larger than {MAX_BODY // 2**20} MB, which no "
                        "day's list of papers is: check NEWSLETTER_SOURCE_URL",
                        url=url,
                        status=response.status_code,
                    )
                chunks.append(chunk)
        return Reply(
            status=response.status_code,
            reason=response.reason_phrase,
            content_type=response.headers.get("content-type", ""),
            retry_after=response.headers.get("retry-after"),
            body=b"".join(chunks),
        )


async def download(url: str, settings: Settings) -> Reply:
    """GET `url` until a 2xx reply, retrying what may pass within `fetch_timeout`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + settings.fetch_timeout
    attempts = 0
    answered: tuple[int, str] | None = None  # the last status the source replied with
    async with httpx.AsyncClient(follow_redirects=True, headers=HEADERS) as client:
        while True:
            attempts += 1
            left = deadline - loop.time()
            status: int | None = None
            wait: float | None = None
            try:
                # httpx's timeouts are per connect / read; this one bounds the whole request.
                async with asyncio.timeout(left):
                    reply = await _get(client, url, left)
            except (TimeoutError, httpx.TimeoutException):
                failure = "timed out"
            except httpx.UnsupportedProtocol as exc:
                raise FetchError(
                    f"{url}: {exc}; NEWSLETTER_SOURCE_URL must be an http(s) URL", url=url
                ) from exc
            except httpx.TransportError as exc:
                failure = _transport_text(exc)
            except httpx.HTTPError as exc:  # too many redirects, a body that cannot be decoded
                raise FetchError(
                    f"{url}: {exc}; check NEWSLETTER_SOURCE_URL, or put a dump into "
                    f"{settings.inbox_dir}/",
                    url=url,
                ) from exc
            else:
                if reply.status < 300:
                    return reply
                status, failure = reply.status, reply.status_text
                if status != 429 and status < 500:
                    raise FetchError(
                        f"{url}: {failure}; the source refused the request: check "
                        "NEWSLETTER_SOURCE_URL (and the date)",
                        url=url,
                        status=status,
                    )
                answered = (status, failure)
                wait = retry_after_seconds(reply.retry_after, datetime.now(UTC))
            # Never sooner than Retry-After asks, nor than the backoff (a "Retry-After: 0"
            # must not turn the retries into a busy loop).
            delay = max(wait or 0.0, backoff(attempts))
            left = deadline - loop.time()
            if delay < left:
                log.debug("%s: %s; attempt %d in %.1f s", url, failure, attempts + 1, delay)
                await asyncio.sleep(delay)
                continue
            took = f"after {attempts} attempt{'s' if attempts > 1 else ''} in {loop.time() - start:.0f} s"
            if status is None and answered is not None:
                # The last attempt was cut short by the deadline: what the source said
                # before is the fact worth reporting.
                (status, failure), took = answered, f"{took} (the last one cut short)"
            asked = ""
            if wait is not None and wait >= left > 0:
                asked = (
                    f" (Retry-After asks for {wait:.0f} s, more than the {left:.0f} s left of "
                    "NEWSLETTER_FETCH_TIMEOUT)"
                )
            raise FetchError(
                f"{url}: {failure} {took}{asked}; {_advice(status, failure, settings)}",
                url=url,
                status=status,
            )


# ---------------------------------------------------------------------------------------
# The reply: is it a day's list of papers?
# ---------------------------------------------------------------------------------------


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        keys = ", ".join(repr(key) for key in list(value)[:5])
        message = value.get("error") or value.get("message")
        said = f" saying {str(message)[:200]!r}" if isinstance(message, str) else ""
        return f"an object{said} (keys {keys})" if keys else "an empty object"
    return {str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def _ends_early(text: str) -> bool:
    """Does the text stop inside a string, a list or an object (a reply cut short)?"""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def count_papers(reply: Reply, *, url: str, received_at: datetime, inbox_dir: Path) -> int:
    """How many papers the reply lists (0: a day without papers); FetchError when it is
    not the API's JSON list of papers."""
    said = f"{reply.status_text} but"
    try:
        data = json.loads(reply.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        text = reply.body.lstrip()
        if "html" in reply.content_type.lower() or text[:1] == b"<":
            what = "the reply is an HTML page, not the API's JSON"
            fix = "check that NEWSLETTER_SOURCE_URL is the API (/api/daily_papers)"
        elif not text:
            what, fix = "the reply is empty", "try again later"
        elif isinstance(exc, json.JSONDecodeError) and _ends_early(exc.doc):
            what = f"the JSON is cut off after {len(reply.body)} bytes"
            fix = "try again later"
        else:
            what = f"the reply is not valid JSON ({exc})"
            fix = "check NEWSLETTER_SOURCE_URL"
        raise FetchError(
            f"{url}: {said} {what}; nothing was written: {fix}, or put a dump into {inbox_dir}/",
            url=url,
            status=reply.status,
        ) from exc
    entries = data
    if isinstance(data, dict) and "error" not in data:
        lists = [value for value in data.values() if isinstance(value, list)]
        entries = lists[0] if len(lists) == 1 else data
    if not isinstance(entries, list):
        raise FetchError(
            f"{url}: {said} the JSON holds {_json_kind(data)}, not a list of papers; "
            "nothing was written: check NEWSLETTER_SOURCE_URL",
            url=url,
            status=reply.status,
        )
    if not entries:
        return 0
    try:
        dump = decode_dump(reply.body, name=url, received_at=received_at)
    except DumpError as exc:
        raise FetchError(
            f"{exc} (the reply, {reply.status_text}); nothing was written: check "
            "NEWSLETTER_SOURCE_URL",
            url=url,
            status=reply.status,
        ) from exc
    return len(dump.papers)


# ---------------------------------------------------------------------------------------
# Into the inbox
# ---------------------------------------------------------------------------------------


def same_content(inbox_dir: Path, data: bytes) -> Path | None:
    """A file of the inbox or `processed/` with exactly these bytes, if there is one."""
    digest = content_hash(data)
    for folder in (inbox_dir, inbox_dir / PROCESSED):
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if (
                    not is_candidate_name(entry.name)
                    or not entry.is_file(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_size != len(data)
                ):
                    continue
                if content_hash(Path(entry.path).read_bytes()) == digest:
                    return Path(entry.path)
            except OSError:
                continue  # gone (taken by the intake) or unreadable: not a copy
    return None


def write_atomically(target: Path, data: bytes) -> None:
    """Write `target` under a hidden temporary name, sync it, then rename it into place."""
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # the rename itself survives a power cut once the folder is synced
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def keep(settings: Settings, day: date, url: str, reply: Reply) -> FetchResult:
    """Check the reply and write it into the inbox, unless the day has no papers or its
    content is already there or ingested."""
    received_at = datetime.now(UTC)
    papers = count_papers(reply, url=url, received_at=received_at, inbox_dir=settings.inbox_dir)
    if papers == 0:
        return FetchResult(day, "no papers", 0, None, url)
    digest = content_hash(reply.body)
    copy = same_content(settings.inbox_dir, reply.body)
    if copy is not None:
        return FetchResult(day, "unchanged", papers, None, url, same_as=copy)
    # Made here when missing, like `ingest` does: the papers' next stop is this database.
    with Store(settings.database_path) as store:
        if store.has_dump(digest):
            return FetchResult(day, "unchanged", papers, None, url)
    target = settings.inbox_dir / file_name(day, digest)
    try:
        write_atomically(target, reply.body)
    except OSError as exc:
        raise FetchError(
            f"{target}: cannot write the fetched papers ({exc.strerror or exc}); check that "
            f"{settings.inbox_dir}/ exists and can be written",
            url=url,
            status=reply.status,
        ) from exc
    return FetchResult(day, "written", papers, target, url)


# ---------------------------------------------------------------------------------------
# One fetch
# ---------------------------------------------------------------------------------------


async def fetch_day_async(settings: Settings, day: date | None = None) -> FetchResult:
    """Fetch `day`'s papers (default: today in the configured time zone) into the inbox."""
    if not settings.source_url:
        raise ConfigError(
            "NEWSLETTER_SOURCE_URL is empty, so fetching is off; set it to the Daily Papers "
            "API (https://huggingface.co/api/daily_papers), or put dumps into "
            f"{settings.inbox_dir}/ yourself"
        )
    day = day or datetime.now(settings.zone).date()
    url = request_url(settings.source_url, day)
    reply = await download(url, settings)
    # Parsing a day's list and hashing the inbox take a moment: off the event loop.
    return await asyncio.to_thread(keep, settings, day, url, reply)


def fetch_day(settings: Settings, day: date | None = None) -> FetchResult:
    """`fetch_day_async` for synchronous callers (the command line)."""
    return asyncio.run(fetch_day_async(settings, day))
