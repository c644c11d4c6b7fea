"""The learner: backbone + new softmax head, trained stage by stage from a recipe.

```python
learner = tl_kit.finetune(backbone="vgg16", num_classes=3)      # builds, does not train
learner.fit("data/my_photos")                                   # folder, tf.data, arrays, "tfds:..."
learner.evaluate(); learner.predict(["a.jpg"]); learner.export("exports/my_model")
```

``learner.model`` is a plain functional ``keras.Model``::

    image (raw [0, 255]) -> preprocess -> backbone (nested Model, called with training=False)
      -> head_pool -> head_dropout -> predictions (Dense softmax, float32)

The backbone is called with ``training=False`` so its BatchNormalization layers stay in
inference mode even when their block is unfrozen (the Keras guide's rule); a stage with
``train_bn=True`` reassembles the graph without it.

Every fit writes a run directory: ``config.toml`` (resolved recipe and choices),
``history.csv`` (stage, epoch, metrics), ``metrics.json``, ``checkpoints/`` (weights after
each stage, ``model.keras`` at the end), ``logs/`` (TensorBoard), ``train.log`` and the data
``manifest.json``.

Structure (for the distribution/resume integration): :meth:`Learner._strategy_scope` is
the one place the strategy is entered; :meth:`Learner._callbacks` builds the callbacks of a
stage; :meth:`Learner._save_checkpoint` writes checkpoints; each stage runs in
:meth:`Learner._run_stage`, which calls :meth:`Learner._fit_head_cached` or
:meth:`Learner._fit_model`.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tl_kit.backbones import (
    BackboneSpec,
    assign_blocks,
    resolve_backbone,
    set_trainable_blocks,
    trainable_params,
)
from tl_kit.layers import Preprocess
from tl_kit.recipes import Recipe, Stage, builtin_recipe, choose_regime, load_recipe

__all__ = ["Learner", "finetune", "WarmupCosine", "scratch_recipe"]

FLATTEN_MAX = 4096  # head_pool="auto": flatten maps up to this many values, else average


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


def scratch_recipe(epochs: int = 30, learning_rate: float = 1e-3, **stage: Any) -> Recipe:
    """A one-stage recipe that trains every layer from random weights (the baseline)."""
    return Recipe(name="scratch", description="Every layer from random initialisation.",
                  stages=[Stage(name="scratch", trainable="all", epochs=epochs,
                                learning_rate=learning_rate, cache_features=False, **stage)])


def _resolve_strategy(strategy: Any):
    try:
        from tl_kit.distribute import resolve_strategy
    except ImportError:  # pragma: no cover - distribute.py is part of the package
        import tensorflow as tf

        return tf.distribute.get_strategy()
    return resolve_strategy(strategy)


def _is_chief(strategy) -> bool:
    try:
        from tl_kit.distribute import is_chief
    except ImportError:  # pragma: no cover
        return True
    return is_chief(strategy)


class Learner:
    """Owns the model, the recipe, the strategy and the run directory.

    Args:
        backbone: a backbone name (:func:`tl_kit.list_backbones`) or a BackboneSpec.
        num_classes: number of classes; ``None`` takes it from the data at ``fit``.
        class_names: names in label order (default: from the data, or ``"0".."K-1"``).
        regime: ``"auto"`` (from images per class, :func:`tl_kit.recipes.choose_regime`),
            ``"small"``, ``"medium"``, ``"large"`` or ``"scratch"``; ignored when ``recipe``
            is given.
        recipe: a Recipe, a built-in name or a TOML path.
        weights: ``"auto"`` (ImageNet where published, else random), ``"imagenet"``,
            ``None``, a weights file, a ``.keras`` model or a run directory.
        image_size: input size (int or (H, W)); default: the recipe's, else the backbone's.
        channels: 1 or 3; default: the backbone's.
        run_dir: where the run is written (default ``runs/<backbone>-<time>``).
        strategy: ``"auto"`` or a ``tf.distribute.Strategy`` (:mod:`tl_kit.distribute`).
        seed: random seed (weights of the head, shuffling, augmentation).
        verbose: 0 silent, 1 log lines, 2 also Keras progress bars.
        tensorboard: write TensorBoard logs.
        unfreeze: override the backbone's ``default_unfreeze`` (``trainable="default"``).
        save_model: write checkpoints/ and model.keras (off for throw-away runs).
    """

    def __init__(
        self,
        backbone: str | BackboneSpec = "vgg16",
        num_classes: int | None = None,
        *,
        class_names: Sequence[str] | None = None,
        regime: str = "auto",
        recipe: Recipe | str | os.PathLike | None = None,
        weights: Any = "auto",
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        run_dir: str | os.PathLike | None = None,
        strategy: Any = "auto",
        seed: int = 0,
        verbose: int = 1,
        tensorboard: bool = True,
        unfreeze: int | None = None,
        save_model: bool = True,
    ):
        if regime not in ("auto", "small", "medium", "large", "scratch"):
            from tl_kit.errors import UserError

            raise UserError(
                "`regime` must be 'auto', 'small', 'medium', 'large' or 'scratch'. "
                f"Received: regime={regime!r}"
            )
        name = backbone.name if isinstance(backbone, BackboneSpec) else backbone
        requested = weights
        if weights == "auto":
            from tl_kit.backbones import get_backbone

            weights = "imagenet" if (get_backbone(name).imagenet or resolve_backbone(name, "imagenet")[0].imagenet) else None
        self.spec, note = resolve_backbone(name, weights)
        self.weights = weights
        self.requested_weights = requested
        self.regime = regime
        self.recipe: Recipe | None = load_recipe(recipe) if recipe is not None else None
        self.regime_reason = ""
        self.seed = int(seed)
        self.verbose = int(verbose)
        self.tensorboard = bool(tensorboard)
        self.unfreeze = unfreeze
        self.save_model = bool(save_model)
        self.class_names = list(class_names) if class_names is not None else None
        self.num_classes = num_classes if num_classes is not None else (
            len(self.class_names) if self.class_names else None)
        size = image_size if image_size is not None else (
            self.recipe.image_size if self.recipe and self.recipe.image_size else None)
        if size is None:
            size = self.spec.default_size[:2]
        self.image_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.channels = int(channels or self.spec.default_size[2])
        self.run_dir = Path(run_dir) if run_dir is not None else Path(
            "runs", f"{self.spec.name.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
        self.strategy = _resolve_strategy(strategy)
        self.data = None
        self.model: keras.Model | None = None
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self._log_lines: list[str] = []
        if note:
            self._log(note)
        if requested == "auto":
            self._log(f"weights='auto' -> {weights!r} for backbone {self.spec.name!r}")
        if self.num_classes is not None:
            self.build()

    # === Logging ===

    def _log(self, msg: str) -> None:
        self._log_lines.append(msg)
        if self.verbose:
            print(f"[tl_kit] {msg}", flush=True)
        if self.run_dir.exists():
            with open(self.run_dir / "train.log", "a") as f:
                f.write(msg + "\n")

    # === Model ===

    @contextlib.contextmanager
    def _strategy_scope(self):
        """The one place the distribution strategy is entered."""
        with self.strategy.scope():
            yield

    def build(self, num_classes: int | None = None) -> keras.Model:
        """Build backbone + head for ``num_classes`` (idempotent once built)."""
        if num_classes is not None:
            self.num_classes = int(num_classes)
        if self.num_classes is None or self.num_classes < 1:
            from tl_kit.errors import UserError

            raise UserError(f"`num_classes` must be a positive integer. Received: num_classes={self.num_classes!r}")
        if self.class_names is None:
            self.class_names = [str(i) for i in range(self.num_classes)]
        recipe = self.recipe or builtin_recipe("small")
        keras.utils.set_random_seed(self.seed)
        with self._strategy_scope():
            inner = self.spec.build((*self.image_size, self.channels), weights=self.weights)
            out = inner.get_layer(recipe.head_layer).output if recipe.head_layer else inner.output
            self.backbone = keras.Model(inner.input, out, name="backbone")
            self.blocks = self.spec.blocks
            fshape = tuple(self.backbone.output.shape[1:])
            pool = recipe.head_pool
            if pool == "auto":
                size = int(np.prod([d for d in fshape if d is not None])) if None not in fshape else None
                pool = "flatten" if len(fshape) == 1 or (size is not None and size <= FLATTEN_MAX) else "avg"
            if len(fshape) == 1:
                self._pool = keras.layers.Identity(name="head_pool")
            elif pool == "flatten":
                self._pool = keras.layers.Flatten(name="head_pool")
            elif pool == "max":
                self._pool = keras.layers.GlobalMaxPooling2D(name="head_pool")
            else:
                self._pool = keras.layers.GlobalAveragePooling2D(name="head_pool")
            self.head_pool = pool
            self._preprocess = Preprocess(self.spec.preprocess, name="preprocess")
            self._dropout = keras.layers.Dropout(recipe.dropout, name="head_dropout", seed=self.seed)
            self._dense = keras.layers.Dense(self.num_classes, activation="softmax",
                                             dtype="float32", name="predictions")
            self.model = self._assemble(train_bn=False)
        self._log(
            f"model: {self.spec.name} ({self.spec.source}) at {self.image_size[0]}x{self.image_size[1]}"
            f"x{self.channels}, weights={self._weights_label()}, head: {pool} pooling of "
            f"{fshape} -> dropout {recipe.dropout} -> Dense({self.num_classes}), "
            f"{self.model.count_params():,} parameters"
        )
        return self.model

    def _weights_label(self) -> str:
        w = self.weights
        return repr(w) if w in (None, "imagenet") else repr(os.fspath(w))

    def _assemble(self, train_bn: bool) -> keras.Model:
        image = keras.Input((*self.image_size, self.channels), name="image")
        x = self._preprocess(image)
        x = self.backbone(x) if train_bn else self.backbone(x, training=False)
        x = self._pool(x)
        x = self._dropout(x)
        out = self._dense(x)
        return keras.Model(image, out, name=f"{self.spec.name.replace(':', '_')}_classifier")

    def _feature_model(self) -> keras.Model:
        image = keras.Input((*self.image_size, self.channels), name="image")
        x = self.backbone(self._preprocess(image), training=False)
        return keras.Model(image, self._pool(x), name="features")

    # === Data ===

    def _load(self, data, split_seed: int | None = None, whole: bool = False):
        from tl_kit.data import Data, load_data

        if isinstance(data, Data):
            return data
        if data is None:
            if self.data is None:
                from tl_kit.errors import UserError

                raise UserError("No data: pass a folder, tf.data.Dataset, arrays or 'tfds:NAME'. Received: data=None")
            return self.data
        if whole:  # evaluation data: every example, no manifest in the run directory
            return load_data(data, image_size=self.image_size, channels=self.channels,
                             validation_split=0.0, num_classes=self.num_classes,
                             class_names=self.class_names)
        return load_data(data, image_size=self.image_size, channels=self.channels,
                         seed=self.seed if split_seed is None else split_seed,
                         run_dir=str(self.run_dir), num_classes=self.num_classes,
                         class_names=self.class_names)

    # === Recipe ===

    def _resolve_recipe(self, data) -> Recipe:
        if self.recipe is not None:
            self.regime_reason = self.regime_reason or f"recipe {self.recipe.name!r} given"
            return self.recipe
        regime = self.regime
        if regime == "scratch":
            self.regime_reason = "regime='scratch' requested"
            return scratch_recipe()
        if regime == "auto":
            if self.weights is None:
                regime, self.regime_reason = "large", (
                    "no pretrained weights (weights=None): every layer has to learn")
            else:
                regime, self.regime_reason = choose_regime(data.info.split_counts.get("train", data.info.counts))
        else:
            self.regime_reason = f"regime={regime!r} requested"
        self.regime = regime
        return builtin_recipe(regime)

    def _n_blocks(self, stage: Stage) -> int | str:
        t = stage.trainable
        if t == "head":
            return 0
        if t == "all":
            return "all"
        n_blocks = len([g for g in assign_blocks(self.backbone, self.blocks) if g])
        n = (self.unfreeze if self.unfreeze is not None else self.spec.default_unfreeze) if t == "default" else t
        return min(int(n), n_blocks)

    # === Training ===

    def fit(self, data=None, *, recipe: Recipe | str | None = None, verbose: int | None = None) -> Learner:
        """Train on ``data`` (folder, tf.data.Dataset, (x, y) arrays, dict of splits,
        ``"tfds:NAME"`` or a :class:`tl_kit.data.Data`) following the recipe's stages."""
        if verbose is not None:
            self.verbose = int(verbose)
        if recipe is not None:
            self.recipe = load_recipe(recipe)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for line in self._log_lines:
            with open(self.run_dir / "train.log", "a") as f:
                f.write(line + "\n")
        self._log_lines = []
        data = self._load(data)
        self.data = data
        if self.model is None:
            if self.class_names is None:
                self.class_names = list(data.info.class_names)
            self.build(data.info.num_classes)
        elif data.info.num_classes != self.num_classes:
            from tl_kit.errors import UserError

            raise UserError(f"The model has {self.num_classes} classes but the data has "
                            f"{data.info.num_classes}. Received: data={data!r}")
        recipe = self._resolve_recipe(data)
        self.resolved_recipe = recipe
        self._log(f"regime: {recipe.name} - {self.regime_reason}")
        self._write_config(recipe, data)
        start = time.perf_counter()
        for index, stage in enumerate(recipe.stages):
            self._run_stage(index, stage, data)
        self.metrics["train_seconds"] = round(time.perf_counter() - start, 3)
        self._finish_run()
        return self

    def _run_stage(self, index: int, stage: Stage, data) -> None:
        n = self._n_blocks(stage)
        trainable = set_trainable_blocks(self.backbone, self.blocks, n, train_bn=stage.train_bn)
        self.model = self._assemble(train_bn=stage.train_bn)
        head = int(sum(int(np.prod(w.shape)) for w in self._dense.trainable_weights))
        names = [d for d, g in zip(self.blocks, assign_blocks(self.backbone, self.blocks), strict=True) if g]
        which = "none (backbone frozen)" if n == 0 else ("all" if n == "all" else ", ".join(names[len(names) - n:]))
        self._log(f"stage {index + 1} {stage.name!r}: trainable backbone blocks: {which}; "
                  f"trainable parameters: {trainable_params(self.model):,} "
                  f"(backbone {trainable:,}, head {head:,}); lr {stage.learning_rate:g}, "
                  f"{stage.epochs} epochs max, batch {stage.batch_size}, augment {stage.augment!r}")
        if stage.epochs == 0:
            return
        if n == 0 and stage.cache_features:
            hist = self._fit_head_cached(stage, data)
        else:
            hist = self._fit_model(stage, data)
        for epoch, row in enumerate(_history_rows(hist)):
            self.history.append({"stage": stage.name, "epoch": epoch + 1, **row})
        self._write_history()
        self._save_checkpoint(f"{index + 1}_{stage.name}")

    def _compile(self, model: keras.Model, stage: Stage, steps_per_epoch: int) -> None:
        total = max(stage.epochs * steps_per_epoch, 1)
        lr = WarmupCosine(stage.learning_rate, stage.warmup_epochs * steps_per_epoch, total,
                          cosine=stage.schedule == "cosine")
        wd = stage.weight_decay or None
        if stage.optimizer == "adam":
            opt = keras.optimizers.Adam(lr, weight_decay=wd)
        elif stage.optimizer == "adamw":
            opt = keras.optimizers.AdamW(lr, weight_decay=wd or 1e-4)
        elif stage.optimizer == "sgd":
            opt = keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd)
        else:
            opt = keras.optimizers.RMSprop(lr, weight_decay=wd)
        model.compile(optimizer=opt,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
                      metrics=["accuracy"])

    def _callbacks(self, stage: Stage, has_val: bool, cached: bool = False) -> list:
        """Callbacks of one stage: early stopping (validation loss) and TensorBoard."""
        cbs: list = []
        if stage.early_stopping and has_val:
            cbs.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=stage.early_stopping,
                restore_best_weights=stage.restore_best, verbose=0))
        elif stage.early_stopping and not has_val:
            self._log("no validation split: early stopping is off for this stage")
        if self.tensorboard and _is_chief(self.strategy):
            log_dir = self.run_dir / "logs" / (stage.name + ("_cached" if cached else ""))
            if importlib.util.find_spec("tensorboard") is not None:
                cbs.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False,
                                                       profile_batch=0))
            else:  # TensorBoard not installed: the same scalars as JSON lines
                cbs.append(_JsonLinesLogger(log_dir / "scalars.jsonl"))
        return cbs

    def _class_weight(self, stage: Stage, data) -> dict[int, float] | None:
        if not stage.class_weights:
            return None
        weights = data.info.class_weights
        return {int(k): float(v) for k, v in weights.items()} if weights else None

    def _fit_model(self, stage: Stage, data):
        """Train the whole classifier (frozen blocks excepted) on the data pipelines."""
        n_train = data.size("train")
        batch = min(stage.batch_size, n_train)
        steps = math.ceil(n_train / batch)
        cycle = stage.min_steps_per_epoch > steps
        steps = max(steps, stage.min_steps_per_epoch)
        aug = None if stage.augment in (None, "none") else stage.augment
        train = data.dataset("train", batch_size=batch, training=True, augment=aug, seed=self.seed,
                             repeat=cycle)
        val = data.dataset("val", batch_size=max(batch, 64)) if data.has("val") else None
        with self._strategy_scope():
            self._compile(self.model, stage, steps)
        return self.model.fit(train, validation_data=val, epochs=stage.epochs,
                              steps_per_epoch=steps if cycle else None,
                              callbacks=self._callbacks(stage, val is not None),
                              class_weight=self._class_weight(stage, data),
                              verbose=2 if self.verbose >= 2 else 0)

    def _features(self, data, split: str, augment: str | None, copies: int) -> tuple[np.ndarray, np.ndarray]:
        fm = self._feature_model()
        feats, labels = [], []
        passes = [(False, None)] + [(True, augment)] * (copies if augment else 0)
        for i, (training, aug) in enumerate(passes):
            ds = data.dataset(split, batch_size=64, training=training, augment=aug, shuffle=False,
                              seed=self.seed + i)
            for x, y in ds:
                feats.append(fm(x, training=False).numpy())
                labels.append(y.numpy())
        return np.concatenate(feats), np.concatenate(labels)

    def _fit_head_cached(self, stage: Stage, data):
        """Head-only stage: run the frozen backbone once (plus augmented copies), train the
        head (the same Dropout and Dense layers) on the cached features."""
        aug = None if stage.augment in (None, "none") else stage.augment
        t0 = time.perf_counter()
        xtr, ytr = self._features(data, "train", aug, stage.cache_copies)
        val = self._features(data, "val", None, 0) if data.has("val") else None
        self._log(f"feature cache: {len(xtr)} train vectors of {xtr.shape[1:]} "
                  f"({stage.cache_copies if aug else 0} augmented copies) in {time.perf_counter() - t0:.1f}s")
        if stage.head_init == "imprint":
            self._imprint(xtr, ytr)
        with self._strategy_scope():
            fin = keras.Input(xtr.shape[1:], name="features")
            head = keras.Model(fin, self._dense(self._dropout(fin)), name="head")
            batch = min(stage.batch_size, len(xtr))
            if stage.min_steps_per_epoch > math.ceil(len(xtr) / batch):  # cycle tiny caches
                reps = math.ceil(stage.min_steps_per_epoch * batch / len(xtr))
                xtr, ytr = np.concatenate([xtr] * reps), np.concatenate([ytr] * reps)
            self._compile(head, stage, math.ceil(len(xtr) / batch))
        return head.fit(xtr, ytr, batch_size=batch, epochs=stage.epochs, shuffle=True,
                        validation_data=val, callbacks=self._callbacks(stage, val is not None, True),
                        class_weight=self._class_weight(stage, data),
                        verbose=2 if self.verbose >= 2 else 0)

    def _imprint(self, feats: np.ndarray, onehot: np.ndarray) -> None:
        """Set the head to the nearest-class-mean classifier of ``feats`` (weight imprinting):
        logit_c = a * (f . mu_c - |mu_c|^2 / 2), i.e. -a/2 |f - mu_c|^2 up to a constant."""
        labels = onehot.argmax(axis=1)
        mu = np.stack([feats[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(feats.shape[1])
                       for c in range(self.num_classes)])
        within = float(np.mean(np.sum((feats - mu[labels]) ** 2, axis=1))) or 1.0
        a = 2.0 / within
        self._dense.kernel.assign((a * mu.T).astype("float32"))
        self._dense.bias.assign((-0.5 * a * np.sum(mu**2, axis=1)).astype("float32"))
        self._log(f"head imprinted with the class means of {len(feats)} cached feature vectors")

    # === Run directory ===

    def _write_config(self, recipe: Recipe, data) -> None:
        import tomli_w

        cfg = {
            "run": {
                "backbone": self.spec.name,
                "weights": str(self.weights) if self.weights is not None else "none",
                "regime": recipe.name,
                "regime_reason": self.regime_reason,
                "image_size": list(self.image_size),
                "channels": self.channels,
                "num_classes": int(self.num_classes),
                "class_names": list(self.class_names),
                "head_pool": self.head_pool,
                "seed": self.seed,
                "data_source": data.info.source,
            },
            "recipe": recipe.to_dict(),
        }
        (self.run_dir / "config.toml").write_text(tomli_w.dumps(cfg))

    def _write_history(self) -> None:
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        with open(self.run_dir / "history.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)

    def _save_checkpoint(self, tag: str) -> None:
        """Weights after a stage, under checkpoints/ (chief only)."""
        if not (self.save_model and _is_chief(self.strategy)):
            return
        ckpt = self.run_dir / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(ckpt / f"{tag}.weights.h5")

    def _finish_run(self) -> None:
        self.model = self._assemble(train_bn=False)
        if self.data is not None and self.data.has("val"):
            self.metrics["val"] = self._evaluate_split(self.data, "val")
        if self.save_model and _is_chief(self.strategy):
            self.model.save(self.run_dir / "model.keras")
        self._write_metrics()
        self._log(f"run directory: {self.run_dir}")

    def _write_metrics(self) -> None:
        (self.run_dir / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=float))

    # === Evaluate / predict / export ===

    def _evaluate_split(self, data, split: str) -> dict[str, float]:
        self.model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
        res = self.model.evaluate(data.dataset(split, batch_size=64), verbose=0, return_dict=True)
        return {k: float(v) for k, v in res.items()}

    def evaluate(self, data=None, split: str | None = None) -> dict[str, float]:
        """Loss and accuracy. ``data=None``: the fitted data's ``split`` (default its test
        split, else validation); raw data (folder, arrays, ...): every example in it.
        Written to metrics.json."""
        from tl_kit.data import Data

        if self.model is None:
            self.build()
        raw = data is not None and not isinstance(data, Data)
        data = self._load(data, whole=raw)
        if raw:
            split = "train"  # all of it
        elif split is None:
            split = "test" if data.has("test") else ("val" if data.has("val") else "train")
        result = self._evaluate_split(data, split)
        self.metrics["evaluate" if raw else split] = result
        if self.run_dir.exists():
            self._write_metrics()
        return result

    def _images(self, images) -> np.ndarray:
        if isinstance(images, (str, os.PathLike)):
            images = [images]
        if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike)):
            from PIL import Image

            mode = "L" if self.channels == 1 else "RGB"
            arr = []
            for p in images:
                with Image.open(p) as im:
                    im = im.convert(mode).resize((self.image_size[1], self.image_size[0]), Image.BILINEAR)
                    a = np.asarray(im, dtype="float32")
                arr.append(a[..., None] if a.ndim == 2 else a)
            return np.stack(arr)
        x = np.asarray(images, dtype="float32")
        if x.ndim == 3:
            x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
        return x

    def predict(self, images, *, batch_size: int = 32) -> dict[str, Any]:
        """Class names and probabilities for image paths or raw [0, 255] arrays.

        Returns ``{"labels": [name, ...], "probabilities": (N, K) array, "class_names": [...]}``.
        """
        x = self._images(images)
        probs = np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0))
        return {"labels": [self.class_names[i] for i in probs.argmax(axis=1)],
                "probabilities": probs, "class_names": list(self.class_names)}

    def export(self, path: str | os.PathLike, **kwargs: Any) -> dict:
        """Export through :func:`tl_kit.export.export_model` (SavedModel by default)."""
        from tl_kit.export import export_model

        return export_model(self.model, path, self.class_names, **kwargs)

    def __repr__(self) -> str:
        return (f"Learner(backbone={self.spec.name!r}, num_classes={self.num_classes}, "
                f"weights={self._weights_label()}, run_dir={str(self.run_dir)!r})")


