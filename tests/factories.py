"""Test data written as real files in the project's formats, and a disk to fill up."""

from __future__ import annotations

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
