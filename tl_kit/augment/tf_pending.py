"""The batch under augmentation with the work not yet done, applied in few full-size passes.

Each per-image op of the ``"tf"`` backend touches only small per-image tensors here; the
full-size work is done when :meth:`Pending.images` is asked for (by an op that needs the
pixels, or at the end of the policy):

* geometry: flips and one crop become one ``crop_and_resize`` with one box per image (a
  flip swaps the box's x coordinates, an image not cropped keeps the whole-image box, which
  samples its pixels exactly); flips alone are one row ``Select`` of the mirrored batch;
* pointwise: additive offsets (colour shift, PCA colour, brightness), a per-image contrast
  factor and the clipping to [0, 255] of the images an op changed become ``x * scale +
  shift`` clamped to per-image (per-channel) bounds. Clipping composes:
  ``clip(clamp(t, lo, hi) + d) == clamp(t + d, clip(lo + d), clip(hi + d))``, so each image
  gets the sequence of ops its draws picked (to float rounding, ~1e-3 of 255), and an image
  no op picked is unchanged bit for bit (scale 1, shift 0, bounds +-inf).

Flips commute with pointwise maps, so a flip may join the geometry after pointwise work; a
crop may not (interpolation and clipping do not commute): it first applies what is pending.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["Pending"]

_INF = float("inf")


def _where(m, a, b):
    """Per-image choice between small tensors ``a`` and ``b`` (m: (B,) bool)."""
    m = tf.reshape(m, [-1] + [1] * (max(a.shape.rank, b.shape.rank, 1) - 1))
    return tf.where(m, a, b)


class Pending:
    """A batch ``x`` (B, H, W, C) float32 plus the geometry and pointwise work pending on it."""

    def __init__(self, x):
        self._x = x
        self._b = tf.shape(x)[0]
        self._reset()

    def _reset(self):
        self.boxes = None  # (B, 4) crop boxes; None: no geometry pending
        self.flipped = None  # (B,) bool, with boxes: the flips (when no crop is pending)
        self.cropped = False
        self.scale = None  # (B, 1, 1, 1)
        self.shift = None  # (B, 1, 1, C or 1)
        self.lo = None  # (B, 1, 1, C or 1) lower clamp bound, -inf where none
        self.hi = None

    # --- geometry ---

    def _whole_boxes(self):
        one = tf.ones([self._b])
        zero = tf.zeros([self._b])
        return tf.stack([zero, zero, one, one], axis=1)

    def flip(self, m) -> None:
        """Mirror left-right the images where ``m`` (B,) is true."""
        if self.boxes is None:
            self.boxes, self.flipped = self._whole_boxes(), tf.zeros([self._b], tf.bool)
        y1, x1, y2, x2 = tf.unstack(self.boxes, axis=1)
        self.boxes = tf.stack([y1, tf.where(m, x2, x1), y2, tf.where(m, x1, x2)], axis=1)
        self.flipped = tf.math.logical_xor(self.flipped, m)

    def crop(self, boxes, m) -> None:
        """Crop ``boxes`` (B, 4; normalised ``y1, x1, y2, x2``) resized back, where ``m``."""
        if self.cropped or self._has_pointwise():
            self._x = self.images()
        if self.boxes is None:
            self.boxes, self.flipped = self._whole_boxes(), tf.zeros([self._b], tf.bool)
        by1, bx1, by2, bx2 = tf.unstack(self.boxes, axis=1)
        cy1, cx1, cy2, cx2 = tf.unstack(boxes, axis=1)
        dy, dx = by2 - by1, bx2 - bx1
        composed = tf.stack([by1 + cy1 * dy, bx1 + cx1 * dx, by1 + cy2 * dy, bx1 + cx2 * dx], axis=1)
        self.boxes = _where(m, composed, self.boxes)
        self.cropped = True
        self.clip(m)  # interpolated pixels: clipped, as every op's result

    # --- pointwise ---

    def _has_pointwise(self) -> bool:
        return self.scale is not None or self.shift is not None or self.lo is not None

    def clip(self, m) -> None:
        """Clip to [0, 255] the images where ``m`` (after what is pending)."""
        lo = self.lo if self.lo is not None else tf.fill([self._b, 1, 1, 1], -_INF)
        hi = self.hi if self.hi is not None else tf.fill([self._b, 1, 1, 1], _INF)
        self.lo = _where(m, tf.clip_by_value(lo, 0.0, 255.0), lo)
        self.hi = _where(m, tf.clip_by_value(hi, 0.0, 255.0), hi)

    def add(self, delta, m) -> None:
        """Add ``delta`` (B, 1, 1, C or 1) to the images where ``m``, then clip those."""
        d = _where(m, delta, tf.zeros_like(delta))
        self.shift = d if self.shift is None else self.shift + d
        if self.lo is not None:
            self.lo, self.hi = self.lo + d, self.hi + d
        self.clip(m)

    def scale_around_mean(self, factor, m) -> None:
        """``(x - mean) * factor + mean`` per image and channel where ``m``, then clip those."""
        x = self.images()
        mean = tf.reduce_mean(tf.reshape(x, [self._b, -1, x.shape[-1]]), axis=1)[:, None, None, :]
        f = _where(m, factor, tf.ones_like(factor))
        self.scale = f
        self.shift = mean * (1.0 - f)  # 0 where f == 1
        self.clip(m)

    # --- the pixels ---

    def _geometry(self, x):
        if self.cropped:
            size = tf.shape(x)[1:3]
            return tf.image.crop_and_resize(x, self.boxes, tf.range(self._b), size, method="bilinear")
        return tf.raw_ops.Select(condition=self.flipped, x=tf.reverse(x, [2]), y=x)

    def replace(self, x) -> None:
        """Continue from new pixels ``x`` (computed from :meth:`images`, so nothing is pending)."""
        self._x = x
        self._reset()

    def images(self):
        """The batch with everything pending applied."""
        x = self._x
        if self.boxes is not None:
            x = self._geometry(x)
        if self.scale is not None or self.shift is not None or self.lo is not None:
            x = _pointwise(x, self.scale, self.shift, self.lo, self.hi)
        self._x = x
        self._reset()
        return x


def _pointwise(x, scale, shift, lo, hi):
    """``clamp(x * scale + shift, lo, hi)`` with per-image (B, 1, 1, 1) or per-channel
    (B, 1, 1, C) parameters (None: left out).

    TF broadcasts a (B, 1, 1, C) operand over NHWC slowly; with two or more per-channel
    operands the batch is worked on as rows of one image channel each (B * C, H * W), where
    every operand is one value per row (a fast column broadcast), at the cost of two
    transposes.
    """
    parts = [scale, shift, lo, hi]
    c = x.shape[-1]
    per_channel = sum(1 for t in parts if t is not None and t.shape[-1] != 1)
    if c is None or per_channel < 2:
        return _affine_clamp(x, *parts)
    shape = tf.shape(x)
    b = shape[0]
    rows = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [b * c, -1])
    cols = [None if t is None else tf.reshape(tf.broadcast_to(t, [b, 1, 1, c]), [b * c, 1]) for t in parts]
    rows = _affine_clamp(rows, *cols)
    return tf.transpose(tf.reshape(rows, [b, c, shape[1], shape[2]]), [0, 2, 3, 1])


def _affine_clamp(x, scale, shift, lo, hi):
    if scale is not None:
        x = x * scale
    if shift is not None:
        x = x + shift
    if lo is not None:
        x = tf.minimum(tf.maximum(x, lo), hi)
    return x
