"""The learner's settings and the checks a fit makes before it trains: options, image size,
the default run directory, the classes of the data, the epochs of a recipe and the resolved
configuration written to ``config.toml`` (the run's identity)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tl_kit.errors import UserError
from tl_kit.recipes import Recipe

__all__ = ["check_options", "image_size_for", "new_run_dir", "check_trainable_classes",
           "check_epochs", "check_num_classes", "run_config", "prepare_training", "REGIMES"]

REGIMES = ("auto", "small", "medium", "large", "scratch")


def check_options(regime: str, jit_compile: Any) -> None:
    if jit_compile not in (True, False, "auto"):
        raise UserError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
    if regime not in REGIMES:
        raise UserError(
            "`regime` must be 'auto', 'small', 'medium', 'large' or 'scratch'. "
            f"Received: regime={regime!r}")


def image_size_for(image_size: int | Sequence[int] | None, recipe: Recipe | None,
                   default: Sequence[int]) -> tuple[int, int]:
    """``image_size``, else the recipe's, else ``default`` (the backbone's), as ``(H, W)``."""
    size = image_size if image_size is not None else (
        recipe.image_size if recipe and recipe.image_size else None)
    if size is None:
        size = default[:2]
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def new_run_dir(name: str) -> Path:
    """``runs/<backbone>-<time>``, with a suffix when that folder exists already."""
    base = Path("runs", f"{name.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, i = base, 2
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def check_trainable_classes(data) -> None:
    """A classifier needs two classes or more: one class fails before any training."""
    info = data.info
    if info.num_classes < 2:
        names = ", ".join(map(str, info.class_names)) or "none"
        raise UserError(
            f"The data {info.source!r} has {info.num_classes} class ({names}); training a "
            "classifier needs at least 2 (for a folder: one sub-folder per class). "
            f"Received: data={info.source!r}")


def check_num_classes(num_classes: int | None, data) -> None:
    """The data's number of classes must be the model's."""
    info = data.info
    if num_classes is not None and info.num_classes != num_classes:
        raise UserError(
            f"The model has {num_classes} classes but the data {info.source!r} has "
            f"{info.num_classes} ({', '.join(info.class_names)}). Pass num_classes="
            f"{info.num_classes}, or data with {num_classes} classes. "
            f"Received: data={info.source!r}")


def check_epochs(recipe: Recipe, fitted: bool) -> None:
    """A first fit must train: a recipe of 0 epochs in all would save an untrained model
    as a complete run. (A model fitted before may take a 0-epoch recipe, to change its
    head's dropout, say.)"""
    if not fitted and sum(stage.epochs for stage in recipe.stages) < 1:
        raise UserError(
            f"The recipe {recipe.name!r} trains for 0 epochs in all, which would save an "
            "untrained model as a complete run; give at least one stage 1 epoch or more. "
            f"Received: epochs={[stage.epochs for stage in recipe.stages]}")


def run_config(learner, recipe: Recipe, data) -> dict:
    """The resolved settings written to config.toml (the run's identity, see
    :func:`tl_kit.rundir.config_differences`, plus how it ran)."""
    return {
        "run": {
            "backbone": learner.spec.name,
            "weights": str(learner.weights) if learner.weights is not None else "none",
            "regime": recipe.name,
            "regime_reason": learner.regime_reason,
            "image_size": list(learner.image_size),
            "channels": learner.channels,
            "num_classes": int(learner.num_classes),
            "class_names": list(learner.class_names),
            "head_pool": learner.classifier.head_pool,
            "seed": learner.seed,
            "data_source": data.info.source,
            "strategy": type(learner.strategy).__name__,
            "replicas": int(learner.strategy.num_replicas_in_sync),
            "precision": learner.precision,
            "jit_compile": str(learner.jit_compile),
        },
        "recipe": recipe.to_dict(),
    }


def prepare_training(learner, data) -> tuple[Any, Recipe, bool]:
    """Every check of :meth:`tl_kit.train.Learner.fit` before training (run directory,
    data, classes, recipe, settings, free space) and config.toml; returns the data, the
    resolved recipe and whether the run resumes. Call inside ``learner.rundir.preparing()``."""
    learner.rundir.check_writable()  # writable, not a complete run (unless overwrite): BEFORE data
    learner.rundir.refuse_complete(learner.overwrite)
    learner.rundir.append_log(*learner._log_lines)
    learner._log_lines = []
    learner.data = data = learner.load_data(data)
    check_trainable_classes(data)
    learner.adopt_class_names(data)
    if learner.model is None:
        learner.build(data.info.num_classes)
    recipe = learner.resolve_recipe(data)
    check_epochs(recipe, learner._fitted)
    learner.resolved_recipe = recipe
    learner.log(f"regime: {recipe.name} - {learner.regime_reason}")
    config = run_config(learner, recipe, data)
    resuming = learner.rundir.resumes(config, learner.overwrite)
    if learner.save_model:
        # model.keras + per stage: 2 checkpoints (weights + up to 2 optimizer slots) + best
        # + stage weights; a generous bound that still catches a full disk.
        learner.rundir.check_free_space(int(learner.model.count_params() * 4 * (2 + 8 * len(recipe.stages)))
                                     + (16 << 20))
    learner.rundir.write_config(config)
    return data, recipe, resuming
