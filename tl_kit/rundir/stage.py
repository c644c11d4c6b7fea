"""The files of one training stage inside a run directory (``checkpoints/<n>_<stage>/``).

One job: the on-disk format that :func:`tl_kit.distribute.custom_fit` writes and resumes
from, and that :class:`tl_kit.rundir.RunDir` reads: ``state.json`` (epochs done, the
checkpoint's name, history, early-stopping state, best-weights file), the model +
optimizer checkpoints (``ckpt-N.*``, a ``tf.train.CheckpointManager``), the best epoch's
weights (``best/weights-N.npz``) and the stage's history CSV.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import tensorflow as tf

from tl_kit._io import write_json_atomic

STATE_FILE = "state.json"


def read_state(directory: str | None) -> dict | None:
    if not directory:
        return None
    path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def save_best(path: str, weights: list[np.ndarray]) -> None:
    """The best epoch's weights (model only) as an .npz, written atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, *weights)
    os.replace(tmp, path)


def load_best(path: str) -> list[np.ndarray] | None:
    if not os.path.isfile(path):
        return None
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def prune(directory: str, manager: tf.train.CheckpointManager, keep: int, best: str | None) -> None:
    """Delete checkpoints older than the last ``keep`` and every best-weights file but ``best``
    (called after state.json points to the new ones)."""
    for prefix in manager.checkpoints[:-keep]:
        for name in os.listdir(os.path.dirname(prefix) or "."):
            if name.startswith(os.path.basename(prefix) + "."):
                os.remove(os.path.join(os.path.dirname(prefix), name))
    best_dir = os.path.join(directory, "best")
    if os.path.isdir(best_dir):
        for name in os.listdir(best_dir):
            if best is None or name != os.path.basename(best):
                os.remove(os.path.join(best_dir, name))


def write_rows_csv(path: str | os.PathLike, rows: list[dict], fieldnames: list[str]) -> None:
    """``rows`` (dicts) as a CSV with ``fieldnames`` as its header, written atomically. The one
    CSV writer of a run directory (a stage's history here, the run's ``history.csv``)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def write_history_csv(path: str, history: dict[str, list[float]]) -> None:
    """A stage's history (``{metric: [value per epoch]}``): ``epoch`` then one column per metric."""
    keys = list(history)
    rows = [{"epoch": i + 1, **{k: f"{history[k][i]:.6g}" for k in keys}}
            for i in range(len(history[keys[0]]) if keys else 0)]
    write_rows_csv(path, rows, ["epoch", *keys])


def probe_writable(directory: str | os.PathLike, size: int = 4096, sync: bool = False) -> None:
    """Create ``directory`` and write (``sync``: and fsync) a ``size``-byte probe file there,
    then remove it; the OSError of a location that cannot be written propagates. The one
    writable check of a run directory (:func:`check_writable`, ``RunDir.check_writable``)."""
    os.makedirs(directory, exist_ok=True)
    probe = os.path.join(directory, ".tl_kit_write_test")
    with open(probe, "wb") as fh:
        fh.write(b"0" * size)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.remove(probe)


def check_writable(directory: str) -> None:
    try:
        probe_writable(directory)
    except OSError as exc:
        raise OSError(
            f"Cannot write checkpoints to {directory!r} ({exc.strerror or exc}); choose a "
            f"writable location with free space. Received: checkpoint_dir={directory!r}"
        ) from None


def write_state(directory: str, state: dict) -> None:
    """``state.json`` of a stage, written atomically (after the checkpoint it names)."""
    write_json_atomic(os.path.join(directory, STATE_FILE), state)
