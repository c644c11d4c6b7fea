"""Tests for tl_kit.fold: BatchNormalization folded into the layer before it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.fold import FoldedBatchNormalization, fold_batchnorm, foldable_pairs


def _randomise_bn(model: keras.Model, seed: int = 1) -> None:
    """Statistics far from the initial (0, 1, 1, 0), so a wrong fold shows."""
    rng = np.random.default_rng(seed)
    draw = {"gamma": lambda s: rng.uniform(0.5, 2.0, s), "beta": lambda s: rng.normal(0, 0.5, s),
            "moving_mean": lambda s: rng.normal(0, 0.5, s), "moving_variance": lambda s: rng.uniform(0.2, 3.0, s)}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([draw[w.path.split("/")[-1]](tuple(w.shape)).astype("float32")
                               for w in layer.weights])


def _outputs(model, x):
    return np.asarray(model(x, training=False), dtype="float64")


def _assert_same_function(a: keras.Model, b: keras.Model, shape, rtol=1e-5):
    x = np.random.default_rng(0).normal(size=(3, *shape)).astype("float32")
    ya, yb = _outputs(a, x), _outputs(b, x)
    assert np.abs(ya).max() > 1e-3  # the comparison means something
    np.testing.assert_allclose(yb, ya, rtol=0, atol=rtol * np.abs(ya).max())


@pytest.mark.parametrize("name,size,expect_all", [
    ("mobilenet_v2", 32, True),      # Conv2D and DepthwiseConv2D (bias-free) + BN
    ("resnet18", 32, True),          # tl_kit's bias-free v1.5 blocks, BN before the Add
    ("vgg16_bn", 32, True),          # convolutions WITH bias + BN
    ("keras:xception", 71, True),    # SeparableConv2D + BN
    ("keras:resnet50v2", 32, False),  # pre-activation: BN after an Add is left alone
])
def test_folded_backbones_compute_the_same_function(name, size, expect_all):
    from tl_kit.backbones import get_backbone

    keras.utils.set_random_seed(0)
    model = get_backbone(name).build(input_shape=(size, size, 3), weights=None)
    _randomise_bn(model)
    before = [w.copy() for w in model.get_weights()]
    n_bn = sum(type(layer) is keras.layers.BatchNormalization for layer in model.layers)
    folded = fold_batchnorm(model, verify=False)
    _assert_same_function(model, folded, (size, size, 3))
    pairs = foldable_pairs(model)
    left = sum(type(layer) is keras.layers.BatchNormalization for layer in folded.layers)
    assert sum(isinstance(layer, FoldedBatchNormalization) for layer in folded.layers) == len(pairs) > 0
    assert left == n_bn - len(pairs) and (left == 0) == expect_all
    assert [layer.name for layer in folded.layers][1:] == [layer.name for layer in model.layers][1:]
    for a, b in zip(before, model.get_weights(), strict=True):  # the original is untouched
        np.testing.assert_array_equal(a, b)


def test_fold_rules_on_a_hand_built_model():
    keras.utils.set_random_seed(0)
    x = keras.Input((12, 12, 4))
    a = keras.layers.Conv2D(8, 3, padding="same", name="conv_bias")(x)              # bias: folded
    a = keras.layers.BatchNormalization(name="bn_bias")(a)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_relu")(a)
    b = keras.layers.BatchNormalization(name="bn_after_relu")(b)                    # not folded
    c = keras.layers.Conv2D(8, 1, use_bias=False, name="conv_shared")(b)
    c1 = keras.layers.BatchNormalization(name="bn_shared")(c)                       # conv read twice
    c = keras.layers.Add(name="add")([c, c1])
    d = keras.layers.Conv2D(8, 3, padding="same", groups=2, use_bias=False, name="conv_groups")(c)
    d = keras.layers.BatchNormalization(center=False, scale=False, name="bn_plain")(d)  # folded
    e = keras.layers.Conv2D(6, 1, name="conv_axis1")(d)
    e = keras.layers.BatchNormalization(axis=1, name="bn_axis1")(e)                 # not channels
    f = keras.layers.GlobalAveragePooling2D(name="gap")(e)
    f = keras.layers.Dense(5, name="dense")(f)
    f = keras.layers.BatchNormalization(name="bn_dense")(f)                         # folded
    model = keras.Model(x, f)
    _randomise_bn(model)
    assert foldable_pairs(model) == {"conv_bias": "bn_bias", "conv_groups": "bn_plain", "dense": "bn_dense"}
    folded = fold_batchnorm(model)
    _assert_same_function(model, folded, (12, 12, 4))
    for kept in ("bn_after_relu", "bn_shared", "bn_axis1"):
        assert type(folded.get_layer(kept)) is keras.layers.BatchNormalization
    assert folded.get_layer("conv_groups").use_bias and not model.get_layer("conv_groups").use_bias


def test_nothing_to_fold_returns_the_model_itself():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.ReLU(),
                              keras.layers.BatchNormalization()])
    assert foldable_pairs(model) == {}
    assert fold_batchnorm(model) is model


def test_subclassed_layers_are_not_folded():
    class ScaledConv(keras.layers.Conv2D):  # its call could differ from Conv2D's
        pass

    class MyBN(keras.layers.BatchNormalization):
        pass

    x = keras.Input((8, 8, 3))
    y = keras.layers.BatchNormalization(name="bn1")(ScaledConv(4, 3, name="c1")(x))
    y = MyBN(name="bn2")(keras.layers.Conv2D(4, 3, name="c2")(y))
    assert foldable_pairs(keras.Model(x, y)) == {}


def test_verify_catches_a_wrong_fold(monkeypatch):
    from tl_kit import fold

    x = keras.Input((6,))
    model = keras.Model(x, keras.layers.BatchNormalization()(keras.layers.Dense(4)(x)))
    _randomise_bn(model)
    real = fold._folded_weights
    monkeypatch.setattr(fold, "_folded_weights", lambda layer, bn: [w * 1.1 for w in real(layer, bn)])
    with pytest.raises(ValueError, match="changed its output"):
        fold_batchnorm(model)


def test_folded_model_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 3))
    y = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, name="conv")(x))
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D()(y))
    _randomise_bn(model)
    folded = fold_batchnorm(model)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras")
    assert isinstance(loaded.get_layer("bn"), FoldedBatchNormalization)
    _assert_same_function(model, loaded, (8, 8, 3))


def test_feature_cache_uses_one_folded_backbone_for_train_and_val(tmp_path, monkeypatch):
    """The Learner's cache folds once for both splits and gives the unfolded features."""
    from tl_kit import fold
    from tl_kit.data import load_data
    from tl_kit.train import Learner
    from tl_kit.train.feature_cache import extract_features

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(24, 32, 32, 3)).astype("uint8")
    y = np.arange(24) % 2
    data = load_data({"train": (x[:16], y[:16]), "val": (x[16:], y[16:])}, image_size=(32, 32))
    keras.backend.clear_session()
    learner = Learner("mobilenet_v2", 2, weights=None, image_size=32, run_dir=str(tmp_path / "run"),
                      verbose=0, tensorboard=False)
    _randomise_bn(learner.backbone)
    calls = []
    real = fold.fold_batchnorm
    monkeypatch.setattr(fold, "fold_batchnorm", lambda m, **kw: calls.append(m.name) or real(m, **kw))
    (ftr, ltr), (fva, lva) = extract_features(learner.classifier, data, [("train", None, 0), ("val", None, 0)])
    assert len(calls) == 1 and ftr.shape == (16, 1280) and fva.shape == (8, 1280)
    plain = learner.classifier.feature_model(fold=False)
    for feats, split in ((ftr, "train"), (fva, "val")):
        images = np.concatenate([b[0] for b in data.dataset(split, batch_size=8, shuffle=False)])
        ref = np.asarray(plain(images, training=False))
        assert np.abs(ref).max() > 1e-3
        np.testing.assert_allclose(feats, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_array_equal(ltr.argmax(1), data.arrays("train")[1])
    np.testing.assert_array_equal(lva.argmax(1), data.arrays("val")[1])
