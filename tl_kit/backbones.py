"""One registry of feature extractors: tl_kit's classic builders and every Keras Application.

Names:

- tl_kit's own builders keep their names (``"lenet5"``, ``"vgg16"``, ``"resnet50"``,
  ``"mobilenet_v2"``, ...; see :func:`tl_kit.list_models`);
- every Keras Applications network is ``"keras:"`` + its class name in lower case:
  ``"keras:vgg16"``, ``"keras:resnet50v2"``, ``"keras:efficientnetb0"``,
  ``"keras:efficientnetv2s"``, ``"keras:convnexttiny"``, ``"keras:mobilenetv3small"``,
  ``"keras:nasnetmobile"``. Where no tl_kit builder has the same name the prefix may be
  left out (``"efficientnetb0"``, ``"densenet121"``, ``"xception"``), and the Keras class
  name is accepted too (``"keras:ResNet50V2"``).

``get_backbone(name, weights="imagenet")`` (:func:`resolve_backbone`) moves a tl_kit name
whose builder has no ImageNet weights to its Keras Applications twin (``"resnet50"`` ->
``"keras:resnet50"``), so ``finetune(backbone="resnet50")`` starts from ImageNet.

Blocks are declared once, as data, and read by :func:`assign_blocks` and
:func:`set_trainable_blocks`. A declaration is either

- a list of matchers: a name prefix ending in ``"_"`` (``"block1_"`` never matches
  ``block10_``) or a regex ``"re:..."``. A layer belongs to the first block that matches it;
  an auto-named layer that matches none (``activation_3``, ``add``: Keras names some helper
  layers itself) joins the block of the nearest layer before it in topological order
  (the first block when none precedes it); or
- a list of boundaries ``"upto:LAYER"``: block i is every layer after boundary i-1 up to and
  including ``LAYER``; layers after the last boundary join the last block (InceptionV3 and
  InceptionResNetV2, whose branch layers are all auto-named).
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from tl_kit.models.registry import block_matcher

__all__ = [
    "BackboneSpec",
    "list_backbones",
    "get_backbone",
    "resolve_backbone",
    "assign_blocks",
    "set_trainable_blocks",
    "trainable_params",
]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one feature extractor and how to freeze it block by block.

    Attributes:
        name: registry name (``"vgg16"``, ``"keras:efficientnetb0"``).
        source: ``"tl_kit"`` or ``"keras"``.
        default_size: the network's usual input shape ``(H, W, C)``.
        min_size: the smallest spatial size it accepts.
        preprocess: :class:`tl_kit.layers.Preprocess` mode for raw [0, 255] pixels.
        blocks: ordered block declarations (module docstring).
        default_unfreeze: blocks the ``medium`` recipe unfreezes.
        family: architecture family (``"resnet"``).
        imagenet: whether ImageNet weights are published for it.
        paper: the reference.
        keras_name: the Keras Applications class name (keras entries).
    """

    name: str
    source: str
    default_size: tuple[int, int, int]
    min_size: int
    preprocess: str
    blocks: tuple[str, ...]
    default_unfreeze: int
    family: str
    imagenet: bool = False
    paper: str = ""
    keras_name: str = ""
    _builder: Callable[..., keras.Model] | None = field(default=None, repr=False, compare=False)

    def build(self, input_shape: tuple | None = None, weights: Any = None) -> keras.Model:
        """The feature extractor (``include_top=False``, 4-D output) for ``input_shape``.

        ``weights``: ``None``, ``"imagenet"``, a weights file, a ``.keras`` model or a run
        directory (see :mod:`tl_kit.weights`).
        """
        from tl_kit import weights as W

        shape = tuple(input_shape) if input_shape is not None else tuple(self.default_size)
        if len(shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels) for {self.name!r}. "
                f"Received: input_shape={input_shape!r}"
            )
        for dim in shape[:2]:
            if dim is not None and dim < self.min_size:
                raise ValueError(
                    f"Backbone {self.name!r} needs inputs of at least {self.min_size}x{self.min_size} "
                    f"pixels. Received: input_shape={shape!r}"
                )
        if weights == "imagenet":
            if not self.imagenet:
                raise ValueError(
                    f"No ImageNet weights are published for backbone {self.name!r}. Use "
                    "weights=None, a weights file, a .keras model or a run directory you "
                    f"trained. Received: weights={weights!r}"
                )
            with W.imagenet_download_guard():
                return self._make(shape, "imagenet")
        if weights is None:
            return self._make(shape, None)
        if W.is_weights_source_path(weights):
            return W.load_backbone_weights(self._make(shape, None), weights)
        raise ValueError(
            "The `weights` argument should be None, 'imagenet', a weights file, a .keras model "
            f"or a run directory. Received: weights={weights!r}"
        )

    def _make(self, shape: tuple, weights: str | None) -> keras.Model:
        assert self._builder is not None
        if self.source == "keras":
            return self._builder(include_top=False, weights=weights, input_shape=shape)
        return self._builder(include_top=False, weights=weights, input_shape=shape, pooling=None)


