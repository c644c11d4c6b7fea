"""One progress line per epoch of a ``custom_fit`` stage: ``EpochProgress``.

tl_kit's own callback, not ``keras.callbacks.ProgbarLogger``: Keras's draws a bar (or one
line per epoch at ``verbose=2``) on stdout; this one hands one line per epoch, in the
history's order, to ``log`` (the Learner's train.log and console), e.g.
``Epoch 3/10 - 1.2s - loss: 0.4121 - accuracy: 0.8750 - val_loss: 0.5012 - val_accuracy: 0.8125``.
The time covers the epoch's steps, validation, checkpoint and CSV.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras

from tl_kit.distribute.callbacks.history import EpochHistory


class EpochProgress(keras.callbacks.Callback):
    """Logs ``Epoch <n>/<epochs> - <seconds>s - <metric>: <value> - ...`` after each epoch
    (put it after the callbacks whose time the line should include)."""

    def __init__(self, log: Callable[[str], None], epochs: int, history: EpochHistory):
        super().__init__()
        self.log, self.epochs, self.history = log, epochs, history
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        parts = " - ".join(f"{k}: {v:.4f}" for k, v in self.history.last.items())
        self.log(f"Epoch {epoch + 1}/{self.epochs} - {time.perf_counter() - self._start:.1f}s - {parts}")