class _JsonLinesLogger(keras.callbacks.Callback):
    """Epoch metrics as JSON lines (the TensorBoard fallback)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}) + "\n")


def _history_rows(hist) -> list[dict[str, float]]:
    h = getattr(hist, "history", {}) or {}
    n = max((len(v) for v in h.values()), default=0)
    return [{k: float(v[i]) for k, v in h.items() if i < len(v)} for i in range(n)]


def finetune(
    backbone: str = "vgg16",
    num_classes: int | None = None,
    data=None,
    regime: str = "auto",
    recipe: Recipe | str | os.PathLike | None = None,
    weights: Any = "auto",
    image_size: int | Sequence[int] | None = None,
    run_dir: str | os.PathLike | None = None,
    strategy: Any = "auto",
    **kwargs: Any,
) -> Learner:
    """Build a learner (backbone + new softmax head); with ``data`` also train it.

    ``weights="auto"`` means ImageNet where published (Keras Applications, and tl_kit names
    with a Keras twin such as ``"resnet50"``), else random initialisation. Offline without
    the cached file, ImageNet fails at once naming the file and the folder to put it in.

    Example:
    ```python
    learner = tl_kit.finetune(backbone="lenet5", weights=None, data=(x, y))
    ```
    """
    learner = Learner(backbone, num_classes, regime=regime, recipe=recipe, weights=weights,
                      image_size=image_size, run_dir=run_dir, strategy=strategy, **kwargs)
    if data is not None:
        learner.fit(data)
    return learner
