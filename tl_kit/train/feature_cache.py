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

__all__ = ["class_statistics", "extract_features", "imprint", "fit_head_cached"]


def extract_features(classifier: Classifier, data, splits: list[tuple[str, str | None, int]], *,
                     seed: int = 0, log: Callable[[str], None] | None = None,
                     shards: dict[str, tuple[int, int]] | None = None
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cached features and labels for each ``(split, augment, copies)``: one pass without
    augmentation plus ``copies`` augmented passes. One folded backbone and one compiled
    graph serve every split and batch (an eager call per batch ran ~2x slower than the
    guide's compiled frozen-backbone loop, and a second trace for validation cost as much
    as the images: benchmarks/bench_cache.py). ``shards``: ``{split: (num_workers,
    worker_index)}``, the splits this worker reads only its own files of."""
    shards = shards or {}
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
                              seed=seed + i, shard=shards.get(split))
            for x, y in ds:
                feats.append(extract(x).numpy())
                labels.append(y.numpy())
        out.append((np.concatenate(feats), np.concatenate(labels)))
    return out


def class_statistics(feats: np.ndarray, onehot: np.ndarray, num_classes: int) -> np.ndarray:
    """What imprinting needs of ``feats``, as one float64 vector that sums over disjoint sets
    of examples: the per-class feature sums ``(K * D)``, the class counts ``(K)``, the sum of
    squared feature norms and the number of examples."""
    labels = onehot.argmax(axis=1)
    f = feats.astype(np.float64)
    sums = np.zeros((num_classes, f.shape[1]))
    np.add.at(sums, labels, f)
    return np.concatenate([sums.ravel(), np.bincount(labels, minlength=num_classes),
                           [np.sum(f * f), len(f)]])


def imprint(dense, feats: np.ndarray, onehot: np.ndarray,
            total: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """Set ``dense`` (the head) to the nearest-class-mean classifier of ``feats`` (weight
    imprinting): logit_c = a * (f . mu_c - |mu_c|^2 / 2), i.e. -a/2 |f - mu_c|^2 up to a
    constant, with a = 2 / (mean squared distance of a feature to its class mean).

    ``total``: sums an array over the workers of a cluster whose workers each hold the
    features of their own files (:func:`tl_kit.train.worker_inputs.sum_over_workers`); the
    class means and the spread are then those of all the features, the same on every worker.
    """
    num_classes = int(dense.units)
    stats = class_statistics(feats, onehot, num_classes)
    if total is not None:
        stats = total(stats)
    d = (len(stats) - 2 - num_classes) // num_classes
    sums = stats[:num_classes * d].reshape(num_classes, d)
    counts = stats[sums.size:sums.size + num_classes]
    sq, n = stats[-2], stats[-1]
    mu = sums / np.maximum(counts, 1)[:, None]
    # sum over examples of |f - mu_label|^2 = sum |f|^2 - sum_c n_c |mu_c|^2
    within = max(0.0, float((sq - np.sum(counts * np.sum(mu * mu, axis=1))) / max(n, 1))) or 1.0
    a = 2.0 / within
    dense.kernel.assign((a * mu.T).astype("float32"))
    dense.bias.assign((-0.5 * a * np.sum(mu**2, axis=1)).astype("float32"))


def fit_head_cached(runner, stage: Stage, data, tag: str):
    """Head-only stage of ``runner`` (a :class:`tl_kit.train.stages.StageRunner`) on cached
    features; a whole epoch of small head steps per graph call (``steps_per_execution``:
    from Python each step cost more than its arithmetic). Under a multi-worker cluster each
    worker caches and trains on the features of its own files
    (:mod:`tl_kit.train.worker_inputs`); imprinting sums the class statistics over the workers."""
    import tensorflow as tf

    from tl_kit.train import worker_inputs as wi
    from tl_kit.train.inputs import class_weight

    strategy = runner.strategy
    aug = None if stage.augment in (None, "none") else stage.augment
    passes = 1 + (stage.cache_copies if aug else 0)
    t0 = time.perf_counter()
    splits = [("train", aug, stage.cache_copies)] + ([("val", None, 0)] if data.has("val") else [])
    shard = wi.worker_shard(strategy)
    shards = {s: shard for s, _, _ in splits if wi.uses_file_sharding(strategy, data, s)}
    cached = extract_features(runner.classifier, data, splits, seed=runner.seed, log=runner.log, shards=shards)
    (xtr, ytr), val = cached[0], (cached[1] if len(cached) > 1 else None)
    mine = " (this worker's files)" if "train" in shards else ""
    runner.log(f"feature cache: {len(xtr)} train vectors of {xtr.shape[1:]}{mine} "
               f"({stage.cache_copies if aug else 0} augmented copies) in {time.perf_counter() - t0:.1f}s")
    if stage.head_init == "imprint":
        total = (lambda a: wi.sum_over_workers(strategy, a)) if "train" in shards else None
        imprint(runner.classifier.dense, xtr, ytr, total=total)
        runner.log(f"head imprinted with the class means of {data.size('train') * passes} cached "
                   "feature vectors")
    n_all = data.size("train") * passes  # the same on every worker
    batch = min(stage.batch_size, n_all)
    if "train" in shards:
        batch = wi.global_batch(strategy, batch, runner.log)
    xtr, reps = xtr.astype("float32"), 1
    if stage.min_steps_per_epoch > math.ceil(n_all / batch):  # cycle tiny caches
        reps = math.ceil(stage.min_steps_per_epoch * batch / n_all)
        xtr, ytr = np.concatenate([xtr] * reps), np.concatenate([ytr] * reps)
    steps = (wi.sharded_steps(n_all * reps, strategy, batch) if "train" in shards
             else math.ceil(n_all * reps / batch))
    with strategy.scope():
        head = runner.classifier.head_model(xtr.shape[1:])

    def train_ds(b: int, shard=None):  # the features are this worker's already: shard unused
        return (tf.data.Dataset.from_tensor_slices((xtr, ytr))
                .shuffle(len(xtr), seed=runner.seed, reshuffle_each_iteration=True).batch(b))

    def val_ds(b: int, shard=None):
        return tf.data.Dataset.from_tensor_slices((val[0].astype("float32"), val[1])).batch(b)

    train = runner.pipeline(data, "train", train_ds, batch)  # per worker under a cluster
    val_pipe = runner.pipeline(data, "val", val_ds, max(batch, 64)) if val is not None else None
    return runner.custom_fit(head, stage, tag, train, val_pipe, steps_per_epoch=None,
                             optimizer_steps=steps, class_weight=class_weight(stage, data), cached=True,
                             steps_per_execution=64, n_val=data.size("val") if val is not None else 0)
