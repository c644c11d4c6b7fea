"""The data doctor: duplicates (and leakage across splits), likely label errors, class
balance, size outliers and hygiene of an image folder, from pretrained features.

``doctor("photos")`` reads a folder with one sub-folder per class, or a split layout
(``photos/train/<class>``, ``photos/val/<class>``, ``photos/test/<class>``, as
:func:`tl_kit.load_data` detects it). Nothing in the data folder is written or changed.

* Exact duplicates: the same file bytes (SHA-256), or the same decoded pixels (at the
  doctor's image size, with the same original size). Near duplicates: cosine similarity of
  the L2-normalised pretrained features >= ``near_cosine`` (0.97), or 64-bit DCT perceptual
  hashes within ``phash_bits`` (6) bits. ``cross_split`` is True when the two images are in
  different splits: test images leaking into training.
* Label issues: confident learning (Northcutt et al. 2021) on out-of-fold probabilities
  of multinomial logistic-regression heads (stratified 5-fold) trained on the cached
  features; each with the suggested class and its out-of-fold probability.
* Class counts per split, imbalance ratio (largest / smallest class), tiny classes
  (< 10 images), size and aspect-ratio outliers (robust z-score of the log values > 3.5)
  and the loader's hygiene records (skipped, corrupt and converted files).

Features: the backbone (ImageNet weights) with BatchNorm folded, as the learner's feature
cache builds it (``Learner.classifier.feature_model(fold=True)``, see :func:`~tl_kit.data_doctor.scan.folded_feature_model`), in batches, at ``image_size``
(default: the backbone's, 224 for EfficientNet-Lite0; smaller is faster).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.data_doctor import duplicates as _dup
from tl_kit.data_doctor import labels as _lab
from tl_kit.data_doctor import stats as _stats
from tl_kit.data_doctor.scan import Items, feature_extractor, scan
from tl_kit.errors import UserError

__all__ = ["DoctorResult", "doctor"]

JSON_KEYS = ("duplicates", "label_issues", "class_counts", "outliers", "hygiene")


@dataclass
class DoctorResult:
    """What the doctor found (``to_dict()`` is the content of doctor.json)."""

    duplicates: list[dict]
    label_issues: list[dict]
    class_counts: dict
    outliers: list[dict]
    hygiene: list[dict]
    data: str = ""
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The five sections of doctor.json."""
        return {k: getattr(self, k) for k in JSON_KEYS}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __str__(self) -> str:
        from tl_kit.data_doctor.report import summary_table

        return summary_table(self)


def _check_folder(data) -> Path:
    if not isinstance(data, (str, os.PathLike)):
        raise UserError(f"`data` must be a folder path. Received: data={type(data).__name__}")
    root = Path(data).expanduser()
    if not root.exists():
        raise UserError(f"Data folder not found: {root}. Received: data={str(data)!r}")
    if not root.is_dir():
        raise UserError(f"`data` must be a folder with one sub-folder per class (or train/val/test "
                        f"folders). Received: data={str(data)!r}")
    return root


def _check_out(out, root: Path) -> Path | None:
    if out is None:
        return None
    out = Path(out).expanduser()
    r, o = root.resolve(), out.resolve()
    if o == r or r in o.parents:
        raise UserError(f"The doctor never writes into the data folder; choose --out outside {root}. "
                        f"Received: out={str(out)!r}")
    if out.exists() and not out.is_dir():
        raise UserError(f"`out` must be a folder, got a file: {out}. Received: out={str(out)!r}")
    return out


def _rel(root: Path):
    def rel(p: str) -> str:
        try:
            return Path(p).relative_to(root).as_posix()
        except ValueError:
            return str(p)
    return rel


def _check_settings(folds, near_cosine, phash_bits) -> None:
    if not isinstance(folds, int) or folds < 2:
        raise UserError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    if not 0.0 < float(near_cosine) <= 1.0:
        raise UserError(f"`near_cosine` must be in (0, 1]. Received: near_cosine={near_cosine!r}")
    if not isinstance(phash_bits, int) or not -1 <= phash_bits <= 64:
        raise UserError(f"`phash_bits` must be an integer in [-1, 64] (-1: perceptual hash off). "
                        f"Received: phash_bits={phash_bits!r}")


def _image_size(backbone: str, image_size) -> tuple[int, int]:
    """``image_size`` as (height, width), default the backbone's."""
    from tl_kit.backbones import get_backbone

    spec = get_backbone(backbone)
    size = image_size if image_size is not None else spec.default_size[:2]
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)


