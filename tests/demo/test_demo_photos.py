"""The photo demo (the default ``tl-kit demo``): the task's crops, and ImageNet
EfficientNet-Lite0's margin over scratch on 3 seeds."""

from __future__ import annotations

import numpy as np


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
    """The reduced demo: 3 seeds, 1 and 5 labels per class, small vs scratch. ImageNet
    Lite0's head-only transfer must beat the same network from scratch by >= 0.15 paired by
    seed, and on every seed (the demo's target and verdict), offline (the bundled checkpoint,
    an empty Keras cache)."""
    from tl_kit.demo import paired_gain, run_demo

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    res = run_demo(tmp_path / "demo", seeds=(0, 1, 2), labels_per_class=(1, 5), quick=True,
                   verbose=0, regimes=("small", "scratch"))
    assert {r["regime"] for r in res["rows"]} == {"small", "scratch"} and len(res["rows"]) == 12
    assert all(r["test_images"] == 128 for r in res["rows"])
    for k in (1, 5):
        acc = {(r["seed"], r["regime"]): r["test_accuracy"] for r in res["rows"]
               if r["labels_per_class"] == k}
        gain = paired_gain(res["rows"], k, "small")
        assert len(gain) == 3 and np.mean(gain) >= 0.15 and min(gain) > 0, (k, acc)
        assert min(acc[(s, "small")] for s in (0, 1, 2)) >= 0.5, (k, acc)  # 8 classes: chance 0.125
    verdicts = [f for f in res["findings"] if "labels/class: best transfer" in f]
    assert len(verdicts) == 2 and all(f.endswith("transfer helps") for f in verdicts)
    assert res["findings"][0].startswith("what every cell runs")
