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
from typing import TYPE_CHECKING, Any

from newsletter import logs
from newsletter.errors import DumpError, NewsletterError
from newsletter.lock import Holder
from newsletter.logs import FORMATS, TEXT
from newsletter.settings import Settings, load_settings
from newsletter.store import Store

if TYPE_CHECKING:
    from newsletter.pipeline import SendReport

log = logging.getLogger("newsletter")

Command = Callable[[argparse.Namespace, Settings], int]

MAX_PORT = 65535
SUMMARY_LINES = 25  # per-recipient lines a command prints before it summarises the rest


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _papers(count: int) -> str:
    return f"{count} paper{'' if count == 1 else 's'}"


def _store_with_papers(settings: Settings) -> Store:
    """The database of a command that picks papers: refused when it does not exist, and
    when nothing was ever ingested into it (its issue would wrongly say "no match")."""
    store = Store(settings.database_path, create=False)
    if store.latest_dump_id() == 0:
        store.close()
        raise NewsletterError(
            f"{settings.database_path}: nothing ingested here yet; run `newsletter ingest "
            "FILE`, or `newsletter fetch` and let `newsletter run` take it in"
        )
    return store


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


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.workdir import init_folder, next_steps, start_database, summary

    folder = Path(args.folder)
    report = init_folder(folder, templates=args.templates)
    print("\n".join(summary(report)))
    database, made = start_database(folder)
    print(f"{'Created' if made else 'Kept'} {database} (the database)")
    print("\n".join(next_steps(folder)))
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.pipeline import embedder_for, ingest_file

    results: list[dict[str, Any]] = []
    failed = 0
    embedder = embedder_for(settings)
    with Store(settings.database_path) as store:  # made here when missing
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
    with Store(settings.database_path, create=False) as store:
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

    with Store(settings.database_path, create=False) as store:
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
    from newsletter.subscribers import load_subscribers

    if not settings.database_path.exists():  # no database, no web sign-up: the file is all
        wanted = email.strip().lower()
        listed = [s for s in load_subscribers(settings.subscribers_file) if s.key == wanted]
        member = roster.Member(listed[0], "active", "file") if listed else None
    else:
        with Store(settings.database_path, create=False) as store:
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
    with _store_with_papers(settings) as store:
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
    with _store_with_papers(settings) as store:
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
    from newsletter.preflight import require_safe_send

    if args.dry_run:
        with _store_with_papers(settings) as store:
            report = dry_run(settings, store)
        _print_dry_run(report)
        return 0
    require_safe_send(settings)  # before the lock and the database: nothing is touched
    # Not beside a running service: both would claim the same ledger rows. The store
    # first: a missing database is refused before the lock file is made beside it.
    with _store_with_papers(settings) as store:
        with DatabaseLock(settings.database_path, command="send"):
            report = deliver(settings, store)
    print(f"Issue {report.issue.key}: {send_summary(report)}")
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


def send_summary(report: SendReport) -> str:
    """What this run of `send` did, and what the ledger held before it: a re-run that
    finds everything done says so instead of repeating the first run's counts."""
    counts = report.counts
    if sum(counts.values()) == 0:
        return "no recipient (no subscriber has a relevant paper in this issue)"
    now = {
        "sent": report.sent_now,
        "failed": report.failed_now,
        "of unknown outcome (may have arrived)": report.unknown_now,
        "skipped": len(report.skipped),
    }
    earlier = {
        "already sent": counts["sent"] - report.sent_now,
        "failed permanently": counts["failed"] - report.failed_now,
        "of unknown outcome, not sent again": counts["unknown"] - report.unknown_now,
        "skipped (unsubscribed or inactive)": counts["skipped"] - len(report.skipped),
    }
    before = ", ".join(f"{count} {what}" for what, count in earlier.items() if count > 0)
    if not any(now.values()):
        left = counts["pending"] + counts["sending"]
        if left == 0:
            return f"nothing left to send: {before}"
        return f"nothing sent this time, {left} left to send" + (f" ({before})" if before else "")
    done = ", ".join(f"{what} {count}" for what, count in now.items() if count > 0)
    return done + (f"; before this run: {before}" if before else "")


