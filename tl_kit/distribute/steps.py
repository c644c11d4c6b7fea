"""The steps of :func:`tl_kit.distribute.custom_fit`: per replica, across replicas, per epoch.

One job: turn a model, an optimizer and a loss into the compiled functions an epoch runs.

* ``per_example_loss``: the loss as per-example values (tl_kit averages over the GLOBAL batch).
* ``ReplicaSteps``: the per-replica train step (forward/backward pass, optionally under XLA,
  then ``optimizer.apply_gradients``) and eval step, each returning the replica's
  ``(loss sum, correct predictions, examples)``.
* ``reduce_sum``: those sums across replicas (``strategy.reduce``).
* ``step_function`` / ``multi_step_function``: one step per ``tf.function`` call, or up to
  ``n`` steps inside one call (a ``tf.range`` loop over ``get_next_as_optional``).
* ``EpochRunner``: one epoch (or ``steps`` steps) of either over a distributed dataset,
  returning the epoch's mean loss and accuracy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tl_kit.errors import UserError

NO_BATCHES = (
    "The dataset produced no batches; check its size against the batch size "
    "(with drop_remainder=True a dataset smaller than one batch is empty)."
)


def per_example_loss(loss_fn: Any) -> Callable:
    """``loss_fn`` (a Keras loss name, a ``keras.losses.Loss`` or a callable) as a function
    ``(y_true, y_pred) -> per-example losses``; a ``Loss`` is copied with ``reduction=None``."""
    if isinstance(loss_fn, str):
        loss_fn = keras.losses.get(loss_fn)
    if isinstance(loss_fn, keras.losses.Loss):
        loss_fn = copy.copy(loss_fn)
        loss_fn.reduction = None  # per-example values; tl_kit averages over the GLOBAL batch
        return loss_fn
    if callable(loss_fn):
        return loss_fn
    raise UserError(
        "`loss_fn` must be a Keras loss name, a keras.losses.Loss or a callable "
        f"(y_true, y_pred) -> per-example losses. Received: loss_fn={loss_fn!r}"
    )


def unpack(batch: Any) -> tuple[Any, Any, Any]:
    """``(images, labels, sample_weight or None)`` of a 2- or 3-tuple batch."""
    if isinstance(batch, dict):
        raise UserError(
            "custom_fit expects (images, labels[, sample_weight]) tuples. Received: dict batch"
        )
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch[0], batch[1], batch[2]
    raise UserError(
        f"custom_fit expects (images, labels[, sample_weight]) batches. Received: {len(batch)}-tuple"
    )


def prepare_optimizer(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, strategy: tf.distribute.Strategy
) -> keras.optimizers.Optimizer:
    """``optimizer`` built for ``model``'s trainable variables inside ``strategy``'s scope,
    wrapped in a ``keras.optimizers.LossScaleOptimizer`` under the ``mixed_float16`` policy."""
    with strategy.scope():
        if keras.mixed_precision.global_policy().name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        if not optimizer.built:
            optimizer.build(list(model.trainable_variables))
    return optimizer


def class_weight_vector(model: keras.Model, class_weight: dict[int, float] | None) -> tf.Tensor | None:
    """``{class_index: weight}`` as a float32 vector over the model's classes (None without)."""
    if not class_weight:
        return None
    num_classes = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
    if num_classes is None:
        raise UserError("`class_weight` needs a model with a known number of classes.")
    vec = np.ones(num_classes, dtype="float32")
    for k, v in class_weight.items():
        vec[int(k)] = float(v)
    return tf.constant(vec)


