"""Tests for tl_kit.tta: views are exact, and averaged predictions are what they claim."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.errors import UserError
from tl_kit.tta import flip_views, predict_tta, ten_crop_views, tta_views


def _gap_model(size: int = 8) -> keras.Model:
    """Pixel-wise ops + global average pooling: exactly invariant to flips."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def _conv_model(size: int = 8) -> keras.Model:
    """A model that is NOT flip invariant (dense on flattened pixels)."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def _images(n=2, h=5, w=6, c=3) -> np.ndarray:
    return np.arange(n * h * w * c, dtype=np.float32).reshape(n, h, w, c)


def test_flip_view_is_exact_mirror():
    images = _images()
    original, mirrored = flip_views(images)
    np.testing.assert_array_equal(original, images)
    for col in range(images.shape[2]):
        np.testing.assert_array_equal(mirrored[:, :, col], images[:, :, -1 - col])


def test_ten_crops_have_the_right_positions():
    images = _images(h=5, w=6)
    views = ten_crop_views(images, 3)
    assert len(views) == 10
    expected = [
        images[:, 0:3, 0:3],  # top-left
        images[:, 0:3, 3:6],  # top-right
        images[:, 2:5, 0:3],  # bottom-left
        images[:, 2:5, 3:6],  # bottom-right
        images[:, 1:4, 1:4],  # centre: (5-3)//2, (6-3)//2
    ]
    for view, crop in zip(views[:5], expected, strict=True):
        np.testing.assert_array_equal(view, crop)
    for view, crop in zip(views[5:], expected, strict=True):
        np.testing.assert_array_equal(view, crop[:, :, ::-1])


def test_ten_crops_resize_back_and_reject_bad_sizes():
    views = ten_crop_views(_images(h=8, w=8), (6, 4), output_size=(8, 8))
    assert all(view.shape == (2, 8, 8, 3) for view in views)
    with pytest.raises(UserError, match="crop_size"):
        ten_crop_views(_images(h=5, w=6), 7)


def test_flip_tta_on_flip_invariant_model_equals_plain_prediction():
    model = _gap_model()
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    plain = predict_tta(model, images)
    np.testing.assert_allclose(plain, model.predict(images, verbose=0), atol=1e-7)
    np.testing.assert_allclose(predict_tta(model, images, tta="flip"), plain, atol=1e-6)


def test_tta_averages_the_views():
    model = _conv_model()
    images = np.random.default_rng(1).uniform(0, 255, (3, 8, 8, 3)).astype("float32")
    flipped = images[:, :, ::-1]
    expected = (model.predict(images, verbose=0) + model.predict(flipped, verbose=0)) / 2
    got = predict_tta(model, images, tta="flip")
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, model.predict(images, verbose=0), atol=1e-4)

    crops = ten_crop_views(images, 7, output_size=(8, 8))  # round(0.875 * 8) = 7
    expected = np.mean([model(v).numpy() for v in crops], axis=0)
    np.testing.assert_allclose(predict_tta(model, images, tta="multicrop"), expected, atol=1e-6)
    np.testing.assert_allclose(predict_tta(model, images, tta="multicrop").sum(-1), 1, atol=1e-5)


def test_tta_views_crop_larger_images_at_model_size_and_resize_others():
    big = np.random.default_rng(2).uniform(0, 255, (2, 10, 10, 3)).astype("float32")
    views = tta_views(big, "multicrop", (8, 8))
    np.testing.assert_array_equal(views[0], big[:, :8, :8])  # no resize, exact pixels
    assert [v.shape for v in tta_views(big, None, (8, 8))] == [(2, 8, 8, 3)]
    assert len(tta_views(big, "flip", (8, 8))) == 2


def test_unknown_tta_mode_is_rejected():
    with pytest.raises(UserError, match="Received: tta='rotate'"):
        predict_tta(_gap_model(), _images(h=8, w=8), tta="rotate")
