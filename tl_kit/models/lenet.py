"""LeNet-5 as a Keras functional builder.

Reference:
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to
    Document Recognition", Proceedings of the IEEE 86(11), 1998.

Layout (32x32x1 input, every convolution and pooling ``valid``)::

    block1_conv1  6@5x5   -> 28x28x6      156 params
    block1_pool   2x2 /2  -> 14x14x6
    block2_conv1  16@5x5  -> 10x10x16   2,416 params
    block2_pool   2x2 /2  ->  5x5x16
    flatten               ->  400
    fc1           120                  48,120 params
    fc2           84                   10,164 params
    predictions   10                      850 params   (total 61,706)

The 1998 network had a sparse C3 table, trainable subsampling coefficients and an RBF
output; this builder uses the dense textbook form that every course teaches (and that the
61,706 count describes). ``variant="classic"`` keeps tanh and average pooling,
``variant="modern"`` uses ReLU and max pooling; both have the same parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from tl_kit.errors import UserError
from tl_kit.models._common import classifier, finish, resolve_input, validate_args
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["LeNet5", "VARIANTS"]

DEFAULT_SIZE = (32, 32, 1)
MIN_SIZE = 16  # 16 -> conv 12 -> pool 6 -> conv 2 -> pool 1
VARIANTS = {
    "classic": ("tanh", layers.AveragePooling2D),
    "modern": ("relu", layers.MaxPooling2D),
}


@register_model(
    "lenet5",
    default_size=DEFAULT_SIZE,
    min_size=MIN_SIZE,
    blocks=("block1_", "block2_"),
    preprocess="tf",
    param_checks=(
        ParamCheck(61_706, classes=10),
        ParamCheck(61_706, kwargs={"variant": "modern"}, classes=10),
    ),
    paper="LeCun et al., Gradient-Based Learning Applied to Document Recognition, Proc. IEEE 1998",
    family="lenet",
    default_unfreeze=1,
)
def LeNet5(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 10,
    classifier_activation: str | None = "softmax",
    name: str = "lenet5",
    *,
    variant: str = "classic",
) -> keras.Model:
    """Instantiate LeNet-5.

    Args:
        include_top: add ``flatten``, ``fc1`` (120), ``fc2`` (84) and ``predictions``.
            With the top the spatial size must be 32x32; any channel count is accepted.
        weights: ``None`` or the path to a weights file (no published weights).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: ``(height, width, channels)``; default ``(32, 32, 1)`` with the top,
            ``(None, None, 1)`` without. Without the top any size from 16 up works.
        pooling: without the top, ``None`` (4-D map), ``"avg"``, ``"max"`` or
            ``"flatten"`` (the 400 conv features at 32x32).
        classes: number of output classes (10 in the paper).
        classifier_activation: activation of ``predictions`` (``None`` for logits).
        name: model name.
        variant: ``"classic"`` (tanh + average pooling, 1998) or ``"modern"``
            (ReLU + max pooling).

    Returns:
        A functional ``keras.Model``.

    Example:
    ```python
    model = LeNet5(include_top=False, pooling="flatten")  # (None, 400) features
    ```
    """
    if variant not in VARIANTS:
        raise UserError(
            f"`variant` must be one of {tuple(VARIANTS)} for 'lenet5'. Received: variant={variant!r}"
        )
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
    )
    if include_top and input_shape is None and input_tensor is None:
        input_shape = DEFAULT_SIZE
    img_input, inputs = resolve_input(
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        default_shape=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        include_top=False,
        name=name,
    )
    if include_top and tuple(img_input.shape[1:3]) != DEFAULT_SIZE[:2]:
        raise UserError(
            f"With include_top=True, {name!r} needs 32x32 inputs (fc1 expects 400 features); "
            f"use include_top=False for other sizes. Received: input_shape={tuple(img_input.shape[1:])!r}"
        )
    activation, pool = VARIANTS[variant]

    # === Layers ===
    x = layers.Conv2D(6, 5, activation=activation, name="block1_conv1")(img_input)
    x = pool(2, strides=2, name="block1_pool")(x)
    x = layers.Conv2D(16, 5, activation=activation, name="block2_conv1")(x)
    x = pool(2, strides=2, name="block2_pool")(x)

    def top(x):
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=activation, name="fc1")(x)
        x = layers.Dense(84, activation=activation, name="fc2")(x)
        return classifier(x, classes, classifier_activation)

    # === Functional Model ===
    return finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )
