"""Tests for tl_kit.analysis: shapes, parameters, multiply-adds, receptive field."""

from __future__ import annotations

import json
import sys
import types

import keras
import pytest
from keras import layers

import tl_kit
from tl_kit.analysis import ModelSummary, parse_input_shape, summary
from tl_kit.errors import UserError

# === Helpers ===


def _model(input_shape, *stack, name="m"):
    inp = keras.Input(input_shape, name="image")
    x = inp
    for layer in stack:
        x = layer(x)
    return keras.Model(inp, x, name=name)


def _spatial_shapes(s: ModelSummary, classes=("Conv2D", "MaxPooling2D", "AveragePooling2D")):
    return [r.output_shape for r in s.rows if r.class_name in classes]


def _last_feature_map(s: ModelSummary):
    return [
        r.output_shape
        for r in s.rows
        if isinstance(r.output_shape, tuple) and len(r.output_shape) == 3
    ][-1]


# === Hand-computed MACs ===


def test_inception_1x1_bottleneck_from_the_lecture_notes():
    # 5x5 "same" convolution, 28x28x192 -> 28x28x32: 28*28*32 * 5*5*192 multiplications.
    direct = _model((28, 28, 192), layers.Conv2D(32, 5, padding="same", use_bias=False))
    assert summary(direct).macs == 120_422_400
    # 1x1 reduction to 16 channels first: 28*28*16*192 + 28*28*32*5*5*16.
    reduced = _model(
        (28, 28, 192),
        layers.Conv2D(16, 1, use_bias=False, name="reduce"),
        layers.Conv2D(32, 5, padding="same", use_bias=False, name="conv5x5"),
    )
    s = summary(reduced)
    assert s.layer("reduce").macs == 2_408_448
    assert s.layer("conv5x5").macs == 10_035_200
    assert s.macs == 12_443_648


def test_grouped_convolution_counts_only_its_groups():
    plain = summary(_model((8, 8, 4), layers.Conv2D(6, 3, name="c")))
    grouped = summary(_model((8, 8, 4), layers.Conv2D(6, 3, groups=2, name="c")))
    assert plain.layer("c").output_shape == (6, 6, 6)
    assert plain.macs == 6 * 6 * 6 * (3 * 3 * 4)  # 7776
    assert grouped.macs == 6 * 6 * 6 * (3 * 3 * 4 // 2)  # 3888
    assert grouped.layer("c").params == 3 * 3 * 2 * 6 + 6


def test_depthwise_separable_transpose_dense_and_strides():
    s = summary(
        _model((8, 8, 4), layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw"))
    )
    assert s.layer("dw").output_shape == (8, 8, 8)
    assert s.macs == 8 * 8 * 4 * 2 * 3 * 3  # 4608

    s = summary(_model((8, 8, 4), layers.SeparableConv2D(5, 3, padding="same", name="sep")))
    assert s.macs == 8 * 8 * 4 * 3 * 3 + 8 * 8 * 4 * 5  # depthwise 2304 + pointwise 1280

    s = summary(
        _model((4, 4, 3), layers.Conv2DTranspose(5, 3, strides=2, padding="same", name="up"))
    )
    assert s.layer("up").output_shape == (8, 8, 5)
    assert s.macs == 4 * 4 * 3 * 3 * 3 * 5  # every input pixel meets the whole kernel: 2160

    s = summary(_model((8, 8, 1), layers.Conv2D(2, 3, strides=2, padding="same", name="c")))
    assert s.layer("c").output_shape == (4, 4, 2)
    assert s.macs == 4 * 4 * 2 * 3 * 3

    s = summary(_model((7, 4), layers.Dense(3, name="fc")))  # dense on a sequence
    assert s.macs == 7 * 4 * 3


def test_zero_mac_layers_and_shared_layer_counted_per_call():
    s = summary(
        _model(
            (8, 8, 3),
            layers.BatchNormalization(name="bn"),
            layers.ReLU(name="relu"),
            layers.MaxPooling2D(name="pool"),
            layers.GlobalAveragePooling2D(name="gap"),
        )
    )
    assert s.macs == 0
    assert s.layer("bn").params == 12 and s.layer("bn").trainable_params == 6
    assert s.trainable_params == 6 and s.non_trainable_params == 6

    shared = layers.Conv2D(2, 3, name="shared")
    a, b = keras.Input((5, 5, 1), name="a"), keras.Input((5, 5, 1), name="b")
    m = keras.Model([a, b], layers.Add(name="add")([shared(a), shared(b)]))
    s = summary(m)
    assert s.layer("shared").macs == 2 * (3 * 3 * 2 * 9)
    assert s.params == m.count_params() == 20
    assert [r.name for r in s.rows[:2]] == ["a", "b"]


# === Classic architectures (hand-built, then Keras Applications) ===


def _lenet5():
    return _model(
        (32, 32, 1),
        layers.Conv2D(6, 5, activation="tanh", name="conv1"),
        layers.AveragePooling2D(2, name="pool1"),
        layers.Conv2D(16, 5, activation="tanh", name="conv2"),
        layers.AveragePooling2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(120, name="fc1"),
        layers.Dense(84, name="fc2"),
        layers.Dense(10, name="predictions"),
        name="lenet",
    )


def test_lenet5_feature_maps():
    s = summary(_lenet5())
    assert _spatial_shapes(s) == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)]
    assert s.layer("flatten").output_shape == (400,)
    assert s.layer("conv1").macs == 28 * 28 * 6 * 25
    assert s.params == 61_706


