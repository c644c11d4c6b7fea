"""Offline end-to-end demos of transfer learning on real images the installed packages ship.

``tl-kit demo`` (``task="photos"``, :func:`run_photo_demo`, :mod:`tl_kit.demo.photo_demo`):
ImageNet EfficientNet-Lite0 (bundled, no network) transferred to 8 classes of photo crops
(:mod:`tl_kit.demo.photos`) at 1, 5 and 20 labels per class, small / medium / large
against scratch, 3 seeds paired by seed; the cells run on networks built once
(:mod:`tl_kit.demo.lite0`). ``tl-kit demo --task digits`` (:func:`run_digits_demo`,
:mod:`tl_kit.demo.digits`): LeNet-5 pretrained on digits 0-4, transferred to 5-9.

Modules: ``photos`` (the photo task), ``digits`` (the digits task and its experiment),
``grid`` (samples per cell, summaries, paired gains), ``lite0`` (the photo cells),
``photo_demo`` (the photo experiment), ``report`` (table, CSV/JSON/text, plot).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tl_kit.demo.digits import (
    ABLATION_MAX_K,
    ABLATIONS,
    DEMO_AUGMENT,
    digits_32,
    digits_findings,
    digits_recipes,
    run_digits_demo,
)
from tl_kit.demo.grid import REGIMES, paired_gain, sample, split_for, summarise
from tl_kit.demo.photo_demo import (
    PHOTO_AUGMENT,
    SCRATCH_STEPS,
    photo_findings,
    photo_recipes,
    run_photo_demo,
)
from tl_kit.demo.photos import PHOTO_CLASSES, PHOTO_POOL, PHOTO_SIZE, PHOTO_TEST, photo_patches
from tl_kit.demo.report import save_results, table

__all__ = ["run_demo", "run_digits_demo", "run_photo_demo", "photo_patches", "digits_32",
           "DEMO_AUGMENT", "PHOTO_CLASSES", "PHOTO_SIZE", "PHOTO_POOL", "PHOTO_TEST", "PHOTO_AUGMENT",
           "SCRATCH_STEPS", "REGIMES", "ABLATIONS", "ABLATION_MAX_K", "paired_gain", "sample",
           "split_for", "summarise", "table", "save_results", "digits_recipes", "digits_findings",
           "photo_recipes", "photo_findings"]

# Names scripts and benchmarks import from tl_kit.demo (benchmarks/bench_recipe.py).
_sample = sample
_recipes = digits_recipes


def run_demo(
    out_dir: str | os.PathLike = "runs/demo",
    seeds: Sequence[int] = (0, 1, 2),
    labels_per_class: Sequence[int] = (1, 5, 20),
    quick: bool = False,
    epochs: int | None = None,
    pretrain_epochs: int | None = None,
    verbose: int = 1,
    *,
    task: str = "photos",
    **kwargs: Any,
) -> dict[str, Any]:
    """``tl-kit demo``: ``task="photos"`` (default, :func:`run_photo_demo`: ImageNet
    EfficientNet-Lite0 transferred to photo crops) or ``task="digits"``
    (:func:`run_digits_demo`: LeNet-5 pretrained on digits 0-4, transferred to 5-9)."""
    if task == "digits":
        return run_digits_demo(out_dir, seeds, labels_per_class, quick, epochs, pretrain_epochs,
                               verbose, **kwargs)
    if task != "photos":
        from tl_kit.errors import UserError

        raise UserError(f"Unknown demo task; choose 'photos' or 'digits'. Received: task={task!r}")
    if pretrain_epochs is not None:
        from tl_kit.errors import UserError

        raise UserError("The photo demo has no pretraining run (ImageNet weights are bundled); "
                        f"pretrain_epochs is for task='digits'. Received: pretrain_epochs={pretrain_epochs!r}")
    return run_photo_demo(out_dir, seeds, labels_per_class, quick, epochs, verbose=verbose, **kwargs)
