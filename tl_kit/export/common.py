"""What every export format shares: the error, the float tolerance and the images an
export is calibrated and checked on."""

from __future__ import annotations

import numpy as np

from tl_kit.errors import TLKitError, UserError

__all__ = ["ExportError", "FLOAT_ATOL", "NUM_CALIBRATION", "NUM_CHECK", "take_images",
           "random_images", "max_abs_diff"]

# Largest difference in probabilities accepted between the Keras model and an export that
# computes in float32 (SavedModel, TFLite float32, ONNX); exports beyond it are not written.
FLOAT_ATOL = 1e-4
NUM_CALIBRATION = 100
NUM_CHECK = 32


class ExportError(TLKitError):
    """An export could not be written or failed its check against the Keras model."""


def max_abs_diff(probs, reference: np.ndarray) -> float:
    """Largest absolute difference between two probability arrays."""
    return float(np.abs(np.asarray(probs) - reference).max())


def random_images(size, channels: int) -> np.ndarray:
    """8 uniform random raw-pixel images (seed 0): the check images without data."""
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (8, *size, channels)).astype(np.float32)


def _dataset_images(data, count: int) -> np.ndarray:
    parts, total = [], 0
    for item in data.as_numpy_iterator():
        images = np.asarray(item[0] if isinstance(item, tuple | list) else item, np.float32)
        if images.ndim == 3:
            images = images[None]
        parts.append(images)
        total += len(images)
        if total >= count:
            break
    if not parts:
        raise UserError("representative_data is empty. Received: an empty dataset")
    return np.concatenate(parts)


def take_images(data, count: int, size) -> np.ndarray:
    """Up to ``count`` images from arrays / (x, y) / tf.data / Data, resized to ``size``."""
    import tensorflow as tf

    if hasattr(data, "dataset") and hasattr(data, "has"):
        data = data.dataset("train", batch_size=32, training=False, shuffle=False)
    if isinstance(data, tuple | list) and len(data) == 2 and np.ndim(data[0]) == 4:
        data = data[0]
    if isinstance(data, tf.data.Dataset):
        data = _dataset_images(data, count)
    images = np.asarray(data, np.float32)[:count]
    if images.ndim != 4 or len(images) == 0:
        raise UserError(
            "representative_data must hold images (N, H, W, C). "
            f"Received: shape={images.shape}"
        )
    if tuple(images.shape[1:3]) != tuple(size):
        from tl_kit.decode import resize_float

        images = resize_float(images, size).numpy()
    return images.astype(np.float32)
