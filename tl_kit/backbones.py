"""Backbones by name: every tl_kit builder and every Keras Application as a feature extractor.

Names:

- tl_kit's own builders keep their names (``"lenet5"``, ``"vgg16"``, ``"resnet50"``,
  ``"mobilenet_v2"``, ...; see :func:`tl_kit.list_models`);
- every Keras Applications network is ``"keras:"`` + its class name in lower case:
  ``"keras:vgg16"``, ``"keras:resnet50v2"``, ``"keras:efficientnetb0"``,
  ``"keras:efficientnetv2s"``, ``"keras:convnexttiny"``, ``"keras:mobilenetv3small"``,
  ``"keras:nasnetmobile"``. Where no tl_kit builder has the same name the prefix may be
  left out (``"efficientnetb0"``, ``"densenet121"``, ``"xception"``), and the Keras class
  name is accepted too (``"keras:ResNet50V2"``).

Each backbone is registered once, in :mod:`tl_kit.models.registry` (tl_kit's builders in
their family modules, Keras Applications in :mod:`tl_kit.models.keras_apps`);
:func:`get_backbone` shows that entry as a :class:`BackboneSpec`.

``get_backbone(name, weights="imagenet")`` (:func:`resolve_backbone`) moves a tl_kit name
whose builder has no ImageNet weights to its Keras Applications twin (``"resnet50"`` ->
``"keras:resnet50"``), so ``finetune(backbone="resnet50")`` starts from ImageNet.

Blocks (for "unfreeze the last N") are declared with each registration and read by
:func:`assign_blocks` and :func:`set_trainable_blocks` (:mod:`tl_kit.models.blocks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from tl_kit import weights as W
from tl_kit.errors import UserError
from tl_kit.models.blocks import (
    assign_blocks,
    matched_by_declaration,
    set_trainable_blocks,
    trainable_params,
)
from tl_kit.models.registry import (
    BACKBONES_LISTED,
    ModelSpec,
    backbone_names,
    backbone_spec,
    feature_extractor,
)

__all__ = [
    "BackboneSpec",
    "list_backbones",
    "get_backbone",
    "resolve_backbone",
    "assign_blocks",
    "matched_by_declaration",
    "set_trainable_blocks",
    "trainable_params",
    "BACKBONES_LISTED",
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
        blocks: ordered block declarations (:mod:`tl_kit.models.blocks`).
        default_unfreeze: blocks the ``medium`` recipe unfreezes.
        family: architecture family (``"resnet"``).
        imagenet: whether ImageNet weights are published for it.
        paper: the reference.
        keras_name: the Keras Applications class name (keras entries).
        imagenet_twin: the Keras Application used for ``weights="imagenet"`` when this
            backbone has no ImageNet weights (:func:`resolve_backbone`).
        builder: the keras.applications-style function that builds it; a spec made with
            ``dataclasses.replace(spec, builder=...)`` builds with another one.
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
    imagenet_twin: str = ""
    builder: Callable[..., keras.Model] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, spec: ModelSpec) -> BackboneSpec:
        """The backbone view of a registered :class:`~tl_kit.models.registry.ModelSpec`."""
        return cls(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(cls)})

    def build(self, input_shape: tuple | None = None, weights: Any = None) -> keras.Model:
        """The feature extractor (``include_top=False``, 4-D output) for ``input_shape``.

        ``weights``: ``None``, ``"imagenet"``, a weights file, a ``.keras`` model or a run
        directory (see :mod:`tl_kit.weights`).
        """
        shape = self._check_shape(input_shape)
        if weights == "imagenet":
            if not self.imagenet:
                raise UserError(
                    f"No ImageNet weights are published for backbone {self.name!r}. Use "
                    "weights=None, a weights file, a .keras model or a run directory you "
                    f"trained. Received: weights={weights!r}"
                )
            with W.imagenet_download_guard():
                return feature_extractor(self, shape, "imagenet")
        if weights is None:
            return feature_extractor(self, shape)
        if W.is_weights_source_path(weights):
            return W.load_backbone_weights(feature_extractor(self, shape), weights)
        raise UserError(
            "The `weights` argument should be None, 'imagenet', a weights file, a .keras model "
            f"or a run directory. Received: weights={weights!r}"
        )

    def _check_shape(self, input_shape: tuple | None) -> tuple:
        shape = tuple(input_shape) if input_shape is not None else tuple(self.default_size)
        if len(shape) != 3:
            raise UserError(
                f"`input_shape` must be (height, width, channels) for {self.name!r}. "
                f"Received: input_shape={input_shape!r}"
            )
        self.check_input_size(shape)
        return shape

    def check_input_size(self, size: Sequence[int | None], *, argument: str = "input_shape",
                         received: str | None = None) -> None:
        """A one-line UserError when a side of ``size`` ((H, W) or (H, W, C)) is below
        :attr:`min_size`; ``argument``/``received`` say what the user gave. Builds nothing."""
        for dim in tuple(size)[:2]:
            if dim is not None and dim < self.min_size:
                got = received if received is not None else repr(tuple(size))
                raise UserError(
                    f"Backbone {self.name!r} needs inputs of at least {self.min_size}x{self.min_size} "
                    f"pixels. Received: {argument}={got}"
                )


_VIEWS: dict[str, BackboneSpec] = {}


def list_backbones(pattern: str = "*") -> list[str]:
    """Backbone names matching a shell-style ``pattern`` (``"keras:efficientnet*"``), sorted."""
    return backbone_names(pattern)


def get_backbone(name: str | BackboneSpec) -> BackboneSpec:
    """The :class:`BackboneSpec` for ``name`` (aliases and Keras class names accepted)."""
    if isinstance(name, BackboneSpec):
        return name
    spec = backbone_spec(name)
    if spec.name not in _VIEWS:
        _VIEWS[spec.name] = BackboneSpec.of(spec)
    return _VIEWS[spec.name]


def resolve_backbone(name: str | BackboneSpec, weights: Any = None) -> tuple[BackboneSpec, str]:
    """The spec to build for ``name`` and ``weights``, and a note when it was redirected.

    With ``weights="imagenet"``, a tl_kit builder without ImageNet weights moves to its Keras
    Applications twin (same network, published weights).
    """
    spec = get_backbone(name)
    if weights == "imagenet" and not spec.imagenet and spec.imagenet_twin:
        twin = get_backbone(spec.imagenet_twin)
        return twin, (
            f"tl_kit's {spec.name!r} has no ImageNet weights; using Keras Applications' "
            f"{twin.keras_name} ({twin.name!r}), the same network with published weights."
        )
    return spec, ""
