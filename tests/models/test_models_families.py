"""Family-specific checks for ResNet/plain, GoogLeNet and MobileNet v1/v2.

The generic suite (tests/models/test_models.py) covers shapes, pooling, blocks, parameter
counts, config and save/load for every registered name; this file checks what is
particular to each family. Small inputs only, except two full-size GoogLeNet builds
that count parameters.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_same_outputs, outputs, random_images

from tl_kit.models import build_model, list_models
from tl_kit.models.inception import LocalResponseNorm, googlenet, googlenet_bn, strip_aux
from tl_kit.models.mobilenet import make_divisible, mobilenet_v1, mobilenet_v2
from tl_kit.models.resnet import resnet18, resnet50

SMALL = (32, 32, 3)


def _names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def _adds(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]


def _trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# === ResNet and plain nets ===


def test_registered_names():
    names = set(list_models())
    expected = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34"}
    assert expected | {"googlenet", "googlenet_bn", "mobilenet_v1", "mobilenet_v2"} <= names


@pytest.mark.parametrize(
    ("residual", "plain", "n_add", "projections"),
    [
        (
            lambda: build_model("resnet18", include_top=False, input_shape=SMALL),
            lambda: build_model("plain18", include_top=False, input_shape=SMALL),
            8,
            3,
        ),
        (
            lambda: resnet50(include_top=False, input_shape=SMALL),
            lambda: resnet50(include_top=False, input_shape=SMALL, plain=True),
            16,
            4,
        ),
    ],
    ids=["18", "50"],
)
def test_plain_nets_have_no_shortcuts(residual, plain, n_add, projections, fresh_session):
    res, pl = residual(), plain()
    shortcut = re.compile(r"_(add|0_conv|0_bn)$")
    # Residual: one Add per block, projection shortcuts only where the shape changes.
    assert len(_adds(res)) == n_add
    assert len([n for n in _names(res) if n.endswith("_0_conv")]) == projections
    # Plain: no Add layer, no projection; otherwise exactly the same layers.
    assert _adds(pl) == []
    assert not [n for n in _names(pl) if shortcut.search(n)]
    assert [n for n in _names(res) if not shortcut.search(n)] == _names(pl)
    assert res.output_shape == pl.output_shape
    x = random_images(SMALL, n=1)
    assert np.isfinite(outputs(pl, x)[0]).all()


def test_resnet50_layer_names_and_order_match_keras(fresh_session):
    ours = resnet50(include_top=False, input_shape=SMALL)
    ref = keras.applications.ResNet50(weights=None, include_top=False, input_shape=SMALL)
    assert _names(ours)[1:] == _names(ref)[1:]
    # v1.5: the stride of a bottleneck sits on the 3x3 convolution, not on the first 1x1.
    assert ours.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert ours.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert ours.get_layer("conv3_block1_0_conv").strides == (2, 2)
    # No conv bias (BatchNorm follows every convolution).
    convs = [lyr for lyr in ours.layers if isinstance(lyr, keras.layers.Conv2D)]
    assert convs and not any(c.use_bias for c in convs)


def test_resnet_runs_at_32px_with_top(fresh_session):
    model = resnet18(input_shape=SMALL, classes=10)
    assert model.get_layer("conv5_block2_out").output.shape == (None, 1, 1, 512)
    (y,) = outputs(model, random_images(SMALL, n=2))
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    # Without an input shape the top keeps the paper's size.
    assert resnet18(classes=10).input_shape == (None, 224, 224, 3)
    with pytest.raises(ValueError, match=r"at least 32x32.*Received: input_shape=\(31, 31, 3\)"):
        resnet18(input_shape=(31, 31, 3))


# === GoogLeNet ===


def test_googlenet_aux_heads_on_4a_and_4d_and_counts(fresh_session):
    plain = googlenet()
    assert plain.count_params() == 6_998_552
    assert len(plain.outputs) == 1
    assert not [n for n in _names(plain) if n.startswith("aux")]
    model = googlenet(aux_logits=True)
    assert model.count_params() == 13_378_280
    assert [o.shape for o in model.outputs] == [(None, 1000)] * 3
    assert [t.name for t in model.outputs] == [
        model.get_layer(n).output.name
        for n in ("predictions", "aux1_predictions", "aux2_predictions")
    ]
    for aux, source in (("aux1", "inception4a"), ("aux2", "inception4d")):
        assert model.get_layer(f"{aux}_pool").input is model.get_layer(f"{source}_concat").output
        assert model.get_layer(f"{aux}_pool").output.shape == (
            None,
            4,
            4,
            model.get_layer(f"{source}_concat").output.shape[-1],
        )
        assert model.get_layer(f"{aux}_fc").units == 1024
        assert model.get_layer(f"{aux}_dropout").rate == 0.7
    inference = strip_aux(model)
    assert len(inference.outputs) == 1
    assert inference.count_params() == 6_998_552
    # True 5x5 branches, biases, no BatchNorm.
    assert model.get_layer("inception5b_5x5_conv").kernel_size == (5, 5)
    assert not any(isinstance(lyr, keras.layers.BatchNormalization) for lyr in model.layers)


def test_strip_aux_equals_main_head_after_training(fresh_session):
    shape = (96, 96, 3)
    model = googlenet(aux_logits=True, input_shape=shape, classes=3)
    x = random_images(shape, n=4, seed=1) / 255.0
    y = keras.utils.to_categorical([0, 1, 2, 0], 3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=["categorical_crossentropy"] * 3,
        loss_weights=[1.0, 0.3, 0.3],
    )
    model.fit(x, [y, y, y], epochs=1, batch_size=4, verbose=0)
    inference = strip_aux(model)
    main, aux1, aux2 = outputs(model, x)
    (stripped,) = outputs(inference, x)
    np.testing.assert_allclose(stripped, main, rtol=1e-5, atol=1e-6)
    assert not np.allclose(main, aux1) and not np.allclose(main, aux2)
    # Same layer objects: the stripped model carries the trained weights.
    assert inference.get_layer("predictions") is model.get_layer("predictions")
    # A model without auxiliary heads is returned as it is.
    assert strip_aux(inference) is inference


def test_googlenet_aux_arguments_are_checked():
    with pytest.raises(ValueError, match="include_top=True.*Received: aux_logits=True"):
        googlenet(aux_logits=True, include_top=False)
    with pytest.raises(ValueError, match=r"at least 65x65.*Received: input_shape=\(64, 64, 3\)"):
        googlenet(aux_logits=True, input_shape=(64, 64, 3))


def test_local_response_norm_matches_tensorflow_and_saves(tmp_path, fresh_session):
    x = random_images((6, 6, 16), n=2, seed=2)
    for alpha in (1e-4, 1e-2):
        ours = keras.ops.convert_to_numpy(
            LocalResponseNorm(size=5, alpha=alpha, beta=0.75, k=2.0)(x)
        )
        ref = tf.nn.local_response_normalization(
            x, depth_radius=2, bias=2.0, alpha=alpha / 5, beta=0.75
        )
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-5)
    assert not np.allclose(ours, x)
    model = googlenet(include_top=False, input_shape=SMALL, lrn=True)
    assert isinstance(model.get_layer("conv1_lrn"), LocalResponseNorm)
    assert isinstance(model.get_layer("conv2_lrn"), LocalResponseNorm)
    path = tmp_path / "googlenet_lrn.keras"
    model.save(path)
    assert_same_outputs(model, keras.saving.load_model(path), random_images(SMALL, n=1))


def test_googlenet_bn_variant(fresh_session):
    bn = googlenet_bn(include_top=False, input_shape=SMALL)
    plain = googlenet(include_top=False, input_shape=SMALL)
    bn_convs = [lyr for lyr in bn.layers if isinstance(lyr, keras.layers.Conv2D)]
    convs = [lyr for lyr in plain.layers if isinstance(lyr, keras.layers.Conv2D)]
    assert len(bn_convs) == len(convs) == 57
    assert not any(c.use_bias for c in bn_convs) and all(c.use_bias for c in convs)
    for conv in bn_convs:
        assert isinstance(
            bn.get_layer(conv.name.replace("_conv", "_bn")), keras.layers.BatchNormalization
        )
    assert bn.get_layer("inception3a_5x5_conv").kernel_size == (5, 5)


# === MobileNet ===


def test_mobilenet_alpha_half_is_thinner(fresh_session):
    v1_full = mobilenet_v1(include_top=False, input_shape=SMALL)
    v1_half = mobilenet_v1(include_top=False, input_shape=SMALL, alpha=0.5)
    assert v1_half.output_shape == (None, 1, 1, 512) and v1_full.output_shape == (None, 1, 1, 1024)
    assert _trainable(v1_half) < _trainable(v1_full) / 2
    v2_full = mobilenet_v2(include_top=False, input_shape=SMALL)
    v2_half = mobilenet_v2(include_top=False, input_shape=SMALL, alpha=0.5)
    assert v2_half.get_layer("block16_project_conv").filters == 160
    assert v2_full.get_layer("block16_project_conv").filters == 320
    # The last 1x1 keeps 1280 channels below alpha=1 (paper, Keras).
    assert v2_half.output_shape == v2_full.output_shape == (None, 1, 1, 1280)
    assert _trainable(v2_half) < _trainable(v2_full)
    (y,) = outputs(mobilenet_v2(input_shape=SMALL, alpha=0.5, classes=4), random_images(SMALL))
    assert y.shape == (2, 4)
    assert make_divisible(1280 * 1.4) == 1792
    with pytest.raises(ValueError, match="Received: alpha=0"):
        mobilenet_v1(alpha=0)


def test_mobilenet_v1_loads_a_keras_weights_file(tmp_path, fresh_session):
    """Same names and layers as keras.applications.MobileNet: its weights file loads."""
    ref = keras.applications.MobileNet(weights=None, include_top=False, input_shape=SMALL)
    _randomize(ref)
    path = tmp_path / "keras_mobilenet.weights.h5"
    ref.save_weights(path)
    ours = mobilenet_v1(include_top=False, input_shape=SMALL, weights=str(path))
    assert [n for n in _names(ref)[1:] if "_pad_" not in n] == _names(ours)[1:]
    x = random_images(SMALL, n=2) / 127.5 - 1.0
    assert_same_outputs(ref, ours, x, rtol=1e-4, atol=1e-5)


def test_mobilenet_v2_matches_keras_and_names_are_consistent(fresh_session):
    ref = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=SMALL)
    _randomize(ref)
    ours = mobilenet_v2(include_top=False, input_shape=SMALL)
    ours.set_weights(ref.get_weights())
    x = random_images(SMALL, n=2) / 127.5 - 1.0
    assert_same_outputs(ref, ours, x, rtol=1e-4, atol=1e-5)
    # One naming scheme (Keras' block numbers), no Keras mixed case names.
    scheme = re.compile(r"^(conv1|block\d+|top)_[a-z_]+$")
    assert all(scheme.match(n) for n in _names(ours)[1:]), _names(ours)
    assert len(_adds(ours)) == len(_adds(ref)) == 10


def _randomize(model: keras.Model, seed: int = 0) -> None:
    """Random values in every weight (moving variances positive) so comparisons mean something."""
    rng = np.random.default_rng(seed)
    new = []
    for w in model.weights:
        value = rng.normal(0.0, 0.1, w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 1.5, w.shape)
        elif "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, w.shape)
        new.append(value.astype("float32"))
    model.set_weights(new)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v1", "mobilenet_v2"])
def test_flatten_pooling_without_input_shape_uses_the_default_size(name):
    """pooling="flatten" needs a known spatial size: with no input_shape the paper's is used."""
    model = build_model(name, include_top=False, pooling="flatten")
    assert None not in model.output_shape[1:], model.output_shape
    keras.backend.clear_session()
