"""LR finder: the suggested rate trains a convex problem, the sweep leaves weights untouched."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_kit.errors import UserError
from tl_kit.lr_find import lr_sweep, stage_index, suggest_lr
from tl_kit.recipes import Recipe, Stage, load_recipe
from tl_kit.train import Learner


def _blobs(n: int = 600, seed: int = 0, sigma: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = np.arange(n) % 3
    x = (centres[y] + rng.normal(0, sigma, (n, 2))).astype("float32")
    return x, np.eye(3, dtype="float32")[y]


def _linear_softmax():
    keras.utils.set_random_seed(0)
    inp = keras.Input((2,))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(inp))


def _train_loss(model, x, y, lr: float, steps: int = 60) -> tuple[float, float]:
    """Loss before and after ``steps`` plain-SGD steps at ``lr`` (batch 32)."""
    loss_fn = keras.losses.CategoricalCrossentropy()
    opt = keras.optimizers.SGD(lr)
    start = float(loss_fn(y, model(x)))
    for i in range(steps):
        sl = slice((i * 32) % len(x), (i * 32) % len(x) + 32)
        with tf.GradientTape() as tape:
            value = loss_fn(y[sl], model(x[sl], training=True))
        grads = tape.gradient(value, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return start, float(loss_fn(y, model(x)))


@pytest.mark.parametrize("sigma", [1.0, 2.0])  # separable, and overlapping classes
def test_suggested_rate_trains_a_convex_problem_and_weights_are_unchanged(sigma):
    x, y = _blobs(sigma=sigma)
    model = _linear_softmax()
    before = [w.copy() for w in model.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(600, seed=0).batch(32)
    result = lr_sweep(model, ds, optimizer="sgd_plain", num_steps=100)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the sweep restored every weight
    assert min(result.smoothed) < 0.8 * result.smoothed[0]
    start, end = _train_loss(model, x, y, result.suggested)
    assert end < 0.85 * start, (result.suggested, start, end)  # it trains at the suggested rate
    model.set_weights(before)
    _, slow = _train_loss(model, x, y, result.suggested / 1e4)
    assert slow > 0.98 * start  # ...where 10^4 times less barely moves: not a trivial answer


def test_suggest_lr_rule_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-6, 0, 61)
    t = np.log10(lrs)
    smooth = 2 - np.tanh(2 * (t + 3)) + np.where(t > -1, 20 * (t + 1) ** 2, 0)  # steepest at 1e-3
    suggested, at_min, div10 = suggest_lr(lrs, smooth)
    assert suggested == pytest.approx(1e-3, rel=0.3)
    assert at_min > suggested and div10 == pytest.approx(at_min / 10)


def test_bad_arguments_are_clear():
    x, y = _blobs(64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(UserError, match="min_lr < max_lr"):
        lr_sweep(_linear_softmax(), ds, min_lr=1.0, max_lr=0.1)
    with pytest.raises(UserError, match="no stage 'nope'"):
        stage_index(load_recipe("medium"), "nope")
    assert stage_index(load_recipe("medium"), "finetune") == 1


@pytest.fixture(scope="module")
def digits():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    keep = y < 3
    return x[keep][:90], y[keep][:90]


def _weights(learner):
    return [w.copy() for w in learner.model.get_weights()]


@pytest.mark.parametrize("stage", ["head", "all"])
def test_learner_lr_find_restores_the_model_and_writes_plot(tmp_path, digits, stage):
    x, y = digits
    recipe = Recipe(name="t", stages=[
        Stage(name="head", trainable="head", epochs=1, augment="none"),
        Stage(name="all", trainable="all", epochs=1, augment="none", train_bn=True, optimizer="sgd")])
    learner = Learner("lenet5", 3, weights=None, recipe=recipe, run_dir=tmp_path / "run", verbose=0,
                      tensorboard=False)
    before = _weights(learner)
    flags = [layer.trainable for layer in learner.model._flatten_layers(recursive=True)]
    result = learner.lr_find((x, y), stage=stage, out=tmp_path / "lr", num_steps=30)
    for a, b in zip(before, _weights(learner), strict=True):
        np.testing.assert_array_equal(a, b)
    assert flags == [layer.trainable for layer in learner.model._flatten_layers(recursive=True)]
    assert result.stage == stage and len(result.learning_rates) >= 5
    assert (tmp_path / "lr" / "lr_find.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert saved["suggested"] == pytest.approx(result.suggested)
    tuned = result.apply(recipe)
    assert tuned.stages[recipe.stages.index(next(s for s in recipe.stages if s.name == stage))].learning_rate \
        == pytest.approx(result.suggested)


def test_cli_lr_find_writes_a_recipe_with_the_rate(tmp_path, capsys):
    from PIL import Image

    from tl_kit.cli import main

    rng = np.random.default_rng(0)
    for c, value in (("a", 60), ("b", 190)):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(16):
            img = np.clip(rng.normal(value, 30, (32, 32, 3)), 0, 255).astype("uint8")
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i}.png")
    out, toml = tmp_path / "lr", tmp_path / "tuned.toml"
    assert main(["lr-find", "--data", str(tmp_path / "data"), "--backbone", "lenet5", "--weights", "none",
                 "--recipe", "scratch", "--image-size", "32", "--steps", "20", "--out", str(out),
                 "--write-recipe", str(toml), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (out / "lr_find.png").is_file() and report["stage"] == "scratch"
    assert load_recipe(str(toml)).stages[0].learning_rate == pytest.approx(report["suggested"])
    assert main(["lr-find", "--data", str(tmp_path / "data"), "--backbone", "lenet5", "--weights", "none",
                 "--recipe", "scratch", "--stage", "nope", "--out", str(out)]) == 2


def test_lr_find_without_a_recipe_sweeps_what_fit_would_choose_and_leaves_the_regime(digits):
    x, y = digits
    learner = Learner("lenet5", 3, weights=None, verbose=0, tensorboard=False)
    result = learner.lr_find((x, y), num_steps=10)
    assert result.stage == "scratch"  # weights=None: fit would run the scratch recipe
    assert learner.regime == "auto" and learner.recipe is None
