"""Arrays and tf.data datasets as a load's examples: images resized and converted, labels checked.

Images become ``(N, H, W, C)`` at the requested size and channels (uint8 stays uint8, other
dtypes become float32 raw pixels in ``[0, 255]``); labels may be integers or one-hot.
"""

from __future__ import annotations

import numpy as np

from tl_kit import decode as _dec
from tl_kit.data._warn import warn
from tl_kit.errors import UserError

__all__ = ["convert_channels", "dataset_to_arrays", "is_tf_dataset", "normalize_images",
           "normalize_labels", "resize_array", "resolve_classes", "tf_resize", "to_xy"]


def resize_array(x: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a batch (N, h, w, C) to ``size`` with ``mode``; keeps uint8 as uint8."""
    import tensorflow as tf

    if x.shape[1:3] == tuple(size):
        return x
    out = []
    for i in range(0, len(x), 256):
        out.append(tf_resize(tf.convert_to_tensor(x[i:i + 256]), size, mode).numpy())
    r = np.concatenate(out) if out else np.zeros((0, *size, x.shape[-1]), np.float32)
    if x.dtype == np.uint8:
        return np.clip(np.round(r), 0, 255).astype(np.uint8)
    return r.astype(np.float32)


def tf_resize(img, size: tuple[int, int], mode: str):
    """TF resize of one image (h, w, C) or a batch, float32 result (tl_kit.decode's resize)."""
    return _dec.resize_float(img, size, mode)


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) with C in 1, 3, 4 -> ``channels`` (alpha dropped, grey = ITU-R 601-2)."""
    c = x.shape[-1]
    if c == 4:
        x = x[..., :3]
        c = 3
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if c == 3 and channels == 1:
        g = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        g = g[..., None]
        return np.clip(np.round(g), 0, 255).astype(np.uint8) if x.dtype == np.uint8 else g
    raise UserError(f"Images with {c} channels cannot become {channels}. Received: channels={channels!r}")


def normalize_images(x, size: tuple[int, int], channels: int, mode: str, what: str) -> np.ndarray:
    """Images ``(N, H, W[, C])`` -> ``(N, *size, channels)``, uint8 kept, else float32."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise UserError(
            f"{what} images must have shape (N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, H, W, 4). "
            f"Received: shape={x.shape}"
        )
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{what} images must be numeric. Received: dtype={x.dtype}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if x.size and float(np.nanmax(x)) <= 1.0 and float(np.nanmin(x)) >= 0.0:
            warn(f"{what} images are float with values in [0, 1]; tl_kit expects raw pixels in "
                 "[0, 255] (models normalise inside). Multiply by 255 if these are scaled images.")
    x = convert_channels(x, channels)
    return resize_array(x, size, mode)


def normalize_labels(y, num_classes: int | None, what: str) -> tuple[np.ndarray, int | None]:
    """``(int labels (N,), K)``: K from one-hot labels, None for integer ones."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:  # one-hot (or soft) labels
        return y.argmax(axis=1).astype(np.int64), y.shape[1]
    if y.ndim != 1:
        raise UserError(f"{what} labels must be integers (N,) or one-hot (N, K). Received: shape={y.shape}")
    if y.size and (np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0)):
        raise UserError(f"{what} labels must be integer class indices. Received: dtype={y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise UserError(f"{what} labels must be >= 0. Received: min label={int(y.min())}")
    return y, None


def dataset_to_arrays(ds, size: tuple[int, int], channels: int, mode: str, what: str):
    """Materialise a tf.data dataset of (image, label) into resized arrays."""
    import tensorflow as tf

    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise UserError(
            f"{what} tf.data dataset must yield (image, label) pairs. Received: element_spec={spec}"
        )
    img_spec = spec[0]
    if img_spec.shape.rank == 4:
        ds = ds.unbatch()
        img_spec = ds.element_spec[0]
    if img_spec.shape.rank not in (2, 3):
        raise UserError(f"{what} images must be (H, W) or (H, W, C). Received: shape={img_spec.shape}")
    keep_uint8 = img_spec.dtype == tf.uint8

    def _prep(img, lab):
        if img.shape.rank == 2:
            img = img[..., None]
        img = tf_resize(img, size, mode)
        if keep_uint8:
            img = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
        return img, lab

    ds = ds.map(_prep, num_parallel_calls=tf.data.AUTOTUNE).batch(256).prefetch(2)
    xs, ys = [], []
    for img, lab in ds.as_numpy_iterator():
        xs.append(img)
        ys.append(lab)
    if not xs:
        raise UserError(f"{what} tf.data dataset is empty.")
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    return convert_channels(x, channels), y


def is_tf_dataset(obj) -> bool:
    """Whether ``obj`` is a ``tf.data.Dataset`` (False without TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, tf.data.Dataset)


def to_xy(src, size, channels, resize, what):
    """(x uint8/float32 resized, y int, k_onehot) from arrays or a tf.data dataset."""
    if is_tf_dataset(src):
        x, y = dataset_to_arrays(src, size, channels, resize, what)
    elif isinstance(src, (tuple, list)) and len(src) == 2:
        x = normalize_images(src[0], size, channels, resize, what)
        y = src[1]
    else:
        raise UserError(
            f"{what} must be (x, y) arrays or a tf.data.Dataset of (image, label). "
            f"Received: {type(src).__name__}")
    y, k = normalize_labels(y, None, what)
    if len(x) != len(y):
        raise UserError(f"{what} has {len(x)} images but {len(y)} labels. Received: len(y)={len(y)}")
    return x, y, k


def resolve_classes(y_all: np.ndarray, k_onehot: int | None, num_classes, class_names,
                    what: str) -> list[str]:
    """Class names in label order, checked against the labels, ``num_classes`` and the
    number of one-hot columns ``k_onehot`` (``"0"``, ``"1"``, ... when none are given)."""
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(set(class_names)) != len(class_names):
            raise UserError(f"`class_names` must be unique. Received: class_names={class_names!r}")
    k = None
    if k_onehot is not None:
        k = k_onehot
    if class_names is not None:
        if k is not None and k != len(class_names):
            raise UserError(
                f"{what} labels have {k} classes but {len(class_names)} class names were given. "
                f"Received: class_names={class_names!r}")
        k = len(class_names)
    if num_classes is not None:
        if k is not None and k != num_classes:
            raise UserError(
                f"{what} has {k} classes but `num_classes` says {num_classes}. "
                f"Received: num_classes={num_classes!r}")
        k = int(num_classes)
    seen = int(y_all.max()) + 1 if y_all.size else 0
    if k is None:
        k = seen
    if seen > k:
        raise UserError(
            f"{what} labels go up to {seen - 1}, more than the {k} classes declared. "
            f"Received: num_classes={num_classes!r}, max label={seen - 1}")
    if k < 1:
        raise UserError(f"{what} has no labelled examples.")
    return class_names if class_names is not None else [str(i) for i in range(k)]
