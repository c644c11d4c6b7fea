"""The augmentation operations: names, default parameters, aliases and ImageNet's PCA colour axes."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ALBU_ONLY", "ALIASES", "BATCH_OPS", "IMAGENET_EIGVALS", "IMAGENET_EIGVECS", "OPS",
           "pca_eigen"]

#: AlexNet / fb.resnet.torch ImageNet RGB eigenvalues (pixels in [0, 1]) and eigenvectors
#: (one per COLUMN).
IMAGENET_EIGVALS = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVECS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

#: Every operation with its default parameters.
OPS: dict[str, dict[str, Any]] = {
    "flip": {"p": 0.5},
    "random_crop": {"scale": 0.875, "p": 1.0},
    "random_resized_crop": {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3), "p": 1.0},
    "color_shift": {"max_offset": 20.0, "offsets": None, "p": 0.5},
    "pca_color": {"std": 0.1, "eigvals": IMAGENET_EIGVALS, "eigvecs": IMAGENET_EIGVECS, "p": 1.0},
    "rotation": {"degrees": 15.0, "p": 0.5},
    "brightness": {"max_delta": 0.2, "p": 0.5},
    "contrast": {"lower": 0.8, "upper": 1.2, "p": 0.5},
    "coarse_dropout": {"size": 0.25, "p": 0.5},
    "clahe": {"clip_limit": 2.0, "p": 0.5},
    "grid_distortion": {"distort_limit": 0.3, "p": 0.3},
    "mixup": {"alpha": 0.2, "p": 1.0},
    "cutmix": {"alpha": 1.0, "p": 1.0},
}

#: Other names accepted for an op.
ALIASES = {"mirror": "flip", "horizontal_flip": "flip", "hflip": "flip", "crop": "random_crop",
           "rrc": "random_resized_crop", "pca": "pca_color", "fancy_pca": "pca_color",
           "rotate": "rotation", "cutout": "coarse_dropout", "rgb_shift": "color_shift"}

#: Ops on the whole batch (pairing images); they run after the per-image ops.
BATCH_OPS = ("mixup", "cutmix")

#: Ops only the albumentations backend has.
ALBU_ONLY = ("clahe", "grid_distortion")


def pca_eigen(images) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the RGB covariance of ``images``.

    ``images``: array (N, H, W, 3) in [0, 255]; computed on pixels scaled to [0, 1], the
    scale of ImageNet's published values. Pass them as ``{"name": "pca_color", "eigvals":
    ..., "eigvecs": ...}``.
    """
    px = np.asarray(images, np.float64).reshape(-1, 3) / 255.0
    if len(px) > 1_000_000:
        px = px[np.random.default_rng(0).choice(len(px), 1_000_000, replace=False)]
    vals, vecs = np.linalg.eigh(np.cov(px, rowvar=False))
    order = np.argsort(vals)[::-1]
    return vals[order].astype(np.float32), vecs[:, order].astype(np.float32)
