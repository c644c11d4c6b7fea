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
each stage), ``model.keras`` + ``class_names.json`` at the end
(:func:`tl_kit.predict.save_for_inference`; :func:`tl_kit.predict.load_for_inference` reads
the run directory back), ``plots/history.png`` (training curves, at the end),
``logs/`` (TensorBoard), ``train.log`` and the data ``manifest.json``. ``learner.evaluate``
adds its report to ``metrics.json`` plus ``confusion_matrix.csv`` and ``plots/``.

Training runs through :func:`tl_kit.distribute.custom_fit` under every strategy (one code
path: the same checkpoints, history, early stopping and progress lines on one device,
several GPUs and several machines; Keras 3's ``fit`` breaks under
``MultiWorkerMirroredStrategy``, keras-team/keras#20585).

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

from tl_kit._io import write_json_atomic
from tl_kit.backbones import (
    BackboneSpec,
    assign_blocks,
    resolve_backbone,
    set_trainable_blocks,
    trainable_params,
)
from tl_kit.layers import Preprocess
from tl_kit.recipes import (  # noqa: F401  (scratch_recipe: re-exported as tl_kit.train.scratch_recipe)
    Recipe,
    Stage,
    builtin_recipe,
    choose_regime,
    load_recipe,
    scratch_recipe,
)

__all__ = ["Learner", "finetune", "WarmupCosine", "scratch_recipe"]

BN_SCRATCH_MOMENTUM = 0.9  # BatchNorm momentum when training from random weights
EAGER_EVAL_MAX = 256  # splits up to this size are evaluated eagerly after fit (no graph trace)
BN_RECALIBRATION_BATCHES = 20  # training batches averaged by precise BatchNorm each epoch
FLATTEN_MAX = 4096  # head_pool="auto": flatten maps up to this many values, else average
# Early stopping decides only on at least this many validation images: below it one image
# moves the validation loss more than an epoch of training does, and a stop at a noise dip
# left identical runs anywhere between 0.54 and 0.90 test accuracy. Smaller validation sets
# run the stage's full schedule and keep the best epoch by the validation loss averaged over
# SMALL_VAL_SMOOTHING epochs (benchmarks/bench_stability.py).
EARLY_STOPPING_MIN_VAL = 100
SMALL_VAL_SMOOTHING = 3


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


RUN_STATE = "run.json"  # {"status": "running" | "complete", ...}: what a rerun finds
# What fit writes into a run directory (removed by overwrite=True; nothing else is touched).
RUN_ARTEFACTS = ("config.toml", "history.csv", "metrics.json", "model.keras", "train.log",
                 RUN_STATE, "manifest.json", "hygiene.csv", "hygiene.json", "checkpoints", "logs",
                 "class_names.json", "confusion_matrix.csv", "plots", "hygiene_index", "evaluations")
# Settings of config.toml that may change between a run and its resume (not its identity).
_VOLATILE = ("run.regime_reason", "run.strategy", "run.replicas", "run.precision", "run.jit_compile",
             "recipe.calibrate")  # calibration runs after training: not part of a run's identity


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list) and any(isinstance(v, dict) for v in d):
        out = {}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: d}