# === Keras Applications: blocks as data ===

_RESNET = ("re:^(conv1_|pool1_)", "conv2_", "conv3_", "conv4_", "conv5_")
_RESNET_V2 = ("re:^(conv1_|pool1_)", "conv2_", "conv3_", "conv4_", "re:^(conv5_|post_)")
_DENSENET = (
    "re:^(conv1_|pool1$)",
    "re:^(conv2_|pool2_)",
    "re:^(conv3_|pool3_)",
    "re:^(conv4_|pool4_)",
    "re:^(conv5_|bn$|relu$)",
)
_MOBILENET = (
    "re:^(conv1(_|$)|conv_(pad|dw|pw)_1(_|$))",
    "re:^conv_(pad|dw|pw)_(2|3)(_|$)",
    "re:^conv_(pad|dw|pw)_(4|5)(_|$)",
    "re:^conv_(pad|dw|pw)_(6|7|8|9|10|11)(_|$)",
    "re:^conv_(pad|dw|pw)_(12|13)(_|$)",
)
# The seven bottleneck stages of the MobileNetV2 paper's table 2 (stem joins the first).
_MOBILENET_V2 = (
    "re:^(Conv1|bn_Conv1|expanded_conv_)",
    "re:^block_(1|2)_",
    "re:^block_(3|4|5)_",
    "re:^block_(6|7|8|9)_",
    "re:^block_(10|11|12)_",
    "re:^block_(13|14|15)_",
    "re:^(block_16_|Conv_1|out_relu)",
)
# Stages between the stride-2 bottlenecks (Howard et al. 2019, tables 1 and 2).
_MOBILENET_V3_SMALL = (
    "re:^(conv|conv_bn)$|^expanded_conv_[a-z]",
    "re:^expanded_conv_(1|2)_",
    "re:^expanded_conv_[3-7]_",
    "re:^(expanded_conv_(8|9|10)_|conv_1)",
)
_MOBILENET_V3_LARGE = (
    "re:^(conv|conv_bn)$|^expanded_conv_[a-z]",
    "re:^expanded_conv_(1|2)_",
    "re:^expanded_conv_[3-5]_",
    "re:^expanded_conv_([6-9]|10|11)_",
    "re:^(expanded_conv_(12|13|14)_|conv_1)",
)
_XCEPTION = tuple(f"block{i}_" for i in range(1, 15))
_INCEPTION_V3 = tuple(f"upto:mixed{i}" for i in range(11))
_INCEPTION_RESNET_V2 = (
    "upto:mixed_5b",
    "upto:block35_10_ac",
    "upto:mixed_6a",
    "upto:block17_20_ac",
    "upto:mixed_7a",
    "upto:conv_7b_ac",
)
_CONVNEXT = (
    "re:^convnext_[a-z]+_(prestem|stem|stage_0_)",
    "re:^convnext_[a-z]+_(downsampling_block_0|stage_1_)",
    "re:^convnext_[a-z]+_(downsampling_block_1|stage_2_)",
    "re:^convnext_[a-z]+_(downsampling_block_2|stage_3_)",
)


def _efficientnet_blocks(stages: int) -> tuple[str, ...]:
    body = tuple(f"re:^block{i}[a-z]_" for i in range(1, stages))
    return ("re:^stem_", *body, f"re:^(block{stages}[a-z]_|top_)")


# NASNet names its layers after their cell: "..._stem_1", "..._0" (normal cell 0),
# "..._reduce_4". Keras's own auto-names (activation_12, add_3) are left to position.
_NASNET_AUTO = r"(?!(activation|add|zero_padding2d|cropping2d|concatenate)(_\d+)?$)"


