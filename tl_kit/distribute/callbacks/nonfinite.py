"""The stop on a NaN/inf loss: ``NonFiniteLossGuard`` and ``NonFiniteLossError``.

tl_kit's own callback, not ``keras.callbacks.TerminateOnNaN``: Keras's watches the batch
logs (``custom_fit`` reports epochs) and only stops training (or raises a bare
``RuntimeError``); this one puts the model back to the last written checkpoint and raises
``NonFiniteLossError`` carrying the ``FitResult`` up to that checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from tl_kit.distribute.callbacks.checkpoint import EpochCheckpoint
from tl_kit.distribute.result import FitResult


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite.

    ``result`` holds the ``FitResult`` up to the last good epoch; the model holds that
    epoch's weights and its checkpoint is kept.
    """

    def __init__(self, message: str, result: FitResult):
        super().__init__(message)
        self.result = result


class NonFiniteLossGuard(keras.callbacks.Callback):
    """At an epoch's end, before anything records the epoch: if a value in the logs is NaN
    or infinite, reset model and optimizer to the checkpoint state.json points to (without
    ``checkpoint``, nothing is reset) and raise ``NonFiniteLossError`` with
    ``result("non_finite_loss", upto)``: the history up to that checkpoint (all of it
    without ``checkpoint``). ``read_dir``: the checkpoint directory the message names."""

    def __init__(
        self,
        epochs: int,
        result: Callable[[str, int | None], FitResult],
        *,
        checkpoint: EpochCheckpoint | None = None,
        read_dir: str | None = None,
    ):
        super().__init__()
        self.epochs, self.result, self.checkpoint, self.read_dir = epochs, result, checkpoint, read_dir

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if all(math.isfinite(v) for v in logs.values()):
            return
        if self.checkpoint is not None:
            good = upto = self.checkpoint.reset_to_last_good()
        else:
            good, upto = epoch, None  # no checkpoints: not reset
        last = f"epoch {good}" if good > 0 else "no epoch (nothing was saved)"
        raise NonFiniteLossError(
            f"Training stopped: the loss became non-finite in epoch {epoch + 1}/{self.epochs}. "
            f"The model was reset to the last good checkpoint ({last}), which is kept in "
            f"{self.read_dir!r}. Lower the learning rate, check the inputs for NaN/inf, or use "
            f"precision='float32'. Received: loss={logs.get('loss')}",
            self.result("non_finite_loss", upto),
        )
