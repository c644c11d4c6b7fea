"""The demos' units: the grid's samples and paired gains, the table, and the photo cells'
machinery (weights restored per cell, one traced step per column, cached features)."""

from __future__ import annotations

import numpy as np
import pytest


def test_split_for_draws_k_per_class_disjoint_and_reproducible():
    from tl_kit.demo import split_for

    y = np.repeat(np.arange(4), 10)
    tr, va = split_for(y, 4, 3, seed=1)
    assert np.bincount(y[tr]).tolist() == [3] * 4 and np.bincount(y[va]).tolist() == [3] * 4
    assert not set(tr) & set(va)
    again = split_for(y, 4, 3, seed=1)
    np.testing.assert_array_equal(again[0], tr)
    assert not np.array_equal(split_for(y, 4, 3, seed=2)[0], tr)


def test_paired_gain_summary_and_table():
    from tl_kit.demo import REGIMES, paired_gain, summarise, table

    rows = [{"labels_per_class": 1, "seed": s, "regime": r, "test_accuracy": acc + 0.1 * s,
             "seconds": 1.0} for s in (0, 1) for r, acc in zip(REGIMES, (0.7, 0.6, 0.5, 0.3), strict=True)]
    assert paired_gain(rows, 1, "small") == pytest.approx([0.4, 0.4])
    summary = summarise(rows, (1,), REGIMES)
    small = next(s for s in summary if s["regime"] == "small")
    assert small["mean"] == pytest.approx(0.75) and small["std"] == pytest.approx(0.05) and small["n"] == 2
    text = table(summary, (1,), task="four columns")
    assert "four columns" in text and "0.750±0.050" in text and text.count("\n") == 3


def test_batch_indices_cycle_and_one_pass():
    from tl_kit.demo.lite0 import batch_indices

    rng = np.random.default_rng(0)
    cycled = batch_indices(8, 8, 16, 1, cycle=True, rng=rng)  # 8 images, 16 steps of 8
    assert len(cycled) == 16 and all(len(b) == 8 and sorted(b) == list(range(8)) for b in cycled)
    passes = batch_indices(40, 32, 2, 2, cycle=False, rng=rng)  # 2 epochs of 32 + 8
    assert [len(b) for b in passes] == [32, 8, 32, 8]
    assert sorted(np.concatenate(passes[:2]).tolist()) == list(range(40))


def test_imprint_is_the_nearest_class_mean_classifier():
    from tl_kit.demo.lite0 import imprint

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    labels = np.repeat(np.arange(3), 4)
    feats = (centres[labels] + rng.normal(size=(12, 16))).astype("float32")
    kernel, bias = imprint(feats, np.eye(3, dtype="float32")[labels])
    probe = centres + 0.1 * rng.normal(size=(3, 16))
    assert (probe @ kernel + bias).argmax(1).tolist() == [0, 1, 2]


def test_early_stopping_rule_is_the_learners():
    from tl_kit.demo.lite0 import early_stopping_rule

    assert early_stopping_rule(5, 160) == (5, 1)  # enough validation images: early stopping
    assert early_stopping_rule(5, 40) == (None, 3)  # too few: full schedule, smoothed best epoch
    assert early_stopping_rule(0, 160) == (None, 1)


def test_cells_restore_weights_and_reuse_one_traced_step():
    """Every cell starts from the kept weights; a column traces its step once; the cached
    (BatchNorm-folded) features are the classifier's own pooled features."""
    import keras

    from tl_kit.demo import photo_recipes
    from tl_kit.demo.lite0 import Lite0Classifier, StepRunner, extract_features

    net = Lite0Classifier(3, 32, "imagenet", dropout=0.2, seed=0)
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    onehot = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    stage = photo_recipes(4, 1, 3)["medium"].stages[1]  # the last two blocks + head
    runner = StepRunner(net, stage)
    frozen, tuned = net.backbone.get_layer("stem_conv").kernel, net.backbone.get_layer("top_conv").kernel
    start = [frozen.numpy(), tuned.numpy(), net.dense.kernel.numpy()]
    first = runner.train(x, onehot, seed=0)
    assert first["steps"] == 2  # min_steps_per_epoch cycles 6 images
    np.testing.assert_array_equal(frozen.numpy(), start[0])
    assert not np.allclose(tuned.numpy(), start[1]) and not np.allclose(net.dense.kernel.numpy(), start[2])
    net.reset(0)
    for v, value in zip(net.variables, net.initial["weights"], strict=True):
        np.testing.assert_array_equal(v.numpy(), value)
    assert net.snapshot()["streams"] and all(np.array_equal(a, b) for a, b in zip(
        net.snapshot()["streams"], net.initial["streams"], strict=True))  # stochastic depth too
    runner.train(x[:3], onehot[:3], seed=1)  # another cell, another batch size: same graph
    assert runner.step.experimental_get_tracing_count() == 1
    net.reset(0)
    pooled = keras.Model(net.model.input, net.model.get_layer("head_pool").output).predict(x, verbose=0)
    np.testing.assert_allclose(extract_features(net, x), pooled, rtol=1e-3, atol=1e-4)
