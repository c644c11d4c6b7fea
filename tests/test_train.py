"""Learner / finetune on real digits (scikit-learn), LeNet-5 at 32x32: tiny and fast."""

from __future__ import annotations

import csv
import json
import socket
import time

import keras
import numpy as np
import pytest
import tomllib

from tl_kit.recipes import Recipe, Stage
from tl_kit.train import Learner, finetune


@pytest.fixture(scope="module")
def digits():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    keep = y < 3
    x, y = x[keep], y[keep]
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 15, replace=False) for c in range(3)])
    return x[idx], y[idx]


@pytest.fixture(scope="module")
def pretrained_file(tmp_path_factory, digits):
    """A LeNet-5 backbone weights file (stands in for a user's own pretraining)."""
    from tl_kit.backbones import get_backbone

    keras.utils.set_random_seed(3)
    m = get_backbone("lenet5").build((32, 32, 1))
    path = tmp_path_factory.mktemp("w") / "lenet_backbone.weights.h5"
    m.save_weights(path)
    return str(path)


def one_stage(**kw) -> Recipe:
    return Recipe(name="t", dropout=kw.pop("dropout", 0.2), stages=[Stage(**kw)])


def test_finetune_trains_and_writes_the_run_directory(tmp_path, digits):
    x, y = digits
    run = tmp_path / "run"
    learner = finetune("lenet5", data=(x, y), weights=None, run_dir=run, verbose=0,
                       recipe=Recipe(name="two", stages=[
                           Stage(name="head", epochs=2, cache_copies=1, early_stopping=0),
                           Stage(name="all", trainable="all", epochs=1, augment="none")]))
    m = learner.model
    assert isinstance(m, keras.Model)
    assert [layer.name for layer in m.layers] == [
        "image", "preprocess", "backbone", "head_pool", "head_dropout", "predictions"]
    assert m.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert m.get_layer("head_pool").output.shape[-1] == 400  # LeNet-5's conv features
    for name in ("config.toml", "history.csv", "metrics.json", "model.keras", "manifest.json", "train.log"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "1_head", "1_head.weights.h5", "2_all", "2_all.weights.h5"]
    assert (run / "checkpoints" / "2_all" / "state.json").is_file()  # per-epoch checkpoints
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert any((run / "logs").rglob("*"))
    cfg = tomllib.loads((run / "config.toml").read_text())
    assert cfg["run"]["backbone"] == "lenet5" and cfg["recipe"]["name"] == "two"
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("head", "1"), ("head", "2"), ("all", "1")]
    assert "val_loss" in rows[0]
    assert 0 <= json.loads((run / "metrics.json").read_text())["val"]["accuracy"] <= 1
    log = (run / "train.log").read_text()
    assert "trainable backbone blocks: none" in log and "trainable parameters" in log
    # evaluate and predict
    res = learner.evaluate((x, y))
    assert 0 <= res["accuracy"] <= 1
    out = learner.predict(x[:4])
    assert out["probabilities"].shape == (4, 3)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1, rtol=1e-5)
    assert set(out["labels"]) <= set(learner.class_names)
    # the saved model reloads and predicts the same
    loaded = keras.saving.load_model(run / "model.keras")
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), out["probabilities"], atol=1e-5)


@pytest.mark.parametrize("augment", ["none"])
def test_cached_and_uncached_head_training_give_the_same_model(tmp_path, digits, pretrained_file, augment):
    x, y = digits
    preds = []
    for cached in (True, False):
        keras.backend.clear_session()
        stage = Stage(trainable="head", epochs=4, augment=augment, batch_size=1000,
                      early_stopping=0, cache_features=cached, learning_rate=1e-2)
        learner = Learner("lenet5", 3, weights=pretrained_file, recipe=one_stage(**vars(stage), dropout=0.0),
                          run_dir=tmp_path / str(cached), verbose=0, tensorboard=False, seed=7)
        before = learner.backbone.get_weights()
        learner.fit((x, y))
        log = (tmp_path / str(cached) / "train.log").read_text()
        assert ("feature cache" in log) == cached
        for a, b in zip(before, learner.backbone.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)  # the frozen backbone did not move
        preds.append(learner.model.predict(x, verbose=0))
    assert np.abs(preds[0] - 1 / 3).max() > 0.05, "the head learned something"
    np.testing.assert_allclose(preds[0], preds[1], atol=2e-5)


