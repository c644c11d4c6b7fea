"""Shared test helpers: small input shapes, random images, output comparison."""

from __future__ import annotations

import keras
import numpy as np
import pytest


def small_input_shape(spec) -> tuple[int, int, int]:
    """The smallest cheap input for a registered model: its ``min_size`` (at least 32)."""
    size = max(spec.min_size, 32)
    return (size, size, spec.default_size[2])


def random_images(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> np.ndarray:
    """``n`` float32 images of ``shape`` with raw pixel values in [0, 255]."""
    return np.random.default_rng(seed).uniform(0.0, 255.0, (n, *shape)).astype("float32")


def outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """The model's outputs on ``x`` (inference mode) as a list of numpy arrays."""
    y = model(x, training=False)
    return [keras.ops.convert_to_numpy(t) for t in (y if isinstance(y, (list, tuple)) else [y])]


def assert_same_outputs(a: keras.Model, b: keras.Model, x: np.ndarray, rtol=1e-5, atol=1e-5):
    ya, yb = outputs(a, x), outputs(b, x)
    assert len(ya) == len(yb)
    for u, v in zip(ya, yb, strict=True):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


def pytest_configure(config):
    """Fixtures wider than one test (module, session) and what they run get a cache of this
    process's own too, never the user's."""
    import os
    import tempfile

    config._tl_kit_cache = tempfile.mkdtemp(prefix="tl_kit_test_cache_")
    os.environ["TL_KIT_CACHE_DIR"] = config._tl_kit_cache


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(getattr(config, "_tl_kit_cache", None) or "", ignore_errors=True)


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own tl_kit cache (hygiene indexes, kept pixels): tests never write
    to the user's ``~/.cache/tl_kit``, and no test sees another's verdicts."""
    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(tmp_path_factory.mktemp("tl_kit_cache")))


@pytest.fixture
def fresh_session():
    """Clear Keras' global state (layer-name counters, graph) before and after a test."""
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()
