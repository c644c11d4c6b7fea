"""Block declarations: which layers of a backbone form each block, and freezing by block.

Every backbone declares its blocks once, as data (``blocks`` of its registration in
:mod:`tl_kit.models.registry`); :func:`assign_blocks` and :func:`set_trainable_blocks` read
them. A declaration is either

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

import re
from collections.abc import Callable, Sequence

import keras

from tl_kit.errors import UserError

__all__ = [
    "block_matcher",
    "assign_blocks",
    "matched_by_declaration",
    "set_trainable_blocks",
    "trainable_params",
]


def block_matcher(pattern: str) -> Callable[[str], bool]:
    """Turn a block declaration (prefix, or ``re:`` regex) into a predicate on layer names."""
    if pattern.startswith("re:"):
        rx = re.compile(pattern[3:])
        return lambda layer_name: rx.search(layer_name) is not None
    return lambda layer_name: layer_name.startswith(pattern)


def _is_input(layer) -> bool:
    return isinstance(layer, keras.layers.InputLayer)


def _split_at_boundaries(layers: list, blocks: tuple[str, ...]) -> list[list]:
    """``upto:`` declarations: each block ends with its named layer."""
    groups: list[list] = [[] for _ in blocks]
    names = [b[5:] for b in blocks]
    current = 0
    for layer in layers:
        groups[current].append(layer)
        if layer.name == names[current] and current < len(blocks) - 1:
            current += 1
    return groups


def _split_by_matchers(layers: list, blocks: tuple[str, ...]) -> list[list]:
    """Prefix/regex declarations: first match wins, unmatched layers follow their predecessor."""
    groups: list[list] = [[] for _ in blocks]
    matchers = [block_matcher(b) for b in blocks]
    last: int | None = None
    pending: list = []
    for layer in layers:
        index = next((i for i, m in enumerate(matchers) if m(layer.name)), None)
        if index is None:
            (pending if last is None else groups[last]).append(layer)
            continue
        if last is None and pending:
            groups[0].extend(pending)
            pending = []
        groups[index].append(layer)
        last = index
    groups[0].extend(pending)
    return groups


def assign_blocks(model: keras.Model, blocks: Sequence[str]) -> list[list]:
    """Split ``model.layers`` (input layers excepted) into the declared ``blocks``.

    Returns one list of layers per declaration, in the declared order (see the module
    docstring for the rules).
    """
    blocks = tuple(blocks)
    if not blocks:
        raise UserError(f"No blocks declared for {model.name!r}. Received: blocks={blocks!r}")
    layers = [layer for layer in model.layers if not _is_input(layer)]
    uptos = [b.startswith("upto:") for b in blocks]
    if not any(uptos):
        return _split_by_matchers(layers, blocks)
    if not all(uptos):
        raise UserError(
            "Block declarations must be all 'upto:' boundaries or all prefixes/regexes. "
            f"Received: blocks={blocks!r}"
        )
    return _split_at_boundaries(layers, blocks)


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
    blocks: Sequence[str],
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
        raise UserError(f"`n` must be a non-negative integer or 'all'. Received: n={n!r}")
    groups = [g for g in assign_blocks(model, blocks) if g]
    if n > len(groups):
        raise UserError(
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
