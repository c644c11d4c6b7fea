"""tl_kit: transfer learning on images with Keras 3 / TensorFlow.

The public API is imported lazily so that ``import tl_kit`` and ``tl-kit --help``
stay fast; each name below lives in one module with one job.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # classic builders
    "list_models": "tl_kit.models.registry",
    "build_model": "tl_kit.models.registry",
    "get_spec": "tl_kit.models.registry",
    # analysis
    "summary": "tl_kit.analysis",
    # backbones
    "list_backbones": "tl_kit.backbones",
    "get_backbone": "tl_kit.backbones",
    "BackboneSpec": "tl_kit.backbones",
    # data
    "load_data": "tl_kit.data",
    "DatasetInfo": "tl_kit.data",
    # recipes and training
    "Recipe": "tl_kit.recipes",
    "Stage": "tl_kit.recipes",
    "load_recipe": "tl_kit.recipes",
    "finetune": "tl_kit.train",
    "Learner": "tl_kit.train",
    "run_demo": "tl_kit.demo",
    # evaluation and export
    "ensemble": "tl_kit.evaluate",
    "export_model": "tl_kit.export",
    # data doctor
    "doctor": "tl_kit.data_doctor",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tl_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
