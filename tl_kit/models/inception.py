"""GoogLeNet (Inception v1), with optional auxiliary classifiers, and a BatchNorm variant.

Reference: Christian Szegedy, Wei Liu, Yangqing Jia, Pierre Sermanet, Scott Reed,
Dragomir Anguelov, Dumitru Erhan, Vincent Vanhoucke, Andrew Rabinovich, "Going Deeper
with Convolutions", CVPR 2015 (arXiv:1409.4842), Table 1 and Figure 3.

Design choices:

- ``googlenet`` is the paper's network: convolutions with biases and ReLU, no
  BatchNorm, true 5x5 branches, max pooling 3x3/2, global average pooling, dropout 0.4,
  one fully connected classifier: 6,998,552 parameters for 1000 classes.
- Local response normalisation (after the first pooling and after ``conv2``) is off by
  default (``lrn=True`` turns it on; it has no parameters and little effect).
- ``aux_logits=True`` adds the two training-time auxiliary classifiers on the outputs of
  inception 4a and 4d (average pooling 5x5/3, 1x1 convolution with 128 filters, fully
  connected 1024, dropout 0.7, fully connected ``classes``): 13,378,280 parameters. The
  model then has three outputs ``[predictions, aux1_predictions, aux2_predictions]``;
  train it with ``loss_weights=[1.0, 0.3, 0.3]`` as the paper does, and use
  :func:`strip_aux` to get the one-output inference model (same layers, same weights).
- ``googlenet_bn`` puts BatchNormalization after every (bias-free) convolution, like
  torchvision's GoogLeNet but keeping the paper's true 5x5 branches.
- Layer names by block: ``conv1_conv``, ``conv1_pool``, ``conv2_reduce_conv``,
  ``conv2_conv``, ``conv2_pool``, ``inception3a_1x1_conv``, ``inception3a_3x3_reduce_conv``,
  ``inception3a_3x3_conv``, ``inception3a_5x5_reduce_conv``, ``inception3a_5x5_conv``,
  ``inception3a_pool``, ``inception3a_pool_proj_conv``, ``inception3a_concat``, ...,
  ``pool3_pool``, ``pool4_pool`` (grouped with the block before them), ``avg_pool``,
  ``dropout``, ``predictions``; auxiliary heads ``aux1_*`` and ``aux2_*``.
"""

from __future__ import annotations

import keras
from keras import layers

from tl_kit.errors import UserError
from tl_kit.models._common import classifier, conv_out, finish, resolve_input, validate_args
from tl_kit.models.alexnet import LocalResponseNormalization
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["googlenet", "googlenet_bn", "strip_aux", "LocalResponseNorm"]

PAPER = (
    "C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, "
    "A. Rabinovich. Going Deeper with Convolutions. CVPR 2015. arXiv:1409.4842"
)
DEFAULT_SIZE = (224, 224, 3)
# Total stride 32: 32 px gives a 1x1 map after inception 5b.
MIN_SIZE = 32
BLOCKS = (
    "conv1_",
    "conv2_",
    "inception3a_",
    "re:^(inception3b_|pool3_)",
    "inception4a_",
    "inception4b_",
    "inception4c_",
    "inception4d_",
    "re:^(inception4e_|pool4_)",
    "inception5a_",
    "inception5b_",
)
AUX_OUTPUTS = ("inception4a", "inception4d")

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) -- Table 1 of the paper.
_MODULES: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


# === Layers ===


