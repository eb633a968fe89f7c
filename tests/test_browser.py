"""The preview page in a real browser: Playwright driving the system Chromium.

At phone width (375 px) and at 800 px: every picked paper's title is visible in the email,
the page itself never scrolls sideways, the unsubscribe link is there and names the
subscriber, and the text part shows in its tab. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from newsletter.pipeline import ingest_file
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.subscribers import read_unsubscribe_token
from newsletter.web import create_app
from tests.web_server import running

SECRET = "browser-test-secret"


@pytest.fixture
def site(project: Path) -> Iterator[str]:
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with running(lambda url: create_app(load_settings(base_url=url, secret_key=SECRET))) as url:
        yield url


def picked_titles(page: Page) -> list[str]:
    titles = page.locator("ol.picks li.pick > a").all_inner_texts()
    assert titles, "the preview lists no picked paper"
    return titles


@pytest.mark.parametrize("width", [375, 800])
def test_preview_at_width(browser: Browser, site: str, tmp_path: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(f"{site}/preview/ada@example.org")
        titles = picked_titles(page)
        for frame_index in (0, 1):  # the phone frame and the desktop frame
            email = page.frame_locator("iframe.email").nth(frame_index)
            for title in titles:
                expect(email.get_by_role("link", name=title, exact=True)).to_be_visible()
            unsubscribe = email.get_by_role("link", name="Unsubscribe")
            expect(unsubscribe).to_be_visible()
            href = unsubscribe.get_attribute("href") or ""
            assert href.startswith(f"{site}/unsubscribe/")
            token = href.rsplit("/", 1)[1]
            assert read_unsubscribe_token(token, SECRET) == "ada@example.org"

        # The page itself never scrolls sideways, whatever the email's width.
        page.wait_for_load_state("load")
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width

        # Frames: phone 375 px, desktop 800 px, each narrowed to the screen when it is smaller.
        widths = page.locator("iframe.email").evaluate_all(
            "frames => frames.map(f => f.getBoundingClientRect().width)"
        )
        assert widths[0] == pytest.approx(min(375, inner_width - 24), abs=2)
        assert widths[1] == pytest.approx(min(800, inner_width - 24), abs=2)

        expect(page.locator(".subject")).not_to_be_empty()
        expect(page.locator(".preheader")).not_to_be_empty()
        text_part = page.locator("pre.text")
        expect(text_part).to_be_hidden()
        page.locator("label[for=tab-text]").click()
        expect(text_part).to_be_visible()
        expect(text_part).to_contain_text(titles[0][:40])
        assert page.evaluate("document.documentElement.scrollWidth") <= inner_width
        page.locator("label[for=tab-html]").click()
        expect(text_part).to_be_hidden()

        shot = tmp_path / f"preview-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()


def test_index_links_to_each_preview(browser: Browser, site: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 800})
    try:
        page.goto(f"{site}/")
        cards = page.locator(".subscriber")
        expect(cards).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_role("link", name="grace@example.org").click()
        expect(page).to_have_url(f"{site}/preview/grace%40example.org")
        expect(page.locator("h1")).to_contain_text("grace@example.org")
        page.screenshot(path=str(tmp_path / "index-to-grace.png"))
    finally:
        page.close()


def test_unsubscribe_button_in_the_browser(browser: Browser, site: str) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{site}/preview/barbara@example.org")
        link = page.locator("a.unsubscribe").get_attribute("href")
        assert link
        page.goto(link)
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.locator("h1")).to_have_text("You are unsubscribed")
        assert page.url == link  # answered in place, no redirect
    finally:
        page.close()
    with Store("newsletter.db") as store:
        assert store.unsubscribed() == {"barbara@example.org"}
