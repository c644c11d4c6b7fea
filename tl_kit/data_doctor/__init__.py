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
cache builds it (``Learner.classifier.feature_model(fold=True)``), in batches, at ``image_size``
(default: the backbone's, 224 for EfficientNet-Lite0; smaller is faster).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.data_doctor import duplicates as _dup
from tl_kit.data_doctor import labels as _lab
from tl_kit.data_doctor import stats as _stats
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


@dataclass
class _Items:
    """Every readable image, in one order: path, split, label and what the pass computed."""

    paths: list[str]
    rels: list[str]
    splits: list[str]
    labels: np.ndarray
    features: np.ndarray
    file_keys: list[str]
    pixel_keys: list[str]
    hashes: np.ndarray
    sizes: list[tuple[int, int]]


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


def _feature_extractor(backbone: str, num_classes: int, image_size: tuple[int, int] | None):
    """(extract(batch) -> features, image size): the learner's folded feature model."""
    import tensorflow as tf

    from tl_kit.train import Learner

    unused = Path(tempfile.gettempdir()) / f"tl_kit-doctor-{os.getpid()}-never-written"
    learner = Learner(backbone, num_classes=max(num_classes, 2), weights="imagenet",
                      image_size=image_size, run_dir=unused, verbose=0, tensorboard=False,
                      save_model=False, strategy="default", precision="float32", jit_compile=False)
    fm = learner.classifier.feature_model(fold=True)
    spec = tf.TensorSpec((None, *fm.input_shape[1:]), tf.float32)
    extract = tf.function(lambda x: fm(x, training=False), input_signature=[spec], autograph=False)
    return extract, learner.image_size, learner.spec.name


def _original_size(path: str) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - decoded by TF but not by Pillow: size unknown
        return (0, 0)


def _scan(data, root: Path, extract, batch_size: int) -> _Items:
    """One pass over every split: features, pixel hashes and perceptual hashes per image."""
    paths, splits, labels, feats, pix, hashes, sizes = [], [], [], [], [], [], []
    for split in ("train", "val", "test"):
        if not data.has(split):
            continue
        sp_paths = data.paths(split)
        sp_sizes = [_original_size(p) for p in sp_paths]
        i = 0
        for x, _ in data.dataset(split, batch_size=batch_size, shuffle=False):
            feats.append(np.asarray(extract(x)))
            for img in x.numpy().astype(np.uint8):
                pix.append(_dup.pixel_sha256(img, sp_sizes[i]))
                hashes.append(_dup.phash(img))
                i += 1
        if i != len(sp_paths):
            raise UserError(f"{len(sp_paths) - i} file(s) in {root} became unreadable during the "
                            f"doctor's pass; run it again. Received: data={str(root)!r}")
        paths += sp_paths
        sizes += sp_sizes
        splits += [split] * len(sp_paths)
        labels.append(data.labels(split))
    rels = [Path(p).relative_to(root).as_posix() for p in paths]
    return _Items(paths=paths, rels=rels, splits=splits, labels=np.concatenate(labels),
                  features=np.concatenate(feats), file_keys=[_dup.file_sha256(p) for p in paths],
                  pixel_keys=pix, hashes=np.array(hashes, np.uint64),
                  sizes=sizes)


def _rel(root: Path):
    def rel(p: str) -> str:
        try:
            return Path(p).relative_to(root).as_posix()
        except ValueError:
            return str(p)
    return rel


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
    from tl_kit.data import _split_subfolders, load_data

    root = _check_folder(data)
    out_dir = _check_out(out, root)
    if not isinstance(folds, int) or folds < 2:
        raise UserError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    if not 0.0 < float(near_cosine) <= 1.0:
        raise UserError(f"`near_cosine` must be in (0, 1]. Received: near_cosine={near_cosine!r}")
    if not isinstance(phash_bits, int) or not -1 <= phash_bits <= 64:
        raise UserError(f"`phash_bits` must be an integer in [-1, 64] (-1: perceptual hash off). "
                        f"Received: phash_bits={phash_bits!r}")
    t0 = time.perf_counter()
    from tl_kit.backbones import get_backbone

    spec = get_backbone(backbone)
    size = image_size if image_size is not None else spec.default_size[:2]
    size = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
    loaded = load_data(str(root), image_size=size, validation_split=0.0, test_split=0.0,
                       record=False, hygiene_index=False, workers=workers)
    t_load = time.perf_counter()
    extract, size, name = _feature_extractor(backbone, loaded.num_classes, size)
    items = _scan(loaded, root, extract, batch_size)
    t_feat = time.perf_counter()
    names = loaded.class_names
    dups = _dup.find_duplicates(items.file_keys, items.pixel_keys, items.features, items.hashes,
                                items.splits, cosine=float(near_cosine), max_bits=int(phash_bits))
    probs = _lab.out_of_fold_probabilities(items.features, items.labels, len(names), folds=folds,
                                           seed=seed)
    issues = _lab.confident_learning(probs, items.labels)
    t_end = time.perf_counter()
    result = DoctorResult(
        duplicates=[{"a": items.rels[i], "b": items.rels[j], "kind": kind, "similarity": round(sim, 6),
                     "cross_split": bool(cross)} for i, j, kind, sim, cross in dups],
        label_issues=[{"path": items.rels[i], "given": names[int(items.labels[i])],
                       "suggested": names[s], "confidence": round(conf, 6)}
                      for i, s, conf, _ in issues],
        class_counts=_stats.class_counts(items.labels, items.splits, names),
        outliers=_stats.outliers(items.rels, items.sizes),
        hygiene=_stats.hygiene_rows(loaded.hygiene, _rel(root)),
        data=str(root),
        settings={"backbone": name, "weights": "imagenet", "image_size": list(size),
                  "layout": "splits" if _split_subfolders(root) else "classes",
                  "images": len(items.rels), "folds": folds, "near_cosine": float(near_cosine),
                  "phash_bits": int(phash_bits), "tiny_class": _stats.TINY_CLASS,
                  "outlier_z": _stats.OUTLIER_Z, "seed": seed,
                  "margins": {items.rels[i]: round(m, 6) for i, _, _, m in issues}},
        timings={"load_s": t_load - t0, "features_s": t_feat - t_load, "analysis_s": t_end - t_feat,
                 "total_s": t_end - t0},
    )
    if out_dir is not None:
        from tl_kit.data_doctor.report import write_report

        result.files = write_report(result, out_dir)
    return result
