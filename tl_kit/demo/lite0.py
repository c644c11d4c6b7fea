"""The photo demo's cells on EfficientNet-Lite0 networks built once per run.

A ``Learner.fit`` per cell rebuilds the network, re-traces its training step (~13 s on 2
cores) and rebuilds its input pipeline (~7 s): most of the demo's 9 minutes. Here every
network is built once and every cell starts from a kept copy of its weights:

* :class:`Lite0Classifier`: image -> preprocess -> Lite0 -> average pool -> dropout ->
  Dense softmax, the graph ``Learner`` assembles (``head_pool`` "auto" averages Lite0's
  2x2x1280 map at 64 px), with a snapshot of its weights restored before each cell.
* :class:`StepRunner`: one traced training step (and one Adam optimizer, reset per cell)
  per column, reused by every cell of that column; the batches, flips and learning-rate
  schedule (:class:`tl_kit.train.WarmupCosine`) follow the column's
  :class:`tl_kit.recipes.Stage` as ``Learner`` runs it (batch ``min(batch_size, n)``,
  ``min_steps_per_epoch`` cycling, cosine decay over the stage's steps).
* :func:`head_cell`: the head-only stage on features computed once for every image
  (:func:`extract_features`, BatchNorm folded), an imprinted head trained by
  :func:`tl_kit.distribute.custom_fit` with the Learner's early-stopping rule.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np

__all__ = ["BACKBONE", "Lite0Classifier", "StepRunner", "extract_features", "imprint", "batch_indices",
           "head_cell", "early_stopping_rule", "random_init_weights", "timed"]

BACKBONE = "efficientnet_lite0"
# The Learner's rules (tl_kit.train), restated for the cells it does not run:
SCRATCH_BN_MOMENTUM = 0.9  # BatchNorm momentum when training from random weights
BN_RECALIBRATION_BATCHES = 20  # un-augmented training batches averaged by precise BatchNorm
EARLY_STOPPING_MIN_VAL = 100  # fewer validation images: no early stop, best epoch smoothed
SMALL_VAL_SMOOTHING = 3


def _spec():
    from tl_kit.backbones import get_backbone

    return get_backbone(BACKBONE)


class Lite0Classifier:
    """Lite0 + pooled softmax head, built once; ``reset`` returns it to its initial weights.

    Args:
        num_classes: classes of the head.
        image_size: input side in pixels.
        weights: ``"imagenet"`` (the bundled checkpoint) or ``None`` (random, seeded ``seed``).
        dropout: the head's dropout rate.
        train_bn: BatchNorm follows the call's ``training`` flag (scratch); else the
            backbone always runs in inference mode (the Keras guide's fine-tuning rule).
        seed: seed of the random initialisation.
    """

    def __init__(self, num_classes: int, image_size: int, weights: str | None, dropout: float,
                 train_bn: bool = False, seed: int = 0):
        from tl_kit.layers import Preprocess

        self.spec = _spec()
        keras.utils.set_random_seed(seed)
        self.backbone = self.spec.build((image_size, image_size, 3), weights=weights)
        image = keras.Input((image_size, image_size, 3), name="image")
        x = Preprocess(self.spec.preprocess, name="preprocess")(image)
        x = self.backbone(x) if train_bn else self.backbone(x, training=False)
        pooled = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        self.dropout = keras.layers.Dropout(dropout, name="head_dropout", seed=seed)
        self.dense = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                        name="predictions")
        self.model = keras.Model(image, self.dense(self.dropout(pooled)), name="lite0_classifier")
        # Weights in creation order (not model.weights after trainable flags change).
        self.variables = list(self.model.weights)
        # The random streams of Lite0's stochastic depth (the head's dropout is seeded per cell).
        self._streams = [v for v in self.model.variables if "seed_generator_state" in v.path
                         and v is not self.dropout.seed_generator.state]
        self.initial = self.snapshot()
        self._predict = None

    def snapshot(self) -> dict[str, list[np.ndarray]]:
        """The weights and random-stream states now (what :meth:`reset` restores)."""
        return {"weights": [v.numpy() for v in self.variables],
                "streams": [v.numpy() for v in self._streams]}

    def reset(self, seed: int, snapshot: dict[str, list[np.ndarray]] | None = None) -> None:
        """Every weight and random stream back to ``snapshot`` (default: as built; or the
        ``initial`` of a classifier built with another seed), the head's dropout stream as
        ``Dropout(seed=seed)`` starts: a cell's result does not depend on the cells before it."""
        snap = self.initial if snapshot is None else snapshot
        for v, value in zip(self.variables + self._streams, snap["weights"] + snap["streams"], strict=True):
            v.assign(value)
        self.dropout.seed_generator.state.assign(np.array([seed, 0], "int64"))

    def head_model(self, features: int) -> keras.Model:
        """Pooled features -> the same dropout and Dense layers (the head-only stage)."""
        fin = keras.Input((features,), name="features")
        return keras.Model(fin, self.dense(self.dropout(fin)), name="head")

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Test accuracy in inference mode (one traced graph per classifier, any batch)."""
        import tensorflow as tf

        if self._predict is None:
            spec = tf.TensorSpec((None, *self.model.input_shape[1:]), tf.float32)
            self._predict = tf.function(lambda t: self.model(t, training=False),
                                        input_signature=[spec], autograph=False)
        pred = np.concatenate([self._predict(x[i:i + 128]).numpy() for i in range(0, len(x), 128)])
        return float(np.mean(pred.argmax(-1) == y))


def random_init_weights(num_classes: int, image_size: int, dropout: float, seed: int) -> dict:
    """The initial weights and random streams of a random Lite0 classifier built with
    ``seed`` (as a ``Learner`` with that seed builds it), as a :meth:`Lite0Classifier.reset`
    snapshot."""
    clf = Lite0Classifier(num_classes, image_size, None, dropout, train_bn=True, seed=seed)
    return clf.initial


def extract_features(clf: Lite0Classifier, images: np.ndarray, batch: int = 128) -> np.ndarray:
    """Pooled Lite0 features of ``images``, backbone in inference mode with BatchNorm folded
    into the convolutions (:func:`tl_kit.fold.fold_batchnorm`: the same features, fewer ops)."""
    import tensorflow as tf

    from tl_kit.fold import fold_batchnorm
    from tl_kit.layers import Preprocess

    folded = fold_batchnorm(clf.backbone, verify=False)
    image = keras.Input(clf.model.input_shape[1:], name="image")
    x = folded(Preprocess(clf.spec.preprocess)(image), training=False)
    fm = keras.Model(image, keras.layers.GlobalAveragePooling2D()(x))
    spec = tf.TensorSpec((None, *fm.input_shape[1:]), tf.float32)
    run = tf.function(lambda t: fm(t, training=False), input_signature=[spec], autograph=False)
    return np.concatenate([run(images[i:i + batch]).numpy() for i in range(0, len(images), batch)])


def imprint(feats: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest-class-mean head of ``feats`` (weight imprinting, as ``head_init="imprint"``):
    logit_c = a * (f . mu_c - |mu_c|^2 / 2), a = 2 / mean within-class squared distance."""
    labels = onehot.argmax(axis=1)
    k = onehot.shape[1]
    mu = np.stack([feats[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(feats.shape[1])
                   for c in range(k)])
    within = float(np.mean(np.sum((feats - mu[labels]) ** 2, axis=1))) or 1.0
    a = 2.0 / within
    return (a * mu.T).astype("float32"), (-0.5 * a * np.sum(mu**2, axis=1)).astype("float32")


def early_stopping_rule(patience: int, n_val: int) -> tuple[int | None, int]:
    """``(patience, smoothing)`` as ``Learner`` sets them: early stopping needs
    :data:`EARLY_STOPPING_MIN_VAL` validation images; with fewer the full schedule runs and
    the best epoch is chosen by the validation loss averaged over 3 epochs."""
    if not patience:
        return None, 1
    if n_val < EARLY_STOPPING_MIN_VAL:
        return None, SMALL_VAL_SMOOTHING
    return patience, 1


def _schedule(stage, steps_per_epoch: int):
    from tl_kit.train import WarmupCosine

    return WarmupCosine(stage.learning_rate, stage.warmup_epochs * steps_per_epoch,
                        max(stage.epochs * steps_per_epoch, 1), cosine=stage.schedule == "cosine")


def head_cell(clf: Lite0Classifier, stage, seed: int, train: tuple[np.ndarray, np.ndarray],
              val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """The head-only stage on cached features: imprint, then ``stage.epochs`` epochs through
    :func:`tl_kit.distribute.custom_fit` (at least ``min_steps_per_epoch`` steps, the tiny
    cache repeated), the best epoch's head kept. Returns ``{"epochs", "steps", "best_epoch"}``;
    the head (``clf.dense``) is left trained."""
    import tensorflow as tf

    from tl_kit.distribute import custom_fit

    (xtr, ytr), (xva, yva) = train, val
    clf.reset(seed)
    clf.dense.set_weights(list(imprint(xtr, ytr)))
    batch = min(stage.batch_size, len(xtr))
    if stage.min_steps_per_epoch > math.ceil(len(xtr) / batch):  # cycle tiny caches
        reps = math.ceil(stage.min_steps_per_epoch * batch / len(xtr))
        xtr, ytr = np.concatenate([xtr] * reps), np.concatenate([ytr] * reps)
    train_ds = (tf.data.Dataset.from_tensor_slices((xtr.astype("float32"), ytr))
                .shuffle(len(xtr), seed=seed, reshuffle_each_iteration=True).batch(batch))
    val_ds = tf.data.Dataset.from_tensor_slices((xva.astype("float32"), yva)).batch(max(batch, 64))
    patience, smoothing = early_stopping_rule(stage.early_stopping, len(xva))
    optimizer = keras.optimizers.Adam(_schedule(stage, math.ceil(len(xtr) / batch)))
    result = custom_fit(clf.head_model(xtr.shape[1]), optimizer,
                        keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
                        train_ds, val_ds, epochs=stage.epochs, patience=patience,
                        restore_best_weights=bool(stage.restore_best), smoothing=smoothing,
                        steps_per_execution=64, verbose=0)
    epochs = len(result.history["loss"])
    return {"epochs": epochs, "steps": epochs * math.ceil(len(xtr) / batch), "best_epoch": result.best_epoch}


def _flip(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Horizontal mirror of each image with probability ``p`` (tl_kit.augment's ``flip``)."""
    out = x.copy()
    flip = rng.random(len(x)) < p
    out[flip] = out[flip, :, ::-1]
    return out


def batch_indices(n: int, batch: int, steps_per_epoch: int, epochs: int, cycle: bool,
             rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches as ``Data.dataset`` gives them: a fresh shuffle per pass; with ``cycle``
    a repeated stream cut into ``steps_per_epoch`` batches an epoch, else one pass an epoch."""
    if cycle:
        need = steps_per_epoch * epochs * batch
        stream = np.concatenate([rng.permutation(n) for _ in range(math.ceil(need / n))])
        return [stream[i * batch:(i + 1) * batch] for i in range(steps_per_epoch * epochs)]
    out = []
    for _ in range(epochs):
        order = rng.permutation(n)
        out.extend(order[i:i + batch] for i in range(0, n, batch))
    return out


class StepRunner:
    """One column's training step, traced once and reused by all its cells.

    Sets the backbone's trainable blocks for ``stage`` (``trainable``, ``train_bn``), then
    traces ``(images, one-hot) -> loss`` over the classifier's trainable variables with one
    Adam optimizer whose state is reset before each cell.
    """

    def __init__(self, clf: Lite0Classifier, stage):
        import tensorflow as tf

        from tl_kit.backbones import set_trainable_blocks

        self.clf, self.stage = clf, stage
        n = stage.trainable if stage.trainable != "default" else clf.spec.default_unfreeze
        n = 0 if n == "head" else n
        set_trainable_blocks(clf.backbone, clf.spec.blocks, n, train_bn=stage.train_bn)
        if stage.train_bn:
            for layer in clf.backbone._flatten_layers(include_self=False, recursive=True):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = min(layer.momentum, SCRATCH_BN_MOMENTUM)
        model, variables = clf.model, list(clf.model.trainable_variables)
        self.optimizer = keras.optimizers.Adam(stage.learning_rate)
        self.optimizer.build(variables)
        self._opt_initial = [v.numpy() for v in self.optimizer.variables]
        loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing)
        k = int(model.outputs[0].shape[-1])
        specs = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
                 tf.TensorSpec((None, k), tf.float32)]

        @tf.function(input_signature=specs, autograph=False)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
            return loss

        self.step = step
        self.trainable_params = int(sum(np.prod(v.shape) for v in variables))

    def train(self, x: np.ndarray, onehot: np.ndarray, seed: int) -> dict[str, Any]:
        """``stage.epochs`` epochs on ``(x, onehot)`` from the classifier's current weights;
        precise BatchNorm after each epoch when BatchNorm trains. Returns steps and epochs."""
        stage = self.stage
        for v, value in zip(self.optimizer.variables, self._opt_initial, strict=True):
            v.assign(value)
        n = len(x)
        batch = min(stage.batch_size, n)
        steps = math.ceil(n / batch)
        cycle = stage.min_steps_per_epoch > steps
        steps = max(steps, stage.min_steps_per_epoch)
        rng = np.random.default_rng(seed)
        batches = batch_indices(n, batch, steps, stage.epochs, cycle, rng)
        schedule = _schedule(stage, steps)
        p = _flip_p(stage.augment)
        for i, idx in enumerate(batches):
            self.optimizer.learning_rate.assign(float(schedule(i)))
            xb = _flip(x[idx], rng, p) if p else x[idx]
            self.step(xb, onehot[idx])
            if stage.train_bn and (i + 1) % steps == 0:
                self._recalibrate_bn(x, batch)
        return {"steps": len(batches), "epochs": stage.epochs}

    def _recalibrate_bn(self, x: np.ndarray, batch: int) -> None:
        """Precise BatchNorm as ``Learner`` runs it: moving statistics = the mean batch
        statistics of up to 20 un-augmented training batches under the current weights."""
        bns = [layer for layer in self.clf.backbone._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
        saved = [layer.momentum for layer in bns]
        try:
            for i, start in enumerate(range(0, len(x), batch)[:BN_RECALIBRATION_BATCHES], start=1):
                for layer in bns:
                    layer.momentum = (i - 1) / i  # cumulative mean of the batch statistics
                self.clf.model(x[start:start + batch], training=True)
        finally:
            for layer, momentum in zip(bns, saved, strict=True):
                layer.momentum = momentum


def _flip_p(augment) -> float:
    """The flip probability of an augmentation list of flips only (the photo demo's)."""
    if augment in (None, "none"):
        return 0.0
    ops = [op if isinstance(op, dict) else {"name": op} for op in augment]
    if any(op["name"] != "flip" for op in ops):
        raise ValueError(f"The photo demo's cells apply horizontal flips only. Received: augment={augment!r}")
    return float(ops[0].get("p", 0.5)) if ops else 0.0


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
