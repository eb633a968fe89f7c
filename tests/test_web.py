"""The web app on a real uvicorn server, spoken to with a real HTTP client: one-click
unsubscribe (RFC 8058), forged links, the preview pages, template edits without restart."""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from newsletter import roster
from newsletter.errors import ConfigError
from newsletter.membership import join
from newsletter.pipeline import build_issue, dry_run, ingest_file, next_picks
from newsletter.settings import DEV_SECRET_KEY, Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import SubscriberChange, load_subscribers, unsubscribe_token
from newsletter.web import MAX_BODY, create_app, serve
from tests.web_server import running, serving_process

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
    assert "matching your topics" in before and "The Lab Reading List" not in before
    email_template = settings.templates_dir / "digest.mjml.j2"
    email_template.write_text(
        email_template.read_text().replace("matching your topics", "The Lab Reading List")
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


# -- the Host check (DNS rebinding) -------------------------------------------------------


def test_a_foreign_host_is_refused_everywhere(server: tuple[str, Settings]) -> None:
    """A page on attacker.example whose name now resolves to 127.0.0.1 sends its own
    name as Host: it must not read the subscribers or the unsubscribe links."""
    url, settings = server
    port = urlsplit(url).port
    token = unsubscribe_token("ada@example.org", SECRET)
    paths = ["/", "/preview/ada@example.org", "/preview/ada@example.org/html"]
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.attacker.example"):
        for path in [*paths, f"/unsubscribe/{token}"]:
            response = httpx.get(f"{url}{path}", headers={"Host": host})
            assert response.status_code == 400, (host, path)
            assert "example.org" not in response.text
        posted = httpx.post(
            f"{url}/unsubscribe/{token}",
            data={"List-Unsubscribe": "One-Click"},
            headers={"Host": host},
        )
        assert posted.status_code == 400
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()


def test_loopback_names_are_served_with_any_port(server: tuple[str, Settings]) -> None:
    url, _settings = server
    port = urlsplit(url).port
    for host in (
        "localhost",
        f"localhost:{port}",
        "127.0.0.1",
        f"127.0.0.1:{port}",
        "[::1]",
        f"[::1]:{port}",
        "LocalHost:8000",
    ):
        response = httpx.get(f"{url}/", headers={"Host": host})
        assert response.status_code == 200, host
        assert 'data-email="ada@example.org"' in response.text


def test_the_base_url_host_is_served_and_no_other(project: Path) -> None:
    settings = load_settings(base_url="https://news.example.org/", secret_key=SECRET)
    token = unsubscribe_token("ada@example.org", SECRET)
    with running(lambda _url: create_app(settings, preview=False)) as url:
        link = f"{url}/unsubscribe/{token}"
        for host in ("news.example.org", "NEWS.example.org:443", "localhost"):
            assert httpx.get(link, headers={"Host": host}).status_code == 200, host
        for host in ("example.org", "news.example.org.attacker.example", "www.news.example.org"):
            assert httpx.get(link, headers={"Host": host}).status_code == 400, host


# -- tokens --------------------------------------------------------------------------------


def signed(payload: bytes) -> str:
    """A token whose signature is valid (the server's key) over an arbitrary payload."""
    salt = "newsletter.unsubscribe"
    return URLSafeSerializer(SECRET, salt=salt).make_signer(salt).sign(payload).decode()


def test_a_signed_token_without_an_address_is_refused(server: tuple[str, Settings]) -> None:
    url, settings = server
    yaml_before = settings.subscribers_file.read_bytes()
    serializer = URLSafeSerializer(SECRET, salt="newsletter.unsubscribe")
    tokens = [
        serializer.dumps("not an address"),
        serializer.dumps(""),
        serializer.dumps(["ada@example.org"]),
        serializer.dumps({"email": "ada@example.org"}),
        serializer.dumps(42),
        signed(b"bm90IGpzb24"),  # base64 of "not json"
        signed(b".eJzzzzz"),  # claims zlib, is not
        signed(b"!!!"),  # not base64
    ]
    for token in tokens:
        for method in ("GET", "POST"):
            response = httpx.request(
                method,
                f"{url}/unsubscribe/{token}",
                content=b"List-Unsubscribe=One-Click",
                headers=ONE_CLICK,
            )
            assert response.status_code == 400, (token, method)
            assert "not valid" in response.text
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()
    assert settings.subscribers_file.read_bytes() == yaml_before


def test_a_development_key_token_is_refused_when_a_real_key_is_set(
    server: tuple[str, Settings], project: Path
) -> None:
    url, settings = server
    token = unsubscribe_token("ada@example.org", DEV_SECRET_KEY)
    assert httpx.get(f"{url}/unsubscribe/{token}").status_code == 400
    posted = httpx.post(f"{url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert posted.status_code == 400
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()
    # The development key is public: as the configured key it counts as none at all.
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        serve(load_settings(secret_key=DEV_SECRET_KEY), host="0.0.0.0", port=0)
    # Without a key (loopback only), the development key is the one the links carry.
    with running(lambda base: create_app(Settings(base_url=base, secret_key=None))) as local:
        assert httpx.get(f"{local}/unsubscribe/{token}").status_code == 200


# -- request bodies ------------------------------------------------------------------------


def test_an_oversized_body_gets_413_and_changes_nothing(server: tuple[str, Settings]) -> None:
    url, settings = server
    link = f"{url}/unsubscribe/{unsubscribe_token('ada@example.org', SECRET)}"
    big = b"List-Unsubscribe=One-Click&pad=" + b"x" * MAX_BODY

    def chunked() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    attempts = {
        "form, with length": httpx.post(link, content=big, headers=ONE_CLICK),
        "no type, with length": httpx.post(link, content=big),
        "form, chunked": httpx.post(link, content=chunked(), headers=ONE_CLICK),
        "no type, chunked": httpx.post(link, content=chunked()),
        "multipart": httpx.post(link, files={"List-Unsubscribe": (None, big)}),
        "GET / with a body": httpx.request("GET", f"{url}/", content=big),
    }
    for name, response in attempts.items():
        assert response.status_code == 413, name
        assert "larger than 64 KiB" in response.text
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == set()
    # A body just within the limit is read as usual.
    within = big[:MAX_BODY]
    assert httpx.post(link, content=within, headers=ONE_CLICK).status_code == 200
    with Store(settings.database_path) as store:
        assert store.unsubscribed() == {"ada@example.org"}


def vm_kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS now, VmHWM its peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_huge_body_is_refused_without_growing_the_server(project: Path) -> None:
    """The report: 200 MB without a Content-Type grew the server by 800 MB."""
    with Store(project / "newsletter.db") as store:
        for path in sorted((project / "dumps").iterdir()):
            ingest_file(store, path)
    size = 200 * 2**20
    piece = b"x" * 2**20
    with serving_process(project, {"NEWSLETTER_SECRET_KEY": SECRET}) as (url, pid):
        link = f"{url}/unsubscribe/{unsubscribe_token('ada@example.org', SECRET)}"
        assert httpx.get(f"{url}/").status_code == 200  # warm: imports, ranking, templates
        assert httpx.post(link, content=b"nothing").status_code == 400
        rss_before, peak_before = vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM")
        response = httpx.post(link, content=(piece for _ in range(size // len(piece))))
        rss_after, peak_after = vm_kib(pid, "VmRSS"), vm_kib(pid, "VmHWM")
        assert response.status_code == 413
        assert httpx.get(link).status_code == 200  # still serving
    growth = max(peak_after - peak_before, rss_after - rss_before) * 1024
    assert growth < size / 8, f"the server grew by {growth / 2**20:.0f} MiB"
    with Store(project / "newsletter.db") as store:
        assert store.unsubscribed() == set()


# -- the index -----------------------------------------------------------------------------

CARD = re.compile(
    r'data-email="(?P<email>[^"]+)".*?<span class="count">(?P<count>\d+) papers?</span>'
    r'(?:.*?Top match: (?P<title>.*?) <span class="muted">\[(?P<score>[\d.]+)\]</span>'
    r"|.*?No paper matches)",
    re.S,
)


def index_cards(text: str) -> dict[str, tuple[int, str | None, str | None]]:
    """Per address on the index page: the number of papers, the top title, its score."""
    cards = {}
    for card in text.split('<div class="card subscriber" ')[1:]:
        match = CARD.search(card)
        assert match, card
        title = html.unescape(match["title"]) if match["title"] is not None else None
        cards[html.unescape(match["email"])] = (int(match["count"]), title, match["score"])
    return cards


def test_the_index_shows_what_next_picks_gives_each_subscriber(
    server: tuple[str, Settings],
) -> None:
    url, settings = server
    with Store(settings.database_path) as store:  # a weekly reader too: the other pool
        join(
            settings,
            store,
            SubscriberChange("wes@example.org", ("language models",), frequency="weekly"),
        )
    cards = index_cards(httpx.get(f"{url}/").text)
    subscribers = load_subscribers(settings.subscribers_file)
    assert set(cards) == {s.email for s in subscribers}
    with Store(settings.database_path) as store:
        for subscriber in subscribers:
            picks = next_picks(settings, store, subscriber)
            top = picks[0] if picks else None
            expected = (
                len(picks),
                top.paper.title if top else None,
                f"{top.score:.2f}" if top else None,
            )
            assert cards[subscriber.email] == expected, subscriber.email
    assert sum(count for count, _, _ in cards.values()) > 0


def index_states(text: str) -> dict[str, str]:
    """Per address on the index page: active, paused or unsubscribed."""
    return dict(re.findall(r'data-email="([^"]+)".*?class="state state-(\w+)"', text, re.S))


def test_the_index_follows_edits_to_the_file_and_the_database(
    server: tuple[str, Settings],
) -> None:
    url, settings = server
    first = httpx.get(f"{url}/").text
    assert first == httpx.get(f"{url}/").text
    assert index_states(first)["ada@example.org"] == "active"
    link = f"{url}/unsubscribe/{unsubscribe_token('ada@example.org', SECRET)}"
    assert httpx.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert index_states(httpx.get(f"{url}/").text)["ada@example.org"] == "unsubscribed"
    with Store(settings.database_path) as store:  # the file: a new subscriber
        join(settings, store, SubscriberChange("new@example.org", ("knowledge distillation",)))
    assert index_states(httpx.get(f"{url}/").text)["new@example.org"] == "active"
    with Store(settings.database_path) as store:  # the database alone (a reader's page)
        roster.set_state(store, "ada@example.org", "paused")
    assert index_states(httpx.get(f"{url}/").text)["ada@example.org"] == "paused"
