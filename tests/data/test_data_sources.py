"""tl_kit.data.sources / arrays: (x, y) arrays, tf.data, dicts of splits, a tfds mock."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tl_kit.data import DatasetInfo, load_data
from tl_kit.errors import UserError

SIZE = (16, 16)


def test_arrays_int_and_onehot(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 20, 24, 3)).astype(np.uint8)
    y = np.repeat(np.arange(3), 10)
    d1 = load_data((x, y), image_size=SIZE, validation_split=0.2, seed=1, run_dir=tmp_path)
    d2 = load_data((x, np.eye(3)[y]), image_size=SIZE, validation_split=0.2, seed=1)
    assert isinstance(d1.info, DatasetInfo) and d1.info.num_classes == 3
    assert d1.info.source == "arrays" and d1.paths("train") is None
    np.testing.assert_array_equal(d1.arrays("val")[1], d2.arrays("val")[1])
    xv, yv = d1.arrays("val")
    assert xv.shape == (6, 16, 16, 3) and xv.dtype == np.float32 and yv.dtype.kind == "i"
    assert json.loads((tmp_path / "manifest.json").read_text())["kind"] == "indices"
    d3 = load_data((x, y), image_size=SIZE, validation_split=0.2, seed=5, run_dir=tmp_path)
    np.testing.assert_array_equal(d3.arrays("val")[0], xv)  # manifest reused
    # already the right size: pixels untouched; the pipeline is float32 [0, 255] + one-hot
    d4 = load_data((x, y), image_size=(20, 24), validation_split=0.0, seed=1)
    xb, yb = next(iter(d4.dataset("train", batch_size=30, shuffle=False)))
    np.testing.assert_array_equal(xb.numpy(), x.astype(np.float32))
    np.testing.assert_array_equal(yb.numpy(), np.eye(3)[y])
    with pytest.raises(UserError, match="num_classes"):
        load_data((x, np.eye(3)[y]), image_size=SIZE, num_classes=4)
    with pytest.raises(UserError, match="labels"):
        load_data((x, y[:5]), image_size=SIZE)


def test_tf_data_and_dict_sources():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 24, 24, 3)).astype(np.uint8)
    y = np.repeat(np.arange(2), 10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(6)
    data = load_data(ds, image_size=SIZE, validation_split=0.2, class_names=["cat", "dog"])
    assert data.info.source == "tf.data" and data.info.class_names == ["cat", "dog"]
    assert data.info.split_counts["val"] == {"cat": 2, "dog": 2}
    d = load_data({"train": (x, y), "validation": tf.data.Dataset.from_tensor_slices((x[:4], y[:4]))},
                  image_size=SIZE, validation_split=0.0)
    assert d.size("train") == 20 and d.size("val") == 4 and not d.has("test")
    grey = load_data((x, y), image_size=SIZE, channels=1, validation_split=0.0)
    assert grey.arrays("train")[0].shape == (20, 16, 16, 1)


def test_tfds_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        data = load_data("tfds:beans", image_size=SIZE, validation_split=0.2)
    assert data.info.class_names == ["angular_leaf_spot", "bean_rust", "healthy"]
    assert data.info.source == "tfds:beans"
    assert data.size("train") == 12 and data.size("val") == 12 and data.size("test") == 12
    x, y = next(iter(data.dataset("train", batch_size=5)))
    assert x.shape == (5, 16, 16, 3) and y.shape == (5, 3)
