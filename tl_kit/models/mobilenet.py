"""MobileNet v1 and MobileNetV2 with the width multiplier ``alpha``.

References:
    - Andrew G. Howard, Menglong Zhu, Bo Chen, Dmitry Kalenichenko, Weijun Wang, Tobias
      Weyand, Marco Andreetto, Hartwig Adam, "MobileNets: Efficient Convolutional Neural
      Networks for Mobile Vision Applications", 2017 (arXiv:1704.04861).
    - Mark Sandler, Andrew Howard, Menglong Zhu, Andrey Zhmoginov, Liang-Chieh Chen,
      "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018 (arXiv:1801.04381).

Design choices:

- Same layers and widths as Keras Applications' ``MobileNet`` / ``MobileNetV2``, so the
  trainable parameter counts at ``alpha=1.0`` are Keras' (4,231,976 and 3,504,872;
  BatchNorm moving statistics are not trainable). Strided depthwise convolutions use
  ``padding="same"`` (TensorFlow's padding, which for even sizes equals Keras' explicit
  ``ZeroPadding2D`` + "valid"), so there are no ``*_pad`` layers.
- The top is global average pooling (``avg_pool``), then for v1 ``dropout`` (1e-3 like
  Keras), and a Dense ``predictions`` layer (Keras uses an equivalent 1x1 convolution
  ``conv_preds``; same parameter count).
- v1 keeps Keras' names: ``conv1``, ``conv1_bn``, ``conv1_relu``, ``conv_dw_1``,
  ``conv_dw_1_bn``, ``conv_dw_1_relu``, ``conv_pw_1``, ``conv_pw_1_bn``, ``conv_pw_1_relu``,
  ... ``conv_pw_13_relu``.
- v2 does NOT copy Keras' mixed scheme (``Conv1``/``bn_Conv1``/``expanded_conv_*``/
  ``block_1_expand_BN``/``Conv_1``/``out_relu``). It uses one consistent scheme with
  Keras' block numbers (Keras ``expanded_conv`` is ``block0``, ``block_13_*`` is
  ``block13_*``): ``conv1_conv``, ``conv1_bn``, ``conv1_relu``, ``block{i}_expand_conv``,
  ``block{i}_expand_bn``, ``block{i}_expand_relu``, ``block{i}_dw_conv``,
  ``block{i}_dw_bn``, ``block{i}_dw_relu``, ``block{i}_project_conv``,
  ``block{i}_project_bn``, ``block{i}_add``, then ``top_conv``, ``top_bn``,
  ``top_relu`` (the final 1x1 convolution to 1280 channels).
- Blocks are the stages of equal resolution/width (v1: stem+1, 2-3, 4-5, 6-11, 12-13;
  v2: the stem and the seven bottleneck rows of Table 2, the last one with ``top_*``).
"""

from __future__ import annotations

import keras
from keras import layers

from tl_kit.errors import UserError
from tl_kit.models._common import classifier, finish, resolve_input, validate_args
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["mobilenet_v1", "mobilenet_v2", "make_divisible"]

PAPER_V1 = (
    "A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, "
    "H. Adam. MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
    "Applications. 2017. arXiv:1704.04861"
)
PAPER_V2 = (
    "M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen. MobileNetV2: Inverted "
    "Residuals and Linear Bottlenecks. CVPR 2018. arXiv:1801.04381"
)
DEFAULT_SIZE = (224, 224, 3)
# Total stride 32: 32 px gives a 1x1 final map (the smallest size Keras accepts too).
MIN_SIZE = 32


def _v1_ids(*ids: int) -> str:
    return "re:^conv_(dw|pw)_(" + "|".join(str(i) for i in ids) + ")(_|$)"


BLOCKS_V1 = (
    "re:^(conv1(_|$)|conv_(dw|pw)_1(_|$))",
    _v1_ids(2, 3),
    _v1_ids(4, 5),
    _v1_ids(6, 7, 8, 9, 10, 11),
    _v1_ids(12, 13),
)

# Table 2 of the MobileNetV2 paper: (expansion t, channels c, repeats n, first stride s).
_V2_ROWS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _v2_blocks() -> tuple[str, ...]:
    blocks = ["conv1_"]
    first = 0
    for row, (_, _, n, _) in enumerate(_V2_ROWS):
        ids = "|".join(str(i) for i in range(first, first + n))
        last = row == len(_V2_ROWS) - 1
        blocks.append(f"re:^(block({ids})_|top_)" if last else f"re:^block({ids})_")
        first += n
    return tuple(blocks)


BLOCKS_V2 = _v2_blocks()


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% down.

    The rule of the TensorFlow MobileNet reference code (and Keras Applications).
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def _check_alpha(alpha: float, name: str) -> None:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha <= 0:
        raise UserError(
            f"{name!r}: the width multiplier `alpha` must be a positive number (e.g. 0.5, "
            f"0.75, 1.0, 1.4). Received: alpha={alpha!r}"
        )


_ARGS_DOC = """
    Args:
        include_top: add global average pooling and the ``predictions`` Dense layer.
            Any input size from 32 px up works with the top (global pooling).
        weights: None (random) or the path of a weights file saved from this builder.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, channels)``; 224x224x3 by default with the top,
            ``(None, None, 3)`` without it.
        pooling: without the top: None (4-D feature map), "avg", "max" or "flatten".
        classes: number of classes of the top.
        classifier_activation: activation of ``predictions`` (None for logits).
        name: model name.
        alpha: width multiplier (the paper's alpha): scales every layer's channels.
"""


# === MobileNet v1 ===


