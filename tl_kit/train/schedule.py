"""Optimizers and the learning-rate schedule of a stage.

:class:`WarmupCosine` stays tl_kit's own schedule rather than Keras's
``keras.optimizers.schedules.CosineDecay(initial_learning_rate=0, warmup_target=peak,
warmup_steps=W, decay_steps=T - W)``: without a warm-up the two are the same step for step,
but Keras's warm-up starts at ``initial_learning_rate`` (step 0 trains at 0) and reaches the
peak at step ``W``, while ours gives ``peak * (step + 1) / W`` (the peak at step ``W - 1``):
one step ahead through the warm-up (tests/train/test_schedule.py compares them). Runs that
saved it (``tl_kit>WarmupCosine`` in an optimizer's config) load through its registration.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from tl_kit.errors import UserError
from tl_kit.recipes import Stage

__all__ = ["WarmupCosine", "make_optimizer", "stage_optimizer"]


@keras.saving.register_keras_serializable(package="tl_kit")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine decay (or constant)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, cosine: bool = True):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), 1)
        self.cosine = bool(cosine)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = float(max(self.warmup_steps, 1))
        warm_lr = self.peak * keras.ops.minimum((step + 1.0) / warm, 1.0)
        if not self.cosine:
            return warm_lr if self.warmup_steps else keras.ops.convert_to_tensor(self.peak)
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = keras.ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cos_lr = 0.5 * self.peak * (1.0 + keras.ops.cos(math.pi * progress))
        if self.warmup_steps:
            return keras.ops.where(step < self.warmup_steps, warm_lr, cos_lr)
        return cos_lr

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "cosine": self.cosine}


def make_optimizer(name: str, learning_rate, weight_decay: float = 0.0,
                   **ema: Any) -> keras.optimizers.Optimizer:
    """``"adam"``, ``"adamw"`` (weight decay 1e-4 unless given), ``"sgd"`` (momentum 0.9,
    Nesterov), ``"sgd_plain"`` or ``"rmsprop"`` at ``learning_rate`` (a float or a schedule);
    ``ema`` passes Keras's ``use_ema`` / ``ema_momentum`` / ``ema_overwrite_frequency``."""
    wd = weight_decay or None
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=wd, **ema)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=wd or 1e-4, **ema)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=wd, **ema)
    if name == "sgd_plain":
        return keras.optimizers.SGD(learning_rate, weight_decay=wd, **ema)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, weight_decay=wd, **ema)
    raise UserError(f"Unknown optimizer {name!r}: adam, adamw, sgd, sgd_plain or rmsprop. "
                    f"Received: optimizer={name!r}")


def stage_optimizer(stage: Stage, steps_per_epoch: int, precision: str) -> keras.optimizers.Optimizer:
    """A new optimizer for ``stage`` (call inside the strategy's scope): its optimizer and
    weight decay on the :class:`WarmupCosine` schedule over ``stage.epochs`` epochs."""
    total = max(stage.epochs * steps_per_epoch, 1)
    lr = WarmupCosine(stage.learning_rate, stage.warmup_epochs * steps_per_epoch, total,
                      cosine=stage.schedule == "cosine")
    # EMA: the model takes the averaged weights at each epoch's end (see Stage.ema)
    ema = {"use_ema": True, "ema_momentum": stage.ema,
           "ema_overwrite_frequency": max(steps_per_epoch, 1)} if stage.ema else {}
    opt = make_optimizer(stage.optimizer, lr, stage.weight_decay, **ema)
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt
