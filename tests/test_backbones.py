"""Backbone registry: every backbone builds, every block matches layers, freezing is exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.backbones import (
    assign_blocks,
    get_backbone,
    list_backbones,
    matched_by_declaration,
    resolve_backbone,
    set_trainable_blocks,
    trainable_params,
)

# One Keras Application per naming structure is built in the default run; the deeper
# siblings (same layer-naming generator, same block declaration) run under the slow marker.
KERAS_FAST = [
    "keras:vgg16", "keras:vgg19", "keras:resnet50", "keras:resnet50v2", "keras:inceptionv3",
    "keras:inceptionresnetv2", "keras:xception", "keras:mobilenet", "keras:mobilenetv2",
    "keras:mobilenetv3small", "keras:mobilenetv3large", "keras:densenet121",
    "keras:efficientnetb0", "keras:efficientnetv2b0", "keras:convnexttiny",
    "keras:nasnetmobile", "keras:nasnetlarge",
]
SIBLING_OF = {
    "keras:resnet101": "keras:resnet50", "keras:resnet152": "keras:resnet50",
    "keras:resnet101v2": "keras:resnet50v2", "keras:resnet152v2": "keras:resnet50v2",
    "keras:densenet169": "keras:densenet121", "keras:densenet201": "keras:densenet121",
    **{f"keras:efficientnetb{i}": "keras:efficientnetb0" for i in range(1, 8)},
    **{f"keras:efficientnetv2{v}": "keras:efficientnetv2b0" for v in ("b1", "b2", "b3", "s")},
    "keras:efficientnetv2m": "keras:efficientnetb0", "keras:efficientnetv2l": "keras:efficientnetb0",
    **{f"keras:convnext{v}": "keras:convnexttiny" for v in ("small", "base", "large", "xlarge")},
}
TL_KIT = [n for n in list_backbones() if not n.startswith("keras:")]


def test_registry_covers_every_keras_application_and_tl_kit_builder():
    from tl_kit.models.registry import list_models

    keras_names = {n for n in list_backbones("keras:*")}
    assert keras_names == set(KERAS_FAST) | set(SIBLING_OF)
    assert len(keras_names) == 40
    assert set(TL_KIT) == set(list_models())
    for name in list_backbones():
        spec = get_backbone(name)
        assert spec.preprocess in ("unit", "tf", "caffe", "torch", "none")
        assert 1 <= spec.default_unfreeze <= len(spec.blocks)


def test_siblings_share_the_declaration_of_the_tested_backbone():
    for name, sibling in SIBLING_OF.items():
        assert get_backbone(name).blocks == get_backbone(sibling).blocks, name
        assert get_backbone(name).preprocess == get_backbone(sibling).preprocess, name


def test_one_registration_per_backbone():
    """tl_kit's builders and the Keras Applications are one registry; blocks shared by
    networks with the same layer names are declared once."""
    from tl_kit.models import get_spec
    from tl_kit.models.efficientnet_lite import BLOCKS as LITE_BLOCKS
    from tl_kit.models.resnet import BLOCKS as RESNET_BLOCKS
    from tl_kit.models.vgg import BLOCKS as VGG_BLOCKS

    for name in ("keras:resnet50", "keras:resnet101", "keras:resnet152", "resnet18", "resnet50"):
        assert get_backbone(name).blocks is RESNET_BLOCKS, name
    assert get_backbone("keras:vgg16").blocks is VGG_BLOCKS is get_backbone("vgg16").blocks
    assert get_backbone("keras:efficientnetb0").blocks == LITE_BLOCKS
    spec = get_spec("resnet50")
    view = get_backbone("resnet50")
    assert (view.default_size, view.min_size, view.preprocess, view.family, view.paper) == (
        spec.default_size, spec.min_size, spec.preprocess, spec.family, spec.paper)
    assert view.builder is spec.builder and view.imagenet_twin == "keras:resnet50"
    assert get_backbone("keras:resnet50").keras_name == "ResNet50"
    with pytest.raises(ValueError, match="Unknown model 'keras:resnet50'"):
        get_spec("keras:resnet50")  # build_model / list_models: tl_kit's builders only


def test_names_aliases_and_imagenet_twins():
    assert get_backbone("EfficientNetB0").name == "keras:efficientnetb0"
    assert get_backbone("keras:ResNet50V2").name == "keras:resnet50v2"
    assert get_backbone("vgg16").source == "tl_kit"
    assert get_backbone("keras:vgg16").source == "keras"
    spec, note = resolve_backbone("resnet50", "imagenet")
    assert spec.name == "keras:resnet50" and "ImageNet" in note
    spec, note = resolve_backbone("resnet50", None)
    assert spec.name == "resnet50" and note == ""
    assert resolve_backbone("vgg16", "imagenet")[0].name == "vgg16"  # loads Keras's files itself
    with pytest.raises(ValueError, match="Unknown backbone 'nope'"):
        get_backbone("nope")
    # preprocessing of Keras entries matches keras.applications' preprocess_input
    assert get_backbone("keras:vgg16").preprocess == "caffe"
    assert get_backbone("keras:densenet121").preprocess == "torch"
    assert get_backbone("keras:xception").preprocess == "tf"
    assert get_backbone("keras:efficientnetb0").preprocess == "none"


def _check_blocks(name: str) -> None:
    keras.backend.clear_session()
    spec = get_backbone(name)
    size = max(spec.min_size, 32)
    model = spec.build((size, size, spec.default_size[2]), weights=None)
    assert len(model.output.shape) == 4
    groups = assign_blocks(model, spec.blocks)
    assert len(groups) == len(spec.blocks)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    # every layer in exactly one block; every block named by its own declaration
    assert sorted(id(x) for g in groups for x in g) == sorted(id(x) for x in layers)
    for decl, group in zip(spec.blocks, groups, strict=True):
        assert any(matched_by_declaration(x.name, decl) for x in group), (name, decl)
        assert any(x.weights for x in group), (name, decl)
    # unfreezing the last n blocks makes exactly those layers trainable
    for n in range(len(groups) + 1):
        set_trainable_blocks(model, spec.blocks, n)
        expected = {id(x) for g in groups[len(groups) - n:] for x in g} if n else set()
        for layer in layers:
            want = id(layer) in expected and not isinstance(layer, keras.layers.BatchNormalization)
            assert layer.trainable == want, (name, n, layer.name)
    trainable = set_trainable_blocks(model, spec.blocks, "all", train_bn=True)
    assert trainable == trainable_params(model) > 0
    keras.backend.clear_session()


@pytest.mark.parametrize("name", TL_KIT + KERAS_FAST)
def test_blocks_match_and_unfreeze_exactly(name):
    _check_blocks(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIBLING_OF))
def test_blocks_match_and_unfreeze_exactly_deep_siblings(name):
    _check_blocks(name)


def test_block_contents_follow_the_architecture():
    keras.backend.clear_session()
    m = get_backbone("keras:inceptionv3").build((75, 75, 3))
    groups = assign_blocks(m, get_backbone("keras:inceptionv3").blocks)
    assert groups[-1][-1].name == "mixed10" and "mixed9_1" in [x.name for x in groups[-1]]
    assert groups[-2][-1].name == "mixed9"
    keras.backend.clear_session()
    m = get_backbone("keras:xception").build((71, 71, 3))
    groups = assign_blocks(m, get_backbone("keras:xception").blocks)
    # the auto-named residual convolution of block 2 sits with block 2
    assert {x.name for x in groups[1]} >= {"block2_pool", "conv2d", "batch_normalization", "add"}
    keras.backend.clear_session()


def test_batchnorm_stays_frozen_unless_train_bn():
    keras.backend.clear_session()
    spec = get_backbone("keras:resnet50")
    m = spec.build((32, 32, 3))
    set_trainable_blocks(m, spec.blocks, 1)
    bn = m.get_layer("conv5_block1_1_bn")
    assert not bn.trainable and m.get_layer("conv5_block1_1_conv").trainable
    set_trainable_blocks(m, spec.blocks, 1, train_bn=True)
    assert bn.trainable
    with pytest.raises(ValueError, match="cannot unfreeze 9"):
        set_trainable_blocks(m, spec.blocks, 9)
    keras.backend.clear_session()


def test_build_checks_min_size_and_loads_weights_file(tmp_path):
    spec = get_backbone("lenet5")
    with pytest.raises(ValueError, match="at least 16x16"):
        spec.build((8, 8, 1))
    a = spec.build((32, 32, 1))
    a.set_weights([np.random.default_rng(0).normal(size=w.shape) for w in a.get_weights()])
    path = tmp_path / "lenet.weights.h5"
    a.save_weights(path)
    b = spec.build((32, 32, 1), weights=str(path))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb)
    with pytest.raises(ValueError, match="No ImageNet weights"):
        spec.build((32, 32, 1), weights="imagenet")
