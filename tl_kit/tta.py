"""Test-time augmentation: predict on several views of each image and average.

Two policies, the classic ones from the ImageNet papers:

- ``"flip"``: the image and its left-right mirror (2 views);
- ``"multicrop"``: the 10-crop evaluation of AlexNet (Krizhevsky et al., 2012, "ImageNet
  Classification with Deep Convolutional Neural Networks", section 4.1): the four corner
  crops and the centre crop, each also mirrored, probabilities averaged.

Every function takes raw [0, 255] float images of shape (batch, H, W, C), numpy arrays or
tensors, and works with any ``keras.Model`` that maps such images to probabilities.

Example:
```python
probs = predict_tta(model, images, tta="multicrop")   # (batch, num_classes)
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tl_kit.errors import UserError

__all__ = ["TTA_MODES", "flip_views", "ten_crop_views", "predict_tta", "model_image_size"]

TTA_MODES = (None, "none", "flip", "multicrop")

# Fraction of the side kept by a crop when images arrive at the model's own size.
DEFAULT_CROP_FRACTION = 0.875


def _to_numpy(images) -> np.ndarray:
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise UserError(
            "Images must have shape (batch, height, width, channels). "
            f"Received: images.shape={array.shape}"
        )
    return array


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The resize tl_kit.data and the SavedModel signatures use (:func:`tl_kit.decode.resample`)."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    from tl_kit.decode import resize_float

    return resize_float(images, size).numpy().astype(np.float32)


def model_image_size(model) -> tuple[int, int] | None:
    """Spatial input size ``(height, width)`` a model declares, or None if it is dynamic."""
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    height, width = shape[1], shape[2]
    if height is None or width is None:
        return None
    return int(height), int(width)


def flip_views(images) -> list[np.ndarray]:
    """The images and their left-right mirror: ``[images, images[:, :, ::-1]]``."""
    array = _to_numpy(images)
    return [array, array[:, :, ::-1, :].copy()]


def ten_crop_views(
    images, crop_size: int | Sequence[int], output_size: Sequence[int] | None = None
) -> list[np.ndarray]:
    """Ten crops per image: top-left, top-right, bottom-left, bottom-right, centre, then the
    same five mirrored left-right.

    Args:
        images: (batch, H, W, C) raw pixels.
        crop_size: side of the square crop, or ``(crop_h, crop_w)``; at most the image size.
        output_size: ``(height, width)`` each crop is resized to (bilinear); None keeps the
            crop size.

    Returns:
        A list of 10 arrays of shape (batch, out_h, out_w, C), in the order above.

    Example:
    ```python
    views = ten_crop_views(images, 28, output_size=(32, 32))
    ```
    """
    array = _to_numpy(images)
    height, width = array.shape[1:3]
    if isinstance(crop_size, int | np.integer):
        crop_h = crop_w = int(crop_size)
    else:
        crop_h, crop_w = (int(v) for v in crop_size)
    if not (0 < crop_h <= height and 0 < crop_w <= width):
        raise UserError(
            f"crop_size must be positive and fit in the {height}x{width} images. "
            f"Received: crop_size={crop_size}"
        )
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    origins = [
        (0, 0),
        (0, width - crop_w),
        (height - crop_h, 0),
        (height - crop_h, width - crop_w),
        (top, left),
    ]
    crops = [array[:, y : y + crop_h, x : x + crop_w, :] for y, x in origins]
    views = crops + [crop[:, :, ::-1, :] for crop in crops]
    if output_size is not None:
        views = [_resize(view, tuple(int(v) for v in output_size)) for view in views]
    return [np.ascontiguousarray(view) for view in views]


def _check_mode(tta) -> str | None:
    if tta not in TTA_MODES:
        raise UserError(
            f"tta must be one of None, 'flip' or 'multicrop'. Received: tta={tta!r}"
        )
    return None if tta in (None, "none") else tta


def tta_views(
    images, tta: str | None, image_size: tuple[int, int] | None,
    crop_fraction: float = DEFAULT_CROP_FRACTION,
) -> list[np.ndarray]:
    """The views a TTA policy feeds to a model whose input size is ``image_size``.

    Images larger than the model input are cropped at the model's size directly (no
    resize); images at the model's size are cropped at ``crop_fraction`` of their side and
    resized back up.
    """
    mode = _check_mode(tta)
    array = _to_numpy(images)
    size = image_size or tuple(array.shape[1:3])
    if mode == "multicrop":
        height, width = array.shape[1:3]
        if height >= size[0] and width >= size[1] and (height, width) != tuple(size):
            return ten_crop_views(array, size, output_size=None)
        crop = (max(1, round(crop_fraction * height)), max(1, round(crop_fraction * width)))
        return ten_crop_views(array, crop, output_size=size)
    array = _resize(array, size)
    if mode == "flip":
        return flip_views(array)
    return [array]


def predict_tta(
    model, images, tta: str | None = None, *, batch_size: int = 32,
    crop_fraction: float = DEFAULT_CROP_FRACTION,
) -> np.ndarray:
    """Class probabilities averaged over the test-time views of each image.

    Args:
        model: a ``keras.Model`` (or anything with ``predict``/``input_shape``) mapping raw
            [0, 255] images to probabilities.
        images: (batch, H, W, C) raw pixels (any size: resized to the model's input size).
        tta: None (plain prediction), ``"flip"`` or ``"multicrop"`` (10 crops).
        batch_size: images per forward pass.
        crop_fraction: side kept by multicrop crops when images come at the model's size.

    Returns:
        float32 array (batch, num_classes).

    Example:
    ```python
    probs = predict_tta(model, x_test, tta="flip")
    ```
    """
    views = tta_views(images, tta, model_image_size(model), crop_fraction)
    # One predict call over all views (predict has a fixed cost per call).
    stacked = np.concatenate(views) if len(views) > 1 else views[0]
    probs = np.asarray(model.predict(stacked, batch_size=batch_size, verbose=0), np.float32)
    return probs.reshape(len(views), len(views[0]), -1).mean(axis=0)
