"""Tests for the lecture experiments in recipes/: plain vs residual depth, Inception cost."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pvr():
    return _load("plain_vs_residual")


@pytest.fixture(scope="module")
def inception():
    return _load("inception_cost")


# === Inception cost ===


def test_lecture_example_counts(inception):
    ex = inception.lecture_example()
    assert ex["direct"]["macs"] == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
    assert ex["bottleneck"]["macs"] == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16
    assert ex["bottleneck"]["macs"] == 12_443_648
    assert ex["direct"]["params"] == 5 * 5 * 192 * 32 + 32
    assert ex["bottleneck"]["params"] == 192 * 16 + 16 + 5 * 5 * 16 * 32 + 32
    assert ex["direct"]["output_shape"] == ex["bottleneck"]["output_shape"] == (28, 28, 32)


def test_module_3a_naive_vs_reduced_and_googlenet_agrees(inception):
    (row,) = inception.module_costs(("3a",))
    hw = 28 * 28
    naive = hw * 192 * (64 + 9 * 128 + 25 * 32)
    reduced = hw * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32)
    assert row["naive_macs"] == naive == 303_464_448
    assert row["reduced_macs"] == reduced == 128_049_152
    assert (row["naive_out_channels"], row["reduced_out_channels"]) == (416, 256)
    assert row["reduced_params"] == 163_696 < row["naive_params"]
    check = inception.googlenet_module_macs("3a")
    assert check["macs"] == reduced and check["params"] == row["reduced_params"]
    assert check["googlenet_params"] == 6_998_552


def test_inception_script_quick_json(inception, capsys):
    assert inception.main(["--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lecture_example"]["direct"]["macs"] == 120_422_400
    assert [m["module"] for m in out["modules"]] == ["3a"]
    assert out["modules"][0]["macs_ratio"] == pytest.approx(303_464_448 / 128_049_152)


# === Plain vs residual ===


def test_cifar_style_networks_have_the_right_depth_and_shortcuts(pvr):
    import keras

    for n in (1, 2):
        plain = pvr.build_cifar_style(n, plain=True, input_shape=(16, 16, 1))
        res = pvr.build_cifar_style(n, plain=False, input_shape=(16, 16, 1))
        weighted = [
            layer
            for layer in plain.layers
            if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
        ]
        assert len(weighted) == 6 * n + 2  # the paper's depth count
        assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
        assert sum(isinstance(layer, keras.layers.Add) for layer in res.layers) == 3 * n
        # The residual net adds exactly two projection shortcuts (16->32, 32->64) + their BN.
        extra = (16 * 32 + 4 * 32) + (32 * 64 + 4 * 64)
        assert res.count_params() - plain.count_params() == extra
        assert plain.output_shape == (None, 10)


def test_recalibrate_batchnorm_uses_the_data_statistics(pvr):
    import keras

    keras.utils.set_random_seed(0)
    model = pvr.build_cifar_style(1, plain=True, input_shape=(16, 16, 1))
    x = np.random.default_rng(0).uniform(0, 255, (32, 16, 16, 1)).astype("float32")
    pvr.recalibrate_batchnorm(model, x)
    conv = keras.Model(model.input, model.get_layer("conv1_conv").output)(x)
    bn = model.get_layer("conv1_bn")
    np.testing.assert_allclose(
        bn.moving_mean.numpy(), np.mean(conv, axis=(0, 1, 2)), rtol=1e-4, atol=1e-5
    )
    assert bn.momentum == 0.99  # restored


def test_plain_vs_residual_runs_and_reports_training_errors(pvr, capsys):
    assert pvr.main(["--quick", "--depths", "8", "--epochs", "1", "--n-train", "60", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["depth"] == 8 and row["blocks_per_stage"] == 1
    for key in ("plain_train_error", "residual_train_error", "plain_test_error"):
        assert 0.0 <= row[key] <= 1.0
    assert row["residual_params"] > row["plain_params"]
    # The table formatter shows every row.
    table = pvr.format_table([pvr.DepthRow(**row)])
    assert table.splitlines()[2].lstrip().startswith("8")


def test_plain_vs_residual_rejects_bad_depths(pvr):
    with pytest.raises(ValueError, match=r"6n\+2.*depths=\[10\]"):
        pvr.run_experiment((10,))
