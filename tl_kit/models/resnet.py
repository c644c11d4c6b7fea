"""ResNet-18/34/50/101/152 and their plain (no shortcut) counterparts.

Reference: Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun, "Deep Residual Learning
for Image Recognition", CVPR 2016 (arXiv:1512.03385).

Design choices:

- Convolutions have no bias; every one is followed by BatchNormalization (the paper,
  and torchvision). The trainable parameter counts therefore equal torchvision's
  (``resnet50``: 25,557,032); Keras Applications' ResNet50 keeps conv biases and has
  25,636,712 parameters (its weights do not load into these builders).
- Bottleneck blocks put the stride on the 3x3 convolution ("ResNet v1.5", as in
  torchvision and NVIDIA's reference), not on the first 1x1 as the paper and Keras'
  ResNet50 do. Parameter counts are identical; v1.5 is slightly more accurate.
- Layer names follow Keras Applications: ``conv1_conv``, ``pool1_pool``,
  ``conv2_block1_1_conv`` ... ``conv2_block1_0_conv`` (projection shortcut),
  ``conv2_block1_add``, ``conv2_block1_out``, ``avg_pool``, ``predictions``.
- ``plain=True`` builds the paper's "plain" baseline (Section 4.1): the same stacks of
  layers with no shortcut at all, so no ``*_add`` and no ``*_0_conv`` / ``*_0_bn``
  layers. ``plain18`` and ``plain34`` (the two plain networks the paper trains) are
  registered; the deeper plain variants are available with ``resnet50(plain=True)``.
- Projection shortcuts (option B of the paper) only where the shape changes.
"""

from __future__ import annotations

import keras
from keras import layers

from tl_kit.errors import UserError
from tl_kit.models._common import classifier, finish, resolve_input, validate_args
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34"]

PAPER = (
    "K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. "
    "CVPR 2016. arXiv:1512.03385"
)
BLOCKS = ("re:^(conv1_|pool1_)", "conv2_", "conv3_", "conv4_", "conv5_")
DEFAULT_SIZE = (224, 224, 3)
# Below 32 px conv5 would see a 1x1 map already at conv4; 32 px gives a 1x1 final map.
MIN_SIZE = 32
BN_EPS = 1.001e-5

# (block type, blocks per stage conv2..conv5)
_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_WIDTHS = (64, 128, 256, 512)


# === Layers ===


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _basic_block(x, filters: int, stride: int, plain: bool, name: str):
    """Two 3x3 convolutions (ResNet-18/34)."""
    shortcut = x
    needs_projection = stride != 1 or x.shape[-1] != filters
    y = _conv_bn(x, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    if not plain:
        if needs_projection:
            shortcut = _conv_bn(x, filters, 1, stride, f"{name}_0", relu=False)
        y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _bottleneck_block(x, filters: int, stride: int, plain: bool, name: str):
    """1x1 reduce, 3x3 (carries the stride: v1.5), 1x1 expand x4 (ResNet-50/101/152)."""
    shortcut = x
    out_filters = 4 * filters
    needs_projection = stride != 1 or x.shape[-1] != out_filters
    y = _conv_bn(x, filters, 1, 1, f"{name}_1")
    y = _conv_bn(y, filters, 3, stride, f"{name}_2")
    y = _conv_bn(y, out_filters, 1, 1, f"{name}_3", relu=False)
    if not plain:
        if needs_projection:
            shortcut = _conv_bn(x, out_filters, 1, stride, f"{name}_0", relu=False)
        y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


# === Functional Model ===


def _resnet(
    depth: int,
    *,
    include_top: bool,
    weights: str | None,
    input_tensor,
    input_shape,
    pooling: str | None,
    classes: int,
    classifier_activation: str | None,
    name: str,
    plain: bool,
) -> keras.Model:
    if depth not in _DEPTHS:
        raise UserError(
            f"ResNet depth must be one of {sorted(_DEPTHS)}. Received: depth={depth!r}"
        )
    validate_args(
        weights=weights, include_top=include_top, pooling=pooling, classes=classes, name=name
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
    kind, counts = _DEPTHS[depth]
    block = _basic_block if kind == "basic" else _bottleneck_block

    # Stem: 7x7/2 convolution and 3x3/2 max pooling, padded symmetrically like the paper.
    x = layers.ZeroPadding2D(3, name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    for stage, (filters, n) in enumerate(zip(_WIDTHS, counts, strict=True), start=2):
        for i in range(1, n + 1):
            stride = 2 if (i == 1 and stage > 2) else 1
            x = block(x, filters, stride, plain, f"conv{stage}_block{i}")

    def top(t):
        t = layers.GlobalAveragePooling2D(name="avg_pool")(t)
        return classifier(t, classes, classifier_activation)

    return finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )


def _doc(depth: int, plain: bool) -> str:
    what = f"Plain-{depth} (ResNet-{depth} without shortcuts)" if plain else f"ResNet-{depth}"
    return f"""{what}, He et al. 2015 (arXiv:1512.03385).

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
        plain: drop every shortcut (the paper's plain baseline).

    Example:
    ```python
    model = tl_kit.models.resnet.resnet18(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    ```
    """


def _make(depth: int, default_name: str, default_plain: bool):
    def builder(
        include_top: bool = True,
        weights: str | None = None,
        input_tensor=None,
        input_shape: tuple | None = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: str | None = "softmax",
        name: str = default_name,
        plain: bool = default_plain,
    ) -> keras.Model:
        return _resnet(
            depth,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
            plain=plain,
        )

    builder.__name__ = builder.__qualname__ = default_name
    builder.__doc__ = _doc(depth, default_plain)
    return builder


def _register(depth: int, expected: int, *, plain: bool, default_unfreeze: int = 1):
    name = f"plain{depth}" if plain else f"resnet{depth}"
    # Keras Applications' ResNet50/101/152 are the same networks with published weights
    # (their convolutions keep biases, so their files do not load here).
    twin = f"keras:resnet{depth}" if not plain and depth >= 50 else ""
    fn = _make(depth, name, plain)
    fn.__module__ = __name__
    return register_model(
        name,
        default_size=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        blocks=BLOCKS,
        preprocess="torch",
        param_checks=(ParamCheck(expected, trainable_only=True),),
        paper=PAPER,
        family="resnet",
        default_unfreeze=default_unfreeze,
        imagenet_twin=twin,
    )(fn)


# Trainable counts = torchvision's (bias-free convs, BN gamma/beta, fc).
resnet18 = _register(18, 11_689_512, plain=False)
resnet34 = _register(34, 21_797_672, plain=False)
resnet50 = _register(50, 25_557_032, plain=False)
resnet101 = _register(101, 44_549_160, plain=False)
resnet152 = _register(152, 60_192_808, plain=False)
# Plain nets = the ResNet counts minus the three projection shortcuts
# (conv+BN: 64->128: 8,448; 128->256: 33,280; 256->512: 132,096; total 173,824).
plain18 = _register(18, 11_515_688, plain=True)
plain34 = _register(34, 21_623_848, plain=True)
