"""The doctor's one pass over the images: pretrained features (the learner's folded
feature model), pixel and file hashes, perceptual hashes and original sizes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.data_doctor import duplicates as _dup
from tl_kit.errors import UserError

__all__ = ["Items", "feature_extractor", "folded_feature_model", "scan"]


@dataclass
class Items:
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


def folded_feature_model(learner: Any) -> Any:
    """The learner's feature model with BatchNorm folded (what its feature cache runs); the
    doctor's one call into the learner's feature-model internals."""
    return learner.classifier.feature_model(fold=True)


def feature_extractor(backbone: str, num_classes: int, image_size: tuple[int, int] | None
                      ) -> tuple[Callable, tuple[int, int], str]:
    """``(extract(batch) -> features, image size, backbone name)`` of the learner's folded
    feature model (ImageNet weights); the learner's run folder is never written."""
    import tensorflow as tf

    from tl_kit.train import Learner

    unused = Path(tempfile.gettempdir()) / f"tl_kit-doctor-{os.getpid()}-never-written"
    learner = Learner(backbone, num_classes=max(num_classes, 2), weights="imagenet",
                      image_size=image_size, run_dir=unused, verbose=0, tensorboard=False,
                      save_model=False, strategy="default", precision="float32", jit_compile=False)
    fm = folded_feature_model(learner)
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


def scan(data, root: Path, extract, batch_size: int) -> Items:
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
    return Items(paths=paths, rels=rels, splits=splits, labels=np.concatenate(labels),
                  features=np.concatenate(feats), file_keys=[_dup.file_sha256(p) for p in paths],
                  pixel_keys=pix, hashes=np.array(hashes, np.uint64),
                  sizes=sizes)
