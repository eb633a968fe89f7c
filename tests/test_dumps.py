"""The dump parser: the two real samples parse exactly, years are deterministic, broken
entries are skipped with a warning, non-dumps are refused, and rendered entries round-trip."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.dumps import Dump, Paper, paper_key, parse_dump, read_dump
from newsletter.dumps.vocabulary import COUNT_RE, is_chrome
from newsletter.errors import DumpError

REPO = Path(__file__).resolve().parent.parent
SAMPLE_000 = REPO / "samples" / "dumps" / "000_12e940f9937f08e2.txt"
SAMPLE_001 = REPO / "samples" / "dumps" / "001_7885534340268e4e.txt"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EXPECTED = "expected a Daily Papers page: a header date such as 'Dec 11' followed by paper entries"

HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\n"
)
ABSTRACT = (
    "We study a question that matters a great deal and answer it with a method that is "
    "simple, fast and, as the experiments show, better than what came before it."
)


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def parse(text: str, *, received: datetime = RECEIVED, name: str = "dump.txt") -> Dump:
    return parse_dump(text, name=name, received_at=received)


def by_title(dump: Dump, title: str) -> Paper:
    [paper] = [p for p in dump.papers if p.title == title]
    return paper


def entry(title: str, *, meta: str | None = "  • 3 authors\n·\nMay 30, 2017") -> str:
    block = f"{title}\n\n{ABSTRACT}\n\n"
    return block + (f"{meta}\n\n" if meta is not None else "")


# -- the real samples --------------------------------------------------------------------


def test_sample_000_parses_exactly() -> None:
    dump = parse(text_of(SAMPLE_000), name="000.txt")
    assert dump.name == "000.txt"
    assert dump.page_date == date(2025, 12, 11)  # Dec 11, 2026 would be after Nov 23, 2026
    assert len(dump.papers) == 23
    assert dump.warnings == []

    first = dump.papers[0]
    assert first == Paper(
        key=paper_key("Accelerating Neural Architecture Search using Performance Prediction"),
        title="Accelerating Neural Architecture Search using Performance Prediction",
        abstract=first.abstract,
        authors_count=4,
        organization=None,
        published=date(2017, 5, 30),
        upvotes=0,
        arxiv_id=None,
        line=13,
    )
    assert first.abstract.startswith("Methods for neural network hyperparameter optimization")
    assert first.abstract.endswith("while still identifying the optimal model configurations.")

    lcm = by_title(
        dump, "Large Concept Models: Language Modeling in a Sentence Representation Space"
    )
    assert (lcm.authors_count, lcm.published, lcm.upvotes, lcm.line) == (
        21,
        date(2024, 12, 11),
        1,
        21,
    )
    dolma = by_title(
        dump,
        "Dolma: an Open Corpus of Three Trillion Tokens for Language Model Pretraining Research",
    )
    assert (dolma.authors_count, dolma.published, dolma.upvotes) == (36, date(2024, 1, 31), 1)
    single = by_title(dump, "Linguistic Structure Induction from Language Models")
    assert (single.authors_count, single.published, single.upvotes) == (1, date(2024, 3, 11), 0)
    last = dump.papers[-1]
    assert last.title.startswith("FactorLLM: Factorizing Knowledge via Mixture of Experts")
    assert (last.authors_count, last.published, last.upvotes) == (9, date(2024, 8, 15), 0)
    assert all(p.organization is None and p.arxiv_id is None for p in dump.papers)


def test_sample_001_parses_exactly() -> None:
    dump = parse(text_of(SAMPLE_001), name="001.txt")
    assert dump.page_date == date(2026, 11, 19)
    assert len(dump.papers) == 59
    assert dump.warnings == []

    meta_ai = by_title(
        dump, "Reinforcement Learning Improves Traversal of Hierarchical Knowledge in LLMs"
    )
    assert meta_ai.organization == "AI-at-Meta Meta AI"
    assert meta_ai.authors_count is None
    assert (meta_ai.published, meta_ai.upvotes) == (date(2026, 11, 8), 2)

    outcome = by_title(
        dump, "Exploring the Limit of Outcome Reward for Learning Mathematical Reasoning"
    )
    assert (outcome.authors_count, outcome.published, outcome.upvotes) == (
        17,
        date(2026, 2, 10),
        6,
    )

    bridging = by_title(
        dump, "Bridging Supervised Learning and Reinforcement Learning in Math Reasoning"
    )
    assert bridging.authors_count is None and bridging.organization is None
    assert bridging.published is None and bridging.upvotes == 0
    assert bridging.abstract.startswith("Reinforcement Learning (RL) has played a central role")
    assert bridging.line == 197
    after = dump.papers[dump.papers.index(bridging) + 1]
    assert after.title.startswith("Harnessing Negative Signals")
    assert (after.authors_count, after.published, after.upvotes) == (6, date(2026, 5, 30), 3)

    # Dates without a year fall on or before the page date (Nov 19, 2026).
    aug = by_title(
        dump,
        "Towards Understanding and Harnessing the Transferability of Prognostic Knowledge"
        " in Computational Pathology",
    )
    assert aug.published == date(2026, 8, 18)
    [kore] = [p for p in dump.papers if p.title.startswith("KORE:")]
    assert (kore.published, kore.upvotes) == (
        date(2026, 10, 22),
        3,
    )
    assert dump.papers[0].title.startswith("Beyond Not-Forgetting")
    assert dump.papers[-1].title == "Addressing Negative Transfer in Diffusion Models"
    assert dump.papers[-1].published == date(2023, 6, 1)


@pytest.mark.parametrize("sample", [SAMPLE_000, SAMPLE_001], ids=["000", "001"])
def test_every_paper_is_whole_and_points_at_its_title(sample: Path) -> None:
    text = text_of(sample)
    lines = text.split("\n")
    dump = parse(text)
    for paper in dump.papers:
        assert paper.title and paper.title == paper.title.strip()
        assert len(paper.abstract) > 100
        assert "\n" not in paper.abstract
        assert lines[paper.line - 1] == paper.title
        assert paper.key == paper_key(paper.title)
        assert (paper.authors_count is None) != (paper.organization is None) or (
            paper.published is None
        )
    assert len({p.title for p in dump.papers}) == len(dump.papers)
    assert not {p.title.casefold() for p in dump.papers} & {
        "new",
        "subscribe",
        "daily papers",
        "get trending papers in your email inbox!",
        "byak and the research community",
    }


def test_read_dump_uses_the_file_mtime(tmp_path: Path) -> None:
    target = tmp_path / SAMPLE_000.name
    target.write_bytes(SAMPLE_000.read_bytes())
    stamp = datetime(2026, 12, 10, 23, 30, tzinfo=UTC).timestamp()  # Dec 11 within a day
    os.utime(target, (stamp, stamp))
    dump = read_dump(target)
    assert dump.name == str(target)
    assert dump.page_date == date(2026, 12, 11)
    assert len(dump.papers) == 23


# -- years -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "received", "page_date"),
    [
        ("Nov 19", datetime(2026, 11, 22, 9, tzinfo=UTC), date(2026, 11, 19)),
        ("Dec 11", datetime(2026, 11, 22, 9, tzinfo=UTC), date(2025, 12, 11)),
        ("Dec 31", datetime(2027, 1, 2, 8, tzinfo=UTC), date(2026, 12, 31)),
        ("Jan 1", datetime(2026, 12, 31, 22, tzinfo=UTC), date(2027, 1, 1)),  # one day slack
        ("Jan 2", datetime(2026, 12, 31, 22, tzinfo=UTC), date(2026, 1, 2)),  # two is too many
        ("Nov 22", datetime(2026, 11, 22, 0, 0, tzinfo=UTC), date(2026, 11, 22)),
        ("Feb 29", datetime(2026, 11, 22, tzinfo=UTC), date(2024, 2, 29)),
        ("Feb 29", datetime(2024, 2, 28, tzinfo=UTC), date(2024, 2, 29)),
        ("Feb 29", datetime(2024, 2, 27, tzinfo=UTC), date(2020, 2, 29)),
        ("Sept 5", datetime(2026, 11, 22, tzinfo=UTC), date(2026, 9, 5)),
        ("September 5", datetime(2026, 11, 22, tzinfo=UTC), date(2026, 9, 5)),
        ("Dec 11, 2024", datetime(2026, 11, 22, tzinfo=UTC), date(2024, 12, 11)),
    ],
)
def test_page_date_year(header: str, received: datetime, page_date: date) -> None:
    dump = parse(HEADER + header + "\n\n" + entry("A Paper"), received=received)
    assert dump.page_date == page_date


@pytest.mark.parametrize(
    ("header", "written", "published"),
    [
        ("Nov 19", "Aug 18", date(2026, 8, 18)),
        ("Nov 19", "Nov 19", date(2026, 11, 19)),
        ("Nov 19", "Nov 20", date(2025, 11, 20)),  # not after the page date
        ("Nov 19", "Dec 25 4", date(2025, 12, 25)),
        ("Jan 5, 2026", "Dec 30", date(2025, 12, 30)),
        ("Nov 19", "Feb 29", date(2024, 2, 29)),
        ("Nov 19", "Feb 29, 2020 7", date(2020, 2, 29)),
        ("Nov 19", "Dec 30, 2027", date(2027, 12, 30)),  # a year is taken as written
        ("Nov 19", "Sept 3, 2024", date(2024, 9, 3)),
        ("Nov 19", "September 3", date(2026, 9, 3)),
    ],
)
def test_paper_date_year(header: str, written: str, published: date) -> None:
    text = HEADER + header + "\n\n" + entry("A Paper", meta=f"  • 2 authors\n·\n{written}")
    [paper] = parse(text).papers
    assert paper.published == published


def test_years_do_not_depend_on_now() -> None:
    text = text_of(SAMPLE_001)
    old = parse(text, received=datetime(2019, 11, 19, tzinfo=UTC))
    assert old.page_date == date(2019, 11, 19)
    assert by_title(
        old, "Exploring the Limit of Outcome Reward for Learning Mathematical Reasoning"
    ).published == date(2019, 2, 10)


# -- not a dump ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("empty.txt", b""),
        ("blank.txt", b"\n\n   \n"),
        (
            "prose.txt",
            b"Dear diary,\n\nToday I read about language models. They are large.\n\n"
            b"Tomorrow I will read more, and maybe write a paper of my own.\n",
        ),
        ("binary.bin", bytes(range(256)) * 4),
        ("nul.txt", b"Dec 11\n\x00\x00\x00\x01\x02 data \x00\n"),
        ("chrome.txt", (HEADER + "Dec 11\n\nDaily\n\nWeekly\n\nMonthly\n").encode()),
        ("only_date.txt", b"Dec 11\n"),
    ],
)
def test_not_a_dump_names_the_file(tmp_path: Path, filename: str, data: bytes) -> None:
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(DumpError) as caught:
        read_dump(path)
    message = str(caught.value)
    assert filename in message
    assert "Daily Papers" in message  # what a dump is
    assert caught.value.path == str(path)


def test_not_a_dump_from_text_names_the_file() -> None:
    with pytest.raises(DumpError, match=r"^notes\.md: .*no paper entry"):
        parse("just some notes\n\nnothing else\n", name="notes.md")
    with pytest.raises(DumpError, match=r"^x\.txt:11: .*no paper entry"):
        parse(HEADER + "Dec 11\n\nSubscribe\n", name="x.txt")
    # Prose after something that looks like a date is still not a page of papers.
    prose = "Diary\n\nMarch 3\n\nA heading\n\n" + ABSTRACT + "\n\nAnother heading\n\n" + ABSTRACT
    with pytest.raises(DumpError, match=r"^diary\.txt: not a dump: .* 2 entries, but it shows no"):
        parse(prose, name="diary.txt")
    with pytest.raises(DumpError, match=r"^bad\.txt:1: the header date 'Feb 31' is not a real"):
        parse("Feb 31\n\n" + entry("A Paper"), name="bad.txt")


def test_missing_file_is_a_dump_error(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="cannot read"):
        read_dump(tmp_path / "absent.txt")


# -- broken entries inside a good dump ---------------------------------------------------


def test_impossible_date_skips_only_that_entry() -> None:
    text = text_of(SAMPLE_000).replace("\nOct 1, 2024\n", "\nFeb 31, 2024\n")
    dump = parse(text, name="000.txt")
    assert len(dump.papers) == 22
    assert "Investigating the Impact of Model Complexity in Large Language Models" not in {
        p.title for p in dump.papers
    }
    [warning] = dump.warnings
    assert warning.startswith("000.txt:29: skipped entry 'Investigating the Impact")
    assert "Feb 31, 2024" in warning and "line 35" in warning


def test_title_without_abstract_is_skipped_with_its_line() -> None:
    lines = text_of(SAMPLE_000).split("\n")
    assert lines[36].startswith("Regression Transformer")
    del lines[38:40]  # its abstract and the blank line after it
    dump = parse("\n".join(lines), name="000.txt")
    assert len(dump.papers) == 22
    [warning] = dump.warnings
    assert warning.startswith("000.txt:37: skipped entry 'Regression Transformer")
    assert warning.endswith("title with no abstract")
    # The neighbours are intact.
    before = by_title(dump, "Investigating the Impact of Model Complexity in Large Language Models")
    assert before.published == date(2024, 10, 1)
    after = dump.papers[3]
    assert after.title.startswith("Measuring and Benchmarking")
    assert (after.authors_count, after.published) == (3, date(2024, 6, 25))


def test_title_without_abstract_or_metadata_does_not_steal_the_next_entry() -> None:
    lines = text_of(SAMPLE_000).split("\n")
    del lines[38:44]  # Regression Transformer's abstract and metadata block
    dump = parse("\n".join(lines), name="000.txt")
    assert len(dump.papers) == 22
    [warning] = dump.warnings
    assert warning.startswith("000.txt:37: skipped entry 'Regression Transformer")
    measuring = dump.papers[3]
    assert measuring.title.startswith("Measuring and Benchmarking")
    assert measuring.abstract.startswith("We are exposed to much information")
    assert (measuring.authors_count, measuring.published) == (3, date(2024, 6, 25))


def test_all_entries_broken_is_not_a_dump() -> None:
    text = HEADER + "Dec 11\n\n" + entry("A", meta="  • 2 authors\n·\nFeb 31, 2024")
    with pytest.raises(DumpError, match=r"1 broken entry skipped"):
        parse(text)


def test_duplicate_keeps_the_later_upvote_count() -> None:
    text = (
        HEADER
        + "Dec 11\n\n"
        + entry("Same Paper: A Study", meta="  • 2 authors\n·\nMay 3, 2024 1")
        + entry("Other Paper")
        + entry("same paper -- a study", meta="  • 2 authors\n·\nMay 3, 2024 5")
    )
    dump = parse(text)
    assert [p.key for p in dump.papers] == ["same paper a study", "other paper"]
    assert dump.papers[0].upvotes == 5
    assert len(dump.warnings) == 1 and "duplicate" in dump.warnings[0]


# -- variations of the capture -----------------------------------------------------------


def test_crlf_bom_and_trailing_spaces() -> None:
    text = text_of(SAMPLE_001)
    variant = "\ufeff" + "\r\n".join(line + "  " for line in text.split("\n"))
    plain = parse(text)
    dump = parse(variant)
    assert dump.papers == plain.papers and dump.page_date == plain.page_date
    assert dump.warnings == []


def test_extra_blank_lines_everywhere() -> None:
    text = text_of(SAMPLE_000)
    variant = "\n\n" + text.replace("\n\n", "\n\n\n\n").replace("\n·\n", "\n\n·\n\n") + "\n\n\n"
    dump = parse(variant)
    assert len(dump.papers) == 23 and dump.warnings == []
    plain = parse(text)

    def fields(d: Dump) -> list[tuple[object, ...]]:
        return [(p.title, p.abstract, p.authors_count, p.published, p.upvotes) for p in d.papers]

    assert fields(dump) == fields(plain)


def test_wrapped_abstracts_are_joined_with_spaces() -> None:
    plain = parse(text_of(SAMPLE_000))
    wrapped_lines: list[str] = []
    for line in text_of(SAMPLE_000).split("\n"):
        if len(line) > 400:
            words = line.split(" ")
            chunk: list[str] = []
            for word in words:
                chunk.append(word)
                if len(" ".join(chunk)) > 70:
                    wrapped_lines.append(" ".join(chunk))
                    chunk = []
            if chunk:
                wrapped_lines.append(" ".join(chunk))
        else:
            wrapped_lines.append(line)
    dump = parse("\n".join(wrapped_lines))
    assert len(dump.papers) == 23 and dump.warnings == []
    assert [p.abstract for p in dump.papers] == [p.abstract for p in plain.papers]
    assert [p.authors_count for p in dump.papers] == [p.authors_count for p in plain.papers]


def test_author_lines_in_their_variants() -> None:
    text = (
        "Dec 11\n\n"
        + entry("One", meta="  • 1 author\n·\nMay 3, 2024")
        + entry("Two", meta="• 2 authors\n·\nMay 3, 2024")
        + entry("Three", meta="3 Authors\n·\nMay 3, 2024")
        + entry("Four", meta="\t•  1 authors\n·\nMay 3, 2024")
    )
    dump = parse(text)
    assert [(p.title, p.authors_count, p.organization) for p in dump.papers] == [
        ("One", 1, None),
        ("Two", 2, None),
        ("Three", 3, None),
        ("Four", 1, None),
    ]


def test_chrome_missing_reordered_and_footer() -> None:
    text = (
        "Daily Papers\n\nSubscribe\n\nnew\n\nDec 11\n\nDaily\n\nWeekly\n\nMonthly\n\n"
        + entry("First Paper")
        + "Get trending papers in your email inbox!\n\n"
        + entry("Second Paper", meta=None)
        + entry("Third Paper", meta="Some-Org Some Org\n·\nDec 10\n12")
        + "System theme\n\nCompany\nTOS\nPrivacy\nAbout\nJobs\n\nWebsite\nModels\nDatasets\n"
    )
    dump = parse(text)
    assert [p.title for p in dump.papers] == ["First Paper", "Second Paper", "Third Paper"]
    third = dump.papers[2]
    assert (third.organization, third.published, third.upvotes) == (
        "Some-Org Some Org",
        date(2025, 12, 10),
        12,
    )
    assert dump.papers[1].published is None
    assert dump.warnings == []


def test_trailing_entry_without_metadata_and_stray_text() -> None:
    text = "Nov 19\n\n" + entry("Real Paper") + entry("Last Paper", meta=None) + "Load more\n"
    dump = parse(text)
    assert [p.title for p in dump.papers] == ["Real Paper", "Last Paper"]
    assert len(dump.warnings) == 1 and "'Load more'" in dump.warnings[0]


def test_metadata_on_one_line_and_count_on_its_own_line() -> None:
    text = (
        "Nov 19\n\n"
        + entry("Inline Authors", meta="  • 4 authors · May 30, 2017 3")
        + entry("Inline Org", meta="AI-at-Meta Meta AI · Nov 8")
        + entry("Split Dot", meta="• 2 authors ·\nAug 18\n7")
        + entry("Title · With A Dot", meta="  • 1 author\n·\nSep 1, 2024")
    )
    dump = parse(text)
    got = [(p.title, p.authors_count, p.organization, p.published, p.upvotes) for p in dump.papers]
    assert got == [
        ("Inline Authors", 4, None, date(2017, 5, 30), 3),
        ("Inline Org", None, "AI-at-Meta Meta AI", date(2026, 11, 8), 0),
        ("Split Dot", 2, None, date(2026, 8, 18), 7),
        ("Title · With A Dot", 1, None, date(2024, 9, 1), 0),
    ]
    assert dump.warnings == []


def test_short_abstract_is_kept_when_metadata_vouches_for_it() -> None:
    text = "Nov 19\n\nA Title That Is Quite Long Indeed\n\nShort.\n\n  • 2 authors\n·\nMay 1\n"
    [paper] = parse(text).papers
    assert (paper.abstract, paper.authors_count, paper.published) == (
        "Short.",
        2,
        date(2026, 5, 1),
    )


def test_text_is_kept_as_is_apart_from_stripping() -> None:
    title = "  Ünïcode — “quotes” & <tags> ½  "
    text = f"Nov 19\n\n{title}\n\n  {ABSTRACT}  \n\n  • 2 authors\n·\nMay 1\n"
    [paper] = parse(text).papers
    assert paper.title == title.strip() and paper.abstract == ABSTRACT


# -- round trip --------------------------------------------------------------------------

# Bidi embeddings, overrides and isolates are removed from every text (dumps/bounds.py).
_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"),
    blacklist_characters="\ufeff·⋅∙\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
)


@dataclass(frozen=True)
class Generated:
    title: str
    abstract: str
    who: int | str | None  # authors count, organisation, or no metadata
    published: date
    with_year: bool
    upvotes: int


def _clean(text: str) -> str:
    return " ".join(text.split())


# A title that is a whole chrome line ("Subscribe", "Privacy"...) is chrome by design,
# and a count standing alone ("12") is an upvote button's.
titles = (
    st.text(_CHARS, min_size=1, max_size=120)
    .map(_clean)
    .filter(lambda t: bool(paper_key(t)) and not is_chrome(t) and not COUNT_RE.match(t))
    .filter(lambda t: sum(char.isalpha() for char in t) >= 2)  # "x" and "1" are no titles
)
abstracts = st.text(_CHARS, min_size=130, max_size=400).map(_clean).filter(lambda a: len(a) >= 130)
orgs = st.from_regex(r"[A-Za-z][A-Za-z0-9 .&-]{0,40}[A-Za-z]", fullmatch=True).filter(
    lambda o: "author" not in o.casefold()
)


@st.composite
def dumps(draw: st.DrawFn) -> tuple[str, date, datetime, list[Generated]]:
    page_date = draw(st.dates(date(2001, 1, 1), date(2035, 12, 31)))
    received = datetime.combine(
        page_date + timedelta(days=draw(st.integers(-1, 300))), datetime.min.time(), UTC
    ) + timedelta(hours=draw(st.integers(0, 23)))
    entries: list[Generated] = []
    for _ in range(draw(st.integers(1, 6))):
        with_year = draw(st.booleans())
        if with_year:
            published = draw(st.dates(date(1992, 1, 1), page_date + timedelta(days=366)))
        else:
            published = page_date - timedelta(days=draw(st.integers(0, 364)))
        entries.append(
            Generated(
                title=draw(titles),
                abstract=draw(abstracts),
                who=draw(st.one_of(st.integers(1, 300), orgs, st.none())),
                published=published,
                with_year=with_year,
                upvotes=draw(st.integers(0, 3000)),
            )
        )
    keys = [paper_key(e.title) for e in entries]
    if len(set(keys)) != len(keys):
        entries = [e for i, e in enumerate(entries) if keys.index(keys[i]) == i]
    if all(e.who is None for e in entries):  # a dump has at least one metadata block
        index = draw(st.integers(0, len(entries) - 1))
        entries[index] = replace(entries[index], who=draw(st.integers(1, 9)))
    gap = "\n" * draw(st.integers(2, 4))
    out = [
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
    ]
    out = draw(st.permutations(out))[: draw(st.integers(0, 5))]
    out.append(f"{page_date:%b} {page_date.day}")
    for e in entries:
        out += [e.title, e.abstract]
        if e.who is None:
            continue
        if isinstance(e.who, int):
            bullet = draw(st.sampled_from(["  • ", "• ", ""]))
            who = f"{bullet}{e.who} author{'s' if e.who != 1 or draw(st.booleans()) else ''}"
        else:
            who = e.who
        when = f"{e.published:%b} {e.published.day}"
        if e.with_year:
            when += f", {e.published.year}"
        if e.upvotes:
            when += f" {e.upvotes}"
        out.append(f"{who}\n·\n{when}")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return gap.join(out).replace("\n", newline), page_date, received, entries


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dumps())
def test_rendered_entries_parse_back_exactly(
    case: tuple[str, date, datetime, list[Generated]],
) -> None:
    text, page_date, received, entries = case
    dump = parse(text, received=received)
    assert dump.page_date == page_date
    assert dump.warnings == []
    assert len(dump.papers) == len(entries)
    lines = text.replace("\r\n", "\n").split("\n")
    for paper, e in zip(dump.papers, entries, strict=True):
        assert paper.title == e.title and paper.abstract == e.abstract
        assert paper.key == paper_key(e.title)
        assert lines[paper.line - 1] == e.title
        if e.who is None:
            assert (paper.authors_count, paper.organization, paper.published) == (None, None, None)
            assert paper.upvotes == 0
            continue
        assert paper.authors_count == (e.who if isinstance(e.who, int) else None)
        assert paper.organization == (e.who if isinstance(e.who, str) else None)
        assert paper.published == e.published
        assert paper.upvotes == e.upvotes


_SEPARATORS = st.text(st.sampled_from(" \t-:,.;!?()[]'\"/—–"), min_size=1, max_size=3)


@given(
    st.lists(st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=8),
    st.data(),
)
def test_paper_key_is_stable_under_case_space_and_punctuation(
    words: list[str], data: st.DataObject
) -> None:
    plain = " ".join(words)
    seps = [data.draw(_SEPARATORS) for _ in words]
    noisy = data.draw(_SEPARATORS) + "".join(
        (w.upper() if i % 2 else w.lower()) + s
        for i, (w, s) in enumerate(zip(words, seps, strict=False))
    )
    assert paper_key(noisy) == paper_key(plain) == " ".join(w.casefold() for w in words)


def test_paper_key_normalises_unicode() -> None:
    assert paper_key("Ｆｕｌｌ-width ﬁne  TUNING!") == paper_key("full width fine tuning")
    assert paper_key("Straße") == paper_key("STRASSE")
    assert paper_key("Large Concept Models: Language Modeling") != paper_key("Large Concept Models")
