"""Text-browser dumps (lynx / w3m `-dump`, reference-link exports): numbered links, link
texts and headings wrapped over lines, reference lists cut off, counts, the page date,
and other sites' dumps refused. Fixture files are checked in test_dump_fixtures.py."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.dumps import API_JSON, TEXT_BROWSER, Dump, parse_dump, sniff
from newsletter.errors import DumpError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
HF = "https://huggingface.co"
ABSTRACT = (
    "We study what the routers of sparse mixture-of-experts language models learn during "
    "pre-training, and find that routing follows token frequency far more than topic."
)
CHROME = (
    "   [90]Hugging Face\n     * [91]Models\n     * [92]Datasets\n\n"
    "   Get trending papers in your email inbox!\n\n   byAK and the research community\n\n"
)


def parse(text: str, received: datetime = RECEIVED) -> Dump:
    return parse_dump(text, name="dump.txt", received_at=received)


def indented(text: str, width: int = 77) -> str:
    return "\n".join(textwrap.wrap(text, width, initial_indent="   ", subsequent_indent="   "))


def lynx_card(
    first: int, arxiv_id: str, title: str, *, upvotes: int = 12, comments: int = 3
) -> str:
    """One card of the day page as lynx writes it, its links numbered from `first`."""
    return (
        f"   [{first}][thumbnail]\n\n   [{first + 1}]- {upvotes}\n\n"
        + "\n".join(textwrap.wrap(f"[{first + 2}]{title}", 74))
        + f"\n\n{indented(ABSTRACT)}\n\n"
        f"   Submitted by [{first + 3}]akhaliq\n     * 7 authors\n   ·\n   May 28\n"
        f"   [{first + 4}]{comments}\n\n"
    )


def lynx_references(first: int, arxiv_id: str) -> list[str]:
    page = f"{HF}/papers/{arxiv_id}"
    return [
        f"{first:4d}. {page}",
        f"{first + 1:4d}. {HF}/login?next=%2Fpapers%2F{arxiv_id}",
        f"{first + 2:4d}. {page}",
        f"{first + 3:4d}. {HF}/akhaliq",
        f"{first + 4:4d}. {page}#community",
    ]


def lynx_page(titles: list[str], *, cut_after: int | None = None) -> str:
    """A lynx dump of a day page with these papers; its reference list cut after
    `cut_after` lines when given."""
    cards: list[str] = []
    references = [f"{1:4d}. {HF}/papers/date/2025-05-29", f"{2:4d}. {HF}/papers/date/2025-06-02"]
    for index, title in enumerate(titles):
        arxiv_id = f"2505.{20000 + index}"
        cards.append(lynx_card(3 + 5 * index, arxiv_id, title))
        references += lynx_references(3 + 5 * index, arxiv_id)
    if cut_after is not None:
        references = references[:cut_after]
    header = f"{CHROME}   [1]Previous May 30 [2]Next\n\n"
    return header + "".join(cards) + "References\n\n" + "\n".join(references) + "\n"


# -- lynx: marks before the link text ------------------------------------------------


def test_lynx_day_page_gives_titles_abstracts_counts_and_ids() -> None:
    dump = parse(lynx_page(["Sparse Routers Learn Token Frequency", "Long Video World Models"]))
    assert dump.shape == TEXT_BROWSER
    assert [paper.title for paper in dump.papers] == [
        "Sparse Routers Learn Token Frequency",
        "Long Video World Models",
    ]
    first = dump.papers[0]
    assert first.abstract == ABSTRACT
    assert (first.upvotes, first.comments, first.authors_count) == (12, 3, 7)
    assert first.published == date(2025, 5, 28)
    assert first.arxiv_id == "2505.20000"
    assert dump.page_date == date(2025, 5, 30)


def test_lynx_title_wrapped_onto_a_second_flush_left_line_is_one_title() -> None:
    title = (
        "When Do Reasoning Traces Help? A Controlled Study of Chain-of-Thought "
        "Supervision in Small Language Models"
    )
    page = lynx_page([title])
    assert "Chain-of-Thought\nSupervision" in page  # lynx wrapped it
    assert [paper.title for paper in parse(page).papers] == [title]


def test_a_title_that_fills_its_line_does_not_swallow_the_summary_under_it() -> None:
    text = (
        CHROME
        + "   [1]Quantifying Memorisation in Code Models with Canary Repositories Today\n"
        + "   Planted canary repositories measure how much code models memorise, and\n"
        + "   show that file-level deduplication misses most of it.\n\n"
        + "References\n\n   1. https://huggingface.co/papers/2505.16021\n"
    )
    paper = parse(text).papers[0]
    assert paper.title == "Quantifying Memorisation in Code Models with Canary Repositories Today"
    assert paper.abstract.startswith("Planted canary repositories")


# -- reference-link exports: "[Title][12]" ----------------------------------------------

EXPORT = f"""# Daily Papers

