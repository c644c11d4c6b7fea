"""Temperature scaling: the fitted temperature, ECE, the folded-in head, the learner and exports."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tl_kit.calibrate import (
    apply_temperature,
    calibrate_model,
    current_temperature,
    expected_calibration_error,
    fit_temperature,
    model_logits,
    prediction_layer,
    softmax,
    undo_learner_calibration,
)
from tl_kit.errors import UserError
from tl_kit.recipes import Recipe, Stage
from tl_kit.train import Learner


def _overconfident(n: int, true_t: float, seed: int = 0, k: int = 5):
    """Labels drawn from softmax(z); the model reports z * true_t (over-confident by true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    p = softmax(z)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return z * true_t, labels


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fitted_temperature_recovers_the_true_one(true_t):
    logits, labels = _overconfident(6000, true_t)
    t = fit_temperature(logits, labels)
    assert abs(t - true_t) / true_t < 0.08, t


def test_calibration_lowers_ece_on_held_out_data():
    logits, labels = _overconfident(4000, 3.0, seed=1)
    t = fit_temperature(logits[:2000], labels[:2000])
    before = expected_calibration_error(softmax(logits[2000:]), labels[2000:])
    after = expected_calibration_error(softmax(logits[2000:], t), labels[2000:])
    assert after < before / 2 and after < 0.05, (before, after)


def test_ece_by_hand():
    # 15 equal-width bins: confidences 0.9 (bin 13) and 0.6 (bin 8), 2 samples each.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])  # bin 13: accuracy 0.5; bin 8: accuracy 1.0
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error(probs, np.eye(2)[labels]) == pytest.approx(0.4)


def _tiny_classifier(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = keras.Input((2, 3, 1))  # a tiny "image": the calibration code reads image batches
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="predictions")(h))


def test_folded_temperature_gives_softmax_of_logits_over_t():
    model = _tiny_classifier()
    x = np.random.default_rng(0).normal(0, 3, (32, 2, 3, 1)).astype("float32")
    y = np.arange(32) % 3
    logits, _ = model_logits(model, (x, y))
    apply_temperature(model, 2.7)
    np.testing.assert_allclose(model.predict(x, verbose=0), softmax(logits, 2.7), atol=1e-6)
    assert current_temperature(model) == pytest.approx(2.7)
    apply_temperature(model, 1 / 2.7)  # undo: the raw head again
    np.testing.assert_allclose(model.predict(x, verbose=0), softmax(logits), atol=1e-6)


def test_calibrate_model_fits_and_applies(tmp_path):
    model = _tiny_classifier(1)
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (400, 2, 3, 1)).astype("float32")
    y = (x[:, 0, 0, 0] > 0).astype(int) + (rng.uniform(size=400) < 0.3)  # noisy labels: overconfident
    model.get_layer("predictions").kernel.assign(model.get_layer("predictions").kernel * 20)
    logits, _ = model_logits(model, (x, y))
    report = calibrate_model(model, (x, y), out_dir=tmp_path)
    t = report["temperature"]
    assert t > 1.5 and report["ece_after"] < report["ece_before"]
    assert report["nll_after"] < report["nll_before"] and report["bins"] == 15
    np.testing.assert_allclose(model.predict(x, verbose=0), softmax(logits, t), atol=1e-6)
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 1000


def test_a_head_that_is_not_a_dense_softmax_is_refused():
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(3, activation="sigmoid", name="predictions")(x))
    with pytest.raises(UserError, match="activation='softmax'"):
        prediction_layer(model)
    other = keras.Model(x, keras.layers.Dense(3, activation="softmax", name="logits")(x))
    with pytest.raises(UserError, match="named 'predictions'"):
        apply_temperature(other, 2.0)
    with pytest.raises(UserError, match="positive"):
        apply_temperature(_tiny_classifier(), -1.0)


# === The learner ===


@pytest.fixture(scope="module")
def digits():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 50, replace=False) for c in range(3)])
    return x[idx], y[idx]


def _recipe(calibrate: bool = True) -> Recipe:
    return Recipe(name="t", calibrate=calibrate, stages=[
        Stage(name="all", trainable="all", epochs=3, augment="none", learning_rate=3e-3,
              early_stopping=0, train_bn=True, cache_features=False)])


def _raw_head(run_dir, x):
    """The last stage's checkpoint (saved before calibration): the uncalibrated model."""
    raw = Learner("lenet5", 3, weights=None, recipe=_recipe(), verbose=0, tensorboard=False)
    raw.model.load_weights(run_dir / "checkpoints" / "1_all.weights.h5")
    logits, _ = model_logits(raw.model, (x, np.zeros(len(x), int)), features_model=raw.classifier.feature_model())
    return raw, logits