def _result(root: Path, loaded, items: Items, dups, issues, settings: dict,
            timings: dict) -> DoctorResult:
    """The findings by relative path and class name, with the settings they were made at."""
    from tl_kit.data import split_subfolders

    names = loaded.class_names
    return DoctorResult(
        duplicates=[{"a": items.rels[i], "b": items.rels[j], "kind": kind, "similarity": round(sim, 6),
                     "cross_split": bool(cross)} for i, j, kind, sim, cross in dups],
        label_issues=[{"path": items.rels[i], "given": names[int(items.labels[i])],
                       "suggested": names[s], "confidence": round(conf, 6)}
                      for i, s, conf, _ in issues],
        class_counts=_stats.class_counts(items.labels, items.splits, names),
        outliers=_stats.outliers(items.rels, items.sizes),
        hygiene=_stats.hygiene_rows(loaded.hygiene, _rel(root)),
        data=str(root),
        settings={"backbone": settings["backbone"], "weights": "imagenet",
                  "image_size": settings["image_size"],
                  "layout": "splits" if split_subfolders(root) else "classes",
                  "images": len(items.rels), "folds": settings["folds"],
                  "near_cosine": settings["near_cosine"], "phash_bits": settings["phash_bits"],
                  "tiny_class": _stats.TINY_CLASS, "outlier_z": _stats.OUTLIER_Z,
                  "seed": settings["seed"],
                  "margins": {items.rels[i]: round(m, 6) for i, _, _, m in issues}},
        timings=timings,
    )


def doctor(data: str | os.PathLike, backbone: str = "efficientnet_lite0", *,
           image_size: int | tuple[int, int] | None = None, out: str | os.PathLike | None = None,
           folds: int = _lab.FOLDS, near_cosine: float = _dup.NEAR_COSINE,
           phash_bits: int = _dup.PHASH_HAMMING, seed: int = 0, batch_size: int = 64,
           workers: int | None = None) -> DoctorResult:
    """Examine an image folder; with ``out``, write doctor.json, doctor.md and suspects.png.

    Args:
        data: a folder with one sub-folder per class, or with train/val/test sub-folders
            each holding class folders. Never modified.
        backbone: a registered backbone with ImageNet weights (EfficientNet-Lite0 works
            offline).
        image_size: the size images are resized to for the features (default: the
            backbone's; 224 for Lite0).
        out: folder for the report (must be outside ``data``); None writes nothing.
        folds: k of the stratified k-fold cross-validation of the heads.
        near_cosine: feature cosine at or above which two images are near duplicates.
        phash_bits: perceptual-hash distance (bits of 64) at or below which they are.
        seed: fold assignment seed.
        batch_size: images per feature batch.
        workers: decoding threads (default: the loader's).

    Returns:
        A :class:`DoctorResult` (``result.to_dict()`` is doctor.json).

    Example:
    ```python
    result = tl_kit.doctor("photos", image_size=160, out="runs/doctor-photos")
    print(result.label_issues[:5])
    ```
    """
    from tl_kit.data import load_data

    root = _check_folder(data)
    out_dir = _check_out(out, root)
    _check_settings(folds, near_cosine, phash_bits)
    t0 = time.perf_counter()
    size = _image_size(backbone, image_size)
    loaded = load_data(str(root), image_size=size, validation_split=0.0, test_split=0.0,
                       record=False, hygiene_index=False, workers=workers)
    t_load = time.perf_counter()
    extract, size, name = feature_extractor(backbone, loaded.num_classes, size)
    items = scan(loaded, root, extract, batch_size)
    t_feat = time.perf_counter()
    names = loaded.class_names
    dups = _dup.find_duplicates(items.file_keys, items.pixel_keys, items.features, items.hashes,
                                items.splits, cosine=float(near_cosine), max_bits=int(phash_bits))
    probs = _lab.out_of_fold_probabilities(items.features, items.labels, len(names), folds=folds,
                                           seed=seed)
    issues = _lab.confident_learning(probs, items.labels)
    t_end = time.perf_counter()
    settings = {"backbone": name, "image_size": list(size), "folds": folds,
                "near_cosine": float(near_cosine), "phash_bits": int(phash_bits), "seed": seed}
    timings = {"load_s": t_load - t0, "features_s": t_feat - t_load, "analysis_s": t_end - t_feat,
               "total_s": t_end - t0}
    result = _result(root, loaded, items, dups, issues, settings, timings)
    if out_dir is not None:
        from tl_kit.data_doctor.report import write_report

        result.files = write_report(result, out_dir)
    return result
