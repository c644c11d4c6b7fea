"""The offline demo in a tiny setting: every cell present, real accuracies, files saved."""

from __future__ import annotations

import csv
import json

import numpy as np

from tl_kit.demo import ABLATIONS, REGIMES, digits_32, run_demo


def test_digits_are_lenet_sized_real_images():
    x, y = digits_32()
    assert x.shape == (1797, 32, 32, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 200
    assert x[:, :4].max() == 0 and x[:, 28:].max() == 0  # centred, 4-pixel margin like MNIST
    assert sorted(set(y.tolist())) == list(range(10))


def test_run_demo_quick(tmp_path):
    res = run_demo(tmp_path, seeds=(0,), labels_per_class=(2,), quick=True, verbose=0, task="digits")
    cells = {(r["labels_per_class"], r["regime"]) for r in res["rows"]}
    assert cells == {(2, r) for r in (*REGIMES, *ABLATIONS)}  # ablations run at <= 5 labels
    for r in res["rows"]:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["seconds"] > 0
        assert r["test_images"] > 800  # every remaining digit 5-9
    acc = {r["regime"]: r["test_accuracy"] for r in res["rows"]}
    assert acc["small"] > 0.4, "pretrained features + head beat chance (0.2) clearly"
    helped = [f for f in res["findings"] if f.startswith("what helped")]
    assert any("pretrained features" in f and "RANDOM" in f for f in helped)
    assert any("augmented copies" in f for f in helped)
    assert any("regime" in f for f in helped)
    verdict = next(f for f in res["findings"] if f.startswith("2 labels/class"))
    assert "paired by seed" in verdict and verdict.endswith(
        ("transfer helps", "no clear difference", "scratch wins"))
    assert res["pretrain"]["val_accuracy"] > 0.5
    for name in ("demo.csv", "demo.json", "demo.png", "demo.txt"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(tmp_path / "demo.csv")))
    assert len(rows) == len(REGIMES) + len(ABLATIONS)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["findings"] and "labels/class" in saved["table"]
    assert (tmp_path / "pretrain" / "backbone.weights.h5").is_file()


# === the photo task: ImageNet EfficientNet-Lite0 (the default `tl-kit demo`) ===


def test_photo_patches_are_real_photo_crops():
    from tl_kit.demo import PHOTO_CLASSES, photo_patches

    task = photo_patches(32, pool=6, test=2)
    (xp, yp), (xt, yt) = task["pool"], task["test"]
    assert task["classes"] == list(PHOTO_CLASSES) and len(PHOTO_CLASSES) == 8
    assert xp.shape == (48, 32, 32, 3) and xt.shape == (16, 32, 32, 3)
    assert np.bincount(yp).tolist() == [6] * 8 and np.bincount(yt).tolist() == [2] * 8
    assert 0 <= xp.min() and xp.max() <= 255 and xp.std() > 20  # photos, not blank
    again = photo_patches(32, pool=6, test=2)
    np.testing.assert_array_equal(again["pool"][0], xp)  # deterministic


def test_photo_demo_transfer_beats_scratch_by_the_margin(tmp_path, monkeypatch):
    """The reduced demo: one seed, 1 label per class, small vs scratch. ImageNet Lite0's
    head-only transfer must beat the same network from scratch by >= 0.15 (the demo's target)."""
    from tl_kit.demo import paired_gain, run_demo

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    res = run_demo(tmp_path / "demo", seeds=(0,), labels_per_class=(1,), quick=True, verbose=0,
                   regimes=("small", "scratch"))
    acc = {r["regime"]: r["test_accuracy"] for r in res["rows"]}
    assert res["rows"][0]["test_images"] == 128
    gain = paired_gain(res["rows"], 1, "small")
    assert gain[0] >= 0.15, acc
    assert acc["small"] >= 0.5, acc  # 8 classes: chance is 0.125
    assert any("transfer helps" in f for f in res["findings"])
