"""Tests for tl_kit.evaluate.plots: training curves."""

from __future__ import annotations

import pytest
from PIL import Image

from tl_kit.errors import UserError
from tl_kit.evaluate import plot_history


def test_plot_history_writes_png(tmp_path):
    history = tmp_path / "history.csv"
    rows = ["stage,epoch,loss,accuracy,val_loss,val_accuracy,lr"]
    rows += [f"head,{e},{1 - 0.1 * e},{0.5 + 0.05 * e},{1.1 - 0.1 * e},{0.5 + 0.04 * e},0.001"
             for e in range(3)]
    rows += [f"finetune,{e},{0.6 - 0.1 * e},{0.7 + 0.05 * e},{0.7 - 0.1 * e},{0.6 + 0.04 * e},0.0001"
             for e in range(2)]
    history.write_text("\n".join(rows) + "\n")
    out = plot_history(history, tmp_path / "plots" / "history.png")
    with Image.open(out) as png:
        assert png.size[0] > 300
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, tmp_path / "h2.png")
    assert (tmp_path / "h2.png").stat().st_size > 0
    with pytest.raises(UserError, match="empty"):
        plot_history([], tmp_path / "h3.png")


