"""One split's examples: images in memory, or file paths to stream, with their labels."""

from __future__ import annotations

import numpy as np

__all__ = ["Examples"]


class Examples:
    """One split's examples: images in memory, or file ``paths`` to stream (``pil``: per
    path, decoded with Pillow instead of TF ops; ``header``: per path, the ``(height,
    width)`` the hygiene scan read, ``(0, 0)`` not a JPEG, negative not known, so that a
    streamed epoch decodes each file without reading its header: see
    :func:`tl_kit.decode.route_codes`), and int ``labels``.

    In memory, the images live in ``pixels``, a uint8/float32 array ``(M, H, W, C)`` that
    several splits may share (a folder's one cache, possibly memory-mapped): example ``i`` is
    ``pixels[rows[i]]``, or ``pixels[i]`` when ``rows`` is None. Splitting, sharding and
    relabelling make new row indices, never a copy of the images."""

    def __init__(self, labels: np.ndarray, x: np.ndarray | None = None,
                 paths: list[str] | None = None, pil: np.ndarray | None = None,
                 rows: np.ndarray | None = None, header: np.ndarray | None = None):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.pixels = x
        self.rows = None if rows is None or x is None else np.asarray(rows, np.int64)
        self.paths = paths
        # per path: decoded with Pillow (tl_kit.decode.needs_pil) instead of TF ops
        self.pil = np.asarray(pil, bool) if pil is not None else (
            np.zeros(len(paths), bool) if paths is not None else None)
        self.header = None if header is None or paths is None else np.asarray(header, np.int32).reshape(-1, 2)

    @property
    def in_memory(self) -> bool:
        """Whether the images are held (``pixels``) rather than streamed from ``paths``."""
        return self.pixels is not None

    @property
    def x(self) -> np.ndarray | None:
        """The images as one array ``(N, H, W, C)``; None when streamed. The held array itself
        when these examples are all of it in order, else a gathered copy (:meth:`images`)."""
        if self.pixels is None:
            return None
        return self.pixels if self.rows is None else self.images(np.arange(len(self)))

    def images(self, ii) -> np.ndarray:
        """The images of examples ``ii`` (positions in this split): a slice of ``pixels`` when
        they are consecutive rows there, else a gathered copy."""
        ii = np.asarray(ii, np.int64)
        r = ii if self.rows is None else self.rows[ii]
        if len(r) > 1 and r[-1] - r[0] == len(r) - 1 and np.all(np.diff(r) == 1):
            return self.pixels[r[0]:r[-1] + 1]
        return self.pixels[r]

    def _rows_at(self, ii) -> np.ndarray | None:
        if self.pixels is None:
            return None
        return ii if self.rows is None else self.rows[ii]

    def take(self, ii) -> Examples:
        """The examples at indices ``ii`` (images shared: new row indices, not a copy)."""
        ii = np.asarray(ii, np.int64)
        return Examples(self.labels[ii], x=self.pixels, rows=self._rows_at(ii),
                        paths=[self.paths[i] for i in ii] if self.paths is not None else None,
                        pil=self.pil[ii] if self.pil is not None else None,
                        header=self.header[ii] if self.header is not None else None)

    def every(self, start: int, step: int) -> Examples:
        """Every ``step``-th example from ``start`` (images shared, not copied)."""
        sl = slice(start, None, step)
        if self.pixels is not None and self.rows is None:
            x, rows = self.pixels[sl], None  # a strided view
        else:
            x, rows = self.pixels, (self.rows[sl] if self.rows is not None else None)
        return Examples(self.labels[sl], x=x, rows=rows,
                        paths=self.paths[sl] if self.paths is not None else None,
                        pil=self.pil[sl] if self.pil is not None else None,
                        header=self.header[sl] if self.header is not None else None)

    def relabel(self, labels: np.ndarray) -> Examples:
        """The same examples (images shared, not copied) with other ``labels``."""
        return Examples(labels, x=self.pixels, rows=self.rows, paths=self.paths, pil=self.pil,
                        header=self.header)

    def __len__(self) -> int:
        return len(self.labels)