def _nasnet_blocks(num_blocks: int) -> tuple[str, ...]:
    def cells(ids: range) -> str:
        return "|".join(str(i) for i in ids)

    n = num_blocks
    cell = rf"re:^{_NASNET_AUTO}.*(?<!stem)(?<!reduce)_({{}})$"
    return (
        r"re:^stem_|_stem_(1|2)$",
        cell.format(cells(range(0, n))),
        rf"re:^{_NASNET_AUTO}.*(_reduce_{n}|(?<!stem)(?<!reduce)_({cells(range(n + 1, 2 * n + 1))}))$",
        rf"re:^{_NASNET_AUTO}.*(_reduce_{2 * n}|(?<!stem)(?<!reduce)_({cells(range(2 * n + 1, 3 * n + 1))}))$",
    )


_P_VGG = "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015"
_P_RES = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
_P_RES2 = "He et al., Identity Mappings in Deep Residual Networks, ECCV 2016"
_P_INC3 = "Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016"
_P_IRV2 = "Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections, AAAI 2017"
_P_XCE = "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017"
_P_MN1 = "Howard et al., MobileNets: Efficient CNNs for Mobile Vision Applications, 2017"
_P_MN2 = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"
_P_MN3 = "Howard et al., Searching for MobileNetV3, ICCV 2019"
_P_DEN = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"
_P_EFF = "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019"
_P_EFF2 = "Tan & Le, EfficientNetV2: Smaller Models and Faster Training, ICML 2021"
_P_CNX = "Liu et al., A ConvNet for the 2020s, CVPR 2022"
_P_NAS = "Zoph et al., Learning Transferable Architectures for Scalable Image Recognition, CVPR 2018"

# class name: (default size, min size, preprocess, blocks, default_unfreeze, family, paper)
_KERAS_APPS: dict[str, tuple] = {
    "VGG16": (224, 32, "caffe", tuple(f"block{i}_" for i in range(1, 6)), 1, "vgg", _P_VGG),
    "VGG19": (224, 32, "caffe", tuple(f"block{i}_" for i in range(1, 6)), 1, "vgg", _P_VGG),
    "ResNet50": (224, 32, "caffe", _RESNET, 1, "resnet", _P_RES),
    "ResNet101": (224, 32, "caffe", _RESNET, 1, "resnet", _P_RES),
    "ResNet152": (224, 32, "caffe", _RESNET, 1, "resnet", _P_RES),
    "ResNet50V2": (224, 32, "tf", _RESNET_V2, 1, "resnet_v2", _P_RES2),
    "ResNet101V2": (224, 32, "tf", _RESNET_V2, 1, "resnet_v2", _P_RES2),
    "ResNet152V2": (224, 32, "tf", _RESNET_V2, 1, "resnet_v2", _P_RES2),
    "InceptionV3": (299, 75, "tf", _INCEPTION_V3, 2, "inception_v3", _P_INC3),
    "InceptionResNetV2": (299, 75, "tf", _INCEPTION_RESNET_V2, 1, "inception_resnet_v2", _P_IRV2),
    "Xception": (299, 71, "tf", _XCEPTION, 2, "xception", _P_XCE),
    "MobileNet": (224, 32, "tf", _MOBILENET, 1, "mobilenet", _P_MN1),
    "MobileNetV2": (224, 32, "tf", _MOBILENET_V2, 2, "mobilenet_v2", _P_MN2),
    "MobileNetV3Small": (224, 32, "none", _MOBILENET_V3_SMALL, 1, "mobilenet_v3", _P_MN3),
    "MobileNetV3Large": (224, 32, "none", _MOBILENET_V3_LARGE, 1, "mobilenet_v3", _P_MN3),
    "DenseNet121": (224, 32, "torch", _DENSENET, 1, "densenet", _P_DEN),
    "DenseNet169": (224, 32, "torch", _DENSENET, 1, "densenet", _P_DEN),
    "DenseNet201": (224, 32, "torch", _DENSENET, 1, "densenet", _P_DEN),
    "NASNetMobile": (224, 32, "tf", _nasnet_blocks(4), 1, "nasnet", _P_NAS),
    "NASNetLarge": (331, 32, "tf", _nasnet_blocks(6), 1, "nasnet", _P_NAS),
}
for _size, _cls in zip((224, 240, 260, 300, 380, 456, 528, 600), range(8), strict=True):
    _KERAS_APPS[f"EfficientNetB{_cls}"] = (_size, 32, "none", _efficientnet_blocks(7), 2, "efficientnet", _P_EFF)
