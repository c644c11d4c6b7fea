"""Calibrated probabilities: temperature scaling (Guo et al., "On Calibration of Modern
Neural Networks", ICML 2017).

One scalar ``T > 0`` is fitted on held-out (validation) logits ``z`` by minimising the
negative log-likelihood of ``softmax(z / T)``; the argmax, hence the accuracy, never changes.
NLL is convex in ``1 / T``, so a bounded scalar search over ``log T`` (Brent, in
``[T_MIN, T_MAX]``) finds the global minimum; the bounds keep a validation set the model
gets entirely right (NLL falls as ``T -> 0``) from producing an absurd temperature.

Applying it needs no new layer: the classifier head ends in ``Dense(..., activation="softmax")``
named ``predictions``, and dividing that layer's kernel and bias by ``T`` makes it compute
``softmax(z / T)`` exactly. The model, ``model.keras``, every export (SavedModel, TFLite,
ONNX), ``predict`` and ``evaluate`` therefore all give the calibrated probabilities.

Calibration metric: expected calibration error over :data:`ECE_BINS` = 15 equal-width
confidence bins (``(0, 1/15], ..., (14/15, 1]``), confidence = the top probability:
``ECE = sum_b n_b / N * |accuracy_b - confidence_b|``.

```python
from tl_kit.calibrate import calibrate_model
report = calibrate_model(model, (x_val, y_val), out_dir="runs/pets")   # model changed in place
report["temperature"], report["ece_before"], report["ece_after"]
```

In :meth:`tl_kit.train.Learner.fit` this runs after the last stage when there is a validation
split (at least :data:`MIN_SAMPLES` images) and calibration is on (recipe ``calibrate = true``,
the default; ``Learner.calibrate = False`` or ``tl-kit train --no-calibrate`` turns it off).
The per-stage checkpoints keep the UNcalibrated head, and the temperature in use is recorded
on the head layer and in ``metrics.json``; a second ``fit`` on the same learner first undoes
it (:func:`undo_learner_calibration`), so a temperature is never applied twice.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = [
    "ECE_BINS",
    "expected_calibration_error",
    "fit_temperature",
    "softmax",
    "prediction_layer",
    "apply_temperature",
    "model_logits",
    "calibrate_model",
    "plot_reliability",
    "calibrate_learner",
    "undo_learner_calibration",
]

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error
T_MIN, T_MAX = 0.05, 20.0  # search bounds of the temperature
MIN_SAMPLES = 20  # fewer validation images: the learner does not calibrate (too noisy)
_ATTR = "_tl_kit_temperature"  # temperature currently folded into a Dense layer


# === Maths ===


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` in float64, row-wise, numerically stable."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(axis=-1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=-1)))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def _int_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    return (labels.argmax(axis=-1) if labels.ndim == 2 else labels).astype(np.int64)


def expected_calibration_error(probs: np.ndarray, labels, bins: int = ECE_BINS) -> float:
    """ECE of ``probs`` (N, K) against ``labels`` (int or one-hot) over ``bins`` equal-width
    confidence bins (``(i/bins, (i+1)/bins]``)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = _int_labels(labels)
    if len(probs) == 0:
        raise UserError("Cannot compute a calibration error on no samples. Received: num_samples=0")
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = index == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def _bin_stats(probs: np.ndarray, labels: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    acc = np.bincount(index, weights=correct, minlength=bins) / np.maximum(count, 1)
    mean_conf = np.bincount(index, weights=conf, minlength=bins) / np.maximum(count, 1)
    return acc, mean_conf, count


def fit_temperature(logits: np.ndarray, labels, bounds: tuple[float, float] = (T_MIN, T_MAX)) -> float:
    """The temperature minimising the NLL of ``softmax(logits / T)`` (bounded Brent search
    on ``log T``; NLL is convex in ``1/T``, so the minimum found is the global one)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = _int_labels(labels)
    if z.ndim != 2 or len(z) != len(y) or len(z) == 0:
        raise UserError(
            f"Temperature scaling needs logits (N, K) and N labels. Received: logits.shape="
            f"{z.shape}, labels.shape={np.shape(labels)}")
    if not np.all(np.isfinite(z)):
        raise UserError("The logits hold NaN or inf values: cannot fit a temperature. "
                        f"Received: {int(np.sum(~np.isfinite(z)))} non-finite logits")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    res = minimize_scalar(lambda s: _nll(z, y, math.exp(s)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-7})
    return float(math.exp(res.x))


# === The model's head ===


def prediction_layer(model, name: str = "predictions"):
    """The softmax ``Dense`` layer ``name`` of ``model`` (or ``model`` itself when it is one);
    a clear error when the head is anything else (temperature scaling folds into it)."""
    import keras

    layer = model
    if not isinstance(model, keras.layers.Dense):
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise UserError(
                f"Calibration needs the classifier's last layer to be a Dense softmax layer named "
                f"{name!r}; model {model.name!r} has none (its last layer is "
                f"{model.layers[-1].name!r}). Received: model={model.name!r}") from None
    act = getattr(layer, "activation", None)
    if not isinstance(layer, keras.layers.Dense) or getattr(act, "__name__", "") != "softmax" \
            or not layer.use_bias:
        raise UserError(
            f"Calibration needs layer {layer.name!r} to be Dense(..., activation='softmax', "
            f"use_bias=True). Received: {type(layer).__name__} with activation "
            f"{getattr(act, '__name__', act)!r}")
    return layer


def current_temperature(model_or_layer) -> float:
    """The temperature folded into the head by :func:`apply_temperature` (1.0: none)."""
    return float(getattr(prediction_layer(model_or_layer), _ATTR, 1.0))


def apply_temperature(model_or_layer, temperature: float) -> None:
    """Divide the head's kernel and bias by ``temperature``: its output becomes
    ``softmax(z / T)`` for the logits ``z`` it computed before (exact, no new layer). The
    total temperature folded in is recorded on the layer (see :func:`current_temperature`)."""
    t = float(temperature)
    if not (t > 0 and math.isfinite(t)):
        raise UserError(f"The temperature must be a positive number. Received: temperature={temperature!r}")
    dense = prediction_layer(model_or_layer)
    dense.kernel.assign((np.asarray(dense.kernel.numpy(), np.float64) / t).astype(dense.kernel.dtype))
    dense.bias.assign((np.asarray(dense.bias.numpy(), np.float64) / t).astype(dense.bias.dtype))
    setattr(dense, _ATTR, current_temperature(dense) * t)


def _logits_from_features(dense, features: np.ndarray) -> np.ndarray:
    w = np.asarray(dense.kernel.numpy(), np.float64)
    b = np.asarray(dense.bias.numpy(), np.float64)
    return np.asarray(features, np.float64) @ w + b


def model_logits(model, data, *, split: str | None = None, batch_size: int = 64,
                 features_model=None) -> tuple[np.ndarray, np.ndarray]:
    """``(logits (N, K) float64, int labels (N,))`` of ``data``: the head's input features
    times its kernel plus bias (exact pre-softmax values, no ``log`` of rounded probabilities).

    ``features_model``: image -> the head's input (default: cut from ``model`` at the input
    of its ``predictions`` layer)."""
    import keras

    from tl_kit.evaluate.batches import iter_batches

    dense = prediction_layer(model)
    if features_model is None:
        features_model = keras.Model(model.input if len(model.inputs) == 1 else model.inputs, dense.input)
    feats, labels = [], []
    for images, y in iter_batches(data, split=split, batch_size=batch_size):
        f = features_model(images, training=False)
        feats.append(np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(f, "float32"))))
        labels.append(np.asarray(y))
    if not feats:
        raise UserError("No images to calibrate on: the data is empty. Received: num_samples=0")
    return _logits_from_features(dense, np.concatenate(feats)), np.concatenate(labels).astype(np.int64)


def calibrate_model(model, data, *, split: str | None = "val", out_dir: str | os.PathLike | None = None,
                    features_model=None, bins: int = ECE_BINS) -> dict[str, Any]:
    """Fit a temperature on ``data`` (``split`` of a tl_kit ``Data``; arrays/datasets whole),
    fold it into ``model``'s head (in place) and, with ``out_dir``, save
    ``plots/reliability.png``. A temperature already folded in is taken into account (the
    fit starts from the model as it is, and the total is what is recorded).

    Returns:
        ``{"temperature", "ece_before", "ece_after", "nll_before", "nll_after", "bins",
        "num_samples"}`` (``temperature``: the total now folded into the head).
    """
    from tl_kit.data import Data

    split = split if isinstance(data, Data) else None
    logits, labels = model_logits(model, data, split=split, features_model=features_model)
    t = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, t)
    apply_temperature(model, t)
    report = {
        "temperature": current_temperature(model),
        "ece_before": expected_calibration_error(before, labels, bins),
        "ece_after": expected_calibration_error(after, labels, bins),
        "nll_before": _nll(logits, labels, 1.0),
        "nll_after": _nll(logits, labels, t),
        "bins": int(bins),
        "num_samples": int(len(labels)),
    }
    if out_dir is not None:
        report["reliability_png"] = str(plot_reliability(before, after, labels,
                                                         Path(out_dir) / "plots" / "reliability.png", bins))
    return report


def plot_reliability(probs_before: np.ndarray, probs_after: np.ndarray | None, labels,
                     out_png: str | os.PathLike, bins: int = ECE_BINS) -> Path:
    """Reliability diagram(s): accuracy per confidence bin against the diagonal, before and
    (when given) after calibration, each titled with its ECE."""
    from tl_kit._plots import figure, save_figure

    labels = _int_labels(labels)
    panels = [("before", probs_before)] + ([("after", probs_after)] if probs_after is not None else [])
    edges = np.linspace(0, 1, bins + 1)
    with figure(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False) as (fig, axes):
        for ax, (title, probs) in zip(axes[0], panels, strict=True):
            probs = np.asarray(probs, np.float64)
            acc, conf, count = _bin_stats(probs, labels, bins)
            filled = count > 0
            ax.bar(edges[:-1][filled], acc[filled], width=1 / bins, align="edge",
                   edgecolor="black", color="tab:blue", label="accuracy")
            ax.bar(edges[:-1][filled], (conf - acc)[filled], bottom=acc[filled], width=1 / bins,
                   align="edge", color="tab:red", alpha=0.3, label="gap to confidence")
            ax.plot([0, 1], [0, 1], "k--", linewidth=1)
            ece = expected_calibration_error(probs, labels, bins)
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
                   title=f"{title} calibration: ECE {ece:.3f}")
            ax.legend(loc="upper left", fontsize=8)
        return save_figure(fig, out_png)


# === Learner integration ===


def undo_learner_calibration(learner) -> None:
    """Multiply a temperature folded into the learner's head back out (before training
    continues on it), so the head trains on, and the next calibration starts from, raw logits."""
    classifier = getattr(learner, "classifier", None)
    dense = classifier.dense if classifier is not None else None
    if dense is None or not getattr(dense, "built", False):
        return
    t = float(getattr(dense, _ATTR, 1.0))
    if t != 1.0:
        apply_temperature(dense, 1.0 / t)
        setattr(dense, _ATTR, 1.0)
        learner.log(f"calibration: temperature {t:.4g} undone before training")


def calibrate_learner(learner, data, recipe) -> dict[str, Any] | None:
    """After ``fit``'s last stage: fit and fold in the temperature on the validation split,
    record ``metrics["calibration"]`` and write ``plots/reliability.png``. Skipped (with a
    log line) when calibration is off, or the validation split is missing or too small."""
    learner.metrics.pop("calibration", None)  # a previous fit's figures never linger
    on = getattr(learner, "calibrate", None)
    if on is None:
        on = bool(getattr(recipe, "calibrate", True))
    if not on:
        learner.log("calibration: off")
        return None
    if data is None or not data.has("val") or data.size("val") < MIN_SAMPLES:
        n = data.size("val") if data is not None and data.has("val") else 0
        learner.log(f"calibration: skipped ({n} validation images; at least {MIN_SAMPLES} needed)")
        return None
    learner.model = learner.classifier.assemble(train_bn=False)
    out = learner.rundir.out if learner.writes_plots() else None
    report = calibrate_model(learner.model, data, split="val", out_dir=out,
                             features_model=learner.classifier.feature_model())
    learner.metrics["calibration"] = {k: report[k] for k in ("temperature", "ece_before", "ece_after",
                                                             "nll_before", "nll_after", "bins",
                                                             "num_samples")}
    learner.log(f"calibration: temperature {report['temperature']:.4g} on {report['num_samples']} "
                 f"validation images; ECE ({ECE_BINS} bins) {report['ece_before']:.4f} -> "
                 f"{report['ece_after']:.4f}, NLL {report['nll_before']:.4f} -> {report['nll_after']:.4f}")
    return report
