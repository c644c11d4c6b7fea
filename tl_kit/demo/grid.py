"""The demos' experiment grid: labelled samples per cell, the summary per column, paired gains.

A grid is ``labels_per_class`` x seeds x regimes; each cell is one training run scored on
the task's test images. Every regime of one ``(k, seed)`` sees the same labelled images
(:func:`split_for`), so columns are compared seed by seed (:func:`paired_gain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["REGIMES", "sample", "split_for", "summarise", "cell", "paired_gain", "say_for"]

REGIMES = ("small", "medium", "large", "scratch")


def sample(y: np.ndarray, classes: Sequence[int], k: int, rng: np.random.Generator,
           exclude: Sequence[int] = ()) -> np.ndarray:
    """``k`` indices per class of ``y`` (in ``classes`` order), none of them in ``exclude``."""
    excl = set(int(i) for i in exclude)
    idx = []
    for c in classes:
        pool = [i for i in np.flatnonzero(y == c) if i not in excl]
        idx.extend(rng.choice(pool, size=k, replace=False).tolist())
    return np.array(idx)


def split_for(y: np.ndarray, num_classes: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The cell ``(k, seed)``'s training and validation indices: ``k`` per class each,
    disjoint, drawn from ``y`` with the generator seeded ``1000 * k + seed``."""
    rng = np.random.default_rng(1000 * k + seed)
    tr = sample(y, range(num_classes), k, rng)
    va = sample(y, range(num_classes), k, rng, exclude=tr)
    return tr, va


def summarise(rows: list[dict[str, Any]], labels_per_class: Sequence[int],
              regimes: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and std of test accuracy (and mean seconds) per ``(k, regime)`` present in ``rows``."""
    out = []
    for k in labels_per_class:
        for regime in regimes:
            cells = [r for r in rows if r["labels_per_class"] == k and r["regime"] == regime]
            if not cells:
                continue
            accs = [r["test_accuracy"] for r in cells]
            out.append({"labels_per_class": k, "regime": regime, "mean": float(np.mean(accs)),
                        "std": float(np.std(accs)), "n": len(accs),
                        "seconds": float(np.mean([r["seconds"] for r in cells]))})
    return out


def cell(summary: list[dict[str, Any]], k: int, regime: str) -> dict[str, Any]:
    """The summary entry of ``(k, regime)``."""
    return next(s for s in summary if s["labels_per_class"] == k and s["regime"] == regime)


def paired_gain(rows: list[dict[str, Any]], k: int, regime: str, baseline: str = "scratch") -> list[float]:
    """Per seed: accuracy of ``regime`` minus ``baseline`` at ``k`` labels per class."""
    acc = {(r["seed"], r["regime"]): r["test_accuracy"] for r in rows if r["labels_per_class"] == k}
    return [acc[(s, regime)] - acc[(s, baseline)] for s, reg in sorted(acc) if reg == baseline
            and (s, regime) in acc]


def say_for(verbose: int):
    """``print`` when ``verbose``, else a function that prints nothing."""
    return print if verbose else (lambda *a, **k: None)
