"""What a reader sees of one paper, whoever it was picked for: the title and its link, the
first authors or the organisation, the date and counts, the arXiv / PDF / GitHub links,
and a one-line TL;DR or a sentence-aware excerpt of the abstract.

A `PaperCard` depends only on the paper (never on the reader), so it is made once per
paper (cached) and the email can render a paper's block once for every reader who gets
it. The reader's own parts (the number, the why-line) live in `render.PaperView`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from newsletter.dumps import Paper
from newsletter.dumps.vocabulary import is_arxiv_id
from newsletter.wording import excerpt, format_date, one_line, plural, shorten

HF_PAPER_URL = "https://huggingface.co/papers/{}"
HF_SEARCH_URL = "https://huggingface.co/papers?q={}"
ARXIV_ABS_URL = "https://arxiv.org/abs/{}"
ARXIV_PDF_URL = "https://arxiv.org/pdf/{}"
NAMED_AUTHORS = 3  # names shown before "… +N" (all of them when one more would do)
TLDR_CHARS = 240  # an AI summary is one sentence; a longer one is cut at a word
SEPARATOR = " \u00b7 "  # the middle dot between the parts of a line

_WEB_URL = re.compile(r"https?://[^\s\"'<>]+\Z", re.IGNORECASE)


@dataclass(frozen=True)
class PaperCard:
    """One paper, formatted for the templates (which stay simple). Empty strings mean
    "not known": the templates leave those parts out."""

    title: str
    url: str  # the Hugging Face paper page, or a search for the title
    authors: str  # "Ada Lovelace, Alan Turing, Grace Hopper, … +6", "Ørsted Labs", "4 authors"
    organization: str
    published: str  # "Nov 1, 2022"
    upvotes: int
    upvotes_text: str  # "12 upvotes" ("" when none)
    comments_text: str  # "3 comments" ("" when none or unknown)
    stats: str  # published · upvotes · comments, the parts that exist
    meta: str  # authors · published · upvotes, the parts that exist (the older one-line form)
    arxiv_url: str
    pdf_url: str
    github_url: str
    summary: str  # the TL;DR, else the excerpt
    is_tldr: bool  # `summary` is the capture's AI summary
    excerpt: str  # the abstract's excerpt ("" when the TL;DR is all the capture has)


def paper_url(arxiv_id: str | None, title: str) -> str:
    """The paper's Hugging Face page, or a Hugging Face search for its title."""
    if arxiv_id and arxiv_id.strip():
        return HF_PAPER_URL.format(quote(arxiv_id.strip(), safe="./"))
    return HF_SEARCH_URL.format(quote(one_line(title), safe=""))


def arxiv_links(arxiv_id: str | None) -> tuple[str, str]:
    """The arXiv abstract and PDF links, or ("", "") when the id is unknown or unlike one."""
    value = (arxiv_id or "").strip()
    if not is_arxiv_id(value):
        return "", ""
    return ARXIV_ABS_URL.format(value), ARXIV_PDF_URL.format(value)


def web_link(url: str | None) -> str:
    """`url` when it is an http(s) address (a capture could hold `javascript:`), else ""."""
    value = (url or "").strip()
    return value if _WEB_URL.match(value) else ""


def author_line(names: tuple[str, ...], count: int | None, organization: str) -> str:
    """The first authors' names and how many more (`A, B, C, … +6`); without names the
    organisation, else the count (`4 authors`), else ""."""
    names = tuple(name for name in (one_line(n) for n in names) if name)
    total = max(len(names), count or 0)
    if names:
        shown = names if total <= NAMED_AUTHORS + 1 else names[:NAMED_AUTHORS]
        rest = total - len(shown)
        return ", ".join(shown) + (f", \u2026 +{rest}" if rest else "")
    if organization:
        return organization
    return plural(count, "author") if count is not None else ""


@lru_cache(maxsize=8192)
def paper_card(paper: Paper) -> PaperCard:
    """The card of one paper (cached: the same papers go to many readers)."""
    organization = one_line(paper.organization or "")
    authors = author_line(paper.authors, paper.authors_count, organization)
    published = format_date(paper.published) if paper.published is not None else ""
    upvotes_text = plural(paper.upvotes, "upvote") if paper.upvotes > 0 else ""
    comments_text = plural(paper.comments, "comment") if paper.comments else ""
    arxiv_url, pdf_url = arxiv_links(paper.arxiv_id)
    tldr = shorten(paper.ai_summary, TLDR_CHARS) if paper.ai_summary else ""
    abstract = one_line(paper.abstract)
    # When a capture has no abstract the reader keeps the AI summary in its place.
    short = excerpt(abstract) if abstract and abstract != one_line(tldr) else ""
    if authors == organization or not organization:
        who = authors
    else:
        who = authors + SEPARATOR + organization
    return PaperCard(
        title=one_line(paper.title),
        url=paper_url(paper.arxiv_id, paper.title),
        authors=who,
        organization=organization,
        published=published,
        upvotes=max(paper.upvotes, 0),
        upvotes_text=upvotes_text,
        comments_text=comments_text,
        stats=SEPARATOR.join(p for p in (published, upvotes_text, comments_text) if p),
        meta=SEPARATOR.join(p for p in (who, published, upvotes_text) if p),
        arxiv_url=arxiv_url,
        pdf_url=pdf_url,
        github_url=web_link(paper.github_repo),
        summary=tldr or short,
        is_tldr=bool(tldr),
        excerpt=short,
    )
