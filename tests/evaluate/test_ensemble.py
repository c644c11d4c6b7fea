"""Tests for tl_kit.evaluate.ensemble: members of different sizes, weights, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from _colour import NAMES, conv_model

from tl_kit.errors import UserError
from tl_kit.evaluate import ensemble, evaluate_model


def test_ensemble_of_different_sizes_averages_saves_and_loads(tmp_path):
    small, large = conv_model(16, "net", 0), conv_model(24, "net", 1)
    images = np.random.default_rng(0).uniform(0, 255, (4, 24, 24, 3)).astype("float32")
    both = ensemble([small, large])
    assert both.input_shape == (None, 24, 24, 3)
    p_small = small.predict(tf.image.resize(images, (16, 16)).numpy(), verbose=0)
    p_large = large.predict(images, verbose=0)
    got = both.predict(images, verbose=0)
    np.testing.assert_allclose(got, (p_small + p_large) / 2, atol=1e-6)

    weighted = ensemble([small, large], weights=[3, 1], name="weighted")
    np.testing.assert_allclose(weighted.predict(images, verbose=0),
                               0.75 * p_small + 0.25 * p_large, atol=1e-6)

    file = tmp_path / "ensemble.keras"
    weighted.save(file)
    loaded = keras.saving.load_model(file)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               weighted.predict(images, verbose=0), atol=1e-6)
    report = evaluate_model(loaded, (images, np.array([0, 1, 2, 0])), NAMES, top_k=1)
    assert report["num_samples"] == 4 and report["top_k"] == 1
    with pytest.raises(UserError, match="weights"):
        ensemble([small, large], weights=[1])