def test_alexnet_shapes_groups_and_receptive_field():
    m = _model(
        (227, 227, 3),
        layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1"),
        layers.MaxPooling2D(3, 2, name="pool1"),
        layers.Conv2D(256, 5, padding="same", groups=2, name="conv2"),
        layers.MaxPooling2D(3, 2, name="pool2"),
        layers.Conv2D(384, 3, padding="same", name="conv3"),
        layers.Conv2D(384, 3, padding="same", groups=2, name="conv4"),
        layers.Conv2D(256, 3, padding="same", groups=2, name="conv5"),
        layers.MaxPooling2D(3, 2, name="pool5"),
        layers.Flatten(name="flatten"),
        name="alexnet_hand",
    )
    s = summary(m)
    assert s.layer("conv1").output_shape == (55, 55, 96)
    assert s.layer("pool5").output_shape == (6, 6, 256)
    assert s.layer("flatten").output_shape == (9216,)
    assert s.layer("conv2").macs == 27 * 27 * 256 * 5 * 5 * 48  # groups=2: 48 input channels each
    assert s.layer("pool5").receptive_field == 195
    assert s.receptive_field == 195


def test_keras_applications_vgg16_resnet50_mobilenetv2():
    s = summary(keras.applications.VGG16(weights=None))
    assert s.layer("block5_pool").output_shape == (7, 7, 512)
    assert 15.3e9 < s.macs < 15.6e9
    assert s.params == 138_357_544
    assert s.layer("block5_pool").receptive_field == 212

    s = summary(keras.applications.ResNet50(weights=None))
    assert 3.8e9 < s.macs < 4.2e9
    assert s.params == 25_636_712

    s = summary(keras.applications.MobileNetV2(weights=None))
    assert 0.29e9 < s.macs < 0.32e9
    assert sum(r.macs for r in s.rows if r.class_name == "DepthwiseConv2D") > 0