for _v2, _size, _stages in (
    ("B0", 224, 6), ("B1", 240, 6), ("B2", 260, 6), ("B3", 300, 6),
    ("S", 384, 6), ("M", 480, 7), ("L", 480, 7),
):
    _KERAS_APPS[f"EfficientNetV2{_v2}"] = (
        _size, 32, "none", _efficientnet_blocks(_stages), 2, "efficientnet_v2", _P_EFF2,
    )
for _cnx in ("Tiny", "Small", "Base", "Large", "XLarge"):
    _KERAS_APPS[f"ConvNeXt{_cnx}"] = (224, 32, "none", _CONVNEXT, 1, "convnext", _P_CNX)

# tl_kit builders without ImageNet weights -> the Keras Application with the same network.
KERAS_TWINS = {
    "resnet50": "keras:resnet50",
    "resnet101": "keras:resnet101",
    "resnet152": "keras:resnet152",
    "mobilenet_v1": "keras:mobilenet",
    "mobilenet_v2": "keras:mobilenetv2",
    "vgg16": "keras:vgg16",
    "vgg19": "keras:vgg19",
}

_REGISTRY: dict[str, BackboneSpec] = {}
_ALIASES: dict[str, str] = {}


def _keras_builder(class_name: str) -> Callable[..., keras.Model]:
    def build(**kwargs: Any) -> keras.Model:
        return getattr(keras.applications, class_name)(**kwargs)

    build.__name__ = class_name
    return build


def _tl_kit_has_imagenet(spec) -> bool:
    # A tl_kit builder module that loads Keras's ImageNet files lists them in IMAGENET_WEIGHTS,
    # keyed by (name, include_top).
    table = getattr(sys.modules.get(spec.builder.__module__), "IMAGENET_WEIGHTS", None) or {}
    return (spec.name, False) in table


def _load() -> None:
    if _REGISTRY:
        return
    from tl_kit.models.registry import get_spec, list_models

    for name in list_models():
        spec = get_spec(name)
        _REGISTRY[name] = BackboneSpec(
            name=name,
            source="tl_kit",
            default_size=tuple(spec.default_size),
            min_size=spec.min_size,
            preprocess=spec.preprocess,
            blocks=tuple(spec.blocks),
            default_unfreeze=spec.default_unfreeze,
            family=spec.family,
            imagenet=_tl_kit_has_imagenet(spec),
            paper=spec.paper,
            _builder=spec.builder,
        )
    for cls, (size, min_size, prep, blocks, unfreeze, family, paper) in _KERAS_APPS.items():
        name = "keras:" + cls.lower()
        _REGISTRY[name] = BackboneSpec(
            name=name,
            source="keras",
            default_size=(size, size, 3),
            min_size=min_size,
            preprocess=prep,
            blocks=blocks,
            default_unfreeze=unfreeze,
            family=family,
            imagenet=True,
            paper=paper,
            keras_name=cls,
            _builder=_keras_builder(cls),
        )
        short = cls.lower()
        if short not in _REGISTRY:
            _ALIASES[short] = name


# Where a user finds every name (the did-you-mean error of an unknown name points there).
BACKBONES_LISTED = "tl-kit models lists them, tl-kit weights list the keras: ones"


