"""Tests for the units of tl_kit.analysis: one layer's multiply-adds, shape text, model
files and names."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from tl_kit.analysis.macs import is_tensor, layer_macs
from tl_kit.analysis.results import fmt_shape
from tl_kit.analysis.sources import build_from_name, load_model_file
from tl_kit.analysis.trace import Tracer, input_name, is_graph_model
from tl_kit.errors import UserError


def _call(layer, shape):
    x = keras.KerasTensor((None, *shape))
    y = layer(x)
    return layer, [x], [y]


def test_layer_macs_of_one_call():
    assert layer_macs(*_call(layers.Conv2D(8, 3, padding="same"), (10, 10, 4))) == 10 * 10 * 3 * 3 * 4 * 8
    assert layer_macs(*_call(layers.Dense(5), (7,))) == 7 * 5
    assert layer_macs(*_call(layers.Dense(5), (3, 7))) == 3 * 7 * 5  # per position
    assert layer_macs(*_call(layers.DepthwiseConv2D(3), (6, 6, 4))) == 4 * 4 * 3 * 3 * 4
    assert layer_macs(*_call(layers.ReLU(), (6, 6, 4))) == 0
    assert layer_macs(*_call(layers.Conv2D(2, 3), (None, None, 1))) is None  # size undefined
    assert is_tensor(keras.KerasTensor((None, 3))) and not is_tensor(3)


def test_fmt_shape():
    assert fmt_shape((None, 7, 3)) == "(?, 7, 3)"
    assert fmt_shape([(2,), (3, 4)]) == "(2), (3, 4)"


def test_tracer_records_rows_and_receptive_fields():
    inputs = keras.Input((9, 9, 1), name="pixels")
    x = layers.Conv2D(2, 3, name="c1")(inputs)
    x = layers.MaxPooling2D(2, name="p")(x)
    model = keras.Model(inputs, layers.Conv2D(2, 3, name="c2")(x))
    assert is_graph_model(model) and not is_graph_model(model.get_layer("c1"))
    assert input_name(model, model.inputs[0]) == "pixels"
    tracer = Tracer()
    spec = keras.KerasTensor((None, 9, 9, 1))
    tracer.rf[id(spec)] = (1, 1)
    tracer.run_model(model, spec, prefix="m/", depth=1)
    rows = {r.name: r for r in tracer.rows.values()}
    assert list(rows) == ["m/c1", "m/p", "m/c2"] and rows["m/c2"].depth == 1
    assert [rows[n].receptive_field for n in rows] == [3, 4, 8]
    assert rows["m/c2"].output_shape == (1, 1, 2) and rows["m/c1"].params == 3 * 3 * 2 + 2


def test_model_files_and_names(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2)], name="tiny")
    model.save(tmp_path / "tiny.keras")
    assert load_model_file(str(tmp_path / "tiny.keras")).name == "tiny"
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model_file(str(tmp_path / "missing.keras"))
    built, source = build_from_name("lenet5", (32, 32), {})
    assert source == "tl_kit.models" and built.input_shape == (None, 32, 32, 1)
    with pytest.raises(UserError, match="lenet5"):
        build_from_name("lenet6", None, {})
