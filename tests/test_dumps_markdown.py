"""The Markdown reader (`newsletter/dumps/markdown.py`, on markdown-it-py tokens): link
boundaries separate counts from dates, titles and abstracts come out clean, counts go to
the right paper whether the page puts them before or after the title, Trending pages'
second listings merge into one record, and long lines stay cheap."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.dumps import HTML, MARKDOWN, Dump, parse_dump, sniff
from newsletter.dumps.model import METADATA_LINES, PAGE_CHROME, PAPER_LINKS
from newsletter.errors import DumpError

RECEIVED = datetime(2025, 6, 4, 8, 0, tzinfo=UTC)
HF = "https://huggingface.co"
ABSTRACT = (
    "We study how models fail on long inputs and propose a remedy that keeps accuracy while "
    "cutting cost by half on four benchmarks."
)


def parse(text: str, *, name: str = "capture.md", received: datetime = RECEIVED) -> Dump:
    return parse_dump(text, name=name, received_at=received)


def card(arxiv_id: str, title: str, *, upvotes: str, when: str, comments: int | None) -> str:
    """A card as a reader service writes today's page: counts before the title."""
    community = f"[{comments}]({HF}/papers/{arxiv_id}#community)" if comments else ""
    return f"""[![Image](https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png)]({HF}/papers/{arxiv_id})

[![Image](https://cdn-avatars.huggingface.co/u.png) Submitted by taesiri]({HF}/taesiri)

[{upvotes}]({HF}/login?next=%2Fpapers%2F{arxiv_id})

### [{title}]({HF}/papers/{arxiv_id})

{ABSTRACT}

*   7 authors

·

{when}{community}
"""


def test_a_link_right_after_a_date_is_the_comment_count_not_part_of_the_date() -> None:
    text = "\n".join(
        [
            "Title: Daily Papers - Hugging Face\n\nURL Source: "
            f"{HF}/papers?date=2025-05-30\n\nMarkdown Content:\n# Daily Papers\n",
            card("2505.00001", "First Paper Title", upvotes="31", when="May 29", comments=6),
            card("2505.00002", "Second Paper Title", upvotes="-", when="Sep 9", comments=9),
            card("2505.00003", "Third Paper Title", upvotes="12", when="May 2", comments=None),
        ]
    )
    dump = parse(text)
    assert dump.page_date == date(2025, 5, 30)  # `?date=` in the reader header's URL
    first, second, third = dump.papers
    assert (first.published, first.comments, first.upvotes) == (date(2025, 5, 29), 6, 31)
    assert (second.published, second.comments, second.upvotes) == (date(2024, 9, 9), 9, 0)
    assert (third.published, third.comments, third.upvotes) == (date(2025, 5, 2), None, 12)
    assert all(p.abstract == ABSTRACT and p.authors_count == 7 for p in dump.papers)
    assert dump.warnings == []


def test_titles_and_abstracts_come_out_clean() -> None:
    text = """# Daily Papers

Dec 11

### [Engage\\
with *Long* Contexts: A &lt;Study&gt; of `KV` Caches](/papers/2412.00001)

Old arXiv abstracts were hard-wrapped\\
with a backslash at each line end\\
and **emphasis** &amp; <em>tags</em>.

* 3 authors

·

Dec 10, 2024

**[A Bold Linked\\
Title](https://arxiv.org/abs/2412.00002)**

The second abstract, written on one line, long enough to be an abstract of a paper.

- 2 authors

·

Dec 9
"""
    dump = parse(text, received=datetime(2024, 12, 12, tzinfo=UTC))
    first, second = dump.papers
    assert first.title == "Engage with Long Contexts: A <Study> of KV Caches"
    assert first.abstract == (
        "Old arXiv abstracts were hard-wrapped with a backslash at each line end and emphasis "
        "& tags."
    )
    assert (second.title, second.arxiv_id) == ("A Bold Linked Title", "2412.00002")
    assert dump.page_date == date(2024, 12, 11)  # the header date line, year from received
    assert dump.evidence == (PAPER_LINKS, PAGE_CHROME, METADATA_LINES)


_WORD = st.from_regex(r"[A-Z][a-z]{1,8}", fullmatch=True)
_MARKS = st.sampled_from(["{w}", "*{w}*", "_{w}_", "**{w}**", "`{w}`", "<b>{w}</b>", "~~{w}~~"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_WORD, _MARKS), min_size=2, max_size=10), st.sampled_from(["###", "##"]))
def test_a_heading_title_with_any_inline_markup_reads_as_its_words(
    words: list[tuple[str, str]], level: str
) -> None:
    marked = " ".join(mark.format(w=word) for word, mark in words)
    text = f"{level} [{marked}]({HF}/papers/2501.00001)\n\n{ABSTRACT}\n"
    [paper] = parse(text).papers
    assert paper.title == " ".join(word for word, _ in words)
    assert paper.arxiv_id == "2501.00001"


