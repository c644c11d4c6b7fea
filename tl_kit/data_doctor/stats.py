"""Class counts and imbalance, tiny classes, size / aspect-ratio outliers, hygiene rows."""

from __future__ import annotations

import numpy as np

TINY_CLASS = 10  # a class with fewer images than this (all splits together) is "tiny"
OUTLIER_Z = 3.5  # |robust z| above this (Iglewicz and Hoaglin's modified z-score) is an outlier


def class_counts(labels: np.ndarray, splits: list[str], class_names: list[str]) -> dict:
    """``{"total": {class: n}, "per_split": {split: {class: n}}, "imbalance_ratio": max/min,
    "tiny_classes": [...], "tiny_threshold": TINY_CLASS}``."""
    y = np.asarray(labels, np.int64)
    total = {c: int(np.sum(y == k)) for k, c in enumerate(class_names)}
    per_split = {}
    for s in dict.fromkeys(splits):
        m = np.asarray([t == s for t in splits])
        per_split[s] = {c: int(np.sum(y[m] == k)) for k, c in enumerate(class_names)}
    lo, hi = min(total.values()), max(total.values())
    return {"total": total, "per_split": per_split,
            "imbalance_ratio": float(hi / lo) if lo else float("inf"),
            "tiny_classes": [c for c, n in total.items() if n < TINY_CLASS],
            "tiny_threshold": TINY_CLASS}


def robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745 (x - median) / MAD; with MAD 0, the mean absolute deviation
    times 1.2533 stands in; all zeros when the values do not vary."""
    v = np.asarray(values, np.float64)
    med = np.median(v)
    mad = np.median(np.abs(v - med))
    if mad > 0:
        return 0.6745 * (v - med) / mad
    mean_ad = np.mean(np.abs(v - med))
    return (v - med) / (1.2533 * mean_ad) if mean_ad > 0 else np.zeros_like(v)


def outliers(paths: list[str], sizes: list[tuple[int, int]], z_max: float = OUTLIER_Z) -> list[dict]:
    """Images whose log pixel count or log aspect ratio (width / height) is an outlier:
    ``{"path", "width", "height", "kind": "size"|"aspect", "z"}``, largest |z| first."""
    wh = np.asarray(sizes, np.float64).reshape(-1, 2)
    if len(wh) < 3:
        return []
    out = []
    for kind, v in (("size", np.log(wh[:, 0] * wh[:, 1])), ("aspect", np.log(wh[:, 0] / wh[:, 1]))):
        z = robust_z(v)
        for i in np.flatnonzero(np.abs(z) > z_max):
            out.append({"path": paths[i], "width": int(wh[i, 0]), "height": int(wh[i, 1]),
                        "kind": kind, "z": round(float(z[i]), 3)})
    out.sort(key=lambda r: -abs(r["z"]))
    return out


def hygiene_rows(records, rel) -> list[dict]:
    """The loader's hygiene records that say something: skipped files and converted ones
    (``{"path", "class", "status", "reason", "decoder"}``, paths through ``rel``)."""
    return [{"path": rel(r.path), "class": r.label, "status": r.status, "reason": r.reason,
             "decoder": r.decoder}
            for r in records if r.status != "ok" or r.reason]
