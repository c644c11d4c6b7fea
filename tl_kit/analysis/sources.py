"""The model a summary analyses: a registered name (tl_kit classic model, else backbone),
built with ``weights=None``, or a saved ``.keras`` / ``.h5`` file."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from tl_kit.errors import UserError

__all__ = ["MODEL_FILE_SUFFIXES", "build_from_name", "load_model_file"]

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def _backbones_module():
    """tl_kit.backbones if that module exists (it is optional for the analysis), else None."""
    if (
        "tl_kit.backbones" not in sys.modules
        and importlib.util.find_spec("tl_kit.backbones") is None
    ):
        return None
    return importlib.import_module("tl_kit.backbones")


def build_from_name(name: str, input_shape: tuple[int, ...] | None,
                    build_kwargs: dict[str, Any]) -> tuple[Any, str]:
    from tl_kit.models.registry import _REGISTRY, get_spec, list_models

    list_models()  # loads the registry
    if name in _REGISTRY:
        spec = get_spec(name)
        if input_shape is not None and len(input_shape) == 2:
            input_shape = (*input_shape, spec.default_size[2])
        kwargs = {"weights": None, **build_kwargs}
        if input_shape is not None:
            kwargs["input_shape"] = tuple(input_shape)
        return spec.build(**kwargs), "tl_kit.models"
    backbones = _backbones_module()
    if backbones is not None:
        if name in backbones.list_backbones():
            bspec = backbones.get_backbone(name)
            kwargs = dict(build_kwargs)
            if kwargs.pop("include_top", False):
                raise UserError(
                    f"{name!r} is a backbone without a classifier top; summarise it without "
                    "include_top (CLI: --no-top). Received: include_top=True"
                )
            if input_shape is not None and len(input_shape) == 2:
                input_shape = (*input_shape, bspec.default_size[2])
            kwargs.setdefault("weights", None)
            return bspec.build(input_shape=input_shape, **kwargs), "tl_kit.backbones"
    from tl_kit.errors import unknown_name

    known = list(_REGISTRY) + (backbones.list_backbones() if backbones is not None else [])
    raise unknown_name("model", name, known, "tl-kit models lists them, tl-kit weights "
                       "list the keras: ones", "name")


def load_model_file(path: str) -> Any:
    import keras

    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file not found. Received: path={path!r}")
    if importlib.util.find_spec("tl_kit.layers") is not None:
        importlib.import_module("tl_kit.layers")  # registers tl_kit's serializable layers
    return keras.saving.load_model(path, compile=False)
