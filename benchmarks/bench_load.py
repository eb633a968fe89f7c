"""Time loading an issue's readers (`newsletter.roster.receiving`) in a fresh process.

Run it in a folder whose subscribers file was already imported (after an ingest and a
send or dry run): what it times is what every later issue pays, the unchanged-file check
plus reading the active readers back from the database. A fresh process, so nothing the
first import cached (parsed YAML, warm validators) helps. Prints one JSON object:

    cd FOLDER && .venv/bin/python path/to/benchmarks/bench_load.py
    {"subscribers": 100000, "wall": 2.1, "cpu": 2.0}
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure() -> dict[str, float]:
    """One `receiving` call on the settings and database of the working directory."""
    from newsletter.roster import receiving
    from newsletter.settings import load_settings
    from newsletter.store import Store

    settings = load_settings()
    with Store(settings.database_path) as store:
        start, used = time.perf_counter(), time.process_time()
        readers = receiving(settings, store)
        wall, cpu = time.perf_counter() - start, time.process_time() - used
    return {"subscribers": len(readers), "wall": wall, "cpu": cpu}


def in_fresh_process(folder: Path, env: dict[str, str]) -> dict[str, float]:
    """`measure` in a new interpreter started in `folder` with `env`."""
    done = subprocess.run(
        [sys.executable, __file__], cwd=folder, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{__file__}: loading in {folder} failed: {done.stderr.strip()}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


if __name__ == "__main__":
    print(json.dumps(measure()))
