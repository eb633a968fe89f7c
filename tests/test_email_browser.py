"""The email itself in a real browser (Playwright driving the system Chromium), at 375 and
800 px, in the light and the dark scheme: it makes no request at all when opened, it
never scrolls sideways, the page background and the card are there, the dark rule takes
effect, and every visible text passes WCAG AA contrast (4.5:1) on its background.
Screenshots go to the test's tmp dir."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route

from newsletter.dumps import Paper
from newsletter.ranking import Match, Pick
from newsletter.render import Renderer
from newsletter.subscribers import Subscriber

TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter" / "templates"
WCAG_AA = 4.5
LONG_WORD = "Hyperparameteroptimisationforeverythingeverywhere" * 3

# For every element that shows text: its text colour, the colour behind it (the first
# ancestor with a background) and the contrast ratio between them (WCAG 2 formula).
CONTRASTS = """
() => {
  const parse = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const rgba = parse(getComputedStyle(node).backgroundColor);
      if (rgba.length === 3 || (rgba.length === 4 && rgba[3] > 0)) return rgba.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const element of document.body.querySelectorAll("*")) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = element.getBoundingClientRect();
    if (!own || element.closest(".preheader") || box.width === 0 || box.height === 0) continue;
    const fg = parse(getComputedStyle(element).color).slice(0, 3);
    const bg = background(element);
    const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    found.push({text: element.textContent.trim().slice(0, 40), ratio: (light + 0.05) / (dark + 0.05)});
  }
  return found;
}
"""


@pytest.fixture(scope="module")
def email_html() -> str:
    names = ("Ada Quinn", "Bo Chen", "Chiara Rossi", "Dev Patel", "Eun-ji Kim")
    papers = [
        Paper(
            key="a",
            title="Continual Learning Without Forgetting: A Study of Replay in Large Models",
            abstract="We study replay. It helps. " * 20,
            authors=names,
            organization="Ørsted Labs",
            published=date(2026, 11, 18),
            upvotes=42,
            comments=3,
            arxiv_id="2611.01234",
            github_repo="https://github.com/example/replay",
            ai_summary="Replay of a few old examples keeps large models from forgetting.",
        ),
        Paper(key="b", title=f"Tokenizers for {LONG_WORD}", abstract=f"{LONG_WORD} " * 5),
    ]
    picks = [
        Pick(papers[0], 2.0, (Match("continual learning", ("continual learning",), 2.0),)),
        Pick(papers[1], 1.0, (Match("tokenizers", ("tokenizers",), 1.0, ("title",)),)),
    ]
    return (
        Renderer(TEMPLATES)
        .render(
            subscriber=Subscriber(
                email="zoe@example.org", name="Zoë", topics=["continual learning", "tokenizers"]
            ),
            picks=picks,
            issue_date=date(2026, 11, 19),
            unsubscribe_url="https://news.example.org/unsubscribe/abc",
            pages={"a": date(2026, 11, 18), "b": date(2026, 11, 19)},
            archive_url="https://news.example.org/archive/abc",
            feed_url="https://news.example.org/feed/abc.atom",
        )
        .html
    )


def test_no_request_leaves_the_email(browser: Browser, email_html: str) -> None:
    """Not a web font, not a pixel: the email loads nothing (only data: URLs would pass)."""
    requested: list[str] = []

    def refuse(route: Route) -> None:
        requested.append(route.request.url)
        route.abort()

    context = browser.new_context()
    try:
        page = context.new_page()
        page.route("**/*", refuse)
        page.set_content(email_html, wait_until="load")
        assert requested == []
    finally:
        context.close()
    assert "fonts.googleapis" not in email_html and "<img" not in email_html
    assert '<html lang="en"' in email_html
    assert '<meta name="color-scheme" content="light dark" />' in email_html
    assert "@media (prefers-color-scheme: dark)" in email_html


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 800])
def test_layout_background_and_contrast(
    browser: Browser, email_html: str, tmp_path: Path, width: int, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        page = context.new_page()
        page.set_content(email_html, wait_until="load")
        page.screenshot(path=str(tmp_path / f"email-{width}-{scheme}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
        card = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
        if scheme == "light":
            assert (body, card) == ("rgb(243, 244, 246)", "rgb(255, 255, 255)")
        else:
            assert (body, card) == ("rgb(13, 17, 23)", "rgb(22, 27, 34)")
        contrasts = page.evaluate(CONTRASTS)
        assert len(contrasts) > 10
        low = [item for item in contrasts if item["ratio"] < WCAG_AA]
        assert low == [], low
    finally:
        context.close()