### by [AK][1] and the research community

[Previous][2] Mar 11 [Next][3]

### [Scaling Laws for Something Very
   Long][12]

{ABSTRACT}

36

  * 6 authors
·
Mar 10

[3][13]

### [Very Long Title That Goes On and On About Mixture-of-Experts and
### Continues Here][14]

{ABSTRACT}

12

  * 4 authors
·
Mar 9

[0][15]

   [1]: {HF}/akhaliq
   [2]: {HF}/papers/date/2025-03-10
   [3]: {HF}/papers/date/2025-03-12
   [12]: {HF}/papers/2503.01234
   [13]: {HF}/papers/2503.01234#community
"""


def test_wrapped_link_texts_and_continued_headings_are_joined() -> None:
    dump = parse(EXPORT)
    assert [paper.title for paper in dump.papers] == [
        "Scaling Laws for Something Very Long",
        "Very Long Title That Goes On and On About Mixture-of-Experts and Continues Here",
    ]
    assert dump.page_date == date(2025, 3, 11)


def test_reference_list_cut_off_papers_still_come_out_ids_only_where_listed() -> None:
    dump = parse(EXPORT)
    first, second = dump.papers
    assert (first.arxiv_id, first.comments, first.upvotes) == ("2503.01234", 3, 36)
    # [14] and [15] are past the cut: the title comes from the heading, the counts from
    # the lines, but no id is guessed.
    assert (second.arxiv_id, second.comments, second.upvotes) == (None, 0, 12)
    assert second.authors_count == 4 and second.published == date(2025, 3, 9)


def test_every_reference_cut_off_still_gives_the_papers() -> None:
    page = lynx_page(["Sparse Routers Learn Token Frequency", "Long Video World Models"])
    dump = parse(page.split("References")[0])
    assert [paper.title for paper in dump.papers] == [
        "Sparse Routers Learn Token Frequency",
        "Long Video World Models",
    ]
    assert [paper.arxiv_id for paper in dump.papers] == [None, None]
    assert [(paper.upvotes, paper.comments) for paper in dump.papers] == [(12, 3), (12, 3)]


def test_the_last_reference_cut_mid_url_is_not_trusted() -> None:
    page = lynx_page(["Sparse Routers Learn Token Frequency"])
    cut = page.rstrip("\n").rsplit("\n", 3)[0] + "\n   5. https://huggingface.co/papers/2505.2"
    dump = parse(cut)  # "2505.2" was "2505.20000": no id from a cut URL
    assert dump.papers[0].arxiv_id is None
    assert dump.papers[0].title == "Sparse Routers Learn Token Frequency"


# -- counts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upvote_line", "comment_line", "upvotes", "comments"),
    [
        ("[2]- 12", "[5]3", 12, 3),
        ("[ ] 12", "[5]3 comments", 12, 3),
        ("[2]▲ 1.2k", "[5]0", 1200, 0),
    ],
)
def test_upvote_and_comment_counts(
    upvote_line: str, comment_line: str, upvotes: int, comments: int
) -> None:
    text = (
        f"{CHROME}   [1][IMG]\n\n   {upvote_line}\n\n[3]Sparse Routers Learn Token Frequency\n\n"
        f"{indented(ABSTRACT)}\n\n     * 7 authors\n   ·\n   May 28\n   {comment_line}\n\n"
        f"References\n\n   1. {HF}/papers/2505.20411\n   2. {HF}/login\n"
        f"   3. {HF}/papers/2505.20411\n   5. {HF}/papers/2505.20411#community\n"
    )
    paper = parse(text).papers[0]
    assert (paper.upvotes, paper.comments) == (upvotes, comments)


def test_the_community_link_gives_the_id_when_the_titles_reference_is_missing() -> None:
    text = lynx_page(["Sparse Routers Learn Token Frequency"]).replace(
        f"   5. {HF}/papers/2505.20000\n", ""
    )
    paper = parse(text).papers[0]
    assert paper.arxiv_id == "2505.20000"  # from ".../papers/2505.20000#community"
    assert paper.comments == 3


def test_stars_summary_and_the_same_paper_twice() -> None:
    compact = (
        "   [1]Tokenizer-Free Speech Language Models\n"
        "   A flow-matching head predicts continuous speech latents.\n   [2]★ 1.41k\n\n"
    )
    full = (
        f"   [3]- 55\n\n[4]Tokenizer-Free Speech Language Models\n\n     * 8 authors\n"
        f"   · Published on May 28\n\n   AI-generated summary\n"
        f"   A flow-matching head predicts continuous speech latents.\n\n{indented(ABSTRACT)}\n\n"
        f"   [5]GitHub ★ 1.41k    [6]arXiv Page\n\n"
    )
    references = (
        f"   1. {HF}/papers/2505.21390\n   2. https://github.com/flow/tf-slm\n"
        f"   3. {HF}/login\n   4. {HF}/papers/2505.21390\n"
        f"   5. https://github.com/flow/tf-slm\n   6. https://arxiv.org/abs/2505.21390\n"
    )
    dump = parse(
        "                          Trending Papers\n\n"
        + compact
        + full
        + "References\n\n"
        + references
    )
    assert len(dump.papers) == 1
    paper = dump.papers[0]
    assert paper.abstract == ABSTRACT
    assert paper.ai_summary == "A flow-matching head predicts continuous speech latents."
    assert (paper.github_stars, paper.github_repo) == (1410, "https://github.com/flow/tf-slm")
    assert (paper.upvotes, paper.authors_count, paper.arxiv_id) == (55, 8, "2505.21390")
    assert dump.page_date == RECEIVED.date()  # the Trending page has no date
    assert any("duplicate" in warning for warning in dump.warnings)


# -- wrapped text ------------------------------------------------------------------------


def test_wrapped_abstract_lines_are_joined_and_hyphens_kept() -> None:
    abstract = (
        "   A state-of-\n   the-art router for high-\n   and low-resource languages, with "
        "compu\u00ad\n   tation to spare.\n"
    )
    text = (
        f"{CHROME}[1]Sparse Routers Learn Token Frequency\n\n{abstract}\n"
        f"     * 7 authors\n   ·\n   May 28\n\nReferences\n\n   1. {HF}/papers/2505.20411\n"
    )
    assert parse(text).papers[0].abstract == (
        "A state-of-the-art router for high- and low-resource languages, with computation to spare."
    )


# -- the page date ---------------------------------------------------------------------------


def test_page_date_from_the_page_link_not_from_previous_and_next() -> None:
    text = lynx_page(["Sparse Routers Learn Token Frequency"]).replace(
        "   [1]Previous May 30 [2]Next", "   [1]Previous [2]Next [99]Daily"
    )
    text += f"  99. {HF}/papers/date/2025-05-30\n"
    assert parse(text).page_date == date(2025, 5, 30)


def test_header_date_takes_its_year_from_previous_and_next() -> None:
    page = lynx_page(["Sparse Routers Learn Token Frequency"])
    received_years_later = datetime(2027, 1, 5, tzinfo=UTC)
    assert parse(page, received_years_later).page_date == date(2025, 5, 30)


# -- not a dump ----------------------------------------------------------------------------


def test_a_lynx_dump_of_a_news_page_is_refused() -> None:
    path = FIXTURES / "not_dumps" / "lynx_news_page_cut_off.txt"
    text = path.read_text("utf-8")
    assert sniff(text) == TEXT_BROWSER
    with pytest.raises(DumpError, match=r"^news\.txt: not a dump: read as text-browser dump"):
        parse_dump(text, name="news.txt", received_at=RECEIVED)


def test_numbered_links_with_no_paper_title_are_refused() -> None:
    text = (
        "   [1]Home [2]About\n\n   Some words about a site that is not Hugging Face at all,\n"
        "   with [3]a link and [4]another.\n\nReferences\n\n   1. https://example.org/\n"
        "   2. https://example.org/about\n   3. https://example.org/a\n   4. https://example.org/b\n"
    )
    with pytest.raises(DumpError, match="no paper entry found among 4 numbered links"):
        parse(text)


def test_a_dump_starting_with_a_link_mark_is_not_taken_for_json() -> None:
    lynx = "[1]Hugging Face's logo Hugging Face\n[2]Models\n[3]Datasets\n\nReferences\n"
    assert sniff(lynx + "\n   1. https://huggingface.co/\n") == TEXT_BROWSER
    assert sniff("[1, 2, 3]") == API_JSON
    assert sniff("[1]\n") == API_JSON


# -- any titles, any width -----------------------------------------------------------------

_WORDS = st.sampled_from(
    "Sparse Routers Learn Token Frequency Video World Models with Compressed Memory "
    "Diffusion Policies Meet Test-Time Search for Robot Manipulation Scaling Laws of "
    "Pre-Training Data Filtering Vision-Language Agents That Ask When Self-Correcting "
    "Retrieval-Augmented Generation Verifier Feedback Long-Context".split()
)
_TITLES = st.lists(_WORDS, min_size=2, max_size=22).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    titles=st.lists(_TITLES, min_size=1, max_size=4, unique_by=lambda t: t.casefold()),
    width=st.integers(min_value=50, max_value=110),
    style=st.sampled_from(["lynx", "w3m", "reference links"]),
)
def test_rendered_titles_parse_back_exactly(titles: list[str], width: int, style: str) -> None:
    """lynx: titles flush left, text indented; w3m: nothing indented; exporters:
    `### [Title][n]` headings wrapped with `### ` on every line."""
    cards: list[str] = []
    references: list[str] = []
    for index, title in enumerate(titles, start=1):
        url = f"{HF}/papers/2505.{10000 + index}"
        if style == "reference links":
            heading = textwrap.wrap(f"[{title}][{index}]", width - 4)
            cards.append("\n".join(f"### {line}" for line in heading))
            references.append(f"   [{index}]: {url}")
        else:
            cards.append("\n".join(textwrap.wrap(f"[{index}]{title}", width)))
            references.append(f"[{index}] {url}" if style == "w3m" else f"{index:4d}. {url}")
        text = indented(ABSTRACT, width) + "\n\n     * 3 authors\n   ·\n   May 28"
        cards.append(text if style != "w3m" else "\n".join(textwrap.wrap(ABSTRACT, width)))
    text = CHROME + "\n\n".join(cards) + "\n\nReferences\n\n" + "\n".join(references) + "\n"
    dump = parse(text)
    assert [paper.title for paper in dump.papers] == titles
    assert [paper.abstract for paper in dump.papers] == [ABSTRACT] * len(titles)
    assert [paper.arxiv_id for paper in dump.papers] == [
        f"2505.{10000 + index}" for index in range(1, len(titles) + 1)
    ]
