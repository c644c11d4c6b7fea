"""WarmupCosine against Keras's CosineDecay, and loading configs that name it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tl_kit.errors import UserError
from tl_kit.recipes import Stage
from tl_kit.train import WarmupCosine
from tl_kit.train.schedule import make_optimizer, stage_optimizer


def _steps(schedule, n: int) -> np.ndarray:
    return np.array([float(schedule(s)) for s in range(n)])


def _keras(peak: float, warmup: int, total: int, cosine: bool):
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak, decay_steps=max(total - warmup, 1),
        warmup_target=peak if warmup else None, warmup_steps=warmup, alpha=0.0 if cosine else 1.0)


@pytest.mark.parametrize("cosine", [True, False])
def test_without_warmup_keras_cosine_decay_is_the_same_schedule(cosine):
    np.testing.assert_allclose(_steps(WarmupCosine(1e-2, 0, 20, cosine=cosine), 24),
                               _steps(_keras(1e-2, 0, 20, cosine), 24), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cosine", [True, False])
def test_with_warmup_keras_lags_one_step(cosine):
    """Keras starts the warm-up at 0 (step 0 trains at lr 0) and reaches the peak at step W;
    ours reaches it at step W - 1. After the warm-up the two agree (why ours is kept)."""
    peak, warmup, total = 1e-2, 5, 20
    ours, theirs = _steps(WarmupCosine(peak, warmup, total, cosine=cosine), 24), _steps(_keras(peak, warmup, total, cosine), 24)
    np.testing.assert_allclose(ours[:warmup], peak * (np.arange(warmup) + 1) / warmup, rtol=1e-6)
    np.testing.assert_allclose(theirs[:warmup], peak * np.arange(warmup) / warmup, rtol=1e-6, atol=1e-9)
    assert theirs[0] == 0.0 and ours[warmup - 1] == pytest.approx(peak)
    np.testing.assert_allclose(ours[warmup:], theirs[warmup:], rtol=1e-5, atol=1e-9)  # the boundary on


def test_an_optimizer_config_naming_warmupcosine_loads():
    config = {"module": "keras.optimizers", "class_name": "Adam", "registered_name": None,
              "config": {"name": "adam", "learning_rate": {
                  "module": None, "class_name": "WarmupCosine", "registered_name": "tl_kit>WarmupCosine",
                  "config": {"peak": 0.001, "warmup_steps": 2, "total_steps": 10, "cosine": True}}}}
    opt = keras.optimizers.deserialize(config)
    assert isinstance(opt.learning_rate if isinstance(opt.learning_rate, WarmupCosine) else opt._learning_rate,
                      WarmupCosine)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(stage_optimizer(
        Stage(learning_rate=0.01, warmup_epochs=1, epochs=3), 4, "float32")))
    schedule = again._learning_rate
    assert isinstance(schedule, WarmupCosine)
    assert (schedule.peak, schedule.warmup_steps, schedule.total_steps) == (0.01, 4, 12)


def test_make_optimizer_names():
    assert isinstance(make_optimizer("adamw", 1e-3), keras.optimizers.AdamW)
    sgd = make_optimizer("sgd", 1e-3)
    assert sgd.nesterov and sgd.momentum == 0.9 and not make_optimizer("sgd_plain", 1e-3).nesterov
    assert isinstance(stage_optimizer(Stage(optimizer="rmsprop"), 3, "mixed_float16"),
                      keras.optimizers.LossScaleOptimizer)
    with pytest.raises(UserError, match="Unknown optimizer 'lion'"):
        make_optimizer("lion", 1e-3)
