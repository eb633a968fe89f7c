"""The subject and the preheader: the subject leads with the top paper's title and fits the
40 characters a phone shows, "+N more" included, for every real title we have (the
shared corpus of 428 Daily Papers titles and the sample dumps), cut at a word boundary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.dumps import Paper, parse_dump
from newsletter.headline import SUBJECT_CHARS, headline_title, preheader_for, subject_for
from newsletter.ranking import Match, Pick
from newsletter.render import Renderer
from newsletter.subscribers import Subscriber
from tests.conftest import SAMPLES

TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter" / "templates"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "papers.jsonl"
READER = Subscriber(
    email="ada@example.org", topics=["continual learning", "learning", "tokenizers", "agents"]
)
CUT_AFTER = " ,;:.-\u2013\u2014"


def real_titles() -> list[str]:
    """Every title of the shared corpus (read at run time, never copied here) and of the
    sample dumps."""
    titles: list[str] = []
    if CORPUS.exists():
        titles += [json.loads(line)["title"] for line in CORPUS.read_text("utf-8").splitlines()]
    received = datetime(2026, 11, 22, tzinfo=UTC)
    for sample in sorted(SAMPLES.glob("*.txt")):
        dump = parse_dump(sample.read_text("utf-8"), name=sample.name, received_at=received)
        titles += [paper.title for paper in dump.papers]
    return titles


def assert_cut_well(title: str, shown: str) -> None:
    """`shown` is the whole title, or a start of it cut after a whole word, with an
    ellipsis (mid-word only when the first word alone is too long)."""
    title = " ".join(title.split())
    if shown == title:
        return
    assert shown.endswith("\u2026"), (title, shown)
    head = shown[:-1]
    assert head and title.startswith(head), (title, shown)
    rest = title[len(head) :]
    assert rest[0] in CUT_AFTER or " " not in title[: len(shown)], (title, shown)


def test_every_real_title_fits_a_phone_with_the_count(tmp_path: Path) -> None:
    titles = real_titles()
    if len(titles) < 400:
        pytest.fail(f"expected the corpus at {CORPUS} and the samples; found {len(titles)} titles")
    renderer = Renderer(TEMPLATES)
    long_ones = 0
    for index, title in enumerate(titles):
        paper = Paper(key=f"p{index}", title=title, abstract="An abstract.")
        for count in (1, 2, 12, 100):
            picks = [Pick(paper, 1.0, (Match("agents", ("agents",), 1.0),))] * count
            context = renderer.render_context(
                subscriber=READER,
                picks=picks,
                issue_date=date(2026, 11, 22),
                unsubscribe_url="https://news.example.org/u/x",
            )
            subject = context["subject"]
            assert len(subject) <= SUBJECT_CHARS, subject
            more = f" +{count - 1} more" if count > 1 else ""
            assert subject.endswith(more)
            assert_cut_well(title, subject.removesuffix(more) if more else subject)
            long_ones += subject != " ".join(title.split()) + more
    assert long_ones > len(titles)  # most real titles are longer than a phone shows


@given(title=st.text(max_size=300), count=st.integers(min_value=1, max_value=10_000))
def test_any_title_fits(title: str, count: int) -> None:
    subject = subject_for(title, count)
    assert len(subject) <= SUBJECT_CHARS
    assert subject.endswith(f" +{count - 1} more" if count > 1 else "")


def test_a_title_is_cut_after_a_whole_word() -> None:
    title = "Depth Anything V2: Robust Monocular Depth Estimation at Any Scale"
    assert subject_for(title, 5) == "Depth Anything V2: Robust\u2026 +4 more"
    assert subject_for(title, 1) == "Depth Anything V2: Robust Monocular\u2026"
    assert headline_title("SAM: Segment Anything in Images and Videos", 13) == "SAM: Segment\u2026"
    assert headline_title("SAM: Segment Anything in Images and Videos", 12) == "SAM\u2026"
    assert headline_title("Supercalifragilisticexpialidocious Models", 10) == "Supercali\u2026"
    assert subject_for("A Short Title", 3) == "A Short Title +2 more"


def picks(*whys: str) -> list[Pick]:
    paper = Paper(key="k", title="T", abstract="A.")
    return [Pick(paper, 1.0, (), why) for why in whys]


def test_the_preheader_names_the_topics_of_the_rest() -> None:
    stored = picks(
        "Matches agents in the title",
        "Matches continual learning in the abstract",
        'Matches tokenizers ("tokenizer" in the title) and continual learning in the title',
        "Matches continual learning in the title and abstract",
    )
    # Topics of papers 2-4, most frequent first; "learning" is not found inside
    # "continual learning".
    assert preheader_for(READER, stored) == (
        "Also 3 more papers on continual learning and tokenizers"
    )
    assert preheader_for(READER, stored[:1]) == "1 paper on agents"
    assert preheader_for(READER, []) == (
        "No new papers on continual learning, learning, tokenizers and 1 more topic this time"
    )
    live = [Pick(Paper(key="k", title="T", abstract="A."), 1.0, (Match("learning", ("x",), 1),))]
    assert preheader_for(READER, live * 2) == "Also 1 more paper on learning"


def test_the_preheader_is_padded_in_the_html() -> None:
    renderer = Renderer(TEMPLATES)
    digest = renderer.render(
        subscriber=READER,
        picks=picks("Matches agents in the title", "Matches agents in the abstract"),
        issue_date=date(2026, 11, 22),
        unsubscribe_url="https://news.example.org/u/x",
    )
    start = digest.html.index('<div class="preheader"')
    hidden = digest.html[start : digest.html.index("</div>", start)]
    assert "display:none" in hidden and "color" not in hidden  # no colour to clash with
    assert digest.preheader in hidden
    assert hidden.count("&#847;&zwnj;&nbsp;") == 150 - len(digest.preheader)
