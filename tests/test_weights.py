"""Weights: ImageNet fails fast offline (never touching the network), files and run dirs load."""

from __future__ import annotations

import os
import socket
import time

import keras
import numpy as np
import pytest

from tl_kit import weights as W
from tl_kit.backbones import get_backbone


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network at all: every socket connect fails at once; Keras cache in tmp_path."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return calls


def test_imagenet_offline_fails_at_once_naming_file_and_folder(offline, tmp_path):
    spec = get_backbone("keras:vgg16")
    start = time.perf_counter()
    with pytest.raises(W.WeightsUnavailableError) as err:
        spec.build((32, 32, 3), weights="imagenet")
    assert time.perf_counter() - start < 10
    msg = str(err.value)
    folder = os.path.join(str(tmp_path / "keras_home"), "models")
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert folder in msg and "https://" in msg and "Received: weights='imagenet'" in msg
    assert offline, "the connectivity check ran (and was refused)"
    keras.backend.clear_session()


def test_imagenet_uses_a_cached_file_without_network(offline, tmp_path, monkeypatch):
    spec = get_backbone("keras:mobilenetv3small")
    donor = spec.build((32, 32, 3), weights=None)
    donor.set_weights([np.full(w.shape, 0.5, "float32") for w in donor.get_weights()])
    # put a file under the exact name Keras asks for, then build with weights="imagenet"
    with pytest.raises(W.WeightsUnavailableError) as err:
        spec.build((32, 32, 3), weights="imagenet")
    fname = str(err.value).split("'")[1]
    folder = tmp_path / "keras_home" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    # Keras Applications load legacy .h5 files by name: write one with the same layout
    import h5py  # noqa: F401  (keras dependency)
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(folder / fname, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    # a file whose hash does not match is not trusted: still a fast, clear error offline
    with pytest.raises(W.WeightsUnavailableError, match="incomplete or corrupt"):
        spec.build((32, 32, 3), weights="imagenet")
    # a valid cached file is used without any network access
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "validate_file", lambda *a, **k: True)
    offline.clear()
    built = spec.build((32, 32, 3), weights="imagenet")
    assert not offline, "a cached file needs no connectivity check"
    np.testing.assert_allclose(built.get_weights()[0], donor.get_weights()[0])
    keras.backend.clear_session()


def test_weights_from_a_keras_model_with_a_backbone(tmp_path):
    spec = get_backbone("lenet5")
    backbone = spec.build((32, 32, 1))
    inp = keras.Input((32, 32, 1))
    wrapped = keras.Model(backbone.input, backbone.output, name="backbone")
    out = keras.layers.Dense(3)(keras.layers.Flatten()(wrapped(inp)))
    clf = keras.Model(inp, out)
    clf.get_layer("backbone").set_weights(
        [np.random.default_rng(1).normal(size=w.shape) for w in backbone.get_weights()]
    )
    run = tmp_path / "run"
    run.mkdir()
    clf.save(run / "model.keras")
    for source in (run, run / "model.keras"):
        new = spec.build((32, 32, 1), weights=str(source))
        for a, b in zip(new.get_weights(), clf.get_layer("backbone").get_weights(), strict=True):
            np.testing.assert_allclose(a, b)
    other = get_backbone("keras:vgg16")
    with pytest.raises(ValueError, match="does not match"):
        other.build((32, 32, 3), weights=str(run))
    with pytest.raises(FileNotFoundError, match="No trained model"):
        spec.build((32, 32, 1), weights=str(tmp_path))


def test_missing_path_and_bad_values():
    spec = get_backbone("lenet5")
    with pytest.raises(FileNotFoundError, match="Received: weights='/no/such.h5'"):
        spec.build((32, 32, 1), weights="/no/such.h5")
    with pytest.raises(ValueError, match="Received: weights=3"):
        spec.build((32, 32, 1), weights=3)


def test_fetch_weights_reports_offline_clearly(offline):
    with pytest.raises(W.WeightsUnavailableError, match="densenet121"):
        W.fetch_weights(["densenet121"], verbose=False)
    with pytest.raises(ValueError, match="no published ImageNet weights"):
        W.fetch_weights(["lenet5"], verbose=False)
    keras.backend.clear_session()


def test_weights_file_lookup_never_initialises_a_variable(offline, monkeypatch):
    """``tl-kit weights list`` builds each backbone only for the file name it asks for: no
    variable is initialised (all 47 backbones: 25 s instead of 77 s, 0.63 GB not 2.3 GB)."""
    def refuse(self, *a, **k):
        raise AssertionError("a variable was initialised")

    monkeypatch.setattr(keras.Variable, "_initialize_with_initializer", refuse)  # the backend's
    for name, file in (("keras:resnet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
                       ("vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")):
        path, url = W.imagenet_weights_file(get_backbone(name))
        assert os.path.basename(path) == file and url.endswith(file)
        assert os.path.dirname(path) == os.path.join(os.environ["KERAS_HOME"], "models")
