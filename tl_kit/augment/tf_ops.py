"""The ``"tf"`` backend: each op as TF ops on a batch, inside the tf.data graph.

Every per-image op is one small function in :data:`IMAGE_OPS`; :func:`apply_image_op` draws
which images it applies to and the function records its effect on a
:class:`~tl_kit.augment.tf_pending.Pending` batch, which does the full-size work in as few
passes as it can (flips and a crop in one ``crop_and_resize``; offsets, contrast and clipping
in one scale, shift and clamp). The batch-level ops (mixup, cutmix) are ``(op, x, geom, keys, apply, lam,
x_partner) -> (x, lam)`` in :data:`BATCH_OP_FNS`, applied by :func:`apply_batch_op`. Random
numbers come from stateless keys (:class:`Keys`), one per draw, folded from a per-call seed.

This module imports TensorFlow; :func:`tl_kit.augment.build_augmenter` imports it lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tl_kit.augment.tf_pending import Pending
from tl_kit.errors import UserError

__all__ = ["BATCH_OP_FNS", "IMAGE_OPS", "Geom", "Keys", "Pending", "apply_batch_op", "apply_image_op",
           "geom"]


class Keys:
    """Stateless random keys for one call, derived from a per-call seed."""

    def __init__(self, seed):
        self.seed = seed
        self.i = 0

    def __call__(self):
        self.i += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.i)


class Geom(NamedTuple):
    """The batch's dynamic size (``b``, ``h``, ``w``; ``hf``/``wf`` as float32) and channels."""

    b: tf.Tensor
    h: tf.Tensor
    w: tf.Tensor
    hf: tf.Tensor
    wf: tf.Tensor
    c: int | None


def geom(x) -> Geom:
    """The :class:`Geom` of a batch ``x`` (B, H, W, C)."""
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    return Geom(shape[0], h, w, tf.cast(h, tf.float32), tf.cast(w, tf.float32), x.shape[-1])


def _uniform(keys: Keys, shape, lo=0.0, hi=1.0):
    return tf.random.stateless_uniform(shape, keys(), minval=lo, maxval=hi)


def _box_mask(g: Geom, y0, y1, x0, x1):
    """(B, H, W) bool: rows in ``[y0, y1)`` and columns in ``[x0, x1)``, per image (B,)."""
    rows = tf.range(g.hf)[None, :, None]
    cols = tf.range(g.wf)[None, None, :]
    return ((rows >= y0[:, None, None]) & (rows < y1[:, None, None])
            & (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))


# === per-image ops ===
# Each is ``fn(op, st, g, keys, m)``: it records its effect on the images where ``m`` (B,)
# in the :class:`~tl_kit.augment.tf_pending.Pending` batch ``st``, drawing its own random
# parameters for every image.


def _random_box(keys: Keys, g: Geom, side: float):
    """``(top, left, height, width)`` per image: a box ``side`` times the image's sides
    (at least one pixel), placed uniformly at random inside it (top drawn first)."""
    ch = tf.maximum(tf.round(g.hf * side), 1.0)
    cw = tf.maximum(tf.round(g.wf * side), 1.0)
    top = tf.floor(_uniform(keys, [g.b]) * (g.hf - ch + 1))
    left = tf.floor(_uniform(keys, [g.b]) * (g.wf - cw + 1))
    return top, left, ch, cw


