"""AlexNet and ZFNet as Keras functional builders.

References:
    A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NeurIPS 2012.
    M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks",
    ECCV 2014 (arXiv:1311.2901, 2013).

Both networks share the five-block layout ``block1_conv1 [block1_norm] block1_pool``,
``block2_conv1 [block2_norm] block2_pool``, ``block3_conv1``, ``block4_conv1``,
``block5_conv1 block5_pool``, then ``flatten``, ``fc1`` (+ ``fc1_dropout``), ``fc2``
(+ ``fc2_dropout``) and ``predictions``. Local response normalisation (the paper's
``k=2, n=5, alpha=1e-4, beta=0.75``) is the serialisable :class:`LocalResponseNormalization`
layer, off by default (``lrn=True`` turns it on), as in most modern re-implementations.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from tl_kit.errors import UserError
from tl_kit.models._common import classifier, finish, resolve_input, validate_args
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["AlexNet", "ZFNet", "LocalResponseNormalization"]

BLOCKS = ("block1_", "block2_", "block3_", "block4_", "block5_")


@keras.saving.register_keras_serializable(package="tl_kit")
class LocalResponseNormalization(layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3).

    ``b[c] = a[c] / (k + alpha * sum(a[c'] ** 2 for c' in [c - n//2, c + n//2])) ** beta``,
    the paper's formula (alpha is not divided by ``n``; ``tf.nn.local_response_normalization``
    with ``depth_radius=n//2`` computes the same). Channels-last, any backend.

    Args:
        depth_radius: half width of the channel window (``n // 2``; the paper's n = 5).
        bias: ``k`` (2 in the paper).
        alpha: scale of the sum of squares (1e-4).
        beta: exponent (0.75).

    Example:
    ```python
    x = LocalResponseNormalization(name="block1_norm")(x)
    ```
    """

    def __init__(
        self,
        depth_radius: int = 2,
        bias: float = 2.0,
        alpha: float = 1e-4,
        beta: float = 0.75,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if int(depth_radius) < 0:
            raise UserError(f"`depth_radius` must be >= 0. Received: depth_radius={depth_radius!r}")
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        r = self.depth_radius
        squared = ops.square(inputs)
        channels = inputs.shape[-1]
        padded = ops.pad(squared, [[0, 0]] * (len(inputs.shape) - 1) + [[r, r]])
        window = padded[..., 0:channels]
        for offset in range(1, 2 * r + 1):
            window = window + padded[..., offset : offset + channels]
        return inputs / ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )
        return config


def _inputs(name: str, dropout: float, *, weights, include_top: bool, pooling, classes: int,
            input_tensor, input_shape, default_shape: tuple[int, int, int], min_size: int):
    """Check the arguments shared by AlexNet and ZFNet; ``(img_input, inputs)``."""
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise UserError(f"`dropout` must be in [0, 1) for {name!r}. Received: dropout={dropout!r}")
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
    )
    return resolve_input(
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        default_shape=default_shape,
        min_size=min_size,
        include_top=include_top,
        name=name,
    )


def _fc_top(classes: int, classifier_activation: str | None, dropout: float):
    """The paper's classifier: 4096 -> 4096 -> classes, dropout after the first two."""

    def top(x):
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        return classifier(x, classes, classifier_activation)

    return top


