"""Tests for newsletter.render: the real templates, the compile-once design, the message."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import smtplib
from datetime import date, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import jinja2
import mjml
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from newsletter import render
from newsletter.dumps import Paper
from newsletter.errors import TemplateError
from newsletter.message import (
    build_message,
    build_message_reference,
    header_value,
    list_id_for,
    message_id_for,
)
from newsletter.ranking import Match, Pick
from newsletter.render import Digest, Renderer
from newsletter.subscribers import Subscriber
from newsletter.wording import excerpt
from tests.mime_checks import (
    assert_same_message,
    assert_wire_format,
    display_name,
    parse,
)
from tests.smtp_server import smtp_server

TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter" / "templates"
ISSUE = date(2026, 11, 19)
# The pages the papers came from: two days, so the footer must name both.
PAGES = {"distilling": date(2026, 11, 18), "continual": date(2026, 11, 19)}
UNSUB = "https://digest.example.org/unsubscribe?token=abc.DEF_123&v=1"
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8  # 360 chars, no break
SENT = datetime(2026, 11, 19, 7, 30, tzinfo=timezone(timedelta(hours=1)))

SUBSCRIBER = Subscriber(
    email="zoe@example.org",
    name="Zoë Ørsted",
    topics=["knowledge distillation", "continual learning", "tokenizers"],
)

PAPERS = [
    Paper(
        key="distilling",
        title="Distilling <script>alert('x')</script> & Friends: Small Students",
        abstract=(
            "Knowledge distillation transfers what a large teacher knows to a small student. "
            "We show that students trained on soft targets from a committee of teachers "
            "match the teachers on six benchmarks while being ten times smaller, and that "
            "the gap closes further when the student sees intermediate representations. "
            "We release code and checkpoints for every experiment in the paper."
        ),
        authors_count=4,
        published=date(2022, 11, 1),
        upvotes=12,
        arxiv_id="2211.01234",
    ),
    Paper(
        key="continual",
        title="Continual Learning Without Forgetting",
        abstract="A short abstract about continual learning.",
        organization="Ørsted Labs",
        published=date(2024, 3, 9),
        upvotes=0,
        arxiv_id=None,
    ),
    Paper(
        key="long",
        title=f"Tokenizers for {LONG_WORD}",
        abstract=f"We tokenize {LONG_WORD} and other words. " * 3,
        authors_count=1,
        published=None,
        upvotes=1,
        arxiv_id="2401.00007",
    ),
]
PICKS = [
    Pick(PAPERS[0], 3.0, (Match("knowledge distillation", ("distil", "teacher"), 3.0),)),
    Pick(PAPERS[1], 2.0, (Match("continual learning", ("continu", "learn"), 2.0),)),
    Pick(PAPERS[2], 1.0, (Match("tokenizers", ("token",), 1.0),)),
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture(scope="module")
def picks() -> list[Pick]:
    return list(PICKS)


@pytest.fixture(scope="module")
def digest(renderer: Renderer, picks: list[Pick]) -> Digest:
    return renderer.render(
        subscriber=SUBSCRIBER, picks=picks, issue_date=ISSUE, unsubscribe_url=UNSUB, pages=PAGES
    )


def _positions(haystack: str, needles: list[str]) -> list[int]:
    positions = [haystack.find(needle) for needle in needles]
    assert all(p >= 0 for p in positions), [
        n for n, p in zip(needles, positions, strict=False) if p < 0
    ]
    return positions


# --- content ------------------------------------------------------------------------------


def test_html_has_every_title_escaped_in_order(digest: Digest) -> None:
    escaped = [str(escape(p.title)) for p in PAPERS]
    positions = _positions(digest.html, escaped)
    assert positions == sorted(positions)
    assert "&lt;script&gt;" in digest.html and "&amp; Friends" in digest.html
    assert "<script" not in digest.html  # autoescape on; MJML output has no scripts either


def test_text_has_the_same_titles_in_the_same_order_numbered(digest: Digest) -> None:
    numbered = [f"{n}. {p.title}" for n, p in enumerate(PAPERS, start=1)]
    positions = _positions(digest.text, numbered)
    assert positions == sorted(positions)
    assert "<script>" in digest.text  # plain text: not escaped


def test_links_unsubscribe_and_source(digest: Digest) -> None:
    assert 'href="https://huggingface.co/papers/2211.01234"' in digest.html
    search = "https://huggingface.co/papers?q=Continual%20Learning%20Without%20Forgetting"
    assert f'href="{search}"' in digest.html
    assert search in digest.text and "https://huggingface.co/papers/2211.01234" in digest.text
    assert f'href="{escape(UNSUB)}"' in digest.html
    assert UNSUB in digest.text
    for topic in ("knowledge distillation", "continual learning", "tokenizers"):
        assert topic in digest.html.split("You receive this digest")[1]
        assert topic in digest.text.split("You receive this digest")[1]


def test_footer_names_every_page_the_papers_came_from(digest: Digest) -> None:
    footer = digest.html.split("You receive this digest")[1]
    day_18 = '<a href="https://huggingface.co/papers/date/2026-11-18">Nov 18</a>'
    day_19 = '<a href="https://huggingface.co/papers/date/2026-11-19">Nov 19</a>'
    assert f"Daily Papers pages of {day_18} and {day_19}." in footer
    text = digest.text.split("You receive this digest")[1]
    assert "Papers from the Hugging Face Daily Papers pages of Nov 18 and Nov 19:" in text
    assert "https://huggingface.co/papers/date/2026-11-18" in text


def test_footer_names_only_the_pages_of_this_readers_papers(renderer: Renderer) -> None:
    one = renderer.render(
        subscriber=SUBSCRIBER, picks=PICKS[1:], issue_date=ISSUE, unsubscribe_url=UNSUB,
        pages={**PAGES, "long": date(2025, 12, 30)},
    )  # fmt: skip
    assert "Daily Papers pages of Nov 19 and Dec 30, 2025:" not in one.text  # oldest first
    assert "Daily Papers pages of Dec 30, 2025 and Nov 19:" in one.text
    assert "Nov 18" not in one.text  # the distillation paper is not in this digest
    alone = renderer.render(
        subscriber=SUBSCRIBER, picks=PICKS[:1], issue_date=ISSUE, unsubscribe_url=UNSUB,
        pages=PAGES,
    )  # fmt: skip
    assert "Daily Papers page of Nov 18:" in alone.text
    unknown = renderer.render(
        subscriber=SUBSCRIBER, picks=PICKS[2:], issue_date=ISSUE, unsubscribe_url=UNSUB,
        pages=PAGES,
    )  # fmt: skip
    assert "Papers from Hugging Face Daily Papers." in unknown.text
    assert '<a href="https://huggingface.co/papers">Hugging Face Daily Papers</a>' in unknown.html


def test_meta_upvotes_why_and_excerpt(digest: Digest) -> None:
    for part in (digest.html, digest.text):
        assert "4 authors" in part and "1 author" in part and "Ørsted Labs" in part
        assert "Nov 1, 2022" in part and "Mar 9, 2024" in part
        assert "12 upvotes" in part and "1 upvote" in part
        assert "0 upvote" not in part
    for pick in PICKS:  # the why-line, whatever the ranker's wording
        assert pick.why.startswith("Matches ")
        assert str(escape(pick.why)) in digest.html
        assert pick.why in " ".join(digest.text.split())  # wrapped at 76 in the text
    assert "Hi Zoë Ørsted," in digest.html and "Hi Zoë Ørsted," in digest.text
    cut = excerpt(PAPERS[0].abstract)
    assert len(cut) <= 345 and cut.endswith("representations.")  # whole sentences
    assert PAPERS[0].abstract.startswith(cut)
    assert str(escape(cut)) in digest.html
    assert "release code and checkpoints" not in digest.html  # beyond the excerpt
    assert "A short abstract about continual learning." in digest.html  # short: whole


def test_subject_and_preheader(digest: Digest) -> None:
    # The second word is too long to fit: the title is cut after the first.
    assert digest.subject == "Distilling… +2 more"
    assert digest.preheader == "Also 2 more papers on continual learning and tokenizers"
    assert str(escape(digest.preheader)) in digest.html
    assert "Nov 19, 2026" in digest.html and "Nov 19, 2026" in digest.text


def test_no_name_and_no_picks(renderer: Renderer) -> None:
    nameless = Subscriber(email="a@example.org", topics=["graphs"])
    empty = renderer.render(
        subscriber=nameless, picks=[], issue_date=ISSUE, unsubscribe_url=UNSUB, pages=PAGES
    )
    assert "Hello," in empty.html and "Hello," in empty.text and "Hi " not in empty.text
    assert "No new papers" in empty.html and "No new papers" in empty.text
    assert empty.subject == "Research Digest: no new papers for Nov 19"
    assert empty.preheader == "No new papers on graphs this time"


def test_text_lines_are_bounded(renderer: Renderer, picks: list[Pick]) -> None:
    giant = Paper(key="g", title="G" * 2500, abstract="word " * 200, authors_count=2)
    d = renderer.render(
        subscriber=SUBSCRIBER,
        picks=[*picks, Pick(giant, 0.5, ())],
        issue_date=ISSUE,
        unsubscribe_url=UNSUB,
        pages=PAGES,
    )
    lines = d.text.split("\n")
    assert max(len(line) for line in lines) <= 998
    # The excerpts are wrapped at ~76 columns (only the unbroken giant word is longer).
    excerpt_lines = [line for line in lines if line.startswith("   Knowledge distillation")]
    assert excerpt_lines and all(len(line) <= 76 for line in excerpt_lines)
    assert all(len(line) <= 76 for line in lines if line.startswith("   word"))


# --- the compile-once design --------------------------------------------------------------


@pytest.mark.parametrize("case", ["full", "empty"])
def test_compile_once_equals_compile_each(renderer: Renderer, picks: list[Pick], case: str) -> None:
    subscriber = SUBSCRIBER if case == "full" else Subscriber(email="b@x.org", topics=["a"])
    chosen = picks if case == "full" else []
    kwargs = dict(
        subscriber=subscriber,
        picks=chosen,
        issue_date=ISSUE,
        unsubscribe_url=UNSUB,
        pages=PAGES,
    )
    fast = renderer.render(**kwargs).html  # type: ignore[arg-type]
    context = renderer.render_context(**kwargs)  # type: ignore[arg-type]
    # Independent slow path: Jinja on the MJML source, then MJML on each email's result.
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(render._filters())
    source = (TEMPLATES / "digest.mjml.j2").read_text(encoding="utf-8")
    slow = mjml.mjml2html(env.from_string(source).render(context), disable_comments=True)
    assert fast == slow  # byte-identical, not just equivalent
    assert renderer.render_html_reference(context) == fast


def test_compiled_html_is_mobile_friendly(renderer: Renderer, digest: Digest) -> None:
    compiled = renderer.compiled_html
    assert "{% for paper in papers %}" in compiled  # still a Jinja template
    for html in (compiled, digest.html):
        assert '<meta name="viewport" content="width=device-width' in html
        assert "@media only screen" in html
        assert "max-width:600px" in html
        widths = [int(w) for w in re.findall(r'\bwidth="(\d+)', html)]
        widths += [int(w) for w in re.findall(r"(?<![-\w])width:\s*(\d+)px", html)]
        assert widths and max(widths) <= 600
        sizes = {int(s) for s in re.findall(r"font-size:\s*(\d+)px", html)}
        assert all(s in (0, 1) or s >= 14 for s in sizes), sizes  # 0/1 px: MJML plumbing
        assert "word-break:break-word" in html and "overflow-wrap: anywhere" in html
    assert LONG_WORD in digest.html  # the long word is there, breakable by CSS


# --- the message --------------------------------------------------------------------------

HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
}


def _build(subscriber: Subscriber, digest: Digest, message_id: str = "<i.1@example.org>") -> bytes:
    return build_message(
        from_address="Research Digest <digest@example.org>",
        subscriber=subscriber,
        digest=digest,
        unsubscribe_url=UNSUB,
        message_id=message_id,
        date=SENT,
        list_id=list_id_for("Research Digest", "example.org"),
    )


def test_build_message_structure(digest: Digest) -> None:
    message_id = message_id_for("2026-11-19", SUBSCRIBER.email, "example.org")
    data = _build(SUBSCRIBER, digest, message_id)
    assert_wire_format(data)
    parsed = parse(data)
    assert sorted(parsed.keys()) == sorted(HEADERS)  # exactly one of each
    assert parsed["From"] == "Research Digest <digest@example.org>"
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Zoë Ørsted", "zoe@example.org")
    assert parsed["Subject"] == digest.subject
    assert parsed["Date"].datetime == SENT
    assert parsed["Message-ID"] == message_id
    assert parsed["List-Id"] == "Research Digest <digest.example.org>"
    assert parsed["List-Unsubscribe"] == f"<{UNSUB}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # The text goes as it is (its lines fit; it holds "Ørsted"): no encoding to undo.
    # The HTML (lines of kilobytes) is base64, which joins in 57-byte pieces.
    assert [p["Content-Transfer-Encoding"] for p in parts] == ["8bit", "base64"]
    # On the wire text lines end in CRLF (MIME canonical form); decoded, they still do.
    decoded = [p.get_content().replace("\r\n", "\n").rstrip("\n") for p in parts]
    assert decoded == [digest.text.rstrip("\n"), digest.html.rstrip("\n")]
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.isascii() and b"=?utf-8?" in head  # non-ASCII is encoded in the headers
    assert "Ørsted".encode() in body  # and the 8bit text part carries it as it is


def test_build_message_non_ascii_subject_round_trips(digest: Digest) -> None:
    subject = "Ваш дайджест: 知識蒸留 — “Zoë” & ünïcödé " + "ü" * 120
    data = _build(SUBSCRIBER, Digest(subject, "p", digest.html, digest.text))
    assert_wire_format(data)
    assert parse(data)["Subject"] == subject


@pytest.mark.parametrize("where", ["subject", "name", "both"])
def test_build_message_blocks_header_injection(digest: Digest, where: str) -> None:
    evil = "Hello\r\nBcc: evil@example.org, other@example.org\r\n\r\nbody?\x00"
    name = evil if where in ("name", "both") else "Zoë"
    subject = evil if where in ("subject", "both") else "Plain"
    subscriber = Subscriber.model_construct(  # bypass the validator: build_message must cope
        email="zoe@example.org", name=name, topics=SUBSCRIBER.topics
    )
    data = _build(subscriber, Digest(subject, "p", digest.html, digest.text))
    assert_wire_format(data)
    parsed = parse(data)
    assert parsed["Bcc"] is None
    assert sorted(parsed.keys()) == sorted(HEADERS)
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "zoe@example.org"
    assert to.display_name == header_value(name)
    assert parsed["Subject"] == header_value(subject)
    assert "\r" not in parsed["Subject"] and "\n" not in parsed["Subject"]


def test_build_message_long_non_ascii_name_keeps_its_spaces(digest: Digest) -> None:
    name = "Zoë Ørsted-Ångström Müller Lüdenscheidt Świętosława Þórunn Ðorđević"
    subscriber = Subscriber(email="zoe@example.org", name=name, topics=["x"])
    data = _build(subscriber, digest)
    assert_wire_format(data)
    to_lines = data.split(b"\r\nSubject:")[0].split(b"\r\nTo:")[1].split(b"\r\n")
    assert len(to_lines) > 1 and all(len(line) <= 78 for line in to_lines)
    parsed = parse(data)
    assert display_name(parsed) == name
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.org"


def test_build_message_internationalised_addresses(digest: Digest) -> None:
    idn = Subscriber(email="zoe@exämple.org", name="Zoë", topics=["x"])
    parsed = parse(_build(idn, digest))
    assert parsed["To"].addresses[0].addr_spec == "zoe@xn--exmple-cua.org"
    utf8_local = Subscriber(email="zoë@example.org", name="Zoë", topics=["x"])
    data = _build(utf8_local, digest)  # needs SMTPUTF8: raw UTF-8 headers, no crash
    assert "zoë@example.org".encode() in data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


_NASTY = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(
            [
                "\r",
                "\n",
                "\r\n",
                "\x00",
                '"',
                "'",
                "\\",
                ",",
                ";",
                "<",
                ">",
                "@",
                "(",
                ")",
                ":",
                "=?",
                "?=",
                " ",
                "\t",
                "\u2028",
                "\x85",
                "é",
                "Ø",
            ]
        ),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_NASTY, name=_NASTY)
def test_build_message_property(subject: str, name: str) -> None:
    subscriber = Subscriber.model_construct(
        email="zoe@example.org", name=name, topics=SUBSCRIBER.topics
    )
    digest = Digest(subject, "p", "<p>hi</p>\n", "hi\n")
    data = _build(subscriber, digest)
    assert_wire_format(data)
    parsed = parse(data)
    assert sorted(parsed.keys()) == sorted(HEADERS)
    assert parsed["Subject"] == header_value(subject)
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "zoe@example.org"
    assert display_name(parsed) == header_value(name)
    if len(header_value(name).encode("utf-8")) <= 20:  # one encoded word at most
        assert to.display_name == header_value(name)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


# --- the fast builder against the reference --------------------------------------------

_LONG_WORDS = st.sampled_from(["x" * 75, "Ü" * 40, "a" * 997, "=?utf-8?q?abc?=", "=" * 80])
_TEXT = st.lists(
    st.one_of(_NASTY, _LONG_WORDS, st.sampled_from(["\r\n", "\n", "\r", ".", "From ", " \n"])),
    max_size=8,
).map("".join)
_ADDRESSES = st.sampled_from(
    [
        "zoe@example.org",
        "Zoe.Long+tag@Example.ORG",
        "zoe@exämple.org",
        "zoë@example.org",
        f"{'a' * 60}@{'b' * 60}.example.org",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_NASTY | _LONG_WORDS,
    subject=_TEXT,
    text=_TEXT,
    html=_TEXT,
    address=_ADDRESSES,
    digest_name=st.text(min_size=1, max_size=60),
)
def test_fast_builder_reads_back_like_the_reference(
    name: str, subject: str, text: str, html: str, address: str, digest_name: str
) -> None:
    subscriber = Subscriber.model_construct(email=address, name=name, topics=SUBSCRIBER.topics)
    kwargs = dict(
        from_address="Research Digest <digest@example.org>",
        subscriber=subscriber,
        digest=Digest(subject, "p", html, text),
        unsubscribe_url=UNSUB + "&n=" + address,
        message_id=message_id_for("2026-11-19", address, "example.org"),
        date=SENT,
        list_id=list_id_for(digest_name, "example.org"),
    )
    fast = build_message(**kwargs)  # type: ignore[arg-type]
    assert_same_message(fast, build_message_reference(**kwargs))  # type: ignore[arg-type]
    parsed = parse(fast)
    assert sorted(parsed.keys()) == sorted(HEADERS)  # nothing injected, nothing repeated
    if address.split("@")[0].isascii():  # else the reference built it (SMTPUTF8)
        assert parsed["Subject"] == header_value(subject)
        assert fast.split(b"\r\n\r\n", 1)[0].isascii()  # 7-bit headers
        text_part = next(parsed.iter_parts())
        eight_bit = text_part["Content-Transfer-Encoding"] == "8bit"
        assert fast.isascii() is not eight_bit  # only an 8bit text part carries 8-bit bytes


def test_fast_builder_on_a_real_digest(digest: Digest) -> None:
    for subscriber in (
        SUBSCRIBER,
        Subscriber(email="ada@example.org", name="Ada Lovelace", topics=["x"]),
        Subscriber(
            email="ada@example.org", name='Ada "the first" Lovelace, Countess', topics=["x"]
        ),
        Subscriber(email="ada@example.org", topics=["x"]),
    ):
        kwargs = dict(
            from_address="Research Digest <digest@example.org>",
            subscriber=subscriber,
            digest=digest,
            unsubscribe_url=UNSUB,
            message_id="<i.1@example.org>",
            date=SENT,
        )
        fast = build_message(**kwargs)  # type: ignore[arg-type]
        assert_same_message(fast, build_message_reference(**kwargs))  # type: ignore[arg-type]
        assert parse(fast)["Subject"] == digest.subject
        assert b"MIME-Version" not in fast.split(b"\r\n\r\n", 1)[1]  # only at the top


def test_fast_builder_boundary_differs_per_message(digest: Digest) -> None:
    boundaries = {parse(_build(SUBSCRIBER, digest))["Content-Type"].params["boundary"]}
    boundaries.add(parse(_build(SUBSCRIBER, digest))["Content-Type"].params["boundary"])
    assert len(boundaries) == 2 and all(b.startswith("=_") for b in boundaries)


def test_list_id_names_the_digest_at_the_senders_domain() -> None:
    assert list_id_for("Research Digest", "lab.org") == "Research Digest <digest.lab.org>"
    assert list_id_for("Lab, Inc. (ML)", "lab.org") == '"Lab, Inc. (ML)" <digest.lab.org>'
    encoded = list_id_for("Zoë's Digest", "bücher.example")
    assert encoded.isascii() and encoded.endswith("<digest.xn--bcher-kva.example>")
    message = parse(
        build_message(
            from_address="Zoë <digest@example.org>",
            subscriber=SUBSCRIBER,
            digest=Digest("s", "p", "<p>h</p>", "t"),
            unsubscribe_url=UNSUB,
            message_id="<i.1@example.org>",
            date=SENT,
            list_id=encoded,
        )
    )
    assert str(message["List-Id"]) == "Zoë's Digest <digest.xn--bcher-kva.example>"


def test_header_value_collapses_controls() -> None:
    assert header_value(" a\r\n\tb\x00c\x1b  d\u2028e ") == "a b c d e"


def test_message_id_for_is_deterministic_and_unique() -> None:
    a = message_id_for("2026-11-19 daily/#1", "Zoe@Example.org", "example.org")
    assert a == message_id_for("2026-11-19 daily/#1", "zoe@example.org", "example.org")
    assert re.fullmatch(r"<2026-11-19-daily-1\.[0-9a-f]{20}@example\.org>", a)
    assert a != message_id_for("2026-11-19 daily/#1", "other@example.org", "example.org")
    assert a != message_id_for("2026-11-20", "zoe@example.org", "example.org")


# --- line limits: every header line fits in 998 octets, whatever the input ---------------

_UNBROKEN = st.builds(
    lambda piece, count: piece * count,
    st.one_of(
        st.characters(),
        st.sampled_from(["a", "ü", '"', "\\", "=", "?", "_", ".", "\u77e5", "\U0001f600", "=?"]),
    ),
    st.integers(min_value=60, max_value=2200),
)
_HUGE = st.one_of(_UNBROKEN, st.text(min_size=500, max_size=2500))
_ANY_LENGTH = st.one_of(_NASTY, _HUGE, st.lists(_NASTY | _UNBROKEN, max_size=4).map(" ".join))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def _mailbox_name(parsed: EmailMessage, header: str) -> str:
    """The display name of a one-address header, decoded by the RFC 2047 rules (see
    `_display_name`)."""
    raw = dict(parsed.raw_items())[header]
    phrase = raw.rsplit("<", 1)[0].strip() if raw.rstrip().endswith(">") else ""
    if phrase.startswith("=?"):
        return str(make_header(decode_header(phrase)))
    return str(parsed[header].addresses[0].display_name)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_ANY_LENGTH, sender=_ANY_LENGTH, subject=_ANY_LENGTH, address=_ADDRESSES)
def test_no_line_exceeds_998_octets_for_any_name_or_subject(
    name: str, sender: str, subject: str, address: str
) -> None:
    subscriber = Subscriber.model_construct(email=address, name=name, topics=SUBSCRIBER.topics)
    kwargs = dict(
        from_address=str(Address(display_name=header_value(sender), addr_spec="d@example.org")),
        subscriber=subscriber,
        digest=Digest(subject, "p", "<p>hi</p>\n", "hi\n"),
        unsubscribe_url=UNSUB,
        message_id=message_id_for("2026-11-19", address, "example.org"),
        date=SENT,
        list_id=list_id_for("Research Digest", "example.org"),
    )
    fast = build_message(**kwargs)  # type: ignore[arg-type]
    reference = build_message_reference(**kwargs)  # type: ignore[arg-type]
    for data in (fast, reference):
        assert max(len(line) for line in _lines(data)) <= 998
    assert_same_message(fast, reference)
    # Parsed from text, so that SMTPUTF8 headers (raw UTF-8) read back as characters.
    parsed = email.message_from_string(fast.decode("utf-8"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert sorted(parsed.keys()) == sorted(HEADERS)
    assert parsed["Subject"] == header_value(subject)
    assert [a.addr_spec for a in parsed["From"].addresses] == ["d@example.org"]
    assert _mailbox_name(parsed, "From") == header_value(sender)
    assert len(parsed["To"].addresses) == 1
    assert _mailbox_name(parsed, "To") == header_value(name)


@pytest.mark.parametrize(
    "name",
    [
        "x" * 2000,
        "\u00fc" * 2000,
        'Ada "' + "\\" * 900 + '"',
        # Quoted and too long for a line: CPython's folder used to drop the quotes, and
        # the name read back as several addresses.
        "Ada, Countess (of) Lovelace; " * 8 + "end",
    ],
)
def test_a_2000_character_name_folds_at_78_columns(digest: Digest, name: str) -> None:
    subscriber = Subscriber(email="zoe@example.org", name=name, topics=["x"])
    kwargs = dict(
        from_address=f"{'D' * 2000} <digest@example.org>",
        subscriber=subscriber,
        digest=Digest("S" * 2000, "p", digest.html, digest.text),
        unsubscribe_url="https://digest.example.org/u/t",  # a URL stays on one line
        message_id="<i.1@example.org>",
        date=SENT,
    )
    for data in (build_message(**kwargs), build_message_reference(**kwargs)):  # type: ignore[arg-type]
        head = data.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in _lines(head)) <= 78
        parsed = parse(data)
        assert display_name(parsed) == name
        assert parsed["Subject"] == "S" * 2000


def test_a_url_longer_than_a_line_folds_inside_its_brackets(digest: Digest) -> None:
    url = "https://digest.example.org/unsubscribe/" + "t" * 2000
    kwargs = dict(
        from_address="Research Digest <digest@example.org>",
        subscriber=SUBSCRIBER,
        digest=digest,
        unsubscribe_url=url,
        message_id="<i.1@example.org>",
        date=SENT,
    )
    fast = build_message(**kwargs)  # type: ignore[arg-type]
    assert_same_message(fast, build_message_reference(**kwargs))  # type: ignore[arg-type]
    head = fast.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in _lines(head)) <= 78
    # RFC 2369: whitespace inside the angle brackets is ignored; no encoded words.
    value = parse(fast)["List-Unsubscribe"]
    assert "=?" not in value and "".join(value.split()) == f"<{url}>"


def test_a_message_id_longer_than_a_line_is_refused(digest: Digest) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        _build(SUBSCRIBER, digest, message_id=f"<{'i' * 1000}@example.org>")
    with pytest.raises(ValueError, match="domain"):
        message_id_for("2026-11-19", "zoe@example.org", "d" * 254)


def test_a_stock_smtp_server_accepts_a_2000_character_name(digest: Digest) -> None:
    """aiosmtpd, like Postfix, refuses a line over 998 octets with "500 Line too long"."""
    subscriber = Subscriber(email="zoe@example.org", name="x" * 2000, topics=["x"])
    data = _build(subscriber, digest)
    with smtp_server() as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        refused = client.sendmail("digest@example.org", ["zoe@example.org"], data)
    assert refused == {}
    (received,) = server.recorder.messages_to("zoe@example.org")
    assert display_name(received) == "x" * 2000


# --- template errors and reload -----------------------------------------------------------


@pytest.fixture()
def template_copy(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return target


def _corrupt(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        ("digest.txt.j2", "{% endfor %}", "", r"digest\.txt\.j2:\d+: Jinja syntax error"),
        ("digest.mjml.j2", "<mj-raw>{% endfor %}</mj-raw>", "", r"digest\.mjml\.j2:\d+: Jinja"),
        ("subject.txt.j2", "{% endif %}", "{% endfi %}", r"subject\.txt\.j2:\d+: Jinja"),
        (
            "digest.mjml.j2",
            "<mj-divider />",
            "<mj-dividr />",
            r"digest\.mjml\.j2:\d+: unknown MJML element <mj-dividr>",
        ),
        ("digest.mjml.j2", "</mj-column>", "", r"digest\.mjml\.j2.*MJML cannot compile"),
        (
            "digest.mjml.j2",
            "<mj-attributes>",
            "<mj-html-attributes></mj-html-attributes><mj-attributes>",
            r"digest\.mjml\.j2:\d+: MJML cannot compile.*mj-html-attributes",
        ),
        (
            "digest.mjml.j2",
            "<mj-style>",
            '<mj-style inline="inline">',
            r"digest\.mjml\.j2:\d+: mjml-python does not inline",
        ),
        # MJML computes column widths: a placeholder or tag there is silently dropped.
        (
            "digest.mjml.j2",
            "<mj-column>",
            '<mj-column width="{{ width }}">',
            r"digest\.mjml\.j2:\d+: MJML dropped or changed the placeholder \{\{ width \}\}",
        ),
        (
            "digest.mjml.j2",
            "<mj-column>",
            '<mj-column width="{% if wide %}100%{% else %}50%{% endif %}">',
            r"digest\.mjml\.j2:\d+: MJML dropped, moved or changed the Jinja tag \{% if wide %\}",
        ),
        # Jinja tags in mj-head break the MJML parser.
        (
            "digest.mjml.j2",
            "<mj-head>",
            "<mj-head>{% if name %}{% endif %}",
            r"digest\.mjml\.j2:\d+: MJML cannot compile",
        ),
    ],
)
def test_broken_template_names_the_file(
    template_copy: Path, name: str, old: str, new: str, expected: str
) -> None:
    _corrupt(template_copy / name, old, new)
    with pytest.raises(TemplateError, match=expected):
        Renderer(template_copy)


def test_unclosed_for_names_the_line(template_copy: Path) -> None:
    _corrupt(template_copy / "digest.txt.j2", "{% endfor %}", "")
    with pytest.raises(TemplateError) as info:
        Renderer(template_copy)
    message = str(info.value)
    line = int(re.search(r"digest\.txt\.j2:(\d+):", message).group(1))  # type: ignore[union-attr]
    assert 1 <= line <= len((template_copy / "digest.txt.j2").read_text().splitlines()) + 1
    assert "endfor" in message


def test_missing_template_and_unknown_variable(template_copy: Path, picks: list[Pick]) -> None:
    (template_copy / "subject.txt.j2").unlink()
    with pytest.raises(TemplateError, match=r"subject\.txt\.j2: template file not found"):
        Renderer(template_copy)
    (template_copy / "subject.txt.j2").write_text("Digest {{ nope }}\n", encoding="utf-8")
    renderer = Renderer(template_copy)
    with pytest.raises(TemplateError, match=r"subject\.txt\.j2:1: cannot render.*nope"):
        renderer.render(
            subscriber=SUBSCRIBER,
            picks=picks,
            issue_date=ISSUE,
            unsubscribe_url=UNSUB,
            pages=PAGES,
        )


@pytest.mark.parametrize("name", ["digest.mjml.j2", "digest.txt.j2"])
def test_a_render_error_names_the_line_the_user_wrote(
    template_copy: Path, picks: list[Pick], name: str
) -> None:
    """The HTML is rendered from MJML compiled into one long line: the error still names
    the line of the MJML source."""
    path = template_copy / name
    source = path.read_text(encoding="utf-8")
    tag = "{{ card.url }}" if name.endswith("mjml.j2") else "{{ card.title"
    line = source[: source.index(tag)].count("\n") + 1
    path.write_text(source.replace(tag, tag.replace("card.", "card.nope."), 1), encoding="utf-8")
    with pytest.raises(TemplateError, match=rf"{re.escape(str(path))}:{line}: cannot render"):
        Renderer(template_copy).render(
            subscriber=SUBSCRIBER, picks=picks, issue_date=ISSUE, unsubscribe_url=UNSUB,
            pages=PAGES,
        )  # fmt: skip


def test_edited_template_is_picked_up(template_copy: Path, picks: list[Pick]) -> None:
    renderer = Renderer(template_copy)
    kwargs = dict(
        subscriber=SUBSCRIBER,
        picks=picks,
        issue_date=ISSUE,
        unsubscribe_url=UNSUB,
        pages=PAGES,
    )
    before = renderer.render(**kwargs)  # type: ignore[arg-type]
    assert before.subject.startswith("Distilling")
    assert renderer.reload_if_changed() is False

    _corrupt(template_copy / "subject.txt.j2", "{% if papers %}", "Fresh papers, {% if papers %}")
    _corrupt(
        template_copy / "digest.mjml.j2",
        "matching your topics.</mj-text>",
        "for your weekly reading list.</mj-text>",
    )
    after = renderer.render(**kwargs)  # type: ignore[arg-type]
    assert after.subject.startswith("Fresh papers, Distilling")
    assert "for your weekly reading list." in after.html

    # A broken edit raises (naming the file) and the fix is picked up on the next render.
    _corrupt(template_copy / "digest.txt.j2", "{% endfor %}", "{% endfor")
    with pytest.raises(TemplateError, match="digest.txt.j2"):
        renderer.render(**kwargs)  # type: ignore[arg-type]
    _corrupt(template_copy / "digest.txt.j2", "{% endfor", "{% endfor %}")
    assert renderer.render(**kwargs).text == before.text  # type: ignore[arg-type]


def test_stored_picks_without_matches(renderer: Renderer) -> None:
    # Picks read back from the database carry their reason, not their matches.
    stored = [Pick(PAPERS[1], 1.0, (), "Matches continual learning (stored)")]
    d = renderer.render(
        subscriber=SUBSCRIBER,
        picks=stored,
        issue_date=ISSUE,
        unsubscribe_url=UNSUB,
        pages=PAGES,
    )
    assert "Matches continual learning (stored)" in d.html
    assert "Matches continual learning (stored)" in d.text
    assert d.preheader == "1 paper on continual learning"  # the topic its why-line names
    assert "Here is 1 new paper matching your topics." in d.text
