"""Warnings attributed to the line that called into ``tl_kit.data`` (not to a helper)."""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn"]


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message)`` at the first frame outside the ``tl_kit.data`` package."""
    depth = 1
    frame = sys._getframe(1)
    while frame is not None and _inside(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        depth += 1
    warnings.warn(message, category, stacklevel=depth + 1)


def _inside(module: str) -> bool:
    return module == "tl_kit.data" or module.startswith("tl_kit.data.")
