"""The distributed-safe training loop: ``custom_fit``.

``custom_fit`` checks its arguments, builds the per-replica steps and the epoch runners
(:mod:`tl_kit.distribute.steps`) and tl_kit's callbacks (:mod:`tl_kit.distribute.callbacks`,
assembled by ``FitCallbacks``), resumes from the stage's last checkpoint, then drives a
``keras.callbacks.CallbackList`` through the epochs. The package docstring of
:mod:`tl_kit.distribute` says why tl_kit has its own loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf

from tl_kit.distribute.callbacks import (
    EpochCheckpoint,
    EpochHistory,
    EpochProgress,
    HistoryCSV,
    NonFiniteLossGuard,
    SmoothedEarlyStopping,
    check_interval,
    resolve_monitor,
)
from tl_kit.distribute.result import FitResult
from tl_kit.distribute.steps import EpochRunner, ReplicaSteps, per_example_loss, prepare_optimizer
from tl_kit.distribute.strategy import distribute_dataset, is_chief, worker_dir
from tl_kit.errors import UserError
from tl_kit.rundir.stage import check_writable


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise UserError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def _directories(
    checkpoint_dir: str | os.PathLike | None,
    history_csv: str | os.PathLike | None,
    strategy: tf.distribute.Strategy,
    chief: bool,
) -> tuple[str | None, str | None]:
    """``(read_dir, write_dir)`` of the checkpoints, each checked writable before training
    (as is the history CSV's folder, on the chief)."""
    read_dir = os.fspath(checkpoint_dir) if checkpoint_dir is not None else None
    write_dir = worker_dir(read_dir, strategy) if read_dir is not None else None
    if write_dir is not None:
        check_writable(write_dir)
    if history_csv is not None and chief:
        check_writable(os.path.dirname(os.path.abspath(os.fspath(history_csv))))
    return read_dir, write_dir


def _runner(
    strategy: tf.distribute.Strategy,
    replica_fn: Callable,
    dataset: tf.data.Dataset | None,
    steps: int | None,
    steps_per_execution: int,
    sharding: str,
) -> EpochRunner | None:
    """An ``EpochRunner`` of ``replica_fn`` over ``dataset`` distributed (None without one)."""
    if dataset is None:
        return None
    return EpochRunner(strategy, replica_fn, distribute_dataset(strategy, dataset, sharding=sharding),
                       steps=steps, steps_per_execution=steps_per_execution)


@dataclass
class FitCallbacks:
    """tl_kit's callbacks of one ``custom_fit`` call and the ``FitResult`` they add up to.

    ``around(user_callbacks)`` is the order they run in: the non-finite guard, the history
    and early stopping before the user's callbacks (which see the epoch recorded), then the
    checkpoint (after any ``model.stop_training``), the history CSV and the progress line.
    """

    model: keras.Model
    history: EpochHistory
    best: SmoothedEarlyStopping
    checkpoint: EpochCheckpoint | None
    epochs: int
    replicas: int
    tail: list[keras.callbacks.Callback] = field(default_factory=list)
    guard: NonFiniteLossGuard | None = None

    @classmethod
    def create(
        cls,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy,
        read_dir: str | None,
        write_dir: str | None,
        *,
        epochs: int,
        monitor: str,
        patience: int | None = None,
        min_delta: float = 0.0,
        smoothing: int = 1,
        restore_best_weights: bool = True,
        checkpoint_interval: float | str = "auto",
        keep_checkpoints: int = 1,
        history_csv: str | os.PathLike | None = None,
        log: Callable[[str], None] | None = None,
    ) -> FitCallbacks:
        """The callbacks of a call; ``write_dir=None``: no checkpoints, ``history_csv=None``:
        no CSV, ``log=None``: no progress or resume lines (non-chief workers pass None)."""
        history = EpochHistory()
        best = SmoothedEarlyStopping(monitor, history, patience=patience, min_delta=min_delta,
                                     smoothing=smoothing, restore_best_weights=restore_best_weights,
                                     log=log)
        checkpoint = None
        if write_dir is not None:
            checkpoint = EpochCheckpoint(model, optimizer, strategy, read_dir, write_dir,
                                         epochs=epochs, history=history, best=best,
                                         interval=checkpoint_interval, keep=keep_checkpoints, log=log)
        tail: list[keras.callbacks.Callback] = []
        if history_csv is not None:
            tail.append(HistoryCSV(history_csv, history))
        if log is not None:
            tail.append(EpochProgress(log, epochs, history))
        fit = cls(model, history, best, checkpoint, epochs, strategy.num_replicas_in_sync, tail)
        fit.guard = NonFiniteLossGuard(epochs, fit.result, checkpoint=checkpoint, read_dir=read_dir)
        return fit

    @property
    def initial_epoch(self) -> int:
        return self.checkpoint.initial_epoch if self.checkpoint is not None else 0

    def around(self, callbacks: Iterable[keras.callbacks.Callback] | None) -> list:
        """tl_kit's callbacks and the user's, in the order they run."""
        after = [self.checkpoint] if self.checkpoint is not None else []
        return [self.guard, self.history, self.best, *(callbacks or []), *after, *self.tail]

    def resume(self) -> dict | None:
        """The stage's state.json, model, optimizer and history restored (None: a fresh start)."""
        return self.checkpoint.resume() if self.checkpoint is not None else None

    def result(self, reason: str, upto: int | None = None) -> FitResult:
        """The ``FitResult``; ``upto``: keep the first ``upto`` epochs of the history."""
        if upto is not None:  # the history of the checkpoint the model was reset to
            self.history.truncate(upto)
        ck = self.checkpoint
        return FitResult(
            history=self.history.history,
            epoch=list(range(self.history.epochs_done)),
            initial_epoch=self.initial_epoch,
            best_epoch=self.best.best_epoch,
            monitor=self.best.monitor,
            stop_reason=reason,
            checkpoint_dir=ck.write_dir if ck is not None else None,
            params={"epochs": self.epochs, "replicas": self.replicas},
            checkpoint_writes=ck.writes if ck is not None else 0,
            checkpoint_seconds=ck.seconds if ck is not None else 0.0,
        )

    def finish(self, reason: str) -> FitResult:
        """Restore the best weights (if kept) and return the ``FitResult``."""
        self.best.restore_best(self.model)
        return self.result(reason)


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
            They run after tl_kit's history and early stopping and before its checkpoint,
            history CSV and progress line (:mod:`tl_kit.distribute.callbacks`).
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
    for name, value in (("epochs", epochs), ("steps_per_execution", steps_per_execution),
                        ("keep_checkpoints", keep_checkpoints), ("smoothing", smoothing)):
        _positive_int(name, value)
    check_interval(checkpoint_interval)
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    chief = is_chief(strategy)
    loss = per_example_loss(loss_fn)
    monitor = resolve_monitor(monitor, val_ds is not None)
    read_dir, write_dir = _directories(checkpoint_dir, history_csv, strategy, chief)
    optimizer = prepare_optimizer(model, optimizer, strategy)
    replica = ReplicaSteps(model, optimizer, loss, strategy, class_weight=class_weight,
                           jit_compile=jit_compile)
    train = _runner(strategy, replica.train, train_ds, steps_per_epoch, steps_per_execution, sharding)
    val = _runner(strategy, replica.evaluate, val_ds, validation_steps, steps_per_execution, sharding)
    ours = FitCallbacks.create(
        model, optimizer, strategy, read_dir, write_dir, epochs=epochs, monitor=monitor,
        patience=patience, min_delta=min_delta, smoothing=smoothing,
        restore_best_weights=restore_best_weights, checkpoint_interval=checkpoint_interval,
        keep_checkpoints=keep_checkpoints, history_csv=history_csv if chief else None,
        log=log if verbose and chief else None)
    state = ours.resume()
    if state is not None and (state.get("stopped_early") or ours.initial_epoch >= epochs):
        return ours.finish("already_finished")

    cb_list = keras.callbacks.CallbackList(ours.around(callbacks), add_history=False,
                                           add_progbar=False, model=model, epochs=epochs, verbose=0)
    model.stop_training = False
    cb_list.on_train_begin()
    reason = "completed"
    for epoch in range(ours.initial_epoch, epochs):
        cb_list.on_epoch_begin(epoch)
        logs = dict(zip(("loss", "accuracy"), train.run(), strict=True))
        if after_train_epoch is not None:
            after_train_epoch(epoch)
        if val is not None:
            logs.update(zip(("val_loss", "val_accuracy"), val.run(), strict=True))
        cb_list.on_epoch_end(epoch, logs)  # guard, history, early stopping, yours, checkpoint, ...
        if ours.best.stopped or model.stop_training:
            reason = "early_stopping" if ours.best.stopped else "callback"
            break
    cb_list.on_train_end()
    return ours.finish(reason)
