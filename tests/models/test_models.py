"""One suite over every registered tl_kit builder (``tl_kit.models.list_models()``).

Each model is built once at a small size without the top (module-scoped fixture), and
that build is shared by the shape, block, config and save/load checks. Full-size builds
only count parameters (and run one forward pass of the default configuration).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_same_outputs, outputs, random_images, small_input_shape

from tl_kit.models import registry
from tl_kit.models.blocks import block_matcher
from tl_kit.models.registry import (
    ParamCheck,
    build_model,
    get_spec,
    list_models,
    register_model,
)

MODEL_NAMES = list_models()
POOLED = ("avg", "max", "flatten")
SLOW_PARAMS = 50_000_000


def _param_cases():
    cases = []
    for name in MODEL_NAMES:
        for i, check in enumerate(get_spec(name).param_checks):
            marks = [pytest.mark.slow] if check.expected > SLOW_PARAMS else []
            cases.append(pytest.param(name, i, marks=marks, id=f"{name}-{i}"))
    return cases


@pytest.fixture(scope="module", params=MODEL_NAMES)
def backbone(request):
    """``(spec, model)``: the model built with include_top=False at its small input size."""
    keras.backend.clear_session()
    spec = get_spec(request.param)
    model = spec.build(include_top=False, input_shape=small_input_shape(spec))
    yield spec, model
    keras.backend.clear_session()


def test_registry_lists_the_classic_families():
    for name in ("lenet5", "alexnet", "zfnet", "vgg16", "vgg19"):
        assert name in MODEL_NAMES
    assert list_models("vgg1*") == sorted(n for n in MODEL_NAMES if n.startswith("vgg1"))


def test_specs_are_consistent():
    for name in MODEL_NAMES:
        spec = get_spec(name)
        assert spec.name == name
        assert len(spec.default_size) == 3 and spec.default_size[2] in (1, 3)
        assert 1 <= spec.min_size <= min(spec.default_size[:2])
        assert spec.blocks and len(set(spec.blocks)) == len(spec.blocks)
        for block in spec.blocks:
            assert block.startswith("re:") or block.endswith("_"), (name, block)
        assert 1 <= spec.default_unfreeze <= len(spec.blocks)
        assert spec.preprocess in ("unit", "tf", "caffe", "torch", "none")
        assert spec.param_checks, f"{name} declares no parameter count"
        assert spec.paper


def test_backbone_output_is_a_feature_map(backbone):
    spec, model = backbone
    shape = small_input_shape(spec)
    assert len(model.output_shape) == 4
    assert all(d is not None and d >= 1 for d in model.output_shape[1:])
    (y,) = outputs(model, random_images(shape))
    assert y.shape == (2, *model.output_shape[1:])
    assert np.isfinite(y).all()


def test_backbone_accepts_its_min_size_and_rejects_smaller(backbone):
    spec, model = backbone
    c = spec.default_size[2]
    if small_input_shape(spec)[0] != spec.min_size:
        model = spec.build(include_top=False, input_shape=(spec.min_size, spec.min_size, c))
    assert model.input_shape[1:3] == (spec.min_size, spec.min_size)
    assert all(d >= 1 for d in model.output_shape[1:3])
    if spec.min_size > 1:
        small = (spec.min_size - 1, spec.min_size - 1, c)
        with pytest.raises(ValueError, match="Received: input_shape"):
            spec.build(include_top=False, input_shape=small)


@pytest.mark.parametrize("pooling", POOLED)
def test_backbone_pooling(backbone, pooling):
    spec, base = backbone
    shape = small_input_shape(spec)
    _, h, w, c = base.output_shape
    expected = (None, h * w * c) if pooling == "flatten" else (None, c)
    if pooling == "max":  # also covers a user-supplied input tensor
        tensor = keras.Input(shape=shape)
        model = spec.build(include_top=False, input_tensor=tensor, pooling=pooling)
        assert model.inputs[0] is tensor
    else:
        model = spec.build(include_top=False, input_shape=shape, pooling=pooling)
    assert model.output_shape == expected
    (y,) = outputs(model, random_images(shape, n=1))
    assert y.shape == (1, *expected[1:])
    # Pooling only adds a parameter-free layer.
    assert model.count_params() == base.count_params()


def test_invalid_pooling_is_rejected():
    with pytest.raises(ValueError, match="Received: pooling='mean'"):
        build_model(MODEL_NAMES[0], include_top=False, pooling="mean")


def test_blocks_match_layers_in_topological_order(backbone):
    spec, model = backbone
    matchers = [block_matcher(b) for b in spec.blocks]
    owner = {}
    for index, layer in enumerate(model.layers):
        for b, match in enumerate(matchers):
            if match(layer.name):
                owner.setdefault(b, []).append(index)
                break
    for b, block in enumerate(spec.blocks):
        assert b in owner, f"{spec.name}: block {block!r} matches no layer"
    for b in range(len(spec.blocks) - 1):
        assert max(owner[b]) < min(owner[b + 1]), (
            f"{spec.name}: block {spec.blocks[b]!r} has layers after {spec.blocks[b + 1]!r}"
        )
    # The last block owns weights, so "unfreeze the last N blocks" always trains something.
    last = [model.layers[i] for i in owner[len(spec.blocks) - 1]]
    assert any(layer.weights for layer in last)


def test_config_round_trip(backbone):
    spec, model = backbone
    config = model.get_config()
    clone = model.__class__.from_config(config)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params()
    clone.set_weights(model.get_weights())
    assert_same_outputs(model, clone, random_images(small_input_shape(spec), n=1))


def test_keras_file_save_load(backbone, tmp_path):
    spec, model = backbone
    path = tmp_path / f"{spec.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert_same_outputs(model, loaded, random_images(small_input_shape(spec), n=1))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_classifier_top(name, fresh_session):
    """With the top (logits): works at the small size, or fails clearly (fixed FC top)."""
    spec = get_spec(name)
    shape = small_input_shape(spec)
    try:
        model = spec.build(input_shape=shape, classes=3, classifier_activation=None)
    except ValueError as err:
        # Fully connected classifiers fix the input size; the message must say what to do.
        assert "include_top=False" in str(err) and "Received: input_shape" in str(err)
        assert shape[:2] != spec.default_size[:2]
        return
    for out in model.outputs:
        assert tuple(out.shape) == (None, 3)
    assert model.get_layer("predictions").get_config()["activation"] == "linear"
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    ys = outputs(model, random_images(shape, n=2))
    assert ys[0].shape == (2, 3) and np.isfinite(ys[0]).all()


@pytest.mark.parametrize(("name", "index"), _param_cases())
def test_parameter_count(name, index, fresh_session):
    spec = get_spec(name)
    check: ParamCheck = spec.param_checks[index]
    kwargs = dict(check.kwargs)
    if kwargs.get("include_top", True):
        kwargs.setdefault("classes", check.classes)
    if check.input_shape is not None:
        kwargs.setdefault("input_shape", check.input_shape)
    model = spec.build(**kwargs)
    if check.trainable_only:
        count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    else:
        count = model.count_params()
    assert count == check.expected, f"{name} {check.kwargs}: {count:,} != {check.expected:,}"
    if index == 0 and kwargs.get("include_top", True):
        # The paper's configuration also runs: one image at the full size, with the top.
        shape = check.input_shape or spec.default_size
        for out in model.outputs:
            assert tuple(out.shape) == (None, check.classes)
        ys = outputs(model, random_images(shape, n=1))
        assert ys[0].shape == (1, check.classes) and np.isfinite(ys[0]).all()
        np.testing.assert_allclose(ys[0].sum(), 1.0, rtol=1e-4)  # softmax by default


def test_registry_rejects_duplicate_names(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    taken = MODEL_NAMES[0]
    with pytest.raises(ValueError, match=f"'{taken}' is already registered"):
        register_model(taken, default_size=(32, 32, 3), min_size=32, blocks=("block1_",))(
            lambda **kw: None
        )
    # A new name registers (in the patched copy only).
    register_model("tiny_test_net", default_size=(8, 8, 1), min_size=8, blocks=("b_",))(
        lambda **kw: "built"
    )
    assert build_model("tiny_test_net") == "built"


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"Unknown model 'vgg61'.*vgg16.*Received: name='vgg61'"):
        get_spec("vgg61")
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        build_model("nope", include_top=False)
    assert "tiny_test_net" not in list_models()


def test_keras_vgg16_weight_file_loads_by_name(tmp_path, fresh_session):
    """A VGG16 weights file written by keras.applications gives identical outputs here."""
    shape = (32, 32, 3)
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=shape)
    path = tmp_path / "keras_vgg16_notop.weights.h5"
    reference.save_weights(path)
    ours = build_model("vgg16", include_top=False, input_shape=shape, weights=str(path))
    assert [layer.name for layer in ours.layers[1:]] == [
        layer.name for layer in reference.layers[1:]
    ]
    assert_same_outputs(reference, ours, random_images(shape), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_keras_vgg16_full_weight_file_loads_with_top(tmp_path, fresh_session):
    reference = keras.applications.VGG16(weights=None)
    path = tmp_path / "keras_vgg16.weights.h5"
    reference.save_weights(path)
    ours = build_model("vgg16", weights=str(path))
    assert [layer.name for layer in ours.layers[1:]] == [
        layer.name for layer in reference.layers[1:]
    ]
    x = random_images((224, 224, 3), n=1)
    assert_same_outputs(reference, ours, x, rtol=1e-5, atol=1e-7)
