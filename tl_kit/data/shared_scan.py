"""The hygiene scan shared by the workers of a cluster: each checks only its share of the files.

Under ``MultiWorkerMirroredStrategy`` every worker loads the same folder. Alone, each would
check every file on its first load: W workers, W times the reads. Inside
:func:`shared_scan` (the Learner opens it around its training load), the streamed scan of
:func:`tl_kit.data.hygiene.scan` checks only every W-th file of the listing from the
worker's index, then one sum over the workers (``total``: an all-reduce) gives every worker
the verdict code of every file:

* 1: plain and decoded by TensorFlow ops, no note (nearly every file): taken as is;
* 2: anything else (skipped, converted, Pillow): the worker checks that file itself, so its
  reason and notes are its own (these are few).

A file a worker already knows (its hygiene index) keeps its own verdict. Before that, a
first sum checks that every worker lists the same files and streams them; when they do not
(another listing, or one worker's memory holds the pixels so every file is decoded anyway),
every worker checks every file, as without a cluster. Both sums are made by every worker,
in the same order, so no worker waits on another that skipped one.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

__all__ = ["Share", "current_share", "shared_scan"]

PLAIN, OTHER = 1.0, 2.0


class Share:
    """One worker's part of a shared scan: ``workers``, its ``index``, ``total`` (a sum of an
    array over the workers, on every worker) and what it checked (``checked`` of ``files``,
    added up over the folders loaded)."""

    def __init__(self, workers: int, index: int, total: Callable[[np.ndarray], np.ndarray]):
        self.workers, self.index, self.total = int(workers), int(index), total
        self.checked = 0
        self.files = 0
        self.shared = False

    def summary(self) -> str:
        """The log line: how much of the check this worker did."""
        if not self.shared:
            return (f"hygiene scan not shared over {self.workers} workers (listings differ, or the "
                    f"pixels are kept in memory): this worker checked {self.checked} of {self.files} files")
        return (f"hygiene scan shared over {self.workers} workers: worker {self.index} checked "
                f"{self.checked} of {self.files} files")

    def agree(self, files: list[tuple[str, int]], keep: bool) -> bool:
        """One sum over the workers: True on every worker when all list the same files and
        stream them (only then is sharing the check worth it), False on every worker else."""
        h = _listing_hash(files)
        n = float(len(files))
        mine = np.asarray([1.0, n, n * n, h, h * h, float(keep)])
        sums = self.total(mine)
        same = all(float(sums[k]) == self.workers * mine[k] for k in range(1, 5))
        return bool(sums[0] == self.workers and same and sums[5] == 0)

    def owned(self, n: int) -> np.ndarray:
        """The files this worker checks: every ``workers``-th from ``index``."""
        return np.arange(self.index, n, self.workers)


_SHARE: ContextVar[Share | None] = ContextVar("tl_kit_shared_scan", default=None)


@contextmanager
def shared_scan(workers: int, index: int, total: Callable[[np.ndarray], np.ndarray]) -> Iterator[Share]:
    """Loads inside this block share their hygiene scan with the other ``workers`` (this one
    is ``index``), through ``total(array) -> its sum over the workers``. Every worker must run
    the same loads inside it."""
    share = Share(workers, index, total)
    token = _SHARE.set(share)
    try:
        yield share
    finally:
        _SHARE.reset(token)


def current_share() -> Share | None:
    """The shared scan in force, or None (every file is checked here)."""
    return _SHARE.get()


def _listing_hash(files: list[tuple[str, int]]) -> float:
    """20 bits of the listing's paths and labels (its square still sums exactly in float64)."""
    h = 0
    for path, k in files:
        h = zlib.crc32(f"{path}\0{k}\n".encode(), h)
    return float(h & 0xFFFFF)
