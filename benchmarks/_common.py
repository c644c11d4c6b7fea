"""Shared helpers of the CPU benchmarks: data sets, the guide's model, timing, load."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


def load_snapshot() -> dict[str, float]:
    """1/5/15-minute load averages (other processes share the machine)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover
        return {}
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def pin_to(cpu: int | None):
    """A ``preexec_fn`` for ``subprocess.run`` that starts the child on CPU ``cpu`` alone
    (``sched_setaffinity``), or None for no pin: on one CPU, wall clock is the work done."""
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def check_one_cpu(ap, cpu: int | None) -> None:
    """``ap.error`` (exit status 2) when ``--one-cpu`` names a CPU this process may not use."""
    if cpu is not None and cpu not in os.sched_getaffinity(0):
        ap.error(f"--one-cpu {cpu}: not one of this process's CPUs {sorted(os.sched_getaffinity(0))}")


def emit(out: dict, path: str | None, indent: int = 2) -> dict:
    """Print a benchmark's figures as JSON, and write them to ``path`` when given."""
    text = json.dumps(out, indent=indent)
    print(text)
    if path:
        Path(path).write_text(text)
    return out


@contextlib.contextmanager
def timed_parts(totals: dict[str, float], parts) -> Iterator[None]:
    """Accumulate the wall seconds spent in each of ``parts`` into ``totals`` while the block
    runs (measurement only: the functions run unchanged, and are restored after).
    ``parts``: ``(name, module, class name or None, attribute)`` rows."""
    patched = []

    def wrap(name, fn):
        @functools.wraps(fn)
        def inner(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - t
        return inner

    for name, module, owner, attr in parts:
        target = getattr(importlib.import_module(module), owner) if owner else importlib.import_module(module)
        original = getattr(target, attr)
        patched.append((target, attr, original))
        setattr(target, attr, wrap(name, original))
    try:
        yield
    finally:
        for target, attr, original in reversed(patched):
            setattr(target, attr, original)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def digits_rgb(size: int, n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits upsampled to ``size`` x ``size`` RGB, uint8.

    Real images shipped with scikit-learn (no network); ``n`` draws a stratified-ish random
    subset (shuffled, first ``n``).
    """
    import tensorflow as tf
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(d.images))[: n or len(d.images)]
    imgs = (d.images[idx].astype("float32") / 16.0 * 255.0)[..., None]
    up = tf.image.resize(imgs, (size, size), method="bilinear").numpy()
    x = np.repeat(np.clip(up, 0, 255).round().astype("uint8"), 3, axis=-1)
    return x, d.target[idx].astype("int64")


def guide_model(backbone_fn, size: int, num_classes: int, dropout: float = 0.2,
                rescale: tuple[float, float] = (1 / 127.5, -1.0), augment=None):
    """The Keras transfer-learning guide's model: ``inputs -> [augmentation] -> Rescaling
    -> base_model(x, training=False) -> GlobalAveragePooling2D -> Dropout -> Dense``.

    Returns ``(model, base_model)``; the base starts frozen (``base_model.trainable = False``).
    """
    import keras

    base = backbone_fn((size, size, 3))
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = augment(inputs) if augment is not None else inputs
    x = keras.layers.Rescaling(rescale[0], offset=rescale[1])(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs), base


def mobilenetv2(shape):
    import keras

    return keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=None)


def resnet50(shape):
    import keras

    return keras.applications.ResNet50(input_shape=shape, include_top=False, weights=None)


BACKBONES = {"mobilenet_v2": (mobilenetv2, (1 / 127.5, -1.0)), "keras:resnet50": (resnet50, None)}


class EpochClock:
    """Keras callback: wall time and logs at the end of every epoch (from ``start``)."""

    def __new__(cls, *a, **k):  # a keras.callbacks.Callback, built lazily (import keras late)
        import keras

        class _Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.start = time.perf_counter()
                self.rows: list[tuple[float, dict]] = []

            def on_epoch_end(self, epoch, logs=None):
                self.rows.append((time.perf_counter() - self.start, dict(logs or {})))

        return _Clock()
