"""The epoch history of a ``custom_fit`` stage, in memory (``EpochHistory``) and as a CSV
(``HistoryCSV``).

Both are tl_kit's own callbacks. ``keras.callbacks.History`` records the logs in the order
``keras.callbacks.CallbackList`` hands them over (keys sorted: accuracy, loss, ...), and
starts empty; the stage's history keeps ``loss, accuracy, val_loss, val_accuracy`` order
(state.json, the CSV columns and the progress line read it) and continues the history of
the epochs finished before a resume. ``keras.callbacks.CSVLogger`` appends rows numbered
from 0 with full-precision values; the stage's CSV is rewritten whole after each epoch
(epochs numbered from 1, resumed epochs included, ``%.6g`` values), see
:func:`tl_kit.rundir.stage.write_history_csv`.
"""

from __future__ import annotations

import os

import keras

from tl_kit.rundir.stage import write_history_csv

# The order of an epoch's values in the history (other keys follow, sorted).
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def _order(key: str) -> tuple[int, str]:
    return (METRICS.index(key), "") if key in METRICS else (len(METRICS), key)


class EpochHistory(keras.callbacks.Callback):
    """``history``: one value per finished epoch for each metric; ``last``: the latest epoch's
    values. Seeded with the resumed epochs' history (``history`` may be reassigned)."""

    def __init__(self, history: dict[str, list[float]] | None = None):
        super().__init__()
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.last: dict[str, float] = {}

    @property
    def epochs_done(self) -> int:
        return len(next(iter(self.history.values()), []))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.last = {k: float(logs[k]) for k in sorted(logs, key=_order)}
        for k, v in self.last.items():
            self.history.setdefault(k, []).append(v)

    def truncate(self, epochs: int) -> None:
        """Keep the first ``epochs`` epochs (the history of the checkpoint the model went back to)."""
        for values in self.history.values():
            del values[epochs:]


class HistoryCSV(keras.callbacks.Callback):
    """Rewrites ``path`` with the whole ``history`` after every epoch (the chief's only)."""

    def __init__(self, path: str | os.PathLike, history: EpochHistory):
        super().__init__()
        self.path, self.history = os.fspath(path), history

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        write_history_csv(self.path, self.history.history)
