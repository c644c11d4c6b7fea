"""Per-block learning rates: layer-wise decay or explicit multipliers per backbone block.

One job: turn a stage's ``layer_decay`` or ``block_lr`` into one learning-rate multiplier
per trainable variable, and make a Keras optimizer apply it.

Discriminative fine-tuning (Howard & Ruder 2018, "Universal Language Model Fine-tuning
for Text Classification", ULMFiT) gives earlier layers smaller rates, because they hold
the most general features; layer-wise learning-rate decay (Clark et al. 2020, ELECTRA;
Bao et al. 2021, BEiT; timm's ``--layer-decay``) makes the rule geometric.

The blocks are the backbone's declared blocks (the same ones "unfreeze the last N"
counts, :func:`tl_kit.backbones.assign_blocks`), and the head counts as the last block:

* ``layer_decay=d``: the head trains at the stage's rate, the last backbone block at
  ``d`` times it, the one before at ``d**2``, ...; a block's multiplier is
  ``d ** (number of blocks after it, the head included)``.
* ``block_lr={"head": 2.0, "5": 1.0, "4": 0.3}``: explicit multipliers, keyed by block
  position (``"1"`` is the first, earliest block), by block declaration exactly as
  ``tl_kit.backbones.get_backbone(name).blocks`` lists it (``"conv5_"`` for ResNet-18), or
  ``"head"``; a block not named trains at the stage's rate.

The multiplier scales the rate the optimizer's schedule gives at every step (warm-up and
cosine included), so with Adam, SGD (momentum included) and RMSprop each variable's update
is exactly the multiplier times what it would be. Decoupled weight decay
(``Stage.weight_decay``) stays at the stage's rate. It works under every
``tf.distribute`` strategy: the scaling happens in the optimizer's per-variable update,
which runs on every replica's copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from tl_kit.errors import UserError

HEAD = "head"


def check_block_lr(layer_decay: float | None, block_lr: Mapping[str, float] | None) -> None:
    """Validate a stage's per-block rate settings (raises :class:`UserError`)."""
    if layer_decay is not None and block_lr is not None:
        raise UserError(
            "Give a stage either layer_decay or block_lr, not both. "
            f"Received: layer_decay={layer_decay!r}, block_lr={dict(block_lr)!r}")
    if layer_decay is not None and (isinstance(layer_decay, bool) or not 0 < layer_decay <= 1):
        raise UserError(
            "Stage.layer_decay must be in (0, 1] (e.g. 0.75: each earlier block trains at 0.75x "
            f"the rate of the block after it). Received: layer_decay={layer_decay!r}")
    if block_lr is not None:
        if not isinstance(block_lr, Mapping) or not block_lr:
            raise UserError(
                "Stage.block_lr must be a non-empty table of block name -> multiplier, e.g. "
                f"{{head = 1.0, block5 = 0.3}}. Received: block_lr={block_lr!r}")
        bad = {k: v for k, v in block_lr.items()
               if isinstance(v, bool) or not isinstance(v, int | float) or v < 0}
        if bad:
            raise UserError(f"Stage.block_lr multipliers must be numbers >= 0. Received: block_lr={bad!r}")


def block_multipliers(
    backbone: keras.Model,
    blocks: Sequence[str],
    *,
    layer_decay: float | None = None,
    block_lr: Mapping[str, float] | None = None,
    head: Sequence[keras.layers.Layer] = (),
) -> dict[int, float]:
    """``{id(variable): multiplier}`` for the variables of ``backbone`` (by block) and of the
    ``head`` layers; variables not listed train at the stage's rate."""
    from tl_kit.backbones import assign_blocks

    check_block_lr(layer_decay, block_lr)
    if layer_decay is None and block_lr is None:
        return {}
    groups = [(decl, group) for decl, group in zip(blocks, assign_blocks(backbone, blocks), strict=True)
              if group]
    if layer_decay is not None:
        n = len(groups)
        per_block = {decl: float(layer_decay) ** (n - i) for i, (decl, _) in enumerate(groups)}
        head_rate = 1.0
    else:
        per_block = _explicit(backbone, [decl for decl, _ in groups], block_lr)
        head_rate = float(block_lr.get(HEAD, 1.0))
    out: dict[int, float] = {}
    for decl, group in groups:
        for layer in group:
            for var in layer.weights:
                out[id(var)] = per_block[decl]
    for layer in head:
        for var in layer.weights:
            out[id(var)] = head_rate
    return out


def _explicit(backbone: keras.Model, known: list[str], block_lr: Mapping[str, float]) -> dict[str, float]:
    """Block declaration -> multiplier from keys that are positions, declarations or 'head'."""
    by_key = {str(i + 1): decl for i, decl in enumerate(known)} | {decl: decl for decl in known}
    unknown = sorted(str(k) for k in block_lr if str(k) not in by_key and k != HEAD)
    if unknown:
        raise UserError(
            f"Stage.block_lr names {unknown[0]!r}, which is not a block of {backbone.name!r}: use "
            f"'head', a position 1..{len(known)} (1 = the earliest block) or a declaration "
            f"({', '.join(map(repr, known))}). Received: block_lr={dict(block_lr)!r}")
    rates = {decl: 1.0 for decl in known}
    for key, value in block_lr.items():
        if key != HEAD:
            rates[by_key[str(key)]] = float(value)
    return rates


def describe(backbone: keras.Model, blocks: Sequence[str], multipliers: Mapping[int, float]) -> str:
    """``"block1 x0.24, block2 x0.33, ..."`` for the log (trainable blocks only)."""
    from tl_kit.backbones import assign_blocks

    parts = []
    for decl, group in zip(blocks, assign_blocks(backbone, blocks), strict=True):
        rates = {multipliers[id(v)] for layer in group for v in layer.trainable_weights
                 if id(v) in multipliers}
        if rates:
            parts.append(f"{decl} x{min(rates):.3g}")
    return ", ".join(parts)


def scale_learning_rates(optimizer: keras.optimizers.Optimizer,
                         multipliers: Mapping[int, float]) -> keras.optimizers.Optimizer:
    """Make ``optimizer`` multiply its learning rate by ``multipliers[id(variable)]`` in each
    variable's update (a LossScaleOptimizer's inner optimizer is the one changed). Returns
    the same optimizer. Nothing changes when ``multipliers`` is empty or all ones."""
    if not multipliers or all(m == 1.0 for m in multipliers.values()):
        return optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    plain_update = inner.update_step
    table = dict(multipliers)

    def update_step(gradient: Any, variable: Any, learning_rate: Any) -> Any:
        model_var = inner._trainable_variables[inner._get_variable_index(variable)]
        scale = table.get(id(model_var), 1.0)
        if scale != 1.0:
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * scale
        return plain_update(gradient, variable, learning_rate)

    # An instance attribute: the optimizer's class, config and checkpoint format stay Keras's.
    object.__setattr__(inner, "update_step", update_step)
    object.__setattr__(inner, "tl_kit_lr_multipliers", table)
    return optimizer
