"""Shared fixtures of the tl_kit.data tests: image folders with every hygiene case."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _img(color, size=(20, 24), mode="RGB"):
    return Image.new(mode, size, color)


def _fill_class(folder, n, color, ext=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _img(color).save(folder / f"img{i}{ext}")


def _messy_folder(root):
    """Three classes with every bad case the hygiene scan must handle."""
    a, b, c = root / "apple", root / "banana", root / "cherry"
    _fill_class(a, 6, (200, 30, 30), ".jpg")
    _fill_class(b, 4, (30, 200, 30), ".png")
    _fill_class(c, 4, (30, 30, 200), ".bmp")
    # bad files: skipped and listed
    (a / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + bytes(range(200)))
    good = a / "img0.jpg"
    (a / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (b / "notes.txt").write_text("this is not an image")
    # read by content: a PNG named .jpg
    _img((30, 200, 30)).save(b / "really_png.jpg", format="PNG")
    # modes: grey, palette, RGBA (transparent -> white), CMYK
    _img(100, mode="L").save(c / "grey.png")
    _img((30, 30, 200)).convert("P").save(c / "palette.gif")
    rgba = Image.new("RGBA", (20, 24), (0, 0, 0, 0))
    rgba.save(c / "transparent.png")
    Image.new("CMYK", (20, 24), (255, 0, 0, 0)).save(c / "cmyk.jpg", quality=95)
    # EXIF orientation 6 (display = rotate 90 degrees clockwise): left red, right blue
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16] = (255, 0, 0)
    arr[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(c / "rotated.jpg", exif=exif, quality=95)
    # upper-case extensions, WebP, nested folders
    _img((200, 30, 30)).save(a / "UPPER.JPEG", format="JPEG")
    _img((30, 200, 30)).save(b / "UPPER.PNG", format="PNG")
    _img((30, 200, 30)).save(b / "pic.WebP", format="WEBP")
    (b / "sub" / "deeper").mkdir(parents=True)
    _img((30, 200, 30)).save(b / "sub" / "deeper" / "nested.png")
    (root / "stray.txt").write_text("outside any class")
    return root


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Three classes with every bad case the hygiene scan must handle (not to be modified)."""
    return _messy_folder(tmp_path_factory.mktemp("messy"))


@pytest.fixture
def fill_class():
    """``fill_class(folder, n, colour, ext=".png")``: ``n`` plain images in ``folder``."""
    return _fill_class


@pytest.fixture
def photos(messy, tmp_path):
    """A writable copy of the messy folder."""
    root = tmp_path / "photos"
    shutil.copytree(messy, root)
    return root


@pytest.fixture
def checked(monkeypatch):
    """The names of the files each load checks (decodes), in order."""
    from tl_kit.data import hygiene

    names: list[str] = []
    real = hygiene._check_all

    def check_all(todo, files, *a, **k):
        names.extend(Path(files[i][0]).name for i in todo)
        return real(todo, files, *a, **k)

    monkeypatch.setattr(hygiene, "_check_all", check_all)
    return names
