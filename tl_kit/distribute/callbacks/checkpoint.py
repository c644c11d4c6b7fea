"""Epoch checkpoints of a ``custom_fit`` stage and resuming from them: ``EpochCheckpoint``.

tl_kit's own callback, not ``keras.callbacks.BackupAndRestore`` or ``ModelCheckpoint``:
those write Keras weight files on a fixed epoch/step frequency; a stage writes a
``tf.train.Checkpoint`` of model and optimizer (``ckpt-N``, saving is collective under
``MultiWorkerMirroredStrategy``), the best epoch's weights and ``state.json`` (the run
directory's format, :mod:`tl_kit.rundir.stage`) on a time policy that every worker agrees
on (``checkpoint_interval``), and resumes from the epoch of the last one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from tl_kit.distribute.callbacks.early_stopping import SmoothedEarlyStopping
from tl_kit.distribute.callbacks.history import EpochHistory
from tl_kit.distribute.strategy import gather_from_workers
from tl_kit.errors import UserError
from tl_kit.rundir.stage import load_best, prune, read_state, save_best, write_state

# checkpoint_interval="auto": at least this many seconds between checkpoints (see custom_fit)
AUTO_CHECKPOINT_SECONDS = 60.0


def check_interval(checkpoint_interval: float | str) -> None:
    """``"auto"`` or a number of seconds >= 0, else a UserError."""
    if checkpoint_interval != "auto" and not (
        isinstance(checkpoint_interval, (int, float)) and checkpoint_interval >= 0
    ):
        raise UserError("`checkpoint_interval` must be 'auto' or a number of seconds >= 0. "
                        f"Received: checkpoint_interval={checkpoint_interval!r}")


def _prune(directory: str, manager: tf.train.CheckpointManager, keep: int, best: str | None) -> None:
    prune(directory, manager, keep, best)


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the stage's checkpoint at epoch ends on the ``checkpoint_interval`` policy.

    ``read_dir`` is the chief's checkpoint directory, ``write_dir`` where THIS process
    writes (``worker_dir(read_dir)``). :meth:`resume` (before training) restores model,
    optimizer, ``history`` and ``best`` from the last written checkpoint; after that,
    ``initial_epoch`` is the epoch it holds. At an epoch's end a checkpoint is written when
    it is the last epoch, training stops (early stopping or ``model.stop_training``), or
    the policy says so (:meth:`due`): ``ckpt-<epoch>`` (the last ``keep`` kept), the best
    epoch's weights when they changed, then ``state.json``; older files are pruned after.
    ``epoch``/``path``: the epoch and checkpoint that state.json points to (for
    :meth:`reset_to_last_good`); ``writes``/``seconds``: the stage's writes, this call's time.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        strategy: tf.distribute.Strategy,
        read_dir: str,
        write_dir: str,
        *,
        epochs: int,
        history: EpochHistory,
        best: SmoothedEarlyStopping,
        interval: float | str = "auto",
        keep: int = 1,
        log: Callable[[str], None] | None = None,
    ):
        super().__init__()
        self.set_model(model)
        self.strategy, self.read_dir, self.write_dir = strategy, read_dir, write_dir
        self.epochs, self.history, self.best = epochs, history, best
        self.interval, self.keep, self.log = interval, keep, log
        with strategy.scope():
            self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        # max_to_keep=None: old checkpoints are deleted by prune once state.json points to the
        # new one (the manager would delete them before state.json is rewritten).
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_dir, max_to_keep=None)
        self.initial_epoch, self.epoch, self.path = 0, 0, None
        self.writes, self.seconds = 0, 0.0
        self._last: float | None = None  # seconds the last write took
        self._since = time.perf_counter()
        self._saved_best: str | None = None

    def resume(self) -> dict | None:
        """Restore from the stage's state.json (the chief's, else this worker's own); returns it."""
        state, state_dir = read_state(self.read_dir), self.read_dir
        if state is None and self.write_dir != self.read_dir:
            state, state_dir = read_state(self.write_dir), self.write_dir
        if state is not None:
            self._restore(state, state_dir)
        self._since = time.perf_counter()
        return state

    def _restore(self, state: dict, state_dir: str) -> None:
        self.initial_epoch = int(state["epochs_done"])
        self.history.history = {k: list(v) for k, v in state["history"].items()}
        keep_best = self.best.restore_best_weights
        weights = None
        if keep_best and state.get("best_file"):
            weights = load_best(os.path.join(state_dir, state["best_file"]))
        self.checkpoint.restore(os.path.join(state_dir, state["checkpoint"])).expect_partial()
        if keep_best and weights is None and state.get("best_epoch") == self.initial_epoch:
            weights = self.model.get_weights()
        self.best.resume(state, weights)
        if self.log is not None:
            self.log(f"Resuming at epoch {self.initial_epoch + 1}/{self.epochs} from {state_dir}")
        self._saved_best = state.get("best_file")
        self.writes = int(state.get("checkpoint_writes", 0))
        self.epoch, self.path = self.initial_epoch, os.path.join(state_dir, state["checkpoint"])

    def due(self, final: bool) -> bool:
        """The checkpoint policy (see ``checkpoint_interval``), agreed by every worker."""
        if final:
            return True
        since = time.perf_counter() - self._since
        if self.interval == "auto":
            want = self._last is None or since >= max(AUTO_CHECKPOINT_SECONDS, 9 * self._last)
        else:
            want = since >= float(self.interval)
        return max(gather_from_workers(self.strategy, int(want))) > 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stop = bool(self.model.stop_training or self.best.stopped)
        if self.due(stop or epoch + 1 == self.epochs):
            self.write(epoch, stop)

    def _save_best_weights(self) -> str | None:
        """The best epoch's weights file (relative to ``write_dir``), written if new."""
        best = self.best
        if not (best.restore_best_weights and best.best_weights is not None
                and best.best_epoch is not None):
            return None
        name = os.path.join("best", f"weights-{best.best_epoch}.npz")
        if name != self._saved_best:
            save_best(os.path.join(self.write_dir, name), best.best_weights)
        return name

    def write(self, epoch: int, stop: bool) -> None:
        """Checkpoint after ``epoch`` (0-based); ``stop``: training ends here (state.json's
        ``stopped_early``)."""
        t0 = time.perf_counter()
        path = self.manager.save(checkpoint_number=epoch + 1)
        name = self._save_best_weights()
        self.writes += 1
        es = self.best.state()
        write_state(self.write_dir, {
            "epochs_done": epoch + 1,
            "checkpoint": os.path.basename(path),
            "history": self.history.history,
            "monitor": es["monitor"],
            "best": es["best"],
            "best_epoch": es["best_epoch"],
            "best_file": name,
            "wait": es["wait"],
            "stopped_early": bool(stop),
            "replicas": self.strategy.num_replicas_in_sync,
            "checkpoint_writes": self.writes,
        })
        self._saved_best = name
        _prune(self.write_dir, self.manager, self.keep, name)
        self._last = time.perf_counter() - t0
        self.seconds += self._last
        self._since = time.perf_counter()
        self.epoch, self.path = epoch + 1, path

    def reset_to_last_good(self) -> int:
        """Restore model and optimizer from the checkpoint state.json points to (if any);
        returns its epoch (0: nothing was written)."""
        if self.path is not None:
            self.checkpoint.restore(self.path).expect_partial()
        return self.epoch
