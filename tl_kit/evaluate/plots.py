"""Evaluation plots: confusion matrix, worst predictions (with Grad-CAM overlays) and the
training curves of a run."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tl_kit._plots import figure, save_figure
from tl_kit.errors import UserError

__all__ = ["plot_confusion_matrix", "plot_worst", "plot_history", "worst_heatmaps"]


def plot_confusion_matrix(
    matrix, class_names: Sequence[str], out_png: str | os.PathLike
) -> Path:
    """Save a confusion matrix (rows: true class, columns: predicted) as a PNG."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    side = min(4 + 0.45 * n, 30)
    with figure(figsize=(side, side)) as (fig, ax):
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(n), labels=class_names, rotation=90 if n > 6 else 0)
        ax.set_yticks(range(n), labels=class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 30:
            threshold = matrix.max() / 2 if matrix.size else 0
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > threshold else "black")
        return save_figure(fig, out_png)


def worst_heatmaps(model, images) -> np.ndarray | None:
    """Grad-CAM heatmaps of ``images`` (predicted class), or None where the model has no
    backbone/``predictions`` chain to explain (an ensemble, an export): a plot extra only."""
    try:
        from tl_kit.explain import gradcam

        return gradcam(model, images)["heatmaps"]
    except Exception:  # noqa: BLE001 - never lose an evaluation over its heatmaps
        return None


def _show_image(ax, image, heatmap) -> None:
    pixels = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    if heatmap is not None:
        from tl_kit.explain import overlay

        ax.imshow(overlay(pixels, heatmap))
    elif pixels.shape[-1] == 1:
        ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(pixels)


def plot_worst(
    images, labels, probs, class_names: Sequence[str], out_png: str | os.PathLike,
    heatmaps: np.ndarray | None = None,
) -> Path:
    """Save a grid of images titled ``true -> predicted (p)``, e.g. the highest-loss ones;
    with ``heatmaps`` (N, H, W) in [0, 1], each image carries its Grad-CAM overlay."""
    count = len(images)
    cols = min(4, count)
    rows = math.ceil(count / cols)
    with figure(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False) as (fig, axes):
        for ax in axes.ravel():
            ax.axis("off")
        cells = zip(axes.ravel(), images, labels, probs, strict=False)
        for i, (ax, image, label, prob) in enumerate(cells):
            _show_image(ax, image, heatmaps[i] if heatmaps is not None else None)
            pred = int(np.argmax(prob))
            ax.set_title(
                f"{class_names[int(label)]} -> {class_names[pred]}\n"
                f"p={prob[pred]:.2f}, p(true)={prob[int(label)]:.2f}",
                fontsize=9,
            )
        return save_figure(fig, out_png)


def _read_history(history) -> list[dict]:
    if isinstance(history, str | os.PathLike):
        with open(history, newline="") as handle:
            return list(csv.DictReader(handle))
    if hasattr(history, "to_dict"):  # pandas DataFrame
        return history.to_dict("records")
    if isinstance(history, dict):  # keras History.history: {metric: [values]}
        length = max((len(v) for v in history.values()), default=0)
        return [{key: values[i] for key, values in history.items()} for i in range(length)]
    return list(history)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _history_panel(ax, rows: list[dict], metric: str, columns: list[str]) -> None:
    """One metric (train solid, validation dashed) over all epochs, stages marked."""
    x = np.arange(1, len(rows) + 1)
    stages = [str(row.get("stage", "")) for row in rows]
    for key, style in ((metric, "-"), (f"val_{metric}", "--")):
        if key in columns:
            ax.plot(x, [_number(row.get(key)) for row in rows], style, marker="o",
                    markersize=3, label=key)
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            ax.axvline(i + 0.5, color="grey", linestyle=":", linewidth=1)
    starts = [0] + [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    for start in starts:
        if stages[start]:
            ax.annotate(stages[start], (x[start], 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel("epoch (all stages)")
    ax.set_title(metric)
    ax.legend()
    ax.grid(alpha=0.3)


def plot_history(history, out_png: str | os.PathLike) -> Path:
    """Plot training curves (loss and accuracy, train and validation) across all stages.

    Args:
        history: path to ``history.csv`` (columns ``stage, epoch, loss, accuracy, val_loss,
            val_accuracy, ...``), a DataFrame, a list of row dicts, or a Keras
            ``History.history`` dict.
        out_png: PNG to write. Stage boundaries are drawn as dashed vertical lines.

    Example:
    ```python
    plot_history("runs/pets/history.csv", "runs/pets/plots/history.png")
    ```
    """
    rows = _read_history(history)
    if not rows:
        raise UserError(f"The training history is empty. Received: history={history!r}")
    columns = list(rows[0].keys())
    panels = [m for m in ("loss", "accuracy") if m in columns or f"val_{m}" in columns]
    if not panels:
        raise UserError(
            "The history has neither loss nor accuracy columns. "
            f"Received: columns={columns}"
        )
    with figure(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False) as (fig, axes):
        for ax, metric in zip(axes[0], panels, strict=True):
            _history_panel(ax, rows, metric, columns)
        return save_figure(fig, out_png)
