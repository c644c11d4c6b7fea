"""The cyclic garbage collector paused while a folder load builds its per-file tables.

A load makes several small objects per file (paths, stats, records, index entries), none of
them in reference cycles, so the collector finds nothing there; but each automatic collection
of the oldest generation walks every tracked object of the process, ~375k once TensorFlow is
imported. At 100k files that cost ~0.4 s of the second load (1.62-1.67 s against
1.10-1.30 s with the collector paused) and ~0.2 s of writing the hygiene index
(benchmarks/RESULTS.md, "First load: the graph's calls and the Python around it").
Reference counting still frees everything as usual; only the cycle search waits until the
load is done.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["gc_paused", "paused_gc"]

F = TypeVar("F", bound=Callable)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Automatic cyclic collection off inside the block, as it was after (a caller that had
    turned it off keeps it off)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def gc_paused(fn: F) -> F:
    """``fn`` run inside :func:`paused_gc`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paused_gc():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
