"""Links to the Hugging Face Daily Papers pages an issue is about: the page of a day (the
header's issue date links there) and the pages the reader's papers came from (the
footer names every one of them, each linked)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from newsletter.wording import format_date, format_short_date, join_words

DAILY_PAPERS_URL = "https://huggingface.co/papers"
DAY_PAGE_URL = "https://huggingface.co/papers/date/{}"


@dataclass(frozen=True)
class PageLink:
    """One Daily Papers page: its date as the reader sees it and its address."""

    label: str  # "Nov 18" (the year too when it is not the issue's)
    url: str


def day_page_url(day: date) -> str:
    """The Daily Papers page of `day`."""
    return DAY_PAGE_URL.format(day.isoformat())


def source_pages(
    paper_keys: Iterable[str], pages: Mapping[str, date], *, issue_date: date
) -> list[PageLink]:
    """The pages the papers came from, oldest first, each once (`pages`: paper key ->
    the date of the page that brought it; papers not in it are left out)."""
    days = tuple(sorted({pages[key] for key in paper_keys if key in pages}))
    return list(_page_links(days, issue_date))


@lru_cache(maxsize=1024)  # an issue's readers share a few sets of pages
def _page_links(days: tuple[date, ...], issue_date: date) -> tuple[PageLink, ...]:
    return tuple(
        PageLink(
            format_short_date(day) if day.year == issue_date.year else format_date(day),
            day_page_url(day),
        )
        for day in days
    )


def sources_text(links: Iterable[PageLink]) -> str:
    """`the Daily Papers pages of Nov 18 and Nov 19` (one page: `page of`), for the text part
    and for logs; the HTML links each date."""
    labels = [link.label for link in links]
    if not labels:
        return "Hugging Face Daily Papers"
    noun = "page" if len(labels) == 1 else "pages"
    return f"the Hugging Face Daily Papers {noun} of {join_words(labels)}"
