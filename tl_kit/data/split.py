"""Which example goes to which split: stratified seeded splits, hash splits, class weights.

The split is stratified per class with a seeded generator: each class is shuffled and
``round(n * validation_split)`` (at least 1) images go to val, likewise for test, the rest
to train, so every class appears in every split (a class too small for that raises a
:class:`~tl_kit.errors.UserError` naming it). A file added after the split manifest was
written goes to a split by a stable hash of ``(seed, relative path)`` with the same
fractions (:func:`hash_split`).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from tl_kit.errors import UserError

__all__ = ["SPLITS", "SPLIT_ALIASES", "check_fracs", "compute_class_weights", "hash_split",
           "split_counts", "split_key", "split_name", "stratified_split"]

SPLITS = ("train", "val", "test")
#: the names a split may be given by ("validation" -> "val")
SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


def split_name(key) -> str | None:
    """The split ``key`` names ("validation" -> "val"), or None."""
    return SPLIT_ALIASES.get(str(key))


def split_key(key, seen: dict, src: dict) -> str:
    """The split a dict key names ("validation" -> "val"); unknown or repeated (already in
    ``seen``) is an error."""
    s = split_name(key)
    if s is None:
        raise UserError(f"Split names must be among {SPLITS}. Received: key={key!r}")
    if s in seen:
        raise UserError(f"Split {s!r} given twice. Received: keys={list(src)!r}")
    return s


def split_counts(n: int, fracs: dict[str, float]) -> dict[str, int]:
    """How many of a class's ``n`` examples go to each split (at least 1 for a fraction > 0)."""
    out = {}
    for s in ("val", "test"):
        f = fracs.get(s, 0.0)
        out[s] = max(1, int(round(n * f))) if f > 0 else 0
    out["train"] = n - out["val"] - out["test"]
    return out


def check_fracs(validation_split: float, test_split: float) -> dict[str, float]:
    """``{"val": validation_split, "test": test_split}`` after checking both fractions."""
    for name, v in (("validation_split", validation_split), ("test_split", test_split)):
        if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise UserError(f"`{name}` must be a fraction in [0, 1). Received: {name}={v!r}")
    if validation_split + test_split >= 1.0:
        raise UserError(
            "`validation_split + test_split` must leave images for training. "
            f"Received: validation_split={validation_split!r}, test_split={test_split!r}"
        )
    return {"val": float(validation_split), "test": float(test_split)}


def stratified_split(labels: np.ndarray, fracs: dict[str, float], seed: int,
                     class_names: list[str], where: str = "") -> dict[str, np.ndarray]:
    """Indices per split, stratified per class with a seeded generator (sorted per split).

    Raises a UserError naming the class (and ``where``) when a class has too few
    examples to appear in every requested split.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    need = 1 + sum(1 for s in ("val", "test") if fracs.get(s, 0) > 0)
    for k, name in enumerate(class_names):
        idx = np.flatnonzero(labels == k)
        if len(idx) == 0:
            continue
        cnt = split_counts(len(idx), fracs)
        if cnt["train"] < 1 or len(idx) < need:
            loc = os.path.join(where, name) if where else f"class {name!r}"
            raise UserError(
                f"Class {name!r} has too few images for the split: {len(idx)} image(s), needs at "
                f"least {need} (one per split: validation_split={fracs.get('val', 0)}, "
                f"test_split={fracs.get('test', 0)}). Add images to {loc} or lower the split "
                f"fractions. Received: {loc}={len(idx)} images"
            )
        idx = rng.permutation(idx)
        parts["val"].append(idx[: cnt["val"]])
        parts["test"].append(idx[cnt["val"]: cnt["val"] + cnt["test"]])
        parts["train"].append(idx[cnt["val"] + cnt["test"]:])
    return {s: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for s, v in parts.items()}


def hash_split(key: str, seed: int, fracs: dict[str, float]) -> str:
    """Stable split of a file added after the manifest was written, from ``(seed, key)``."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < fracs.get("val", 0):
        return "val"
    if h < fracs.get("val", 0) + fracs.get("test", 0):
        return "test"
    return "train"


def compute_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn "balanced" weights ``n / (k * n_c)`` for classes present; 1.0 otherwise."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = {k: 1.0 for k in range(num_classes)}
    if len(labels) and len(present):
        w = compute_class_weight("balanced", classes=present, y=labels)
        for k, v in zip(present, w, strict=True):
            weights[int(k)] = float(v)
    return weights
