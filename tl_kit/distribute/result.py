"""What :func:`tl_kit.distribute.custom_fit` returns: ``FitResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FitResult:
    """What ``custom_fit`` returns; ``history``/``epoch`` read like ``keras.callbacks.History``.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy":
            [...]}``, one value per finished epoch, each epoch once (resumed epochs included).
        epoch: 0-based indices of those epochs.
        initial_epoch: epochs already finished (found in a checkpoint) when the call
            started: 0 for a fresh run, 2 when resuming after epoch 2.
        best_epoch: 1-based epoch with the best ``monitor`` value (None without one).
        stop_reason: "completed", "early_stopping", "callback", "already_finished" or
            (in ``NonFiniteLossError.result``) "non_finite_loss".
        checkpoint_dir: where THIS process wrote its checkpoints (None without checkpoints).
        checkpoint_writes: checkpoints written by the stage so far (resumed runs included).
        checkpoint_seconds: seconds THIS call spent writing checkpoints.
    """

    history: dict[str, list[float]]
    epoch: list[int]
    initial_epoch: int = 0
    best_epoch: int | None = None
    monitor: str | None = None
    stop_reason: str = "completed"
    checkpoint_dir: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    checkpoint_writes: int = 0
    checkpoint_seconds: float = 0.0
