"""What a stage does around its epochs: the run's history, TensorBoard, BatchNorm handling.

* :class:`RunHistory` holds every finished epoch of the run (``Learner.history``) and the
  running stage's epochs; its callback rewrites ``history.csv`` after every epoch (so a
  killed run leaves its epochs on disk).
* :class:`FastBatchNormMomentum` (a Keras callback, at the start of training) lowers the
  BatchNorm moving averages' momentum when a network trains from random weights.
* :class:`PreciseBatchNorm` recalibrates the BatchNorm statistics after each epoch's
  training steps: it is :func:`tl_kit.distribute.custom_fit`'s ``after_train_epoch`` hook,
  not a Keras ``on_epoch_end``, because it must run before the epoch's validation.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

__all__ = ["RunHistory", "EpochHistory", "JsonLinesLogger", "FastBatchNormMomentum", "PreciseBatchNorm",
           "history_rows", "tensorboard_callback", "BN_SCRATCH_MOMENTUM", "BN_RECALIBRATION_BATCHES"]

BN_SCRATCH_MOMENTUM = 0.9  # BatchNorm momentum when training from random weights
BN_RECALIBRATION_BATCHES = 20  # training batches averaged by precise BatchNorm each epoch


def history_rows(hist) -> list[dict[str, float]]:
    """``{metric: [per epoch]}`` (or a Keras History) -> one dict per epoch."""
    h = hist if isinstance(hist, dict) else (getattr(hist, "history", {}) or {})
    n = max((len(v) for v in h.values()), default=0)
    return [{k: float(v[i]) for k, v in h.items() if i < len(v)} for i in range(n)]


class RunHistory:
    """The rows of ``history.csv``: ``rows`` (finished stages; the list is the learner's
    ``history``) then the running stage's epochs, written through ``rundir``."""

    def __init__(self, rundir, rows: list[dict[str, Any]]):
        self.rundir, self.rows = rundir, rows
        self.stage = ""
        self.stage_rows: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.rows or self.stage_rows)

    def begin(self, stage: str, previous: dict | None = None) -> None:
        """A stage starts (``previous``: the history of its epochs done before a resume)."""
        self.stage = stage
        self.stage_rows = [{"stage": stage, "epoch": e + 1, **row}
                           for e, row in enumerate(history_rows(previous or {}))]

    def epoch_end(self, epoch: int, logs: dict | None) -> None:
        rows = [r for r in self.stage_rows if r["epoch"] != epoch + 1]
        rows.append({"stage": self.stage, "epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        self.stage_rows = rows
        self.write()

    def keep_epochs(self, n: int) -> None:
        """Drop the running stage's epochs after the ``n``-th (a stop at a bad epoch)."""
        self.stage_rows = [r for r in self.stage_rows if r["epoch"] <= n]
        self.write()

    def end(self, hist) -> None:
        """The stage finished with history ``hist``: its epochs join the run's."""
        for epoch, row in enumerate(history_rows(hist)):
            self.rows.append({"stage": self.stage, "epoch": epoch + 1, **row})
        self.stage_rows = []
        self.write()

    def write(self) -> None:
        self.rundir.write_history(self.rows + self.stage_rows)

    def callback(self) -> EpochHistory:
        return EpochHistory(self)


class EpochHistory(keras.callbacks.Callback):
    """Rewrites history.csv after every epoch (so a killed run leaves its epochs on disk)."""

    def __init__(self, history: RunHistory):
        super().__init__()
        self.run_history = history

    def on_epoch_end(self, epoch, logs=None):
        self.run_history.epoch_end(epoch, logs)


class JsonLinesLogger(keras.callbacks.Callback):
    """Epoch metrics as JSON lines (the TensorBoard fallback)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}) + "\n")


def tensorboard_callback(log_dir: Path) -> keras.callbacks.Callback:
    """TensorBoard logs in ``log_dir``; the same scalars as JSON lines without TensorBoard."""
    if importlib.util.find_spec("tensorboard") is not None:
        return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0)
    return JsonLinesLogger(log_dir / "scalars.jsonl")


class FastBatchNormMomentum(keras.callbacks.Callback):
    """Training from random weights with BatchNorm in training mode: lower the moving
    averages' momentum (Keras Applications use 0.99-0.999) so the inference-mode
    statistics catch up with the batch statistics within a short run; otherwise the
    evaluated model (inference mode) lags far behind the trained one."""

    def __init__(self, layers: list, momentum: float = BN_SCRATCH_MOMENTUM,
                 log: Callable[[str], None] | None = None):
        super().__init__()
        self.layers, self.momentum, self.log = layers, momentum, log

    def on_train_begin(self, logs=None):
        changed = 0
        for layer in self.layers:
            if layer.momentum > self.momentum:
                layer.momentum = self.momentum
                changed += 1
        if changed and self.log is not None:
            self.log(f"weights=None: BatchNorm moving-average momentum set to {self.momentum} in "
                     f"{changed} layers (random initial statistics must catch up fast)")


class PreciseBatchNorm:
    """Precise BatchNorm (Wu & Johnson, 2021, "Rethinking 'Batch' in BatchNorm"): set the
    trainable BatchNorm layers' moving statistics to the average batch statistics of up to
    ``max_batches`` un-augmented training batches under the current weights.

    Called (``custom_fit``'s ``after_train_epoch``) after each epoch's training steps when
    BatchNorm trains, so validation, checkpoints and the final model see statistics of the
    network as it is now rather than a moving average lagging behind fast-changing weights
    (with few steps per epoch the lag alone leaves validation at chance). The learner uses
    it on single-replica runs only: under several replicas the moving averages of the
    training steps are kept.
    """

    def __init__(self, model: keras.Model, layers: list, data, batch: int,
                 max_batches: int = BN_RECALIBRATION_BATCHES):
        self.model, self.layers, self.data = model, layers, data
        self.batch, self.max_batches = batch, max_batches

    def __call__(self, epoch: int) -> None:
        self.recalibrate()

    def recalibrate(self) -> None:
        bns = [layer for layer in self.layers if layer.trainable]
        if not bns:
            return
        saved = [layer.momentum for layer in bns]
        try:
            ds = self.data.dataset("train", batch_size=self.batch, training=False, shuffle=False)
            for i, (x, _) in enumerate(ds.take(self.max_batches), start=1):
                for layer in bns:
                    layer.momentum = (i - 1) / i  # cumulative mean of the batch statistics
                self.model(x, training=True)
        finally:
            for layer, momentum in zip(bns, saved, strict=True):
                layer.momentum = momentum
