"""The demos' output: the accuracy table, and ``demo.csv`` / ``demo.json`` / ``demo.txt`` /
``demo.png`` in the run directory."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tl_kit.demo.grid import REGIMES, cell

__all__ = ["table", "save_results", "plot"]


def table(summary: list[dict[str, Any]], labels_per_class: Sequence[int], task: str = "digits 5-9") -> str:
    """One row per labels/class, one column per regime: mean ± std accuracy, mean seconds."""
    head = "labels/class | " + " | ".join(f"{r:>17s}" for r in REGIMES)
    lines = [f"Test accuracy on {task} (mean ± std over seeds; mean seconds per cell)", head,
             "-" * len(head)]
    for k in labels_per_class:
        cells = []
        for r in REGIMES:
            s = cell(summary, k, r)
            cells.append(f"{s['mean']:.3f}±{s['std']:.3f} {s['seconds']:4.1f}s")
        lines.append(f"{k:>12d} | " + " | ".join(f"{c:>17s}" for c in cells))
    return "\n".join(lines)


def save_results(out: Path, result: dict, xlabel: str = "labelled training images per class (digits 5-9)",
                 title: str = "LeNet-5 pretrained on digits 0-4, transferred to 5-9") -> None:
    """Write the rows (CSV), the whole result (JSON), table + findings (text) and the plot."""
    with open(out / "demo.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(result["rows"][0]))
        w.writeheader()
        w.writerows(result["rows"])
    (out / "demo.json").write_text(json.dumps(result, indent=2))
    (out / "demo.txt").write_text(result["table"] + "\n" + "\n".join(result["findings"]) + "\n")
    plot(out / "demo.png", result["summary"], result["settings"]["labels_per_class"], xlabel, title)


def plot(path: Path, summary: list[dict[str, Any]], ks: Sequence[int], xlabel: str, title: str) -> None:
    """Accuracy against labels per class (log axis), one line with error bars per regime."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in REGIMES:
        m = [cell(summary, k, r)["mean"] for k in ks]
        s = [cell(summary, k, r)["std"] for k in ks]
        ax.errorbar(ks, m, yerr=s, marker="o", capsize=3, label=r)
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
