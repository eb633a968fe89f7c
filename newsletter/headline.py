"""What an inbox shows before the email is opened: the subject and the preheader.

A phone shows about the first 40 characters of a subject, so the subject leads with the
top paper's title and then says how many more there are: `Depth Anything V2: Robust… +4 more`.
The title is cut at a word boundary so that the whole subject stays within
`SUBJECT_CHARS` (see `headline_title`). The preheader (the grey line after the subject) summarises the rest:
how many more papers and on which of the reader's topics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from newsletter.ranking import Pick
from newsletter.subscribers import Subscriber
from newsletter.wording import fit, join_words, plural, shorten

SUBJECT_CHARS = 40  # what a phone's inbox shows of a subject
PREHEADER_CHARS = 140  # what the roomiest inbox shows of a preheader
PREHEADER_TOPICS = 3  # topics named before "and N more topics"


def more_text(count: int) -> str:
    """` +N more` after the top title (N papers besides it), or ""."""
    return f" +{count - 1} more" if count > 1 else ""


def headline_title(title: str, room: int) -> str:
    """A title in at most `room` characters: whole when it fits, else cut after its last
    whole word that fits, with an ellipsis. (Keeping only a short name before a colon,
    `ProBench`, was tried: it says less than the start of the subtitle.)"""
    return fit(title, room)


def subject_for(title: str, count: int, limit: int = SUBJECT_CHARS) -> str:
    """`<top title, fitted> +N more`, at most `limit` characters in all."""
    more = more_text(count)
    return headline_title(title, max(limit - len(more), 1)) + more


def topics_of(pick: Pick, subscriber: Subscriber) -> list[str]:
    """The reader's topics a pick matched: from its matches, or (a pick read back from
    the ledger has only its why-line) the topics its why-line names, longest first so
    that "learning" is not found inside "continual learning"."""
    if pick.matches:
        return list(dict.fromkeys(match.topic for match in pick.matches))
    return list(_topics_named_in(pick.why, tuple(t.topic for t in subscriber.topics)))


@lru_cache(maxsize=16384)  # readers with the same topics share a paper's why-line
def _topics_named_in(why: str, topics: tuple[str, ...]) -> tuple[str, ...]:
    text = why.casefold()
    found: list[str] = []
    for topic in sorted(set(topics), key=len, reverse=True):
        pattern = _topic_pattern(topic)
        if pattern.search(text):
            found.append(topic)
            text = pattern.sub(" ", text)
    return tuple(found)


@lru_cache(maxsize=4096)
def _topic_pattern(topic: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(topic.casefold())}(?!\w)")


def named_topics(picks: Sequence[Pick], subscriber: Subscriber) -> str:
    """The topics these picks are about, most frequent first (the reader's order breaks
    ties): `a, b and c`, or `a, b, c and 2 more topics`."""
    order = {t.topic: index for index, t in enumerate(subscriber.topics)}
    counts: dict[str, int] = {}
    for pick in picks:
        for topic in topics_of(pick, subscriber):
            counts[topic] = counts.get(topic, 0) + 1
    topics = sorted(counts, key=lambda t: (-counts[t], order.get(t, len(order))))
    if not topics:
        topics = [t.topic for t in subscriber.topics]
    if len(topics) <= PREHEADER_TOPICS:
        return join_words(topics)
    extra = len(topics) - PREHEADER_TOPICS
    return ", ".join(topics[:PREHEADER_TOPICS]) + f" and {plural(extra, 'more topic')}"


def preheader_for(subscriber: Subscriber, picks: Sequence[Pick]) -> str:
    """The rest of the issue in one line: `Also 4 more papers on continual learning and
    tokenizers` (one paper: `1 paper on ...`; none: `No new papers on ... this time`)."""
    if not picks:
        return shorten(f"No new papers on {named_topics(picks, subscriber)} this time", 140)
    if len(picks) == 1:
        return shorten(f"1 paper on {named_topics(picks, subscriber)}", PREHEADER_CHARS)
    rest = picks[1:]
    papers = plural(len(rest), "more paper")
    return shorten(f"Also {papers} on {named_topics(rest, subscriber)}", PREHEADER_CHARS)