def test_nested_backbone_is_walked_and_traced_at_the_outer_size():
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(None, None, 3), alpha=0.35
    )
    backbone.trainable = False
    inp = keras.Input((64, 64, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="preprocess")(inp)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    out = layers.Dense(3, name="predictions")(x)
    model = keras.Model(inp, out, name="classifier")

    s = summary(model)
    inner = [r for r in s.rows if r.name.startswith(f"{backbone.name}/")]
    assert len(inner) == len(backbone.layers) - 1  # every layer but the nested InputLayer
    assert all(r.depth == 1 for r in inner)
    assert s.layer("out_relu").output_shape == (2, 2, 1280)  # 64 px input, stride 32
    assert s.params == model.count_params()
    assert s.trainable_params == 1280 * 3 + 3
    assert s.layer("predictions").macs == 1280 * 3
    assert s.macs > 1280 * 3  # the backbone's convolutions are counted


def test_input_shape_for_a_model_with_undefined_size():
    fcn = keras.Sequential(
        [keras.Input((None, None, 3)), layers.Conv2D(4, 3, name="c")], name="fcn"
    )
    with pytest.raises(UserError, match="input_shape"):
        summary(fcn)
    s = summary(fcn, input_shape="32x32")
    assert s.input_shape == (32, 32, 3)
    assert s.layer("c").output_shape == (30, 30, 4)
    assert s.macs == 30 * 30 * 4 * 27
    with pytest.raises(UserError, match="does not fit"):
        summary(_lenet5(), input_shape=(64, 64, 1))


def test_parse_input_shape():
    assert parse_input_shape("224,224,3") == (224, 224, 3)
    assert parse_input_shape("224x224x3") == (224, 224, 3)
    assert parse_input_shape("(64, 64)") == (64, 64)
    assert parse_input_shape([32, 32, 1]) == (32, 32, 1)
    assert parse_input_shape(None) is None
    for bad in ("abc", "0,32,3", "1,2,3,4", "32"):
        with pytest.raises(UserError, match="Received: input_shape="):
            parse_input_shape(bad)


# === Output formats ===


def test_text_rich_and_json_outputs(capsys):
    s = summary(_lenet5())
    text = str(s)
    assert repr(s) == text
    assert "conv1 (Conv2D)" in text and "(28, 28, 6)" in text
    assert "Total params: 61,706" in text
    assert f"Multiply-adds (MACs): {s.macs:,}" in text

    s.print()
    out = capsys.readouterr().out
    assert "conv2" in out and "61,706" in out

    d = json.loads(s.to_json())
    assert d["totals"]["params"] == 61_706 and d["totals"]["macs"] == s.macs
    assert d["layers"][1]["output_shape"] == [28, 28, 6]
    assert d["input_shape"] == [32, 32, 1]
    assert "convention" in d and d == s.to_dict()


# === Errors and name resolution ===


def test_unknown_name_and_bad_arguments():
    with pytest.raises(
        UserError, match=r"Unknown model 'no_such_net'.*Received: name='no_such_net'"
    ):
        summary("no_such_net")
    with pytest.raises(ValueError):  # UserError is a ValueError
        summary("no_such_net")
    with pytest.raises(UserError, match="Builder arguments"):
        summary(_lenet5(), include_top=False)
    with pytest.raises(UserError, match="keras.Model or a registered model name"):
        summary(42)


def test_falls_back_to_the_backbone_registry(monkeypatch):
    built = {}

    class FakeSpec:
        default_size = (32, 32, 3)

        def build(self, input_shape=None, weights=None):
            built.update(input_shape=input_shape, weights=weights)
            return _model(input_shape or (32, 32, 3), layers.Conv2D(2, 3, name="c"), name="bb")

    fake = types.ModuleType("tl_kit.backbones")
    fake.list_backbones = lambda pattern="*": ["fake_backbone"]
    fake.get_backbone = lambda name: FakeSpec()
    monkeypatch.setitem(sys.modules, "tl_kit.backbones", fake)

    s = summary("fake_backbone", input_shape="16,16")
    assert built == {"input_shape": (16, 16, 3), "weights": None}
    assert s.layer("c").output_shape == (14, 14, 2) and s.source == "tl_kit.backbones"
    with pytest.raises(UserError, match="without a classifier top"):
        summary("fake_backbone", include_top=True)
    with pytest.raises(UserError, match="did you mean fake_backbone"):  # backbone names suggested
        summary("fake_backbon")


# === tl_kit registry names (the classic builders) ===


def test_registry_lenet5():
    s = tl_kit.summary("lenet5")
    assert s.source == "tl_kit.models"
    assert _spatial_shapes(s)[:4] == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16)]
    assert any(r.output_shape == (400,) for r in s.rows)


def test_registry_alexnet():
    s = tl_kit.summary("alexnet")
    convs = [r for r in s.rows if r.class_name == "Conv2D"]
    assert convs[0].output_shape == (55, 55, 96)
    assert _last_feature_map(s) == (6, 6, 256)
    assert any(r.output_shape == (9216,) for r in s.rows)


def test_registry_vgg16():
    s = tl_kit.summary("vgg16")
    assert s.layer("block5_pool").output_shape == (7, 7, 512)
    assert 15.3e9 < s.macs < 15.6e9
    assert s.params == 138_357_544


def test_registry_resnet50():
    s = tl_kit.summary("resnet50")
    assert 3.8e9 < s.macs < 4.2e9


def test_registry_mobilenet_v2():
    s = tl_kit.summary("mobilenet_v2")
    assert 0.29e9 < s.macs < 0.32e9


def test_model_catalog_reads_metadata_without_building():
    from tl_kit.analysis import model_catalog

    entries = {e["name"]: e for e in model_catalog()}
    assert set(entries) == set(tl_kit.list_models())
    assert entries["lenet5"]["default_size"] == [32, 32, 1]
    assert entries["lenet5"]["params"] == 61_706 and entries["lenet5"]["classes"] == 10
    assert entries["vgg16"]["blocks"] == ["block1_", "block2_", "block3_", "block4_", "block5_"]
    assert [e["name"] for e in model_catalog("resnet5*")] == ["resnet50"]
    assert model_catalog("zz*") == []


def test_real_backbone_registry_name():
    s = tl_kit.summary("keras:mobilenetv2", input_shape=(96, 96, 3))
    assert s.source == "tl_kit.backbones"
    assert s.input_shape == (96, 96, 3)
    assert s.layer("out_relu").output_shape == (3, 3, 1280)
    assert s.macs > 0