def test_fit_calibrates_and_every_output_uses_it(tmp_path, digits):
    import tensorflow as tf

    x, y = digits
    run = tmp_path / "run"
    learner = Learner("lenet5", 3, weights=None, recipe=_recipe(), run_dir=run, verbose=0, tensorboard=False)
    learner.fit((x, y))
    cal = json.loads((run / "metrics.json").read_text())["calibration"]
    t = cal["temperature"]
    assert set(cal) >= {"temperature", "ece_before", "ece_after"} and t != pytest.approx(1.0)
    assert cal["ece_after"] <= cal["ece_before"] + 1e-9 and cal["num_samples"] == 30
    assert (run / "plots" / "reliability.png").is_file()
    raw, logits = _raw_head(run, x)
    expected = softmax(logits, t)  # float64 from the raw head; the models compute in float32
    np.testing.assert_allclose(learner.model.predict(x, verbose=0), expected, atol=1e-5)
    saved = keras.saving.load_model(run / "model.keras", compile=False)  # what predict/evaluate load
    np.testing.assert_allclose(saved.predict(x, verbose=0), expected, atol=1e-5)
    report = learner.export(tmp_path / "export", formats=("saved_model", "onnx"))
    loaded = tf.saved_model.load(report["path"])
    served = loaded.signatures["serving_float32"](images=tf.constant(x[:8]))["probabilities"].numpy()
    np.testing.assert_allclose(served, expected[:8], atol=1e-5)
    import onnxruntime

    session = onnxruntime.InferenceSession(f"{report['path']}/model.onnx", providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {session.get_inputs()[0].name: x[:8]})[0]
    np.testing.assert_allclose(onnx_probs, expected[:8], atol=1e-5)
    # A second fit starts from the raw head: the temperature is undone, never applied twice.
    undo_learner_calibration(learner)
    np.testing.assert_allclose(learner.classifier.dense.kernel.numpy(), raw.classifier.dense.kernel.numpy(), atol=1e-6)
    assert current_temperature(learner.classifier.dense) == 1.0


def test_calibration_off_leaves_the_outputs_unchanged(tmp_path, digits):
    x, y = digits
    run = tmp_path / "run"
    learner = Learner("lenet5", 3, weights=None, recipe=_recipe(calibrate=False), run_dir=run,
                      verbose=0, tensorboard=False)
    learner.fit((x, y))
    assert "calibration" not in json.loads((run / "metrics.json").read_text())
    assert not (run / "plots" / "reliability.png").exists()
    _, logits = _raw_head(run, x)
    np.testing.assert_allclose(learner.model.predict(x, verbose=0), softmax(logits), atol=1e-5)


def test_cli_no_calibrate(tmp_path):
    from PIL import Image

    from tl_kit.cli import main

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(60):  # 20 % = 24 validation images: enough to calibrate
            value = 60 if c == "a" else 190
            img = np.clip(rng.normal(value, 30, (32, 32, 3)), 0, 255).astype("uint8")
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i}.png")
    for flag, expect in (([], True), (["--no-calibrate"], False)):
        out = tmp_path / ("cal" if expect else "nocal")
        assert main(["train", "scratch", "--data", str(tmp_path / "data"), "--backbone", "lenet5",
                     "--weights", "none", "--image-size", "32", "--epochs", "1", "--out", str(out),
                     "--json", *flag]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert ("calibration" in metrics) == expect


def test_a_resumed_run_calibrates_once(tmp_path, digits):
    """Killed after the last stage, before the run was marked complete: the rerun loads the
    stage's (uncalibrated) checkpoint and calibrates it once, to the same temperature."""
    x, y = digits
    run = tmp_path / "run"
    first = Learner("lenet5", 3, weights=None, recipe=_recipe(), run_dir=run, verbose=0, tensorboard=False)
    first.fit((x, y))
    t = json.loads((run / "metrics.json").read_text())["calibration"]["temperature"]
    (run / "run.json").write_text(json.dumps({"status": "running"}))
    again = Learner("lenet5", 3, weights=None, recipe=_recipe(), run_dir=run, verbose=0, tensorboard=False)
    again.fit((x, y))
    assert "resumed: stage 1 'all' was finished" in (run / "train.log").read_text()
    assert json.loads((run / "metrics.json").read_text())["calibration"]["temperature"] == pytest.approx(t, rel=1e-5)
    np.testing.assert_allclose(again.classifier.dense.kernel.numpy(), first.classifier.dense.kernel.numpy(), atol=1e-6)
