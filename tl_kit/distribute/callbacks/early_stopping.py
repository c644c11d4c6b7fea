"""Early stopping and the best epoch of a ``custom_fit`` stage: ``SmoothedEarlyStopping``.

tl_kit's own callback, not ``keras.callbacks.EarlyStopping``: Keras's has no smoothed
monitor and keeps its state in memory only (a resumed stage continues tl_kit's ``best``,
``best_epoch`` and ``wait`` from state.json, and its best weights from the stage's
``best/weights-N.npz``), and it restores the best weights in its own ``on_train_end``,
before the callbacks after it. Here the best epoch is tracked with or without
``patience``, and the loop calls :meth:`SmoothedEarlyStopping.restore_best` after every
callback's ``on_train_end``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from tl_kit.distribute.callbacks.history import EpochHistory
from tl_kit.errors import UserError

MONITORS = ("loss", "accuracy", "val_loss", "val_accuracy")


def resolve_monitor(monitor: str, has_validation: bool) -> str:
    """``"auto"`` -> ``val_loss`` with validation data, else ``loss``; checks the name."""
    if monitor == "auto":
        monitor = "val_loss" if has_validation else "loss"
    if monitor.startswith("val_") and not has_validation:
        raise UserError(f"`monitor` needs validation data (val_ds). Received: monitor={monitor!r}")
    if monitor not in MONITORS:
        raise UserError(
            "`monitor` must be 'auto', 'loss', 'accuracy', 'val_loss' or 'val_accuracy'. "
            f"Received: monitor={monitor!r}"
        )
    return monitor


def monitor_mode(monitor: str) -> str:
    """``"max"`` for accuracy metrics (``*acc*``), ``"min"`` otherwise."""
    return "max" if "acc" in monitor else "min"


class SmoothedEarlyStopping(keras.callbacks.Callback):
    """Tracks the best epoch and stops after ``patience`` epochs without improvement.

    After each epoch the monitor's value is the mean over the last ``smoothing`` epochs of
    ``history`` (1 = the epoch's own value); it improves on the best so far when it is lower
    by more than ``min_delta`` (higher, for accuracy). An improvement makes the epoch the
    best (1-based ``best_epoch``) and, with ``restore_best_weights``, keeps its weights in
    ``best_weights``; otherwise ``wait`` grows, and ``wait >= patience`` sets ``stopped``
    and ``model.stop_training``. ``patience=None``: never stops. With ``log``, the stop is
    reported in ``on_train_end``.
    """

    def __init__(
        self,
        monitor: str,
        history: EpochHistory,
        *,
        patience: int | None = None,
        min_delta: float = 0.0,
        smoothing: int = 1,
        restore_best_weights: bool = True,
        log: Callable[[str], None] | None = None,
    ):
        super().__init__()
        self.monitor, self.history, self.patience = monitor, history, patience
        self.mode = monitor_mode(monitor)
        self.min_delta, self.smoothing = min_delta, smoothing
        self.restore_best_weights, self.log = restore_best_weights, log
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: list[np.ndarray] | None = None
        self.stopped = False

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = float(np.mean(self.history.history[self.monitor][-self.smoothing:]))
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.stopped = True
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped and self.log is not None:
            smoothed = f" (mean of {self.smoothing} epochs)" if self.smoothing > 1 else ""
            self.log(
                f"Early stopping: {self.monitor}{smoothed} did not improve for {self.patience} "
                f"epochs (best {self.best:.4f} at epoch {self.best_epoch})."
            )

    def state(self) -> dict:
        """The early-stopping part of state.json."""
        return {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                "wait": self.wait}

    def resume(self, state: dict, best_weights: list[np.ndarray] | None) -> None:
        """Continue from a stage's state.json (and the best epoch's weights, if kept)."""
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.best_weights = best_weights

    def restore_best(self, model: keras.Model) -> None:
        """Give ``model`` the best epoch's weights (with ``restore_best_weights``), unless the
        best epoch is the last one (its weights are the model's already)."""
        if (
            self.restore_best_weights
            and self.best_weights is not None
            and self.best_epoch != self.history.epochs_done
        ):
            model.set_weights(self.best_weights)
