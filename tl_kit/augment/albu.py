"""The ``"albumentations"`` backend: per-image ops with albumentations (OpenCV) on uint8 images.

:func:`albu_batch_fn` gives a NumPy function over a float32 batch, run by
:func:`tl_kit.augment.build_augmenter` through ``tf.numpy_function``. The ops albumentations
lacks in the form we need (exact colour offsets, contrast around the image mean, PCA colour)
run in NumPy (:func:`numpy_op`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

__all__ = ["albu_batch_fn", "albu_transform", "numpy_op"]


def albu_transform(op: dict, image_size):
    """The albumentations transform for one op, or None when NumPy/TF handles it."""
    import albumentations as A
    import cv2

    name, p = op["name"], float(op["p"])
    h, w = image_size
    if name == "flip":
        return A.HorizontalFlip(p=p)
    if name == "random_crop":
        ch, cw = max(1, round(h * op["scale"])), max(1, round(w * op["scale"]))
        return A.Sequential([A.RandomCrop(ch, cw), A.Resize(h, w)], p=p)
    if name == "random_resized_crop":
        return A.RandomResizedCrop(size=(h, w), scale=tuple(op["scale"]), ratio=tuple(op["ratio"]), p=p)
    if name == "color_shift":
        if op["offsets"] is not None:
            return None  # exact offsets: NumPy
        m = float(op["max_offset"])
        return A.RGBShift(r_shift_limit=(-m, m), g_shift_limit=(-m, m), b_shift_limit=(-m, m), p=p)
    if name == "rotation":
        d = float(op["degrees"])
        return A.Rotate(limit=(-d, d), border_mode=cv2.BORDER_REFLECT_101, p=p)
    if name == "brightness":
        d = float(op["max_delta"])
        return A.RandomBrightnessContrast(brightness_limit=(-d, d), contrast_limit=(0, 0), p=p)
    if name == "contrast":
        return None  # NumPy: around the image mean, like the tf backend (albumentations scales around 0)
    if name == "coarse_dropout":
        s = float(op["size"])
        return A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(s, s),
                               hole_width_range=(s, s), fill=0, p=p)
    if name == "clahe":
        return A.CLAHE(clip_limit=(1.0, float(op["clip_limit"])), p=p)
    if name == "grid_distortion":
        d = float(op["distort_limit"])
        return A.GridDistortion(distort_limit=(-d, d), border_mode=cv2.BORDER_REFLECT_101, p=p)
    return None


def numpy_op(op: dict, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-image ops albumentations lacks in the form we need (float32 in/out)."""
    if rng.random() >= float(op["p"]):
        return img
    if op["name"] == "color_shift":
        return np.clip(img + np.asarray(op["offsets"], np.float32), 0, 255)
    if op["name"] == "contrast":
        f = rng.uniform(float(op["lower"]), float(op["upper"]))
        mean = img.mean(axis=(0, 1), keepdims=True)
        return np.clip((img - mean) * f + mean, 0, 255)
    if op["name"] == "pca_color" and img.shape[-1] == 3:
        alpha = rng.normal(0.0, float(op["std"]), 3).astype(np.float32)
        delta = np.asarray(op["eigvecs"], np.float32) @ (alpha * np.asarray(op["eigvals"], np.float32))
        return np.clip(img + delta * 255.0, 0, 255)
    return img


def _stages(ops: list[dict], image_size, seed) -> list[tuple[str, object]]:
    """The ops as ``("albu", Compose)`` runs of consecutive albumentations transforms and
    ``("np", op)`` NumPy steps, in order."""
    import albumentations as A

    stages: list = []
    run: list = []

    def close_run():
        if run:
            stages.append(("albu", A.Compose(list(run), seed=None if seed is None else seed + len(stages))))
            run.clear()

    for op in ops:
        t = albu_transform(op, image_size)
        if t is not None:
            run.append(t)
            continue
        close_run()
        stages.append(("np", op))
    close_run()
    return stages


def albu_batch_fn(ops: list[dict], image_size, seed) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """NumPy function ``fn(batch, call_seed)`` over a batch (B, H, W, C) float32 running the
    per-image ops in order. Every random draw of a call comes from ``call_seed`` (two ints:
    the batch's seed, :func:`tl_kit.augment.build.batch_seeds`), and each thread of a
    parallel map has its own copy of the transforms, so a batch is augmented the same way
    whichever thread runs it and whatever ran before."""
    local = threading.local()

    def fn(batch: np.ndarray, call_seed: np.ndarray) -> np.ndarray:
        stages = getattr(local, "stages", None)
        if stages is None:
            stages = local.stages = _stages(ops, image_size, seed)
        rng = np.random.default_rng([int(v) & 0xFFFFFFFF for v in np.ravel(call_seed)])
        for kind, stage in stages:
            if kind == "albu":
                stage.set_random_seed(int(rng.integers(2**31)))
        out = np.empty_like(batch, dtype=np.float32)
        for i, img in enumerate(batch):
            cur = img.astype(np.float32)
            for kind, stage in stages:
                if kind == "albu":
                    u8 = np.clip(np.rint(cur), 0, 255).astype(np.uint8)
                    res = stage(image=u8)["image"]
                    cur = (res if res.ndim == 3 else res[..., None]).astype(np.float32)
                else:
                    cur = numpy_op(stage, cur, rng)
            out[i] = cur
        return out

    return fn
