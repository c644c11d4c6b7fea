"""The digits demo (``tl-kit demo --task digits``) in a tiny setting: every cell present,
real accuracies, files saved."""

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
