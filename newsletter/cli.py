"""The `newsletter` command line: thin commands over the pipeline.

This is the only module that turns errors into messages and exit codes: a
`NewsletterError` becomes one clear line on stderr and exit code 1 (2 for usage
errors); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import webbrowser
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from newsletter.errors import DumpError, NewsletterError
from newsletter.lock import Holder
from newsletter.settings import Settings, load_settings
from newsletter.store import Store

log = logging.getLogger("newsletter")

Command = Callable[[argparse.Namespace, Settings], int]

SUMMARY_LINES = 25  # per-recipient lines a command prints before it summarises the rest


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _papers(count: int) -> str:
    return f"{count} paper{'' if count == 1 else 's'}"


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.fetch import fetch_day

    result = fetch_day(settings, args.date)
    if result.status == "written":
        print(f"Fetched {_papers(result.papers)} for {result.day} into {result.path}")
    elif result.status == "unchanged":
        where = result.same_as or f"ingested into {settings.database_path}"
        print(f"{_papers(result.papers)} for {result.day} already fetched ({where}): nothing new")
    else:
        print(f"No papers for {result.day} (a weekend or a quiet day): nothing written")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.pipeline import embedder_for, ingest_file

    results: list[dict[str, Any]] = []
    failed = 0
    embedder = embedder_for(settings)
    with Store(settings.database_path) as store:
        for name in args.paths:
            path = Path(name)
            try:
                report = ingest_file(store, path, embedder)
            except DumpError as exc:
                failed += 1
                results.append({"file": str(path), "error": str(exc)})
                if not args.json:
                    print(f"error: {exc}", file=sys.stderr)
                continue
            results.append(
                {
                    "file": report.file,
                    "papers": report.papers,
                    "new": report.new,
                    "already_ingested": report.duplicate_file,
                    "shape": report.shape,
                    "warnings": report.warnings,
                }
            )
            if not args.json:
                seen = " (this file was ingested before: nothing changed)"
                print(
                    f"{report.file} ({report.shape}): {report.papers} papers, {report.new} new"
                    f"{seen if report.duplicate_file else ''}"
                )
                for warning in report.warnings:
                    print(f"  warning: {warning}", file=sys.stderr)
    if args.json:
        _print_json(results)
    return 1 if failed else 0


def cmd_dumps(args: argparse.Namespace, settings: Settings) -> int:
    with Store(settings.database_path) as store:
        records = store.dumps()
    if args.json:
        _print_json(
            [
                {
                    "id": record.id,
                    "file": record.name,
                    "shape": record.shape,
                    "page_date": record.page_date.isoformat(),
                    "papers": record.papers,
                    "new_papers": record.new_papers,
                    "ingested_at": record.ingested_at.isoformat(),
                }
                for record in records
            ]
        )
        return 0
    if not records:
        print("No dump has been ingested yet; 'newsletter ingest FILE' reads one.")
        return 0
    print(f"{'id':>4}  {'shape':20}  {'page':10}  {'papers':>6}  {'new':>4}  {'ingested':16}  file")
    for record in records:
        print(
            f"{record.id:>4}  {record.shape or 'not recorded':20}  {record.page_date}  "
            f"{record.papers:>6}  {record.new_papers:>4}  "
            f"{record.ingested_at:%Y-%m-%d %H:%M}  {record.name}"
        )
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.pipeline import forget_dump

    with Store(settings.database_path) as store:
        gone = forget_dump(settings, store, args.dump)
    dump = gone.dump
    others = ", ".join(str(number) for number in gone.other_dumps)
    plural = "s" if len(gone.other_dumps) > 1 else ""
    also = f"also in dump{plural} {others}" if others else "in no other dump"
    planned = (
        f", {gone.planned} kept because an issue still being sent lists them"
        if gone.planned
        else ""
    )
    print(
        f"Forgot dump {dump.id} ({dump.name}, {dump.shape or 'shape not recorded'}, page of "
        f"{dump.page_date}): {_papers(gone.removed)} removed, {gone.shared} kept"
        f" ({also}), {gone.delivered} kept because already delivered"
        f"{planned}"
    )
    if gone.delivered or gone.planned:
        print(
            "  Papers kept for issues stay in their history (those issues still show them "
            "and 'newsletter status' reports them); no future issue will draw them."
        )
    for key in gone.dry_runs:
        print(
            f"  Deleted the dry run of issue {key}, which drew on this dump; the next "
            "'newsletter send --dry-run' builds it again."
        )
    return 0


def _find_subscriber(settings: Settings, email: str) -> Any:
    from newsletter import roster

    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        member = roster.find(store, email)
    if member is None:
        raise NewsletterError(
            f"{email} is not subscribed (not in {settings.subscribers_file}, no confirmed "
            "web sign-up); add it with 'newsletter subscribe' (or check the address)"
        )
    return member.subscriber


def cmd_rank(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.pipeline import next_picks

    subscriber = _find_subscriber(settings, args.email)
    with Store(settings.database_path) as store:
        picks = next_picks(settings, store, subscriber)
    if args.json:
        _print_json(
            [
                {
                    "title": pick.paper.title,
                    "score": round(pick.score, 4),
                    "why": pick.why,
                    "topics": [m.topic for m in pick.matches],
                    "key": pick.paper.key,
                }
                for pick in picks
            ]
        )
        return 0
    if not picks:
        print(f"No paper matches {subscriber.email}'s topics in the next issue: no email for them.")
        return 0
    for number, pick in enumerate(picks, 1):
        print(f"{number:2}. [{pick.score:.2f}] {pick.paper.title}\n      {pick.why}")
    return 0


def cmd_preview(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.pipeline import preview_digest

    if args.serve:
        return cmd_serve(args, settings)
    if not args.email:
        raise NewsletterError("name a subscriber (newsletter preview EMAIL), or use --serve")
    subscriber = _find_subscriber(settings, args.email)
    with Store(settings.database_path) as store:
        digest, _picks = preview_digest(settings, store, subscriber)
    if digest is None:
        print(
            f"No paper matches {subscriber.email}'s topics: the next issue has no email for them."
        )
        return 0
    folder = Path(args.out) if args.out else settings.outbox_dir / "preview"
    folder.mkdir(parents=True, exist_ok=True)
    stem = subscriber.key.replace("@", "_at_")
    html_path = folder / f"{stem}.html"
    text_path = folder / f"{stem}.txt"
    html_path.write_text(digest.html, encoding="utf-8")
    text_path.write_text(digest.text, encoding="utf-8")
    print(f"Subject: {digest.subject}")
    print(f"HTML: {html_path}")
    print(f"Text: {text_path}")
    if args.open:
        webbrowser.open(html_path.resolve().as_uri())
    return 0


def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.lock import DatabaseLock
    from newsletter.pipeline import deliver, dry_run

    if not args.dry_run:
        # Not beside a running service: both would claim the same ledger rows.
        with DatabaseLock(settings.database_path, command="send"):
            with Store(settings.database_path) as store:
                report = deliver(settings, store)
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
        print(f"Issue {report.issue.key}: {counts or 'no recipient'}")
        for email in report.skipped:
            print(f"  {email}: skipped (unsubscribed or inactive)")
        if report.paused:
            print(f"error: {report.paused}", file=sys.stderr)
        if not report.complete:
            left = report.counts["pending"] + report.counts["sending"]
            failed = report.counts["failed"]
            unknown = report.counts["unknown"]
            maybe = f"{unknown} of unknown outcome (may have arrived), " if unknown else ""
            print(
                f"error: not every recipient was sent the issue ({failed} failed, {maybe}"
                f"{left} left pending); 'newsletter status' lists them, and 'newsletter send' "
                "retries what can be retried",
                file=sys.stderr,
            )
            return 1
        return 0
    with Store(settings.database_path) as store:
        report = dry_run(settings, store)
    print(f"Dry run of issue {report.issue.key}: nothing was sent.")
    if report.recipients:
        already = len(report.recipients) - report.written_now
        note = f" ({already} were already there, unchanged)" if already > 0 else ""
        print(
            f"{len(report.recipients)} message(s) in {report.folder}/: "
            f"{report.written_now} written now{note}"
        )
    else:
        print("No subscriber has a relevant paper in this issue: no message written.")
    for line in report.recipients[:SUMMARY_LINES]:
        print(
            f"  {line.email}: {line.papers} paper(s), top match: {line.top_title} "
            f"[{line.top_score:.2f}]"
        )
    if len(report.recipients) > SUMMARY_LINES:
        print(f"  ... and {len(report.recipients) - SUMMARY_LINES} more ('newsletter status')")
    for email in report.skipped[:SUMMARY_LINES]:
        print(f"  {email}: skipped (unsubscribed or inactive)")
    if len(report.skipped) > SUMMARY_LINES:
        print(f"  ... and {len(report.skipped) - SUMMARY_LINES} more skipped")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.scheduler import run_service

    if not args.debug:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run
    outcome = run_service(settings, dry_run=args.dry_run, once=args.once)
    if outcome is not None and outcome.stopped:
        print(
            f"Stopped: issue {outcome.issue_key} has {outcome.why}; the next run sends them.",
            file=sys.stderr,
        )
    elif outcome is not None and not outcome.finished:
        print(
            f"error: issue {outcome.issue_key} is not delivered to everyone yet ({outcome.why}); "
            "'newsletter status' lists who is left, and the next run retries them",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from newsletter.lock import holder
    from newsletter.scheduler import describe, next_fetch, next_send, next_weekly_send

    now = datetime.now(settings.zone)
    upcoming = next_send(settings, now)
    weekly = next_weekly_send(settings, now)
    fetch = next_fetch(settings, now) if settings.source_url else None
    held = holder(settings.database_path)
    schedule = {
        "next_send": upcoming.isoformat(),
        "next_weekly_send": weekly.isoformat(),
        "next_fetch": fetch.isoformat() if fetch else None,
        "service_pid": held.pid if held is not None and held.is_service else None,
        "lock": {"pid": held.pid, "command": held.command} if held is not None else None,
    }
    schedule_lines = [
        f"Next send: {describe(upcoming, settings, now)}",
        f"Next weekly issue: {describe(weekly, settings, now)}",
        f"Next fetch: {describe(fetch, settings, now)} from {settings.source_url}"
        if fetch
        else "Fetching: off (NEWSLETTER_SOURCE_URL is empty; dumps come into the inbox)",
        _service_line(held),
    ]
    with Store(settings.database_path) as store:
        issue = store.find_issue(args.issue, dry_run=args.dry_run) if args.issue else None
        if args.issue and issue is None:
            raise NewsletterError(
                f"there is no issue {args.issue!r}; 'newsletter status' lists the latest"
            )
        issue = issue or store.latest_issue()
        if issue is None:
            if args.json:
                _print_json({"issue": None, **schedule})
                return 0
            print("No issue has been built yet; run 'newsletter send --dry-run'.")
            print("\n".join(schedule_lines))
            return 0
        counts = store.counts(issue.id)
        failed = store.deliveries(issue.id, statuses=("failed",))
        unknown = store.deliveries(issue.id, statuses=("unknown",))
    if args.json:
        _print_json(
            {
                "issue": issue.key,
                "dry_run": issue.dry_run,
                "counts": counts,
                "failed": [
                    {"email": d.email, "code": d.code, "message": d.message} for d in failed
                ],
                # Handed over, no reply in time: may have arrived. `resend`: the next
                # run sends it once more (an outcome unknown twice is not sent again).
                "unknown": [
                    {"email": d.email, "message": d.message, "resend": not d.permanent}
                    for d in unknown
                ],
                **schedule,
            }
        )
        return 0
    kind = " (dry run)" if issue.dry_run else ""
    print(f"Issue {issue.key}{kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for delivery in failed:
        print(f"  failed {delivery.email}: {delivery.code or ''} {delivery.message}")
    if unknown:
        print(
            "  The server took these messages but did not reply in time: they may have "
            "arrived (NEWSLETTER_SMTP_DATA_TIMEOUT sets the wait)."
        )
    for delivery in unknown:
        then = "the next send tries once more" if not delivery.permanent else "not sent again"
        print(f"  unknown {delivery.email}: may have arrived; {then}")
    print("\n".join(schedule_lines))
    return 0


def _service_line(held: Holder | None) -> str:
    """Whether the service runs, or which other command holds the database."""
    if held is None:
        return "Service: not running ('newsletter run' starts it)"
    pid = f"pid {held.pid}" if held.pid is not None else "pid not recorded yet"
    if held.is_service:
        return f"Service: running ({pid})"
    what = {
        "send": "a send",
        "run --once": "a single pass ('newsletter run --once')",
    }.get(held.command, f"'newsletter {held.command}'" if held.command else "another process")
    return f"Service: not running; {what} is running ({pid}) and holds the database"


def cmd_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.membership import join
    from newsletter.subscribers import SubscriberChange

    change = SubscriberChange(
        email=args.email,
        topics=tuple(args.topic or ()),
        exclude=tuple(args.exclude) if args.exclude is not None else None,
        name=args.name,
        frequency=args.frequency,
        max_papers=args.max_papers,
    )
    with Store(settings.database_path) as store:
        result = join(settings, store, change)
    subscriber = result.subscriber
    topics = ", ".join(t.topic for t in subscriber.topics)
    verb = {"created": "Subscribed", "updated": "Updated", "unchanged": "Already subscribed:"}
    print(f"{verb[result.action]} {subscriber.email} ({subscriber.frequency}; topics: {topics})")
    return 0


def cmd_unsubscribe(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.membership import leave

    subscriber = _find_subscriber(settings, args.email)
    with Store(settings.database_path) as store:
        left = leave(settings, store, subscriber.email, source="cli")
    if left.file_problem:
        raise NewsletterError(
            f"{left.email} is unsubscribed (no issue will be sent to it), but "
            f"{settings.subscribers_file} was not updated: {left.file_problem}"
        )
    if not left.newly_recorded and not left.file_updated:
        print(f"{left.email} was already unsubscribed; nothing changed.")
    else:
        print(f"Unsubscribed {left.email}: no issue will be sent to it, even one already built.")
    return 0


def cmd_subscribers(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.membership import member_json, memberships

    with Store(settings.database_path) as store:
        members = memberships(settings, store)
    if args.json:
        _print_json([member_json(member) for member in members])
        return 0
    if not members:
        print(
            f"{settings.subscribers_file} lists no subscriber; add one with 'newsletter subscribe'."
        )
    for member in members:
        s = member.subscriber
        topics = ", ".join(t.topic for t in s.topics)
        print(f"{s.email:32} {s.frequency:6} {member.state:12} {member.origin:4}  {topics}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.web import serve

    serve(
        settings,
        host=args.host,
        port=args.port,
        ready=lambda line: print(line, flush=True),
        dry_run=getattr(args, "dry_run", False),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter",
        description="Turn Hugging Face Daily Papers dumps into a personal digest per subscriber.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch",
        help="get a day's papers from NEWSLETTER_SOURCE_URL into the inbox",
        description="Get a day's papers from the Daily Papers API (NEWSLETTER_SOURCE_URL) "
        "and write them into the inbox, where 'newsletter run' ingests them. Retries while "
        "the source is briefly down, within NEWSLETTER_FETCH_TIMEOUT seconds.",
    )
    fetch.add_argument(
        "--date",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day whose papers to fetch (default: today in NEWSLETTER_TIMEZONE)",
    )
    fetch.set_defaults(handler=cmd_fetch)

    ingest = commands.add_parser("ingest", help="parse dump files and store their papers")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="dump files")
    ingest.add_argument("--json", action="store_true", help="one JSON object per file")
    ingest.set_defaults(handler=cmd_ingest)

    dumps = commands.add_parser(
        "dumps", help="list the dumps ingested: id, shape, page date, papers, file"
    )
    dumps.add_argument("--json", action="store_true", help="a JSON list of dumps")
    dumps.set_defaults(handler=cmd_dumps)

    forget = commands.add_parser(
        "forget",
        help="remove a dump and the papers only it brought (papers already delivered stay "
        "in the history)",
    )
    forget.add_argument(
        "dump",
        metavar="DUMP",
        help="the dump's id, or the file name it was ingested under ('newsletter dumps')",
    )
    forget.set_defaults(handler=cmd_forget)

    rank = commands.add_parser("rank", help="show what one subscriber would get next, best first")
    rank.add_argument("email")
    rank.add_argument("--json", action="store_true", help="a JSON list of picks")
    rank.set_defaults(handler=cmd_rank)

    preview = commands.add_parser(
        "preview", help="write the HTML and text of a subscriber's next issue to files"
    )
    preview.add_argument("email", nargs="?", help="the subscriber (not needed with --serve)")
    preview.add_argument("--out", help="folder for the files (default: OUTBOX_DIR/preview)")
    preview.add_argument("--open", action="store_true", help="open the HTML in a browser")
    preview.add_argument(
        "--serve", action="store_true", help="serve every preview in the browser ('serve')"
    )
    _server_options(preview)
    preview.set_defaults(handler=cmd_preview)

    send = commands.add_parser("send", help="build today's issue and deliver it")
    send.add_argument(
        "--dry-run", action="store_true", help="write one .eml per recipient, send nothing"
    )
    send.set_defaults(handler=cmd_send)

    run = commands.add_parser(
        "run", help="the service: ingest dumps as they arrive, send each issue at send_time"
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="one intake pass and one send pass (if due), then exit (for cron and tests)",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="write each issue as .eml files, send nothing"
    )
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser(
        "status", help="ledger counts of an issue (default: latest) and the next send"
    )
    status.add_argument("issue", nargs="?", help="issue key, e.g. 2026-11-22")
    status.add_argument("--dry-run", action="store_true", help="the dry-run issue of that key")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    subscribe = commands.add_parser(
        "subscribe", help="add a subscriber or update one (edits the subscribers file)"
    )
    subscribe.add_argument("email")
    subscribe.add_argument(
        "--topic", action="append", metavar="T", help="a topic (repeat; replaces the list)"
    )
    subscribe.add_argument(
        "--exclude",
        action="append",
        metavar="X",
        help="papers mainly about this are never picked (repeat; replaces the list)",
    )
    subscribe.add_argument("--name", metavar="N")
    subscribe.add_argument("--frequency", choices=("daily", "weekly"))
    subscribe.add_argument("--max-papers", type=int, metavar="K")
    subscribe.set_defaults(handler=cmd_subscribe)

    unsubscribe = commands.add_parser(
        "unsubscribe", help="stop sending to an address (database and subscribers file)"
    )
    unsubscribe.add_argument("email")
    unsubscribe.set_defaults(handler=cmd_unsubscribe)

    subscribers = commands.add_parser("subscribers", help="list the subscribers")
    subscribers.add_argument("--json", action="store_true", help="a JSON list of subscribers")
    subscribers.set_defaults(handler=cmd_subscribers)

    serve = commands.add_parser(
        "serve",
        help="the web app: sign-up, preferences, feedback, one-click unsubscribe, previews",
        description="Serve the sign-up form (/subscribe), the readers' preferences and "
        "feedback pages, one-click unsubscribe and (on loopback) the previews. Example: "
        "newsletter serve --port 8000 --dry-run",
    )
    _server_options(serve)
    serve.add_argument(
        "--dry-run",
        action="store_true",
        help="write sign-up confirmation emails to OUTBOX_DIR/notices/ instead of sending them",
    )
    serve.set_defaults(handler=cmd_serve)
    return parser


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks a free one)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request
    handler: Command = args.handler
    try:
        return handler(args, load_settings())
    except NewsletterError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
