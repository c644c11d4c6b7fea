"""Learner / finetune on real digits (scikit-learn), LeNet-5 at 32x32: tiny and fast."""

from __future__ import annotations

import csv
import json
import os
import socket
import time
import tomllib

import keras
import numpy as np
import pytest

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
    assert (run / "plots" / "history.png").stat().st_size > 0  # training curves
    # evaluate (tl_kit.evaluate.evaluate_model) merges its report into metrics.json
    res = learner.evaluate((x, y), top_k=2)
    assert 0 <= res["accuracy"] <= res["top_k_accuracy"] <= 1 and res["top_k"] == 2
    assert set(res["per_class"]) == {"0", "1", "2"} and len(res["confusion_matrix"]) == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val", "train_seconds", "evaluate", "per_class", "most_confused"} <= set(metrics)
    assert metrics["accuracy"] == res["accuracy"]
    for name in ("confusion_matrix.csv", "plots/confusion_matrix.png", "plots/worst_predictions.png"):
        assert (run / name).stat().st_size > 0, name
    # predict (tl_kit.predict.predict_images): one dict per image, names and probabilities
    out = learner.predict(x[:4], top_k=2)
    assert len(out) == 4 and all(len(o["top"]) == 2 for o in out)
    probs = np.array([[o["probs"][c] for c in learner.class_names] for o in out])
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert {o["top"][0][0] for o in out} <= set(learner.class_names)
    flip = learner.predict(x[:4], tta="flip")
    assert len(flip) == 4 and not np.allclose(
        [o["probs"]["0"] for o in flip], probs[:, 0], atol=1e-7)  # the flipped views count
    # the saved model reloads (load_for_inference: model.keras + class_names.json)
    from tl_kit.predict import load_for_inference

    loaded, names = load_for_inference(run)
    assert names == learner.class_names
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), probs, atol=1e-5)


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
    import tl_kit.train.regime as T

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
    # without pretrained weights, auto trains every layer from the start, BatchNorm in
    # training mode, no head-only / feature-cache stage, and says why
    scratch = Learner("lenet5", 3, weights=None, verbose=0)
    recipe = scratch.resolve_recipe(learner.data)
    assert recipe.name == "scratch" and scratch.regime == "scratch"
    assert [(s.trainable, s.train_bn, s.cache_features) for s in recipe.stages] == [("all", True, False)]
    assert "weights=None" in scratch.regime_reason and "random" in scratch.regime_reason


@pytest.mark.parametrize("regime", ["small", "medium"])
def test_head_only_on_random_weights_warns(regime, digits):
    learner = Learner("keras:mobilenetv3small", 3, weights=None, image_size=32, regime=regime,
                      verbose=0, save_model=False)
    from tl_kit.train.regime import random_feature_warnings

    recipe = learner.resolve_recipe(None)
    warnings = random_feature_warnings(recipe, learner.weights, learner.classifier)
    assert any("WARNING" in line and "meaningless" in line for line in warnings)


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


def test_no_pretrained_weights_trains_from_scratch_with_batchnorm_in_training_mode(tmp_path, monkeypatch):
    """weights=None + regime="auto": a deep BatchNorm network learns (the head-first recipes
    with BatchNorm in inference mode stay at loss ln(K): features ~1e-12)."""
    import tl_kit.train.regime as T

    rng = np.random.default_rng(0)
    # 32 per class (16 validation images): with 16 per class the 6 validation images made the
    # check a coin toss between 5/6 and 6/6; without precise BatchNorm this set stays at 0.5.
    x = np.concatenate([rng.uniform(0, 60, (32, 32, 32, 3)), rng.uniform(190, 255, (32, 32, 32, 3))])
    y = np.repeat([0, 1], 32)
    original = T.scratch_recipe
    monkeypatch.setattr(T, "scratch_recipe", lambda **k: original(
        epochs=4, augment="none", batch_size=32, early_stopping=0))
    learner = Learner("mobilenet_v2", 2, weights=None, image_size=32, run_dir=tmp_path, verbose=0,
                      tensorboard=False, save_model=False)
    bn = [la for la in learner.backbone._flatten_layers() if isinstance(la, keras.layers.BatchNormalization)][-1]
    mean = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    learner.fit((x.astype("float32"), y))
    assert learner.resolved_recipe.name == "scratch"
    losses = [row["loss"] for row in learner.history]
    assert losses[-1] < np.log(2) - 0.2, losses  # it learns, not stuck at ln(K)
    assert bn.trainable and not np.allclose(mean, keras.ops.convert_to_numpy(bn.moving_mean))
    assert "regime: scratch - no pretrained weights" in (tmp_path / "train.log").read_text()
    # Precise BatchNorm after each epoch: validation sees the network as trained, not a
    # lagging moving average (without it val_loss stayed at ln 2 on this task).
    assert learner.history[-1]["val_accuracy"] >= 0.9, learner.history


