"""Convert an official EfficientNet-Lite TensorFlow checkpoint (tensorflow/tpu) to Keras weights.

Used for Lite3 and Lite4, whose ImageNet weights are not bundled in a wheel: the official
``efficientnet-liteN.tar.gz`` holds a TF1 checkpoint whose variables are named by the
reference code's scopes (``efficientnet_model.py``)::

    efficientnet-lite3/stem/conv2d/kernel, .../stem/tpu_batch_normalization/gamma
    efficientnet-lite3/blocks_0/depthwise_conv2d/depthwise_kernel     (expand ratio 1:
        depthwise, tpu_batch_normalization, conv2d = project, tpu_batch_normalization_1)
    efficientnet-lite3/blocks_1/conv2d/kernel                         (expand, then
        tpu_batch_normalization, depthwise_conv2d, tpu_batch_normalization_1,
        conv2d_1 = project, tpu_batch_normalization_2)
    efficientnet-lite3/head/conv2d/kernel, head/tpu_batch_normalization, head/dense/{kernel,bias}

The exponential moving averages (``<name>/ExponentialMovingAverage``, what the official
evaluation uses) are taken where present. TensorFlow kernels are already in Keras's layout.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

import keras
import numpy as np

from tl_kit.errors import TLKitError

__all__ = ["find_checkpoint_prefix", "tf_names_to_keras", "convert_tf_checkpoint"]

_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def find_checkpoint_prefix(folder: str) -> str:
    """The ``model.ckpt`` prefix inside an extracted checkpoint folder (searched recursively)."""
    roots = [folder, os.path.dirname(folder)] if os.path.isfile(folder) else [folder]
    for root in roots:
        found = sorted(glob.glob(os.path.join(root, "**", "*.index"), recursive=True))
        if found:
            return found[0][: -len(".index")]
    raise TLKitError(f"No TensorFlow checkpoint (*.index) found in {folder!r}.")


def tf_names_to_keras(variant: str, include_top: bool) -> dict[str, list[str]]:
    """Keras layer name -> the official checkpoint's variable names, in Keras weight order."""
    from tl_kit.models.efficientnet_lite import VARIANTS, stage_plan

    scope = variant.replace("_", "-")
    width, depth, _, _ = VARIANTS[variant]

    def bn(prefix: str) -> list[str]:
        return [f"{prefix}/{p}" for p in _BN]

    out = {"stem_conv": [f"{scope}/stem/conv2d/kernel"],
           "stem_bn": bn(f"{scope}/stem/tpu_batch_normalization")}
    n = 0
    for i, (_, repeats, _, _, expand, _) in enumerate(stage_plan(width, depth), start=1):
        for j in range(repeats):
            p, t = f"block{i}{chr(97 + j)}_", f"{scope}/blocks_{n}/"
            if expand != 1:
                out[p + "expand_conv"] = [t + "conv2d/kernel"]
                out[p + "expand_bn"] = bn(t + "tpu_batch_normalization")
                dw_bn, proj, proj_bn = "tpu_batch_normalization_1", "conv2d_1", "tpu_batch_normalization_2"
            else:
                dw_bn, proj, proj_bn = "tpu_batch_normalization", "conv2d", "tpu_batch_normalization_1"
            out[p + "dwconv"] = [t + "depthwise_conv2d/depthwise_kernel"]
            out[p + "bn"] = bn(t + dw_bn)
            out[p + "project_conv"] = [t + proj + "/kernel"]
            out[p + "project_bn"] = bn(t + proj_bn)
            n += 1
    out["top_conv"] = [f"{scope}/head/conv2d/kernel"]
    out["top_bn"] = bn(f"{scope}/head/tpu_batch_normalization")
    if include_top:
        out["predictions"] = [f"{scope}/head/dense/kernel", f"{scope}/head/dense/bias"]
    return out


def convert_tf_checkpoint(folder: str, variant: str, include_top: bool, target: str,
                          builder: Callable[..., keras.Model]) -> None:
    """Read the checkpoint under ``folder`` and write ``target`` (a ``.weights.h5``)."""
    import tensorflow as tf

    prefix = find_checkpoint_prefix(folder)
    reader = tf.train.load_checkpoint(prefix)
    have = set(reader.get_variable_to_shape_map())

    def value(name: str) -> np.ndarray:
        ema = name + "/ExponentialMovingAverage"
        if ema in have:
            return reader.get_tensor(ema)
        if name not in have:
            raise TLKitError(f"Checkpoint {prefix!r} has no variable {name!r} (not an official "
                             f"{variant} checkpoint?).")
        return reader.get_tensor(name)

    from tl_kit.models.efficientnet_lite import VARIANTS

    size = VARIANTS[variant][2]
    model = builder(include_top=include_top, weights=None, input_shape=(size, size, 3))
    for layer_name, names in tf_names_to_keras(variant, include_top).items():
        model.get_layer(layer_name).set_weights([value(n) for n in names])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + f".tmp{os.getpid()}.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, target)
    print(f"[tl_kit] {variant}: converted the official checkpoint {prefix} into Keras's cache: "
          f"{target}", flush=True)
