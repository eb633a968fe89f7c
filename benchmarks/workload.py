"""The synthetic folder every benchmark that runs the CLI starts from, how it runs it, and
how much memory that run takes.

The CLI runs as `python -m newsletter` with this checkout first on PYTHONPATH, so a
benchmark measures the code beside it, not whatever checkout the venv's `newsletter`
script was installed from (an editable install points at one tree only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from synth import generate

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "newsletter"]


def bench_env(today: date, **extra: str) -> dict[str, str]:
    """The caller's environment without its NEWSLETTER_ settings (a developer's .env or
    exports must not change what is measured), weekly readers included today."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NEWSLETTER_WEEKLY_DAY"] = str(today.weekday())
    env.update(extra)
    return env


def prepare(
    folder: Path, env: dict[str, str], *, subscribers: int, papers: int, today: date, seed: int
) -> float:
    """Write `subscribers` readers and one `papers`-paper page dated `today` into `folder`,
    ingest the page and import the subscribers file into the live list, as a user's
    folder is before the day's send (the service imports the file when it changes, not
    for each issue). Returns the seconds the import took (`newsletter subscribers`)."""
    generate(folder, subscribers=subscribers, papers=papers, page_date=today, seed=seed)
    subprocess.run(
        [*CLI, "ingest", "dumps/page.txt"], cwd=folder, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    start = time.perf_counter()
    subprocess.run(
        [*CLI, "subscribers", "--json"], cwd=folder, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def tree_pss_mb(pid: int) -> float:
    """Memory of a process and all its descendants, in MB: the proportional set size
    (a page shared by the forked workers counts once in all, not once per process)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(next(x for x in rollup.splitlines() if x.startswith("Pss:")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024