def _labels(y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(labels for the loss, integer class ids) of one-hot or integer labels."""
    if y.shape.rank is not None and y.shape.rank >= 2 and (y.shape[-1] or 0) > 1:
        return tf.cast(y, tf.float32), tf.argmax(y, axis=-1, output_type=tf.int32)
    ids = tf.reshape(tf.cast(y, tf.int32), [-1])
    return y, ids


def _correct(pred: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    hits = tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), ids)
    return tf.reduce_sum(tf.cast(hits, tf.float32))


class ReplicaSteps:
    """The per-replica train and eval steps of one model, for ``strategy.run``.

    Train: loss = sum of (class/sample-weighted) per-example losses divided by the number
    of examples in the GLOBAL batch (all-reduced, so a short last batch is weighted exactly)
    plus the regularisation losses divided by the replica count; its gradients (the forward
    and backward pass under XLA with ``jit_compile``) go to ``optimizer.apply_gradients``,
    which sums them over replicas. Eval: the sample-weighted loss sum (no class weights).
    Both return the replica's ``(loss sum, correct predictions, examples)``.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        loss: Callable,
        strategy: tf.distribute.Strategy,
        *,
        class_weight: dict[int, float] | None = None,
        jit_compile: bool = False,
    ):
        self.model, self.optimizer, self.loss, self.strategy = model, optimizer, loss, strategy
        self.trainable = list(model.trainable_variables)
        self.class_weights = class_weight_vector(model, class_weight)
        self._gradients = tf.function(self.gradients, jit_compile=True) if jit_compile else self.gradients

    def _weights(self, ids: tf.Tensor, sw: Any, use_class_weights: bool) -> tf.Tensor:
        w = tf.ones_like(ids, dtype=tf.float32)
        if use_class_weights and self.class_weights is not None:
            w = w * tf.gather(self.class_weights, ids)
        if sw is not None:
            w = w * tf.reshape(tf.cast(sw, tf.float32), [-1])
        return w

    def _regularization(self) -> tf.Tensor:
        if self.model.losses:
            return tf.nn.scale_regularization_loss(
                tf.add_n([tf.cast(v, tf.float32) for v in self.model.losses])
            )
        return tf.constant(0.0)

    def gradients(self, x: Any, y: Any, sw: Any, n_global: tf.Tensor) -> tuple:
        """``(this replica's share of the loss, its gradients, correct predictions)``."""
        y_loss, ids = _labels(y)
        with tf.GradientTape() as tape:
            pred = tf.cast(self.model(x, training=True), tf.float32)
            w = self._weights(ids, sw, True)
            share = tf.reduce_sum(self.loss(y_loss, pred) * w) / n_global + self._regularization()
            scaled = self.optimizer.scale_loss(share)
        grads = tape.gradient(scaled, self.trainable)
        return share, grads, _correct(pred, ids)

    def train(self, batch: Any) -> tuple:
        """One training step on this replica's slice of ``batch``."""
        x, y, sw = unpack(batch)
        n_local = tf.cast(tf.shape(x)[0], tf.float32)
        ctx = tf.distribute.get_replica_context()
        n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)

        def step():
            return self._gradients(x, y, sw, n_global)

        def empty():  # nothing to learn from; its zero gradients still join the all-reduce
            return tf.constant(0.0), [tf.zeros_like(v) for v in self.trainable], tf.constant(0.0)

        # A replica's batch is empty when its worker's files ran out one step before the
        # others' (file-level sharding); convolutions fail on an empty batch, so skip it.
        share, grads, correct = tf.cond(n_local > 0, step, empty)
        self.optimizer.apply_gradients(zip(grads, self.trainable, strict=True))
        # share * n_global summed over replicas = (global mean loss) * n_global
        return share * n_global, correct, n_local

    def evaluate(self, batch: Any) -> tuple:
        """One evaluation step on this replica's slice of ``batch``."""
        x, y, sw = unpack(batch)
        n_local = tf.cast(tf.shape(x)[0], tf.float32)

        def step():
            y_loss, ids = _labels(y)
            pred = tf.cast(self.model(x, training=False), tf.float32)
            num = self.strategy.num_replicas_in_sync
            loss_sum = tf.reduce_sum(self.loss(y_loss, pred) * self._weights(ids, sw, False))
            loss_sum += self._regularization() * n_local * num  # once per example, like Keras's val_loss
            return loss_sum, _correct(pred, ids)

        loss_sum, correct = tf.cond(n_local > 0, step, lambda: (tf.constant(0.0), tf.constant(0.0)))
        return loss_sum, correct, n_local


