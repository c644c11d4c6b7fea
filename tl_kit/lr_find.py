"""Learning-rate finder: the exponential sweep of Smith ("Cyclical Learning Rates for
Training Neural Networks", WACV 2017), as fastai's ``lr_find`` runs it.

One step per learning rate, the rate growing geometrically from ``min_lr`` (1e-7) to
``max_lr`` (10) over ``num_steps`` (100) training batches, on the trainable weights of
one recipe stage. The loss is smoothed with a bias-corrected exponential moving average
(``beta`` 0.98) and the sweep stops early once the smoothed loss exceeds ``diverge`` (4) times
its minimum, or turns NaN. Every weight (and BatchNorm statistic) is restored afterwards: the
model is exactly as it was.

Suggested rate (:attr:`LRFindResult.suggested`), the rule: the rate where the smoothed loss
falls fastest, i.e. the most negative slope of the smoothed loss against ``log10(lr)``,
looked for in the two decades below the minimum of the smoothed loss (``[lr_min / 100,
lr_min]``; fastai's "steep" rule, kept off the flat start of the sweep where batch-to-batch
noise, not the learning rate, moves the loss). When that window holds fewer than 3 points the
fallback is the rate of the minimum divided by 10 (also always reported, as ``min_div_10``).

```python
result = learner.lr_find("data/my_photos", stage="head", out="runs/lr")   # plot + json
recipe = result.apply(learner.recipe or "small", stage="head")          # learning_rate set
tl_kit.finetune(backbone="mobilenet_v2", recipe=recipe, data="data/my_photos")
```
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = ["LRFindResult", "lr_sweep", "suggest_lr", "plot_lr_find", "learner_lr_find"]

RULE = ("steepest descent of the smoothed loss against log10(lr) within the two decades below "
        "the loss minimum (fallback: the minimum's rate / 10)")


@dataclass
class LRFindResult:
    """What a sweep found (JSON-ready through :meth:`to_dict`)."""

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float
    min_loss_lr: float
    min_div_10: float
    stopped: str  # "diverged", "non_finite" or "end_of_sweep"
    rule: str = RULE
    stage: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def apply(self, recipe: Any, stage: int | str | None = None, rate: str = "suggested"):
        """A copy of ``recipe`` (Recipe, built-in name or TOML path) whose ``stage`` (index or
        name; default this sweep's stage, else the first trainable stage) has this
        ``learning_rate`` (``rate``: ``"suggested"`` or ``"min_div_10"``)."""
        from tl_kit.recipes import load_recipe

        recipe = load_recipe(recipe)
        index = stage_index(recipe, stage if stage is not None else (self.stage or None))
        lr = float(getattr(self, rate))
        stages = list(recipe.stages)
        stages[index] = dataclasses.replace(stages[index], learning_rate=lr)
        return recipe.replace(stages=stages)


def stage_index(recipe, stage: int | str | None) -> int:
    """Index of ``stage`` (an int index or a stage name; None: the first stage with epochs)."""
    names = [s.name for s in recipe.stages]
    if stage is None:
        return next((i for i, s in enumerate(recipe.stages) if s.epochs > 0), 0)
    if isinstance(stage, int) or (isinstance(stage, str) and stage.isdigit()):
        i = int(stage)
        if 0 <= i < len(names):
            return i
    elif stage in names:
        return names.index(stage)
    raise UserError(f"Recipe {recipe.name!r} has no stage {stage!r}; its stages: {names} (or an "
                    f"index 0..{len(names) - 1}). Received: stage={stage!r}")


def suggest_lr(lrs, smoothed, decades: float = 2.0) -> tuple[float, float, float]:
    """``(suggested, min_loss_lr, min_div_10)`` from a sweep (see the module docstring)."""
    lrs = np.asarray(lrs, np.float64)
    s = np.asarray(smoothed, np.float64)
    finite = np.isfinite(s)
    lrs, s = lrs[finite], s[finite]
    if len(s) == 0:
        raise UserError("The learning-rate sweep produced no finite loss: check the data and "
                        "the model. Received: 0 finite losses")
    i_min = int(np.argmin(s))
    min_lr = float(lrs[i_min])
    window = np.flatnonzero((lrs >= min_lr / 10**decades) & (np.arange(len(s)) <= i_min))
    if len(window) >= 3:
        slope = np.gradient(s, np.log10(lrs))
        suggested = float(lrs[window[int(np.argmin(slope[window]))]])
    else:
        suggested = min_lr / 10
    return suggested, min_lr, min_lr / 10


def lr_sweep(model, dataset, *, loss=None, optimizer: str = "adam", weight_decay: float = 0.0,
             min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100, beta: float = 0.98,
             diverge: float = 4.0, class_weight: dict[int, float] | None = None) -> LRFindResult:
    """Sweep the learning rate on ``model``'s trainable weights over batches of ``dataset``
    (a ``tf.data.Dataset`` of ``(x, one-hot y)``, repeated as needed) and restore every
    weight afterwards. ``loss``: a Keras loss (default categorical cross-entropy).
    ``optimizer``: ``"adam"``, ``"adamw"``, ``"sgd"`` (momentum 0.9, Nesterov),
    ``"sgd_plain"`` or ``"rmsprop"``."""
    import keras
    import tensorflow as tf

    if not 0 < min_lr < max_lr:
        raise UserError(f"Need 0 < min_lr < max_lr. Received: min_lr={min_lr}, max_lr={max_lr}")
    if num_steps < 5:
        raise UserError(f"The sweep needs at least 5 steps. Received: num_steps={num_steps}")
    loss_fn = loss or keras.losses.CategoricalCrossentropy()
    from tl_kit.train.schedule import make_optimizer

    opt = make_optimizer(optimizer, min_lr, weight_decay)
    variables = model.trainable_variables
    if not variables:
        raise UserError(f"Model {model.name!r} has no trainable weights to sweep a learning rate on. "
                        "Received: 0 trainable weights")
    saved = [np.array(w) for w in model.get_weights()]
    cw = None
    if class_weight:
        k = max(class_weight) + 1
        cw = tf.constant([float(class_weight.get(i, 1.0)) for i in range(k)], tf.float32)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            sample = None if cw is None else tf.gather(cw, tf.argmax(y, axis=-1))
            value = loss_fn(y, p, sample_weight=sample)
        grads = tape.gradient(value, variables)
        opt.apply_gradients(zip(grads, variables, strict=True))
        return value

    factor = (max_lr / min_lr) ** (1.0 / (num_steps - 1))
    lrs, losses, smoothed = [], [], []
    avg, best, stopped = 0.0, math.inf, "end_of_sweep"
    try:
        batches = iter(dataset.repeat())
        for i in range(num_steps):
            lr = min_lr * factor**i
            opt.learning_rate = lr
            x, y = next(batches)
            value = float(step(x, tf.cast(y, tf.float32)))
            if not math.isfinite(value):
                stopped = "non_finite"
                break
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            best = min(best, smooth)
            if i > 0 and smooth > diverge * best:
                stopped = "diverged"
                break
    finally:
        model.set_weights(saved)
    suggested, at_min, div10 = suggest_lr(lrs, smoothed)
    return LRFindResult(learning_rates=lrs, losses=losses, smoothed=smoothed, suggested=suggested,
                        min_loss_lr=at_min, min_div_10=div10, stopped=stopped)


def plot_lr_find(result: LRFindResult, out_png: str | os.PathLike) -> Path:
    """Loss (raw, faint; smoothed, solid) against the learning rate (log scale), with the
    suggested rate marked."""
    from tl_kit._plots import figure, save_figure

    with figure(figsize=(6, 4)) as (fig, ax):
        ax.plot(result.learning_rates, result.losses, color="tab:blue", alpha=0.3, label="loss")
        ax.plot(result.learning_rates, result.smoothed, color="tab:blue", label="smoothed loss")
        ax.axvline(result.suggested, color="tab:red", linestyle="--",
                   label=f"suggested {result.suggested:.2e}")
        ax.axvline(result.min_div_10, color="tab:green", linestyle=":",
                   label=f"min / 10 {result.min_div_10:.2e}")
        ax.set_xscale("log")
        lo, hi = min(result.smoothed), max(result.smoothed)
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), min(hi, 4 * lo + 1e-9) * 1.05 + 1e-9)
        ax.set(xlabel="learning rate", ylabel="loss",
               title=f"learning-rate finder{' (' + result.stage + ')' if result.stage else ''}")
        ax.legend(fontsize=8)
        return save_figure(fig, out_png)


# === Learner integration ===


def _sweep_data(learner, st, data, n, batch_size: int | None):
    """The model and batches a stage's sweep runs on: the head on cached backbone features
    (a head-only stage with ``cache_features``), else the classifier on the data pipeline."""
    import tensorflow as tf

    from tl_kit.train.feature_cache import extract_features

    batch = min(batch_size or st.batch_size, data.size("train"))
    if n == 0 and st.cache_features:
        (feats, labels), = extract_features(learner.classifier, data, [("train", None, 0)],
                                            seed=learner.seed, log=learner.log)
        model = learner.classifier.head_model(feats.shape[1:])
        ds = (tf.data.Dataset.from_tensor_slices((feats.astype("float32"), labels))
              .shuffle(len(feats), seed=learner.seed).batch(batch))
        return model, ds
    aug = None if st.augment in (None, "none") else st.augment
    return (learner.classifier.assemble(train_bn=st.train_bn),
            data.dataset("train", batch_size=batch, training=True, augment=aug, seed=learner.seed))


def learner_lr_find(learner, data=None, *, stage: int | str | None = None, out: str | os.PathLike | None = None,
                    min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100,
                    batch_size: int | None = None) -> LRFindResult:
    """Backs :meth:`tl_kit.train.Learner.lr_find`: the sweep on ``stage``'s trainable layers
    (its blocks, optimizer, weight decay, label smoothing, augmentation, batch size; a
    head-only stage with ``cache_features`` sweeps the head on cached backbone features),
    every weight and trainable flag restored afterwards. With ``out``: ``lr_find.png`` and
    ``lr_find.json`` there. The sweep runs in this process on the default device (a short
    interactive measurement; it does not go through the learner's distribution strategy)."""
    import keras

    from tl_kit._io import write_json_atomic
    from tl_kit.backbones import set_trainable_blocks
    from tl_kit.data import Data
    from tl_kit.train.stages import class_weight

    if data is None and learner.data is None:
        raise UserError("No data for the learning-rate finder: pass a folder, arrays, a "
                        "tf.data.Dataset or 'tfds:NAME'. Received: data=None")
    data = data if isinstance(data, Data) else learner.load_data(data, whole=True)
    learner.adopt_class_names(data)
    if learner.model is None:
        learner.build(data.info.num_classes)
    # the recipe fit would choose, without fixing the learner's regime for fit
    recipe = learner.recipe if learner.recipe is not None else learner.resolve_recipe(data, adopt=False)
    st = recipe.stages[stage_index(recipe, stage)]
    classifier = learner.classifier
    n = classifier.trainable_blocks(st, learner.unfreeze if learner.unfreeze is not None
                                    else learner.spec.default_unfreeze)
    layers = list(learner.model._flatten_layers(include_self=True, recursive=True))
    flags = [layer.trainable for layer in layers]
    previous = learner.model
    all_weights = [np.array(w) for w in previous.get_weights()]
    try:
        set_trainable_blocks(classifier.backbone, classifier.blocks, n, train_bn=st.train_bn)
        model, ds = _sweep_data(learner, st, data, n, batch_size)
        result = lr_sweep(model, ds, loss=keras.losses.CategoricalCrossentropy(label_smoothing=st.label_smoothing),
                          optimizer=st.optimizer, weight_decay=st.weight_decay, min_lr=min_lr,
                          max_lr=max_lr, num_steps=num_steps, class_weight=class_weight(st, data))
    finally:
        for layer, flag in zip(layers, flags, strict=True):
            layer.trainable = flag
        previous.set_weights(all_weights)
        learner.model = previous
    result.stage = st.name
    learner.log(f"lr_find: stage {st.name!r}, {len(result.learning_rates)} steps "
                 f"({result.stopped}); suggested learning rate {result.suggested:.3g} "
                 f"(steepest descent), min/10 {result.min_div_10:.3g}")
    if out is not None:
        out = Path(out)
        result.files["plot_png"] = str(plot_lr_find(result, out / "lr_find.png"))
        result.files["json"] = str(out / "lr_find.json")
        write_json_atomic(out / "lr_find.json", result.to_dict())
    return result
