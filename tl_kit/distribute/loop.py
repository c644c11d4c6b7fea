"""The distributed-safe training loop: ``custom_fit`` and what it returns (``FitResult``).

See the package docstring of :mod:`tl_kit.distribute` for why tl_kit has its own loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tl_kit.distribute.strategy import distribute_dataset, gather_from_workers, is_chief, worker_dir
from tl_kit.errors import UserError
from tl_kit.rundir.stage import (
    check_writable,
    load_best,
    read_state,
    save_best,
    write_history_csv,
    write_state,
)


def prune(*args: Any) -> None:
    """:func:`tl_kit.rundir.stage.prune`, looked up on :mod:`tl_kit.distribute` at each call
    (tests wrap ``tl_kit.distribute.prune`` to watch the checkpoints it leaves)."""
    import tl_kit.distribute as package

    package.prune(*args)


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite.

    ``result`` holds the ``FitResult`` up to the last good epoch; the model holds that
    epoch's weights and its checkpoint is kept.
    """

    def __init__(self, message: str, result: FitResult):
        super().__init__(message)
        self.result = result


@dataclass
class FitResult:
    """What ``custom_fit`` returns; ``history``/``epoch`` read like ``keras.callbacks.History``.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy":
            [...]}``, one value per finished epoch, each epoch once (resumed epochs included).
        epoch: 0-based indices of those epochs.
        initial_epoch: epochs already finished (found in a checkpoint) when the call
            started: 0 for a fresh run, 2 when resuming after epoch 2.
        best_epoch: 1-based epoch with the best ``monitor`` value (None without one).
        stop_reason: "completed", "early_stopping", "callback" or "already_finished".
        checkpoint_dir: where THIS process wrote its checkpoints (None without checkpoints).
        checkpoint_writes: checkpoints written by the stage so far (resumed runs included).
        checkpoint_seconds: seconds THIS call spent writing checkpoints.
    """

    history: dict[str, list[float]]
    epoch: list[int]
    initial_epoch: int = 0
    best_epoch: int | None = None
    monitor: str | None = None
    stop_reason: str = "completed"
    checkpoint_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    checkpoint_writes: int = 0
    checkpoint_seconds: float = 0.0


# checkpoint_interval="auto": at least this many seconds between checkpoints (see custom_fit)
AUTO_CHECKPOINT_SECONDS = 60.0


def _per_example_loss(loss_fn: Any) -> Callable:
    if isinstance(loss_fn, str):
        loss_fn = keras.losses.get(loss_fn)
    if isinstance(loss_fn, keras.losses.Loss):
        import copy

        loss_fn = copy.copy(loss_fn)
        loss_fn.reduction = None  # per-example values; tl_kit averages over the GLOBAL batch
        return loss_fn
    if callable(loss_fn):
        return loss_fn
    raise UserError(
        "`loss_fn` must be a Keras loss name, a keras.losses.Loss or a callable "
        f"(y_true, y_pred) -> per-example losses. Received: loss_fn={loss_fn!r}"
    )


def _monitor_mode(monitor: str) -> str:
    return "max" if "acc" in monitor else "min"


def _unpack(batch: Any) -> tuple[Any, Any, Any]:
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


