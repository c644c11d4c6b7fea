"""A small registry of model builders with their metadata kept as data.

Every classic builder in :mod:`tl_kit.models` registers itself here with
:func:`register_model`. The metadata (default input size, preprocessing mode,
ordered block prefixes, the parameter counts the paper gives) is plain data that
the backbone registry, the freezing code and the tests read.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

__all__ = [
    "ParamCheck",
    "ModelSpec",
    "register_model",
    "list_models",
    "get_spec",
    "build_model",
    "block_matcher",
]


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
        name: registry name (``"vgg16"``).
        builder: function with the keras.applications signature.
        default_size: the paper's input shape ``(height, width, channels)``.
        min_size: smallest spatial size the architecture allows (backbone use).
        blocks: ordered block prefixes (``"block1_"``) or regexes (``"re:^conv2_"``);
            a layer belongs to the first block whose matcher matches its name.
        preprocess: preprocessing mode applied to raw [0, 255] pixels
            (see :mod:`tl_kit.layers`): ``"unit"``, ``"tf"``, ``"caffe"``, ``"torch"``,
            ``"none"``.
        param_checks: expected parameter counts (the papers' numbers).
        paper: the reference for the architecture.
        family: the module family (``"vgg"``).
        default_unfreeze: blocks unfrozen by the ``medium`` recipe.
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

    def build(self, **kwargs: Any) -> keras.Model:
        return self.builder(**kwargs)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    default_size: tuple[int, int, int],
    min_size: int,
    blocks: tuple[str, ...] | list[str],
    preprocess: str = "unit",
    param_checks: tuple[ParamCheck, ...] | list[ParamCheck] = (),
    paper: str = "",
    family: str = "",
    default_unfreeze: int = 1,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator: register a builder under ``name``; duplicate names are rejected."""

    def wrap(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
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
        )
        return fn

    return wrap


def _ensure_loaded() -> None:
    # Importing the package registers every builder.
    import tl_kit.models  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"resnet*"``), sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``; a clear error lists the known names."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        from tl_kit.errors import unknown_name

        raise unknown_name("model", str(name), _REGISTRY, "tl-kit models lists them", "name") from None


def build_model(name: str, **kwargs: Any) -> keras.Model:
    """Build the registered model ``name`` with keras.applications-style ``kwargs``."""
    return get_spec(name).build(**kwargs)


def block_matcher(pattern: str) -> Callable[[str], bool]:
    """Turn a block declaration (prefix, or ``re:`` regex) into a predicate on layer names."""
    if pattern.startswith("re:"):
        rx = re.compile(pattern[3:])
        return lambda layer_name: rx.search(layer_name) is not None
    return lambda layer_name: layer_name.startswith(pattern)
