"""The run directory of a fit: :class:`RunDir` alone owns its on-disk format.

What a run directory holds (written by :meth:`tl_kit.train.Learner.fit`)::

    config.toml         the resolved settings: the run's identity (config_differences)
    run.json            {"status": "running" | "complete" | "failed", "time": ..., ...}
    history.csv         stage, epoch, metrics: one row per finished epoch of every stage
    train.log           the learner's log lines
    metrics.json        training's figures; evaluation merges its report beside them
    checkpoints/        <n>_<stage>.weights.h5 (a finished stage) and <n>_<stage>/
                        (its state.json, per-epoch checkpoints: tl_kit.rundir.stage)
    plots/              history.png (training curves), evaluation and calibration plots
    logs/               TensorBoard (or scalars.jsonl)
    model.keras, class_names.json   the final model (tl_kit.predict.save_for_inference)
    manifest.json, hygiene.*        the data split and scan (tl_kit.data)

Under ``MultiWorkerMirroredStrategy`` only the chief writes ``path``; every other worker
writes the same files to its own folder (``local(path)``, :func:`tl_kit.distribute.worker_dir`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tl_kit._io import merge_json, write_json_atomic
from tl_kit.errors import UserError
from tl_kit.rundir.stage import STATE_FILE, probe_writable, read_state, write_rows_csv
from tl_kit.rundir.undo import PreTrainingUndo

__all__ = ["RunDir", "config_differences", "merge_json", "RUN_STATE", "RUN_ARTEFACTS"]

RUN_STATE = "run.json"  # {"status": "running" | "complete", ...}: what a rerun finds
# What fit writes into a run directory (removed by overwrite=True; nothing else is touched).
RUN_ARTEFACTS = ("config.toml", "history.csv", "metrics.json", "model.keras", "train.log",
                 RUN_STATE, "manifest.json", "hygiene.csv", "hygiene.json", "checkpoints", "logs",
                 "class_names.json", "confusion_matrix.csv", "plots", "hygiene_index", "evaluations")
# Settings of config.toml that may change between a run and its resume (not its identity).
VOLATILE = ("run.regime_reason", "run.strategy", "run.replicas", "run.precision", "run.jit_compile",
            "recipe.calibrate")  # calibration runs after training: not part of a run's identity


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list) and any(isinstance(v, dict) for v in d):
        out = {}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: d}


def config_differences(old: dict, new: dict) -> list[str]:
    """``["recipe.stages[0].epochs: 3 -> 5", ...]`` for the settings that identify a run."""
    a, b = _flatten(old), _flatten(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in VOLATILE:
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


class RunDir:
    """One run directory: ``path`` (the run's name, the chief's folder) and ``out`` (where
    this process writes: ``local(path)``, ``path`` itself on the chief).

    Args:
        path: the run directory.
        local: maps a path under ``path`` to this process's copy of it (default: itself).
        log: where the directory's own messages go (a resume, an overwrite).
    """

    def __init__(self, path: str | os.PathLike, local: Callable[[Path], Any] | None = None,
                 log: Callable[[str], None] | None = None):
        self.path = Path(path)
        self._local = local or (lambda p: p)
        self.out = Path(self._local(self.path))
        self.log = log or (lambda msg: None)
        self.undo: PreTrainingUndo | None = None  # while fit prepares (see `preparing`)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # === Before training ===

    def check_writable(self) -> None:
        """Create the directory and write a probe file, or fail naming it (before training)."""
        try:
            probe_writable(self.out, size=65536, sync=True)
        except OSError as exc:
            raise UserError(
                f"Cannot write the run directory {str(self.out)!r} ({exc.strerror or exc}); "
                f"choose a writable location with free space. Received: run_dir={str(self.out)!r}"
            ) from None

    def check_free_space(self, need: int) -> None:
        """Fail when fewer than ``need`` bytes are free where the directory is."""
        free = shutil.disk_usage(self.out).free
        if free < need:
            raise UserError(
                f"Not enough free space in {str(self.path)!r} for the checkpoints: "
                f"{free / 2**20:.0f} MiB free, about {need / 2**20:.0f} MiB needed. Free some "
                f"space or choose another run_dir. Received: run_dir={str(self.path)!r}")

    @contextlib.contextmanager
    def preparing(self) -> Iterator[RunDir]:
        """What fit does before its first epoch: on any error the directory is put back as
        it was (or removed, if it did not exist); on success the stash is dropped."""
        undo = self.undo = PreTrainingUndo(self.out)
        try:
            yield self
        except BaseException:
            undo.restore()
            raise
        finally:
            self.undo = None
        undo.commit()

    def refuse_complete(self, overwrite: bool) -> None:
        """A complete run is an error unless ``overwrite`` (then it is cleared)."""
        if self.status().get("status") != "complete":
            return
        if not overwrite:
            held = ", ".join(sorted(p.name for p in self.out.iterdir() if p.name in RUN_ARTEFACTS))
            raise UserError(
                f"The run directory {str(self.path)!r} already holds a complete run ({held}). "
                "Choose another run_dir, or pass overwrite=True to "
                f"replace it. Received: run_dir={str(self.path)!r}")
        self.clear()

    def resumes(self, config: dict, overwrite: bool) -> bool:
        """True when an unfinished run with the same settings (``config``) is resumed; a run
        with other settings is an error naming each difference, or cleared with ``overwrite``."""
        old = self.read_config()
        if old is None:
            return False
        diffs = config_differences(old, config)
        if not diffs:
            self.log(f"resuming the unfinished run in {self.path} (same settings)")
            return True
        if not overwrite:
            shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
            raise UserError(
                f"The run directory {str(self.path)!r} holds an unfinished run with different "
                f"settings ({shown}). Rerun with the same settings to resume it, choose another "
                f"run_dir, or pass overwrite=True to replace it. "
                f"Received: run_dir={str(self.path)!r}")
        self.clear()
        return False

    def clear(self) -> list[str]:
        """Remove what fit wrote (:data:`RUN_ARTEFACTS`; nothing else). While preparing, the
        entries are set aside until training starts (an error puts them back)."""
        removed = []
        for name in RUN_ARTEFACTS:
            p = self.out / name
            if not p.exists():
                continue
            if self.undo is not None:
                self.undo.set_aside(p)
            elif p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(name)
        self.log(f"overwrite=True: removed the previous run's {', '.join(removed)} from {self.path}")
        return removed

    # === run.json, config.toml, train.log, history.csv, metrics.json ===

    def status(self) -> dict:
        """``run.json`` (``{}`` for no run; a run from before run.json existed that has its
        model and config reads as complete; an unreadable file as running)."""
        path = self.out / RUN_STATE
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                return {"status": "running"}
        if (self.out / "model.keras").is_file() and (self.out / "config.toml").is_file():
            return {"status": "complete"}
        return {}

    def write_status(self, status: str, **extra: Any) -> None:
        write_json_atomic(self.out / RUN_STATE, {
            "status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})

    def read_config(self) -> dict | None:
        """``config.toml`` (None when there is none; ``{}`` when it cannot be read)."""
        path = self.out / "config.toml"
        if not path.is_file():
            return None
        try:
            return tomllib.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def write_config(self, config: dict) -> None:
        import tomli_w

        (self.out / "config.toml").write_text(tomli_w.dumps(config))

    def append_log(self, *lines: str) -> None:
        """Lines at the end of ``train.log`` (only once the directory exists)."""
        if self.out.exists():
            with open(self.out / "train.log", "a") as f:
                f.writelines(line + "\n" for line in lines)

    @property
    def history_csv(self) -> Path:
        return self.out / "history.csv"

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """``history.csv``: ``rows`` (``{"stage", "epoch", metric: value, ...}``) in order."""
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        write_rows_csv(self.history_csv, rows, keys or ["stage", "epoch"])

    def merge_metrics(self, metrics: dict) -> None:
        """Merge ``metrics`` into ``metrics.json`` (keeping the keys an evaluation wrote)."""
        merge_json(self.out / "metrics.json", metrics)

    @property
    def plots(self) -> Path:
        return self.out / "plots"

    def plot_history(self) -> str | None:
        """``plots/history.png`` from ``history.csv``; returns why it failed (a plot must
        never lose a trained run), None when drawn or when there is no history."""
        from tl_kit.evaluate import plot_history

        if not self.history_csv.is_file():
            return None
        try:
            plot_history(self.history_csv, self.plots / "history.png")
        except Exception as exc:  # noqa: BLE001
            return str(exc)
        return None

    def size_bytes(self) -> int:
        """Bytes in this process's run directory (files only)."""
        return sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())

    # === Stages (checkpoints/) ===

    def stage_dir(self, tag: str) -> Path:
        """The chief's checkpoint folder of a stage (custom_fit maps it for other workers)."""
        return self.path / "checkpoints" / tag

    def stage_weights(self, tag: str) -> Path:
        """``checkpoints/<tag>.weights.h5``: written when the stage finished (this process's)."""
        return self.out / "checkpoints" / f"{tag}.weights.h5"

    def stage_state(self, tag: str) -> dict | None:
        """The stage's state (tl_kit.rundir.stage), the chief's or this worker's copy."""
        for d in (self.stage_dir(tag), Path(self._local(self.stage_dir(tag)))):
            try:
                state = read_state(str(d))
            except (OSError, ValueError):
                return None
            if state is not None:
                return state
        return None

    def remove_stage(self, tag: str) -> None:
        """A fresh run never resumes from checkpoints another run left behind."""
        for d in {self.out / "checkpoints" / tag, Path(self._local(self.stage_dir(tag)))}:
            if d.is_dir():
                shutil.rmtree(d)
        self.stage_weights(tag).unlink(missing_ok=True)

    def save_stage_weights(self, model, tag: str) -> None:
        """The finished stage's model weights (no optimizer slots); its folder then keeps
        only its state file (the per-epoch checkpoints and best weights are deleted)."""
        target = self.stage_weights(tag)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{tag}.tmp.weights.h5")
        optimizer = getattr(model, "optimizer", None)
        model.optimizer = None  # Keras writes a tracked optimizer's slots too (3x Adam)
        try:
            model.save_weights(tmp)
        finally:
            model.optimizer = optimizer
        os.replace(tmp, target)
        stage_dir = self.out / "checkpoints" / tag
        if stage_dir.is_dir():
            for p in stage_dir.iterdir():
                if p.name == STATE_FILE:
                    continue
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
