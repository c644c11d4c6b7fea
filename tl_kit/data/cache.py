"""The in-memory path's choice: when a folder's pixels are cached.

When the resized uint8 images of a folder fit in :data:`tl_kit.data.cache.CACHE_LIMIT_BYTES`
(default ``min(2 GiB, 25% of RAM)``; set it on the package), the pixels decoded by the
hygiene scan are kept as ONE uint8 array in listing order (memory-mapped from the file
beside the hygiene index when there is one), every split holds row indices into it
(:class:`tl_kit.data.examples.Examples`), and the pipeline reads from memory; otherwise the
pipeline decodes the known-good files in the tf.data graph each epoch (the streaming path).
"""

from __future__ import annotations

import os

__all__ = ["CACHE_LIMIT_BYTES", "cache_limit", "memory_budget", "pipeline_choice"]


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