def _flip(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    st.flip(m)


def _random_crop(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    oy, ox, ch, cw = _random_box(keys, g, float(op["scale"]))
    dy, dx = tf.maximum(g.hf - 1, 1.0), tf.maximum(g.wf - 1, 1.0)
    st.crop(tf.stack([oy / dy, ox / dx, (oy + ch - 1) / dy, (ox + cw - 1) / dx], axis=1), m)


def _random_resized_crop(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    lo, hi = (float(v) for v in op["scale"])
    rlo, rhi = (math.log(float(v)) for v in op["ratio"])
    area = _uniform(keys, [g.b], lo, hi)
    ar = tf.exp(_uniform(keys, [g.b], rlo, rhi))
    fh = tf.minimum(tf.sqrt(area / ar * g.wf / g.hf), 1.0)
    fw = tf.minimum(tf.sqrt(area * ar * g.hf / g.wf), 1.0)
    oy = _uniform(keys, [g.b]) * (1 - fh)
    ox = _uniform(keys, [g.b]) * (1 - fw)
    st.crop(tf.stack([oy, ox, oy + fh, ox + fw], axis=1), m)


def _color_shift(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    if op["offsets"] is not None:
        off = np.asarray(op["offsets"], np.float32).reshape(1, 1, 1, -1)
        if off.shape[-1] not in (1, g.c):
            raise UserError(f"color_shift needs {g.c} offsets. Received: offsets={op['offsets']!r}")
        off = tf.broadcast_to(tf.constant(off), [g.b, 1, 1, off.shape[-1]])
    else:
        mx = float(op["max_offset"])
        off = _uniform(keys, [g.b, 1, 1, g.c], -mx, mx)
    st.add(off, m)


def _pca_color(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    if g.c != 3:
        return  # RGB only: the images pass unchanged
    vals = tf.constant(np.asarray(op["eigvals"], np.float32))
    vecs = tf.constant(np.asarray(op["eigvecs"], np.float32))
    alpha = tf.random.stateless_normal([g.b, 3], keys(), stddev=float(op["std"]))
    delta = tf.matmul(alpha * vals[None, :], vecs, transpose_b=True) * 255.0
    st.add(delta[:, None, None, :], m)


def _rotation(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    ang = _uniform(keys, [g.b], -1.0, 1.0) * (float(op["degrees"]) * math.pi / 180.0)
    ang = tf.where(m, ang, 0.0)  # angle 0: the identity transform samples pixels exactly
    cos, sin = tf.cos(ang), tf.sin(ang)
    cx, cy = (g.wf - 1) / 2, (g.hf - 1) / 2
    zeros = tf.zeros_like(ang)
    transforms = tf.stack([cos, -sin, cx - cx * cos + cy * sin,
                           sin, cos, cy - cx * sin - cy * cos, zeros, zeros], axis=1)
    x = st.images()
    st.replace(tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT"))
    st.clip(m)


def _brightness(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    d = float(op["max_delta"]) * 255.0
    st.add(_uniform(keys, [g.b, 1, 1, 1], -d, d), m)


def _contrast(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    st.scale_around_mean(_uniform(keys, [g.b, 1, 1, 1], float(op["lower"]), float(op["upper"])), m)


def _coarse_dropout(op, st: Pending, g: Geom, keys: Keys, m) -> None:
    y0, x0, ch, cw = _random_box(keys, g, float(op["size"]))
    hole = _box_mask(g, y0, y0 + ch, x0, x0 + cw) & m[:, None, None]
    st.replace(tf.where(hole[..., None], 0.0, st.images()))  # zeros or the pixels: no clip needed


#: Per-image op name -> ``fn(op, pending, geom, keys, mask)`` (see above).
IMAGE_OPS: dict[str, Callable] = {
    "flip": _flip,
    "random_crop": _random_crop,
    "random_resized_crop": _random_resized_crop,
    "color_shift": _color_shift,
    "pca_color": _pca_color,
    "rotation": _rotation,
    "brightness": _brightness,
    "contrast": _contrast,
    "coarse_dropout": _coarse_dropout,
}


def apply_image_op(op: dict, st: Pending, g: Geom, keys: Keys) -> None:
    """Record ``op`` on the batch ``st``, for each image with probability ``op["p"]``; results
    are clipped to [0, 255]. ``st.images()`` gives the pixels."""
    fn = IMAGE_OPS.get(op["name"])
    m = _uniform(keys, [g.b]) < float(op["p"])
    if fn is None:  # albumentations-only ops are rejected by policy_ops
        raise UserError(f"Op {op['name']!r} needs backend='albumentations'. Received: op={op['name']!r}")
    fn(op, st, g, keys, m)


# === batch-level ops ===


def _mixup(op, x, g: Geom, keys: Keys, apply, lam, xr):
    lam = tf.where(apply, lam, 1.0)
    x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * xr
    return x, lam


def _cutmix(op, x, g: Geom, keys: Keys, apply, lam, xr):
    r = tf.sqrt(1.0 - lam)
    ch, cw = tf.round(r * g.hf), tf.round(r * g.wf)
    cy, cx = _uniform(keys, [g.b]) * g.hf, _uniform(keys, [g.b]) * g.wf
    y0 = tf.clip_by_value(tf.round(cy - ch / 2), 0, g.hf)
    y1 = tf.clip_by_value(tf.round(cy + ch / 2), 0, g.hf)
    x0 = tf.clip_by_value(tf.round(cx - cw / 2), 0, g.wf)
    x1 = tf.clip_by_value(tf.round(cx + cw / 2), 0, g.wf)
    box = _box_mask(g, y0, y1, x0, x1) & apply[:, None, None]
    x = tf.where(box[..., None], xr, x)
    lam = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32), axis=[1, 2])
    return x, lam


#: Batch-level op name -> ``fn(op, x, geom, keys, apply, lam, x_partner) -> (x, lam)``:
#: the mixed images and each image's own weight ``lam`` (its labels get ``lam``, the partner's
#: ``1 - lam``).
BATCH_OP_FNS: dict[str, Callable] = {"mixup": _mixup, "cutmix": _cutmix}


def apply_batch_op(op: dict, x, y, keys: Keys):
    """Mix each image (and its one-hot label) with the batch reversed, per ``op``."""
    name = op["name"]
    if y.shape.rank != 2:
        raise UserError(f"{name} needs one-hot labels (batch, classes). Received: labels shape={y.shape}")
    g = geom(x)
    yf = tf.cast(y, tf.float32)
    apply = _uniform(keys, [g.b]) < float(op["p"])
    g1 = tf.random.stateless_gamma([g.b], keys(), alpha=float(op["alpha"]))
    g2 = tf.random.stateless_gamma([g.b], keys(), alpha=float(op["alpha"]))
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    xr, yr = tf.reverse(x, [0]), tf.reverse(yf, [0])
    x, lam = BATCH_OP_FNS[name](op, x, g, keys, apply, lam, xr)
    y = lam[:, None] * yf + (1 - lam[:, None]) * yr
    return x, y
