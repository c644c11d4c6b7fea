"""The named policies and :func:`policy_ops`, which resolves a policy to a list of ops."""

from __future__ import annotations

from typing import Any

from tl_kit.augment.ops import ALBU_ONLY, ALIASES, OPS
from tl_kit.errors import UserError

__all__ = ["BACKENDS", "POLICIES", "POLICY_OPS", "policy_ops"]

POLICIES = ("none", "light", "standard", "strong")
BACKENDS = ("tf", "albumentations")

#: The ops of each named policy (defaults from :data:`~tl_kit.augment.ops.OPS` fill the rest).
POLICY_OPS: dict[str, list] = {
    "none": [],
    "light": ["flip", {"name": "random_crop", "scale": 0.9}],
    "standard": [
        "flip",
        {"name": "random_resized_crop", "scale": (0.35, 1.0)},
        {"name": "color_shift", "max_offset": 20, "p": 0.3},
        {"name": "pca_color", "std": 0.1},
        {"name": "brightness", "max_delta": 0.1},
        {"name": "contrast", "lower": 0.9, "upper": 1.1},
    ],
    "strong": [
        "flip",
        {"name": "random_resized_crop", "scale": (0.2, 1.0)},
        {"name": "rotation", "degrees": 15},
        {"name": "clahe", "p": 0.2},
        {"name": "grid_distortion", "p": 0.2},
        {"name": "color_shift", "max_offset": 20, "p": 0.5},
        {"name": "pca_color", "std": 0.1},
        {"name": "brightness", "max_delta": 0.2},
        {"name": "contrast", "lower": 0.75, "upper": 1.25},
        {"name": "coarse_dropout", "size": 0.25, "p": 0.5},
        {"name": "mixup", "alpha": 0.2, "p": 0.5},
        {"name": "cutmix", "alpha": 1.0, "p": 0.5},
    ],
}


def _policy_items(policy: str | list | tuple) -> list:
    """The raw op entries of a named policy or an explicit list."""
    if isinstance(policy, str):
        if policy not in POLICY_OPS:
            raise UserError(
                f"Unknown augmentation policy. Use one of {POLICIES} or a list of ops from "
                f"{sorted(OPS)}. Received: policy={policy!r}")
        return POLICY_OPS[policy]
    if isinstance(policy, (list, tuple)):
        return list(policy)
    raise UserError(f"`policy` must be a name or a list of ops. Received: policy={policy!r}")


def _split_item(item) -> tuple[str, dict[str, Any]]:
    """``(canonical name, params)`` of one entry (a name or a dict with a ``name`` key)."""
    if isinstance(item, str):
        name, params = item, {}
    elif isinstance(item, dict) and "name" in item:
        name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
    else:
        raise UserError(f"Each op must be a name or a dict with a 'name' key. Received: op={item!r}")
    name = ALIASES.get(name, name)
    if name not in OPS:
        raise UserError(f"Unknown augmentation op. Known ops: {sorted(OPS)}. Received: op={name!r}")
    unknown = set(params) - set(OPS[name])
    if unknown:
        raise UserError(f"Op {name!r} takes {sorted(OPS[name])}. Received: {sorted(unknown)}")
    return name, params


def policy_ops(policy: str | list | None, backend: str = "tf") -> list[dict[str, Any]]:
    """Resolve a policy to a list of ops ``{"name": ..., **params}`` with defaults filled in.

    Under the ``"tf"`` backend the named policies leave out the albumentations-only ops;
    listing one explicitly there is an error.
    """
    if backend not in BACKENDS:
        raise UserError(f"`backend` must be one of {BACKENDS}. Received: backend={backend!r}")
    if policy is None:
        return []
    named = isinstance(policy, str)
    ops = []
    for item in _policy_items(policy):
        name, params = _split_item(item)
        if name in ALBU_ONLY and backend != "albumentations":
            if named:
                continue
            raise UserError(f"Op {name!r} needs backend='albumentations'. Received: backend={backend!r}")
        p = float(params.get("p", OPS[name]["p"]))
        if not 0.0 <= p <= 1.0:
            raise UserError(f"Probability `p` of {name!r} must be in [0, 1]. Received: p={p!r}")
        ops.append({"name": name, **OPS[name], **params})
    return ops
