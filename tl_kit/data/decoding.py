"""Files decoded the way training does, one at a time or many in threads (:mod:`tl_kit.decode`)."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tl_kit import decode as _dec

__all__ = ["decode_image_file", "decode_many", "decode_or_black", "graph_calls", "worker_count"]


def decode_image_file(path, size, channels: int = 3, resize: str = "stretch") -> tuple[np.ndarray, str]:
    """Decode one file by content the way training does -> ``(uint8 (H, W, C), notes)``.

    Through :func:`tl_kit.decode.decode_file` (TF ops; Pillow for EXIF-rotated,
    transparent, CMYK, 16-bit files): EXIF orientation applied, grey/palette/CMYK/RGBA/16-bit
    converted to RGB (or L), transparency composited on white, resized with ``resize``.
    Raises on corrupt, truncated or non-image files (the hygiene scan turns that into a skip).
    """
    arr, notes, _ = _dec.decode_file(path, size, channels, resize)
    return arr, notes


def decode_or_black(p, size, channels, mode) -> np.ndarray:
    """Decode one known-good file; a file broken since the scan gives black (with a warning)."""
    path = p.decode() if isinstance(p, bytes) else str(p)
    try:
        return _dec.decode_file(path, size, channels, mode)[0]
    except Exception as e:  # never crash mid-way
        warnings.warn(f"{path} could not be decoded ({e}); a black image stands in.", stacklevel=1)
        return np.zeros((size[0], size[1], channels), np.uint8)


def worker_count(workers: int | None) -> int:
    """Decoding threads: ``workers``, else twice the CPUs (at most 8)."""
    return max(1, int(workers or min(8, (os.cpu_count() or 2) * 2)))


def decode_many(paths, size, channels, mode, workers=None) -> np.ndarray:
    """uint8 ``(N, H, W, C)`` of ``paths``, decoded in threads into one array."""
    out = np.zeros((len(paths), size[0], size[1], channels), np.uint8)

    def one(i):
        out[i] = decode_or_black(paths[i], size, channels, mode)

    with ThreadPoolExecutor(worker_count(workers)) as ex:
        list(ex.map(one, range(len(paths))))
    return out


def graph_calls() -> int:
    """How many calls a graph that reads and decodes files runs at once (the hygiene scan's
    and the streaming pipeline's map): 16, or 2 per core on larger machines.

    Measured on 2 cores, checking 100k files: ``AUTOTUNE`` took 8.2-8.7 s and ~14 CPU s
    (3.8 s of it in the kernel), 16 calls 5.3-5.8 s and ~10 CPU s (2.0 s in the kernel);
    32 and 64 were no faster. The memory did not grow with it: decoding 2,000 photos of
    1024 px into the in-memory cache peaked at 714 MB RSS with 16 calls, 702-715 MB with
    ``AUTOTUNE``. A streamed epoch with the standard policy (20k files) went from 3,353 /
    4,605 / 3,366 to 3,404 / 5,719 / 4,295 images/s, with less CPU in each round
    (benchmarks/RESULTS.md, "First load: the graph's calls and the Python around it")."""
    return max(16, 2 * (os.cpu_count() or 1))
