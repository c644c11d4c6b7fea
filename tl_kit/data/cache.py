"""The in-memory path: when a folder's pixels are cached, and the cache split into views.

When the resized uint8 images of a folder fit in :data:`tl_kit.data.cache.CACHE_LIMIT_BYTES`
(default ``min(2 GiB, 25% of RAM)``; set it on the package), the pixels decoded by the
hygiene scan are kept as ONE uint8 array and the pipeline reads from memory; otherwise the
pipeline decodes the known-good files in the tf.data graph each epoch (the streaming path).
"""

from __future__ import annotations

import os

import numpy as np

from tl_kit.data.examples import Examples
from tl_kit.data.split import SPLITS

__all__ = ["CACHE_LIMIT_BYTES", "cache_limit", "cache_splits", "memory_budget", "permute_rows", "pipeline_choice"]


def memory_budget() -> int:
    """The default cache limit: ``min(2 GiB, 25% of RAM)`` (8 GiB of RAM assumed if unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(2 << 30, total // 4))


#: Largest uint8 image cache (bytes) kept in memory; above it folders stream from disk.
#: Read at each load, so setting ``tl_kit.data.cache.CACHE_LIMIT_BYTES`` applies.
CACHE_LIMIT_BYTES: int = memory_budget()


def cache_limit() -> int:
    """The limit in force: :data:`CACHE_LIMIT_BYTES` as set now."""
    return int(CACHE_LIMIT_BYTES)


def pipeline_choice(n_files: int, size, channels: int) -> tuple[bool, str]:
    """``(in memory?, the sentence DatasetInfo.pipeline states)`` for ``n_files`` images."""
    limit = cache_limit()
    need = n_files * size[0] * size[1] * channels
    if need <= limit:
        return True, (f"memory: {n_files} files x {size[0]}x{size[1]}x{channels} uint8 = "
                      f"{need / 2**20:.0f} MiB <= CACHE_LIMIT_BYTES {limit / 2**20:.0f} MiB, "
                      "decoded once")
    return False, (f"stream: {need / 2**20:.0f} MiB of pixels > CACHE_LIMIT_BYTES "
                   f"{limit / 2**20:.0f} MiB, decoded in the tf.data graph each epoch")


def permute_rows(x: np.ndarray, order: np.ndarray) -> None:
    """In place, ``x[j] = old x[order[j]]`` for a permutation ``order``, one spare row
    (no second copy of the array)."""
    done = np.zeros(len(order), bool)
    for start in range(len(order)):
        if done[start] or order[start] == start:
            done[start] = True
            continue
        spare = x[start].copy()
        j = start
        while True:
            done[j] = True
            k = int(order[j])
            if k == start:
                x[j] = spare
                break
            x[j] = x[k]
            j = k


def cache_splits(pixels: np.ndarray, ok: list[int], whole: Examples,
                 idx: dict[str, list[int]]) -> dict[str, Examples]:
    """Splits whose images are contiguous views of ``pixels`` (rows reordered in place:
    the cache's peak is one array of the good files' pixels, never two). ``ok``: the rows
    of ``pixels`` that ``whole`` holds; ``idx``: indices into ``whole`` per split."""
    order = np.asarray([ok[i] for s in SPLITS for i in idx.get(s, [])], np.int64)
    used = len(order)
    if used < len(pixels) or not np.array_equal(order, np.arange(used)):
        # move the used rows to the front in split order: a permutation of all rows
        rest = np.setdiff1d(np.arange(len(pixels)), order, assume_unique=True)
        permute_rows(pixels, np.concatenate([order, rest]))
    splits, at = {}, 0
    for s in SPLITS:
        ii = idx.get(s, [])
        if ii:
            part = whole.take(ii)
            part.x = pixels[at:at + len(ii)]
            splits[s] = part
            at += len(ii)
    return splits