@keras.saving.register_keras_serializable(package="tl_kit", name="GoogLeNetLocalResponseNorm")
class LocalResponseNorm(LocalResponseNormalization):
    """Cross-channel local response normalisation in Caffe's convention (GoogLeNet's LRN).

    ``y = x / (k + alpha / size * sum_{window} x^2) ** beta`` over ``size`` neighbouring
    channels: the same computation as AlexNet's
    :class:`~tl_kit.models.alexnet.LocalResponseNormalization`, whose ``alpha`` is not divided
    by the window, so this only translates the arguments. No trainable weights.

    Args:
        size: number of channels in the window (odd).
        alpha: scale (Caffe's convention: divided by ``size``).
        beta: exponent.
        k: additive constant.
    """

    def __init__(
        self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs
    ):
        if size < 1 or size % 2 == 0:
            raise UserError(
                f"LocalResponseNorm needs an odd, positive window. Received: size={size!r}"
            )
        super().__init__(depth_radius=size // 2, bias=k, alpha=alpha / size, beta=beta, **kwargs)
        self.size = size
        self.caffe_alpha = alpha

    def get_config(self) -> dict:
        config = layers.Layer.get_config(self)
        config.update({"size": self.size, "alpha": self.caffe_alpha, "beta": self.beta,
                       "k": self.bias})
        return config


def _conv(x, filters: int, kernel: int, name: str, *, stride: int = 1, bn: bool = False):
    """Convolution ``{name}_conv`` (+ ``{name}_bn``) + ReLU ``{name}_relu``, 'same' padding."""
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=not bn, name=f"{name}_conv"
    )(x)
    if bn:
        x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _inception(x, spec: tuple[int, int, int, int, int, int], name: str, bn: bool):
    """The four-branch module of Figure 2(b)."""
    n1, r3, n3, r5, n5, pp = spec
    b1 = _conv(x, n1, 1, f"{name}_1x1", bn=bn)
    b2 = _conv(x, r3, 1, f"{name}_3x3_reduce", bn=bn)
    b2 = _conv(b2, n3, 3, f"{name}_3x3", bn=bn)
    b3 = _conv(x, r5, 1, f"{name}_5x5_reduce", bn=bn)
    b3 = _conv(b3, n5, 5, f"{name}_5x5", bn=bn)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b4 = _conv(b4, pp, 1, f"{name}_pool_proj", bn=bn)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b2, b3, b4])


def _aux_head(x, classes: int, classifier_activation: str | None, name: str, bn: bool):
    """Auxiliary classifier of Section 5 (on inception 4a and 4d)."""
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, 128, 1, name, bn=bn)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return classifier(x, classes, classifier_activation, name=f"{name}_predictions")


def _stem(x, *, bn: bool, lrn: bool):
    """conv1 (7x7/2) and its pooling, conv2 (1x1 reduce, 3x3) and its pooling."""
    x = _conv(x, 64, 7, "conv1", stride=2, bn=bn)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="conv1_pool")(x)
    if lrn:
        x = LocalResponseNorm(name="conv1_lrn")(x)
    x = _conv(x, 64, 1, "conv2_reduce", bn=bn)
    x = _conv(x, 192, 3, "conv2", bn=bn)
    if lrn:
        x = LocalResponseNorm(name="conv2_lrn")(x)
    return layers.MaxPooling2D(3, strides=2, padding="same", name="conv2_pool")(x)


def _check_aux_input(img_input, name: str) -> None:
    """The auxiliary heads pool 5x5 on the inception 4a map (input / 16): >= 65 px, fixed."""
    side = list(img_input.shape[1:3])
    for _ in range(4):  # conv1 /2, pool1 /2, pool2 /2, pool3 /2 -> inception 4a
        side = [conv_out(s, 3, 2, "same") for s in side]
    if any(s is None or s < 5 for s in side):
        raise UserError(
            f"{name!r} with aux_logits=True needs a fixed input of at least 65x65 pixels "
            "(the auxiliary heads pool 5x5 on the inception 4a map, input/16). "
            f"Received: input_shape={tuple(img_input.shape[1:])!r}"
        )


# === Functional Model ===


def _googlenet(
    *,
    include_top: bool,
    weights: str | None,
    input_tensor,
    input_shape,
    pooling: str | None,
    classes: int,
    classifier_activation: str | None,
    name: str,
    aux_logits: bool,
    lrn: bool,
    dropout: float,
    bn: bool,
) -> keras.Model:
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
    )
    if aux_logits and not include_top:
        raise UserError(
            f"{name!r}: the auxiliary classifiers are part of the top; use include_top=True with "
            f"aux_logits=True. Received: aux_logits={aux_logits!r}, include_top={include_top!r}"
        )
    img_input, inputs = resolve_input(
        input_tensor=input_tensor,
        input_shape=input_shape,
        default_shape=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        include_top=include_top,
        name=name,
        top_any_size=True,
        pooling=pooling,
    )
    if aux_logits:
        _check_aux_input(img_input, name)
    x = _stem(img_input, bn=bn, lrn=lrn)
    aux_inputs = []
    for key, spec in _MODULES.items():
        if key == "4a":
            x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3_pool")(x)
        elif key == "5a":
            x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool4_pool")(x)
        x = _inception(x, spec, f"inception{key}", bn)
        if f"inception{key}" in AUX_OUTPUTS:
            aux_inputs.append(x)

    def top(t):
        t = layers.GlobalAveragePooling2D(name="avg_pool")(t)
        t = layers.Dropout(dropout, name="dropout")(t)
        main = classifier(t, classes, classifier_activation)
        if not aux_logits:
            return main
        aux = [
            _aux_head(a, classes, classifier_activation, f"aux{i}", bn)
            for i, a in enumerate(aux_inputs, start=1)
        ]
        return [main, *aux]

    return finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )


