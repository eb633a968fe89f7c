"""A reader runs their own subscription in a real browser (Playwright on the system
Chromium), with the confirmation arriving on a real SMTP server (aiosmtpd): sign up,
confirm, change topics, mark a paper and see the next preview change, unsubscribe."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from newsletter import roster
from newsletter.pipeline import ingest_file
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.web import create_app
from tests.smtp_server import RunningServer, smtp_server
from tests.web_server import running

SECRET = "reader-browser-secret"
KIM = "kim@example.net"


@pytest.fixture
def site(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, RunningServer]]:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with smtp_server() as smtp:
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", smtp.host)
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(smtp.port))
        with running(lambda url: create_app(load_settings(base_url=url))) as url:
            yield url, smtp


def received(smtp: RunningServer, address: str) -> EmailMessage:
    messages = [data for rcpt, data in smtp.recorder.received if rcpt == address]
    assert len(messages) == 1, f"{len(messages)} messages for {address}"
    message = email.message_from_bytes(messages[0], policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def preview_titles(page: Page, url: str) -> list[str]:
    page.goto(f"{url}/preview/{KIM}")
    return page.locator("ol.picks li.pick > a").all_inner_texts()


def test_a_reader_signs_up_tunes_marks_and_leaves(
    browser: Browser, site: tuple[str, RunningServer], tmp_path: Path
) -> None:
    url, smtp = site
    page = browser.new_page(viewport={"width": 420, "height": 900})
    try:
        # Sign up, using a suggested topic from recent papers.
        page.goto(f"{url}/subscribe")
        page.get_by_label("Email address").fill(KIM)
        page.locator("button.suggestion", has_text="knowledge distillation").click()
        expect(page.get_by_label("Topics")).to_have_value("knowledge distillation")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("h1")).to_have_text("Check your inbox")

        # The confirmation arrives by SMTP; its link shows a button that confirms.
        message = received(smtp, KIM)
        text = message.get_body(("plain",))
        assert text is not None
        confirm = re.search(r"(http://\S+/confirm/\S+)", text.get_content())
        assert confirm is not None
        page.goto(confirm[1])
        page.get_by_role("button", name="Confirm").click()
        expect(page.locator("h1")).to_have_text("You are subscribed")
        manage_link = page.locator("a.manage").get_attribute("href")
        assert manage_link and "/manage/" in manage_link
        first = preview_titles(page, url)
        assert first, "the new reader's preview has no paper"

        # Change topics on the preferences page: the next preview follows.
        page.goto(manage_link)
        page.get_by_label("Topics").fill("graph neural networks")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice")).to_contain_text("Saved")
        manage_url = page.url
        second = preview_titles(page, url)
        assert second and second != first

        # Mark the first paper "less like this" from the email's own link.
        email_frame = page.frame_locator("iframe.email").first
        less = email_frame.get_by_role("link", name="Less like this").first
        href = less.get_attribute("href")
        assert href and "/feedback/" in href and "/less/" in href
        page.goto(href)
        page.get_by_role("button", name="Send me less like this").click()
        expect(page.locator("h1")).to_have_text("Noted")
        third = preview_titles(page, url)
        assert second[0] not in third  # the next issue changed

        # The mark is listed on the preferences page and can be undone.
        page.goto(manage_url)
        expect(page.locator("li.mark")).to_have_count(1)
        expect(page.locator("li.mark")).to_contain_text(second[0])
        page.locator("li.mark").get_by_role("button", name="Undo").click()
        expect(page.locator("li.mark")).to_have_count(0)
        assert preview_titles(page, url) == second

        # Unsubscribe from the preferences page.
        page.goto(manage_url)
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.locator(".state")).to_have_text("unsubscribed")
        page.screenshot(path=str(tmp_path / "unsubscribed.png"), full_page=True)
        settings = load_settings()
        with Store(settings.database_path) as store:
            member = roster.find(store, KIM)
            assert member is not None and member.state == "unsubscribed"
            assert KIM in store.unsubscribed()
    finally:
        page.close()
