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
from collections.abc import Sequence

import keras
import numpy as np

from tl_kit.errors import TLKitError

__all__ = ["find_checkpoint_prefix", "tf_names_to_keras", "load_tf_checkpoint"]

_BN = ("gamma", "beta", "moving_mean", "moving_variance")


def find_checkpoint_prefix(folder: str) -> str:
    """The ``model.ckpt`` prefix inside an extracted checkpoint folder (searched recursively)."""
    roots = [folder, os.path.dirname(folder)] if os.path.isfile(folder) else [folder]
    for root in roots:
        found = sorted(glob.glob(os.path.join(root, "**", "*.index"), recursive=True))
        if found:
            return found[0][: -len(".index")]
    raise TLKitError(f"No TensorFlow checkpoint (*.index) found in {folder!r}.")


def tf_names_to_keras(scope: str, plan: Sequence[Sequence[int]],
                      include_top: bool) -> dict[str, list[str]]:
    """Keras layer name -> the official checkpoint's variable names, in Keras weight order.

    Args:
        scope: the checkpoint's top scope (``"efficientnet-lite3"``).
        plan: the scaled stages, ``(kernel, repeats, filters in, filters out, expand,
            stride)`` each (:func:`tl_kit.models.efficientnet_lite.stage_plan`).
        include_top: include the classifier (``predictions``).
    """

    def bn(prefix: str) -> list[str]:
        return [f"{prefix}/{p}" for p in _BN]

    out = {"stem_conv": [f"{scope}/stem/conv2d/kernel"],
           "stem_bn": bn(f"{scope}/stem/tpu_batch_normalization")}
    n = 0
    for i, (_, repeats, _, _, expand, _) in enumerate(plan, start=1):
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


def load_tf_checkpoint(folder: str, names: dict[str, list[str]], model: keras.Model) -> str:
    """Set ``model``'s weights from the checkpoint under ``folder``; returns its prefix.

    ``names`` maps each Keras layer to its variables (:func:`tf_names_to_keras`).
    """
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
                             f"{model.name} checkpoint?).")
        return reader.get_tensor(name)

    for layer_name, variables in names.items():
        model.get_layer(layer_name).set_weights([value(n) for n in variables])
    return prefix
