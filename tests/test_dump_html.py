"""The Daily Papers pages saved as HTML (`newsletter/dumps/html.py`): the embedded
data-props list is preferred, the DOM's cards are read when it is missing, the page date
comes from the props, the page's URL, its header or the day received, and other sites'
pages are refused."""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.dumps import HTML, Dump, paper_key, parse_dump, sniff
from newsletter.dumps.model import API_ENTRIES, PAGE_CHROME, PAPER_LINKS
from newsletter.errors import DumpError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dumps" / "html"
RECEIVED = datetime(2025, 3, 12, 8, 0, tzinfo=UTC)

TITLE = "Tool-Time: Teaching Language Models to Budget Their Tool Calls"
ABSTRACT = (
    "Agents that call tools freely can run up large bills and long latencies for small "
    "gains. We add an explicit budget to the agent's context and train it with a reward "
    "that trades task success against the cost of each call."
)
SUMMARY = "Tool-Time trains agents to respect a tool-call budget with a cost-aware reward."


def page(body: str, *, head: str = "", before: str = "") -> str:
    """A page as huggingface.co serves it: doctype, head, the site's header and footer."""
    return (
        f"<!DOCTYPE html>\n{before}<html><head><meta charset='utf-8'>{head}"
        "<title>Daily Papers - Hugging Face</title></head>\n<body>"
        "<header><nav><a href='/models'>Models</a><a href='/papers/2401.00001'>Featured "
        "paper of the week</a><a href='/login'>Log In</a></nav></header>\n"
        f"<main>{body}</main>\n"
        "<footer><a href='/terms-of-service'>TOS</a><a href='/privacy'>Privacy</a></footer>"
        "<script>window.props = {'papers': ['/papers/2401.00002']}</script></body></html>"
    )


def card(
    paper_id: str = "2503.06988",
    title: str = TITLE,
    *,
    href: str | None = None,
    text: str = ABSTRACT,
    upvotes: str = "44",
    who: str = "<ul><li title='Ji-ho Shin'><img alt=''></li><li title='Priyanka Das'>"
    "<img alt=''></li></ul><span>· 5 authors</span>",
    when: str = "<span>·</span><span>Published on Mar 9</span>",
    extra: str = "",
) -> str:
    """One paper card in the shape of the page's (escaped as the page escapes it)."""
    link = href if href is not None else f"/papers/{paper_id}"
    return (
        f"<article class='relative flex flex-col rounded-xl border'>"
        f"<a href='{link}' class='block h-56'><img src='/thumb/{paper_id}.png' alt=''></a>"
        f"<div class='flex'><div class='mr-5 flex flex-col'><label title='Upvote'>"
        f"<input type='checkbox'><svg><title>Upvote</title><path d='M5'></path></svg>"
        f"<div class='leading-none'>{upvotes}</div></label></div>"
        f"<div class='w-full'><h3><a href='{link}'>{html.escape(title)}</a></h3>"
        f"<p class='text-sm'>{html.escape(text)}</p>"
        f"<div class='flex items-center'>{who}{when}</div>{extra}</div></div></article>"
    )


def parse(text: str, *, received: datetime = RECEIVED, name: str = "page.html") -> Dump:
    assert sniff(text) == HTML
    return parse_dump(text, name=name, received_at=received)


def props_attribute(props: dict[str, Any]) -> str:
    return html.escape(json.dumps(props), quote=True)


# -- Props first ---------------------------------------------------------------------------


