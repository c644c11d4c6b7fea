"""The evaluation report on disk: ``metrics.json`` (merged with what training wrote),
``confusion_matrix.csv``, ``plots/*.png`` and the numbered report folders of
``tl-kit evaluate``."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tl_kit._io import merge_json
from tl_kit.evaluate import plots

__all__ = ["write_report", "merge_json", "write_confusion_csv", "new_report_dir"]


def write_report(out_dir: str | os.PathLike, metrics: dict, worst, *, model=None,
                 worst_heatmaps: bool = True) -> dict:
    """Write the files of an evaluation report into ``out_dir`` and list them in
    ``metrics["files"]``: ``confusion_matrix.csv``, ``plots/confusion_matrix.png``,
    ``plots/worst_predictions.png`` (when ``worst``, a
    :class:`~tl_kit.evaluate.metrics.WorstPredictions`, holds any; with Grad-CAM overlays
    of ``model`` when ``worst_heatmaps``) and ``metrics.json`` (merged into an existing
    one). Returns ``metrics["files"]``."""
    out = Path(out_dir)
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    class_names = metrics["class_names"]
    matrix = np.asarray(metrics["confusion_matrix"])
    files = metrics["files"]
    files["confusion_matrix_csv"] = str(write_confusion_csv(matrix, class_names, out))
    files["confusion_matrix_png"] = str(
        plots.plot_confusion_matrix(matrix, class_names, plot_dir / "confusion_matrix.png")
    )
    if len(worst):
        heatmaps = plots.worst_heatmaps(model, worst.images) if worst_heatmaps else None
        files["worst_predictions_png"] = str(
            plots.plot_worst(worst.images, worst.labels, worst.probs, class_names,
                             plot_dir / "worst_predictions.png", heatmaps=heatmaps)
        )
    files["metrics_json"] = str(out / "metrics.json")
    merge_json(out / "metrics.json", metrics)
    return files


def write_confusion_csv(matrix: np.ndarray, class_names: Sequence[str], out: str | os.PathLike) -> Path:
    """``out/confusion_matrix.csv``: a header of predicted classes, one row per true class."""
    path = Path(out) / "confusion_matrix.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\predicted", *class_names])
        for name, row in zip(class_names, matrix, strict=True):
            writer.writerow([name, *(int(v) for v in row)])
    return path


def _report_name(source, split: str) -> str:
    """``<data-name>-<split>`` for the report folder (file-system safe)."""
    raw = str(source).rstrip("/\\") if source is not None else "data"
    name = Path(raw).name or raw
    if raw.startswith("tfds:"):
        name = raw[5:].replace("/", "_")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "data"
    return f"{safe}-{split}"


def new_report_dir(base: str | os.PathLike, source, split: str) -> Path:
    """A new folder ``base/<data-name>-<split>-<n>`` (n = 1, 2, ...: never an existing one)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stem = _report_name(source, split)
    n = 1
    while True:
        folder = base / f"{stem}-{n}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1