def test_medium_stage_unfreezes_only_the_last_block(tmp_path, digits, pretrained_file):
    x, y = digits
    recipe = Recipe(name="medium", stages=[
        Stage(name="head", epochs=1, early_stopping=0, cache_copies=0),
        Stage(name="finetune", trainable="default", epochs=2, learning_rate=1e-3, augment="none")])
    learner = Learner("lenet5", 3, weights=pretrained_file, recipe=recipe, run_dir=tmp_path,
                      verbose=0, tensorboard=False)
    b1 = learner.backbone.get_layer("block1_conv1").get_weights()[0].copy()
    b2 = learner.backbone.get_layer("block2_conv1").get_weights()[0].copy()
    learner.fit((x, y))
    np.testing.assert_array_equal(b1, learner.backbone.get_layer("block1_conv1").get_weights()[0])
    assert not np.allclose(b2, learner.backbone.get_layer("block2_conv1").get_weights()[0])
    log = (tmp_path / "train.log").read_text()
    assert "trainable backbone blocks: block2_" in log


def test_batchnorm_stays_in_inference_mode(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    y = np.arange(12) % 2
    recipe = one_stage(name="all", trainable="all", epochs=1, augment="none", early_stopping=0)
    learner = Learner("keras:mobilenetv3small", 2, weights=None, image_size=32, recipe=recipe,
                      run_dir=tmp_path, verbose=0, tensorboard=False, save_model=False)
    bn = learner.backbone.get_layer("conv_bn")
    mean = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    learner.fit((x, y))
    np.testing.assert_array_equal(mean, keras.ops.convert_to_numpy(bn.moving_mean))
    assert not bn.trainable
    assert learner.backbone.get_layer("conv").trainable


def test_regime_auto_chooses_and_says_why(tmp_path, digits, pretrained_file):
    x, y = digits
    learner = Learner("lenet5", 3, weights=pretrained_file, run_dir=tmp_path, verbose=0,
                      tensorboard=False, save_model=False)
    learner.recipe = None
    # shorten the built-in recipe the learner will pick
    import tl_kit.train as T

    original = T.builtin_recipe
    T.builtin_recipe = lambda name: original(name).with_stage_overrides(epochs=1, cache_copies=0)
    try:
        learner.fit((x, y))
    finally:
        T.builtin_recipe = original
    cfg = tomllib.loads((tmp_path / "config.toml").read_text())
    assert cfg["run"]["regime"] == "small"
    assert "training images per class" in cfg["run"]["regime_reason"]
    assert "regime: small" in (tmp_path / "train.log").read_text()
    # without pretrained weights, auto trains every layer
    scratch = Learner("lenet5", 3, weights=None, verbose=0)
    assert scratch._resolve_recipe(learner.data).name == "large"


def test_weights_from_a_previous_run_directory(tmp_path, digits):
    x, y = digits
    first = finetune("lenet5", data=(x, y), weights=None, run_dir=tmp_path / "a", verbose=0,
                     tensorboard=False, recipe=one_stage(trainable="all", epochs=1, augment="none"))
    second = Learner("lenet5", 3, weights=str(tmp_path / "a"), run_dir=tmp_path / "b", verbose=0)
    for a, b in zip(first.backbone.get_weights(), second.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_default_weights_are_imagenet_and_fail_fast_offline(monkeypatch, tmp_path):
    from tl_kit.weights import WeightsUnavailableError

    def refuse(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="weights_mobilenet_v3_small"):
        finetune("keras:mobilenetv3small", num_classes=3, image_size=32, verbose=0)
    assert time.perf_counter() - start < 15
    assert Learner("lenet5", verbose=0).weights is None  # no ImageNet weights published
    keras.backend.clear_session()