def custom_fit(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: Any,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None = None,
    *,
    epochs: int,
    strategy: tf.distribute.Strategy | None = None,
    class_weight: dict[int, float] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    history_csv: str | os.PathLike | None = None,
    monitor: str = "auto",
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best_weights: bool = True,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    jit_compile: bool = False,
    sharding: str = "auto",
    callbacks: Iterable[keras.callbacks.Callback] | None = None,
    after_train_epoch: Callable[[int], None] | None = None,
    steps_per_execution: int = 1,
    keep_checkpoints: int = 1,
    checkpoint_interval: float | str = "auto",
    smoothing: int = 1,
    verbose: int = 1,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train ``model`` with TensorFlow's custom-training-loop pattern under any strategy.

    Each step runs ``strategy.run(replica_step)``: forward and backward pass on the
    replica's slice, loss = sum of (class/sample-weighted) per-example losses divided by
    the number of examples in the GLOBAL batch (all-reduced, so a short last batch is
    weighted exactly), regularisation losses divided by the replica count, then
    ``optimizer.apply_gradients`` (Keras sums the gradients over replicas). Metrics are
    summed with ``strategy.reduce`` and reported per epoch.

    The caller creates ``model`` and ``optimizer`` INSIDE ``strategy.scope()``; the model
    must be built (a functional model is). Under the ``mixed_float16`` policy the optimizer
    is wrapped in a ``keras.optimizers.LossScaleOptimizer`` here (inside the scope).

    Args:
        model: built Keras model mapping images to class probabilities (float32 head).
        optimizer: Keras optimizer; its state is checkpointed (schedules resume correctly).
        loss_fn: loss name, ``keras.losses.Loss`` (its reduction is replaced by
            per-example) or callable returning per-example losses.
        train_ds, val_ds: ``tf.data.Dataset`` of ``(images, labels[, sample_weight])``
            batched by the GLOBAL batch size; labels one-hot (or integer class ids).
            Already distributed datasets are accepted too.
        epochs: total number of epochs (counting epochs finished before a resume).
        strategy: the strategy the model was built under (default: the current one).
        class_weight: ``{class_index: weight}`` applied to training losses only.
        checkpoint_dir: the chief's checkpoint directory (e.g. ``run_dir/checkpoints/stage1``).
            Pass the same path in every process: the chief writes there, other workers to
            ``worker_dir(checkpoint_dir)``. Holds ``ckpt-<epoch>`` (model + optimizer,
            the last ``keep_checkpoints``), ``best/weights-<epoch>.npz`` (the best epoch's
            weights, without optimizer state) and ``state.json`` (the epoch of the last
            checkpoint, its history, early-stopping state). If ``state.json`` exists,
            training resumes after the epoch of the last written checkpoint (epochs after
            it are run again, each epoch once in the history). ``None``: no checkpoints.
        checkpoint_interval: when a checkpoint is written at an epoch's end: always after
            the last epoch (or an early stop); otherwise ``0`` = every epoch, a number =
            when at least that many seconds passed since the last write, ``"auto"`` (the
            default) = after the first epoch (which also measures what a write costs),
            then when the time since the last write is at least
            ``AUTO_CHECKPOINT_SECONDS`` (60 s: a kill loses about a minute of training at
            most) and at least 9x what that write took (checkpoint writing stays under
            ~10% of the wall time however large the model and short the epochs). Under
            ``MultiWorkerMirroredStrategy`` the workers agree on each decision (saving is
            collective).
        keep_checkpoints: model + optimizer checkpoints kept (older ones are deleted once
            ``state.json`` points to the new one).
        smoothing: early stopping and the best epoch compare the mean of the monitor over
            the last ``smoothing`` epochs (1 = the epoch's own value); for a small, noisy
            validation set.
        history_csv: CSV of the history, rewritten each epoch by the chief only.
        monitor: metric for early stopping and best weights: ``"auto"`` = ``val_loss``
            with validation data, else ``loss``. ``*acc*`` metrics are maximised.
        patience: epochs without improvement (> ``min_delta``) before stopping; None = off.
        restore_best_weights: leave the model with the best epoch's weights at the end.
        steps_per_epoch, validation_steps: steps per epoch (needed for repeated datasets);
            None = one pass over the dataset.
        jit_compile: XLA-compile the per-replica forward/backward pass (see
            ``resolve_jit_compile``); the gradient all-reduce stays outside XLA.
        sharding: dataset sharding across workers (see ``distribute_dataset``).
        callbacks: Keras callbacks; get ``on_train_begin/end`` and ``on_epoch_begin/end``
            (with the epoch's logs) on every process; ``model.stop_training`` stops training.
        after_train_epoch: called with the epoch index after the epoch's training steps and
            before validation and the checkpoint (e.g. to recalibrate BatchNorm statistics).
        steps_per_execution: steps run inside one ``tf.function`` call (a ``tf.range`` loop
            over ``get_next_as_optional``, TensorFlow's pattern for distributed iterators),
            like Keras's ``compile(steps_per_execution=...)``: it removes the per-step
            Python overhead that dominates small models (a head on cached features runs
            ~1.5 ms per step from Python). The result is the same as with 1.
        verbose: 1 = one progress line per epoch (chief only), 0 = silent.
        log: where progress lines go.

    Returns:
        ``FitResult`` (``.history`` like Keras's, ``.initial_epoch`` = the epoch resumed at).

    Raises:
        NonFiniteLossError: the loss became NaN/inf; the model is reset to the last good
            checkpoint (kept on disk) and the error names the epoch.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"`epochs` must be a positive integer. Received: epochs={epochs!r}")
    if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
        raise UserError("`steps_per_execution` must be a positive integer. "
                         f"Received: steps_per_execution={steps_per_execution!r}")
    if not isinstance(keep_checkpoints, int) or keep_checkpoints < 1:
        raise UserError("`keep_checkpoints` must be a positive integer. "
                         f"Received: keep_checkpoints={keep_checkpoints!r}")
    if not isinstance(smoothing, int) or smoothing < 1:
        raise UserError(f"`smoothing` must be a positive integer. Received: smoothing={smoothing!r}")
    if checkpoint_interval != "auto" and not (
        isinstance(checkpoint_interval, (int, float)) and checkpoint_interval >= 0
    ):
        raise UserError("`checkpoint_interval` must be 'auto' or a number of seconds >= 0. "
                         f"Received: checkpoint_interval={checkpoint_interval!r}")
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    chief = is_chief(strategy)
    per_example = _per_example_loss(loss_fn)
    if monitor == "auto":
        monitor = "val_loss" if val_ds is not None else "loss"
    if monitor.startswith("val_") and val_ds is None:
        raise UserError(f"`monitor` needs validation data (val_ds). Received: monitor={monitor!r}")
    if monitor not in ("loss", "accuracy", "val_loss", "val_accuracy"):
        raise UserError(
            "`monitor` must be 'auto', 'loss', 'accuracy', 'val_loss' or 'val_accuracy'. "
            f"Received: monitor={monitor!r}"
        )
    mode = _monitor_mode(monitor)
    smoothed = f" (mean of {smoothing} epochs)" if smoothing > 1 else ""

    # --- Directories (fail before training, not after) ---
    read_dir = os.fspath(checkpoint_dir) if checkpoint_dir is not None else None
    write_dir = worker_dir(read_dir, strategy) if read_dir is not None else None
    if write_dir is not None:
        check_writable(write_dir)
    if history_csv is not None and chief:
        check_writable(os.path.dirname(os.path.abspath(os.fspath(history_csv))))

    # --- Optimizer and checkpoint objects, inside the strategy's scope ---
    with strategy.scope():
        if keras.mixed_precision.global_policy().name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        trainable = list(model.trainable_variables)
        if not optimizer.built:
            optimizer.build(trainable)
        ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)

    num_classes = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
    cw = None
    if class_weight:
        if num_classes is None:
            raise UserError("`class_weight` needs a model with a known number of classes.")
        vec = np.ones(num_classes, dtype="float32")
        for k, v in class_weight.items():
            vec[int(k)] = float(v)
        cw = tf.constant(vec)

    # --- Step functions ---
    def _labels(y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(labels for the loss, integer class ids)."""
        if y.shape.rank is not None and y.shape.rank >= 2 and (y.shape[-1] or 0) > 1:
            return tf.cast(y, tf.float32), tf.argmax(y, axis=-1, output_type=tf.int32)
        ids = tf.reshape(tf.cast(y, tf.int32), [-1])
        return y, ids

    def _weights(ids: tf.Tensor, sw: Any, use_cw: bool) -> tf.Tensor:
        w = tf.ones_like(ids, dtype=tf.float32)
        if use_cw and cw is not None:
            w = w * tf.gather(cw, ids)
        if sw is not None:
            w = w * tf.reshape(tf.cast(sw, tf.float32), [-1])
        return w

    def _reg_loss() -> tf.Tensor:
        if model.losses:
            return tf.nn.scale_regularization_loss(
                tf.add_n([tf.cast(v, tf.float32) for v in model.losses])
            )
        return tf.constant(0.0)

    def grad_fn(x, y, sw, n_global):
        y_loss, ids = _labels(y)
        with tf.GradientTape() as tape:
            pred = tf.cast(model(x, training=True), tf.float32)
            w = _weights(ids, sw, True)
            share = tf.reduce_sum(per_example(y_loss, pred) * w) / n_global + _reg_loss()
            scaled = optimizer.scale_loss(share)
        grads = tape.gradient(scaled, trainable)
        correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), ids), tf.float32)
        )
        return share, grads, correct

    if jit_compile:
        grad_fn = tf.function(grad_fn, jit_compile=True)

    def replica_train(batch):
        x, y, sw = _unpack(batch)
        n_local = tf.cast(tf.shape(x)[0], tf.float32)
        ctx = tf.distribute.get_replica_context()
        n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)
        share, grads, correct = grad_fn(x, y, sw, n_global)
        optimizer.apply_gradients(zip(grads, trainable, strict=True))
        # share * n_global summed over replicas = (global mean loss) * n_global
        return share * n_global, correct, n_local

    def replica_eval(batch):
        x, y, sw = _unpack(batch)
        y_loss, ids = _labels(y)
        pred = tf.cast(model(x, training=False), tf.float32)
        n_local = tf.cast(tf.shape(x)[0], tf.float32)
        num = strategy.num_replicas_in_sync
        loss_sum = tf.reduce_sum(per_example(y_loss, pred) * _weights(ids, sw, False))
        loss_sum += _reg_loss() * n_local * num  # once per example, like Keras's val_loss
        correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), ids), tf.float32)
        )
        return loss_sum, correct, n_local

    def _reduce(values):
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    train_dist = distribute_dataset(strategy, train_ds, sharding=sharding)
    val_dist = (
        distribute_dataset(strategy, val_ds, sharding=sharding) if val_ds is not None else None
    )

    # autograph=False: the step has no Python control flow on tensors, and converting Keras's
    # call graph costs ~0.5 s of tracing per stage (benchmarks/bench_cache.py).
    @tf.function(input_signature=[train_dist.element_spec], autograph=False)
    def train_step(batch):
        return _reduce(strategy.run(replica_train, args=(batch,)))

    if val_dist is not None:

        @tf.function(input_signature=[val_dist.element_spec], autograph=False)
        def eval_step(batch):
            return _reduce(strategy.run(replica_eval, args=(batch,)))

    def _looped(replica_fn):
        replica_fn = tf.autograph.experimental.do_not_convert(replica_fn)

        @tf.function
        def multi_step(iterator, n):
            loss_sum, correct_sum, count, done = 0.0, 0.0, 0.0, 0
            for _ in tf.range(n):
                batch = iterator.get_next_as_optional()
                if not batch.has_value():
                    break
                a, b, c = _reduce(strategy.run(replica_fn, args=(batch.get_value(),)))
                loss_sum, correct_sum, count, done = loss_sum + a, correct_sum + b, count + c, done + 1
            return loss_sum, correct_sum, count, done

        return multi_step

    if steps_per_execution > 1:
        train_multi = _looped(replica_train)
        eval_multi = _looped(replica_eval) if val_dist is not None else None

    def _run_looped(multi, dist, steps, state):
        """``_run`` with ``steps_per_execution`` steps per call."""
        if steps is None:
            it, remaining = iter(dist), None
        else:
            if state.get("it") is None:
                state["it"] = iter(dist)
            it, remaining = state["it"], steps
        loss = correct = n = 0.0
        while remaining is None or remaining > 0:
            k = steps_per_execution if remaining is None else min(steps_per_execution, remaining)
            a, b, c, done = multi(it, tf.constant(k, tf.int32))
            loss, correct, n = loss + float(a), correct + float(b), n + float(c)
            if remaining is not None:
                remaining -= int(done)
            if int(done) < k:
                break
        if n == 0:
            raise UserError(
                "The dataset produced no batches; check its size against the batch size "
                "(with drop_remainder=True a dataset smaller than one batch is empty)."
            )
        return loss / n, correct / n

    def _batches(dist, steps, state):
        if steps is None:
            yield from dist
            return
        if state.get("it") is None:
            state["it"] = iter(dist)
        for _ in range(steps):
            yield next(state["it"])

    def _run(step, dist, steps, state):
        sums = [step(batch) for batch in _batches(dist, steps, state)]
        if not sums:
            raise UserError(
                "The dataset produced no batches; check its size against the batch size "
                "(with drop_remainder=True a dataset smaller than one batch is empty)."
            )
        loss, correct, n = (float(tf.add_n(list(col))) for col in zip(*sums, strict=True))
        return loss / n, correct / n

    # --- Resume ---
    history: dict[str, list[float]] = {}
    state = read_state(read_dir)
    state_dir = read_dir
    if state is None and write_dir != read_dir:
        state, state_dir = read_state(write_dir), write_dir
    initial_epoch, best, best_epoch, wait = 0, None, None, 0
    best_weights = None
    manager = None
    if write_dir is not None:
        # max_to_keep=None: old checkpoints are deleted by _prune once state.json points to the
        # new one (the manager would delete them before state.json is rewritten).
        manager = tf.train.CheckpointManager(ckpt, write_dir, max_to_keep=None)
    if state is not None:
        initial_epoch = int(state["epochs_done"])
        history = {k: list(v) for k, v in state["history"].items()}
        best, best_epoch, wait = (
            state.get("best"),
            state.get("best_epoch"),
            int(state.get("wait", 0)),
        )
        if restore_best_weights and state.get("best_file"):
            best_weights = load_best(os.path.join(state_dir, state["best_file"]))
        ckpt.restore(os.path.join(state_dir, state["checkpoint"])).expect_partial()
        if restore_best_weights and best_weights is None and best_epoch == initial_epoch:
            best_weights = model.get_weights()
        if verbose and chief:
            log(f"Resuming at epoch {initial_epoch + 1}/{epochs} from {state_dir}")
    saved_best = state.get("best_file") if state is not None else None
    cost = {"writes": int((state or {}).get("checkpoint_writes", 0)), "seconds": 0.0,
            "last": None, "since": time.perf_counter(), "epoch": initial_epoch,
            "path": os.path.join(state_dir, state["checkpoint"]) if state is not None else None}

    def _due(final: bool) -> bool:
        """The checkpoint policy (see ``checkpoint_interval``), agreed by every worker."""
        if final:
            return True
        since = time.perf_counter() - cost["since"]
        if checkpoint_interval == "auto":
            want = cost["last"] is None or since >= max(AUTO_CHECKPOINT_SECONDS, 9 * cost["last"])
        else:
            want = since >= float(checkpoint_interval)
        return max(gather_from_workers(strategy, int(want))) > 0

    def _write(epoch: int, stop: bool) -> None:
        nonlocal saved_best
        t0 = time.perf_counter()
        path = manager.save(checkpoint_number=epoch + 1)
        if restore_best_weights and best_weights is not None and best_epoch is not None:
            name = os.path.join("best", f"weights-{best_epoch}.npz")
            if name != saved_best:
                save_best(os.path.join(write_dir, name), best_weights)
        else:
            name = None
        cost["writes"] += 1
        write_state(
            write_dir,
            {
                "epochs_done": epoch + 1,
                "checkpoint": os.path.basename(path),
                "history": history,
                "monitor": monitor,
                "best": best,
                "best_epoch": best_epoch,
                "best_file": name,
                "wait": wait,
                "stopped_early": bool(stop),
                "replicas": strategy.num_replicas_in_sync,
                "checkpoint_writes": cost["writes"],
            },
        )
        saved_best = name
        prune(write_dir, manager, keep_checkpoints, name)
        cost["last"] = time.perf_counter() - t0
        cost["seconds"] += cost["last"]
        cost["since"] = time.perf_counter()
        cost["epoch"], cost["path"] = epoch + 1, path

    def _result(reason: str, upto: int | None = None) -> FitResult:
        if upto is not None:  # the history of the checkpoint the model was reset to
            for k in history:
                del history[k][upto:]
        n = len(next(iter(history.values()), []))
        return FitResult(
            history=history,
            epoch=list(range(n)),
            initial_epoch=initial_epoch,
            best_epoch=best_epoch,
            monitor=monitor,
            stop_reason=reason,
            checkpoint_dir=write_dir,
            params={"epochs": epochs, "replicas": strategy.num_replicas_in_sync},
            checkpoint_writes=cost["writes"],
            checkpoint_seconds=cost["seconds"],
        )

    def _finish(reason: str) -> FitResult:
        if (
            restore_best_weights
            and best_weights is not None
            and best_epoch != len(next(iter(history.values()), []))
        ):
            model.set_weights(best_weights)
        return _result(reason)

    if state is not None and (state.get("stopped_early") or initial_epoch >= epochs):
        return _finish("already_finished")

    cb_list = keras.callbacks.CallbackList(
        list(callbacks or []),
        add_history=False,
        add_progbar=False,
        model=model,
        epochs=epochs,
        verbose=0,
    )
    model.stop_training = False
    cb_list.on_train_begin()
    reason = "completed"
    iter_state: dict[str, Any] = {}
    val_state: dict[str, Any] = {}
    for epoch in range(initial_epoch, epochs):
        cb_list.on_epoch_begin(epoch)
        start = time.perf_counter()
        if steps_per_execution > 1:
            loss, acc = _run_looped(train_multi, train_dist, steps_per_epoch, iter_state)
        else:
            loss, acc = _run(train_step, train_dist, steps_per_epoch, iter_state)
        logs = {"loss": loss, "accuracy": acc}
        if after_train_epoch is not None:
            after_train_epoch(epoch)
        if val_dist is not None:
            if steps_per_execution > 1:
                val_loss, val_acc = _run_looped(eval_multi, val_dist, validation_steps, val_state)
            else:
                val_loss, val_acc = _run(eval_step, val_dist, validation_steps, val_state)
            logs.update(val_loss=val_loss, val_accuracy=val_acc)
        if not all(math.isfinite(v) for v in logs.values()):
            good = cost["epoch"] if manager is not None else epoch  # no checkpoints: not reset
            last = f"epoch {good}" if good > 0 else "no epoch (nothing was saved)"
            if cost["path"] is not None:  # the checkpoint state.json points to
                ckpt.restore(cost["path"]).expect_partial()
            raise NonFiniteLossError(
                f"Training stopped: the loss became non-finite in epoch {epoch + 1}/{epochs}. "
                f"The model was reset to the last good checkpoint ({last}), which is kept in "
                f"{read_dir!r}. Lower the learning rate, check the inputs for NaN/inf, or use "
                f"precision='float32'. Received: loss={loss}",
                _result("non_finite_loss", upto=good if manager is not None else None),
            )
        for k, v in logs.items():
            history.setdefault(k, []).append(float(v))
        value = float(np.mean(history[monitor][-smoothing:]))
        improved = best is None or (
            value < best - min_delta if mode == "min" else value > best + min_delta
        )
        if improved:
            best, best_epoch, wait = value, epoch + 1, 0
            if restore_best_weights:
                best_weights = model.get_weights()
        else:
            wait += 1
        cb_list.on_epoch_end(epoch, dict(logs))
        stop = patience is not None and wait >= patience
        if stop:
            reason = "early_stopping"
        elif model.stop_training:
            stop, reason = True, "callback"
        if manager is not None and _due(stop or epoch + 1 == epochs):
            _write(epoch, stop)
        if history_csv is not None and chief:
            write_history_csv(os.fspath(history_csv), history)
        if verbose and chief:
            parts = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            log(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.1f}s - {parts}")
        if stop:
            if verbose and chief and reason == "early_stopping":
                log(
                    f"Early stopping: {monitor}{smoothed} did not improve for {patience} "
                    f"epochs (best {best:.4f} at epoch {best_epoch})."
                )
            break
    cb_list.on_train_end()
    return _finish(reason)
