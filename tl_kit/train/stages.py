"""The stage runner: one recipe stage after another through :func:`tl_kit.distribute.custom_fit`.

A stage: freeze the backbone but its last blocks (:meth:`Classifier.trainable_blocks`),
assemble the model (BatchNorm in training mode when ``train_bn``), then either skip it (a
resumed run whose stage finished: its weights are loaded), continue it after its last
checkpointed epoch, or train it from the start, on the data pipelines or, for a head-only
stage with ``cache_features``, on cached features (:mod:`tl_kit.train.feature_cache`). The
optimizer and schedule are :func:`tl_kit.train.schedule.stage_optimizer`'s; class weights,
early-stopping settings and the BatchNorm callbacks are set here.

Training runs through :func:`tl_kit.distribute.custom_fit` under every strategy (one code
path: the same checkpoints, history, early stopping and progress lines on one device,
several GPUs and several machines; Keras 3's ``fit`` breaks under
``MultiWorkerMirroredStrategy``, keras-team/keras#20585).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from tl_kit.backbones import set_trainable_blocks, trainable_params
from tl_kit.errors import UserError
from tl_kit.recipes import Stage
from tl_kit.train import worker_inputs
from tl_kit.train.callbacks import FastBatchNormMomentum, PreciseBatchNorm, RunHistory
from tl_kit.train.head import Classifier
from tl_kit.train.inputs import class_weight
from tl_kit.train.schedule import stage_optimizer

__all__ = ["StageRunner", "class_weight", "early_stopping", "EARLY_STOPPING_MIN_VAL",
           "SMALL_VAL_SMOOTHING"]

# Early stopping decides only on at least this many validation images: below it one image
# moves the validation loss more than an epoch of training does, and a stop at a noise dip
# left identical runs anywhere between 0.54 and 0.90 test accuracy. Smaller validation sets
# run the stage's full schedule and keep the best epoch by the validation loss averaged over
# SMALL_VAL_SMOOTHING epochs (benchmarks/bench_stability.py).
EARLY_STOPPING_MIN_VAL = 100
SMALL_VAL_SMOOTHING = 3


def early_stopping(stage: Stage, has_val: bool, n_val: int,
                   log: Callable[[str], None] = print) -> tuple[int | None, bool, int]:
    """``(patience, restore_best_weights, smoothing)`` of a stage. Early stopping needs
    :data:`EARLY_STOPPING_MIN_VAL` validation images; with fewer the stage runs its full
    schedule and keeps the best epoch by the validation loss averaged over
    :data:`SMALL_VAL_SMOOTHING` epochs."""
    if not (stage.early_stopping and has_val):
        return None, False, 1
    if n_val < EARLY_STOPPING_MIN_VAL:
        log(f"stage {stage.name!r}: {n_val} validation images < {EARLY_STOPPING_MIN_VAL}: "
            f"early stopping off, the full {stage.epochs} epochs run; best epoch by "
            f"val_loss averaged over {SMALL_VAL_SMOOTHING} epochs")
        return None, bool(stage.restore_best), SMALL_VAL_SMOOTHING
    return stage.early_stopping, bool(stage.restore_best), 1


@dataclass
class StageRunner:
    """Runs the stages of one fit. ``model`` is the model of the stage last set up (the
    learner's ``model``; on a stop at a non-finite loss, reset to the last good epoch).

    ``callbacks(stage, has_val, cached)``: the Keras callbacks of a stage (the learner's).
    """

    classifier: Classifier
    rundir: Any  # tl_kit.rundir.RunDir
    history: RunHistory
    strategy: Any
    callbacks: Callable[..., list]
    log: Callable[[str], None]
    precision: str = "float32"
    jit_compile: bool | str = "auto"
    seed: int = 0
    default_unfreeze: int = 0
    random_weights: bool = False
    save_model: bool = True
    checkpoint_interval: float | str = "auto"
    resuming: bool = False
    writes_plots: bool = True
    metrics: dict = field(default_factory=dict)
    model: keras.Model | None = None

    @classmethod
    def for_learner(cls, learner, history: RunHistory, resuming: bool) -> StageRunner:
        """The runner of a :class:`tl_kit.train.Learner`'s fit (its settings, run directory,
        metrics and ``_callbacks`` hook)."""
        return cls(
            learner.classifier, learner.rundir, history, learner.strategy,
            callbacks=learner._callbacks, log=learner.log, precision=learner.precision,
            jit_compile=learner.jit_compile, seed=learner.seed,
            default_unfreeze=learner.unfreeze if learner.unfreeze is not None else learner.spec.default_unfreeze,
            random_weights=learner.weights is None, save_model=learner.save_model,
            checkpoint_interval=learner.checkpoint_interval, resuming=resuming,
            writes_plots=learner.writes_plots(), metrics=learner.metrics, model=learner.model)

    def run(self, index: int, stage: Stage, data) -> None:
        """Set up, then skip, resume or train stage ``index``."""
        n = self.setup(index, stage)
        if stage.epochs == 0:
            return
        tag = f"{index + 1}_{stage.name}"
        done = self.rundir.stage_weights(tag)
        state = self.rundir.stage_state(tag) if self.resuming and self.save_model else None
        if not self.resuming:
            self.rundir.remove_stage(tag)
        finished = self.resuming and done.is_file() and state is not None
        self.agree_on_resume(index, stage, finished, int((state or {}).get("epochs_done", 0)))
        self.history.begin(stage.name, None if finished else (state or {}).get("history"))
        if finished:
            self.model.load_weights(done)
            hist = state["history"]
            self.log(f"resumed: stage {index + 1} {stage.name!r} was finished "
                     f"({state['epochs_done']} epochs); weights loaded from {done}")
        else:
            if state is not None:
                self.log(f"resumed: stage {index + 1} {stage.name!r} continues at epoch "
                         f"{int(state['epochs_done']) + 1}/{stage.epochs} from {self.rundir.stage_dir(tag)}")
            hist = self.train(stage, data, tag, cached=n == 0 and stage.cache_features).history
        self.history.end(hist)
        if self.save_model:  # plots/history.png is drawn once, at the end of the run
            self.rundir.save_stage_weights(self.model, tag)

    def setup(self, index: int, stage: Stage) -> int | str:
        """Freeze all but the stage's blocks, assemble its model and log what trains."""
        c = self.classifier
        n = c.trainable_blocks(stage, self.default_unfreeze)
        trainable = set_trainable_blocks(c.backbone, c.blocks, n, train_bn=stage.train_bn)
        self.model = c.assemble(train_bn=stage.train_bn)
        head = int(sum(int(np.prod(w.shape)) for w in c.dense.trainable_weights))
        names = c.block_names()
        which = "none (backbone frozen)" if n == 0 else ("all" if n == "all" else ", ".join(names[len(names) - n:]))
        self.log(f"stage {index + 1} {stage.name!r}: trainable backbone blocks: {which}; "
                 f"trainable parameters: {trainable_params(self.model):,} "
                 f"(backbone {trainable:,}, head {head:,}); lr {stage.learning_rate:g}, "
                 f"{stage.epochs} epochs max, batch {stage.batch_size} (global), augment {stage.augment!r}")
        return n

    def agree_on_resume(self, index: int, stage: Stage, finished: bool, epochs_done: int) -> None:
        """Under MultiWorkerMirroredStrategy every worker decides from its own files where a
        resumed stage starts (the chief from run_dir, the others from their temp folders).
        If they disagree, their collective ops would not match and training would hang or
        fail deep inside TensorFlow; stop every worker with a clear message instead."""
        from tl_kit import distribute as dist

        code = stage.epochs + 1 if finished else epochs_done
        codes = dist.gather_from_workers(self.strategy, code)
        if len(set(codes)) <= 1:
            return

        def where(c: int) -> str:
            return "finished" if c > stage.epochs else (f"after epoch {c}" if c else "from the start")

        seen = ", ".join(f"replica {i}: {where(c)}" for i, c in enumerate(codes))
        run_dir = str(self.rundir.path)
        raise UserError(
            f"The workers disagree on where stage {index + 1} {stage.name!r} resumes ({seen}). "
            f"The chief reads {run_dir!r}; every other worker reads its own temp folder "
            f"(this one: {str(self.rundir.out)!r}), which must survive the restart. Restart the workers "
            "on the same machines with the same temp folders, or start the run again with "
            f"overwrite=True. Received: run_dir={run_dir!r}")

    def train(self, stage: Stage, data, tag: str, cached: bool):
        """Train the stage; a non-finite loss leaves the history of the good epochs, the
        plot and a ``failed`` status before it propagates."""
        from tl_kit.distribute import NonFiniteLossError
        from tl_kit.train.feature_cache import fit_head_cached

        try:
            result = fit_head_cached(self, stage, data, tag) if cached else self.fit_model(stage, data, tag)
        except NonFiniteLossError as exc:
            self.history.keep_epochs(len(next(iter(exc.result.history.values()), [])))
            if self.writes_plots and self.history:
                error = self.rundir.plot_history()
                if error:
                    self.log(f"could not plot the training curves: {error}")
            self.rundir.write_status("failed", reason="non_finite_loss", stage=tag)
            self.log(str(exc))
            raise
        if result.stop_reason == "early_stopping":
            self.log(f"early stopping in stage {stage.name!r}: best {result.monitor} at epoch "
                     f"{result.best_epoch}")
        return result

    def fit_model(self, stage: Stage, data, tag: str):
        """Train the whole classifier (frozen blocks excepted) on the data pipelines."""
        n_train = data.size("train")
        batch = min(stage.batch_size, n_train)
        steps = math.ceil(n_train / batch)
        cycle = stage.min_steps_per_epoch > steps
        steps = max(steps, stage.min_steps_per_epoch)
        aug = None if stage.augment in (None, "none") else stage.augment

        def train_ds(b: int, shard=None):
            return data.dataset("train", batch_size=b, training=True, augment=aug, seed=self.seed,
                                repeat=cycle, shard=shard)

        def val_ds(b: int, shard=None):
            return data.dataset("val", batch_size=b, shard=shard)

        if worker_inputs.uses_file_sharding(self.strategy, data, "train"):
            batch = worker_inputs.global_batch(self.strategy, batch, self.log)
            if not cycle:
                steps = worker_inputs.sharded_steps(n_train, self.strategy, batch)
            self.log_sharding(data)
        train = self.pipeline(data, "train", train_ds, batch)
        val = self.pipeline(data, "val", val_ds, max(batch, 64)) if data.has("val") else None
        recalibrate = None
        if stage.train_bn and self.strategy.num_replicas_in_sync == 1:
            recalibrate = PreciseBatchNorm(self.model, self.classifier.batchnorm_layers(), data, batch)
        return self.custom_fit(self.model, stage, tag, train, val,
                               steps_per_epoch=steps if cycle else None, optimizer_steps=steps,
                               class_weight=class_weight(stage, data), after_train_epoch=recalibrate,
                               n_val=data.size("val") if val is not None else 0)

    def pipeline(self, data, split: str, make, batch: int):
        """``make(batch)`` as it is, or under a multi-worker cluster one pipeline per worker
        of its own files (:mod:`tl_kit.train.worker_inputs`), ``batch`` rounded up to a
        multiple of the replicas."""
        if not worker_inputs.uses_file_sharding(self.strategy, data, split):
            return make(batch)
        batch = worker_inputs.global_batch(self.strategy, batch)
        return worker_inputs.sharded_dataset(self.strategy, lambda b, shard: make(b, shard), batch)

    def log_sharding(self, data) -> None:
        """Say which files this worker reads (the chief's log: its own shard)."""
        w, i = worker_inputs.num_workers(self.strategy), worker_inputs.worker_index(self.strategy)
        parts = [f"{split} {len(range(i, data.size(split), w))} of {data.size(split)}"
                 for split in ("train", "val") if data.has(split)
                 and worker_inputs.uses_file_sharding(self.strategy, data, split)]
        self.log(f"file-level sharding over {w} workers: worker {i} reads {', '.join(parts)} "
                 "examples (its own files only)")

    def block_rates(self, stage: Stage, optimizer: keras.optimizers.Optimizer) -> None:
        """Per-block learning rates of ``stage`` (``layer_decay`` / ``block_lr``) applied to
        ``optimizer`` (:mod:`tl_kit.block_lr`), and logged."""
        if stage.layer_decay is None and stage.block_lr is None:
            return
        from tl_kit import block_lr

        c = self.classifier
        mults = block_lr.block_multipliers(c.backbone, c.blocks, layer_decay=stage.layer_decay,
                                           block_lr=stage.block_lr, head=[c.dense])
        block_lr.scale_learning_rates(optimizer, mults)
        self.log(f"stage {stage.name!r}: per-block learning rates: "
                 f"{block_lr.describe(c.backbone, c.blocks, mults)}")

    def custom_fit(self, model: keras.Model, stage: Stage, tag: str, train, val, *,
                   steps_per_epoch: int | None, optimizer_steps: int, class_weight, cached: bool = False,
                   after_train_epoch=None, steps_per_execution: int = 1, n_val: int = 0):
        """One stage through :func:`tl_kit.distribute.custom_fit` (every strategy)."""
        from tl_kit import distribute as dist

        with self.strategy.scope():
            optimizer = stage_optimizer(stage, optimizer_steps, self.precision)
        self.block_rates(stage, optimizer)
        model.optimizer = optimizer  # callbacks (TensorBoard's learning rate) read it
        jit = dist.resolve_jit_compile(self.jit_compile, self.strategy, model)
        patience, restore, smoothing = early_stopping(stage, val is not None, n_val, self.log)
        callbacks = self.callbacks(stage, val is not None, cached)
        if stage.train_bn and self.random_weights:
            callbacks.insert(0, FastBatchNormMomentum(self.classifier.batchnorm_layers(), log=self.log))
        result = dist.custom_fit(
            model, optimizer, keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
            train, val, epochs=stage.epochs, strategy=self.strategy, class_weight=class_weight,
            checkpoint_dir=self.rundir.stage_dir(tag) if self.save_model else None,
            patience=patience, restore_best_weights=restore, smoothing=smoothing,
            checkpoint_interval=self.checkpoint_interval,
            steps_per_epoch=steps_per_epoch, jit_compile=jit, callbacks=callbacks,
            after_train_epoch=after_train_epoch, steps_per_execution=steps_per_execution,
            verbose=1, log=self.log,  # one line per epoch: train.log, and the console if verbose
        )
        ck = self.metrics.setdefault("checkpoints", {})
        ck["writes"] = ck.get("writes", 0) + result.checkpoint_writes
        ck["seconds"] = round(ck.get("seconds", 0.0) + result.checkpoint_seconds, 3)
        return result
