"""Augmentation policies for training pipelines, with a TensorFlow and an albumentations backend.

A policy is ``"none"``, ``"light"``, ``"standard"``, ``"strong"`` or an explicit list of
operations, each a name (``"flip"``) or a dict (``{"name": "color_shift", "offsets": [20,
-20, 20]}``). :func:`build_augmenter` turns it into a function ``(images, labels) ->
(images, labels)`` on BATCHES (float32 raw pixels in [0, 255], one-hot labels), used as
``dataset.batch(...).map(fn, num_parallel_calls=AUTOTUNE)`` on training data only
(``tl_kit.data.Data.dataset(training=True, augment=...)`` does that).

Operations (defaults in :data:`OPS`):

========================  ===========================================================
``flip``                  horizontal mirroring (an exact left-right flip), ``p``
``random_crop``           crop a ``scale`` fraction of each side at a random place, resize back
``random_resized_crop``   Inception-style crop of random area ``scale`` and aspect ``ratio``
``color_shift``           per-channel offsets: ``offsets=(20, -20, 20)`` exactly, or each
                          drawn in ``[-max_offset, max_offset]``
``pca_color``             AlexNet's PCA lighting noise: ``eigvecs @ (alpha * eigvals)``,
                          ``alpha ~ N(0, std)``; ImageNet's published eigen-pairs by default,
                          or :func:`pca_eigen` of your training images
``rotation``              random rotation within ``+-degrees`` (reflect fill)
``brightness``            add ``delta * 255``, ``delta`` in ``[-max_delta, max_delta]``
``contrast``              scale around the per-image channel mean by ``[lower, upper]``
``coarse_dropout``        cutout: one ``size``-fraction square set to 0
``clahe``                 contrast-limited adaptive histogram equalisation (albumentations only)
``grid_distortion``       grid warping (albumentations only)
``mixup``                 batch-level: ``lam x + (1 - lam) x'``, labels likewise, ``lam ~ Beta``
``cutmix``                batch-level: a box from the partner image, labels by area
========================  ===========================================================

Batch-level ops (mixup, cutmix) always run after the per-image ops, and pair each image with
the batch reversed. Pixel results are clipped to [0, 255].

Backends:
    * ``"tf"`` (default): TF image ops, vectorised over the batch, inside the tf.data graph
      (parallel, no Python); random numbers come from a ``tf.random.Generator`` so
      augmentations differ every epoch. Rotation uses ``ImageProjectiveTransformV3``; the
      other ops are plain arithmetic/``crop_and_resize`` (XLA-compilable).
    * ``"albumentations"``: per-image ops run with albumentations (OpenCV) on uint8 images
      through ``tf.numpy_function`` -- on the CPU, with several batches in flight thanks
      to ``num_parallel_calls`` (OpenCV releases the GIL). It adds ``clahe`` and
      ``grid_distortion``, which TF lacks; the ``"strong"`` policy uses them there.
      ``pca_color``, ``contrast`` and exact colour offsets run in NumPy; mixup/cutmix run in TF after it, as in the tf backend.

Example:
```python
fn = build_augmenter("standard", image_size=(128, 128))
train = train.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
save_augmentation_preview("data/flowers", "runs/flowers/plots/augment.png", policy="strong")
```
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = [
    "BACKENDS",
    "IMAGENET_EIGVALS",
    "IMAGENET_EIGVECS",
    "OPS",
    "POLICIES",
    "build_augmenter",
    "pca_eigen",
    "policy_ops",
    "save_augmentation_preview",
]

POLICIES = ("none", "light", "standard", "strong")
BACKENDS = ("tf", "albumentations")

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
_ALIASES = {"mirror": "flip", "horizontal_flip": "flip", "hflip": "flip", "crop": "random_crop",
            "rrc": "random_resized_crop", "pca": "pca_color", "fancy_pca": "pca_color",
            "rotate": "rotation", "cutout": "coarse_dropout", "rgb_shift": "color_shift"}
_BATCH_OPS = ("mixup", "cutmix")
_ALBU_ONLY = ("clahe", "grid_distortion")

_POLICY_OPS: dict[str, list] = {
    "none": [],
    "light": ["flip", {"name": "random_crop", "scale": 0.9}],
    "standard": [
        "flip",
        {"name": "random_resized_crop", "scale": (0.35, 1.0)},
        {"name": "color_shift", "max_offset": 20, "p": 0.3},
        {"name": "pca_color", "std": 0.1},
        {"name": "brightness", "max_delta": 0.1},
        {"name": "contrast", "lower": 0.9, "upper": 1.1},
    ],
    "strong": [
        "flip",
        {"name": "random_resized_crop", "scale": (0.2, 1.0)},
        {"name": "rotation", "degrees": 15},
        {"name": "clahe", "p": 0.2},
        {"name": "grid_distortion", "p": 0.2},
        {"name": "color_shift", "max_offset": 20, "p": 0.5},
        {"name": "pca_color", "std": 0.1},
        {"name": "brightness", "max_delta": 0.2},
        {"name": "contrast", "lower": 0.75, "upper": 1.25},
        {"name": "coarse_dropout", "size": 0.25, "p": 0.5},
        {"name": "mixup", "alpha": 0.2, "p": 0.5},
        {"name": "cutmix", "alpha": 1.0, "p": 0.5},
    ],
}


# === Policy resolution ===


def policy_ops(policy: str | list | None, backend: str = "tf") -> list[dict[str, Any]]:
    """Resolve a policy to a list of ops ``{"name": ..., **params}`` with defaults filled in.

    Under the ``"tf"`` backend the named policies leave out the albumentations-only ops;
    listing one explicitly there is an error.
    """
    if backend not in BACKENDS:
        raise UserError(f"`backend` must be one of {BACKENDS}. Received: backend={backend!r}")
    if policy is None:
        return []
    named = isinstance(policy, str)
    if named:
        if policy not in _POLICY_OPS:
            raise UserError(
                f"Unknown augmentation policy. Use one of {POLICIES} or a list of ops from "
                f"{sorted(OPS)}. Received: policy={policy!r}")
        items = _POLICY_OPS[policy]
    elif isinstance(policy, (list, tuple)):
        items = list(policy)
    else:
        raise UserError(f"`policy` must be a name or a list of ops. Received: policy={policy!r}")
    ops = []
    for item in items:
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and "name" in item:
            name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise UserError(f"Each op must be a name or a dict with a 'name' key. Received: op={item!r}")
        name = _ALIASES.get(name, name)
        if name not in OPS:
            raise UserError(f"Unknown augmentation op. Known ops: {sorted(OPS)}. Received: op={name!r}")
        unknown = set(params) - set(OPS[name])
        if unknown:
            raise UserError(f"Op {name!r} takes {sorted(OPS[name])}. Received: {sorted(unknown)}")
        if name in _ALBU_ONLY and backend != "albumentations":
            if named:
                continue
            raise UserError(f"Op {name!r} needs backend='albumentations'. Received: backend={backend!r}")
        p = float(params.get("p", OPS[name]["p"]))
        if not 0.0 <= p <= 1.0:
            raise UserError(f"Probability `p` of {name!r} must be in [0, 1]. Received: p={p!r}")
        ops.append({"name": name, **OPS[name], **params})
    return ops


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


# === TF implementations (batched) ===


class _Keys:
    """Stateless random keys for one call, derived from a per-call seed."""

    def __init__(self, seed):
        self.seed = seed
        self.i = 0

    def __call__(self):
        import tensorflow as tf

        self.i += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.i)


def _uniform(keys, shape, lo=0.0, hi=1.0):
    import tensorflow as tf

    return tf.random.stateless_uniform(shape, keys(), minval=lo, maxval=hi)


def _apply_mask(keys, b, p):
    import tensorflow as tf

    return tf.reshape(_uniform(keys, [b]) < p, [b, 1, 1, 1])


def _crop_boxes(x, boxes):
    import tensorflow as tf

    b = tf.shape(x)[0]
    size = tf.shape(x)[1:3]
    return tf.image.crop_and_resize(x, boxes, tf.range(b), size, method="bilinear")


def _tf_op(op: dict, x, y, keys: _Keys):
    import tensorflow as tf

    name, p = op["name"], float(op["p"])
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    c = x.shape[-1]
    hf = tf.cast(h, tf.float32)
    wf = tf.cast(w, tf.float32)
    if name in _BATCH_OPS:
        if y.shape.rank != 2:
            raise UserError(f"{name} needs one-hot labels (batch, classes). Received: labels shape={y.shape}")
        yf = tf.cast(y, tf.float32)
        apply = _uniform(keys, [b]) < p
        g1 = tf.random.stateless_gamma([b], keys(), alpha=float(op["alpha"]))
        g2 = tf.random.stateless_gamma([b], keys(), alpha=float(op["alpha"]))
        lam = g1 / tf.maximum(g1 + g2, 1e-12)
        xr, yr = tf.reverse(x, [0]), tf.reverse(yf, [0])
        if name == "mixup":
            lam = tf.where(apply, lam, 1.0)
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * xr
        else:
            r = tf.sqrt(1.0 - lam)
            ch, cw = tf.round(r * hf), tf.round(r * wf)
            cy, cx = _uniform(keys, [b]) * hf, _uniform(keys, [b]) * wf
            y0 = tf.clip_by_value(tf.round(cy - ch / 2), 0, hf)
            y1 = tf.clip_by_value(tf.round(cy + ch / 2), 0, hf)
            x0 = tf.clip_by_value(tf.round(cx - cw / 2), 0, wf)
            x1 = tf.clip_by_value(tf.round(cx + cw / 2), 0, wf)
            rows = tf.range(hf)[None, :, None]
            cols = tf.range(wf)[None, None, :]
            box = ((rows >= y0[:, None, None]) & (rows < y1[:, None, None])
                   & (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))
            box = box & apply[:, None, None]
            x = tf.where(box[..., None], xr, x)
            lam = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2])
        y = lam[:, None] * yf + (1 - lam[:, None]) * yr
        return x, y
    mask = _apply_mask(keys, b, p)
    if name == "flip":
        new = tf.reverse(x, [2])
    elif name == "random_crop":
        s = float(op["scale"])
        ch = tf.maximum(tf.round(hf * s), 1.0)
        cw = tf.maximum(tf.round(wf * s), 1.0)
        oy = tf.floor(_uniform(keys, [b]) * (hf - ch + 1))
        ox = tf.floor(_uniform(keys, [b]) * (wf - cw + 1))
        dy, dx = tf.maximum(hf - 1, 1.0), tf.maximum(wf - 1, 1.0)
        boxes = tf.stack([oy / dy, ox / dx, (oy + ch - 1) / dy, (ox + cw - 1) / dx], axis=1)
        new = _crop_boxes(x, boxes)
    elif name == "random_resized_crop":
        lo, hi = (float(v) for v in op["scale"])
        rlo, rhi = (math.log(float(v)) for v in op["ratio"])
        area = _uniform(keys, [b], lo, hi)
        ar = tf.exp(_uniform(keys, [b], rlo, rhi))
        fh = tf.minimum(tf.sqrt(area / ar * wf / hf), 1.0)
        fw = tf.minimum(tf.sqrt(area * ar * hf / wf), 1.0)
        oy = _uniform(keys, [b]) * (1 - fh)
        ox = _uniform(keys, [b]) * (1 - fw)
        new = _crop_boxes(x, tf.stack([oy, ox, oy + fh, ox + fw], axis=1))
    elif name == "color_shift":
        if op["offsets"] is not None:
            off = tf.constant(np.asarray(op["offsets"], np.float32).reshape(1, 1, 1, -1))
            if off.shape[-1] not in (1, c):
                raise UserError(f"color_shift needs {c} offsets. Received: offsets={op['offsets']!r}")
        else:
            m = float(op["max_offset"])
            off = _uniform(keys, [b, 1, 1, c], -m, m)
        new = x + off
    elif name == "pca_color":
        if c != 3:
            return x, y
        vals = tf.constant(np.asarray(op["eigvals"], np.float32))
        vecs = tf.constant(np.asarray(op["eigvecs"], np.float32))
        alpha = tf.random.stateless_normal([b, 3], keys(), stddev=float(op["std"]))
        delta = tf.matmul(alpha * vals[None, :], vecs, transpose_b=True) * 255.0
        new = x + delta[:, None, None, :]
    elif name == "rotation":
        ang = _uniform(keys, [b], -1.0, 1.0) * (float(op["degrees"]) * math.pi / 180.0)
        cos, sin = tf.cos(ang), tf.sin(ang)
        cx, cy = (wf - 1) / 2, (hf - 1) / 2
        zeros = tf.zeros_like(ang)
        transforms = tf.stack([cos, -sin, cx - cx * cos + cy * sin,
                               sin, cos, cy - cx * sin - cy * cos, zeros, zeros], axis=1)
        new = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    elif name == "brightness":
        d = float(op["max_delta"]) * 255.0
        new = x + _uniform(keys, [b, 1, 1, 1], -d, d)
    elif name == "contrast":
        f = _uniform(keys, [b, 1, 1, 1], float(op["lower"]), float(op["upper"]))
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        new = (x - mean) * f + mean
    elif name == "coarse_dropout":
        s = float(op["size"])
        ch = tf.maximum(tf.round(hf * s), 1.0)
        cw = tf.maximum(tf.round(wf * s), 1.0)
        y0 = tf.floor(_uniform(keys, [b]) * (hf - ch + 1))[:, None, None]
        x0 = tf.floor(_uniform(keys, [b]) * (wf - cw + 1))[:, None, None]
        rows = tf.range(hf)[None, :, None]
        cols = tf.range(wf)[None, None, :]
        hole = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)
        new = tf.where(hole[..., None], 0.0, x)
    else:  # albumentations-only ops are rejected by policy_ops
        raise UserError(f"Op {name!r} needs backend='albumentations'. Received: op={name!r}")
    new = tf.clip_by_value(new, 0.0, 255.0)
    return tf.where(mask, new, x), y


# === albumentations implementation (per image, NumPy) ===


def _albu_transform(op: dict, image_size):
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


def _numpy_op(op: dict, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def _albu_batch_fn(ops: list[dict], image_size, seed):
    """NumPy function over a batch (B, H, W, C) float32 running the per-image ops in order."""
    import albumentations as A

    stages: list = []  # ("albu", Compose) | ("np", op)
    run: list = []
    for op in ops:
        t = _albu_transform(op, image_size)
        if t is not None:
            run.append(t)
            continue
        if run:
            stages.append(("albu", A.Compose(run, seed=None if seed is None else seed + len(stages))))
            run = []
        stages.append(("np", op))
    if run:
        stages.append(("albu", A.Compose(run, seed=None if seed is None else seed + len(stages))))
    rng = np.random.default_rng(seed)

    def fn(batch: np.ndarray) -> np.ndarray:
        out = np.empty_like(batch, dtype=np.float32)
        for i, img in enumerate(batch):
            cur = img.astype(np.float32)
            for kind, stage in stages:
                if kind == "albu":
                    u8 = np.clip(np.rint(cur), 0, 255).astype(np.uint8)
                    res = stage(image=u8)["image"]
                    cur = (res if res.ndim == 3 else res[..., None]).astype(np.float32)
                else:
                    cur = _numpy_op(stage, cur, rng)
            out[i] = cur
        return out

    return fn


# === Public: build_augmenter ===


def build_augmenter(policy: str | list | None, *, image_size, backend: str = "tf",
                    seed: int | None = None) -> Callable:
    """A batched ``(images, labels) -> (images, labels)`` function for ``dataset.map``.

    Args:
        policy: ``"none" | "light" | "standard" | "strong"``, a list of ops, or None.
        image_size: ``(height, width)`` of the batches (crops resize back to it).
        backend: ``"tf"`` (TF ops in the graph) or ``"albumentations"`` (CPU, via
            ``tf.numpy_function``).
        seed: makes the augmentation sequence reproducible (it still differs per epoch).

    Example:
    ```python
    aug = build_augmenter(["flip", {"name": "color_shift", "offsets": [20, -20, 20]}],
                          image_size=(64, 64))
    images, labels = aug(images, one_hot_labels)
    ```
    """
    import tensorflow as tf

    ops = policy_ops(policy, backend)
    size = (int(image_size[0]), int(image_size[1]))
    per_image = [op for op in ops if op["name"] not in _BATCH_OPS]
    batch_ops = [op for op in ops if op["name"] in _BATCH_OPS]
    with tf.init_scope():
        gen = (tf.random.Generator.from_seed(seed) if seed is not None
               else tf.random.Generator.from_non_deterministic_state())
    albu = _albu_batch_fn(per_image, size, seed) if backend == "albumentations" and per_image else None

    def augment(images, labels):
        x = tf.cast(images, tf.float32)
        if not ops:
            return x, labels
        keys = _Keys(gen.make_seeds(1)[:, 0])
        if albu is not None:
            shape = x.shape
            x = tf.numpy_function(albu, [x], tf.float32, stateful=True)
            x.set_shape(shape)
        else:
            for op in per_image:
                x, labels = _tf_op(op, x, labels, keys)
        for op in batch_ops:
            x, labels = _tf_op(op, x, labels, keys)
        return x, labels

    augment.ops = ops  # type: ignore[attr-defined]
    augment.backend = backend  # type: ignore[attr-defined]
    return augment


# === Preview ===


def save_augmentation_preview(data_or_dir, out_png, policy: str | list | None = "standard", n: int = 16,
                              *, backend: str = "tf", image_size=(128, 128), split: str = "train",
                              seed: int = 0, columns: int | None = None) -> Path:
    """Save a grid PNG of ``n`` augmented training images (matplotlib).

    ``data_or_dir``: a :class:`tl_kit.data.Data`, a folder (loaded at ``image_size``) or
    anything :func:`tl_kit.data.load_data` accepts. Titles give the (top) class and, after
    mixup/cutmix, its weight. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    from tl_kit.data import Data, load_data

    if not isinstance(n, int) or n < 1:
        raise UserError(f"`n` must be a positive integer. Received: n={n!r}")
    data = data_or_dir if isinstance(data_or_dir, Data) else load_data(
        data_or_dir, image_size=image_size, validation_split=0.0, seed=seed)
    x, y = data.arrays(split)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), n, replace=len(x) < n)
    k = data.info.num_classes
    fn = build_augmenter(policy, image_size=data.image_size, backend=backend, seed=seed)
    xa, ya = fn(tf.constant(x[idx]), tf.one_hot(y[idx], k))
    xa, ya = np.asarray(xa), np.asarray(ya)
    cols = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = np.clip(xa[i], 0, 255).astype(np.uint8)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        top = int(ya[i].argmax())
        title = data.info.class_names[top]
        if ya[i].max() < 0.999:
            title += f" {ya[i].max():.2f}"
        ax.set_title(title, fontsize=8)
    name = policy if isinstance(policy, str) or policy is None else "custom"
    fig.suptitle(f"augmentation: {name} ({backend})", fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
