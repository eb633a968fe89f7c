"""Dumps in the shapes people save: the daily papers API JSON, Markdown scrapes and text
exports with link URLs on their own lines. The shape is sniffed from the content, and the
same paper comes out as the same `Paper` (same key) whatever the shape."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.dumps import (
    API_JSON,
    LINKED_TEXT,
    MARKDOWN,
    PAGE_TEXT,
    Dump,
    Paper,
    paper_key,
    parse_dump,
    read_dump,
    sniff,
)
from newsletter.errors import DumpError
from newsletter.pipeline import ingest_file
from newsletter.store import Store

REPO = Path(__file__).resolve().parent.parent
SAMPLE_000 = REPO / "samples" / "dumps" / "000_12e940f9937f08e2.txt"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

LCM = "Large Concept Models: Language Modeling in a Sentence Representation Space"
LCM_ABSTRACT = (
    "LLMs have revolutionized the field of artificial intelligence and have emerged as the "
    "de-facto tool for many tasks. The current established technology of LLMs is to process "
    "input and generate output at the token level."
)
COMPLEXITY = "Investigating the Impact of Model Complexity in Large Language Models"
COMPLEXITY_ABSTRACT = (
    "Large Language Models (LLMs) based on the pre-trained fine-tuning paradigm have become "
    "pivotal in solving natural language processing tasks, consistently achieving "
    "state-of-the-art performance."
)
REGRESSION = (
    "Regression Transformer: Concurrent sequence regression and generation for molecular "
    "language modeling"
)
REGRESSION_ABSTRACT = (
    "Despite significant progress of generative models in the natural sciences, their "
    "controllability remains challenging."
)


def parse(text: str, *, name: str = "dump", received: datetime = RECEIVED) -> Dump:
    return parse_dump(text, name=name, received_at=received)


def wrap(text: str, width: int = 60) -> str:
    """Hard-wrap a text at `width` columns, as saved pages often are."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


# -- the daily papers API JSON -----------------------------------------------------------


def api_entry(
    arxiv_id: str,
    title: str,
    summary: str,
    *,
    upvotes: int,
    published: str,
    daily: str,
    authors: int,
    organization: dict[str, str] | None = None,
    newer_fields: bool = False,
) -> dict[str, object]:
    paper: dict[str, object] = {
        "id": arxiv_id,
        "authors": [
            {"_id": f"a{n}", "name": f"Author {n}", "hidden": False, "status": "claimed_verified"}
            for n in range(authors)
        ],
        "publishedAt": published,
        "submittedOnDailyAt": daily,
        "title": wrap(title, 50),
        "submittedOnDailyBy": {"_id": "u1", "user": "akhaliq", "fullname": "AK", "type": "user"},
        "summary": wrap(summary, 70),
        "upvotes": upvotes,
        "discussionId": "675a" + arxiv_id.replace(".", ""),
    }
    if organization is not None:
        paper["organization"] = organization
    if newer_fields:
        paper.update(
            ai_summary="A model that reasons over sentences rather than tokens.",
            ai_keywords=["concept", "sentence embedding", "SONAR"],
            githubRepo="https://github.com/facebookresearch/large_concept_model",
            githubStars=2100,
            projectPage=None,
        )
    return {
        "paper": paper,
        "publishedAt": published,
        "title": title,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
        "numComments": 2,
        "submittedBy": {"_id": "u1", "user": "akhaliq", "fullname": "AK"},
        "isAuthorParticipating": False,
        "mediaUrls": [],
    }


