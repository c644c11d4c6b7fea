"""The learner: backbone + new softmax head, trained stage by stage from a recipe.

``learner.model`` is a plain functional ``keras.Model`` (:class:`tl_kit.train.head.Classifier`
assembles it). What ``fit`` writes into ``run_dir``, and how it resumes, is described in
:mod:`tl_kit.train` ("Run directories, resume and overwrite") and :mod:`tl_kit.rundir.run`.

Structure: :meth:`Learner.build` creates the :class:`~tl_kit.train.head.Classifier` inside the
strategy's scope (the one place the model's layers are created); :meth:`Learner.fit` prepares
the run directory (undone on any error before training), resolves the recipe and runs each
stage through :class:`~tl_kit.train.stages.StageRunner`; :meth:`Learner._callbacks` builds
the Keras callbacks of a stage (the hook tests and scripts extend).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from tl_kit.backbones import BackboneSpec
from tl_kit.recipes import Recipe, builtin_recipe, load_recipe
from tl_kit.rundir.run import RunDir
from tl_kit.train import inputs, options
from tl_kit.train.callbacks import RunHistory, tensorboard_callback
from tl_kit.train.head import (
    Classifier,
    check_recipe_change,
    head_settings,
    precision_scope,
    resolve_spec,
)
from tl_kit.train.regime import random_feature_warnings, resolve_recipe
from tl_kit.train.stages import StageRunner

__all__ = ["Learner"]


class Learner:
    """Orchestrates a fit: the classifier (:class:`tl_kit.train.head.Classifier`), the recipe
    (:mod:`tl_kit.train.regime`), the strategy, the run directory (:class:`tl_kit.rundir.RunDir`)
    and the stages (:class:`tl_kit.train.stages.StageRunner`).

    Args:
        backbone: a backbone name (:func:`tl_kit.list_backbones`) or a BackboneSpec.
        num_classes: number of classes; ``None`` takes it from the data at ``fit``.
        class_names: names in label order (default: from the data, or ``"0".."K-1"``).
        regime: ``"auto"`` (from images per class, :func:`tl_kit.recipes.choose_regime`;
            with ``weights=None`` always ``"scratch"``: random features make head-only
            training meaningless, see :func:`tl_kit.recipes.scratch_recipe`), ``"small"``, ``"medium"``,
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
        pipeline: how a folder's images reach training (:func:`tl_kit.load_data`):
            ``"auto"`` (in memory when the resized pixels fit in
            :data:`tl_kit.data.CACHE_LIMIT_BYTES`, else streamed from disk), ``"memory"``
            or ``"stream"``. The training log states the choice and why. It changes speed
            and memory, not the pixels, so a run resumes under either.


    Run directories, resume and overwrite: see :mod:`tl_kit.train`.
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
        pipeline: str = "auto",
    ):
        from tl_kit import distribute as dist
        from tl_kit.data.cache import check_pipeline

        # First TensorFlow call of the process (MultiWorkerMirroredStrategy needs that).
        self.strategy = dist.resolve_strategy(strategy)
        self.precision = dist.resolve_precision(precision)
        options.check_options(regime, jit_compile)
        self.pipeline = check_pipeline(pipeline)
        self.jit_compile, self.overwrite, self.regime = jit_compile, bool(overwrite), regime
        self.spec, self.weights, note = resolve_spec(backbone, weights)
        self.requested_weights = weights
        self.recipe: Recipe | None = load_recipe(recipe) if recipe is not None else None
        self.regime_reason = ""
        self.seed, self.verbose, self.tensorboard = int(seed), int(verbose), bool(tensorboard)
        self.unfreeze, self.save_model = unfreeze, bool(save_model)
        self.checkpoint_interval = checkpoint_interval
        self.class_names = list(class_names) if class_names is not None else None
        # True while class_names are unknown or the "0".."K-1" placeholders: fit takes the
        # data's own names (a folder's sub-folder names) then.
        self.placeholder_names = class_names is None
        self.num_classes = num_classes if num_classes is not None else (
            len(self.class_names) if self.class_names else None)
        self.image_size = options.image_size_for(image_size, self.recipe, self.spec.default_size)
        self.channels = int(channels or self.spec.default_size[2])
        self.run_dir = Path(run_dir) if run_dir is not None else options.new_run_dir(self.spec.name)
        self.rundir = RunDir(self.run_dir, local=lambda p: dist.worker_dir(p, self.strategy), log=self.log)
        self.data, self.model, self.classifier = None, None, None
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] = {}
        self._log_lines: list[str] = []
        self._fitted = False  # True once a fit has finished (its model is trained)
        self.calibrate: bool | None = None  # None: the recipe's `calibrate` (tl_kit.calibrate)
        if note:
            self.log(note)
        if weights == "auto":
            self.log(f"weights='auto' -> {self.weights!r} for backbone {self.spec.name!r}")
        if self.num_classes is not None:
            self.build()

    def log(self, msg: str) -> None:
        """A log line: kept, printed when verbose, appended to ``train.log``."""
        self._log_lines.append(msg)
        if self.verbose:
            print(f"[tl_kit] {msg}", flush=True)
        self.rundir.append_log(msg)

    @property
    def _out(self) -> Path:
        """Where this process writes the run directory (``run_dir`` on the chief)."""
        return self.rundir.out

    @property
    def backbone(self) -> keras.Model:
        return self.classifier.backbone

    @property
    def blocks(self):
        return self.classifier.blocks

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
        with self.strategy.scope(), precision_scope(self.precision):
            self.classifier = Classifier(self.spec, self.image_size, self.channels, weights=self.weights,
                                         num_classes=self.num_classes, recipe=recipe, seed=self.seed)
            self.model = self.classifier.assemble(train_bn=False)
        self.log(
            f"model: {self.spec.name} ({self.spec.source}) at {self.image_size[0]}x{self.image_size[1]}"
            f"x{self.channels}, weights={self._weights_label()}, "
            f"{self.classifier.describe(self.num_classes, recipe.dropout)}, "
            f"{self.model.count_params():,} parameters; precision {self.precision}, "
            f"strategy {type(self.strategy).__name__} ({self.strategy.num_replicas_in_sync} replicas)")
        return self.model

    def _use_recipe(self, recipe: Recipe) -> None:
        """Adopt a recipe given to ``fit`` (:func:`tl_kit.train.head.check_recipe_change`)."""
        old = self.recipe
        change = check_recipe_change(old, recipe, trained=bool(self.history)) if self.model else "same"
        self.recipe = recipe
        if change == "rebuild":
            self.log(f"recipe {recipe.name!r} given to fit: rebuilding the head (layer, pooling, "
                     f"dropout {head_settings(old)} -> {head_settings(recipe)})")
            self.model = None
        elif change == "dropout":
            self.classifier.dropout.rate = float(recipe.dropout)
            self.log(f"recipe {recipe.name!r} given to fit: head dropout "
                     f"{head_settings(old)[2]} -> {float(recipe.dropout)}")

    def _weights_label(self) -> str:
        w = self.weights
        return repr(w) if w in (None, "imagenet") else repr(os.fspath(w))

    def load_data(self, data, whole: bool = False):
        """``data`` as a :class:`tl_kit.data.Data` (:func:`tl_kit.train.inputs.load_learner_data`)."""
        return inputs.load_learner_data(self, data, whole=whole)

    def adopt_class_names(self, data) -> None:
        """Check the data's classes against the model's, take its names while the learner's
        are placeholders (:func:`tl_kit.train.inputs.adopt_class_names`)."""
        inputs.adopt_class_names(self, data)

    def resolve_recipe(self, data, *, adopt: bool = True) -> Recipe:
        """The recipe fit runs on ``data`` (:func:`tl_kit.train.regime.resolve_recipe`),
        with warnings for random weights logged; ``adopt``: record its regime and reason."""
        recipe, regime, reason = resolve_recipe(self.recipe, self.regime, self.weights, data, self.regime_reason)
        if adopt:
            self.regime, self.regime_reason = regime, reason
        for line in random_feature_warnings(recipe, self.weights, self.classifier):
            self.log(line)
        return recipe

    def writes_plots(self) -> bool:
        """Plots go into the run directory on the chief of runs that keep their artefacts
        (``save_model=False`` marks a throw-away run: no model, checkpoints or plots)."""
        from tl_kit import distribute as dist

        return self.save_model and dist.is_chief(self.strategy)

    # === Training ===

    def fit(self, data=None, *, recipe: Recipe | str | None = None, verbose: int | None = None,
            overwrite: bool | None = None) -> Learner:
        """Train on ``data`` (folder, tf.data.Dataset, (x, y) arrays, dict of splits,
        ``"tfds:NAME"`` or a :class:`tl_kit.data.Data`) following the recipe's stages.

        Resumes an interrupted run in ``run_dir`` with the same settings; refuses to replace
        a complete run, or a run with other settings, unless ``overwrite=True`` (see
        :mod:`tl_kit.train`)."""
        from tl_kit.calibrate import calibrate_learner, undo_learner_calibration
        from tl_kit.train.evaluation import finish_run

        if verbose is not None:
            self.verbose = int(verbose)
        if overwrite is not None:
            self.overwrite = bool(overwrite)
        if recipe is not None:
            self._use_recipe(load_recipe(recipe))
        # Any error before the first epoch leaves the run directory as it was (or absent).
        with self.rundir.preparing():
            data, recipe, resuming = options.prepare_training(self, data)
        self.rundir.write_status("running")
        self.history = []
        undo_learner_calibration(self)  # a re-fit trains the raw head, never T applied twice
        self._run_history = RunHistory(self.rundir, self.history)
        runner = StageRunner.for_learner(self, self._run_history, resuming)
        start = time.perf_counter()
        for index, stage in enumerate(recipe.stages):
            try:
                runner.run(index, stage, data)
            finally:
                self.model = runner.model
        self.metrics["train_seconds"] = round(time.perf_counter() - start, 3)
        calibrate_learner(self, data, recipe)  # temperature scaling on val (recipe.calibrate)
        finish_run(self)
        self._fitted = True
        return self

    def _callbacks(self, stage, has_val: bool, cached: bool = False) -> list:
        """Keras callbacks of one stage: history.csv after every epoch (``history``) and
        TensorBoard (chief). Early stopping and best weights are ``custom_fit``'s."""
        from tl_kit import distribute as dist

        cbs: list = [self._run_history.callback()]
        if stage.early_stopping and not has_val:
            self.log("no validation split: early stopping is off for this stage")
        if self.tensorboard and dist.is_chief(self.strategy):
            cbs.append(tensorboard_callback(self.run_dir / "logs" / (stage.name + ("_cached" if cached else ""))))
        return cbs

    def run_dir_bytes(self) -> int:
        """Bytes in this process's run directory (files only)."""
        return self.rundir.size_bytes()

    # === Evaluate / predict / export ===

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
        from tl_kit.train.evaluation import learner_evaluate

        return learner_evaluate(self, data, split=split, tta=tta, top_k=top_k)

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
