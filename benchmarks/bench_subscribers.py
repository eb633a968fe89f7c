"""Time the live subscriber list at 100,000 subscribers (benchmarks/synth.py writes them).

Prints, in seconds (wall clock, best of --repeat):

    yaml load        the old way: parsing and validating subscribers.yaml for an issue
    first import     importing that file into an empty database (once, when it changed)
    re-import        importing it again after an operator edited one entry
    unchanged check  what every command pays when the file did not change (stat + meta)
    issue load       `roster.receiving`: the active subscribers an issue is built from
    sign-up          one web sign-up recorded (`signup.request`) and confirmed
    preference       one reader's preferences saved (`roster.update_preferences`)
    mark             one "more like this" mark recorded (`feedback.mark`)

    .venv/bin/python benchmarks/bench_subscribers.py [--subscribers 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import write_subscribers  # noqa: E402

from newsletter import feedback, roster, signup  # noqa: E402
from newsletter.pipeline import ingest_file  # noqa: E402
from newsletter.settings import load_settings  # noqa: E402
from newsletter.store import Store  # noqa: E402
from newsletter.subscribers import Subscriber, load_subscribers  # noqa: E402

T = TypeVar("T")


CPU: dict[str, float] = {}


def best(repeat: int, run: Callable[[], T]) -> tuple[T, float]:
    """The result and the best wall-clock time of `repeat` runs (its CPU time goes to
    CPU, printed beside it: on a shared machine the wall clock includes waiting)."""
    times = []
    cpu = []
    result: T
    for _ in range(repeat):
        start, used = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - used)
    CPU["last"] = min(cpu)
    return result, min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-subscribers-"))
    os.chdir(work)
    path = work / "subscribers.yaml"
    write_subscribers(path, args.subscribers, random.Random(7))
    settings = load_settings(subscribers_file=path, database_path=work / "newsletter.db")
    rows: list[tuple[str, float, str]] = []

    def add(name: str, seconds: float, note: str) -> None:
        rows.append((name, seconds, f"cpu {CPU.get('last', 0) * 1000:.1f} ms  {note}"))

    loaded, seconds = best(args.repeat, lambda: load_subscribers(path))
    add("yaml load", seconds, f"{len(loaded)} subscribers")
    with Store(settings.database_path) as store:
        for dump in sorted((ROOT / "samples" / "dumps").glob("*.txt")):
            ingest_file(store, dump)
        imported, seconds = best(1, lambda: roster.sync(settings, store))
        add("first import", seconds, f"{imported}")

        text = path.read_text()
        edited = text.replace("max_papers: ", "max_papers: 1", 1)
        path.write_text(edited)
        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        imported, seconds = best(1, lambda: roster.sync(settings, store))
        add("re-import", seconds, f"{imported}")

        _, seconds = best(args.repeat, lambda: roster.sync(settings, store))
        add("unchanged check", seconds, "")
        active, seconds = best(args.repeat, lambda: roster.receiving(settings, store))
        add("issue load", seconds, f"{len(active)} active")

        counter = iter(range(10**9))

        def sign_up() -> None:
            n = next(counter)
            wanted = Subscriber.model_validate(
                {"email": f"web{n}@example.net", "topics": ["speech recognition"]}
            )
            signup.request(settings, store, wanted)
            signup.confirm(settings, store, wanted.email)

        _, seconds = best(args.repeat, sign_up)
        add("sign-up", seconds, "request + confirm")
        someone = active[len(active) // 2]
        changed = someone.model_copy(update={"max_papers": 3})
        _, seconds = best(args.repeat, lambda: roster.update_preferences(store, changed))
        add("preference", seconds, someone.email)
        paper = store.papers_since(0)[0]
        _, seconds = best(
            args.repeat, lambda: feedback.mark(store, someone.email, paper.key, "more")
        )
        add("mark", seconds, "")
    print(f"{args.subscribers} subscribers ({path.stat().st_size / 1e6:.1f} MB of YAML)")
    for name, seconds, note in rows:
        print(f"  {name:16} {seconds * 1000:10.1f} ms   {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
