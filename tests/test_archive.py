"""The archive on a real uvicorn server, read with a real HTTP client: the email's "view in
browser" link shows the issue as it was sent, earlier issues are linked, the Atom feed
lists every paper a reader was sent (and parses), and forged or foreign links are refused.
Issues are really sent, to an aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from newsletter import tokens
from newsletter.pipeline import deliver, dry_run, ingest_file
from newsletter.settings import DEV_SECRET_KEY, Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import unsubscribe_token
from newsletter.web import create_app
from tests.factories import api_paper, write_api_dump
from tests.smtp_server import smtp_server
from tests.web_server import running

SECRET = "archive-test-secret-long-enough-for-anything"
FIRST = date(2026, 11, 22)
SECOND = date(2026, 11, 23)
ATOM = "{http://www.w3.org/2005/Atom}"
TRICKY_TITLE = 'Distilling <Teachers> & "Students": Continual Learning at Scale'


PUBLIC = "https://news.lab.example.org"  # where a lab's reverse proxy serves the site


@pytest.fixture
def site(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings]]:
    """The app on loopback behind its public base URL (as in production: real sends
    refuse links to a loopback address); `get` maps a public link to the server."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("NEWSLETTER_FROM_ADDRESS", "Lab Digest <digest@lab.example.org>")
    monkeypatch.setenv("NEWSLETTER_BASE_URL", PUBLIC)
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with running(lambda url: create_app(load_settings())) as url:
        yield url, load_settings()


def get(server: str, link: str) -> httpx.Response:
    """GET a link of an email from the server, as the reverse proxy would pass it on."""
    assert link.startswith(PUBLIC + "/"), link
    return httpx.get(server + urlsplit(link).path)


def send(settings: Settings, day: date) -> dict[str, EmailMessage]:
    """Send the issue of `day` for real (to a server on loopback): each message by address."""
    with smtp_server() as server:
        real = load_settings(smtp_port=server.port)
        with Store(settings.database_path) as store:
            report = deliver(real, store, issue_date=day, progress=False)
        assert report.complete
        return {
            address: server.recorder.messages_to(address)[0]
            for address in server.recorder.recipients()
        }


def html_of(message: EmailMessage) -> HTMLParser:
    part = message.get_body(("html",))
    assert part is not None
    return HTMLParser(part.get_content())


def link(page: HTMLParser, text: str) -> str:
    found = [a.attributes.get("href") or "" for a in page.css("a") if a.text(strip=True) == text]
    assert found, f"no link {text!r}"
    return found[0]


def titles(page: HTMLParser) -> list[str]:
    return [a.text() for a in page.css(".paper-title a")]


def second_day_dump(project: Path) -> Path:
    """A Daily Papers API reply of Nov 23 with papers for Ada's topics."""
    authors = ["Mira Okafor", "Lena Brandt", "Tomás Ruiz", "Yui Sato", "Omar Haddad"]
    return write_api_dump(
        project / "2026-11-23.json",
        [
            api_paper(
                "2611.04321",
                TRICKY_TITLE,
                "We study continual learning with knowledge distillation from many teachers. "
                "Students keep what they learned before while new tasks arrive.",
                authors,
                day="2026-11-23",
                ai_summary="Students distilled from many teachers forget less.",
                github="https://github.com/example/distil",
            ),
            api_paper(
                "2611.04322",
                "Replay-Free Continual Learning for Language Models",
                "A continual learning method for language models that needs no replay buffer.",
                authors[:2],
                day="2026-11-23",
            ),
        ],
    )


def test_view_in_browser_shows_the_issue_as_sent(site: tuple[str, Settings]) -> None:
    url, settings = site
    sent = send(settings, FIRST)
    for address in ("ada@example.org", "grace@example.org"):
        # The headers name the sender's domain (From: digest@lab.example.org).
        assert sent[address]["Message-ID"].endswith("@lab.example.org>")
        assert sent[address]["List-Id"] == "Research Digest <digest.lab.example.org>"
        mail = html_of(sent[address])
        view = link(mail, "View in browser")
        assert view.startswith(f"{PUBLIC}/archive/")
        response = get(url, view)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert "noindex" in response.headers["x-robots-tag"]
        page = HTMLParser(response.text)
        assert titles(page) == titles(mail) and titles(page)
        assert not [a for a in page.css("a") if a.text(strip=True) == "View in browser"]
        assert link(page, "Unsubscribe") == link(mail, "Unsubscribe")
        assert link(page, "Atom feed") == link(mail, "Atom feed")
        assert get(url, view).text == response.text  # the same page every time
    assert titles(html_of(sent["ada@example.org"])) != titles(html_of(sent["grace@example.org"]))


