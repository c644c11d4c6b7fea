"""VGG16 and VGG19 (and batch-normalised variants) as Keras functional builders.

Reference:
    K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015 (arXiv:1409.1556). Batch normalisation: S. Ioffe, C. Szegedy,
    "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
    Covariate Shift", ICML 2015.

Layer names and order are identical to ``keras.applications.VGG16`` / ``VGG19``
(``block1_conv1 ... block5_pool``, ``flatten``, ``fc1``, ``fc2``, ``predictions``), so a
weights file written by Keras loads into these builders and gives the same outputs;
``weights="imagenet"`` fetches the very files Keras Applications publishes (same names,
same hashes, same cache ``~/.keras/models``).
"""

from __future__ import annotations

import os

import keras
from keras import layers

from tl_kit.errors import TLKitError, UserError
from tl_kit.models._common import (
    classifier,
    finish,
    keras_cache_dir,
    resolve_input,
    validate_args,
)
from tl_kit.models.registry import ParamCheck, register_model

__all__ = ["VGG16", "VGG19", "VGG16BN", "VGG19BN", "IMAGENET_WEIGHTS"]

DEFAULT_SIZE = (224, 224, 3)
MIN_SIZE = 32  # five 2x2 poolings
BLOCKS = ("block1_", "block2_", "block3_", "block4_", "block5_")
PAPER = (
    "Simonyan, Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
    "Recognition, ICLR 2015 (arXiv:1409.1556)"
)
PAPER_BN = PAPER + "; Ioffe, Szegedy, Batch Normalization, ICML 2015"

# Convolutions per block (configurations D and E of the paper's Table 1).
CONFIGS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
# (file name, url, md5) exactly as keras.applications.vgg16 / vgg19 use them.
IMAGENET_WEIGHTS = {
    ("vgg16", True): (
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "64373286793e3c8b2b4e3219cbf3544b",
    ),
    ("vgg16", False): (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    ("vgg19", True): (
        "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        "cbe5617147190e668d6c5d5026f83318",
    ),
    ("vgg19", False): (
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
    ),
}


def imagenet_weights_path(config: str, include_top: bool) -> str:
    """Path of the Keras Applications ImageNet file, downloaded into the Keras cache if absent.

    Fails at once with the file name and the place to put it when the download is impossible.
    """
    fname, url, md5 = IMAGENET_WEIGHTS[(config, include_top)]
    try:
        return keras.utils.get_file(fname, url, cache_subdir="models", file_hash=md5)
    except Exception as err:  # no network, proxy, bad hash, read-only cache ...
        target = os.path.join(keras_cache_dir(), "models", fname)
        raise TLKitError(
            f"Could not get the ImageNet weights for {config!r} ({err}). Download {url} on a "
            f"machine with network access and place it at {target} (md5 {md5}), or pass "
            f"weights='/path/to/{fname}'. Received: weights='imagenet'"
        ) from err


def _vgg(
    config: str,
    *,
    batch_norm: bool,
    include_top: bool,
    weights: str | None,
    input_tensor,
    input_shape: tuple | None,
    pooling: str | None,
    classes: int,
    classifier_activation: str | None,
    name: str,
    dropout: float,
) -> keras.Model:
    imagenet_ok = not batch_norm
    validate_args(
        weights=weights,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        name=name,
        imagenet_ok=imagenet_ok,
    )
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise UserError(f"`dropout` must be in [0, 1) for {name!r}. Received: dropout={dropout!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise UserError(
            f"With weights='imagenet' and include_top=True, {name!r} needs classes=1000 (use "
            f"include_top=False and add your own head). Received: classes={classes!r}"
        )
    img_input, inputs = resolve_input(
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        default_shape=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        include_top=include_top,
        name=name,
    )
    if weights == "imagenet" and img_input.shape[-1] != 3:
        raise UserError(
            f"The ImageNet weights of {name!r} need 3 input channels. "
            f"Received: input_shape={tuple(img_input.shape[1:])!r}"
        )

    # === Layers ===
    x = img_input
    for block, (convs, filters) in enumerate(zip(CONFIGS[config], FILTERS, strict=True), 1):
        for i in range(1, convs + 1):
            conv = f"block{block}_conv{i}"
            if batch_norm:
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=conv)(x)
                x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{conv}_bn")(x)
                x = layers.Activation("relu", name=f"{conv}_relu")(x)
            else:
                x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=conv)(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)

    def top(x):
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(4096, activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
        return classifier(x, classes, classifier_activation)

    # === Functional Model ===
    model = finish(
        inputs, x, include_top=include_top, pooling=pooling, top=top, name=name, weights=weights
    )
    if weights == "imagenet":
        model.load_weights(imagenet_weights_path(config, include_top))
    return model


_DOC_ARGS = """
    Args:
        include_top: add ``flatten``, ``fc1``, ``fc2`` (4096 each) and ``predictions``; the
            input must then be 224x224x3.
        weights: ``None``, ``"imagenet"`` (Keras Applications' file, plain VGG only) or the
            path to a weights file (a Keras VGG file loads as is).
        input_tensor: optional Keras tensor to use as the input.
        input_shape: ``(height, width, channels)``; without the top any size >= 32.
        pooling: without the top, ``None`` (4-D map), ``"avg"``, ``"max"`` or ``"flatten"``.
        classes: number of output classes.
        classifier_activation: activation of ``predictions`` (``None`` for logits).
        name: model name.
        dropout: dropout after ``fc1`` and ``fc2`` (the paper used 0.5; the default 0 keeps
            the layer list identical to Keras Applications; weights load either way).

    Returns:
        A functional ``keras.Model``.
"""


def _register(config: str, batch_norm: bool, checks: tuple[ParamCheck, ...]):
    return register_model(
        f"{config}_bn" if batch_norm else config,
        default_size=DEFAULT_SIZE,
        min_size=MIN_SIZE,
        blocks=BLOCKS,
        preprocess="caffe",
        param_checks=checks,
        paper=PAPER_BN if batch_norm else PAPER,
        family="vgg",
        default_unfreeze=1,
        imagenet=not batch_norm,  # Keras Applications' files (IMAGENET_WEIGHTS)
    )


@_register(
    "vgg16",
    False,
    (ParamCheck(138_357_544), ParamCheck(14_714_688, kwargs={"include_top": False})),
)
def VGG16(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "vgg16",
    *,
    dropout: float = 0.0,
) -> keras.Model:
    """Instantiate VGG16 (configuration D: 13 convolutions, 138,357,544 parameters).

    Example:
    ```python
    backbone = VGG16(include_top=False, input_shape=(64, 64, 3), pooling="avg")
    ```
    """
    return _vgg(
        "vgg16",
        batch_norm=False,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        dropout=dropout,
    )


@_register(
    "vgg19",
    False,
    (ParamCheck(143_667_240), ParamCheck(20_024_384, kwargs={"include_top": False})),
)
def VGG19(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "vgg19",
    *,
    dropout: float = 0.0,
) -> keras.Model:
    """Instantiate VGG19 (configuration E: 16 convolutions, 143,667,240 parameters).

    Example:
    ```python
    backbone = VGG19(include_top=False, pooling="max")
    ```
    """
    return _vgg(
        "vgg19",
        batch_norm=False,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        dropout=dropout,
    )


# With batch normalisation the convolutions lose their bias (4,224 in VGG16, 5,504 in
# VGG19) and each channel gains gamma, beta (trainable) and a moving mean and variance:
# VGG16-BN = 138,357,544 - 4,224 + 4 * 4,224 = 138,370,216 weights, of which
# 138,357,544 + 4,224 = 138,361,768 trainable (torchvision, which keeps the conv bias,
# reports 138,365,992 = 138,357,544 + 2 * 4,224).


@_register(
    "vgg16",
    True,
    (
        ParamCheck(138_370_216),
        ParamCheck(138_361_768, trainable_only=True),
    ),
)
def VGG16BN(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "vgg16_bn",
    *,
    dropout: float = 0.0,
) -> keras.Model:
    """Instantiate VGG16 with batch normalisation (conv without bias -> BN -> ReLU).

    Layers ``block{b}_conv{i}``, ``block{b}_conv{i}_bn``, ``block{b}_conv{i}_relu``;
    BatchNormalization(epsilon=1e-5, momentum=0.9) as in torchvision. No published weights.

    Example:
    ```python
    backbone = VGG16BN(include_top=False, input_shape=(32, 32, 3), pooling="avg")
    ```
    """
    return _vgg(
        "vgg16",
        batch_norm=True,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        dropout=dropout,
    )


@_register(
    "vgg19",
    True,
    (
        ParamCheck(143_683_752),
        ParamCheck(143_672_744, trainable_only=True),
    ),
)
def VGG19BN(
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str = "vgg19_bn",
    *,
    dropout: float = 0.0,
) -> keras.Model:
    """Instantiate VGG19 with batch normalisation (conv without bias -> BN -> ReLU).

    143,667,240 - 5,504 + 4 * 5,504 = 143,683,752 weights, 143,672,744 trainable.

    Example:
    ```python
    backbone = VGG19BN(include_top=False, input_shape=(32, 32, 3))
    ```
    """
    return _vgg(
        "vgg19",
        batch_norm=True,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        dropout=dropout,
    )


for _fn in (VGG16, VGG19, VGG16BN, VGG19BN):
    _fn.__doc__ = (_fn.__doc__ or "").rstrip() + "\n" + _DOC_ARGS