def config_differences(old: dict, new: dict) -> list[str]:
    """``["recipe.stages[0].epochs: 3 -> 5", ...]`` for the settings that identify a run."""
    a, b = _flatten(old), _flatten(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in _VOLATILE:
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def _check_writable(directory: Path) -> None:
    """Create ``directory`` and write a probe file, or fail naming it (before training)."""
    from tl_kit.errors import UserError

    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".tl_kit_write_test"
        with open(probe, "wb") as f:
            f.write(b"0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"Cannot write the run directory {str(directory)!r} ({exc.strerror or exc}); "
            f"choose a writable location with free space. Received: run_dir={str(directory)!r}"
        ) from None


class Learner:
    """Owns the model, the recipe, the strategy and the run directory.

    Args:
        backbone: a backbone name (:func:`tl_kit.list_backbones`) or a BackboneSpec.
        num_classes: number of classes; ``None`` takes it from the data at ``fit``.
        class_names: names in label order (default: from the data, or ``"0".."K-1"``).
        regime: ``"auto"`` (from images per class, :func:`tl_kit.recipes.choose_regime`;
            with ``weights=None`` always ``"scratch"``: random features make head-only
            training meaningless, see :func:`scratch_recipe`), ``"small"``, ``"medium"``,
            ``"large"`` or ``"scratch"``; ignored when ``recipe`` is given. A head-only
            stage, or BatchNorm in inference mode, with ``weights=None`` logs a warning.
        recipe: a Recipe, a built-in name or a TOML path.
        weights: ``"auto"`` (ImageNet where published, else random), ``"imagenet"``,
            ``None``, a weights file, a ``.keras`` model or a run directory.
        image_size: input size (int or (H, W)); default: the recipe's, else the backbone's.
        channels: 1 or 3; default: the backbone's.
        run_dir: where the run is written (default ``runs/<backbone>-<time>``).
        strategy: ``"auto"`` (``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a
            cluster, ``MirroredStrategy`` with several GPUs, else the default strategy),
            ``"mirrored"``, ``"multiworker"``, ``"default"`` or a ``tf.distribute.Strategy``.
            Resolved first thing (``MultiWorkerMirroredStrategy`` must exist before
            TensorFlow starts). The model, optimizers and metrics are created in its scope;
            recipe batch sizes are GLOBAL (split across replicas; scale the learning rate
            yourself if you change the global batch, e.g. with
            :func:`tl_kit.distribute.scale_learning_rate`). In a multi-worker run only the
            chief writes into ``run_dir``; other workers write the same files to
            :func:`tl_kit.distribute.worker_dir` (a temp folder).
        precision: ``"auto"`` (``mixed_bfloat16`` on GPUs with compute capability >= 8,
            ``mixed_float16`` on 7.x, else float32), ``"float32"`` (mixed precision off),
            ``"mixed_float16"``, ``"mixed_bfloat16"``. The softmax head stays float32.
        jit_compile: ``"auto"`` (XLA on GPU when every layer supports it; augmentation
            runs in the input pipeline, outside the model), ``True`` or ``False``.
        overwrite: replace a run directory that already holds a complete run, or a run
            with different settings (see "Run directories" below).
        seed: random seed (weights of the head, shuffling, augmentation).
        verbose: 0 silent, 1 log lines, 2 also Keras progress bars.
        tensorboard: write TensorBoard logs.
        unfreeze: override the backbone's ``default_unfreeze`` (``trainable="default"``).
        save_model: write checkpoints/ and model.keras (off for throw-away runs; such a
            run cannot resume).
        checkpoint_interval: when a stage writes its model + optimizer checkpoint at an
            epoch's end (:func:`tl_kit.distribute.custom_fit`): ``"auto"`` (after the first
            epoch, then once 60 s and 9x what the last write took have passed, so writing
            stays under ~10% of the time), ``0`` (every epoch) or a number
            of seconds; always at the stage's end.

    Run directories, resume and overwrite (what ``fit`` does with ``run_dir``):
        * Before training, ``run_dir`` is created and a probe file written: an unwritable
          location (or too little free space for the checkpoints) fails at once.
        * New or empty directory: a fresh run.
        * A COMPLETE run (``run.json`` status "complete"): :class:`~tl_kit.errors.UserError`
          unless ``overwrite=True`` (``tl-kit train --overwrite``), which deletes what tl_kit
          wrote there (config, history, metrics, model, logs, checkpoints, manifest) and
          starts again. Nothing else in the directory is touched.
        * An INCOMPLETE run (killed, crashed, NaN-stopped) with the same resolved settings
          (``config.toml``: backbone, weights, image size, classes, seed, data source,
          recipe): RESUMES. Finished stages are skipped (their weights are loaded from
          ``checkpoints/<n>_<stage>.weights.h5``); the interrupted stage continues after its
          last finished epoch from ``checkpoints/<n>_<stage>/`` (model, optimizer and
          schedule state, early-stopping state); the data split is reused from
          ``manifest.json``; ``history.csv`` holds every epoch once. The strategy, number
          of devices and precision may differ on resume.
        * An incomplete run with DIFFERENT settings: :class:`~tl_kit.errors.UserError`
          naming the directory and each differing setting, unless ``overwrite=True``.
        * Checkpoints: per stage, one model + optimizer checkpoint, written on the
          ``checkpoint_interval`` policy and at the stage's end, plus the best epoch's
          weights; a resumed stage restarts after the epoch of its last checkpoint (later
          epochs run again, each epoch once in the history). A finished stage keeps only
          ``<n>_<stage>.weights.h5`` (no optimizer state) and its ``state.json``. The run
          directory's size is logged at the end and written to run.json and metrics.json
          (``run_dir_bytes``; checkpoint writes and seconds under ``checkpoints``).
        * A NaN/inf loss stops training with :class:`tl_kit.distribute.NonFiniteLossError`;
          the model is reset to the last good epoch, whose checkpoint stays on disk.
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
        precision: str = "auto",
        jit_compile: bool | str = "auto",
        overwrite: bool = False,
        checkpoint_interval: float | str = "auto",
    ):
        from tl_kit import distribute as dist

        # First TensorFlow call of the process (MultiWorkerMirroredStrategy needs that).
        self.strategy = dist.resolve_strategy(strategy)
        self.precision = dist.resolve_precision(precision)
        if jit_compile not in (True, False, "auto"):
            from tl_kit.errors import UserError

            raise UserError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
        self.jit_compile = jit_compile
        self.overwrite = bool(overwrite)
        if regime not in ("auto", "small", "medium", "large", "scratch"):
            from tl_kit.errors import UserError

            raise UserError(
                "`regime` must be 'auto', 'small', 'medium', 'large' or 'scratch'. "
                f"Received: regime={regime!r}"
            )
        requested = weights
        if isinstance(backbone, BackboneSpec):
            # A spec the caller made (e.g. a builder with other arguments) is used as given.
            if weights == "auto":
                weights = "imagenet" if backbone.imagenet else None
            self.spec, note = backbone, ""
        else:
            if weights == "auto":
                from tl_kit.backbones import get_backbone

                weights = "imagenet" if (get_backbone(backbone).imagenet
                                         or resolve_backbone(backbone, "imagenet")[0].imagenet) else None
            self.spec, note = resolve_backbone(backbone, weights)
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
        self.checkpoint_interval = checkpoint_interval
        self.class_names = list(class_names) if class_names is not None else None
        # True while class_names are unknown or the "0".."K-1" placeholders: fit takes the
        # data's own names (a folder's sub-folder names) then.
        self._placeholder_names = class_names is None
        self.num_classes = num_classes if num_classes is not None else (
            len(self.class_names) if self.class_names else None)
        size = image_size if image_size is not None else (
            self.recipe.image_size if self.recipe and self.recipe.image_size else None)
        if size is None:
            size = self.spec.default_size[:2]
        self.image_size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.channels = int(channels or self.spec.default_size[2])
        self.run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(self.spec.name)
        self._out = Path(dist.worker_dir(self.run_dir, self.strategy))  # where THIS process writes
        self.data = None
        self.model: keras.Model | None = None
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self._log_lines: list[str] = []
        self._resuming = False
        self._undo = None  # a PreTrainingUndo while fit prepares the run directory
        self._fitted = False  # True once a fit has finished (its model is trained)
        self._stage_rows: list[dict[str, Any]] = []
        self._stage_name = ""
        self.calibrate: bool | None = None  # None: the recipe's `calibrate` (tl_kit.calibrate)
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
        if self._out.exists():
            with open(self._out / "train.log", "a") as f:
                f.write(msg + "\n")

    # === Model ===

    @contextlib.contextmanager
    def _strategy_scope(self):
        """The one place the distribution strategy is entered."""
        with self.strategy.scope():
            yield

    @contextlib.contextmanager
    def _precision_scope(self):
        """Keras's global dtype policy = the learner's precision while layers are created."""
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        try:
            yield
        finally:
            keras.mixed_precision.set_global_policy(previous)

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
        with self._strategy_scope(), self._precision_scope():
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
            f"{self.model.count_params():,} parameters; precision {self.precision}, "
            f"strategy {type(self.strategy).__name__} ({self.strategy.num_replicas_in_sync} replicas)"
        )
        return self.model

    @staticmethod
    def _head_settings(recipe: Recipe | None) -> tuple:
        r = recipe or builtin_recipe("small")
        return (r.head_layer, r.head_pool, float(r.dropout))

    def _use_recipe(self, recipe: Recipe) -> None:
        """Adopt a recipe given to ``fit``. The head is built from the recipe (cut layer,
        pooling, dropout): an untrained model is rebuilt to match, a trained one keeps its
        weights and only takes the new dropout rate; a different cut or pooling there is an
        error rather than a silent mismatch."""
        old, new = self._head_settings(self.recipe), self._head_settings(recipe)
        if self.model is None or old == new:
            self.recipe = recipe
            return
        if not self.history:
            self.recipe = recipe
            self._log(f"recipe {recipe.name!r} given to fit: rebuilding the head (layer, pooling, "
                      f"dropout {old} -> {new})")
            self.model = None
            return
        if old[:2] != new[:2]:
            from tl_kit.errors import UserError

            raise UserError(
                f"Recipe {recipe.name!r} attaches the head differently (head_layer, head_pool "
                f"{old[:2]} -> {new[:2]}) from the model this learner already trained. Keep "
                "head_layer and head_pool, or start a new learner with this recipe. "
                f"Received: recipe={recipe.name!r}")
        self.recipe = recipe
        self._dropout.rate = new[2]
        self._log(f"recipe {recipe.name!r} given to fit: head dropout {old[2]} -> {new[2]}")

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

    def _feature_model(self, fold: bool = False) -> keras.Model:
        """Image -> pooled features, backbone in inference mode. ``fold=True`` uses a copy of
        the backbone with BatchNormalization folded into the convolutions (same features,
        fewer ops: tl_kit.fold); any backbone the folding does not handle runs as it is."""
        backbone = self.backbone
        if fold:
            from tl_kit.fold import fold_batchnorm

            try:
                backbone = fold_batchnorm(self.backbone, verify=False)  # exact math: tests/test_fold.py
            except Exception as exc:  # noqa: BLE001 - an optimisation only: fall back, say why
                self._log(f"feature cache: backbone not folded ({type(exc).__name__}: {exc})")
        image = keras.Input((*self.image_size, self.channels), name="image")
        x = backbone(self._preprocess(image), training=False)
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
        names = None if self._placeholder_names else self.class_names
        if whole:  # evaluation data: every example, no manifest in the run directory
            return load_data(data, image_size=self.image_size, channels=self.channels,
                             validation_split=0.0, num_classes=self.num_classes,
                             class_names=names)
        return load_data(data, image_size=self.image_size, channels=self.channels,
                         seed=self.seed if split_seed is None else split_seed,
                         run_dir=str(self._out), num_classes=self.num_classes,
                         class_names=names)

    def _adopt_class_names(self, data) -> None:
        """Check the data's number of classes against the model's and, while the learner
        has no real class names (none given, or the "0".."K-1" placeholders), take the
        data's (a folder's sub-folder names)."""
        info = data.info
        if self.num_classes is not None and info.num_classes != self.num_classes:
            from tl_kit.errors import UserError

            raise UserError(
                f"The model has {self.num_classes} classes but the data {info.source!r} has "
                f"{info.num_classes} ({', '.join(info.class_names)}). Pass num_classes="
                f"{info.num_classes}, or data with {self.num_classes} classes. "
                f"Received: data={info.source!r}")
        if self._placeholder_names and info.class_names:
            names = [str(c) for c in info.class_names]
            if self.class_names is not None and names != self.class_names:
                self._log(f"class names from the data {info.source!r}: {names}")
            self.class_names = names
            self._placeholder_names = names == [str(i) for i in range(len(names))]

    # === Recipe ===

    def _resolve_recipe(self, data) -> Recipe:
        if self.recipe is not None:
            self.regime_reason = self.regime_reason or f"recipe {self.recipe.name!r} given"
            self._warn_random_features(self.recipe)
            return self.recipe
        regime = self.regime
        if regime == "scratch":
            self.regime_reason = "regime='scratch' requested"
            return scratch_recipe()
        if regime == "auto":
            if self.weights is None:
                self.regime = "scratch"
                self.regime_reason = (
                    "no pretrained weights (weights=None): random features are meaningless, so "
                    "there is no head-only or feature-cache stage; every layer trains from the "
                    "start with BatchNorm in training mode (the scratch recipe)")
                return scratch_recipe()
            regime, self.regime_reason = choose_regime(data.info.split_counts.get("train", data.info.counts))
        else:
            self.regime_reason = f"regime={regime!r} requested"
        self.regime = regime
        recipe = builtin_recipe(regime)
        self._warn_random_features(recipe)
        return recipe

    def _warn_random_features(self, recipe: Recipe) -> None:
        """Log a warning when a recipe meant for pretrained weights runs with weights=None."""
        if self.weights is not None:
            return
        head_only = [s.name for s in recipe.stages if s.head_only and s.epochs > 0]
        if head_only:
            self._log(
                f"WARNING: weights=None with recipe {recipe.name!r}: its head-only stage(s) "
                f"{', '.join(map(repr, head_only))} train a classifier on RANDOM backbone "
                "features, which is meaningless. Use regime='scratch' (or regime='auto', which "
                "picks it without pretrained weights), or pretrained weights.")
        has_bn = any(isinstance(layer, keras.layers.BatchNormalization)
                     for layer in self.backbone._flatten_layers(include_self=False, recursive=True))
        frozen_bn = [s.name for s in recipe.stages
                     if not s.head_only and not s.train_bn and s.epochs > 0]
        if has_bn and frozen_bn:
            self._log(
                f"WARNING: weights=None with BatchNorm in inference mode in stage(s) "
                f"{', '.join(map(repr, frozen_bn))}: the random initial moving statistics can "
                "make a deep network's features vanish and training stall at loss ln(K). Set "
                "train_bn=True in those stages, or use regime='scratch'.")

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

    def fit(self, data=None, *, recipe: Recipe | str | None = None, verbose: int | None = None,
            overwrite: bool | None = None) -> Learner:
        """Train on ``data`` (folder, tf.data.Dataset, (x, y) arrays, dict of splits,
        ``"tfds:NAME"`` or a :class:`tl_kit.data.Data`) following the recipe's stages.

        Resumes an interrupted run in ``run_dir`` with the same settings; refuses to replace
        a complete run, or a run with other settings, unless ``overwrite=True`` (see the
        class docstring)."""
        if verbose is not None:
            self.verbose = int(verbose)
        if overwrite is not None:
            self.overwrite = bool(overwrite)
        if recipe is not None:
            self._use_recipe(load_recipe(recipe))
        from tl_kit._rundir import PreTrainingUndo

        # Any error before the first epoch leaves the run directory as it was (or absent).
        self._undo = PreTrainingUndo(self._out)
        try:
            data, recipe, config = self._prepare_training(data)
        except BaseException:
            self._undo.restore()
            raise
        finally:
            undo, self._undo = self._undo, None
        undo.commit()
        self._write_config(config)
        self._write_run_state("running")
        self.history = []
        from tl_kit.calibrate import calibrate_learner, undo_learner_calibration

        undo_learner_calibration(self)  # a re-fit trains the raw head, never T applied twice
        start = time.perf_counter()
        for index, stage in enumerate(recipe.stages):
            self._run_stage(index, stage, data)
        self.metrics["train_seconds"] = round(time.perf_counter() - start, 3)
        calibrate_learner(self, data, recipe)  # temperature scaling on val (recipe.calibrate)
        self._finish_run()
        self._fitted = True
        return self

    def _prepare_training(self, data) -> tuple[Any, Recipe, dict]:
        """Every check before training (run directory, data, classes, recipe, settings,
        free space); returns the data, the resolved recipe and the run's config."""
        self._prepare_run_dir()  # writable, not a complete run (unless overwrite): BEFORE data
        for line in self._log_lines:
            with open(self._out / "train.log", "a") as f:
                f.write(line + "\n")
        self._log_lines = []
        data = self._load(data)
        self.data = data
        self._check_trainable_classes(data)
        self._adopt_class_names(data)
        if self.model is None:
            self.build(data.info.num_classes)
        recipe = self._resolve_recipe(data)
        self._check_epochs(recipe)
        self.resolved_recipe = recipe
        self._log(f"regime: {recipe.name} - {self.regime_reason}")
        config = self._config(recipe, data)
        self._resuming = self._check_previous_run(config)
        self._check_free_space()
        return data, recipe, config

    def _check_epochs(self, recipe: Recipe) -> None:
        """A first fit must train: a recipe of 0 epochs in all would save an untrained model
        as a complete run. (A model fitted before may take a 0-epoch recipe, to change its
        head's dropout, say.)"""
        from tl_kit.errors import UserError

        if not self._fitted and sum(stage.epochs for stage in recipe.stages) < 1:
            raise UserError(
                f"The recipe {recipe.name!r} trains for 0 epochs in all, which would save an "
                "untrained model as a complete run; give at least one stage 1 epoch or more. "
                f"Received: epochs={[stage.epochs for stage in recipe.stages]}")

    @staticmethod
    def _check_trainable_classes(data) -> None:
        """A classifier needs two classes or more: one class fails before any training."""
        from tl_kit.errors import UserError

        info = data.info
        if info.num_classes < 2:
            names = ", ".join(map(str, info.class_names)) or "none"
            raise UserError(
                f"The data {info.source!r} has {info.num_classes} class ({names}); training a "
                "classifier needs at least 2 (for a folder: one sub-folder per class). "
                f"Received: data={info.source!r}")

    # === Run directory checks (before training) ===

    def _prepare_run_dir(self) -> None:
        from tl_kit.errors import UserError

        _check_writable(self._out)
        state = self._read_run_state()
        if state.get("status") == "complete":
            if not self.overwrite:
                raise UserError(
                    f"The run directory {str(self.run_dir)!r} already holds a complete run "
                    f"({', '.join(sorted(p.name for p in self._out.iterdir() if p.name in RUN_ARTEFACTS))}). "
                    "Choose another run_dir, or pass overwrite=True to "
                    f"replace it. Received: run_dir={str(self.run_dir)!r}"
                )
            self._clear_run_dir()

    def _read_run_state(self) -> dict:
        path = self._out / RUN_STATE
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                return {"status": "running"}
        if (self._out / "model.keras").is_file() and (self._out / "config.toml").is_file():
            return {"status": "complete"}  # a run written before run.json existed
        return {}

    def _write_run_state(self, status: str, **extra: Any) -> None:
        write_json_atomic(self._out / RUN_STATE, {
            "status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})

    def _clear_run_dir(self) -> None:
        import shutil

        removed = []
        for name in RUN_ARTEFACTS:
            p = self._out / name
            if not p.exists():
                continue
            if self._undo is not None:  # before training: kept until it starts
                self._undo.set_aside(p)
            elif p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(name)
        self._log(f"overwrite=True: removed the previous run's {', '.join(removed)} from {self.run_dir}")

    def _check_previous_run(self, config: dict) -> bool:
        """True when an incomplete run with the same settings is resumed; raises on a clash."""
        import tomllib

        from tl_kit.errors import UserError

        path = self._out / "config.toml"
        if not path.is_file():
            return False
        try:
            old = tomllib.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        diffs = config_differences(old, config)
        if not diffs:
            self._log(f"resuming the unfinished run in {self.run_dir} (same settings)")
            return True
        if not self.overwrite:
            shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
            raise UserError(
                f"The run directory {str(self.run_dir)!r} holds an unfinished run with different "
                f"settings ({shown}). Rerun with the same settings to resume it, choose another "
                f"run_dir, or pass overwrite=True to replace it. "
                f"Received: run_dir={str(self.run_dir)!r}"
            )
        self._clear_run_dir()
        return False

    def _check_free_space(self) -> None:
        """Fail before training when the checkpoints cannot fit on the disk."""
        import shutil

        from tl_kit.errors import UserError

        if not self.save_model or self.model is None:
            return
        # model.keras + per stage: 2 checkpoints (weights + up to 2 optimizer slots) + best
        # + stage weights; a generous bound that still catches a full disk.
        stages = len(self.resolved_recipe.stages)
        need = int(self.model.count_params() * 4 * (2 + 8 * stages)) + (16 << 20)
        free = shutil.disk_usage(self._out).free
        if free < need:
            raise UserError(
                f"Not enough free space in {str(self.run_dir)!r} for the checkpoints: "
                f"{free / 2**20:.0f} MiB free, about {need / 2**20:.0f} MiB needed. Free some "
                f"space or choose another run_dir. Received: run_dir={str(self.run_dir)!r}"
            )

    # === Stages ===

    def _stage_dir(self, tag: str) -> Path:
        """The chief's checkpoint folder of a stage (custom_fit maps it for other workers)."""
        return self.run_dir / "checkpoints" / tag

    def _stage_state(self, tag: str) -> dict | None:
        from tl_kit import distribute as dist

        for d in (self._stage_dir(tag), Path(dist.worker_dir(self._stage_dir(tag), self.strategy))):
            p = d / "state.json"
            if p.is_file():
                try:
                    return json.loads(p.read_text())
                except (OSError, ValueError):
                    return None
        return None

    def _remove_stale(self, tag: str) -> None:
        """A fresh run never resumes from checkpoints another run left behind."""
        import shutil

        from tl_kit import distribute as dist

        for d in {self._out / "checkpoints" / tag, Path(dist.worker_dir(self._stage_dir(tag), self.strategy))}:
            if d.is_dir():
                shutil.rmtree(d)
        (self._out / "checkpoints" / f"{tag}.weights.h5").unlink(missing_ok=True)

    def _agree_on_resume(self, index: int, stage: Stage, finished: bool, epochs_done: int) -> None:
        """Under MultiWorkerMirroredStrategy every worker decides from its own files where a
        resumed stage starts (the chief from run_dir, the others from their temp folders).
        If they disagree, their collective ops would not match and training would hang or
        fail deep inside TensorFlow; stop every worker with a clear message instead."""
        from tl_kit import distribute as dist
        from tl_kit.errors import UserError

        code = stage.epochs + 1 if finished else epochs_done
        codes = dist.gather_from_workers(self.strategy, code)
        if len(set(codes)) <= 1:
            return

        def where(c: int) -> str:
            return "finished" if c > stage.epochs else (f"after epoch {c}" if c else "from the start")

        seen = ", ".join(f"replica {i}: {where(c)}" for i, c in enumerate(codes))
        raise UserError(
            f"The workers disagree on where stage {index + 1} {stage.name!r} resumes ({seen}). "
            f"The chief reads {str(self.run_dir)!r}; every other worker reads its own temp folder "
            f"(this one: {str(self._out)!r}), which must survive the restart. Restart the workers "
            "on the same machines with the same temp folders, or start the run again with "
            f"overwrite=True. Received: run_dir={str(self.run_dir)!r}")

    def _run_stage(self, index: int, stage: Stage, data) -> None:
        n = self._n_blocks(stage)
        trainable = set_trainable_blocks(self.backbone, self.blocks, n, train_bn=stage.train_bn)
        self.model = self._assemble(train_bn=stage.train_bn)
        if stage.train_bn and self.weights is None:
            self._fast_bn_momentum()
        head = int(sum(int(np.prod(w.shape)) for w in self._dense.trainable_weights))
        names = [d for d, g in zip(self.blocks, assign_blocks(self.backbone, self.blocks), strict=True) if g]
        which = "none (backbone frozen)" if n == 0 else ("all" if n == "all" else ", ".join(names[len(names) - n:]))
        self._log(f"stage {index + 1} {stage.name!r}: trainable backbone blocks: {which}; "
                  f"trainable parameters: {trainable_params(self.model):,} "
                  f"(backbone {trainable:,}, head {head:,}); lr {stage.learning_rate:g}, "
                  f"{stage.epochs} epochs max, batch {stage.batch_size} (global), augment {stage.augment!r}")
        if stage.epochs == 0:
            return
        tag = f"{index + 1}_{stage.name}"
        self._stage_name = stage.name
        done = self._out / "checkpoints" / f"{tag}.weights.h5"
        state = self._stage_state(tag) if self._resuming and self.save_model else None
        if not self._resuming:
            self._remove_stale(tag)
        finished = self._resuming and done.is_file() and state is not None
        self._agree_on_resume(index, stage, finished, int((state or {}).get("epochs_done", 0)))
        if finished:
            self.model.load_weights(done)
            hist = state["history"]
            self._log(f"resumed: stage {index + 1} {stage.name!r} was finished "
                      f"({state['epochs_done']} epochs); weights loaded from {done}")
        else:
            if state is not None:
                self._log(f"resumed: stage {index + 1} {stage.name!r} continues at epoch "
                          f"{int(state['epochs_done']) + 1}/{stage.epochs} from {self._stage_dir(tag)}")
            self._stage_rows = [{"stage": stage.name, "epoch": e + 1, **row}
                                for e, row in enumerate(_history_rows((state or {}).get("history", {})))]
            from tl_kit.distribute import NonFiniteLossError

            try:
                if n == 0 and stage.cache_features:
                    result = self._fit_head_cached(stage, data, tag)
                else:
                    result = self._fit_model(stage, data, tag)
            except NonFiniteLossError as exc:
                self._stage_rows = [r for r in self._stage_rows
                                    if r["epoch"] <= len(next(iter(exc.result.history.values()), []))]
                self._write_history()
                self._plot_history()
                self._write_run_state("failed", reason="non_finite_loss", stage=tag)
                self._log(str(exc))
                raise
            hist = result.history
            if result.stop_reason == "early_stopping":
                self._log(f"early stopping in stage {stage.name!r}: best {result.monitor} at epoch "
                          f"{result.best_epoch}")
        for epoch, row in enumerate(_history_rows(hist)):
            self.history.append({"stage": stage.name, "epoch": epoch + 1, **row})
        self._stage_rows = []
        self._write_history()
        self._save_checkpoint(tag)  # plots/history.png is drawn once, at the end of the run

    def _fast_bn_momentum(self, momentum: float = BN_SCRATCH_MOMENTUM) -> None:
        """Training from random weights with BatchNorm in training mode: lower the moving
        averages' momentum (Keras Applications use 0.99-0.999) so the inference-mode
        statistics catch up with the batch statistics within a short run; otherwise the
        evaluated model (inference mode) lags far behind the trained one."""
        changed = 0
        for layer in self.backbone._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > momentum:
                layer.momentum = momentum
                changed += 1
        if changed:
            self._log(f"weights=None: BatchNorm moving-average momentum set to {momentum} in "
                      f"{changed} layers (random initial statistics must catch up fast)")

    def _recalibrate_bn(self, data, batch: int, max_batches: int = BN_RECALIBRATION_BATCHES) -> None:
        """Precise BatchNorm (Wu & Johnson, 2021, "Rethinking 'Batch' in BatchNorm"):
        set the trainable BatchNorm layers' moving statistics to the average batch statistics
        of up to ``max_batches`` un-augmented training batches under the current weights.

        Called after each epoch's training steps when BatchNorm trains, so validation,
        checkpoints and the final model see statistics of the network as it is now rather
        than a moving average lagging behind fast-changing weights (with few steps per epoch
        the lag alone leaves validation at chance). Single-replica runs only: under several
        replicas the moving averages of the training steps are kept.
        """
        bns = [layer for layer in self.backbone._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
        if not bns:
            return
        saved = [layer.momentum for layer in bns]
        try:
            ds = data.dataset("train", batch_size=batch, training=False, shuffle=False)
            for i, (x, _) in enumerate(ds.take(max_batches), start=1):
                for layer in bns:
                    layer.momentum = (i - 1) / i  # cumulative mean of the batch statistics
                self.model(x, training=True)
        finally:
            for layer, momentum in zip(bns, saved, strict=True):
                layer.momentum = momentum

    def _optimizer(self, stage: Stage, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        """A new optimizer for the stage (call inside the strategy's scope)."""
        total = max(stage.epochs * steps_per_epoch, 1)
        lr = WarmupCosine(stage.learning_rate, stage.warmup_epochs * steps_per_epoch, total,
                          cosine=stage.schedule == "cosine")
        wd = stage.weight_decay or None
        # EMA: the model takes the averaged weights at each epoch's end (see Stage.ema)
        ema = {"use_ema": True, "ema_momentum": stage.ema,
               "ema_overwrite_frequency": max(steps_per_epoch, 1)} if stage.ema else {}
        if stage.optimizer == "adam":
            opt = keras.optimizers.Adam(lr, weight_decay=wd, **ema)
        elif stage.optimizer == "adamw":
            opt = keras.optimizers.AdamW(lr, weight_decay=wd or 1e-4, **ema)
        elif stage.optimizer == "sgd":
            opt = keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd, **ema)
        else:
            opt = keras.optimizers.RMSprop(lr, weight_decay=wd, **ema)
        if stage.layer_decay is not None or stage.block_lr is not None:
            from tl_kit import block_lr

            mults = block_lr.block_multipliers(self.backbone, self.blocks, layer_decay=stage.layer_decay,
                                               block_lr=stage.block_lr, head=[self._dense])
            block_lr.scale_learning_rates(opt, mults)
            self._log(f"stage {stage.name!r}: per-block learning rates: "
                      f"{block_lr.describe(self.backbone, self.blocks, mults)}")
        if self.precision == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def _compile(self, model: keras.Model, stage: Stage, steps_per_epoch: int) -> None:
        """``model.compile`` with the stage's optimizer, loss and accuracy (for users who
        want to continue with Keras ``fit``; the learner trains with ``custom_fit``)."""
        with self._strategy_scope():
            model.compile(optimizer=self._optimizer(stage, steps_per_epoch),
                          loss=keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
                          metrics=["accuracy"])

    def _callbacks(self, stage: Stage, has_val: bool, cached: bool = False) -> list:
        """Callbacks of one stage: history.csv after every epoch and TensorBoard (chief).
        Early stopping and best weights are handled by ``custom_fit`` (``patience``)."""
        from tl_kit import distribute as dist

        cbs: list = [_EpochHistory(self)]
        if stage.early_stopping and not has_val:
            self._log("no validation split: early stopping is off for this stage")
        if self.tensorboard and dist.is_chief(self.strategy):
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

    def _custom_fit(self, model: keras.Model, stage: Stage, tag: str, train, val, *,
                    steps_per_epoch: int | None, optimizer_steps: int, class_weight, cached: bool = False,
                    after_train_epoch=None, steps_per_execution: int = 1, n_val: int = 0):
        """One stage through :func:`tl_kit.distribute.custom_fit` (every strategy)."""
        from tl_kit import distribute as dist

        with self._strategy_scope():
            optimizer = self._optimizer(stage, optimizer_steps)
        model.optimizer = optimizer  # callbacks (TensorBoard's learning rate) read it
        jit = dist.resolve_jit_compile(self.jit_compile, self.strategy, model)
        patience, restore, smoothing = self._early_stopping(stage, val is not None, n_val)
        result = dist.custom_fit(
            model, optimizer, keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
            train, val, epochs=stage.epochs, strategy=self.strategy, class_weight=class_weight,
            checkpoint_dir=self._stage_dir(tag) if self.save_model else None,
            patience=patience, restore_best_weights=restore, smoothing=smoothing,
            checkpoint_interval=self.checkpoint_interval,
            steps_per_epoch=steps_per_epoch, jit_compile=jit,
            callbacks=self._callbacks(stage, val is not None, cached),
            after_train_epoch=after_train_epoch, steps_per_execution=steps_per_execution,
            verbose=1, log=self._log,  # one line per epoch: train.log, and the console if verbose
        )
        ck = self.metrics.setdefault("checkpoints", {})
        ck["writes"] = ck.get("writes", 0) + result.checkpoint_writes
        ck["seconds"] = round(ck.get("seconds", 0.0) + result.checkpoint_seconds, 3)
        return result

    def _early_stopping(self, stage: Stage, has_val: bool, n_val: int) -> tuple[int | None, bool, int]:
        """``(patience, restore_best_weights, smoothing)`` of a stage. Early stopping needs
        :data:`EARLY_STOPPING_MIN_VAL` validation images; with fewer the stage runs its full
        schedule and keeps the best epoch by the validation loss averaged over
        :data:`SMALL_VAL_SMOOTHING` epochs."""
        if not (stage.early_stopping and has_val):
            return None, False, 1
        if n_val < EARLY_STOPPING_MIN_VAL:
            self._log(f"stage {stage.name!r}: {n_val} validation images < {EARLY_STOPPING_MIN_VAL}: "
                      f"early stopping off, the full {stage.epochs} epochs run; best epoch by "
                      f"val_loss averaged over {SMALL_VAL_SMOOTHING} epochs")
            return None, bool(stage.restore_best), SMALL_VAL_SMOOTHING
        return stage.early_stopping, bool(stage.restore_best), 1

    def _fit_model(self, stage: Stage, data, tag: str):
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
        recalibrate = None
        if stage.train_bn and self.strategy.num_replicas_in_sync == 1:
            recalibrate = lambda epoch: self._recalibrate_bn(data, batch)  # noqa: E731
        return self._custom_fit(self.model, stage, tag, train, val,
                                steps_per_epoch=steps if cycle else None, optimizer_steps=steps,
                                class_weight=self._class_weight(stage, data),
                                after_train_epoch=recalibrate,
                                n_val=data.size("val") if val is not None else 0)

    def _features(self, data, splits: list[tuple[str, str | None, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Cached features and labels for each ``(split, augment, copies)``: one pass without
        augmentation plus ``copies`` augmented passes. One folded backbone and one compiled
        graph serve every split and batch (an eager call per batch ran ~2x slower than the
        guide's compiled frozen-backbone loop, and a second trace for validation cost as much
        as the images: benchmarks/bench_cache.py)."""
        import tensorflow as tf

        fm = self._feature_model(fold=True)
        # A None batch dimension: one trace serves full, last-partial and validation batches.
        spec = tf.TensorSpec((None, *fm.input_shape[1:]), tf.float32)
        extract = tf.function(lambda x: fm(x, training=False), input_signature=[spec], autograph=False)
        out = []
        for split, augment, copies in splits:
            feats, labels = [], []
            passes = [(False, None)] + [(True, augment)] * (copies if augment else 0)
            for i, (training, aug) in enumerate(passes):
                ds = data.dataset(split, batch_size=32, training=training, augment=aug, shuffle=False,
                                  seed=self.seed + i)
                for x, y in ds:
                    feats.append(extract(x).numpy())
                    labels.append(y.numpy())
            out.append((np.concatenate(feats), np.concatenate(labels)))
        return out

    def _fit_head_cached(self, stage: Stage, data, tag: str):
        """Head-only stage: run the frozen backbone once (plus augmented copies), train the
        head (the same Dropout and Dense layers) on the cached features."""
        import tensorflow as tf

        aug = None if stage.augment in (None, "none") else stage.augment
        t0 = time.perf_counter()
        splits = [("train", aug, stage.cache_copies)] + ([("val", None, 0)] if data.has("val") else [])
        cached = self._features(data, splits)
        (xtr, ytr), val = cached[0], (cached[1] if len(cached) > 1 else None)
        self._log(f"feature cache: {len(xtr)} train vectors of {xtr.shape[1:]} "
                  f"({stage.cache_copies if aug else 0} augmented copies) in {time.perf_counter() - t0:.1f}s")
        if stage.head_init == "imprint":
            self._imprint(xtr, ytr)
        xtr = xtr.astype("float32")
        batch = min(stage.batch_size, len(xtr))
        if stage.min_steps_per_epoch > math.ceil(len(xtr) / batch):  # cycle tiny caches
            reps = math.ceil(stage.min_steps_per_epoch * batch / len(xtr))
            xtr, ytr = np.concatenate([xtr] * reps), np.concatenate([ytr] * reps)
        with self._strategy_scope():
            fin = keras.Input(xtr.shape[1:], name="features")
            head = keras.Model(fin, self._dense(self._dropout(fin)), name="head")
        train = (tf.data.Dataset.from_tensor_slices((xtr, ytr))
                 .shuffle(len(xtr), seed=self.seed, reshuffle_each_iteration=True).batch(batch))
        val_ds = (tf.data.Dataset.from_tensor_slices((val[0].astype("float32"), val[1])).batch(max(batch, 64))
                  if val is not None else None)
        # A whole epoch of small head steps per graph call (steps_per_execution): from
        # Python each step cost more than its arithmetic.
        return self._custom_fit(head, stage, tag, train, val_ds, steps_per_epoch=None,
                                optimizer_steps=math.ceil(len(xtr) / batch),
                                class_weight=self._class_weight(stage, data), cached=True,
                                steps_per_execution=64, n_val=len(val[0]) if val is not None else 0)

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

    def _config(self, recipe: Recipe, data) -> dict:
        """The resolved settings written to config.toml (the run's identity, see
        :func:`config_differences`, plus how it ran)."""
        return {
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
                "strategy": type(self.strategy).__name__,
                "replicas": int(self.strategy.num_replicas_in_sync),
                "precision": self.precision,
                "jit_compile": str(self.jit_compile),
            },
            "recipe": recipe.to_dict(),
        }

    def _write_config(self, config: dict) -> None:
        import tomli_w

        (self._out / "config.toml").write_text(tomli_w.dumps(config))

    def _write_history(self) -> None:
        rows = self.history + list(getattr(self, "_stage_rows", []))
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        tmp = self._out / "history.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys or ["stage", "epoch"])
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self._out / "history.csv")

    def _save_checkpoint(self, tag: str) -> None:
        """Weights after a stage: ``checkpoints/<tag>.weights.h5`` (model weights only, the
        stage-finished mark a resumed run skips on). Per-epoch checkpoints are
        ``custom_fit``'s, in ``checkpoints/<tag>/``; once the stage's weights are written its
        model + optimizer checkpoints and best weights are deleted (a resumed run needs only
        ``state.json`` there). Non-chief workers write to their own temp folder."""
        if not self.save_model:
            return
        ckpt = self._out / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        tmp = ckpt / f"{tag}.tmp.weights.h5"
        optimizer = getattr(self.model, "optimizer", None)
        self.model.optimizer = None  # Keras writes a tracked optimizer's slots too (3x Adam)
        try:
            self.model.save_weights(tmp)
        finally:
            self.model.optimizer = optimizer
        os.replace(tmp, ckpt / f"{tag}.weights.h5")
        self._prune_stage(ckpt / tag)

    @staticmethod
    def _prune_stage(stage_dir: Path) -> None:
        """A finished stage keeps only ``state.json`` (its history) in its checkpoint folder."""
        import shutil

        if not stage_dir.is_dir():
            return
        for p in stage_dir.iterdir():
            if p.name == "state.json":
                continue
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()

    def run_dir_bytes(self) -> int:
        """Bytes in this process's run directory (files only)."""
        return sum(p.stat().st_size for p in self._out.rglob("*") if p.is_file())

    def _finish_run(self) -> None:
        from tl_kit.predict import save_for_inference

        self.model = self._assemble(train_bn=False)
        if self.data is not None and self.data.has("val"):
            self.metrics["val"] = self._evaluate_split(self.data, "val")
        if self.save_model:  # model.keras + class_names.json: what load_for_inference reads
            save_for_inference(self.model, self.class_names, self._out)
        self._plot_history()
        self.metrics["run_dir_bytes"] = self.run_dir_bytes()  # metrics.json itself excluded
        self._write_metrics()
        self._write_run_state("complete", stages=[s.name for s in self.resolved_recipe.stages],
                              epochs=len(self.history), run_dir_bytes=self.metrics["run_dir_bytes"])
        ck = self.metrics.get("checkpoints", {})
        self._log(f"run directory: {self.run_dir} ({self.metrics['run_dir_bytes'] / 2**20:.1f} MiB; "
                  f"{ck.get('writes', 0)} checkpoint(s) written in {ck.get('seconds', 0.0):.1f}s)")

    def _write_metrics(self) -> None:
        """Merge the learner's figures into metrics.json (keeping the keys an evaluation
        report wrote there)."""
        from tl_kit.evaluate import _merge_json

        _merge_json(self._out / "metrics.json", json.loads(json.dumps(self.metrics, default=float)))

    def _writes_plots(self) -> bool:
        """Plots go into the run directory on the chief of runs that keep their artefacts
        (``save_model=False`` marks a throw-away run: no model, checkpoints or plots)."""
        from tl_kit import distribute as dist

        return self.save_model and dist.is_chief(self.strategy)

    def _plot_history(self) -> None:
        """``plots/history.png``: loss and accuracy per epoch across the stages so far."""
        from tl_kit.evaluate import plot_history

        path = self._out / "history.csv"
        if not self._writes_plots() or not path.is_file() or not (self.history or self._stage_rows):
            return
        try:
            plot_history(path, self._out / "plots" / "history.png")
        except Exception as exc:  # a plot must never lose a trained run
            self._log(f"could not plot the training curves: {exc}")

    # === Evaluate / predict / export ===

    def _evaluate_split(self, data, split: str) -> dict[str, float]:
        """Loss and accuracy of one split, computed locally on this process (no Keras
        ``evaluate``: it shares ``fit``'s break under MultiWorkerMirroredStrategy)."""
        import tensorflow as tf

        model = self.model
        if data.size(split) <= EAGER_EVAL_MAX:  # tracing the whole network costs more than it saves
            def predict(x):
                return tf.cast(model(x, training=False), tf.float32)
        else:
            predict = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32))
        loss_sum, correct, n = 0.0, 0, 0
        for x, y in data.dataset(split, batch_size=64):
            p = predict(x).numpy()
            yv = y.numpy()
            loss_sum += float(-np.sum(yv * np.log(np.clip(p, 1e-7, 1.0))))
            correct += int(np.sum(p.argmax(axis=1) == yv.argmax(axis=1)))
            n += len(yv)
        return {"accuracy": correct / max(n, 1), "loss": loss_sum / max(n, 1)}

    def evaluate(self, data=None, split: str | None = None, tta: str | None = None,
                 top_k: int = 5) -> dict[str, Any]:
        """Evaluate with :func:`tl_kit.evaluate.evaluate_model`: loss, accuracy, top-k
        accuracy, per-class precision/recall/F1, confusion matrix, most confused pairs and
        the worst predictions.

        ``data=None``: the fitted data's ``split`` (default its test split, else
        validation, else train). A folder or ``"tfds:..."`` is loaded by
        :func:`tl_kit.evaluate.load_evaluation_data`: the data this run trained on (same
        folder) by the run's split manifest, read only (``split`` default test, else val);
        a folder with ``train/ val/ test/`` sub-folders by ``split`` (default test, else
        val); any other folder all of it (a ``split`` is then an error). Arrays and
        tf.data: every example (a ``split`` is an error). ``tta``: None, ``"flip"`` or
        ``"multicrop"``. On the chief, the
        report is merged into ``run_dir/metrics.json`` (training's keys stay; the split's
        summary is also kept under its own key) and ``confusion_matrix.csv``,
        ``plots/confusion_matrix.png`` and ``plots/worst_predictions.png`` are written
        (no plots for ``save_model=False`` runs).

        Returns:
            The report dict (``loss``, ``accuracy``, ``top_k_accuracy``, ``per_class``,
            ``confusion_matrix``, ``most_confused``, ``worst``, ``files``, ...).
        """
        from tl_kit import distribute as dist
        from tl_kit.data import Data
        from tl_kit.evaluate import evaluate_model

        if self.model is None:
            self.build()
        raw = data is not None and not isinstance(data, Data)
        if raw:
            data, split = self._evaluation_data(data, split)
        else:
            data = self._load(data)
        if split is None:
            split = "test" if data.has("test") else ("val" if data.has("val") else "train")
        chief = dist.is_chief(self.strategy)
        out = self._out if self._writes_plots() else None
        report = evaluate_model(self.model, data, self.class_names, out_dir=out, tta=tta,
                                top_k=top_k, split=split)
        key = "evaluate" if raw else split
        self.metrics[key] = {k: report[k] for k in ("loss", "accuracy", "top_k", "top_k_accuracy",
                                                    "num_samples", "tta")}
        if chief and self._out.exists():
            if out is None:  # no plots, but the report still lands in metrics.json
                from tl_kit.evaluate import _merge_json

                _merge_json(self._out / "metrics.json", {k: v for k, v in report.items() if k != "files"})
            self._write_metrics()
        return report

    def _evaluation_data(self, data, split: str | None):
        """Raw evaluation data -> ``(Data, split)``; nothing in the run directory is written."""
        from tl_kit.errors import UserError
        from tl_kit.evaluate import load_evaluation_data

        if isinstance(data, str | os.PathLike):
            names = None if self._placeholder_names else self.class_names
            loaded, split, how = load_evaluation_data(
                str(data), image_size=self.image_size, channels=self.channels,
                class_names=names, split=split,
                run_dir=self._out if self._out.is_dir() else None)
            self._log(f"evaluating {how}")
            return loaded, split
        if isinstance(data, dict) and split is not None:
            # A dict of splits ({"train": ..., "test": ...}): `split` picks one of them.
            if split not in data:
                raise UserError(
                    f"No {split!r} split in the data given; it has {sorted(data)}. "
                    f"Received: split={split!r}")
            data, split = data[split], None
        if split is not None:
            raise UserError(
                "Arrays and tf.data datasets are evaluated whole; `split` applies to folders "
                "split into train/val/test, to a dict of splits and to the run's own data. "
                f"Received: split={split!r}")
        return self._load(data, whole=True), "train"

    def predict(self, images, *, tta: str | None = None, top_k: int = 3,
                batch_size: int = 32) -> list[dict]:
        """Class names and probabilities for image paths, PIL images or raw [0, 255] arrays
        (one image (H, W, C) or a batch (N, H, W, C)), through
        :func:`tl_kit.predict.predict_images` (resized to the model's input size).

        ``tta``: None, ``"flip"`` or ``"multicrop"`` (10 crops, probabilities averaged).

        Returns:
            One dict per image: ``{"path": str | None, "top": [(name, prob), ...] (best
            first, ``top_k`` of them), "probs": {name: prob, ...}}``; render it with
            :func:`tl_kit.predict.format_predictions`.
        """
        from tl_kit.predict import predict_images

        if self.model is None:
            self.build()
        return predict_images(self.model, images, self.class_names, top_k=top_k, tta=tta,
                              batch_size=batch_size)

    def export(self, path: str | os.PathLike, formats: Sequence[str] = ("saved_model",), *,
               overwrite: bool = False, **kwargs: Any) -> dict:
        """Export through :func:`tl_kit.export.export_model` (SavedModel by default; also
        ``"tflite"``, ``"onnx"``). With TFLite and no ``representative_data`` /
        ``test_data`` given, the last fitted data is used (its training images calibrate the
        int8 model, its test/validation split measures each TFLite model's accuracy)."""
        from tl_kit.export import export_model

        if self.model is None:
            self.build()
        formats = (formats,) if isinstance(formats, str) else tuple(formats)
        if "tflite" in formats and self.data is not None:
            kwargs.setdefault("representative_data", self.data)
            kwargs.setdefault("test_data", self.data)
        return export_model(self.model, path, self.class_names, formats=formats,
                            overwrite=overwrite, **kwargs)

    def lr_find(self, data=None, *, stage: int | str | None = None,
                out: str | os.PathLike | None = None, **kwargs: Any):
        """Learning-rate finder on ``stage``'s trainable layers (index or name; default the
        first stage with epochs); weights are restored afterwards. See :mod:`tl_kit.lr_find`
        (rule of the suggested rate, ``result.apply(recipe)``)."""
        from tl_kit.lr_find import learner_lr_find

        return learner_lr_find(self, data, stage=stage, out=out, **kwargs)

    def explain(self, images, *, out: str | os.PathLike | None = None, **kwargs: Any) -> dict:
        """Grad-CAM heatmaps (and, with ``out``, overlay PNGs) for image paths or raw arrays,
        on the last convolutional block of the backbone's block declaration. See
        :func:`tl_kit.explain.explain`."""
        from tl_kit.explain import learner_explain

        return learner_explain(self, images, out=out, **kwargs)

    def __repr__(self) -> str:
        return (f"Learner(backbone={self.spec.name!r}, num_classes={self.num_classes}, "
                f"weights={self._weights_label()}, run_dir={str(self.run_dir)!r})")


class _EpochHistory(keras.callbacks.Callback):
    """Rewrites history.csv after every epoch (so a killed run leaves its epochs on disk)."""

    def __init__(self, learner: Learner):
        super().__init__()
        self.learner = learner

    def on_epoch_end(self, epoch, logs=None):
        rows = [r for r in self.learner._stage_rows if r["epoch"] != epoch + 1]
        rows.append({"stage": self.learner._stage_name, "epoch": epoch + 1,
                     **{k: float(v) for k, v in (logs or {}).items()}})
        self.learner._stage_rows = rows
        self.learner._write_history()


def _new_run_dir(name: str) -> Path:
    """``runs/<backbone>-<time>``, with a suffix when that folder exists already."""
    base = Path("runs", f"{name.replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, i = base, 2
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


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
    h = hist if isinstance(hist, dict) else (getattr(hist, "history", {}) or {})
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
    precision: str = "auto",
    jit_compile: bool | str = "auto",
    overwrite: bool = False,
    **kwargs: Any,
) -> Learner:
    """Build a learner (backbone + new softmax head); with ``data`` also train it.

    ``weights="auto"`` means ImageNet where published (Keras Applications, and tl_kit names
    with a Keras twin such as ``"resnet50"``), else random initialisation. Offline without
    the cached file, ImageNet fails at once naming the file and the folder to put it in.
    ``strategy``, ``precision``, ``jit_compile`` and ``overwrite`` are :class:`Learner`'s
    (rerunning the same call on the same ``run_dir`` after a crash resumes it).

    Example:
    ```python
    learner = tl_kit.finetune(backbone="lenet5", weights=None, data=(x, y))
    ```
    """
    learner = Learner(backbone, num_classes, regime=regime, recipe=recipe, weights=weights,
                      image_size=image_size, run_dir=run_dir, strategy=strategy,
                      precision=precision, jit_compile=jit_compile, overwrite=overwrite, **kwargs)
    if data is not None:
        learner.fit(data)
    return learner
