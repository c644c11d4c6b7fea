"""Input shapes given as text (``"224,224,3"``, ``"224x224x3"``) or sequences."""

from __future__ import annotations

import re

from tl_kit.errors import UserError

__all__ = ["parse_input_shape"]


def parse_input_shape(value) -> tuple[int, ...] | None:
    """Parse ``"224,224,3"``, ``"224x224x3"`` or a sequence into a tuple of ints.

    Two numbers ``"H,W"`` are returned as ``(H, W)``; :func:`summary` then takes the
    channels from the model's default input.
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,xX\s]+", value.strip().strip("()[]")) if p]
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            dims = ()
    else:
        try:
            dims = tuple(int(d) for d in value)
        except (TypeError, ValueError):
            dims = ()
    if len(dims) not in (2, 3) or any(d < 1 for d in dims):
        raise UserError(
            "The input shape must be H,W,C (or HxWxC) with positive integers, e.g. 224,224,3. "
            f"Received: input_shape={value!r}"
        )
    return dims
