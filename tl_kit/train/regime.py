"""Which recipe a fit runs (the one given, or the regime's built-in one) and why."""

from __future__ import annotations

from typing import Any

from tl_kit.recipes import Recipe, builtin_recipe, choose_regime, scratch_recipe

__all__ = ["resolve_recipe", "random_feature_warnings"]

NO_WEIGHTS_REASON = (
    "no pretrained weights (weights=None): random features are meaningless, so there is no "
    "head-only or feature-cache stage; every layer trains from the start with BatchNorm in "
    "training mode (the scratch recipe)")


def resolve_recipe(recipe: Recipe | None, regime: str, weights: Any, data=None,
                   reason: str = "") -> tuple[Recipe, str, str]:
    """``(recipe, regime, reason)`` for a fit: ``recipe`` when given; else ``regime``'s
    built-in recipe, ``"auto"`` choosing from the data's images per class
    (:func:`tl_kit.recipes.choose_regime`) and, without pretrained weights, always
    ``"scratch"``. ``reason`` (a previous one) is kept for a given recipe."""
    if recipe is not None:
        return recipe, regime, reason or f"recipe {recipe.name!r} given"
    if regime == "scratch":
        return scratch_recipe(), regime, "regime='scratch' requested"
    if regime == "auto":
        if weights is None:
            return scratch_recipe(), "scratch", NO_WEIGHTS_REASON
        regime, reason = choose_regime(data.info.split_counts.get("train", data.info.counts))
    else:
        reason = f"regime={regime!r} requested"
    return builtin_recipe(regime), regime, reason


def random_feature_warnings(recipe: Recipe, weights: Any, classifier) -> list[str]:
    """Warnings for a recipe meant for pretrained weights run with ``weights=None``:
    head-only stages (a classifier on random features) and BatchNorm in inference mode
    (random moving statistics)."""
    if weights is not None:
        return []
    out = []
    head_only = [s.name for s in recipe.stages if s.head_only and s.epochs > 0]
    if head_only:
        out.append(
            f"WARNING: weights=None with recipe {recipe.name!r}: its head-only stage(s) "
            f"{', '.join(map(repr, head_only))} train a classifier on RANDOM backbone "
            "features, which is meaningless. Use regime='scratch' (or regime='auto', which "
            "picks it without pretrained weights), or pretrained weights.")
    frozen_bn = [s.name for s in recipe.stages if not s.head_only and not s.train_bn and s.epochs > 0]
    if classifier.batchnorm_layers() and frozen_bn:
        out.append(
            f"WARNING: weights=None with BatchNorm in inference mode in stage(s) "
            f"{', '.join(map(repr, frozen_bn))}: the random initial moving statistics can "
            "make a deep network's features vanish and training stall at loss ln(K). Set "
            "train_bn=True in those stages, or use regime='scratch'.")
    return out