@register_model(
    "alexnet",
    default_size=(227, 227, 3),
    min_size=67,  # 67 -> 15 -> 7 -> 3 -> 1
    blocks=BLOCKS,
    preprocess="torch",
    param_checks=(
        ParamCheck(62_378_344),
        ParamCheck(60_965_224, kwargs={"groups": 2}),
    ),
    paper="Krizhevsky, Sutskever, Hinton, ImageNet Classification with Deep Convolutional "
    "Neural Networks, NeurIPS 2012",
    family="alexnet",
    default_unfreeze=2,
)
def AlexNet(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "alexnet",
    *,
    groups: int = 1,
    lrn: bool = False,
    dropout: float = 0.5,
) -> keras.Model:
    """Instantiate AlexNet (227x227x3 input).

    Layout and parameters (single tower, ``groups=1``)::

        block1_conv1  96@11x11 /4 valid   -> 55x55x96        34,944
        block1_pool   3x3 /2              -> 27x27x96
        block2_conv1  256@5x5 same        -> 27x27x256      614,656
        block2_pool   3x3 /2              -> 13x13x256
        block3_conv1  384@3x3 same        -> 13x13x384      885,120
        block4_conv1  384@3x3 same        -> 13x13x384    1,327,488
        block5_conv1  256@3x3 same        -> 13x13x256      884,992
        block5_pool   3x3 /2              ->  6x6x256 (9,216)
        fc1 4096  37,752,832   fc2 4096  16,781,312   predictions 1000  4,097,000
        total 62,378,344

    With ``groups=2`` (the paper's two-GPU split: conv2, conv4 and conv5 only see the
    channels on their own GPU) those layers have half the weights: 60,965,224.

    Args:
        include_top: add ``flatten``, ``fc1``, ``fc2`` (4096 each) and ``predictions``;
            the input must then be 227x227x3.
        weights: ``None`` or the path to a weights file (no published weights).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: ``(height, width, channels)``; without the top any size >= 67.
        pooling: without the top, ``None``, ``"avg"``, ``"max"`` or ``"flatten"``.
        classes: number of output classes.
        classifier_activation: activation of ``predictions`` (``None`` for logits).
        name: model name.
        groups: 1 (single tower) or 2 (the paper's two-GPU grouped conv2/conv4/conv5).
        lrn: add local response normalisation after the first two convolutions.
        dropout: dropout rate after ``fc1`` and ``fc2`` (0 removes the layers).

    Returns:
        A functional ``keras.Model``.

    Example:
    ```python
    features = AlexNet(include_top=False, input_shape=(128, 128, 3), pooling="avg")
    ```
    """
    if groups not in (1, 2):
        raise UserError(f"`groups` must be 1 or 2 for {name!r}. Received: groups={groups!r}")
    img_input, inputs = _inputs(
        name, dropout, weights=weights, include_top=include_top, pooling=pooling,
        classes=classes, input_tensor=input_tensor, input_shape=input_shape,
        default_shape=(227, 227, 3), min_size=67,
    )
    x = _blocks3to5(_alexnet_blocks1to2(img_input, groups=groups, lrn=lrn), groups=groups)
    return finish(
        inputs,
        x,
        include_top=include_top,
        pooling=pooling,
        top=_fc_top(classes, classifier_activation, dropout),
        name=name,
        weights=weights,
    )


def _alexnet_blocks1to2(x, *, groups: int, lrn: bool):
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="block1_conv1")(x)
    if lrn:
        x = LocalResponseNormalization(name="block1_norm")(x)
    x = layers.MaxPooling2D(3, strides=2, name="block1_pool")(x)
    x = layers.Conv2D(
        256, 5, padding="same", groups=groups, activation="relu", name="block2_conv1"
    )(x)
    if lrn:
        x = LocalResponseNormalization(name="block2_norm")(x)
    return layers.MaxPooling2D(3, strides=2, name="block2_pool")(x)


def _zfnet_blocks1to2(x, *, lrn: bool):
    x = layers.ZeroPadding2D(1, name="block1_pad")(x)
    x = layers.Conv2D(96, 7, strides=2, activation="relu", name="block1_conv1")(x)
    if lrn:
        x = LocalResponseNormalization(name="block1_norm")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block1_pool")(x)
    x = layers.Conv2D(256, 5, strides=2, activation="relu", name="block2_conv1")(x)
    if lrn:
        x = LocalResponseNormalization(name="block2_norm")(x)
    return layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)


