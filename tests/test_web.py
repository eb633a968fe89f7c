"""The web app on a real uvicorn server, spoken to with a real HTTP client: one-click
unsubscribe (RFC 8058), forged links, the preview pages, template edits without restart."""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from newsletter.errors import ConfigError
from newsletter.pipeline import build_issue, dry_run, ingest_file
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import load_subscribers, unsubscribe_token
from newsletter.web import create_app, serve
from tests.web_server import running

ISSUE_DATE = date(2026, 11, 22)
SECRET = "web-test-secret"
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def server(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings]]:
    """The app on a free port, with base_url pointing at it (as in production)."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    with running(lambda url: create_app(load_settings(base_url=url))) as url:
        monkeypatch.setenv("NEWSLETTER_BASE_URL", url)
        yield url, load_settings()


def read_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_one_click_unsubscribe_from_the_email_header(server: tuple[str, Settings]) -> None:
    url, settings = server
    with Store(settings.database_path) as store:
        first = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert "ada@example.org" in {line.email for line in first.recipients}
    message = read_eml(first.folder / "ada@example.org.eml")  # type: ignore[operator]
    link = str(message["List-Unsubscribe"]).strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.startswith(f"{url}/unsubscribe/")
    html_part = message.get_body(("html",))
    assert html_part is not None and f'href="{link}"' in html_part.get_content()

    # Exactly what a mail client sends (RFC 8058): a POST with this body, no cookies.
    response = httpx.post(
        link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK, follow_redirects=False
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    with Store(settings.database_path) as store:
        assert "ada@example.org" in store.unsubscribed()
    ada = next(s for s in load_subscribers(settings.subscribers_file) if s.key == "ada@example.org")
    assert ada.active is False  # reflected in the YAML too

    again = httpx.post(link, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200  # twice is harmless

    with Store(settings.database_path) as store:
        second = dry_run(settings, store, issue_date=ISSUE_DATE)
    assert "ada@example.org" not in {line.email for line in second.recipients}
    assert second.recipients  # the others still get theirs
    assert not (second.folder / "ada@example.org.eml").exists()  # type: ignore[operator]


def test_an_issue_built_before_the_unsubscribe_is_not_sent_to_that_address(
    server: tuple[str, Settings],
) -> None:
    url, settings = server
    with Store(settings.database_path) as store:
        subscribers = load_subscribers(settings.subscribers_file)
        issue = build_issue(settings, store, subscribers, dry_run=True, issue_date=ISSUE_DATE)
        assert "grace@example.org" in {d.email for d in store.deliveries(issue.id)}
    token = unsubscribe_token("grace@example.org", SECRET)
    response = httpx.post(f"{url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    with Store(settings.database_path) as store:
        report = dry_run(settings, store, issue_date=ISSUE_DATE)
        assert "grace@example.org" not in {line.email for line in report.recipients}


def test_multipart_body_is_accepted(server: tuple[str, Settings]) -> None:
    url, settings = server
    token = unsubscribe_token("alan@example.org", SECRET)
    response = httpx.post(
        f"{url}/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert response.status_code == 200
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == {"alan@example.org"}


def test_forged_truncated_and_foreign_tokens_change_nothing(server: tuple[str, Settings]) -> None:
    url, settings = server
    yaml_before = settings.subscribers_file.read_bytes()
    good = unsubscribe_token("ada@example.org", SECRET)
    bad_tokens = [
        unsubscribe_token("ada@example.org", "someone-elses-key"),  # foreign
        good[:-4],  # truncated
        good[: good.index(".")] + ".forged-signature",  # right payload, made-up signature
        "garbage",
    ]
    for token in bad_tokens:
        for method in ("GET", "POST"):
            response = httpx.request(
                method,
                f"{url}/unsubscribe/{token}",
                content=b"List-Unsubscribe=One-Click",
                headers=ONE_CLICK,
            )
            assert response.status_code in (400, 404), (token, method)
            assert "not valid" in response.text
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()
    assert settings.subscribers_file.read_bytes() == yaml_before


def test_get_only_asks_and_a_post_without_the_body_is_refused(
    server: tuple[str, Settings],
) -> None:
    url, settings = server
    link = f"{url}/unsubscribe/{unsubscribe_token('ada@example.org', SECRET)}"
    page = httpx.get(link)
    assert page.status_code == 200
    assert "ada@example.org" in page.text and '<form method="post">' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    empty = httpx.post(link, content=b"", headers=ONE_CLICK)
    assert empty.status_code == 400
    other = httpx.post(link, data={"List-Unsubscribe": "Yes"})
    assert other.status_code == 400
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()
    # After leaving, the same GET says so instead of asking again.
    httpx.post(link, data={"List-Unsubscribe": "One-Click"})
    assert "You are unsubscribed" in httpx.get(link).text


def test_index_and_preview_show_the_next_issue_and_send_nothing(
    server: tuple[str, Settings],
) -> None:
    url, settings = server
    index = httpx.get(f"{url}/")
    assert index.status_code == 200
    for subscriber in load_subscribers(settings.subscribers_file):
        assert f'href="/preview/{subscriber.email.replace("@", "%40")}"' in index.text
    assert re.search(r"data-email=\"ada@example.org\".*?\d+ papers.*?Top match: ", index.text, re.S)

    preview = httpx.get(f"{url}/preview/ada@example.org")
    assert preview.status_code == 200
    text = preview.text
    assert "Subject" in text and "Preheader" in text
    assert text.count("<iframe") == 2 and "srcdoc=" in text
    assert '<pre class="text">' in text
    assert re.search(r"score \d\.\d{3}", text) and "Matches " in text

    missing = httpx.get(f"{url}/preview/nobody@example.org")
    assert missing.status_code == 404 and "nobody@example.org" in missing.text

    alone = httpx.get(f"{url}/preview/ada@example.org/html")
    assert alone.status_code == 200 and alone.text.lstrip().lower().startswith("<!doctype html")

    with Store(settings.database_path) as store:
        assert store.latest_issue() is None  # no issue built, no ledger row, nothing sent
    assert not settings.outbox_dir.exists()


def test_edited_templates_show_on_reload(server: tuple[str, Settings]) -> None:
    url, settings = server
    before = httpx.get(f"{url}/preview/ada@example.org").text
    assert "Your research digest" in before and "The Lab Reading List" not in before
    email_template = settings.templates_dir / "digest.mjml.j2"
    email_template.write_text(
        email_template.read_text().replace("Your research digest", "The Lab Reading List")
    )
    page_template = settings.templates_dir / "web" / "index.html.j2"
    page_template.write_text(page_template.read_text().replace("Next issue,", "Coming up,"))
    for path in (email_template, page_template):  # a later stamp, whatever the clock's grain
        stamp = path.stat().st_mtime + 5
        os.utime(path, (stamp, stamp))
    after = httpx.get(f"{url}/preview/ada@example.org").text
    assert after.count("The Lab Reading List") == 2  # both frames
    assert "Coming up," in httpx.get(f"{url}/").text


def test_a_broken_template_edit_shows_the_file_and_line(server: tuple[str, Settings]) -> None:
    url, settings = server
    path = settings.templates_dir / "subject.txt.j2"
    path.write_text("{% if %}\n")
    stamp = path.stat().st_mtime + 5
    os.utime(path, (stamp, stamp))
    response = httpx.get(f"{url}/preview/ada@example.org")
    assert response.status_code == 500
    assert "subject.txt.j2:1" in response.text


def test_serving_beyond_loopback_needs_a_real_key_and_hides_previews(project: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        serve(load_settings(), host="0.0.0.0", port=0)
    settings = load_settings(secret_key=SECRET)
    with running(lambda _url: create_app(settings, preview=False)) as url:
        assert httpx.get(f"{url}/").status_code == 404
        assert httpx.get(f"{url}/preview/ada@example.org").status_code == 404
        token = unsubscribe_token("ada@example.org", SECRET)
        assert httpx.get(f"{url}/unsubscribe/{token}").status_code == 200
