"""The feature cache: a head-only stage runs the frozen backbone once (plus augmented
copies) and trains the head (the same Dropout and Dense layers) on the cached features;
optionally the head starts as the nearest-class-mean classifier (weight imprinting)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from tl_kit.recipes import Stage
from tl_kit.train.head import Classifier

__all__ = ["extract_features", "imprint", "fit_head_cached"]


def extract_features(classifier: Classifier, data, splits: list[tuple[str, str | None, int]], *,
                     seed: int = 0, log: Callable[[str], None] | None = None
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cached features and labels for each ``(split, augment, copies)``: one pass without
    augmentation plus ``copies`` augmented passes. One folded backbone and one compiled
    graph serve every split and batch (an eager call per batch ran ~2x slower than the
    guide's compiled frozen-backbone loop, and a second trace for validation cost as much
    as the images: benchmarks/bench_cache.py)."""
    import tensorflow as tf

    fm = classifier.feature_model(fold=True, log=log)
    # A None batch dimension: one trace serves full, last-partial and validation batches.
    spec = tf.TensorSpec((None, *fm.input_shape[1:]), tf.float32)
    extract = tf.function(lambda x: fm(x, training=False), input_signature=[spec], autograph=False)
    out = []
    for split, augment, copies in splits:
        feats, labels = [], []
        passes = [(False, None)] + [(True, augment)] * (copies if augment else 0)
        for i, (training, aug) in enumerate(passes):
            ds = data.dataset(split, batch_size=32, training=training, augment=aug, shuffle=False,
                              seed=seed + i)
            for x, y in ds:
                feats.append(extract(x).numpy())
                labels.append(y.numpy())
        out.append((np.concatenate(feats), np.concatenate(labels)))
    return out


def imprint(dense, feats: np.ndarray, onehot: np.ndarray) -> None:
    """Set ``dense`` (the head) to the nearest-class-mean classifier of ``feats`` (weight
    imprinting): logit_c = a * (f . mu_c - |mu_c|^2 / 2), i.e. -a/2 |f - mu_c|^2 up to a
    constant."""
    num_classes = int(dense.units)
    labels = onehot.argmax(axis=1)
    mu = np.stack([feats[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(feats.shape[1])
                   for c in range(num_classes)])
    within = float(np.mean(np.sum((feats - mu[labels]) ** 2, axis=1))) or 1.0
    a = 2.0 / within
    dense.kernel.assign((a * mu.T).astype("float32"))
    dense.bias.assign((-0.5 * a * np.sum(mu**2, axis=1)).astype("float32"))


def fit_head_cached(runner, stage: Stage, data, tag: str):
    """Head-only stage of ``runner`` (a :class:`tl_kit.train.stages.StageRunner`) on cached
    features; a whole epoch of small head steps per graph call (``steps_per_execution``:
    from Python each step cost more than its arithmetic)."""
    import tensorflow as tf

    aug = None if stage.augment in (None, "none") else stage.augment
    t0 = time.perf_counter()
    splits = [("train", aug, stage.cache_copies)] + ([("val", None, 0)] if data.has("val") else [])
    cached = extract_features(runner.classifier, data, splits, seed=runner.seed, log=runner.log)
    (xtr, ytr), val = cached[0], (cached[1] if len(cached) > 1 else None)
    runner.log(f"feature cache: {len(xtr)} train vectors of {xtr.shape[1:]} "
               f"({stage.cache_copies if aug else 0} augmented copies) in {time.perf_counter() - t0:.1f}s")
    if stage.head_init == "imprint":
        imprint(runner.classifier.dense, xtr, ytr)
        runner.log(f"head imprinted with the class means of {len(xtr)} cached feature vectors")
    xtr = xtr.astype("float32")
    batch = min(stage.batch_size, len(xtr))
    if stage.min_steps_per_epoch > math.ceil(len(xtr) / batch):  # cycle tiny caches
        reps = math.ceil(stage.min_steps_per_epoch * batch / len(xtr))
        xtr, ytr = np.concatenate([xtr] * reps), np.concatenate([ytr] * reps)
    with runner.strategy.scope():
        head = runner.classifier.head_model(xtr.shape[1:])
    train = (tf.data.Dataset.from_tensor_slices((xtr, ytr))
             .shuffle(len(xtr), seed=runner.seed, reshuffle_each_iteration=True).batch(batch))
    val_ds = (tf.data.Dataset.from_tensor_slices((val[0].astype("float32"), val[1])).batch(max(batch, 64))
              if val is not None else None)
    from tl_kit.train.inputs import class_weight

    return runner.custom_fit(head, stage, tag, train, val_ds, steps_per_epoch=None,
                             optimizer_steps=math.ceil(len(xtr) / batch),
                             class_weight=class_weight(stage, data), cached=True,
                             steps_per_execution=64, n_val=len(val[0]) if val is not None else 0)
