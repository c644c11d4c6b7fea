"""Recipes: how to fine-tune, as plain data (TOML files or Python objects).

A :class:`Recipe` is an ordered list of :class:`Stage` objects plus a few model choices
(head pooling, dropout, image size). The three built-ins follow the classic advice
(Yosinski et al., "How transferable are features in deep neural networks?", NIPS 2014;
the Keras transfer-learning guide; CS231n's "Transfer Learning" notes):

- ``small``: freeze the whole backbone, train only the new softmax head (few images per
  class: the pretrained features are better than anything the data could teach);
- ``medium``: warm the head up on the frozen backbone, then unfreeze the last N blocks
  (N from the backbone, overridable) at a ~10x lower learning rate;
- ``large``: warm the head up, then fine-tune every layer, the pretrained weights as a start.

:func:`choose_regime` picks one from the number of training images per class:

================  ===========  =====================================================
images per class  regime       why
================  ===========  =====================================================
< 100             ``small``    too few to move millions of weights without overfitting
100 - 999         ``medium``   enough to adapt the most task-specific (last) blocks
>= 1000           ``large``    enough to adapt every layer
================  ===========  =====================================================
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tl_kit.errors import UserError

__all__ = [
    "Stage",
    "Recipe",
    "BUILTIN_RECIPES",
    "REGIME_THRESHOLDS",
    "load_recipe",
    "builtin_recipe",
    "recipe_from_name",
    "scratch_recipe",
    "choose_regime",
]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("cosine", "constant")
HEAD_POOLS = ("auto", "avg", "max", "flatten")
# smallest images-per-class of each regime, see the module docstring
REGIME_THRESHOLDS: dict[str, int] = {"small": 0, "medium": 100, "large": 1000}

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def _err(msg: str, **received: Any) -> UserError:
    got = ", ".join(f"{k}={v!r}" for k, v in received.items())
    return UserError(f"{msg} Received: {got}")


@dataclass
class Stage:
    """One training stage.

    Attributes:
        name: label used in logs and history.csv.
        trainable: ``"head"`` (backbone frozen), an int N (the last N backbone blocks),
            ``"default"`` (the backbone's own N, ``BackboneSpec.default_unfreeze``) or ``"all"``.
        epochs: maximum epochs (early stopping may end the stage sooner).
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` (momentum 0.9, Nesterov) or ``"rmsprop"``.
        learning_rate: peak learning rate (reached after the warm-up).
        warmup_epochs: linear warm-up from ~0 to ``learning_rate``.
        schedule: ``"cosine"`` decay to 0 after the warm-up, or ``"constant"``.
        weight_decay: the optimizer's decoupled weight decay (Keras ``weight_decay``: every
            trainable weight shrinks by ``lr * weight_decay`` each step), not an L2 loss term.
        label_smoothing: for the categorical cross-entropy.
        layer_decay: per-block learning rates by layer-wise decay (:mod:`tl_kit.block_lr`):
            the head trains at ``learning_rate``, the last backbone block at
            ``layer_decay`` times it, the one before at ``layer_decay**2``, ... (e.g. 0.75).
        block_lr: explicit per-block multipliers of ``learning_rate``, keyed by block
            declaration or ``"head"`` (``{head = 1.0, block5 = 0.3}``); blocks not named x1.
        ema: keep an exponential moving average of the weights with this momentum (e.g.
            0.99; Keras's ``use_ema``): the model takes the averaged weights at every
            epoch's end (so validation, best-epoch choice and checkpoints see them) and at
            the stage's end.
        augment: augmentation policy (``tl_kit.augment.POLICIES``) or ``"none"``.
        batch_size: global batch size (split across replicas).
        early_stopping: patience in epochs on validation loss; 0 turns it off.
        restore_best: restore the weights of the best validation epoch at the end.
        class_weights: weight the loss with the data's "balanced" class weights.
        train_bn: let BatchNormalization layers of unfrozen blocks update (default: frozen,
            in inference mode, as the Keras guide advises).
        cache_features: head-only stages train on cached backbone features.
        cache_copies: augmented copies of the training set added to that cache.
        min_steps_per_epoch: with very few images an epoch is one or two steps; cycle the
            training data so every epoch has at least this many batches (0: one pass).
        head_init: ``"random"`` or ``"imprint"``: start the head (head-only cached stages) as
            the nearest-class-mean classifier of the cached features (weight imprinting,
            Qi et al., "Low-Shot Learning with Imprinted Weights", CVPR 2018).
    """

    name: str = "head"
    trainable: int | str = "head"
    epochs: int = 10
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    warmup_epochs: int = 0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    layer_decay: float | None = None
    block_lr: dict[str, float] | None = None
    ema: float | None = None
    augment: str = "light"
    batch_size: int = 32
    early_stopping: int = 5
    restore_best: bool = True
    class_weights: bool = True
    train_bn: bool = False
    cache_features: bool = True
    cache_copies: int = 2
    min_steps_per_epoch: int = 0
    head_init: str = "random"

    def __post_init__(self) -> None:
        t = self.trainable
        if not (t in ("head", "all", "default") or (isinstance(t, int) and not isinstance(t, bool) and t >= 0)):
            raise _err("Stage.trainable must be 'head', 'all', 'default' or an int >= 0.", trainable=t)
        if self.optimizer not in OPTIMIZERS:
            raise _err(f"Stage.optimizer must be one of {OPTIMIZERS}.", optimizer=self.optimizer)
        if self.schedule not in SCHEDULES:
            raise _err(f"Stage.schedule must be one of {SCHEDULES}.", schedule=self.schedule)
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise _err("Stage.epochs must be an int >= 0.", epochs=self.epochs)
        if self.learning_rate <= 0:
            raise _err("Stage.learning_rate must be > 0.", learning_rate=self.learning_rate)
        if self.head_init not in ("random", "imprint"):
            raise _err("Stage.head_init must be 'random' or 'imprint'.", head_init=self.head_init)
        if self.batch_size < 1:
            raise _err("Stage.batch_size must be >= 1.", batch_size=self.batch_size)
        if not 0 <= self.label_smoothing < 1:
            raise _err("Stage.label_smoothing must be in [0, 1).", label_smoothing=self.label_smoothing)
        self._check_rates()

    def _check_rates(self) -> None:
        from tl_kit.block_lr import check_block_lr

        check_block_lr(self.layer_decay, self.block_lr)
        if self.ema is not None and (isinstance(self.ema, bool) or not 0 < self.ema < 1):
            raise _err("Stage.ema must be a momentum in (0, 1), e.g. 0.99.", ema=self.ema)

    @property
    def head_only(self) -> bool:
        return self.trainable in ("head", 0)


@dataclass
class Recipe:
    """A fine-tuning recipe: ordered stages plus the model choices.

    Attributes:
        name: ``"small"``, ``"medium"``, ``"large"`` or your own.
        stages: the stages, run in order; the model is recompiled between them.
        description: when to use it.
        backbone: default backbone name (``None``: the caller decides).
        image_size: input size (``None``: the backbone's default).
        dropout: dropout rate before the softmax head.
        head_pool: how the head reads the feature map: ``"avg"``, ``"max"``, ``"flatten"``,
            or ``"auto"`` (flatten when the map holds <= 4096 values, else average pooling:
            small maps keep their spatial detail, LeNet-5's 5x5x16 gives 400 features).
        head_layer: attach the head to this backbone layer instead of its output (the layers
            after it are dropped); ``None`` = the backbone's output.
        calibrate: after the last stage, fit a temperature on the validation split and fold
            it into the softmax head (:mod:`tl_kit.calibrate`).
    """

    name: str = "custom"
    stages: list[Stage] = field(default_factory=lambda: [Stage()])
    description: str = ""
    backbone: str | None = None
    image_size: int | None = None
    dropout: float = 0.2
    head_pool: str = "auto"
    head_layer: str | None = None
    calibrate: bool = True

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, Stage) else _stage_from_dict(s) for s in self.stages]
        if not self.stages:
            raise _err("A recipe needs at least one stage.", stages=self.stages)
        if self.head_pool not in HEAD_POOLS:
            raise _err(f"Recipe.head_pool must be one of {HEAD_POOLS}.", head_pool=self.head_pool)
        if not 0 <= self.dropout < 1:
            raise _err("Recipe.dropout must be in [0, 1).", dropout=self.dropout)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (no None values, so it writes to TOML as is)."""
        d = dataclasses.asdict(self)
        d["stages"] = [{k: v for k, v in st.items() if v is not None} for st in d["stages"]]
        return {k: v for k, v in d.items() if v is not None}

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | os.PathLike) -> str:
        Path(path).write_text(self.to_toml())
        return os.fspath(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _err(f"Unknown recipe keys {unknown}; known: {sorted(known)}.", keys=unknown)
        return cls(**dict(data))

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def with_stage_overrides(self, **changes: Any) -> Recipe:
        """A copy with ``changes`` applied to every stage (``epochs=1``, ``batch_size=8``)."""
        return self.replace(stages=[dataclasses.replace(s, **changes) for s in self.stages])

    def with_budget(
        self,
        *,
        quick: bool = False,
        epochs: int | None = None,
        epochs_scale: float | None = None,
        batch_size: int | None = None,
    ) -> Recipe:
        """A copy with a training budget applied to every stage (what ``tl-kit train
        --quick / --epochs / --epochs-scale / --batch-size`` do).

        Args:
            quick: at most 1 epoch per stage and no augmented feature copies (a smoke run).
            epochs: this many epochs for every stage (at least 1: 0 would save an untrained run).
            epochs_scale: multiply every stage's epochs by this (> 0), rounding, at least 1
                epoch per stage.
            batch_size: this global batch size for every stage.

        At most one of ``quick``, ``epochs`` and ``epochs_scale`` may be given.
        """
        given = {name: value for name, value in
                 (("quick", quick), ("epochs", epochs), ("epochs_scale", epochs_scale))
                 if value is not None and value is not False}
        if len(given) > 1:
            got = ", ".join(f"{name}={value!r}" for name, value in given.items())
            raise UserError(f"Give at most one of quick, epochs and epochs_scale. Received: {got}")
        if epochs is not None and epochs < 1:
            raise UserError(f"`epochs` must be at least 1. Received: epochs={epochs}")
        if epochs_scale is not None and epochs_scale <= 0:
            raise UserError(f"`epochs_scale` must be positive. Received: epochs_scale={epochs_scale}")
        common: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        stages = []
        for stage in self.stages:
            changes = dict(common)
            if quick:
                changes.update(epochs=min(stage.epochs, 1), cache_copies=0)
            elif epochs is not None:
                changes["epochs"] = epochs
            elif epochs_scale is not None:
                changes["epochs"] = max(1, round(stage.epochs * epochs_scale))
            stages.append(dataclasses.replace(stage, **changes))
        return self.replace(stages=stages)


def _stage_from_dict(data: Mapping[str, Any]) -> Stage:
    known = {f.name for f in dataclasses.fields(Stage)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _err(f"Unknown stage keys {unknown}; known: {sorted(known)}.", keys=unknown)
    return Stage(**dict(data))


def _small() -> Recipe:
    return Recipe(
        name="small",
        description="Few images per class (< 100): freeze the backbone, train only the new head.",
        stages=[Stage(name="head", trainable="head", epochs=30, learning_rate=1e-3,
                      label_smoothing=0.1, augment="light", early_stopping=8)],
    )


def _medium() -> Recipe:
    return Recipe(
        name="medium",
        description="100-999 images per class: head warm-up, then the last blocks at a 10x lower rate.",
        stages=[
            Stage(name="head", trainable="head", epochs=5, learning_rate=1e-3,
                  label_smoothing=0.1, augment="light", early_stopping=0),
            Stage(name="finetune", trainable="default", epochs=15, learning_rate=1e-4,
                  warmup_epochs=1, label_smoothing=0.1, augment="standard", early_stopping=5),
        ],
    )


def _large() -> Recipe:
    return Recipe(
        name="large",
        description="1000+ images per class: head warm-up, then fine-tune every layer.",
        stages=[
            Stage(name="head", trainable="head", epochs=3, learning_rate=1e-3,
                  label_smoothing=0.1, augment="standard", early_stopping=0),
            Stage(name="finetune", trainable="all", epochs=30, learning_rate=1e-4,
                  warmup_epochs=2, weight_decay=1e-4, optimizer="adamw",
                  label_smoothing=0.1, augment="standard", early_stopping=6),
        ],
    )


BUILTIN_RECIPES = {"small": _small, "medium": _medium, "large": _large}
_FILES = {"small": "small_data.toml", "medium": "medium_data.toml", "large": "large_data.toml"}


def builtin_recipe(name: str) -> Recipe:
    """A fresh copy of the built-in recipe ``name`` (``"small"``, ``"medium"``, ``"large"``)."""
    try:
        return BUILTIN_RECIPES[name]()
    except KeyError:
        raise _err(f"Unknown built-in recipe; choose one of {sorted(BUILTIN_RECIPES)}.", recipe=name) from None


def load_recipe(source: str | os.PathLike | Recipe | Mapping[str, Any]) -> Recipe:
    """A recipe from a built-in name (``"small"``), a TOML file, a dict or a Recipe."""
    if isinstance(source, Recipe):
        return source
    if isinstance(source, Mapping):
        return Recipe.from_dict(source)
    text = os.fspath(source)
    if text in BUILTIN_RECIPES:
        return builtin_recipe(text)
    path = Path(text)
    if not path.exists():
        raise _err(
            "Recipe not found: give 'small', 'medium', 'large' or the path of a TOML file.",
            recipe=text,
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise _err(f"Recipe file {text!r} is not valid TOML ({exc}).", recipe=text) from exc
    return Recipe.from_dict(data)


def recipe_from_name(name: str | os.PathLike, *, auto: bool = True) -> Recipe | None:
    """The recipe a name on a command line stands for.

    ``"auto"`` -> ``None`` (no recipe: ``Learner(regime="auto")`` chooses one from the
    training images per class, see :func:`choose_regime`), ``"scratch"`` ->
    :func:`scratch_recipe`, a built-in name (``"small"``, ``"medium"``, ``"large"``) or the
    path of a TOML file -> :func:`load_recipe`. With ``auto=False`` (a caller that needs a
    recipe now), ``"auto"`` is read as a file name like any other.
    """
    text = os.fspath(name)
    if text == "auto" and auto:
        return None
    if text == "scratch":
        return scratch_recipe()
    return load_recipe(text)


def choose_regime(images_per_class: int | float | Mapping[str, int]) -> tuple[str, str]:
    """``(regime, reason)`` from the training images per class (median over classes).

    Thresholds: :data:`REGIME_THRESHOLDS` (``< 100`` small, ``100-999`` medium, ``>= 1000`` large).
    """
    if isinstance(images_per_class, Mapping):
        counts = [int(v) for v in images_per_class.values()]
        if not counts:
            raise _err("No classes to count.", images_per_class=dict(images_per_class))
        n = statistics.median(counts)
        what = f"median {n:g} training images per class (min {min(counts)}, max {max(counts)})"
    else:
        n = float(images_per_class)
        what = f"{n:g} training images per class"
    if n >= REGIME_THRESHOLDS["large"]:
        regime = "large"
        why = f">= {REGIME_THRESHOLDS['large']}: enough to fine-tune every layer"
    elif n >= REGIME_THRESHOLDS["medium"]:
        regime = "medium"
        why = (f"{REGIME_THRESHOLDS['medium']}-{REGIME_THRESHOLDS['large'] - 1}: enough to adapt "
               "the last blocks, not the whole network")
    else:
        regime = "small"
        why = (f"< {REGIME_THRESHOLDS['medium']}: too few to fine-tune the backbone without "
               "overfitting; train only the head on frozen features")
    return regime, f"{what} ({why})"


def scratch_recipe(epochs: int = 30, learning_rate: float = 1e-3, **stage: Any) -> Recipe:
    """A one-stage recipe that trains every layer from random weights (the baseline, and
    what ``regime="auto"`` picks when there are no pretrained weights).

    Every layer is trainable from the first step, BatchNormalization layers run in TRAINING
    mode (``train_bn=True``: batch statistics, moving averages updated; with random weights
    the initial moving statistics mean nothing, and in inference mode a deep randomly
    initialised network's features shrink towards zero), and there is no head-only /
    feature-cache stage (random features are not worth caching). ``stage`` overrides any
    other :class:`~tl_kit.recipes.Stage` field.
    """
    fields = {"train_bn": True, "cache_features": False, **stage}
    return Recipe(name="scratch", description="Every layer from random initialisation.",
                  stages=[Stage(name="scratch", trainable="all", epochs=epochs,
                                learning_rate=learning_rate, **fields)])
