"""Pausing Python's cyclic garbage collector while bulk, acyclic objects are built.

Every container allocated counts toward the next collection, and once the heap is large
(100,000 subscribers, their picks, the ranker's index) the older generations' passes walk
all of it and find nothing: building an issue's plan spent a quarter of its time there.
The objects built in bulk here (subscriber records, picks, ledger rows) hold no cycles,
so nothing is lost by not looking for them meanwhile; reference counting still frees
everything at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector's previous state (and
    nothing else) is restored on exit, even if the block raises."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