def test_the_embedded_props_are_preferred_over_the_dom() -> None:
    entry = {
        "paper": {
            "id": "2503.06988",
            "title": "Tool-Time: Teaching Language Models\n  to Budget Their Tool Calls",
            "summary": ABSTRACT,
            "upvotes": 61,
            "authors": [{"name": "Ji-ho Shin"}, {"name": "Priyanka Das"}, {"name": "Ola N."}],
            "publishedAt": "2025-03-09T17:59:59.000Z",
            "ai_summary": SUMMARY,
            "ai_keywords": ["tool use", "budget"],
            "githubRepo": "https://github.com/tooltime/tooltime",
            "githubStars": 312,
            "organization": {"name": "tooltime", "fullname": "Tool & Time Lab"},
        },
        "numComments": 3,
    }
    props = {"dailyPapers": [entry], "date": "2025-03-11", "previousDate": "2025-03-10"}
    dom = card(text="The DOM shows only the AI summary, after the scripts changed it.")
    body = (
        f"<div class='SVELTE_HYDRATER contents' data-target='DailyPapers' "
        f'data-props="{props_attribute(props)}">{dom}</div>'
    )
    dump = parse(page(body))
    [paper] = dump.papers
    assert paper.title == TITLE  # the API's hard line break folded
    assert paper.abstract == ABSTRACT
    assert (paper.upvotes, paper.comments, paper.authors_count) == (61, 3, 3)
    assert paper.organization == "Tool & Time Lab"  # &amp; decoded by the parser
    assert paper.ai_keywords == ("tool use", "budget")
    assert (paper.github_repo, paper.github_stars) == ("https://github.com/tooltime/tooltime", 312)
    assert paper.published == date(2025, 3, 9)
    assert dump.page_date == date(2025, 3, 11)
    assert API_ENTRIES in dump.evidence and PAPER_LINKS in dump.evidence


def test_props_under_another_key_and_of_bare_papers_are_read() -> None:
    papers = [
        {"id": f"2410.0{n}000", "title": f"Trending Paper {n}", "summary": ABSTRACT, "upvotes": n}
        for n in range(1, 4)
    ]
    props = {"trendingPapers": papers, "sort": "trending", "orgs": [{"name": "acme"}]}
    body = f"<div data-target='TrendingPapers' data-props=\"{props_attribute(props)}\"></div>"
    dump = parse(page(body))
    assert [p.title for p in dump.papers] == [
        "Trending Paper 1",
        "Trending Paper 2",
        "Trending Paper 3",
    ]
    assert [p.arxiv_id for p in dump.papers] == ["2410.01000", "2410.02000", "2410.03000"]
    assert dump.page_date == RECEIVED.date()  # the Trending page has no date


def test_broken_props_are_warned_about_and_the_dom_is_read() -> None:
    body = f"<div data-target='DailyPapers' data-props='{{\"dailyPapers\": [{{\"paper\"'>{card()}</div>"
    dump = parse(page(body))
    assert [p.title for p in dump.papers] == [TITLE]
    assert any("data-props of DailyPapers are not JSON" in w for w in dump.warnings)


# -- The DOM's cards -------------------------------------------------------------------------


def test_dom_cards_give_every_field_the_card_shows() -> None:
    extra = (
        "<div class='flex gap-2'>"
        "<a href='https://github.com/tooltime/tooltime.git' class='btn'><svg></svg>GitHub"
        "<span>1.2k</span></a>"
        "<a href='https://tooltime.github.io' class='btn'>Project page</a>"
        "<a href='/papers/2503.06988#community' class='btn'><svg></svg><!-- -->7</a></div>"
        "<div>Submitted by<!-- --> <a href='/akhaliq'><img alt=''>akhaliq</a></div>"
    )
    text = page(
        card(extra=extra)
        + card(
            "2503.05871",
            "Muon Is Scalable, Too",
            who=(
                "<a href='/moonlight-labs'><img alt='Moonlight Labs avatar'><span>Moonlight Labs</span></a>"
            ),
            when="<span>·</span><span>Nov 27, 2024</span>",
            upvotes="-",
        )
    )
    dump = parse(text)
    tool, muon = dump.papers
    assert tool.title == TITLE and tool.abstract == ABSTRACT and tool.ai_summary is None
    assert tool.authors == ("Ji-ho Shin", "Priyanka Das") and tool.authors_count == 5
    assert (tool.upvotes, tool.comments, tool.arxiv_id) == (44, 7, "2503.06988")
    assert (tool.github_repo, tool.github_stars) == ("https://github.com/tooltime/tooltime", 1200)
    assert tool.project_page == "https://tooltime.github.io"
    assert tool.organization is None  # the submitter is not the organisation
    assert tool.published == date(2025, 3, 9)  # no year: the latest Mar 9 up to the page date
    assert (muon.organization, muon.authors, muon.authors_count) == ("Moonlight Labs", (), None)
    assert (muon.upvotes, muon.comments, muon.published) == (0, None, date(2024, 11, 27))
    assert dump.evidence[0] == PAPER_LINKS and PAGE_CHROME in dump.evidence
    # The site's header links a paper too, and the script names another: neither is a card.
    assert {p.arxiv_id for p in dump.papers} == {"2503.06988", "2503.05871"}


