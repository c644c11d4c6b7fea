"""Preview grids: a PNG of augmented training images, one title (class, mix weight) each.

:func:`save_augmentation_grid` takes the images themselves; :func:`save_augmentation_preview`
takes a loaded data object (anything with ``arrays(split)``, ``info.class_names``), or a
source plus the ``load`` function that loads it. This module never imports the loader:
the data layer calls augmentation, not the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.augment.build import build_augmenter
from tl_kit.errors import UserError

__all__ = ["save_augmentation_grid", "save_augmentation_preview"]


def _check_n(n) -> None:
    if not isinstance(n, int) or n < 1:
        raise UserError(f"`n` must be a positive integer. Received: n={n!r}")


def _augment_sample(images, labels, num_classes: int, policy, n: int, backend: str, seed: int):
    """``n`` images drawn at random (seeded) from ``images``, augmented: (images, soft labels)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), n, replace=len(images) < n)
    fn = build_augmenter(policy, image_size=images.shape[1:3], backend=backend, seed=seed)
    xa, ya = fn(tf.constant(images[idx]), tf.one_hot(np.asarray(labels)[idx], num_classes))
    return np.asarray(xa), np.asarray(ya)


def _draw_grid(xa, ya, class_names: Sequence[str], title: str, out: Path, columns: int | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(xa)
    cols = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = np.clip(xa[i], 0, 255).astype(np.uint8)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        label = class_names[int(ya[i].argmax())]
        if ya[i].max() < 0.999:
            label += f" {ya[i].max():.2f}"
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def save_augmentation_grid(images, labels, out_png, *, class_names: Sequence[str],
                           policy: str | list | None = "standard", n: int = 16,
                           backend: str = "tf", seed: int = 0, columns: int | None = None) -> Path:
    """Save a grid PNG of ``n`` images drawn from ``images`` and augmented by ``policy``.

    ``images``: float32 array (N, H, W, C) in [0, 255]; ``labels``: int class ids (N,), indices
    into ``class_names``. Titles give the (top) class and, after mixup/cutmix, its weight.
    Returns the path written.
    """
    _check_n(n)
    images = np.asarray(images, np.float32)
    xa, ya = _augment_sample(images, labels, len(class_names), policy, n, backend, seed)
    name = policy if isinstance(policy, str) or policy is None else "custom"
    return _draw_grid(xa, ya, class_names, f"augmentation: {name} ({backend})", Path(out_png), columns)


def _default_load() -> Callable[..., Any]:
    # Backward compatibility for callers that pass a folder without ``load=``: the package's
    # public lazy export, so this module has no dependency on the data layer's module.
    import tl_kit

    return tl_kit.load_data


def save_augmentation_preview(data_or_dir, out_png, policy: str | list | None = "standard", n: int = 16,
                              *, backend: str = "tf", image_size=(128, 128), split: str = "train",
                              seed: int = 0, columns: int | None = None,
                              load: Callable[..., Any] | None = None) -> Path:
    """Save a grid PNG of ``n`` augmented training images (matplotlib).

    ``data_or_dir``: a loaded data object (:class:`tl_kit.data.Data`: anything with
    ``arrays(split)`` and ``info.class_names``), or a source (a folder, loaded at
    ``image_size``) that ``load(source, image_size=..., validation_split=0.0, seed=...)``
    turns into one; ``load`` defaults to :func:`tl_kit.load_data`. Titles give the (top)
    class and, after mixup/cutmix, its weight. Returns the path written.
    """
    _check_n(n)
    data = data_or_dir
    if not (hasattr(data, "arrays") and hasattr(data, "info")):
        data = (load or _default_load())(data_or_dir, image_size=image_size, validation_split=0.0,
                                         seed=seed)
    x, y = data.arrays(split)
    return save_augmentation_grid(x, y, out_png, class_names=data.info.class_names, policy=policy,
                                  n=n, backend=backend, seed=seed, columns=columns)
