"""Readers on the web, over real HTTP (uvicorn) with a real SMTP server (aiosmtpd): sign-up
with double opt-in, CSRF, the honeypot, throttling, token scopes and expiry, the
preferences page and feedback marks."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from unittest import mock

import httpx
import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from newsletter import feedback, links, roster, signup, tokens
from newsletter.membership import member_json, memberships
from newsletter.pipeline import dry_run, ingest_file, next_picks
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import unsubscribe_token
from newsletter.web import create_app
from tests.smtp_server import RunningServer, smtp_server
from tests.web_server import running

SECRET = "signup-test-secret"
NEW = "kim@example.net"


@dataclass
class Site:
    url: str
    settings: Settings
    smtp: RunningServer

    def inbox(self, address: str) -> list[EmailMessage]:
        found = []
        for rcpt, data in self.smtp.recorder.received:
            if rcpt.lower() == address.lower():
                message = email.message_from_bytes(data, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found


def make_site(project: Path, monkeypatch: pytest.MonkeyPatch, **settings: str) -> Iterator[Site]:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    for name, value in settings.items():
        monkeypatch.setenv(f"NEWSLETTER_{name.upper()}", value)
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with smtp_server() as smtp:
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", smtp.host)
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(smtp.port))
        with running(lambda url: create_app(load_settings(base_url=url))) as url:
            monkeypatch.setenv("NEWSLETTER_BASE_URL", url)
            yield Site(url, load_settings(), smtp)


@pytest.fixture
def site(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield from make_site(project, monkeypatch)


def form_token(html: str) -> str:
    field = HTMLParser(html).css_first("input[name=csrftoken]")
    assert field is not None, "the page has no CSRF field"
    return str(field.attributes["value"])


def sign_up(client: httpx.Client, site: Site, address: str, **extra: str) -> httpx.Response:
    page = client.get(f"{site.url}/subscribe")
    assert page.status_code == 200
    data = {
        "csrftoken": form_token(page.text),
        "email": address,
        "topics": "knowledge distillation, continual learning",
        "frequency": "daily",
        **extra,
    }
    return client.post(f"{site.url}/subscribe", data=data)


def link_in(message: EmailMessage, kind: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(rf"(http://\S+/{kind}/\S+)", body.get_content())
    assert found, f"no /{kind}/ link in the message"
    return found[1]


def heading(html: str) -> str:
    node = HTMLParser(html).css_first("h1")
    return node.text(strip=True) if node is not None else ""


def state_of(settings: Settings, address: str) -> str | None:
    with Store(settings.database_path) as store:
        found = [m for m in memberships(settings, store) if m.subscriber.key == address]
    return found[0].state if found else None


def test_sign_up_confirm_and_confirm_again(site: Site) -> None:
    with httpx.Client() as client:
        answer = sign_up(client, site, NEW)
        assert answer.status_code == 200 and heading(answer.text) == "Check your inbox"
        (message,) = site.inbox(NEW)
        assert "Confirm" in str(message["Subject"])
        confirm = link_in(message, "confirm")
        assert link_in(message, "manage")  # the preferences link is in it too
        assert state_of(site.settings, NEW) == "pending"

        # A scanner following the link changes nothing; the page holds a button.
        page = client.get(confirm)
        assert heading(page.text) == "Confirm your subscription"
        assert state_of(site.settings, NEW) == "pending"
        with Store(site.settings.database_path) as store:
            assert NEW not in {s.key for s in roster.receiving(site.settings, store)}

        done = client.post(confirm, data={"csrftoken": form_token(page.text)})
        assert done.status_code == 200 and heading(done.text) == "You are subscribed"
        assert state_of(site.settings, NEW) == "active"
        again = client.post(confirm, data={"csrftoken": form_token(page.text)})
        assert again.status_code == 200 and heading(again.text) == "You are subscribed"
        manage = HTMLParser(done.text).css_first("a.manage")
        assert manage is not None and "/manage/" in str(manage.attributes["href"])
    with Store(site.settings.database_path) as store:
        kim = next(m for m in memberships(site.settings, store) if m.subscriber.key == NEW)
        assert member_json(kim)["origin"] == "web"
        assert [t.topic for t in kim.subscriber.topics] == [
            "knowledge distillation",
            "continual learning",
        ]
        # The web sign-up gets the next issue; the operator's file never names it.
        assert next_picks(site.settings, store, kim.subscriber)
    assert NEW not in site.settings.subscribers_file.read_text()


def test_the_same_answer_for_known_and_unknown_addresses(site: Site) -> None:
    with httpx.Client() as client:
        unknown = sign_up(client, site, NEW)
        known = sign_up(client, site, "ada@example.org")
    assert unknown.status_code == known.status_code == 200
    assert unknown.text.replace(NEW, "X") == known.text.replace("ada@example.org", "X")
    # Ada, already subscribed, is told so, with her preferences link; no confirmation.
    (message,) = site.inbox("ada@example.org")
    assert "already subscribed" in str(message["Subject"])
    assert link_in(message, "manage")
    assert state_of(site.settings, "ada@example.org") == "active"


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    data = {"email": NEW, "topics": "speech", "frequency": "daily"}
    # No cookie and no token (a cross-site form post).
    bare = httpx.post(f"{site.url}/subscribe", data=data)
    assert bare.status_code == 403
    with httpx.Client() as client:
        client.get(f"{site.url}/subscribe")  # the cookie is set
        wrong = client.post(f"{site.url}/subscribe", data={**data, "csrftoken": "forged"})
        assert wrong.status_code == 403
    assert site.smtp.recorder.received == []
    assert state_of(site.settings, NEW) is None


def test_the_honeypot_answers_the_same_and_sends_nothing(site: Site) -> None:
    with httpx.Client() as client:
        answer = sign_up(client, site, NEW, website="http://spam.example")
    assert answer.status_code == 200 and heading(answer.text) == "Check your inbox"
    assert site.inbox(NEW) == []
    assert state_of(site.settings, NEW) is None


def test_invalid_form_says_which_field(site: Site) -> None:
    with httpx.Client() as client:
        answer = sign_up(client, site, "not-an-address")
        assert answer.status_code == 400
        assert "not a valid email address" in answer.text
        answer = sign_up(client, site, NEW, topics=" , ")
        assert answer.status_code == 400 and "at least one topic" in answer.text
    assert site.smtp.recorder.received == []


def test_throttled_per_address(site: Site) -> None:
    with httpx.Client() as client:
        answers = [sign_up(client, site, NEW) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert len(site.inbox(NEW)) == 3  # NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS = 3/hour


def test_throttled_per_client(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for site in make_site(project, monkeypatch, signup_limit_per_client="2/hour"):
        with httpx.Client() as client:
            answers = [sign_up(client, site, f"reader{n}@example.net") for n in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert len(site.smtp.recorder.received) == 2


def test_tokens_are_scoped_by_purpose_and_key(site: Site) -> None:
    address = "ada@example.org"
    manage = links.manage_url(site.url, address, SECRET)
    manage_token = manage.rsplit("/", 1)[1]
    unsubscribe = unsubscribe_token(address, SECRET)
    assert httpx.get(manage).status_code == 200
    assert httpx.get(f"{site.url}/unsubscribe/{manage_token}").status_code == 400
    assert httpx.get(f"{site.url}/manage/{unsubscribe}").status_code == 400
    confirm_token = links.confirm_url(site.url, address, SECRET).rsplit("/", 1)[1]
    assert httpx.get(f"{site.url}/manage/{confirm_token}").status_code == 400
    feedback_token = links.feedback_base(site.url, address, SECRET).rsplit("/", 1)[1]
    assert httpx.get(f"{site.url}/manage/{feedback_token}").status_code == 400
    assert httpx.get(f"{site.url}/confirm/{manage_token}").status_code == 400
    # A key rotated: every link signed with the old one stops working.
    old = links.manage_url(site.url, address, "the-previous-key")
    assert httpx.get(old).status_code == 400
    assert (
        httpx.get(f"{site.url}/unsubscribe/{unsubscribe_token(address, 'the-previous-key')}")
    ).status_code == 400


def test_confirmation_links_and_sign_ups_expire(site: Site) -> None:
    with httpx.Client() as client:
        sign_up(client, site, NEW)
    (message,) = site.inbox(NEW)
    # A link made 49 hours ago (NEWSLETTER_CONFIRM_MAX_AGE is 48 hours).
    made = time.time() - 49 * 3600
    with mock.patch("itsdangerous.timed.time.time", return_value=made):
        stale = tokens.sign("confirm", NEW, SECRET)
    assert httpx.get(f"{site.url}/confirm/{stale}").status_code == 400
    # The sign-up itself is purged after the same time: the fresh link finds nothing.
    later = datetime.now(UTC) + timedelta(hours=49)
    with Store(site.settings.database_path) as store:
        assert signup.purge(site.settings, store, now=later) == 1
    link = link_in(message, "confirm")
    with httpx.Client() as client:
        page = client.get(link)
        assert page.status_code == 410 and heading(page.text) == "This sign-up has expired"
        token = form_token(client.get(f"{site.url}/subscribe").text)
        gone = client.post(link, data={"csrftoken": token})
    assert gone.status_code == 410
    assert state_of(site.settings, NEW) is None


def test_an_unconfirmed_sign_up_never_gets_a_digest(site: Site) -> None:
    with httpx.Client() as client:
        sign_up(client, site, NEW)
    with Store(site.settings.database_path) as store:
        report = dry_run(site.settings, store)
    assert NEW not in {line.email for line in report.recipients}
    assert "ada@example.org" in {line.email for line in report.recipients}


def test_preferences_page_edits_pauses_and_unsubscribes(site: Site) -> None:
    address = "grace@example.org"
    manage = links.manage_url(site.url, address, SECRET)
    yaml_before = site.settings.subscribers_file.read_bytes()
    with httpx.Client() as client:
        page = client.get(manage)
        assert page.status_code == 200
        saved = client.post(
            manage,
            data={
                "csrftoken": form_token(page.text),
                "action": "save",
                "topics": "diffusion models\nvideo generation",
                "exclude": "robotics",
                "frequency": "weekly",
                "max_papers": "4",
            },
        )
        assert saved.status_code == 200 and "Saved" in saved.text
        with Store(site.settings.database_path) as store:
            grace = roster.find(store, address)
        assert grace is not None
        assert [t.topic for t in grace.subscriber.topics] == [
            "diffusion models",
            "video generation",
        ]
        assert (grace.subscriber.frequency, grace.subscriber.max_papers) == ("weekly", 4)
        assert grace.subscriber.exclude == ("robotics",)
        assert (
            site.settings.subscribers_file.read_bytes() == yaml_before
        )  # the file is the operator's

        bad = client.post(
            manage,
            data={
                "csrftoken": form_token(page.text),
                "action": "save",
                "topics": "x",
                "max_papers": "900",
            },
        )
        assert bad.status_code == 400 and "between 1 and 100" in bad.text

        client.post(manage, data={"csrftoken": form_token(page.text), "action": "pause"})
        assert state_of(site.settings, address) == "paused"
        with Store(site.settings.database_path) as store:
            assert address not in {s.key for s in roster.receiving(site.settings, store)}
        client.post(manage, data={"csrftoken": form_token(page.text), "action": "resume"})
        assert state_of(site.settings, address) == "active"
        done = client.post(
            manage, data={"csrftoken": form_token(page.text), "action": "unsubscribe"}
        )
        assert "You are unsubscribed" in done.text
    assert state_of(site.settings, address) == "unsubscribed"
    with Store(site.settings.database_path) as store:
        assert address in store.unsubscribed()  # what every send checks
    # Without the form's token, nothing changes.
    assert httpx.post(manage, data={"action": "resume"}).status_code == 403
    assert state_of(site.settings, address) == "unsubscribed"


def test_feedback_link_records_only_on_post_and_can_be_undone(site: Site) -> None:
    address = "ada@example.org"
    with Store(site.settings.database_path) as store:
        roster.sync(site.settings, store)
        ada = roster.find(store, address) or pytest.fail("ada is not on the list")
        picks = next_picks(site.settings, store, ada.subscriber)
    paper = picks[-1].paper
    base = links.feedback_base(site.url, address, SECRET)
    link = links.feedback_url(base, "less", paper.key)
    with httpx.Client() as client:
        page = client.get(link)
        assert page.status_code == 200 and paper.title in page.text
        with Store(site.settings.database_path) as store:
            assert feedback.marks_of(store) == {}  # GET records nothing
        done = client.post(link, data={"csrftoken": form_token(page.text)})
        assert done.status_code == 200 and heading(done.text) == "Noted"
        with Store(site.settings.database_path) as store:
            (mark,) = feedback.marks_of(store)[address]
            assert (mark.paper.key, mark.direction) == (paper.key, "less")
            after = [p.paper.key for p in next_picks(site.settings, store, ada.subscriber)]
        assert paper.key not in after  # the rejected paper is gone from the next issue

        manage = client.get(links.manage_url(site.url, address, SECRET))
        marks = HTMLParser(manage.text).css("li.mark")
        assert len(marks) == 1 and paper.title in marks[0].text()
        client.post(
            links.manage_url(site.url, address, SECRET),
            data={"csrftoken": form_token(manage.text), "action": "undo", "paper": paper.key},
        )
    with Store(site.settings.database_path) as store:
        assert feedback.marks_of(store) == {}
    bogus = links.feedback_url(base, "sideways", paper.key)
    assert httpx.get(bogus).status_code == 400
    assert httpx.get(links.feedback_url(base, "more", "no such paper")).status_code == 404


def test_one_click_unsubscribe_still_works_with_a_csrf_cookie(site: Site) -> None:
    link = f"{site.url}/unsubscribe/{unsubscribe_token('ada@example.org', SECRET)}"
    with httpx.Client() as client:
        client.get(f"{site.url}/subscribe")  # the browser now holds the CSRF cookie
        answer = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert state_of(site.settings, "ada@example.org") == "unsubscribed"
