"""The one registry of backbones: tl_kit's own builders and the Keras Applications.

Every backbone is registered once, with its metadata as named fields of a
:class:`ModelSpec`: default input size, smallest size, preprocessing mode, ordered block
declarations (:mod:`tl_kit.models.blocks`), whether ImageNet weights are published, the
paper and (for tl_kit's builders) the parameter counts the paper gives.

- tl_kit's builders register with the :func:`register_model` decorator, in their family
  module (:mod:`tl_kit.models.resnet` ...); :func:`list_models`, :func:`get_spec` and
  :func:`build_model` read them.
- each Keras Application is one :func:`register_keras_application` row
  (:mod:`tl_kit.models.keras_apps`), named ``"keras:"`` + its class name in lower case.

:func:`backbone_spec` / :func:`backbone_names` read both (the names
:func:`tl_kit.backbones.get_backbone` accepts); :mod:`tl_kit.backbones` shows each entry to
callers as a :class:`~tl_kit.backbones.BackboneSpec`. Importing any module of
:mod:`tl_kit.models` first runs the package's ``__init__``, which imports every family, so
the registry is complete whenever it can be read.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from tl_kit.errors import UserError, unknown_name
from tl_kit.models.blocks import block_matcher

__all__ = [
    "ParamCheck",
    "ModelSpec",
    "register_model",
    "register_keras_application",
    "list_models",
    "get_spec",
    "build_model",
    "backbone_spec",
    "backbone_names",
    "feature_extractor",
    "block_matcher",
    "BACKBONES_LISTED",
]

# Where a user finds every name (the did-you-mean error of an unknown name points there).
BACKBONES_LISTED = "tl-kit models lists them, tl-kit weights list the keras: ones"


@dataclass(frozen=True)
class ParamCheck:
    """An expected parameter count for one configuration of a builder.

    Args:
        expected: the count the paper (or Keras Applications) gives.
        kwargs: extra builder arguments for this configuration (e.g. ``{"groups": 2}``).
        trainable_only: compare against trainable weights instead of ``count_params()``.
        input_shape: the input shape to count at; the spec's ``default_size`` if None.
        classes: number of classes for the count.
    """

    expected: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    trainable_only: bool = False
    input_shape: tuple[int, int, int] | None = None
    classes: int = 1000


@dataclass(frozen=True)
class ModelSpec:
    """Metadata for one registered builder.

    Attributes:
        name: registry name (``"vgg16"``, ``"keras:efficientnetb0"``).
        builder: function with the keras.applications signature.
        default_size: the paper's input shape ``(height, width, channels)``.
        min_size: smallest spatial size the architecture allows (backbone use).
        blocks: ordered block declarations (:mod:`tl_kit.models.blocks`): prefixes
            (``"block1_"``), regexes (``"re:^conv2_"``) or boundaries (``"upto:mixed3"``).
        preprocess: preprocessing mode applied to raw [0, 255] pixels
            (see :mod:`tl_kit.layers`): ``"unit"``, ``"tf"``, ``"caffe"``, ``"torch"``,
            ``"none"``.
        param_checks: expected parameter counts (the papers' numbers).
        paper: the reference for the architecture.
        family: the module family (``"vgg"``).
        default_unfreeze: blocks unfrozen by the ``medium`` recipe.
        imagenet: whether ImageNet weights are published for the network without its top.
        imagenet_twin: the Keras Application with the same network, used for
            ``weights="imagenet"`` when this builder has none (``"keras:resnet50"``).
        source: ``"tl_kit"`` (a builder of :mod:`tl_kit.models`) or ``"keras"``.
        keras_name: the Keras Applications class name (Keras entries).
    """

    name: str
    builder: Callable[..., keras.Model]
    default_size: tuple[int, int, int]
    min_size: int
    blocks: tuple[str, ...]
    preprocess: str = "unit"
    param_checks: tuple[ParamCheck, ...] = ()
    paper: str = ""
    family: str = ""
    default_unfreeze: int = 1
    imagenet: bool = False
    imagenet_twin: str = ""
    source: str = "tl_kit"
    keras_name: str = ""

    def build(self, **kwargs: Any) -> keras.Model:
        """The builder's model for keras.applications-style ``kwargs``."""
        return self.builder(**kwargs)


# tl_kit's own builders (list_models, get_spec, build_model) and the Keras Applications.
_REGISTRY: dict[str, ModelSpec] = {}
_KERAS_APPS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    default_size: tuple[int, int, int],
    min_size: int,
    blocks: Sequence[str],
    preprocess: str = "unit",
    param_checks: Sequence[ParamCheck] = (),
    paper: str = "",
    family: str = "",
    default_unfreeze: int = 1,
    imagenet: bool = False,
    imagenet_twin: str = "",
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator: register a tl_kit builder under ``name``; duplicate names are rejected.

    The keyword arguments are the :class:`ModelSpec` fields.
    """

    def wrap(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise UserError(f"A model named {name!r} is already registered. Received: name={name!r}")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=fn,
            default_size=tuple(default_size),
            min_size=min_size,
            blocks=tuple(blocks),
            preprocess=preprocess,
            param_checks=tuple(param_checks),
            paper=paper,
            family=family or fn.__module__.rsplit(".", 1)[-1],
            default_unfreeze=default_unfreeze,
            imagenet=imagenet,
            imagenet_twin=imagenet_twin,
        )
        return fn

    return wrap


def _keras_builder(class_name: str) -> Callable[..., keras.Model]:
    def build(**kwargs: Any) -> keras.Model:
        return getattr(keras.applications, class_name)(**kwargs)

    build.__name__ = class_name
    return build


def register_keras_application(
    class_name: str,
    *,
    size: int,
    preprocess: str,
    blocks: Sequence[str],
    family: str,
    paper: str,
    min_size: int = 32,
    default_unfreeze: int = 1,
) -> ModelSpec:
    """Register ``keras.applications.<class_name>`` as ``"keras:<class_name lower>"``.

    ``size`` is its default square input (3 channels); its ImageNet weights are Keras's.
    """
    name = "keras:" + class_name.lower()
    if name in _KERAS_APPS:
        raise UserError(f"A backbone named {name!r} is already registered. Received: class_name={class_name!r}")
    spec = ModelSpec(
        name=name,
        builder=_keras_builder(class_name),
        default_size=(size, size, 3),
        min_size=min_size,
        blocks=tuple(blocks),
        preprocess=preprocess,
        paper=paper,
        family=family,
        default_unfreeze=default_unfreeze,
        imagenet=True,
        source="keras",
        keras_name=class_name,
    )
    _KERAS_APPS[name] = spec
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """tl_kit's builders whose names match a shell-style ``pattern`` (``"resnet*"``), sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of tl_kit's builder ``name``; a clear error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("model", str(name), _REGISTRY, "tl-kit models lists them", "name") from None


def build_model(name: str, **kwargs: Any) -> keras.Model:
    """Build the registered model ``name`` with keras.applications-style ``kwargs``."""
    return get_spec(name).build(**kwargs)


def backbone_names(pattern: str = "*") -> list[str]:
    """Every backbone name (tl_kit's builders and ``keras:`` ones) matching ``pattern``, sorted."""
    return sorted(n for n in (*_REGISTRY, *_KERAS_APPS) if fnmatch.fnmatch(n, pattern))


def backbone_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of backbone ``name``.

    tl_kit's names first, then any case; ``"keras:"`` may be left out where no tl_kit builder
    has the name (``"efficientnetb0"``), and the Keras class name is accepted
    (``"keras:ResNet50V2"``).
    """
    key = str(name)
    low = key.lower()
    for table, candidate in ((_REGISTRY, key), (_KERAS_APPS, key), (_REGISTRY, low),
                             (_KERAS_APPS, "keras:" + low.removeprefix("keras:"))):
        if candidate in table:
            return table[candidate]
    raise unknown_name("backbone", key, backbone_names(), BACKBONES_LISTED, "backbone")


def feature_extractor(spec: Any, input_shape: Sequence, weights: str | None = None) -> keras.Model:
    """``spec``'s network without its top (4-D feature map), straight from its builder.

    ``spec`` is a :class:`ModelSpec` or a :class:`~tl_kit.backbones.BackboneSpec` (anything
    with a keras.applications-style ``builder``); ``weights`` goes to the builder as is.
    """
    return spec.builder(include_top=False, weights=weights, input_shape=tuple(input_shape),
                        pooling=None)