API_RESPONSE = [
    api_entry(
        "2412.08821",
        LCM,
        LCM_ABSTRACT,
        upvotes=21,
        published="2024-12-11T18:20:00.000Z",
        daily="2024-12-12T01:43:54.164Z",
        authors=21,
        organization={"_id": "o1", "name": "facebook", "fullname": "AI at Meta", "avatar": "x"},
        newer_fields=True,
    ),
    api_entry(
        "2410.00699",
        COMPLEXITY,
        COMPLEXITY_ABSTRACT,
        upvotes=0,
        published="2024-10-01T09:00:00.000Z",
        daily="2024-12-11T23:59:00.000Z",
        authors=3,
    ),
    api_entry(
        "2202.01338",
        REGRESSION,
        REGRESSION_ABSTRACT,
        upvotes=5,
        published="2022-02-01T12:00:00.000Z",
        daily="2024-12-12T03:10:00.000Z",
        authors=2,
    ),
]


def test_api_json_gives_the_papers_with_their_arxiv_ids() -> None:
    text = json.dumps(API_RESPONSE, indent=2)
    assert sniff(text) == API_JSON
    dump = parse(text, name="daily.json")
    assert dump.shape == API_JSON
    assert dump.page_date == date(2024, 12, 12)  # the newest day on Daily Papers
    assert dump.warnings == []
    lcm, complexity, regression = dump.papers
    assert lcm == Paper(
        key=paper_key(LCM),
        title=LCM,  # the hard line breaks of the API are folded
        abstract=LCM_ABSTRACT,
        authors_count=lcm.authors_count,
        organization="AI at Meta",
        published=date(2024, 12, 11),
        upvotes=21,
        arxiv_id="2412.08821",
        line=lcm.line,
        authors=lcm.authors,
        comments=2,
        github_repo="https://github.com/facebookresearch/large_concept_model",
        github_stars=2100,
        ai_summary="A model that reasons over sentences rather than tokens.",
        ai_keywords=("concept", "sentence embedding", "SONAR"),
    )
    # The names the API gives are kept, in its order.
    assert lcm.authors and lcm.authors[0] == "Author 0" and lcm.authors_count == len(lcm.authors)
    assert text.split("\n")[lcm.line - 1].strip() == '"id": "2412.08821",'
    assert (complexity.title, complexity.abstract) == (COMPLEXITY, COMPLEXITY_ABSTRACT)
    assert (complexity.authors_count, complexity.organization, complexity.upvotes) == (3, None, 0)
    assert (regression.arxiv_id, regression.published, regression.upvotes) == (
        "2202.01338",
        date(2022, 2, 1),
        5,
    )


def test_api_json_tolerates_missing_fields_and_other_wrappings() -> None:
    entries: list[object] = [
        {"paper": {"id": "2501.00001", "title": "Only\na title"}},
        {"paper": {"summary": "An entry with no title at all is not a paper."}},
        "not an object",
        {"title": "A Bare Paper Object", "summary": "Saved from another endpoint.", "upvotes": 3},
        {"paper": {"id": "not-arxiv", "title": "Odd Id", "summary": "s", "publishedAt": "bad"}},
    ]
    dump = parse(json.dumps({"papers": entries}), name="odd.json")
    assert [p.title for p in dump.papers] == ["Only a title", "A Bare Paper Object", "Odd Id"]
    only, bare, odd = dump.papers
    assert (only.abstract, only.authors_count, only.published, only.upvotes) == ("", None, None, 0)
    assert only.arxiv_id == "2501.00001"
    assert bare.upvotes == 3 and bare.arxiv_id is None
    assert odd.arxiv_id is None and odd.published is None
    assert dump.page_date == RECEIVED.date()  # no date anywhere: the day it was received
    assert len(dump.warnings) == 3
    assert any("has no title" in w for w in dump.warnings)
    assert any("not an object" in w for w in dump.warnings)
    assert any("no summary" in w and "Only a title" in w for w in dump.warnings)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", r"^x\.json:1: not a dump: the list is empty; expected the JSON"),
        ('[{"paper": {"summary": "no title"}}]', r"no entry has a title"),
        ('{"error": "Invalid date"}', r"the JSON holds an object, not a list of papers"),
        ("[1, 2, 3]", r"no entry has a title"),
        ('[\n  {"paper": {"title": "Cut off"', r"^x\.json:2: not a dump: the JSON is malformed"),
    ],
)
def test_json_that_is_not_the_api_is_refused(text: str, match: str) -> None:
    with pytest.raises(DumpError, match=match):
        parse(text, name="x.json")