def test_a_labelled_or_one_sentence_text_is_the_ai_summary() -> None:
    labelled = card(text=SUMMARY + " It is short. Two sentences.").replace(
        "<p class='text-sm'>", "<div>AI-generated summary</div><p class='text-sm'>"
    )
    dump = parse(page(labelled + card("2503.07002", "Seeing Through Glass", text=SUMMARY)))
    first, second = dump.papers
    assert first.ai_summary == first.abstract == SUMMARY + " It is short. Two sentences."
    assert second.ai_summary == second.abstract == SUMMARY


@pytest.mark.parametrize(
    "href",
    [
        "/papers/2503.06988",
        "https://huggingface.co/papers/2503.06988",
        "https://hf.co/papers/2503.06988v2",
    ],
)
def test_a_title_link_absolute_or_site_relative_gives_the_arxiv_id(href: str) -> None:
    [paper] = parse(page(card(href=href))).papers
    assert (paper.title, paper.arxiv_id) == (TITLE, "2503.06988")


def test_entities_in_titles_and_texts_are_decoded() -> None:
    text = page(
        "<article><h3><a href='/papers/2503.07520'>Q&amp;A over Scanned Archives: "
        "&lt;1% OCR &#8220;Errors&#8221;</a></h3>"
        "<p>Historical archives are mostly scanned images &amp; faded print, where OCR errors "
        "propagate into retrieval.</p><div>6 authors</div></article>"
    )
    [paper] = parse(text).papers
    assert paper.title == "Q&A over Scanned Archives: <1% OCR \u201cErrors\u201d"
    assert paper.key == paper_key(paper.title)
    assert "images & faded print" in paper.abstract


def test_the_trending_page_twice_over_gives_one_record_per_paper() -> None:
    path = FIXTURES / "trending_twice.html"
    received = datetime(2025, 10, 8, 16, 40, tzinfo=UTC)
    dump = parse(path.read_text("utf-8"), received=received, name=path.name)
    assert len(dump.papers) == 16
    assert any("16 duplicate entries merged" in w for w in dump.warnings)
    assert dump.page_date == received.date()
    first = dump.papers[0]
    assert first.title == "OpenHands-Lite: A 7B Coding Agent That Runs on a Laptop"
    # The compact card's "612" beside the stars' "4.8k" is the upvote count, not "6124.8k".
    assert (first.upvotes, first.github_stars, first.comments) == (612, 4800, 31)
    assert first.ai_summary and first.abstract == first.ai_summary
    assert all(p.ai_summary for p in dump.papers)
    assert sum(1 for p in dump.papers if p.github_stars) == 14


def test_a_search_page_highlights_are_part_of_the_titles() -> None:
    path = FIXTURES / "search_diffusion.html"
    dump = parse(path.read_text("utf-8"), name=path.name)
    titles = {p.title for p in dump.papers}
    assert "Consistency Distillation of Video Diffusion Models in Four Steps" in titles
    assert all(p.published and p.published.year >= 2023 for p in dump.papers)


def test_dom_papers_carry_the_line_of_their_title() -> None:
    text = page("\n".join(card(f"2503.0{n}000", f"Paper number {n}") for n in range(1, 4)))
    lines = text.split("\n")
    for paper in parse(text).papers:
        assert paper.title in html.unescape(lines[paper.line - 1])


