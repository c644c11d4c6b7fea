"""Labelled image batches for evaluation from arrays, a ``tf.data.Dataset`` or a ``Data``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tl_kit.errors import UserError

__all__ = ["iter_batches", "labels_to_int"]


def labels_to_int(labels) -> np.ndarray:
    """Integer class labels (N,) from integer (N,) or one-hot (N, num_classes) labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.argmax(axis=-1).astype(np.int64)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    raise UserError(
        "Labels must be integers (N,) or one-hot (N, num_classes). "
        f"Received: labels.shape={labels.shape}"
    )


def _default_split(data) -> str:
    for split in ("test", "val"):
        if data.has(split):
            return split
    return "train"


def _array_batches(data, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    images = np.asarray(data[0], np.float32)
    labels = labels_to_int(data[1])
    if images.ndim != 4 or len(images) != len(labels):
        raise UserError(
            "Expected (images (N,H,W,C), labels (N,)) with matching N. "
            f"Received: images.shape={images.shape}, labels.shape={labels.shape}"
        )
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def iter_batches(
    data, *, split: str | None = None, batch_size: int = 32
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(images float32 (B,H,W,C), int labels (B,))`` from any supported source.

    ``data`` is ``(x, y)`` arrays (y integer or one-hot), a ``tf.data.Dataset`` of
    ``(images, labels)`` batches, or a ``tl_kit.data.Data`` (``split`` defaults to "test",
    else "val", else "train").
    """
    if isinstance(data, tuple | list) and len(data) == 2:
        yield from _array_batches(data, batch_size)
        return
    if hasattr(data, "dataset") and hasattr(data, "has"):
        split = split or _default_split(data)
        data = data.dataset(split, batch_size=batch_size, training=False, shuffle=False)
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        for images, labels in data.as_numpy_iterator():
            yield np.asarray(images, np.float32), labels_to_int(labels)
        return
    raise UserError(
        "data must be (images, labels) arrays, a tf.data.Dataset of (images, labels) or a "
        f"tl_kit Data object. Received: data={type(data).__name__}"
    )