# -- Markdown scrapes --------------------------------------------------------------------

# A reader service's output: its header, navigation, setext heading, thumbnails, links
# everywhere, counts as links, an organisation with its avatar, a footer.
READER_MARKDOWN = f"""Title: Daily Papers - Hugging Face

URL Source: https://huggingface.co/papers

Markdown Content:
[![Image 1: Hugging Face's logo](https://huggingface.co/front/assets/huggingface_logo-noborder.svg) Hugging Face](https://huggingface.co/)

*   [Models](https://huggingface.co/models)
*   [Datasets](https://huggingface.co/datasets)
*   [Docs](https://huggingface.co/docs)
*   [Log In](https://huggingface.co/login)

Daily Papers
============

by [AK](https://huggingface.co/akhaliq) and the research community

Dec 11

[Subscribe](https://huggingface.co/subscribe)

[Daily](https://huggingface.co/papers) [Weekly](https://huggingface.co/papers/week) [Monthly](https://huggingface.co/papers/month)

[![Image 2](https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2412.08821.png)](https://huggingface.co/papers/2412.08821)

### [{LCM}](https://huggingface.co/papers/2412.08821)

[{LCM_ABSTRACT}](https://huggingface.co/papers/2412.08821)

[21](https://huggingface.co/login?next=%2Fpapers%2F2412.08821)

*   [![Image 3: AI at Meta](https://cdn-avatars.huggingface.co/v1/meta.png) AI at Meta](https://huggingface.co/facebook)

·

Dec 11, 2024

[2](https://huggingface.co/papers/2412.08821#community)

### [{COMPLEXITY}](https://huggingface.co/papers/2410.00699)

{wrap(COMPLEXITY_ABSTRACT).replace(chr(10), chr(92) + chr(10))}

[-](https://huggingface.co/login?next=%2Fpapers%2F2410.00699)

* 3 authors

·

Oct 1

### [{REGRESSION}](https://huggingface.co/papers/2202.01338)

{wrap(REGRESSION_ABSTRACT)}

5 · 2 authors · Feb 1, 2022

[System theme](https://huggingface.co/)

Company

[TOS](https://huggingface.co/terms-of-service)

[Privacy](https://huggingface.co/privacy)

Website

[Models](https://huggingface.co/models)
"""

# A crawler's output: YAML front matter with the page URL, bold titles instead of
# headings, an abstract whose link text wraps over lines, metadata on one line.
CRAWLER_MARKDOWN = f"""---
title: Daily Papers - Hugging Face
url: https://huggingface.co/papers/date/2024-12-11
sourceURL: https://huggingface.co/papers/date/2024-12-11
---

- [Hugging Face](https://huggingface.co/)
- [Papers](https://huggingface.co/papers)

# Daily Papers

**[{LCM}](https://huggingface.co/papers/2412.08821)**

[{wrap(LCM_ABSTRACT)}](https://huggingface.co/papers/2412.08821)

21 · AI at Meta · Dec 11, 2024

**[{COMPLEXITY}](https://huggingface.co/papers/2410.00699)**

{COMPLEXITY_ABSTRACT}

\\- · 3 authors · Oct 1

---

© Hugging Face · [TOS](https://huggingface.co/terms-of-service) · [Privacy](https://huggingface.co/privacy)
"""


