"""Matplotlib for tl_kit's PNG plots: the Agg backend, a figure that is always closed, and
one way to save it.

Example:
```python
with figure(1, 2, figsize=(12, 4), squeeze=False) as (fig, axes):
    axes[0, 0].plot([1, 2, 3])
    save_figure(fig, "runs/pets/plots/curve.png")
```
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["pyplot", "figure", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (unless one is already set)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def figure(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """``plt.subplots(*args, **kwargs)`` as ``(fig, axes)``; the figure is closed on exit,
    also when drawing fails."""
    plt = pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Lay out ``fig`` tightly, create the folders above ``path``, save it there as a PNG
    at ``dpi`` and close it; returns ``Path(path)``."""
    try:
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    finally:
        pyplot().close(fig)
    return Path(path)
