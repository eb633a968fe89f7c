"""What each paper shows: names, counts, real links and a TL;DR or whole sentences.

The end-to-end check builds dry-run messages from Daily Papers API captures (one written
here from the API's description, and the real replies in ../shared/corpora/api/, read at
run time) and looks at every paper block of every message: author names, the paper page
on Hugging Face, arXiv and its PDF.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from newsletter.dumps import Paper
from newsletter.paper_card import arxiv_links, author_line, paper_card, web_link
from newsletter.pipeline import dry_run, ingest_file
from newsletter.settings import load_settings
from newsletter.store import Store
from tests.factories import api_paper, write_api_dump

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "api"
NAMES = ("Ada Quinn", "Bo Chen", "Chiara Rossi", "Dev Patel", "Eun-ji Kim", "Femi Ade")


def test_author_line() -> None:
    assert author_line(NAMES[:4], 4, "") == "Ada Quinn, Bo Chen, Chiara Rossi, Dev Patel"
    assert author_line(NAMES, 6, "") == "Ada Quinn, Bo Chen, Chiara Rossi, \u2026 +3"
    assert author_line(NAMES[:2], 9, "") == "Ada Quinn, Bo Chen, \u2026 +7"  # a page said 9
    assert author_line((), 4, "Ørsted Labs") == "Ørsted Labs"
    assert author_line((), 1, "") == "1 author"
    assert author_line((" ", ""), None, "") == ""


def test_links_only_for_what_is_known_and_safe() -> None:
    assert arxiv_links("2406.09414") == (
        "https://arxiv.org/abs/2406.09414",
        "https://arxiv.org/pdf/2406.09414",
    )
    assert arxiv_links(None) == ("", "") and arxiv_links("not-an-id") == ("", "")
    assert web_link("https://github.com/a/b") == "https://github.com/a/b"
    assert web_link("javascript:alert(1)") == "" and web_link("github.com/a b") == ""
    card = paper_card(Paper(key="k", title="T", abstract="A.", github_repo="javascript:x"))
    assert (card.github_url, card.arxiv_url) == ("", "")
    assert card.url == "https://huggingface.co/papers?q=T"  # no id: a search, the only time


def test_tldr_else_whole_sentences() -> None:
    abstract = (
        "We propose a method, e.g. for agents, that works (Fig. 2 shows it). "
        "It is 3.5 times faster than Smith et al. found in 2024. "
        + "Further details follow in a long sentence that goes on and on. "
        * 6
    )
    with_summary = paper_card(
        Paper(key="a", title="T", abstract=abstract, ai_summary="Agents, but faster.")
    )
    assert with_summary.is_tldr and with_summary.summary == "Agents, but faster."
    plain = paper_card(Paper(key="b", title="T", abstract=abstract))
    assert not plain.is_tldr
    assert plain.summary.startswith("We propose a method, e.g. for agents, that works")
    assert plain.summary.endswith(".") and "et al. found in 2024." in plain.summary
    only_summary = paper_card(
        Paper(key="c", title="T", abstract="Agents, but faster.", ai_summary="Agents, but faster.")
    )
    assert only_summary.summary == "Agents, but faster." and only_summary.excerpt == ""


def test_counts_and_dates() -> None:
    card = paper_card(
        Paper(
            key="d",
            title="T",
            abstract="A.",
            authors=NAMES[:2],
            organization="Ørsted Labs",
            published=date(2026, 4, 9),
            upvotes=7,
            comments=1,
        )
    )
    assert card.authors == "Ada Quinn, Bo Chen \u00b7 Ørsted Labs"
    assert card.stats == "Apr 9, 2026 \u00b7 7 upvotes \u00b7 1 comment"
    bare = paper_card(Paper(key="e", title="T", abstract="A.", comments=0))
    assert (bare.stats, bare.upvotes_text, bare.comments_text) == ("", "", "")


def blocks(html: str) -> list[dict[str, list[tuple[str, str]]]]:
    """Each paper's block: the text and links of its parts (title, authors, ... why)."""
    parts = "td.paper-title, td.authors, td.stats, td.summary, td.links, td.why"
    found: list[dict[str, list[tuple[str, str]]]] = []
    for cell in LexborHTMLParser(html).css(parts):
        kind = next(c for c in (cell.attributes.get("class") or "").split() if c != "wrap")
        if kind == "paper-title":
            found.append({})
        links = [(a.text(strip=True), a.attributes.get("href") or "") for a in cell.css("a")]
        found[-1][kind] = [("", cell.text(strip=True)), *links]
    return found


def synthetic_capture(folder: Path) -> Path:
    return write_api_dump(
        folder / "capture.json",
        [
            api_paper(
                f"2611.1{n:04d}",
                f"Continual Learning for Agents, Study {n}",
                "Agents that keep learning. They forget less.",
                list(NAMES[: n + 1]),
                day="2026-11-21",
                ai_summary="Agents keep learning." if n % 2 else None,
                github="https://github.com/example/agents" if n == 2 else None,
            )
            for n in range(5)
        ],
    )


@pytest.mark.parametrize("capture", ["synthetic", "2026-04-10.json", "2024-06-14.json"])
def test_a_message_from_an_api_capture_names_and_links_every_paper(
    isolated: Path, capture: str
) -> None:
    if capture == "synthetic":
        path = synthetic_capture(isolated)
    else:
        path = CORPORA / capture
        if not path.exists():
            pytest.skip(f"{path} is absent: the real API replies live in ../shared/corpora/api/")
    entries = json.loads(path.read_text("utf-8"))
    (isolated / "subscribers.yaml").write_text(
        "subscribers:\n  - email: reader@example.org\n    max_papers: 100\n"
        "    topics: [agents, learning, model, video, language, reasoning, image, data]\n"
    )
    settings = load_settings()
    with Store(settings.database_path) as store:
        ingest_file(store, path)
        report = dry_run(settings, store, issue_date=date(2026, 11, 22))
    assert report.folder is not None
    message = email.message_from_bytes(
        (report.folder / "reader@example.org.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    by_id = {entry["paper"]["id"]: entry["paper"] for entry in entries}
    papers = blocks(html)
    assert len(papers) >= min(3, len(entries))
    for block in papers:
        (_, title), (_, page) = block["paper-title"]
        arxiv_id = page.removeprefix("https://huggingface.co/papers/")
        assert arxiv_id in by_id, page  # the paper page, never a search
        names = [author["name"] for author in by_id[arxiv_id]["authors"]]
        assert block["authors"][0][1].startswith(names[0]), block["authors"]
        links = dict(block["links"][1:])
        assert links["arXiv"] == f"https://arxiv.org/abs/{arxiv_id}"
        assert links["PDF"] == f"https://arxiv.org/pdf/{arxiv_id}"
        if by_id[arxiv_id].get("githubRepo"):
            assert links["GitHub"] == by_id[arxiv_id]["githubRepo"]
        assert block["summary"][0][1] and block["why"][0][1].startswith("Matches ")
        assert f"https://arxiv.org/abs/{arxiv_id}" in text and names[0] in text