def test_markdown_from_a_reader_service() -> None:
    assert sniff(READER_MARKDOWN) == MARKDOWN
    dump = parse(READER_MARKDOWN, name="page.md")
    assert dump.shape == MARKDOWN
    assert dump.page_date == date(2025, 12, 11)  # "Dec 11" on or before the received day
    assert dump.warnings == []
    assert [p.title for p in dump.papers] == [LCM, COMPLEXITY, REGRESSION]
    lcm, complexity, regression = dump.papers
    assert lcm == Paper(
        key=paper_key(LCM),
        title=LCM,
        abstract=LCM_ABSTRACT,
        authors_count=None,
        organization="AI at Meta",
        published=date(2024, 12, 11),
        upvotes=21,
        arxiv_id="2412.08821",
        comments=2,  # the `#community` link's count
        line=READER_MARKDOWN.split("\n").index(
            f"### [{LCM}](https://huggingface.co/papers/2412.08821)"
        )
        + 1,
    )
    assert complexity.abstract == COMPLEXITY_ABSTRACT  # `\` line breaks folded
    assert (complexity.upvotes, complexity.authors_count, complexity.published) == (
        0,
        3,
        date(2025, 10, 1),  # no year: on or before the page date
    )
    assert (regression.upvotes, regression.authors_count, regression.arxiv_id) == (
        5,
        2,
        "2202.01338",
    )
    assert regression.abstract == REGRESSION_ABSTRACT  # the footer is not part of it


def test_markdown_from_a_crawler_with_front_matter() -> None:
    assert sniff(CRAWLER_MARKDOWN) == MARKDOWN
    dump = parse(CRAWLER_MARKDOWN, name="crawl.md")
    assert dump.page_date == date(2024, 12, 11)  # from the page URL in the front matter
    assert dump.warnings == []
    lcm, complexity = dump.papers
    assert (lcm.title, lcm.abstract, lcm.arxiv_id) == (LCM, LCM_ABSTRACT, "2412.08821")
    assert (lcm.upvotes, lcm.organization, lcm.published) == (21, "AI at Meta", date(2024, 12, 11))
    assert (complexity.abstract, complexity.upvotes, complexity.authors_count) == (
        COMPLEXITY_ABSTRACT,
        0,
        3,
    )
    assert complexity.published == date(2024, 10, 1)


def test_markdown_entries_with_missing_parts() -> None:
    text = f"""# Daily Papers

Dec 11

### [{LCM}](https://huggingface.co/papers/2412.08821)

[12](https://huggingface.co/login)

* 21 authors

### Wrapped [Title Across
Lines](https://huggingface.co/papers/2501.00002)

{REGRESSION_ABSTRACT}

### An Unlinked Heading With An Abstract

{COMPLEXITY_ABSTRACT}

* 3 authors
·
Oct 1, 2024

### Section Heading Without Anything

## [Daily](https://huggingface.co/papers)
"""
    dump = parse(text, name="gaps.md")
    assert [p.title for p in dump.papers] == [
        LCM,
        "Wrapped Title Across Lines",
        "An Unlinked Heading With An Abstract",
    ]
    lcm, wrapped, unlinked = dump.papers
    assert (lcm.abstract, lcm.upvotes, lcm.authors_count, lcm.published) == ("", 12, 21, None)
    assert (wrapped.arxiv_id, wrapped.abstract, wrapped.upvotes) == (
        "2501.00002",
        REGRESSION_ABSTRACT,
        0,
    )
    assert (unlinked.arxiv_id, unlinked.authors_count, unlinked.published) == (
        None,
        3,
        date(2024, 10, 1),
    )
    [warning] = dump.warnings
    line = text.split("\n").index("### Section Heading Without Anything") + 1
    assert warning == (
        f"gaps.md:{line}: skipped entry 'Section Heading Without Anything': title with no abstract"
    )


@pytest.mark.parametrize(
    "text",
    [
        # Chrome only: navigation, the period tabs, a footer.
        "# Daily Papers\n\n[Subscribe](https://huggingface.co/subscribe)\n\n"
        "[Daily](https://huggingface.co/papers) [Weekly](https://huggingface.co/papers/week)"
        " [Monthly](https://huggingface.co/papers/month)\n\n[TOS](https://huggingface.co/terms)\n",
        "---\ntitle: Daily Papers\n---\n\nNothing was captured.\n",
        "## Daily\n\n## Weekly\n\n## Monthly\n",
    ],
    ids=["links", "front-matter", "headings"],
)
def test_markdown_with_chrome_only_is_not_a_dump(text: str) -> None:
    assert sniff(text) == MARKDOWN
    with pytest.raises(
        DumpError, match=r"^chrome\.md: not a dump: no paper entry.*expected a Markdown"
    ):
        parse(text, name="chrome.md")


