"""Helpers shared by the classic builders: the keras.applications signature in one place."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
from keras import layers

from tl_kit.errors import UserError

POOLING_VALUES = (None, "avg", "max", "flatten")


def keras_cache_dir() -> str:
    """Keras's cache folder, honouring ``KERAS_HOME`` (read now, not at import time)."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        from keras.src.backend import config as _config

        home = _config.keras_home()
    return os.path.expanduser(home)


def validate_args(
    *,
    weights: str | None,
    include_top: bool,
    pooling: str | None,
    classes: int,
    name: str,
    imagenet_ok: bool = False,
) -> None:
    """Reject bad arguments with messages that end with the offending value."""
    if not (weights in (None, "imagenet") or (isinstance(weights, (str, os.PathLike)) and str(weights))):
        raise UserError(
            "The `weights` argument should be None, 'imagenet' or the path to a weights file. "
            f"Received: weights={weights!r}"
        )
    if weights == "imagenet" and not imagenet_ok:
        raise UserError(
            f"No ImageNet weights are published for tl_kit's {name!r} builder. Use weights=None, "
            "a path to a weights file you trained, or a Keras Applications backbone "
            f"(tl_kit.list_backbones()). Received: weights={weights!r}"
        )
    if weights is not None and weights != "imagenet" and not os.path.exists(weights):
        raise FileNotFoundError(f"Weights file not found. Received: weights={weights!r}")
    if pooling not in POOLING_VALUES:
        raise UserError(f"The `pooling` argument should be one of {POOLING_VALUES}. Received: pooling={pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise UserError(f"`classes` must be a positive integer. Received: classes={classes!r}")


def resolve_input(
    *,
    input_tensor,
    input_shape: tuple | None,
    default_shape: tuple[int, int, int],
    min_size: int,
    include_top: bool,
    name: str,
    top_any_size: bool = False,
    pooling: str | None = None,
):
    """Return ``(img_input, inputs)`` for a builder.

    With ``include_top=True`` the input shape must be the paper's (the fully connected
    classifier fixes it), unless the architecture pools globally before the classifier;
    builders that allow any size pass ``include_top=False`` here, or ``top_any_size=True``
    (the top pools globally: ``default_shape`` stays the default, any size from
    ``min_size`` up is accepted). Without the top, any size from ``min_size`` up is
    accepted; ``None`` spatial dimensions too. Builders may pass their ``pooling``: with
    ``pooling="flatten"`` and no input shape the default is ``default_shape`` (a flattened
    feature vector needs a fixed size).
    """
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        fixed = include_top or pooling == "flatten"
        input_shape = default_shape if fixed else (None, None, default_shape[2])
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise UserError(
            f"`input_shape` must be (height, width, channels) for {name!r}. Received: input_shape={input_shape!r}"
        )
    if include_top and not top_any_size and tuple(input_shape) != tuple(default_shape):
        raise UserError(
            f"With include_top=True, {name!r} needs input_shape={tuple(default_shape)} (its fully "
            "connected classifier fixes the size); use include_top=False for other sizes. "
            f"Received: input_shape={input_shape!r}"
        )
    for dim in input_shape[:2]:
        if dim is not None and dim < min_size:
            raise UserError(
                f"{name!r} needs inputs of at least {min_size}x{min_size} pixels. "
                f"Received: input_shape={input_shape!r}"
            )
    if input_tensor is None:
        img_input = layers.Input(shape=input_shape, name="input_layer")
        return img_input, img_input
    if not keras.backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=input_shape)
    else:
        img_input = input_tensor
    sources = keras.utils.get_source_inputs(input_tensor)
    # One source input -> pass the tensor itself, so calling the model with one array
    # matches its input structure (no Keras structure warning).
    return img_input, sources[0] if len(sources) == 1 else sources


def apply_pooling(x, pooling: str | None, prefix: str = ""):
    """Apply a backbone's final pooling (None keeps the 4-D feature map)."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{prefix}max_pool")(x)
    if pooling == "flatten":
        return layers.Flatten(name=f"{prefix}flatten")(x)
    return x


def finish(
    inputs,
    x,
    *,
    include_top: bool,
    pooling: str | None,
    top: Callable,
    name: str,
    weights: str | None,
):
    """Add the classifier (``top(x)``) or the pooling, build the model, load weights."""
    x = top(x) if include_top else apply_pooling(x, pooling)
    model = keras.Model(inputs, x, name=name)
    if weights is not None and weights != "imagenet":
        model.load_weights(weights)
    return model


def classifier(x, classes: int, classifier_activation: str | None, name: str = "predictions"):
    """The final Dense layer; kept float32 so mixed precision never feeds a float16 softmax."""
    return layers.Dense(classes, activation=classifier_activation, name=name, dtype="float32")(x)


def conv_out(size: int | None, kernel: int, stride: int, padding: str) -> int | None:
    """Spatial size after a convolution/pooling (None stays None)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1
