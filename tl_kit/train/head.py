"""The classifier: a backbone plus a new softmax head, and the models cut from them.

:class:`Classifier` holds the layers (backbone, preprocessing, pooling, dropout, the
``predictions`` Dense layer) and assembles them::

    image (raw [0, 255]) -> preprocess -> backbone (nested Model, called with training=False)
      -> head_pool -> head_dropout -> predictions (Dense softmax, float32)

The backbone is called with ``training=False`` so its BatchNormalization layers stay in
inference mode even when their block is unfrozen (the Keras guide's rule); ``assemble(
train_bn=True)`` builds the graph without it. Every model assembled shares the same layers
(and weights): the training model, the feature model of the feature cache and the doctor,
the head-only model trained on cached features, the final model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from tl_kit.backbones import BackboneSpec, assign_blocks, resolve_backbone
from tl_kit.errors import UserError
from tl_kit.layers import Preprocess
from tl_kit.recipes import Recipe, Stage, builtin_recipe

__all__ = ["Classifier", "resolve_spec", "head_settings", "check_recipe_change", "precision_scope",
           "FLATTEN_MAX"]

FLATTEN_MAX = 4096  # head_pool="auto": flatten maps up to this many values, else average


def resolve_spec(backbone: str | BackboneSpec, weights: Any) -> tuple[BackboneSpec, Any, str]:
    """``(spec, weights, note)``: the backbone's spec, ``weights="auto"`` made concrete
    (ImageNet where published, else None) and a note to log (an aliased name, say). A spec
    the caller made (e.g. a builder with other arguments) is used as given."""
    if isinstance(backbone, BackboneSpec):
        if weights == "auto":
            weights = "imagenet" if backbone.imagenet else None
        return backbone, weights, ""
    if weights == "auto":
        from tl_kit.backbones import get_backbone

        weights = "imagenet" if (get_backbone(backbone).imagenet
                                 or resolve_backbone(backbone, "imagenet")[0].imagenet) else None
    spec, note = resolve_backbone(backbone, weights)
    return spec, weights, note


def head_settings(recipe: Recipe | None) -> tuple:
    """``(head_layer, head_pool, dropout)``: how a recipe attaches the head."""
    r = recipe or builtin_recipe("small")
    return (r.head_layer, r.head_pool, float(r.dropout))


def check_recipe_change(old: Recipe | None, new: Recipe, trained: bool) -> str:
    """What adopting ``new`` in place of ``old`` takes: ``"same"`` (the head is unchanged),
    ``"rebuild"`` (an untrained head is rebuilt to match) or ``"dropout"`` (a trained head
    keeps its weights and takes the new dropout rate). A trained head attached differently
    (cut layer, pooling) is an error rather than a silent mismatch."""
    a, b = head_settings(old), head_settings(new)
    if a == b:
        return "same"
    if not trained:
        return "rebuild"
    if a[:2] != b[:2]:
        raise UserError(
            f"Recipe {new.name!r} attaches the head differently (head_layer, head_pool "
            f"{a[:2]} -> {b[:2]}) from the model this learner already trained. Keep "
            "head_layer and head_pool, or start a new learner with this recipe. "
            f"Received: recipe={new.name!r}")
    return "dropout"


@contextlib.contextmanager
def precision_scope(policy: str) -> Iterator[None]:
    """Keras's global dtype policy = ``policy`` while layers are created."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _pool_layer(pool: str, feature_shape: tuple) -> tuple[keras.layers.Layer, str]:
    if pool == "auto":
        size = int(np.prod([d for d in feature_shape if d is not None])) if None not in feature_shape else None
        pool = "flatten" if len(feature_shape) == 1 or (size is not None and size <= FLATTEN_MAX) else "avg"
    if len(feature_shape) == 1:
        return keras.layers.Identity(name="head_pool"), pool
    if pool == "flatten":
        return keras.layers.Flatten(name="head_pool"), pool
    if pool == "max":
        return keras.layers.GlobalMaxPooling2D(name="head_pool"), pool
    return keras.layers.GlobalAveragePooling2D(name="head_pool"), pool