# -- text exports with each link's URL on its own line -----------------------------------


def linked_export(page_text: str, titles: set[str]) -> tuple[str, dict[str, str]]:
    """The page text as an export that puts each link's URL on the line after its text:
    chrome links, every title and abstract (to the paper page), the date's upvote button."""
    ids: dict[str, str] = {}
    out: list[str] = []
    for line in page_text.split("\n"):
        out.append(line)
        if line in ("Subscribe", "Daily Papers"):
            out.append("https://huggingface.co/" + line.lower().replace(" ", ""))
        elif line in titles:
            ids[line] = f"24{len(ids):02d}.{10000 + len(ids)}"
            out.append(f"https://huggingface.co/papers/{ids[line]}")
        elif len(line) > 300:
            out.append(f"<https://huggingface.co/papers/{list(ids.values())[-1]}>")
        elif re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}(, \d{4})?( \d+)?", line):
            out.append("https://huggingface.co/login?next=%2Fpapers")
    return "\n".join(out), ids


def test_linked_text_export_gives_the_same_papers_with_ids() -> None:
    page = SAMPLE_000.read_text(encoding="utf-8")
    plain = parse(page, name="000.txt")
    text, ids = linked_export(page, {p.title for p in plain.papers})
    assert sniff(text) == LINKED_TEXT
    linked = parse(text, name="000-links.txt")
    assert linked.shape == LINKED_TEXT and plain.shape == PAGE_TEXT
    assert linked.page_date == plain.page_date
    assert linked.warnings == []
    assert len(linked.papers) == len(plain.papers) == 23
    lines = text.split("\n")
    for paper, before in zip(linked.papers, plain.papers, strict=True):
        assert paper.arxiv_id == ids[paper.title]
        assert lines[paper.line - 1] == paper.title
        assert (paper.key, paper.abstract, paper.authors_count, paper.published, paper.upvotes) == (
            before.key,
            before.abstract,
            before.authors_count,
            before.published,
            before.upvotes,
        )


def test_a_url_alone_in_a_plain_page_text_stays_text() -> None:
    page = SAMPLE_000.read_text(encoding="utf-8").replace(
        "Through extensive experimentation,", "See\nhttps://github.com/example/code\nThrough"
    )
    assert sniff(page) == PAGE_TEXT
    dump = parse(page)
    assert any("https://github.com/example/code" in p.abstract for p in dump.papers)


# -- the shape comes from the content; one paper whatever the shape ----------------------


def test_shape_is_sniffed_from_content_not_the_file_name(tmp_path: Path) -> None:
    stamp = RECEIVED.timestamp()
    for name, text, shape in [
        ("papers.txt", json.dumps(API_RESPONSE), API_JSON),
        ("papers.json", READER_MARKDOWN, MARKDOWN),
        ("papers.md", SAMPLE_000.read_text(encoding="utf-8"), PAGE_TEXT),
    ]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        os.utime(path, (stamp, stamp))
        assert read_dump(path).shape == shape


def test_the_same_paper_from_every_shape_is_one_paper(tmp_path: Path) -> None:
    captures = {
        "page.txt": SAMPLE_000.read_text(encoding="utf-8"),
        "api.json": json.dumps(API_RESPONSE),
        "reader.md": READER_MARKDOWN,
        "crawler.md": CRAWLER_MARKDOWN,
    }
    keys = [{p.key for p in parse(text).papers} for text in captures.values()]
    assert paper_key(LCM) in set.intersection(*keys)
    with Store(tmp_path / "state.db") as store:
        for name, text in captures.items():
            path = tmp_path / name
            path.write_text(text, encoding="utf-8")
            ingest_file(store, path)
        [paper] = store.papers_by_key([paper_key(LCM)]).values()
        assert paper.arxiv_id == "2412.08821"  # the page text has none; a later capture had it
        assert store.paper_count() == 23  # every paper of the other captures is on the page


