"""Tests for tl_kit._plots: the figure is always closed, saving creates the folders."""

from __future__ import annotations

import pytest
from PIL import Image

from tl_kit._plots import figure, pyplot, save_figure


def test_save_figure_creates_folders_and_closes(tmp_path):
    plt = pyplot()
    with figure(1, 2, figsize=(4, 2), squeeze=False) as (fig, axes):
        axes[0, 0].plot([1, 2, 3])
        out = save_figure(fig, tmp_path / "a" / "b" / "curve.png", dpi=50)
        assert not plt.fignum_exists(fig.number)  # save_figure closed it
    assert out == tmp_path / "a" / "b" / "curve.png"
    with Image.open(out) as png:
        assert png.size == (200, 100)


def test_figure_is_closed_when_drawing_fails():
    plt = pyplot()
    with pytest.raises(ValueError, match="drawing"):
        with figure() as (fig, _):
            number = fig.number
            raise ValueError("drawing failed")
    assert not plt.fignum_exists(number)