# -- The page date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "before", "header", "expected"),
    [
        (
            "<link rel='canonical' href='https://huggingface.co/papers/date/2025-03-07'>",
            "",
            "",
            date(2025, 3, 7),
        ),
        (
            "<meta property='og:url' content='https://huggingface.co/papers?date=2025-03-06'>",
            "",
            "",
            date(2025, 3, 6),
        ),
        (
            "",
            "<!-- saved from url=(0048)https://huggingface.co/papers/date/2025-03-05 -->\n",
            "",
            date(2025, 3, 5),
        ),
        ("", "", "<h1>Daily Papers</h1><div>Mar 4</div>", date(2025, 3, 4)),
        ("", "", "<div>Dec 30</div>", date(2024, 12, 30)),  # the latest Dec 30 up to receipt
        (
            "<link rel='canonical' href='https://huggingface.co/papers/trending'>",
            "",
            "",
            RECEIVED.date(),
        ),
    ],
)
def test_the_page_date_comes_from_the_url_then_the_header_then_the_receipt(
    head: str, before: str, header: str, expected: date
) -> None:
    dump = parse(page(header + card(), head=head, before=before))
    assert dump.page_date == expected


def test_the_props_date_wins_over_the_url() -> None:
    props = {"dailyPapers": [{"paper": {"id": "2503.06988", "title": TITLE}}], "date": "2025-03-11"}
    body = f'<div data-props="{props_attribute(props)}"></div>'
    head = "<link rel='canonical' href='https://huggingface.co/papers/date/2025-03-01'>"
    assert parse(page(body, head=head)).page_date == date(2025, 3, 11)


# -- Not a dump ----------------------------------------------------------------------------


def test_a_docs_page_with_an_arxiv_citation_is_refused() -> None:
    docs = (
        "<!DOCTYPE html><html><head><title>Caching — fastpipe docs</title></head><body>"
        "<nav><a href='index.html'>Home</a></nav><main><article><h1>Caching</h1>"
        "<p>Outputs are cached by the hash of their inputs; see "
        "<a href='https://arxiv.org/abs/2301.01234'>the design paper</a> and its "
        "<a href='https://huggingface.co/papers/2301.01234'>discussion on Hugging Face</a>.</p>"
        "<h2>Further reading</h2><ul><li><a href='https://huggingface.co/papers/2301.04321'>"
        "Content-Addressed Pipelines at Scale</a></li></ul></article></main></body></html>"
    )
    with pytest.raises(DumpError, match=r"^docs\.html: not a dump: no paper card"):
        parse_dump(docs, name="docs.html", received_at=RECEIVED)


def test_the_blog_post_fixture_is_refused() -> None:
    path = FIXTURES.parent.parent / "not_dumps" / "blog_post.html"
    with pytest.raises(DumpError, match="not a dump"):
        parse_dump(path.read_text("utf-8"), name=path.name, received_at=RECEIVED)


# -- Generated cards -----------------------------------------------------------------------

_WORDS = st.from_regex(r"[A-Z][a-z]{1,9}", fullmatch=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.lists(_WORDS, min_size=2, max_size=10).map(" ".join),
            st.integers(0, 5000),
            st.integers(1, 60),
            st.sampled_from(["&", "<", '"', "'", ""]),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda item: item[0],
    )
)
def test_generated_cards_parse_back(cards: list[tuple[str, int, int, str]]) -> None:
    body = "".join(
        card(
            f"2502.{10000 + number}",
            f"{title} {mark} {number}".replace("  ", " "),
            upvotes=str(votes) if votes else "-",
            who=f"<span>{authors}<!-- --> authors</span>",
        )
        for number, (title, votes, authors, mark) in enumerate(cards)
    )
    dump = parse(page(body))
    assert [(p.upvotes, p.authors_count, p.arxiv_id) for p in dump.papers] == [
        (votes, authors, f"2502.{10000 + number}")
        for number, (_, votes, authors, _) in enumerate(cards)
    ]
    for paper, (title, _, _, mark) in zip(dump.papers, cards, strict=True):
        assert paper.title.startswith(title) and paper.abstract == ABSTRACT
        assert mark in paper.title