# -- Markdown variations, generated ------------------------------------------------------

_WORDS = st.from_regex(r"[A-Z][a-z]{1,9}", fullmatch=True)


@dataclass(frozen=True)
class Card:
    title: str
    abstract: str
    arxiv_id: str
    upvotes: int
    who: int | str
    published: date


@st.composite
def cards(draw: st.DrawFn) -> list[Card]:
    out: list[Card] = []
    for number in range(draw(st.integers(1, 5))):
        title = " ".join(draw(st.lists(_WORDS, min_size=2, max_size=12)))
        abstract = " ".join(draw(st.lists(_WORDS, min_size=12, max_size=60))) + "."
        who = draw(
            st.one_of(st.integers(1, 40), st.sampled_from(["AI at Meta", "Google", "NVIDIA"]))
        )
        out.append(
            Card(
                title=f"{title} {number}",
                abstract=abstract,
                arxiv_id=f"24{number:02d}.{draw(st.integers(10000, 99999))}",
                upvotes=draw(st.integers(0, 2000)),
                who=who,
                published=draw(st.dates(date(2020, 1, 1), date(2024, 12, 11))),
            )
        )
    return out


def render_card(card: Card, draw: st.DrawFn) -> str:
    url = f"https://huggingface.co/papers/{card.arxiv_id}"
    heading = draw(st.sampled_from(["### [{t}]({u})", "## [{t}]({u})", "**[{t}]({u})**"]))
    parts = [heading.format(t=card.title, u=url)]
    abstract = card.abstract
    style = draw(st.sampled_from(["plain", "wrapped", "backslash", "link"]))
    if style == "wrapped":
        abstract = wrap(abstract, 40)
    elif style == "backslash":
        abstract = wrap(abstract, 40).replace("\n", "\\\n")
    elif style == "link":
        abstract = f"[{wrap(abstract, 50)}]({url})"
    parts.append(abstract)
    shown = "-" if card.upvotes == 0 else str(card.upvotes)
    if draw(st.booleans()):
        shown = f"[{shown}](https://huggingface.co/login?next=%2Fpapers%2F{card.arxiv_id})"
    who = f"{card.who} authors" if isinstance(card.who, int) else card.who
    when = f"{card.published:%b} {card.published.day}, {card.published.year}"
    if draw(st.booleans()):
        parts += [shown, f"* {who}", "·", when]
    else:
        parts.append(f"{shown} · {who} · {when}")
    if draw(st.booleans()):
        parts.append(f"[{draw(st.integers(1, 30))}]({url}#community)")
    gap = draw(st.sampled_from(["\n\n", "\n\n\n"]))
    return gap.join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), cards())
def test_markdown_cards_parse_back(data: st.DataObject, generated: list[Card]) -> None:
    draw = data.draw
    chrome = "# Daily Papers\n\n[Subscribe](https://huggingface.co/subscribe)\n\nDec 11"
    footer = "[TOS](https://huggingface.co/terms-of-service)\n\nCompany"
    text = "\n\n".join([chrome, *(render_card(c, draw) for c in generated), footer])
    dump = parse(text, received=datetime(2024, 12, 12, tzinfo=UTC))
    assert dump.page_date == date(2024, 12, 11)
    assert dump.warnings == []
    assert len(dump.papers) == len(generated)
    for paper, card in zip(dump.papers, generated, strict=True):
        assert (paper.title, paper.abstract, paper.arxiv_id) == (
            card.title,
            " ".join(card.abstract.split()),
            card.arxiv_id,
        )
        assert (paper.upvotes, paper.published) == (card.upvotes, card.published)
        if isinstance(card.who, int):
            assert (paper.authors_count, paper.organization) == (card.who, None)
        else:
            assert (paper.authors_count, paper.organization) == (None, card.who)
