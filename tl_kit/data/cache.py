"""The in-memory path's choice: when a folder's pixels are cached.

When the resized uint8 images of a folder fit in :data:`tl_kit.data.cache.CACHE_LIMIT_BYTES`
(default ``min(2 GiB, 25% of RAM)``; set it on the package), the pixels decoded by the
hygiene scan are kept as ONE uint8 array in listing order (memory-mapped from the file
beside the hygiene index when there is one), every split holds row indices into it
(:class:`tl_kit.data.examples.Examples`), and the pipeline reads from memory; otherwise the
pipeline decodes the known-good files in the tf.data graph each epoch (the streaming path).
``pipeline="memory"`` or ``"stream"`` (``load_data``, the learner, ``tl-kit train
--pipeline``) makes the choice instead of the limit.
"""

from __future__ import annotations

import os

from tl_kit.errors import UserError

__all__ = ["CACHE_LIMIT_BYTES", "PIPELINES", "cache_limit", "check_pipeline", "memory_budget",
           "physical_memory", "pipeline_choice"]

#: The pipeline choices: by :data:`CACHE_LIMIT_BYTES`, always in memory, always streamed.
PIPELINES = ("auto", "memory", "stream")


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """The default cache limit: ``min(2 GiB, 25% of RAM)`` (8 GiB of RAM assumed if unknown)."""
    total = physical_memory() or 8 << 30
    return int(min(2 << 30, total // 4))


#: Largest uint8 image cache (bytes) kept in memory; above it folders stream from disk.
#: Read at each load, so setting ``tl_kit.data.cache.CACHE_LIMIT_BYTES`` applies.
CACHE_LIMIT_BYTES: int = memory_budget()


def cache_limit() -> int:
    """The limit in force: :data:`CACHE_LIMIT_BYTES` as set now."""
    return int(CACHE_LIMIT_BYTES)


def check_pipeline(pipeline) -> str:
    """``pipeline`` if it is one of :data:`PIPELINES`, else a UserError naming it."""
    if pipeline not in PIPELINES:
        raise UserError(f"`pipeline` must be one of {', '.join(PIPELINES)}. Received: pipeline={pipeline!r}")
    return pipeline


def pipeline_choice(n_files: int, size, channels: int, pipeline: str = "auto",
                    source=None) -> tuple[bool, str]:
    """``(in memory?, the sentence DatasetInfo.pipeline states)`` for ``n_files`` images:
    by :data:`CACHE_LIMIT_BYTES` (``pipeline="auto"``), or as ``pipeline`` asks. In memory
    is refused when the pixels would not fit in this machine's RAM (a UserError naming
    ``source``): the scan falls back to plain memory where the cache has no room for the
    pixel file, and a process that big is killed, not slowed."""
    limit = cache_limit()
    need = n_files * size[0] * size[1] * channels
    shape = f"{n_files} files x {size[0]}x{size[1]}x{channels} uint8 = {need / 2**20:.0f} MiB"
    if check_pipeline(pipeline) == "stream":
        return False, f"stream: pipeline='stream' asked ({shape}), decoded in the tf.data graph each epoch"
    if pipeline == "memory":
        ram = physical_memory()
        if ram is not None and need > ram:
            raise UserError(
                f"pipeline='memory': the pixels of {source or 'the folder'} ({shape}) do not fit in "
                f"this machine's {ram / 2**30:.1f} GiB of RAM: stream them (pipeline='stream'), or "
                f"load them at a smaller image size. Received: pipeline='memory'")
        return True, f"memory: pipeline='memory' asked ({shape}), decoded once"
    if need <= limit:
        return True, f"memory: {shape} <= CACHE_LIMIT_BYTES {limit / 2**20:.0f} MiB, decoded once"
    return False, (f"stream: {need / 2**20:.0f} MiB of pixels > CACHE_LIMIT_BYTES "
                   f"{limit / 2**20:.0f} MiB, decoded in the tf.data graph each epoch")
