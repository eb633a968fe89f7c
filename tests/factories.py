"""Test data written as real files in the project's formats, and a disk to fill up."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Settings a real send accepts (newsletter/preflight.py): an https base URL on a public
# name, an own From address, a long secret key. The base URL is only written into the
# links; the messages go to the test's SMTP server on 127.0.0.1.
REAL_SEND_ENV = {
    "NEWSLETTER_BASE_URL": "https://news.example.org",
    "NEWSLETTER_FROM_ADDRESS": "Research Digest <digest@news.example.org>",
    "NEWSLETTER_SECRET_KEY": "test-secret-key-long-enough-to-sign-links",
}


def write_subscribers(path: Path, count: int) -> list[str]:
    """`count` subscribers who all want papers the samples have; returns their addresses."""
    emails = [f"reader{n:04d}@example.org" for n in range(count)]
    lines = ["subscribers:"]
    for n, address in enumerate(emails):
        topic = ["knowledge distillation", "continual learning", "machine translation"][n % 3]
        lines += [f"  - email: {address}", f"    topics: [{topic}]", "    max_papers: 3"]
    path.write_text("\n".join(lines) + "\n")
    return emails


def fill(disk: Path, *, leave: int = 0) -> Path:
    """Fill `disk` up (leaving about `leave` bytes); deleting the returned file frees it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass  # no space left
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def api_paper(
    arxiv_id: str,
    title: str,
    abstract: str,
    authors: list[str],
    *,
    day: str,
    upvotes: int = 3,
    comments: int = 1,
    ai_summary: str | None = None,
    github: str | None = None,
    organization: str | None = None,
) -> dict[str, object]:
    """One entry of the Daily Papers API in its 2026 form (what `newsletter fetch` saves)."""
    paper: dict[str, object] = {
        "id": arxiv_id,
        "authors": [
            {"_id": f"a{n}", "name": name, "hidden": False} for n, name in enumerate(authors)
        ],
        "publishedAt": f"{day}T17:59:00.000Z",
        "submittedOnDailyAt": f"{day}T02:00:00.000Z",
        "title": title,
        "summary": abstract,
        "upvotes": upvotes,
        "discussionId": "d" + arxiv_id.replace(".", ""),
    }
    if ai_summary is not None:
        paper["ai_summary"] = ai_summary
        paper["ai_keywords"] = title.lower().split()[:3]
    if github is not None:
        paper["githubRepo"] = github
    if organization is not None:
        paper["organization"] = {"name": organization.lower(), "fullname": organization}
    return {
        "paper": paper,
        "publishedAt": f"{day}T02:00:00.000Z",
        "title": title,
        "numComments": comments,
        "submittedBy": {"_id": "u1", "user": "akhaliq", "fullname": "AK"},
    }


def write_api_dump(path: Path, entries: list[dict[str, object]]) -> Path:
    """A Daily Papers API reply, as `newsletter fetch` writes it into the inbox."""
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