def test_an_issue_links_the_earlier_ones_and_outlives_the_subscription(
    site: tuple[str, Settings], project: Path
) -> None:
    url, settings = site
    first = send(settings, FIRST)["ada@example.org"]
    with Store(settings.database_path) as store:
        ingest_file(store, second_day_dump(project))
    second = send(settings, SECOND)["ada@example.org"]
    page = HTMLParser(get(url, link(html_of(second), "View in browser")).text)
    assert TRICKY_TITLE in titles(page)
    # The earlier issue, at the very address its own email gave (links are stable).
    assert link(page, "Nov 22, 2026") == link(html_of(first), "View in browser")
    # Ada leaves the list altogether: what she was sent stays readable.
    yaml = settings.subscribers_file.read_text()
    start = yaml.index("  - email: ada@example.org")
    end = yaml.index("  - email: grace@example.org")
    settings.subscribers_file.write_text(yaml[:start] + yaml[end:])
    again = get(url, link(html_of(first), "View in browser"))
    assert again.status_code == 200
    assert titles(HTMLParser(again.text)) == titles(html_of(first))


def test_the_feed_lists_every_paper_sent_newest_issue_first(
    site: tuple[str, Settings], project: Path
) -> None:
    url, settings = site
    first = send(settings, FIRST)["ada@example.org"]
    with Store(settings.database_path) as store:
        ingest_file(store, second_day_dump(project))
    second = send(settings, SECOND)["ada@example.org"]
    feed_link = link(html_of(second), "Atom feed")
    assert feed_link == link(html_of(first), "Atom feed") and feed_link.endswith(".atom")
    response = get(url, feed_link)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author/{A}name"):
        assert (feed.findtext(f"{ATOM}{required}".replace("{A}", ATOM)) or "").strip(), required
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == feed_link  # type: ignore[union-attr]
    entries = feed.findall(f"{ATOM}entry")
    expected = titles(html_of(second)) + titles(html_of(first))
    assert [e.findtext(f"{ATOM}title") for e in entries] == expected
    assert TRICKY_TITLE in expected  # escaped on the way in, read back exactly
    for entry in entries:
        for required in ("id", "title", "updated", "summary"):
            assert (entry.findtext(f"{ATOM}{required}") or "").strip(), required
        alternate = entry.find(f"{ATOM}link[@rel='alternate']")
        assert alternate is not None
        assert alternate.get("href", "").startswith("https://huggingface.co/papers")
    tricky = next(e for e in entries if e.findtext(f"{ATOM}title") == TRICKY_TITLE)
    assert tricky.find(f"{ATOM}link[@rel='alternate']").get("href") == (  # type: ignore[union-attr]
        "https://huggingface.co/papers/2611.04321"
    )
    assert [a.findtext(f"{ATOM}name") for a in tricky.findall(f"{ATOM}author")][:2] == [
        "Mira Okafor",
        "Lena Brandt",
    ]
    assert (tricky.findtext(f"{ATOM}summary") or "").startswith("TL;DR Students distilled")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids)
    refetched = ET.fromstring(get(url, feed_link).content)
    assert [e.findtext(f"{ATOM}id") for e in refetched.findall(f"{ATOM}entry")] == ids


def test_forged_foreign_and_unsent_links_are_refused(site: tuple[str, Settings]) -> None:
    url, settings = site
    mail = html_of(send(settings, FIRST)["ada@example.org"])
    view, feed = link(mail, "View in browser"), link(mail, "Atom feed")
    view_token = view.rsplit("/", 1)[1]
    feed_token = feed.rsplit("/", 1)[1].removesuffix(".atom")
    flipped = view_token[:-3] + ("A" if view_token[-3] != "A" else "B") + view_token[-2:]
    refused = [
        f"{url}/archive/{flipped}",
        f"{url}/archive/{view_token[:20]}",
        f"{url}/archive/{unsubscribe_token('ada@example.org', SECRET)}",
        f"{url}/archive/{feed_token}",
        f"{url}/feed/{view_token}.atom",
        f"{url}/archive/{tokens.sign('archive', ['ada@example.org', '2026-11-22', 0], DEV_SECRET_KEY)}",
        f"{url}/archive/{tokens.sign('archive', 'ada@example.org', SECRET)}",
        f"{url}/feed/{tokens.sign('feed', ['not an address', 0], SECRET)}.atom",
    ]
    for address in refused:
        response = httpx.get(address)
        assert response.status_code == 400, address
        assert "not valid" in response.text
    never_sent = [
        ["ada@example.org", "2026-11-21", 0],  # no such issue
        ["ada@example.org", "2026-11-22", 1],  # no dry run of it
        ["nobody@example.org", "2026-11-22", 0],  # not a recipient
    ]
    for value in never_sent:
        response = httpx.get(f"{url}/archive/{tokens.sign('archive', value, SECRET)}")
        assert response.status_code == 404, value
        assert "never sent" in response.text


def test_a_dry_runs_links_open_the_dry_run(site: tuple[str, Settings]) -> None:
    url, settings = site
    with Store(settings.database_path) as store:
        report = dry_run(settings, store, issue_date=FIRST)
    assert report.folder is not None
    message = email.message_from_bytes(
        (report.folder / "ada@example.org.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    mail = html_of(message)
    page = HTMLParser(get(url, link(mail, "View in browser")).text)
    assert titles(page) == titles(mail)
    feed = ET.fromstring(get(url, link(mail, "Atom feed")).content)
    assert [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")] == titles(mail)