def _v1_depthwise_block(
    x, pointwise: int, alpha: float, depth_multiplier: int, stride: int, i: int
):
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same",
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"conv_dw_{i}",
    )(x)
    x = layers.BatchNormalization(name=f"conv_dw_{i}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{i}_relu")(x)
    x = layers.Conv2D(int(pointwise * alpha), 1, use_bias=False, name=f"conv_pw_{i}")(x)
    x = layers.BatchNormalization(name=f"conv_pw_{i}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{i}_relu")(x)


# (pointwise filters, stride) for depthwise-separable blocks 1..13 (Table 1 of the paper).
_V1_LAYERS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


@register_model(
    "mobilenet_v1",
    default_size=DEFAULT_SIZE,
    min_size=MIN_SIZE,
    blocks=BLOCKS_V1,
    preprocess="tf",
    # Keras Applications' MobileNet trainable counts (checked against it at both alphas).
    param_checks=(
        ParamCheck(4_231_976, trainable_only=True),
        ParamCheck(1_331_592, kwargs={"alpha": 0.5}, trainable_only=True),
    ),
    paper=PAPER_V1,
    family="mobilenet",
    default_unfreeze=1,
    imagenet_twin="keras:mobilenet",
)
def mobilenet_v1(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "mobilenet_v1",
    alpha: float = 1.0,
    depth_multiplier: int = 1,
    dropout: float = 1e-3,
) -> keras.Model:
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
    )
    _check_alpha(alpha, name)
    if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise UserError(
            f"{name!r}: `depth_multiplier` must be a positive integer. "
            f"Received: depth_multiplier={depth_multiplier!r}"
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
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(
        img_input
    )
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for i, (pointwise, stride) in enumerate(_V1_LAYERS, start=1):
        x = _v1_depthwise_block(x, pointwise, alpha, depth_multiplier, stride, i)

    def top(t):
        t = layers.GlobalAveragePooling2D(name="avg_pool")(t)
        t = layers.Dropout(dropout, name="dropout")(t)
        return classifier(t, classes, classifier_activation)

    return finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )


mobilenet_v1.__doc__ = (
    """MobileNet v1, Howard et al. 2017 (arXiv:1704.04861): 4,231,976 trainable parameters.
"""
    + _ARGS_DOC
    + """        depth_multiplier: channel multiplier of the depthwise convolutions.
        dropout: dropout rate before ``predictions`` (Keras: 1e-3).

    Example:
    ```python
    model = tl_kit.models.mobilenet.mobilenet_v1(alpha=0.5, include_top=False, pooling="avg")
    ```
    """
)


# === MobileNetV2 ===


def _v2_bn(name: str):
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)


def _inverted_res_block(x, expansion: int, filters: int, alpha: float, stride: int, i: int):
    """Expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> linear 1x1 projection (+ residual)."""
    in_channels = x.shape[-1]
    out_channels = make_divisible(int(filters * alpha), 8)
    inputs = x
    prefix = f"block{i}_"
    if expansion != 1:
        x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=prefix + "expand_conv")(
            x
        )
        x = _v2_bn(prefix + "expand_bn")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    x = layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=prefix + "dw_conv"
    )(x)
    x = _v2_bn(prefix + "dw_bn")(x)
    x = layers.ReLU(6.0, name=prefix + "dw_relu")(x)
    x = layers.Conv2D(out_channels, 1, use_bias=False, name=prefix + "project_conv")(x)
    x = _v2_bn(prefix + "project_bn")(x)
    if stride == 1 and in_channels == out_channels:
        x = layers.Add(name=prefix + "add")([inputs, x])
    return x


@register_model(
    "mobilenet_v2",
    default_size=DEFAULT_SIZE,
    min_size=MIN_SIZE,
    blocks=BLOCKS_V2,
    preprocess="tf",
    # Keras Applications' MobileNetV2 trainable counts (checked against it at both alphas).
    param_checks=(
        ParamCheck(3_504_872, trainable_only=True),
        ParamCheck(1_968_680, kwargs={"alpha": 0.5}, trainable_only=True),
    ),
    paper=PAPER_V2,
    family="mobilenet",
    default_unfreeze=2,
    imagenet_twin="keras:mobilenetv2",
)
def mobilenet_v2(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "mobilenet_v2",
    alpha: float = 1.0,
) -> keras.Model:
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
    )
    _check_alpha(alpha, name)
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
    x = layers.Conv2D(
        make_divisible(32 * alpha, 8),
        3,
        strides=2,
        padding="same",
        use_bias=False,
        name="conv1_conv",
    )(img_input)
    x = _v2_bn("conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    i = 0
    for expansion, channels, repeats, first_stride in _V2_ROWS:
        for r in range(repeats):
            x = _inverted_res_block(x, expansion, channels, alpha, first_stride if r == 0 else 1, i)
            i += 1
    # Like the paper and Keras: the last 1x1 is not made thinner for alpha < 1.
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="top_conv")(x)
    x = _v2_bn("top_bn")(x)
    x = layers.ReLU(6.0, name="top_relu")(x)

    def top(t):
        t = layers.GlobalAveragePooling2D(name="avg_pool")(t)
        return classifier(t, classes, classifier_activation)

    return finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )


mobilenet_v2.__doc__ = (
    """MobileNetV2, Sandler et al. 2018 (arXiv:1801.04381): 3,504,872 trainable parameters.
"""
    + _ARGS_DOC
    + """
    Example:
    ```python
    model = tl_kit.models.mobilenet.mobilenet_v2(alpha=0.35, input_shape=(96, 96, 3), classes=10)
    ```
    """
)