def trending(listing: str) -> str:
    return f"""# Trending Papers

by [AK]({HF}/akhaliq) and the research community

{listing}

[![Alpha Model: A Title Long Enough](thumb.png)]({HF}/papers/2506.00001)

[Alpha Model: A Title Long Enough]({HF}/papers/2506.00001)

### [Alpha Model: A Title Long Enough]({HF}/papers/2506.00001)

Published on Jun 2 · Submitted by [akhaliq]({HF}/akhaliq)

A one-sentence summary of the alpha model written by a language model.

[alpha-lab/alpha](https://github.com/alpha-lab/alpha) ★ 7.4k

[▲ 203]({HF}/login?next=%2Fpapers%2F2506.00001)

[![Beta: Another Paper](thumb.png)]({HF}/papers/2506.00002)

### [Beta: Another Paper]({HF}/papers/2506.00002)

Published on May 30

·

Submitted by

![](avatar.png)

someone

A one-sentence summary of the beta paper, also written by a model.

[ GitHub 1.2k](https://github.com/beta/beta)

[ 17]({HF}/login?next=%2Fpapers%2F2506.00002)

[💬 4]({HF}/papers/2506.00002#community)
"""


@pytest.mark.parametrize(
    "listing",
    [
        "",
        f"1. [Alpha Model: A Title Long Enough]({HF}/papers/2506.00001) ★ 7.4k\n"
        f"2. [Beta: Another Paper]({HF}/papers/2506.00002)",
    ],
    ids=["cards-only", "compact-list-then-cards"],
)
def test_trending_listings_of_one_paper_are_one_record(listing: str) -> None:
    dump = parse(trending(listing))
    assert [p.title for p in dump.papers] == [
        "Alpha Model: A Title Long Enough",
        "Beta: Another Paper",
    ]
    alpha, beta = dump.papers
    assert (
        alpha.ai_summary
        == alpha.abstract
        == ("A one-sentence summary of the alpha model written by a language model.")
    )
    assert (alpha.published, alpha.upvotes, alpha.github_stars) == (date(2025, 6, 2), 203, 7400)
    assert alpha.github_repo == "https://github.com/alpha-lab/alpha"
    assert beta.abstract.startswith("A one-sentence summary of the beta paper")  # no user name
    assert (beta.published, beta.upvotes, beta.comments, beta.github_stars) == (
        date(2025, 5, 30),
        17,
        4,
        1200,
    )
    assert dump.page_date == RECEIVED.date()  # Trending pages have no date


def test_bare_counts_go_to_the_next_title_when_the_page_puts_them_first() -> None:
    cards = [
        f"Submitted by\n\n![](a.png)\n\nuser{n}\n\n{votes}\n\n### [Paper Number {n}](/papers/2403.0000{n})"
        f"\n\n{ABSTRACT}\n\n- {n + 2} authors\n\n· Published on Mar {n + 1}, 2024"
        for n, votes in enumerate(["42", "-", "7"])
    ]
    dump = parse("# Daily Papers\n\nMar 11\n\n" + "\n\n".join(cards))
    assert [(p.upvotes, p.authors_count) for p in dump.papers] == [(42, 2), (0, 3), (7, 4)]
    assert all(p.abstract == ABSTRACT for p in dump.papers)  # user names are not text
    assert dump.papers[0].published == date(2024, 3, 1)


def test_a_code_span_or_block_never_holds_a_paper() -> None:
    text = f"""# Notes on scraping

Each title is a heading like `### [Title]({HF}/papers/2505.21734)`.

```markdown
### [Spatial Reasoning Probes]({HF}/papers/2505.21734)

*   7 authors

·

May 29[6]({HF}/papers/2505.21734#community)
```

## Results

It works well enough for a morning skim of the new papers on the page.
"""
    assert sniff(text) == MARKDOWN
    with pytest.raises(DumpError, match=r"^notes\.md: not a dump: .*no paper links"):
        parse(text, name="notes.md")


def test_arxiv_links_alone_are_no_evidence() -> None:
    text = f"## [A Paper Title](https://arxiv.org/abs/2506.04011)\n\n{ABSTRACT}\n"
    with pytest.raises(DumpError, match="no paper links"):
        parse(text, name="digest.md")


def test_a_very_long_line_is_left_out_with_a_warning_and_the_rest_is_read() -> None:
    filler = ("*a [b](c) _d_ " * 80_000).strip()  # about 1 MB on one line
    text = f"# Daily Papers\n\n{filler}\n\n### [A Title]({HF}/papers/2501.00001)\n\n{ABSTRACT}\n"
    dump = parse(text, name="big.md")
    assert [p.title for p in dump.papers] == ["A Title"]
    [warning] = dump.warnings
    assert warning.startswith(f"big.md:3: left out a line of {len(filler):,} characters")


def test_markdown_with_raw_div_lines_is_markdown_and_html_stays_html() -> None:
    markdown = (
        '<div class="flex">\n\n<div class="grid">\n\n<div class="card">\n\n'
        f"### [A Title]({HF}/papers/2501.00001)\n\n[Another]({HF}/papers/2501.00002)\n\n"
        f"### [Third]({HF}/papers/2501.00003)\n\n[Fourth]({HF}/papers/2501.00004)\n\n</div>\n"
    )
    assert sniff(markdown) == MARKDOWN
    html = '<div class="flex"><h3><a href="/papers/1">T</a></h3><p>x</p><a href="/y">z</a></div>'
    assert sniff(html) == HTML