def _blocks3to5(x, groups: int = 1):
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="block3_conv1")(x)
    x = layers.Conv2D(
        384, 3, padding="same", groups=groups, activation="relu", name="block4_conv1"
    )(x)
    x = layers.Conv2D(
        256, 3, padding="same", groups=groups, activation="relu", name="block5_conv1"
    )(x)
    return layers.MaxPooling2D(3, strides=2, name="block5_pool")(x)


@register_model(
    "zfnet",
    default_size=(224, 224, 3),
    min_size=53,  # 53 -> pad 55 -> 25 -> 13 -> 5 -> 3 -> 1
    blocks=BLOCKS,
    preprocess="torch",
    param_checks=(ParamCheck(62_357_608),),
    paper="Zeiler, Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 "
    "(arXiv:1311.2901)",
    family="alexnet",
    default_unfreeze=2,
)
def ZFNet(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "zfnet",
    *,
    lrn: bool = False,
    dropout: float = 0.5,
) -> keras.Model:
    """Instantiate ZFNet (Zeiler & Fergus 2013, their Figure 3 model; 224x224x3 input).

    AlexNet with a 7x7 stride-2 first layer (instead of 11x11 stride 4), a stride-2 second
    layer, and dense (single-GPU) connections in every layer. Sizes follow the paper's
    figure: 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6 (one pixel of zero padding before
    the first layer, and the first two poolings keep the ceil size, as in Caffe)::

        block1_pad    1 px                 -> 226x226x3
        block1_conv1  96@7x7 /2 valid      -> 110x110x96   96*(7*7*3)+96      =     14,208
        block1_pool   3x3 /2 same          ->  55x55x96
        block2_conv1  256@5x5 /2 valid     ->  26x26x256   256*(5*5*96)+256   =    614,656
        block2_pool   3x3 /2 same          ->  13x13x256
        block3_conv1  384@3x3 same         ->  13x13x384   384*(3*3*256)+384  =    885,120
        block4_conv1  384@3x3 same         ->  13x13x384   384*(3*3*384)+384  =  1,327,488
        block5_conv1  256@3x3 same         ->  13x13x256   256*(3*3*384)+256  =    884,992
        block5_pool   3x3 /2 valid         ->   6x6x256  (9,216 features)
        fc1           4096                                 9216*4096+4096     = 37,752,832
        fc2           4096                                 4096*4096+4096     = 16,781,312
        predictions   1000                                 4096*1000+1000     =  4,097,000
                                                           total              = 62,357,608

    Check: the convolutions sum to 3,726,464 and the classifier to 58,631,144; AlexNet's
    62,378,344 minus the first-layer difference (34,944 - 14,208 = 20,736) gives the same
    62,357,608.

    Args:
        include_top: add ``flatten``, ``fc1``, ``fc2`` and ``predictions``; the input must
            then be 224x224x3.
        weights: ``None`` or the path to a weights file (no published weights).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: ``(height, width, channels)``; without the top any size >= 53.
        pooling: without the top, ``None``, ``"avg"``, ``"max"`` or ``"flatten"``.
        classes: number of output classes.
        classifier_activation: activation of ``predictions`` (``None`` for logits).
        name: model name.
        lrn: add local response normalisation after the first two layers (the paper's
            "contrast normalisation across feature maps").
        dropout: dropout rate after ``fc1`` and ``fc2`` (0 removes the layers).

    Returns:
        A functional ``keras.Model``.

    Example:
    ```python
    model = ZFNet(classes=10, classifier_activation=None)
    ```
    """
    img_input, inputs = _inputs(
        name, dropout, weights=weights, include_top=include_top, pooling=pooling,
        classes=classes, input_tensor=input_tensor, input_shape=input_shape,
        default_shape=(224, 224, 3), min_size=53,
    )
    x = _blocks3to5(_zfnet_blocks1to2(img_input, lrn=lrn))
    return finish(
        inputs,
        x,
        include_top=include_top,
        pooling=pooling,
        top=_fc_top(classes, classifier_activation, dropout),
        name=name,
        weights=weights,
    )