_ARGS_DOC = """
    Args:
        include_top: add global average pooling, dropout and the ``predictions`` layer.
            Any input size from 32 px up works with the top (global pooling).
        weights: None (random) or the path of a weights file saved from this builder.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, channels)``; 224x224x3 by default with the top,
            ``(None, None, 3)`` without it.
        pooling: without the top: None (4-D feature map), "avg", "max" or "flatten".
        classes: number of classes of the top.
        classifier_activation: activation of the classifiers (None for logits).
        name: model name.
        aux_logits: add the two auxiliary classifiers (needs the top and >= 65 px);
            the model then has 3 outputs. :func:`strip_aux` removes them.
        lrn: add local response normalisation after ``conv1_pool`` and ``conv2``.
        dropout: dropout rate before ``predictions`` (the paper: 0.4).
"""


@register_model(
    "googlenet",
    default_size=DEFAULT_SIZE,
    min_size=MIN_SIZE,
    blocks=BLOCKS,
    preprocess="caffe",
    param_checks=(
        ParamCheck(6_998_552),
        ParamCheck(13_378_280, kwargs={"aux_logits": True}),
    ),
    paper=PAPER,
    family="inception",
    default_unfreeze=2,
)
def googlenet(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "googlenet",
    aux_logits: bool = False,
    lrn: bool = False,
    dropout: float = 0.4,
) -> keras.Model:
    return _googlenet(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        aux_logits=aux_logits,
        lrn=lrn,
        dropout=dropout,
        bn=False,
    )


googlenet.__doc__ = (
    """GoogLeNet (Inception v1), Szegedy et al. 2014 (arXiv:1409.4842): 6,998,552 parameters.
"""
    + _ARGS_DOC
    + """
    Example:
    ```python
    train_model = tl_kit.models.inception.googlenet(aux_logits=True, classes=10)
    inference_model = tl_kit.models.inception.strip_aux(train_model)
    ```
    """
)


@register_model(
    "googlenet_bn",
    default_size=DEFAULT_SIZE,
    min_size=MIN_SIZE,
    blocks=BLOCKS,
    preprocess="torch",
    # Not a paper figure: googlenet's 6,998,552 with each conv bias replaced by a BN
    # beta plus one BN gamma per conv channel (7,280 channels); a regression guard.
    param_checks=(ParamCheck(7_005_832, trainable_only=True),),
    paper=PAPER + " (BatchNorm: S. Ioffe, C. Szegedy, arXiv:1502.03167)",
    family="inception",
    default_unfreeze=2,
)
def googlenet_bn(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "googlenet_bn",
    aux_logits: bool = False,
    lrn: bool = False,
    dropout: float = 0.4,
) -> keras.Model:
    return _googlenet(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        aux_logits=aux_logits,
        lrn=lrn,
        dropout=dropout,
        bn=True,
    )


googlenet_bn.__doc__ = (
    """GoogLeNet with BatchNormalization after every bias-free convolution (true 5x5 branches).
"""
    + _ARGS_DOC
)


def strip_aux(model: keras.Model) -> keras.Model:
    """The inference model of a GoogLeNet built with ``aux_logits=True``.

    Returns a functional model from the same input to the ``predictions`` layer only; it
    shares layers (and so weights) with ``model``. A model without auxiliary heads is
    returned unchanged.

    Example:
    ```python
    train_model = googlenet(aux_logits=True, classes=5)
    # ... train_model.fit(x, [y, y, y]) ...
    model = strip_aux(train_model)   # one output, same weights
    ```
    """
    if len(model.outputs) == 1:
        return model
    try:
        main = model.get_layer("predictions")
    except ValueError:
        raise UserError(
            "strip_aux() expects a GoogLeNet built with aux_logits=True (a layer named "
            f"'predictions'). Received: model={model.name!r}"
        ) from None
    return keras.Model(model.input, main.output, name=model.name)
