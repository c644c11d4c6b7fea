"""Preprocess layer: each mode equals keras.applications' preprocess_input; it serialises."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.layers import Preprocess

RNG = np.random.default_rng(0)
X = RNG.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize(
    "mode, reference",
    [
        ("caffe", keras.applications.vgg16.preprocess_input),
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("torch", keras.applications.densenet.preprocess_input),
        ("unit", lambda x: x / 255.0),
        ("none", lambda x: x),
    ],
)
def test_modes_match_keras_applications(mode, reference):
    out = keras.ops.convert_to_numpy(Preprocess(mode)(X))
    np.testing.assert_allclose(out, reference(X.copy()), rtol=1e-5, atol=1e-4)


def test_grey_images_use_the_mean_statistics():
    grey = X[..., :1]
    out = keras.ops.convert_to_numpy(Preprocess("caffe")(grey))
    np.testing.assert_allclose(out, grey - np.mean([103.939, 116.779, 123.68]), rtol=1e-5)
    assert Preprocess("torch")(grey).shape == grey.shape


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="Received: mode='bgr'"):
        Preprocess("bgr")


def test_round_trip_in_a_saved_model(tmp_path):
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, Preprocess("caffe", name="preprocess")(inp))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("preprocess").mode == "caffe"
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