def list_backbones(pattern: str = "*") -> list[str]:
    """Backbone names matching a shell-style ``pattern`` (``"keras:efficientnet*"``), sorted."""
    _load()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_backbone(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` for ``name`` (aliases and Keras class names accepted)."""
    _load()
    if isinstance(name, BackboneSpec):
        return name
    key = str(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    low = key.lower()
    if low in _REGISTRY:
        return _REGISTRY[low]
    if low in _ALIASES:
        return _REGISTRY[_ALIASES[low]]
    if ("keras:" + low.removeprefix("keras:")) in _REGISTRY:
        return _REGISTRY["keras:" + low.removeprefix("keras:")]
    from tl_kit.errors import unknown_name

    raise unknown_name("backbone", key, _REGISTRY, BACKBONES_LISTED, "backbone")


def resolve_backbone(name: str, weights: Any = None) -> tuple[BackboneSpec, str]:
    """The spec to build for ``name`` and ``weights``, and a note when it was redirected.

    With ``weights="imagenet"``, a tl_kit builder without ImageNet weights moves to its Keras
    Applications twin (same network, published weights).
    """
    spec = get_backbone(name)
    if weights == "imagenet" and not spec.imagenet and spec.name in KERAS_TWINS:
        twin = get_backbone(KERAS_TWINS[spec.name])
        return twin, (
            f"tl_kit's {spec.name!r} has no ImageNet weights; using Keras Applications' "
            f"{twin.keras_name} ({twin.name!r}), the same network with published weights."
        )
    return spec, ""


# === Blocks ===


def _is_input(layer) -> bool:
    return isinstance(layer, keras.layers.InputLayer)


def assign_blocks(model: keras.Model, blocks: tuple[str, ...] | list[str]) -> list[list]:
    """Split ``model.layers`` (input layers excepted) into the declared ``blocks``.

    Returns one list of layers per declaration, in the declared order (see the module
    docstring for the rules).
    """
    blocks = tuple(blocks)
    if not blocks:
        raise ValueError(f"No blocks declared for {model.name!r}. Received: blocks={blocks!r}")
    layers = [layer for layer in model.layers if not _is_input(layer)]
    groups: list[list] = [[] for _ in blocks]
    uptos = [b.startswith("upto:") for b in blocks]
    if any(uptos):
        if not all(uptos):
            raise ValueError(
                "Block declarations must be all 'upto:' boundaries or all prefixes/regexes. "
                f"Received: blocks={blocks!r}"
            )
        names = [b[5:] for b in blocks]
        current = 0
        for layer in layers:
            groups[current].append(layer)
            if layer.name == names[current] and current < len(blocks) - 1:
                current += 1
        return groups
    matchers = [block_matcher(b) for b in blocks]
    last: int | None = None
    pending: list = []
    for layer in layers:
        index = next((i for i, m in enumerate(matchers) if m(layer.name)), None)
        if index is None:
            if last is None:
                pending.append(layer)
            else:
                groups[last].append(layer)
            continue
        if last is None and pending:
            groups[0].extend(pending)
            pending = []
        groups[index].append(layer)
        last = index
    groups[0].extend(pending)
    return groups


def matched_by_declaration(layer_name: str, declaration: str) -> bool:
    """Whether a layer name is named by the declaration itself (not placed by position)."""
    if declaration.startswith("upto:"):
        return layer_name == declaration[5:]
    return block_matcher(declaration)(layer_name)


def trainable_params(model: keras.Model) -> int:
    """Number of trainable parameters."""
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


def set_trainable_blocks(
    model: keras.Model,
    blocks: tuple[str, ...] | list[str],
    n: int | str,
    train_bn: bool = False,
) -> int:
    """Make the last ``n`` non-empty blocks trainable (0: none, ``"all"``: every layer).

    BatchNormalization layers stay frozen unless ``train_bn=True`` (they also run in
    inference mode: the learner calls the backbone with ``training=False``). Returns the
    number of trainable parameters of ``model`` afterwards.
    """
    if n == "all":
        model.trainable = True
        for layer in _all_layers(model):
            layer.trainable = train_bn or not isinstance(layer, keras.layers.BatchNormalization)
        return trainable_params(model)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(
            f"`n` must be a non-negative integer or 'all'. Received: n={n!r}"
        )
    groups = [g for g in assign_blocks(model, blocks) if g]
    if n > len(groups):
        raise ValueError(
            f"{model.name!r} has {len(groups)} blocks; cannot unfreeze {n}. Received: n={n}"
        )
    model.trainable = True
    for layer in model.layers:
        layer.trainable = False
    for group in groups[len(groups) - n:] if n else []:
        for layer in group:
            layer.trainable = True
            for sub in _all_layers(layer):
                if isinstance(sub, keras.layers.BatchNormalization) and not train_bn:
                    sub.trainable = False
    return trainable_params(model)


def _all_layers(layer) -> list:
    return list(layer._flatten_layers(include_self=True, recursive=True))


def describe_blocks(model: keras.Model, blocks: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """``(declaration, layer count, parameter count)`` per block, for logs."""
    out = []
    for decl, group in zip(blocks, assign_blocks(model, blocks), strict=True):
        out.append((decl, len(group), int(sum(layer.count_params() for layer in group if layer.weights))))
    return out