def _print_dry_run(report: SendReport) -> None:
    key, folder = report.issue.key, report.folder
    already = len(report.recipients) - report.written_now
    if not report.recipients:
        print(f"Dry run of issue {key}: nothing was sent.")
        print("No subscriber has a relevant paper in this issue: no message written.")
    elif report.written_now == 0 and not report.skipped:
        print(
            f"Dry run of issue {key}: nothing left to write: {already} message(s) already in "
            f"{folder}/, unchanged; nothing was sent ('newsletter status' lists them)."
        )
        return
    else:
        note = f" ({already} were already there, unchanged)" if already > 0 else ""
        print(f"Dry run of issue {key}: nothing was sent.")
        print(
            f"{len(report.recipients)} message(s) in {folder}/: "
            f"{report.written_now} written now{note}"
        )
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


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.scheduler import run_service

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
    with Store(settings.database_path, create=False) as store:
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
    with Store(settings.database_path, create=False) as store:
        result = join(settings, store, change)
    subscriber = result.subscriber
    topics = ", ".join(t.topic for t in subscriber.topics)
    verb = {"created": "Subscribed", "updated": "Updated", "unchanged": "Already subscribed:"}
    print(f"{verb[result.action]} {subscriber.email} ({subscriber.frequency}; topics: {topics})")
    return 0


