"""Tests for newsletter.assembly: messages joined from paper blocks rendered once per issue.

The oracle is the reference path: the digest rendered in place, built by `EmailMessage`
(`message.build_message_reference`). A joined message must parse to the same headers and
decoded parts, for generated readers and papers (hostile text included), and the only
difference from rendering in place is the padding comments in the HTML.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import aiosmtplib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.assembly import SharedBlocks, comments_fit, padding
from newsletter.delivery import transmit
from newsletter.dumps import Paper
from newsletter.errors import TemplateError
from newsletter.message import (
    build_message,
    build_message_reference,
    list_id_for,
    message_id_for,
)
from newsletter.ranking import Pick
from newsletter.render import Digest, Renderer
from newsletter.subscribers import Subscriber
from tests.mime_checks import assert_same_message, assert_wire_format, parse
from tests.smtp_server import Recorder, smtp_server

TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter" / "templates"
ISSUE = date(2026, 11, 19)
SENT = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)
BASE = "https://digest.example.org"
PADDING = re.compile(r"<!-- *-->")

# Text a capture or a reader may hold: markup, entities, line ends of every kind, NUL,
# non-ASCII, words longer than a line, "=" runs and what looks like an encoded word.
_NASTY = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(
            [
                "<b>",
                "</tr>",
                "&amp;",
                "&",
                '"',
                "\r",
                "\n",
                "\r\n",
                "\x00",
                "\u2028",
                "é",
                "Ørsted",
                " ",
                "=?utf-8?q?x?=",
                "x" * 1200,
                "Ü" * 600,
                "=" * 90,
                "<!--",
                "-->",
            ]
        ),  # fmt: skip
    ),
    max_size=12,
).map("".join)
_WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=60)
_TOPICS = st.lists(st.text(alphabet="abcdefghij", min_size=2, max_size=12), min_size=1, max_size=3)


@st.composite
def _papers(draw: st.DrawFn) -> list[Paper]:
    count = draw(st.integers(min_value=1, max_value=5))
    return [
        Paper(
            key=f"p{index}",
            title=draw(_NASTY | _WORDS) or f"Paper {index}",
            abstract=draw(_NASTY | _WORDS),
            authors=tuple(draw(st.lists(_WORDS, max_size=5))),
            authors_count=draw(st.none() | st.integers(min_value=0, max_value=40)),
            organization=draw(st.none() | _NASTY),
            published=draw(st.none() | st.dates(date(2020, 1, 1), date(2026, 11, 19))),
            upvotes=draw(st.integers(min_value=0, max_value=500)),
            arxiv_id=draw(st.none() | st.sampled_from(["2411.01234", "nonsense", "2401.00007"])),
            github_repo=draw(
                st.none() | st.sampled_from(["https://github.com/a/b", "javascript:x"])
            ),
            ai_summary=draw(st.none() | _NASTY),
        )  # fmt: skip
        for index in range(count)
    ]


@st.composite
def _readers(draw: st.DrawFn, papers: list[Paper]) -> list[tuple[Subscriber, list[Pick]]]:
    readers = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        chosen = draw(st.permutations(papers).map(lambda ps: ps[: draw(st.integers(0, len(ps)))]))
        subscriber = Subscriber.model_construct(
            email=draw(st.sampled_from([f"r{index}@example.org", f"zoë{index}@example.org"])),
            name=draw(st.none() | _NASTY),
            topics=Subscriber(email="x@example.org", topics=draw(_TOPICS)).topics,
        )  # fmt: skip
        picks = [Pick(paper, 1.0, (), draw(_NASTY | _WORDS)) for paper in chosen]
        readers.append((subscriber, picks))
    return readers


def _render(
    renderer: Renderer, subscriber: Subscriber, picks: list[Pick], **more: object
) -> Digest:
    return renderer.render(
        subscriber=subscriber,
        picks=picks,
        issue_date=ISSUE,
        unsubscribe_url=f"{BASE}/unsubscribe/tok-{subscriber.email}",
        pages={paper.key: ISSUE for paper in (p.paper for p in picks)},
        archive_url=f"{BASE}/issue/a",
        feed_url=f"{BASE}/feed/f",
        manage_url=f"{BASE}/manage/m",
        feedback_url=f"{BASE}/feedback/t",
        **more,  # type: ignore[arg-type]
    )


def _build(shared: SharedBlocks, subscriber: Subscriber, digest: Digest) -> tuple[bytes, bytes]:
    """The joined message and the reference built from what it stands for."""
    kwargs = dict(
        from_address="Research Digest <digest@example.org>",
        subscriber=subscriber,
        unsubscribe_url=f"{BASE}/unsubscribe/tok",
        message_id=message_id_for("2026-11-19", subscriber.email, "example.org"),
        date=SENT,
        list_id=list_id_for("Research Digest", "example.org"),
    )
    joined = build_message(digest=digest, parts=shared, **kwargs)  # type: ignore[arg-type]
    reference = build_message_reference(digest=shared.digest(digest), **kwargs)  # type: ignore[arg-type]
    return joined, reference


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, auto_reload=False)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_joined_messages_read_back_like_the_reference(
    renderer: Renderer, data: st.DataObject
) -> None:
    papers = data.draw(_papers())
    shared = SharedBlocks()  # one issue: every reader's message shares its blocks
    for subscriber, picks in data.draw(_readers(papers)):
        marked = _render(renderer, subscriber, picks, blocks=shared.blocks)
        in_place = _render(renderer, subscriber, picks)
        # What the joined message stands for is the digest rendered in place, the
        # padding comments of the HTML aside.
        assert shared.digest(marked).text == in_place.text
        assert PADDING.sub("", shared.digest(marked).html) == in_place.html
        assert shared.resolve(marked.html) == in_place.html
        joined, reference = _build(shared, subscriber, marked)
        assert_same_message(joined, reference)
        if subscriber.email.split("@")[0].isascii():  # else the reference built it
            assert_wire_format(joined)
    # Each card was rendered once for the HTML and once for the text, however many
    # readers got it.
    assert len(shared) <= 2 * len(papers)


def test_a_block_is_rendered_once_for_every_reader(renderer: Renderer) -> None:
    papers = [
        Paper(key=f"k{i}", title=f"Paper number {i}", abstract="Words. " * 30) for i in range(3)
    ]
    shared = SharedBlocks()
    readers = [
        (Subscriber(email=f"r{i}@example.org", name=f"Reader {i}", topics=["words"]),
         [Pick(p, 1.0, (), f"why {i}") for p in papers[i % 2 :]])
        for i in range(6)
    ]  # fmt: skip
    for subscriber, picks in readers:
        joined, reference = _build(
            shared, subscriber, _render(renderer, subscriber, picks, blocks=shared.blocks)
        )
        assert_same_message(joined, reference)
        html = parse(joined).get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"why {subscriber.name[-1]}" in html  # the reader's own why-line  # type: ignore[index]
        assert all(
            f"Paper number {i}" in html
            for i in range(len(papers))
            if i >= int(subscriber.name[-1]) % 2
        )  # type: ignore[index]
    assert len(shared) == 2 * len(papers)  # an HTML and a text block per paper, no more


def test_each_padded_piece_is_a_whole_number_of_base64_lines(renderer: Renderer) -> None:
    paper = Paper(key="k", title="A title", abstract="An abstract.")
    subscriber = Subscriber(email="r@example.org", topics=["title"])
    shared = SharedBlocks()
    marked = _render(renderer, subscriber, [Pick(paper, 1.0, (), "why")] * 2, blocks=shared.blocks)
    html = shared.digest(marked).html
    comments = PADDING.findall(html)
    assert len(comments) == 4  # after the head, each block, the piece between them
    starts = [m.end() for m in PADDING.finditer(html)]
    assert all(len(html[:end].replace("\n", "\r\n").encode()) % 57 == 0 for end in starts)
    assert [padding(n) for n in (57, 56, 50, 0)] == ["", "<!--" + " " * 51 + "-->", "<!---->", ""]


@pytest.mark.parametrize(
    ("pieces", "fits"),
    [
        (["<p>a</p>", "<p>b</p>"], True),
        (["<table><tr><td>a</td></tr>", "<tr><td>b</td></tr></table>"], True),
        (['<a title="x', '">y</a>'], False),  # inside an attribute
        (["<style>p {", "}</style>"], False),
        (["<title>x", "</title>"], False),
        (["<!--[if mso]><table>", "<![endif]-->"], False),  # inside a conditional comment
        (["<p>a &amp", "p; b</p>"], False),  # inside a character reference
    ],
)
def test_comments_fit_only_between_elements_and_text(pieces: list[str], fits: bool) -> None:
    assert comments_fit(pieces) is fits


def _template_copy(tmp_path: Path, old: str, new: str, name: str = "digest.mjml.j2") -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    path = folder / name
    source = path.read_text()
    assert old in source
    path.write_text(source.replace(old, new))
    return folder


def test_a_block_that_uses_the_reader_is_refused_at_its_line(tmp_path: Path) -> None:
    folder = _template_copy(
        tmp_path, "{{ card.title }}</a>", "{{ card.title }} {{ paper.why }}</a>"
    )
    line = next(
        n for n, text in enumerate((folder / "digest.mjml.j2").read_text().splitlines(), 1)
        if "paper.why }}</a>" in text
    )  # fmt: skip
    with pytest.raises(
        TemplateError, match=rf"digest\.mjml\.j2:{line}: .*may use only card, not 'paper'"
    ):
        Renderer(folder)
    text = _template_copy(
        tmp_path / "t", "{{ card.title }}\n", "{{ card.title }} for {{ name }}\n", "digest.txt.j2"
    )
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:\d+: .*not 'name'"):
        Renderer(text)


def test_a_template_without_blocks_is_rendered_whole(tmp_path: Path) -> None:
    # A template written before paper blocks existed: every message is rendered in full.
    folder = _template_copy(
        tmp_path, "{% call(card) paper_block(paper.card) %}", "{% set card = paper.card %}"
    )
    source = (folder / "digest.mjml.j2").read_text().replace("<mj-raw>{% endcall %}</mj-raw>", "")
    (folder / "digest.mjml.j2").write_text(source)
    renderer = Renderer(folder)
    shared = SharedBlocks()
    paper = Paper(key="k", title="Old template", abstract="An abstract.")
    subscriber = Subscriber(email="r@example.org", name="Zoë", topics=["template"])
    marked = _render(renderer, subscriber, [Pick(paper, 1.0, (), "why")], blocks=shared.blocks)
    joined, reference = _build(shared, subscriber, marked)
    assert_same_message(joined, reference)
    assert len(shared) == 1  # the text template's block only
    assert "Old template" in parse(joined).get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_a_block_inside_an_attribute_is_encoded_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The block's start stands inside a title attribute: a comment there would change it.
    folder = _template_copy(
        tmp_path,
        "<mj-raw>{% call(card) paper_block(paper.card) %}</mj-raw>",
        '<mj-raw><span title="{% call(card) paper_block(paper.card) %}"></span></mj-raw>',
    )
    renderer = Renderer(folder)
    shared = SharedBlocks()
    paper = Paper(key="k", title="Inside", abstract="An abstract.")
    subscriber = Subscriber(email="r@example.org", topics=["inside"])
    with caplog.at_level(logging.WARNING, logger="newsletter.assembly"):
        marked = _render(renderer, subscriber, [Pick(paper, 1.0, (), "why")], blocks=shared.blocks)
        joined, reference = _build(shared, subscriber, marked)
    assert_same_message(joined, reference)
    html = parse(joined).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert not PADDING.search(html)
    assert "put {% call %} and {% endcall %} between elements" in caplog.text


@pytest.mark.parametrize("offers_8bitmime", [True, False])
def test_an_8bit_text_part_goes_as_it_is_only_where_8bitmime_is_offered(
    renderer: Renderer, offers_8bitmime: bool
) -> None:
    paper = Paper(key="k", title="Ørsted and Müller on tokenizers", abstract="Straße. " * 20)
    subscriber = Subscriber(email="r@example.org", name="Zoë", topics=["tokenizers"])
    shared = SharedBlocks()
    joined, _ = _build(
        shared,
        subscriber,
        _render(renderer, subscriber, [Pick(paper, 1.0, (), "")], blocks=shared.blocks),
    )
    assert parse(joined).get_body(("plain",))["Content-Transfer-Encoding"] == "8bit"  # type: ignore[index]
    recorder = Recorder(offer_8bitmime=offers_8bitmime)

    async def send(port: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        await transmit(client, "digest@example.org", "r@example.org", joined,
                       smtputf8=False, timeout=10, data_timeout=10)  # fmt: skip
        await client.quit()

    with smtp_server(recorder) as server:
        asyncio.run(send(server.port))
    (_, received), ((_, options),) = recorder.received[0], recorder.envelopes
    text = parse(received).get_body(("plain",))
    assert text is not None
    assert text.get_content() == parse(joined).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    if offers_8bitmime:
        assert "BODY=8BITMIME" in options and text["Content-Transfer-Encoding"] == "8bit"
    else:  # RFC 6152: re-encoded, headers untouched
        assert not any(option.startswith("BODY=") for option in options)
        assert received.isascii() and text["Content-Transfer-Encoding"] == "quoted-printable"
        assert received.split(b"\r\n\r\n", 1)[0] == joined.split(b"\r\n\r\n", 1)[0]