def test_precise_batchnorm_sets_moving_statistics_to_the_batch_average(tmp_path):
    from tl_kit.data import load_data

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.repeat([0, 1], 8)
    learner = Learner("resnet18", 2, weights=None, image_size=32, run_dir=tmp_path, verbose=0,
                      tensorboard=False, save_model=False)
    from tl_kit.train.callbacks import PreciseBatchNorm

    model = learner.classifier.assemble(train_bn=True)
    data = load_data((x, y), image_size=(32, 32), validation_split=0.25, seed=0)
    bn = learner.backbone.get_layer("conv1_bn")
    bn.momentum = 0.99
    probe = keras.Model(learner.backbone.input, learner.backbone.get_layer("conv1_conv").output)
    batches = [xb for xb, _ in data.dataset("train", batch_size=4, training=False, shuffle=False)]
    pre = model.get_layer("preprocess")
    expected = np.mean([keras.ops.convert_to_numpy(probe(pre(xb))).mean(axis=(0, 1, 2)) for xb in batches[:2]],
                       axis=0)
    PreciseBatchNorm(model, learner.classifier.batchnorm_layers(), data, batch=4, max_batches=2).recalibrate()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), expected, rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.99  # restored


def _texture_folder(root, classes=("brick", "grass", "gravel"), per_class=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for j in range(per_class):
            img = rng.integers(0, 60, (24, 24, 3)) + 80 * i
            Image.fromarray(img.astype("uint8")).save(root / name / f"{name}_{j}.png")
    return root


def test_fit_on_a_folder_takes_its_class_names(tmp_path, monkeypatch):
    data = _texture_folder(tmp_path / "textures")
    run = tmp_path / "run"
    learner = finetune("lenet5", num_classes=3, weights=None, run_dir=run, verbose=0,
                       tensorboard=False, recipe=one_stage(trainable="all", epochs=1, augment="none"))
    assert learner.class_names == ["0", "1", "2"]  # placeholders until the data is known
    learner.fit(str(data))
    assert learner.class_names == ["brick", "grass", "gravel"]
    assert tomllib.loads((run / "config.toml").read_text())["run"]["class_names"] == learner.class_names
    assert json.loads((run / "class_names.json").read_text()) == learner.class_names
    pred = learner.predict([data / "grass" / "grass_0.png"])
    assert set(pred[0]["probs"]) == {"brick", "grass", "gravel"} and pred[0]["path"].endswith("grass_0.png")
    # export: TFLite gets the fitted data as representative / test data
    import tl_kit.export

    seen = {}
    monkeypatch.setattr(tl_kit.export, "export_model", lambda model, path, names, **kw: seen.update(kw, names=names))
    learner.export(tmp_path / "exp", formats=("saved_model", "tflite"), overwrite=True)
    assert seen["representative_data"] is learner.data and seen["test_data"] is learner.data
    assert seen["overwrite"] is True and seen["names"] == learner.class_names
    # a folder with another number of classes: a clear error naming it
    from tl_kit.errors import UserError

    other = _texture_folder(tmp_path / "two", classes=("a", "b"))
    with pytest.raises(UserError, match="two"):
        Learner("lenet5", 3, weights=None, run_dir=tmp_path / "run2", verbose=0).fit(str(other))


def test_a_backbone_spec_passed_in_is_used_as_given(tmp_path):
    """A caller's own BackboneSpec (here: LeNet-5's modern variant) is not swapped for the
    registered one of the same name."""
    import dataclasses
    import functools

    from tl_kit.backbones import get_backbone
    from tl_kit.models.lenet import LeNet5

    spec = dataclasses.replace(get_backbone("lenet5"),
                               builder=functools.partial(LeNet5, variant="modern"))
    learner = Learner(spec, 2, weights=None, image_size=32, run_dir=tmp_path, verbose=0,
                      tensorboard=False, save_model=False)
    assert learner.spec is spec
    pools = [la for la in learner.backbone._flatten_layers() if isinstance(la, keras.layers.Layer)
             and "pool" in la.name]
    assert pools and all(isinstance(p, keras.layers.MaxPooling2D) for p in pools)


def test_a_recipe_given_to_fit_rebuilds_the_untrained_head(tmp_path, digits, pretrained_file):
    x, y = digits
    flat = Recipe(name="flat", dropout=0.0, head_pool="flatten",
                  stages=[Stage(epochs=1, augment="none", early_stopping=0)])
    avg = Recipe(name="avg", dropout=0.3, head_pool="avg",
                 stages=[Stage(epochs=1, augment="none", early_stopping=0)])
    learner = finetune("lenet5", num_classes=3, weights=pretrained_file, recipe=flat,
                       run_dir=tmp_path / "a", verbose=0, tensorboard=False)
    assert isinstance(learner.model.get_layer("head_pool"), keras.layers.Flatten)
    learner.fit((x, y), recipe=avg)  # not trained yet: the head follows the new recipe
    assert isinstance(learner.model.get_layer("head_pool"), keras.layers.GlobalAveragePooling2D)
    assert learner.model.get_layer("head_dropout").rate == 0.3
    assert learner.model.get_layer("predictions").kernel.shape[0] == 16  # 5x5x16 maps, averaged
    trained = [w.copy() for w in learner.model.get_layer("predictions").get_weights()]

    # trained: a new dropout rate is taken, the weights are kept; another pooling is an error
    from tl_kit.errors import UserError

    with pytest.raises(UserError, match=r"attaches the head differently .*Received: recipe='flat'"):
        learner.fit((x, y), recipe=flat, overwrite=True)
    less = Recipe(name="less", dropout=0.1, head_pool="avg", stages=[Stage(epochs=0)])
    learner.fit((x, y), recipe=less, overwrite=True)
    assert learner.model.get_layer("head_dropout").rate == 0.1
    for a, b in zip(trained, learner.model.get_layer("predictions").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# === Run-directory cost (issue 16, point 11) and small validation sets (point 12) ===


def test_run_directory_is_bounded_and_its_size_reported(tmp_path, digits):
    """Two stages: each finished stage keeps model weights only (no optimizer slots, no
    per-epoch checkpoints), the whole run directory stays within 2x (weights + Adam's two
    slots), and its size is in run.json, metrics.json and the last log line."""
    x, y = digits
    run = tmp_path / "run"
    learner = finetune("lenet5", data=(x, y), weights=None, run_dir=run, verbose=0, tensorboard=False,
                       checkpoint_interval=1e9,
                       recipe=Recipe(name="two", stages=[
                           Stage(name="head", epochs=3, cache_copies=0, early_stopping=0),
                           Stage(name="all", trainable="all", epochs=4, augment="none", early_stopping=0)]))
    weights_bytes = 4 * learner.model.count_params()
    files = [p for p in run.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith("ckpt-") or "best" in p.parts]
    for tag in ("1_head", "2_all"):
        assert sorted(p.name for p in (run / "checkpoints" / tag).iterdir()) == ["state.json"]
        assert (run / "checkpoints" / f"{tag}.weights.h5").stat().st_size < 1.3 * weights_bytes + 65536
    metrics = json.loads((run / "metrics.json").read_text())
    state = json.loads((run / "run.json").read_text())
    assert metrics["checkpoints"]["writes"] == 2  # one per stage: at its end
    assert metrics["run_dir_bytes"] == state["run_dir_bytes"]
    total = sum(p.stat().st_size for p in files)
    assert abs(total - metrics["run_dir_bytes"]) < 16384  # metrics.json/run.json written after
    assert total <= 2 * 3 * weights_bytes + 2**20
    assert f"({metrics['run_dir_bytes'] / 2**20:.1f} MiB; 2 checkpoint(s)" in (run / "train.log").read_text()


def test_checkpoint_every_epoch_still_keeps_one(tmp_path, digits, monkeypatch):
    import tl_kit.distribute.callbacks.checkpoint as checkpoint

    x, y = digits
    seen = []
    original = checkpoint.prune

    def spy(directory, manager, keep, best):
        original(directory, manager, keep, best)
        seen.append(sorted(n for n in os.listdir(directory) if n.startswith("ckpt-")))

    monkeypatch.setattr(checkpoint, "prune", spy)  # what the epoch checkpoint calls
    finetune("lenet5", data=(x, y), weights=None, run_dir=tmp_path / "run", verbose=0,
             tensorboard=False, checkpoint_interval=0,
             recipe=one_stage(name="all", trainable="all", epochs=4, augment="none", early_stopping=0))
    assert len(seen) == 4  # a write per epoch, each leaving one checkpoint on disk
    assert all(len(names) == 2 and names[0].startswith(f"ckpt-{i + 1}.") for i, names in enumerate(seen))


def _noisy_val(digits):
    """Training digits and a tiny validation set whose labels contradict them: the validation
    loss rises as training improves, so any patience stops the stage early."""
    x, y = digits
    return {"train": (x[:36], y[:36]), "val": (x[36:], (y[36:] + 1) % 3)}


def test_small_validation_set_runs_the_full_schedule(tmp_path, digits, monkeypatch):
    import tl_kit.train.stages as T

    data = _noisy_val(digits)  # 9 validation images
    recipe = one_stage(name="all", trainable="all", epochs=5, augment="none", early_stopping=1)
    learner = finetune("lenet5", data=data, weights=None, run_dir=tmp_path / "small", verbose=0,
                       tensorboard=False, recipe=recipe)
    assert [r["epoch"] for r in learner.history] == [1, 2, 3, 4, 5]
    log = (tmp_path / "small" / "train.log").read_text()
    assert "9 validation images < 100: early stopping off" in log
    # the same stage with enough validation images (the minimum lowered) stops early
    monkeypatch.setattr(T, "EARLY_STOPPING_MIN_VAL", 5)
    learner = finetune("lenet5", data=data, weights=None, run_dir=tmp_path / "big", verbose=0,
                       tensorboard=False, recipe=recipe)
    assert len(learner.history) < 5


def test_small_validation_set_keeps_the_best_smoothed_epoch(tmp_path, digits):
    """Best epoch by the 3-epoch mean of val_loss; the final model holds that epoch's weights
    (checked against the same run cut at that epoch)."""
    data = _noisy_val(digits)

    def run(name, epochs):
        return finetune("lenet5", data=data, weights=None, run_dir=tmp_path / name, verbose=0,
                        tensorboard=False, seed=2,
                        recipe=one_stage(name="all", trainable="all", epochs=epochs, augment="none",
                                         early_stopping=3, schedule="constant"))

    learner = run("long", 6)
    vl = np.array([r["val_loss"] for r in learner.history])
    means = [vl[max(0, i - 2):i + 1].mean() for i in range(len(vl))]
    best = int(np.argmin(means)) + 1
    short = run("short", best)
    for a, b in zip(learner.model.get_weights(), short.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