def cmd_unsubscribe(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.membership import leave

    subscriber = _find_subscriber(settings, args.email)
    with Store(settings.database_path, create=False) as store:
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

    with Store(settings.database_path, create=False) as store:
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


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.check import exit_code, run_checks

    findings = run_checks(settings, lambda finding: print(finding, flush=True))
    return exit_code(findings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from newsletter.web import serve

    Store(settings.database_path, create=False).close()  # a mistyped path: refused now
    serve(
        settings,
        host=args.host,
        port=args.port,
        ready=lambda line: print(line, flush=True),
        dry_run=getattr(args, "dry_run", False),
    )
    return 0


EXAMPLES = "examples:"


class HelpFormat(argparse.RawDescriptionHelpFormatter):
    """Descriptions wrapped to the terminal's width; the examples kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES):
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


HELP_FORMAT = HelpFormat


def examples(*lines: str) -> str:
    """A command's help epilog: the example command lines, one per line."""
    return EXAMPLES + "\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter",
        description="Turn Hugging Face Daily Papers dumps into a personal digest per subscriber.",
        epilog=examples(
            "newsletter ingest inbox/*.txt        # read the dumps you saved",
            "newsletter send --dry-run            # one .eml per recipient under outbox/",
            "newsletter -v --log-format json run  # the service, logging JSON lines to stderr",
            "newsletter COMMAND --help            # what a command does, with examples",
        ),
        formatter_class=HELP_FORMAT,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    _log_options(parser, default=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="make a working folder: .env with a new secret key, subscribers.yaml, inbox/",
        description="Lay out a working folder for the service: a .env with a generated\n"
        "secret key and every setting listed with its default and what it does, a\n"
        "subscribers.yaml with one example subscriber, an inbox/ folder and the database.\n"
        "A file that exists is kept, never overwritten.",
        epilog=examples("newsletter init", "newsletter init /var/lib/newsletter --templates"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "folder",
        nargs="?",
        default=".",
        metavar="DIR",
        help="the folder to set up (default: the current one; made if missing)",
    )
    init.add_argument(
        "--templates",
        action="store_true",
        help="also copy the email and web templates into DIR/templates/ to edit them "
        "(the .env then sets NEWSLETTER_TEMPLATES_DIR=templates)",
    )
    init.set_defaults(handler=cmd_init)

    fetch = commands.add_parser(
        "fetch",
        help="get a day's papers from NEWSLETTER_SOURCE_URL into the inbox",
        description="Get a day's papers from the Daily Papers API (NEWSLETTER_SOURCE_URL) "
        "and write them into the inbox, where 'newsletter run' ingests them. Retries while "
        "the source is briefly down, within NEWSLETTER_FETCH_TIMEOUT seconds.",
        epilog=examples(
            "newsletter fetch                     # today's papers (in NEWSLETTER_TIMEZONE)",
            "newsletter fetch --date 2026-11-25   # an earlier day's",
        ),
    )
    fetch.add_argument(
        "--date",
        type=_day,
        metavar="YYYY-MM-DD",
        help="the day whose papers to fetch (default: today in NEWSLETTER_TIMEZONE)",
    )
    fetch.set_defaults(handler=cmd_fetch)

    ingest = commands.add_parser(
        "ingest",
        help="parse dump files and store their papers",
        description="Read dump files (any capture of the Daily Papers pages: API JSON, page "
        "text, HTML, Markdown, text-browser dumps) and store their papers in the database. "
        "A file that is not a dump is refused with the reason; the others still go in.",
        epilog=examples(
            "newsletter ingest inbox/*.txt",
            "newsletter ingest --json saved/page.html   # one JSON object per file on stdout",
        ),
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="dump files")
    ingest.add_argument("--json", action="store_true", help="one JSON object per file")
    ingest.set_defaults(handler=cmd_ingest)

    dumps = commands.add_parser(
        "dumps",
        help="list the dumps ingested: id, shape, page date, papers, file",
        description="List every dump ingested so far: its id (for 'newsletter forget'), "
        "shape, the page's date, its papers and how many were new, and the file.",
        epilog=examples("newsletter dumps", "newsletter dumps --json"),
    )
    dumps.add_argument("--json", action="store_true", help="a JSON list of dumps")
    dumps.set_defaults(handler=cmd_dumps)

    forget = commands.add_parser(
        "forget",
        help="remove a dump and the papers only it brought (papers already delivered stay "
        "in the history)",
        description="Take a wrongly ingested dump back out, with the papers only it brought. "
        "Papers already delivered (or planned in an issue being sent) stay in the history.",
        epilog=examples(
            "newsletter forget 3                  # by the id 'newsletter dumps' shows",
            "newsletter forget inbox/notes.txt    # by the file it was ingested as",
        ),
    )
    forget.add_argument(
        "dump",
        metavar="DUMP",
        help="the dump's id, or the file name it was ingested under ('newsletter dumps')",
    )
    forget.set_defaults(handler=cmd_forget)

    rank = commands.add_parser(
        "rank",
        help="show what one subscriber would get next, best first",
        description="Rank the papers of the next issue for one subscriber and say why each "
        "was picked. Sends and stores nothing.",
        epilog=examples(
            "newsletter rank ada@example.org", "newsletter rank ada@example.org --json"
        ),
    )
    rank.add_argument("email", help="the subscriber's address, as in the subscribers file")
    rank.add_argument("--json", action="store_true", help="a JSON list of picks")
    rank.set_defaults(handler=cmd_rank)

    preview = commands.add_parser(
        "preview",
        help="write the HTML and text of a subscriber's next issue to files",
        description="Render one subscriber's next issue as it would be mailed (HTML and "
        "text) into files, or serve every subscriber's preview in the browser. Sends nothing.",
        epilog=examples(
            "newsletter preview ada@example.org --open",
            "newsletter preview --serve --port 8001   # every preview at http://127.0.0.1:8001/",
        ),
    )
    preview.add_argument("email", nargs="?", help="the subscriber (not needed with --serve)")
    preview.add_argument("--out", help="folder for the files (default: OUTBOX_DIR/preview)")
    preview.add_argument("--open", action="store_true", help="open the HTML in a browser")
    preview.add_argument(
        "--serve", action="store_true", help="serve every preview in the browser ('serve')"
    )
    _server_options(preview)
    preview.set_defaults(handler=cmd_preview)

    send = commands.add_parser(
        "send",
        help="build today's issue and deliver it",
        description="Build today's issue (once: a built issue never changes) and send it over "
        "SMTP to every recipient not yet sent it. Run it again after a failure: it sends "
        "only what is left, and says so when nothing is.",
        epilog=examples(
            "newsletter send --dry-run   # write outbox/<issue>/<address>.eml, send nothing",
            "newsletter send             # mail the issue (NEWSLETTER_SMTP_* settings)",
        ),
    )
    send.add_argument(
        "--dry-run", action="store_true", help="write one .eml per recipient, send nothing"
    )
    send.set_defaults(handler=cmd_send)

    run = commands.add_parser(
        "run",
        help="the service: ingest dumps as they arrive, send each issue at send_time",
        description="The long-running service: fetch the day's papers, ingest the dumps that "
        "arrive in the inbox, and send each issue at NEWSLETTER_SEND_TIME, exactly once. "
        "It logs at info level (-q: warnings only); --log-format json suits a log collector.",
        epilog=examples(
            "newsletter run                          # until SIGTERM or Ctrl-C",
            "newsletter --log-format json run        # one JSON object per log line",
            "*/10 * * * * cd /srv/newsletter && .venv/bin/newsletter run --once   # cron",
        ),
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="one intake pass and one send pass (if due), then exit (for cron and tests); "
        "logs warnings only unless -v",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="write each issue as .eml files, send nothing"
    )
    run.set_defaults(handler=cmd_run)

    status = commands.add_parser(
        "status",
        help="ledger counts of an issue (default: latest) and the next send",
        description="What the ledger says about an issue (sent, failed, pending, ...) and "
        "who failed why; the next send and fetch; whether the service is running.",
        epilog=examples(
            "newsletter status",
            "newsletter status 2026-11-22 --dry-run --json",
        ),
    )
    status.add_argument("issue", nargs="?", help="issue key, e.g. 2026-11-22")
    status.add_argument("--dry-run", action="store_true", help="the dry-run issue of that key")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    subscribe = commands.add_parser(
        "subscribe",
        help="add a subscriber or update one (edits the subscribers file)",
        description="Add a subscriber to the subscribers file, or change one already there "
        "(options not given stay as they are). Subscribing again resumes a paused or "
        "unsubscribed address. The rest of the file is left byte for byte.",
        epilog=examples(
            'newsletter subscribe kim@example.org --topic "speech recognition" --topic audio',
            "newsletter subscribe kim@example.org --frequency weekly --max-papers 6",
        ),
    )
    subscribe.add_argument(
        "email", help="the subscriber's address (also who is updated when it is listed)"
    )
    subscribe.add_argument(
        "--topic",
        action="append",
        metavar="T",
        help="a topic, a word or a phrase (repeat; replaces the list; a new subscriber needs one)",
    )
    subscribe.add_argument(
        "--exclude",
        action="append",
        metavar="X",
        help="papers mainly about this are never picked (repeat; replaces the list)",
    )
    subscribe.add_argument(
        "--name", metavar="N", help="the name the digest greets them by and puts in To:"
    )
    subscribe.add_argument(
        "--frequency",
        choices=("daily", "weekly"),
        help="daily: every issue; weekly: the best of the week on NEWSLETTER_WEEKLY_DAY "
        "(default for a new subscriber: daily)",
    )
    subscribe.add_argument(
        "--max-papers",
        type=int,
        metavar="K",
        help="at most K papers per issue, 1 to 100 (default for a new subscriber: 10)",
    )
    subscribe.set_defaults(handler=cmd_subscribe)

    unsubscribe = commands.add_parser(
        "unsubscribe",
        help="stop sending to an address (database and subscribers file)",
        description="Stop sending to an address at once, even an issue already built; its "
        "entry in the subscribers file is marked 'active: false'.",
        epilog=examples("newsletter unsubscribe kim@example.org"),
    )
    unsubscribe.add_argument("email", help="the address to stop sending to")
    unsubscribe.set_defaults(handler=cmd_unsubscribe)

    subscribers = commands.add_parser(
        "subscribers",
        help="list the subscribers",
        description="List who is subscribed (unsubscribes and paused entries included), "
        "with their frequency and topics.",
        epilog=examples("newsletter subscribers", "newsletter subscribers --json"),
    )
    subscribers.add_argument("--json", action="store_true", help="a JSON list of subscribers")
    subscribers.set_defaults(handler=cmd_subscribers)

    check = commands.add_parser(
        "check",
        help="is this folder ready to send for real? settings, templates, subscribers, "
        "database, SMTP login, the base URL",
        description="Check everything a real send depends on, one line per finding (ok, "
        "warn, error): the settings (what 'send' and 'run' would refuse), the templates, the "
        "subscribers file, the database, the SMTP server (connect, EHLO, STARTTLS and AUTH as "
        "configured; no message is sent) and whether NEWSLETTER_BASE_URL answers as this "
        "project's 'newsletter serve' (its /healthz). Exit code 1 on any error.",
        epilog=examples("newsletter check", "newsletter check && newsletter run"),
    )
    check.set_defaults(handler=cmd_check)

    serve = commands.add_parser(
        "serve",
        help="the web app: sign-up, preferences, feedback, one-click unsubscribe, previews",
        description="Serve the web pages: the sign-up form (/subscribe) with its double "
        "opt-in, the readers' preferences (/manage/...) and feedback pages, one-click "
        "unsubscribe (what the emails link to) and, on loopback, the previews of the next "
        "issue. Logs at info level (each unsubscribe; -q: warnings only).",
        epilog=examples(
            "newsletter serve                       # http://127.0.0.1:8000/",
            "newsletter serve --host 0.0.0.0 --port 8080   # behind a reverse proxy",
            "newsletter serve --dry-run             # sign-up emails into outbox/notices/",
        ),
    )
    _server_options(serve)
    serve.add_argument(
        "--dry-run",
        action="store_true",
        help="write sign-up confirmation emails to OUTBOX_DIR/notices/ instead of sending them",
    )
    serve.set_defaults(handler=cmd_serve)
    for command in commands.choices.values():
        command.formatter_class = HELP_FORMAT  # keep the examples' line breaks
        _log_options(command, default=False)
    return parser


def _log_options(parser: argparse.ArgumentParser, *, default: bool) -> None:
    """-v, -q and --log-format, accepted before or after the command: the command's copy
    has no defaults of its own, so it never overrides what was given before it."""
    unset: dict[str, Any] = {} if default else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="log more on stderr: -v adds info, -vv debug",
        **({"default": 0} if default else unset),
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        help="log less: warnings only, also for run and serve",
        **({"default": 0} if default else unset),
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help="text (default) or json: one JSON object per line on stderr, for services",
        **({"default": TEXT} if default else unset),
    )


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (8000; 0 picks a free one)")


def _port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535, or 0 for one the system picks."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port; use 1 to {MAX_PORT} (or 0 to pick a free one)"
        )
    return port


def version() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from newsletter import __version__

    try:
        return installed("newsletter")
    except PackageNotFoundError:
        return __version__


def is_service(args: argparse.Namespace) -> bool:
    """The long-running commands, whose log is their output: `run` (not `--once`),
    `serve`, `preview --serve`."""
    if args.command == "run":
        return not args.once
    return args.command == "serve" or (args.command == "preview" and bool(args.serve))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = 2 if args.debug else args.verbose - args.quiet
    logs.configure(
        verbosity=verbosity,
        log_format=args.log_format,
        service=is_service(args),
        stamped=args.command == "run" or None,  # `run --once` too: its lines go to cron logs
    )
    handler: Command = args.handler
    try:
        return handler(args, load_settings())
    except NewsletterError as exc:
        if args.debug:
            raise
        for line in str(exc).splitlines() or [""]:  # a refused send: one line per problem
            print(f"error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
