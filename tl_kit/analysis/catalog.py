"""Metadata of the registered tl_kit models, without building any."""

from __future__ import annotations

from typing import Any

__all__ = ["model_catalog"]


def model_catalog(pattern: str = "*") -> list[dict[str, Any]]:
    """Metadata of the registered tl_kit models matching ``pattern`` (shell-style).

    Each entry: ``name``, ``family``, ``default_size``, ``min_size``, ``params`` (the
    paper's count for the default configuration, from the registry metadata; None if
    none is recorded), ``params_trainable_only``, ``blocks`` (ordered declarations),
    ``preprocess``, ``paper``. Nothing is built, so this is fast.

    Example:
    ```python
    [m["name"] for m in model_catalog("resnet*")]
    ```
    """
    from tl_kit.models.registry import get_spec, list_models

    out = []
    for name in list_models(pattern):
        spec = get_spec(name)
        checks = [c for c in spec.param_checks if not c.kwargs and c.input_shape is None]
        check = checks[0] if checks else None
        out.append(
            {
                "name": name,
                "family": spec.family,
                "default_size": list(spec.default_size),
                "min_size": spec.min_size,
                "params": check.expected if check else None,
                "params_trainable_only": bool(check and check.trainable_only),
                "classes": check.classes if check else None,
                "blocks": list(spec.blocks),
                "preprocess": spec.preprocess,
                "paper": spec.paper,
            }
        )
    return out
