"""One split's examples: images in memory, or file paths to stream, with their labels."""

from __future__ import annotations

import numpy as np

__all__ = ["Examples"]


class Examples:
    """One split's examples: a uint8/float32 array ``x`` in memory, or file ``paths`` to
    stream (``pil``: per path, decoded with Pillow instead of TF ops), and int ``labels``."""

    def __init__(self, labels: np.ndarray, x: np.ndarray | None = None,
                 paths: list[str] | None = None, pil: np.ndarray | None = None):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.x = x
        self.paths = paths
        # per path: decoded with Pillow (tl_kit.decode.needs_pil) instead of TF ops
        self.pil = np.asarray(pil, bool) if pil is not None else (
            np.zeros(len(paths), bool) if paths is not None else None)

    def take(self, ii) -> Examples:
        """The examples at indices ``ii``."""
        ii = np.asarray(ii, np.int64)
        return Examples(self.labels[ii], x=self.x[ii] if self.x is not None else None,
                        paths=[self.paths[i] for i in ii] if self.paths is not None else None,
                        pil=self.pil[ii] if self.pil is not None else None)

    def every(self, start: int, step: int) -> Examples:
        """Every ``step``-th example from ``start`` (images as a strided view, not a copy)."""
        return Examples(self.labels[start::step], x=self.x[start::step] if self.x is not None else None,
                        paths=self.paths[start::step] if self.paths is not None else None,
                        pil=self.pil[start::step] if self.pil is not None else None)

    def relabel(self, labels: np.ndarray) -> Examples:
        """The same examples (images shared, not copied) with other ``labels``."""
        return Examples(labels, x=self.x, paths=self.paths, pil=self.pil)

    def __len__(self) -> int:
        return len(self.labels)
