"""Ensembles: several classifiers averaged (or weighted) into one ``keras.Model``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tl_kit.errors import UserError
from tl_kit.tta import model_image_size

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["ensemble"]


def _check_members(models: list, weights: Sequence[float] | None) -> tuple[int, list[float] | None]:
    """The members' common channels and the normalised weights (None: plain average)."""
    if len(models) < 1:
        raise UserError(f"ensemble needs at least one model. Received: models={models}")
    channels = {m.input_shape[-1] for m in models}
    outputs = {m.output_shape[-1] for m in models}
    if len(channels) != 1 or len(outputs) != 1:
        raise UserError(
            "Ensemble members must take the same channels and predict the same classes. "
            f"Received: channels={sorted(channels)}, num_classes={sorted(outputs)}"
        )
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise UserError(
                "weights must hold one non-negative number per model, not all zero. "
                f"Received: weights={weights}"
            )
        weights = [w / sum(weights) for w in weights]
    return channels.pop(), weights


def _combine(member_outputs: list):
    import keras

    if len(member_outputs) == 1:
        return keras.layers.Identity(name="predictions")(member_outputs[0])
    return keras.layers.Average(name="predictions")(member_outputs)


def ensemble(
    models: Sequence,
    weights: Sequence[float] | None = None,
    name: str = "ensemble",
    *,
    image_size: Sequence[int] | None = None,
) -> keras.Model:
    """Average (or weight) several classifiers' probabilities into one ``keras.Model``.

    The ensemble takes raw images at ``image_size`` (default: the largest member input)
    and resizes them inside the graph (a ``Resizing`` layer per member whose size differs),
    so members may use different backbones and input sizes. The result saves to ``.keras``,
    evaluates, predicts and exports like any other model.

    Args:
        models: two or more keras.Models with the same number of classes and channels.
        weights: one non-negative weight per model (normalised to sum 1); None averages.
        name: the ensemble model's name.
        image_size: ``(height, width)`` of the ensemble input.

    Example:
    ```python
    both = ensemble([vgg_model, mobilenet_model], weights=[2, 1])
    probs = both.predict(images)
    ```
    """
    import keras

    models = list(models)
    channels, weights = _check_members(models, weights)
    sizes = [model_image_size(m) for m in models]
    if image_size is None:
        known = [s for s in sizes if s is not None]
        image_size = max(known, key=lambda s: (s[0] * s[1], s)) if known else (None, None)
    height, width = image_size
    inputs = keras.Input((height, width, channels), name="image")
    seen: set[str] = set()
    member_outputs = []
    for i, (model, size) in enumerate(zip(models, sizes, strict=True)):
        x = inputs
        if size is not None and tuple(size) != (height, width):
            x = keras.layers.Resizing(*size, name=f"member{i}_resize")(x)
        if model.name in seen or model.name == name:
            # Two members (or member and ensemble) with one name: nest under a unique name.
            inner = keras.Input(model.input_shape[1:])
            model = keras.Model(inner, model(inner), name=f"member{i}_{model.name}")
        seen.add(model.name)
        probs = model(x)
        if weights is not None:
            probs = keras.layers.Rescaling(weights[i], name=f"member{i}_weight")(probs)
        member_outputs.append(probs)
    if weights is not None and len(member_outputs) > 1:
        return keras.Model(inputs, keras.layers.Add(name="predictions")(member_outputs), name=name)
    return keras.Model(inputs, _combine(member_outputs), name=name)