class Classifier:
    """Backbone + head layers for ``num_classes`` at ``image_size`` x ``channels``; create it
    inside the strategy's scope and the precision's policy (:func:`precision_scope`).

    Attributes: ``backbone`` (a nested ``keras.Model``, cut at ``recipe.head_layer``),
    ``blocks`` (the spec's block declaration), ``preprocess``, ``pool``, ``head_pool`` (the
    pooling chosen), ``dropout``, ``dense`` (``predictions``), ``feature_shape``.
    """

    def __init__(self, spec: BackboneSpec, image_size: tuple[int, int], channels: int, *,
                 weights: Any, num_classes: int, recipe: Recipe | None = None, seed: int = 0):
        recipe = recipe or builtin_recipe("small")
        self.spec, self.image_size, self.channels = spec, tuple(image_size), int(channels)
        inner = spec.build((*self.image_size, self.channels), weights=weights)
        out = inner.get_layer(recipe.head_layer).output if recipe.head_layer else inner.output
        self.backbone = keras.Model(inner.input, out, name="backbone")
        self.blocks = spec.blocks
        self.feature_shape = tuple(self.backbone.output.shape[1:])
        self.pool, self.head_pool = _pool_layer(recipe.head_pool, self.feature_shape)
        self.preprocess = Preprocess(spec.preprocess, name="preprocess")
        self.dropout = keras.layers.Dropout(recipe.dropout, name="head_dropout", seed=seed)
        self.dense = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                        name="predictions")

    def _image(self) -> keras.KerasTensor:
        return keras.Input((*self.image_size, self.channels), name="image")

    def assemble(self, train_bn: bool = False) -> keras.Model:
        """The classifier as a functional model (BatchNorm in inference mode unless ``train_bn``)."""
        image = self._image()
        x = self.preprocess(image)
        x = self.backbone(x) if train_bn else self.backbone(x, training=False)
        out = self.dense(self.dropout(self.pool(x)))
        return keras.Model(image, out, name=f"{self.spec.name.replace(':', '_')}_classifier")

    def feature_model(self, fold: bool = False, log: Callable[[str], None] | None = None) -> keras.Model:
        """Image -> pooled features (the head's input), backbone in inference mode.
        ``fold=True`` uses a copy of the backbone with BatchNormalization folded into the
        convolutions (same features, fewer ops: tl_kit.fold); a backbone the folding does not
        handle runs as it is (``log`` says why)."""
        backbone = self.backbone
        if fold:
            from tl_kit.fold import fold_batchnorm

            try:
                backbone = fold_batchnorm(self.backbone, verify=False)  # exact math: tests/test_fold.py
            except Exception as exc:  # noqa: BLE001 - an optimisation only: fall back, say why
                if log is not None:
                    log(f"feature cache: backbone not folded ({type(exc).__name__}: {exc})")
        image = self._image()
        x = backbone(self.preprocess(image), training=False)
        return keras.Model(image, self.pool(x), name="features")

    def head_model(self, feature_shape: tuple) -> keras.Model:
        """Pooled features -> dropout -> predictions (the same layers as the classifier's)."""
        features = keras.Input(feature_shape, name="features")
        return keras.Model(features, self.dense(self.dropout(features)), name="head")

    def block_names(self) -> list[str]:
        """The declared blocks that hold layers of this backbone, first to last."""
        groups = assign_blocks(self.backbone, self.blocks)
        return [d for d, g in zip(self.blocks, groups, strict=True) if g]

    def trainable_blocks(self, stage: Stage, default_unfreeze: int) -> int | str:
        """How many last blocks ``stage`` trains: 0 (head), ``"all"``, or its number capped
        at the backbone's (``trainable="default"``: ``default_unfreeze``)."""
        t = stage.trainable
        if t == "head":
            return 0
        if t == "all":
            return "all"
        n = default_unfreeze if t == "default" else t
        return min(int(n), len(self.block_names()))

    def batchnorm_layers(self, trainable_only: bool = False) -> list[keras.layers.BatchNormalization]:
        return [layer for layer in self.backbone._flatten_layers(include_self=False, recursive=True)
                if isinstance(layer, keras.layers.BatchNormalization)
                and (layer.trainable or not trainable_only)]

    def describe(self, num_classes: int, dropout: float) -> str:
        """The head for the build log line."""
        return (f"head: {self.head_pool} pooling of {self.feature_shape} -> dropout {dropout} -> "
                f"Dense({num_classes})")