def reduce_sum(strategy: tf.distribute.Strategy, values: Any) -> list[tf.Tensor]:
    """Each per-replica value summed over the replicas (cross-replica reduction)."""
    return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]


def step_function(
    strategy: tf.distribute.Strategy, replica_fn: Callable, element_spec: Any
) -> Callable:
    """One distributed step per call: ``replica_fn`` on every replica, sums reduced."""

    # autograph=False: the step has no Python control flow on tensors, and converting Keras's
    # call graph costs ~0.5 s of tracing per stage (benchmarks/bench_cache.py).
    @tf.function(input_signature=[element_spec], autograph=False)
    def step(batch):
        return reduce_sum(strategy, strategy.run(replica_fn, args=(batch,)))

    return step


def multi_step_function(strategy: tf.distribute.Strategy, replica_fn: Callable) -> Callable:
    """Up to ``n`` distributed steps in one call ``(iterator, n)``, stopping early when the
    iterator ends; returns ``(loss sum, correct, examples, steps done)``."""
    replica_fn = tf.autograph.experimental.do_not_convert(replica_fn)

    @tf.function
    def multi_step(iterator, n):
        loss_sum, correct_sum, count, done = 0.0, 0.0, 0.0, 0
        for _ in tf.range(n):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            a, b, c = reduce_sum(strategy, strategy.run(replica_fn, args=(batch.get_value(),)))
            loss_sum, correct_sum, count, done = loss_sum + a, correct_sum + b, count + c, done + 1
        return loss_sum, correct_sum, count, done

    return multi_step


class EpochRunner:
    """One epoch of a replica step over a distributed dataset: ``run()`` returns its mean
    loss and accuracy.

    ``steps=None``: one pass over the dataset (a new iterator each epoch); a number: that
    many steps from one iterator that continues across epochs (for repeated datasets).
    ``steps_per_execution > 1`` runs that many steps inside one ``tf.function`` call; the
    result is the same as with 1.
    """

    def __init__(
        self,
        strategy: tf.distribute.Strategy,
        replica_fn: Callable,
        dataset: tf.distribute.DistributedDataset,
        *,
        steps: int | None = None,
        steps_per_execution: int = 1,
    ):
        self.dataset, self.steps, self.steps_per_execution = dataset, steps, steps_per_execution
        self._iterator: Iterator | None = None
        if steps_per_execution > 1:
            self._multi = multi_step_function(strategy, replica_fn)
        else:
            self._step = step_function(strategy, replica_fn, dataset.element_spec)

    def run(self) -> tuple[float, float]:
        """``(mean loss, accuracy)`` of one epoch."""
        return self._run_looped() if self.steps_per_execution > 1 else self._run_single()

    def _shared_iterator(self) -> Iterator:
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        return self._iterator

    def _batches(self) -> Iterator:
        if self.steps is None:
            yield from self.dataset
            return
        it = self._shared_iterator()
        for _ in range(self.steps):
            yield next(it)

    def _run_single(self) -> tuple[float, float]:
        sums = [self._step(batch) for batch in self._batches()]
        if not sums:
            raise UserError(NO_BATCHES)
        loss, correct, n = (float(tf.add_n(list(col))) for col in zip(*sums, strict=True))
        return loss / n, correct / n

    def _run_looped(self) -> tuple[float, float]:
        if self.steps is None:
            it, remaining = iter(self.dataset), None
        else:
            it, remaining = self._shared_iterator(), self.steps
        loss = correct = n = 0.0
        while remaining is None or remaining > 0:
            k = self.steps_per_execution if remaining is None else min(self.steps_per_execution, remaining)
            a, b, c, done = self._multi(it, tf.constant(k, tf.int32))
            loss, correct, n = loss + float(a), correct + float(b), n + float(c)
            if remaining is not None:
                remaining -= int(done)
            if int(done) < k:
                break
        if n == 0:
            raise UserError(NO_BATCHES)
        return loss / n, correct / n
