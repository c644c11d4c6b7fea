"""Fold inference-mode BatchNormalization into the layer before it.

In inference a BatchNormalization layer is a per-channel affine map,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. When ``x`` comes straight from a
linear layer (a convolution or a Dense layer with no activation, whose output nothing else
reads) the map can be folded into that layer's kernel and bias:

    kernel' = kernel * s,    bias' = (bias - mean) * s + beta,    s = gamma / sqrt(var + eps)

and the BatchNormalization layer becomes a pass-through. The network computes the same
function with one elementwise pass fewer per block, and TensorFlow's graph optimiser can then
fuse convolution + bias + ReLU into one kernel. tl_kit uses this for the feature cache (the
frozen backbone runs once over every image, in inference mode): MobileNetV2 at 128 px runs
about 1.5x faster on a 2-core CPU (480-555 vs 320-350 images/s, side by side; figures in
benchmarks/RESULTS.md). This is the standard "batch-norm folding" used by inference
compilers (Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", section 3.2).

The folded model is for inference only: its pass-through layers no longer hold statistics,
so training it (with BatchNormalization in training mode) is not the same as training the
original.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["FoldedBatchNormalization", "fold_batchnorm", "foldable_pairs"]

_DEPTHWISE = (keras.layers.DepthwiseConv2D,)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_LINEAR = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense,
           *_DEPTHWISE, *_SEPARABLE)


@keras.saving.register_keras_serializable(package="tl_kit")
class FoldedBatchNormalization(keras.layers.Layer):
    """What is left of a BatchNormalization layer once :func:`fold_batchnorm` has moved its
    affine map into the layer before it: the identity. Keeps the original name, so layer
    lookups by name still work on the folded model."""

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy)}

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _channel_axis_ok(bn: keras.layers.BatchNormalization, producer: keras.layers.Layer) -> bool:
    rank = len(bn.input.shape)
    axis = bn.axis if isinstance(bn.axis, int) else (bn.axis[0] if len(bn.axis) == 1 else None)
    if axis is None or axis % rank != rank - 1:
        return False
    return getattr(producer, "data_format", "channels_last") == "channels_last"


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """``{linear layer name: BatchNormalization name}`` for every BatchNormalization that can
    be folded: it is called once, its only input is the output of a Conv/Dense layer with no
    activation that is called once and read by nothing else, and it normalises the channel
    (last) axis. Subclasses are left alone (their ``call`` may differ), only Keras's own
    layers are folded."""
    pairs: dict[str, str] = {}
    for bn in model.layers:
        if type(bn) is not keras.layers.BatchNormalization or len(bn._inbound_nodes) != 1:
            continue
        parents = bn._inbound_nodes[0].parent_nodes
        if len(parents) != 1:
            continue
        producer = parents[0].operation
        if (type(producer) not in _LINEAR or len(producer._inbound_nodes) != 1
                or len(producer._outbound_nodes) != 1):
            continue
        if getattr(producer, "activation", keras.activations.linear) is not keras.activations.linear:
            continue
        if not _channel_axis_ok(bn, producer):
            continue
        pairs[producer.name] = bn.name
    return pairs


def _folded_weights(layer: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    def value(v, default):
        return np.asarray(keras.ops.convert_to_numpy(v), "float64") if v is not None else default

    mean = value(bn.moving_mean, 0.0)
    var = value(bn.moving_variance, 1.0)
    gamma = value(bn.gamma, 1.0)
    beta = value(bn.beta, 0.0)
    s = gamma / np.sqrt(var + bn.epsilon)
    weights = [np.asarray(w, "float64") for w in layer.get_weights()]
    if isinstance(layer, _SEPARABLE):  # [depthwise, pointwise, (bias)]: scale the pointwise
        kernels, bias = weights[:2], (weights[2] if layer.use_bias else 0.0)
        kernels = [kernels[0], kernels[1] * s]
    elif isinstance(layer, _DEPTHWISE):  # kernel (kh, kw, in, multiplier): channel = in * m
        k, bias = weights[0], (weights[1] if layer.use_bias else 0.0)
        kernels = [k * s.reshape(k.shape[-2], k.shape[-1])]
    else:  # Conv (..., in / groups, out) and Dense (in, out)
        kernels, bias = [weights[0] * s], (weights[1] if layer.use_bias else 0.0)
    new_bias = (bias - mean) * s + beta
    return [k.astype("float32") for k in kernels] + [np.broadcast_to(new_bias, s.shape).astype("float32")]


def fold_batchnorm(model: keras.Model, verify: bool = True, atol: float = 1e-4) -> keras.Model:
    """An inference copy of ``model`` with every foldable BatchNormalization folded into the
    convolution or Dense layer before it (see :func:`foldable_pairs`).

    Args:
        model: a functional or Sequential Keras model (it is not changed).
        verify: run both models on two random inputs and raise ``ValueError`` if the outputs
            differ by more than ``atol`` relative to the output's scale.
        atol: the tolerance of ``verify``.

    Returns:
        A new ``keras.Model`` with the same inputs, outputs and layer names, in which each
        folded BatchNormalization is a :class:`FoldedBatchNormalization` pass-through.
        Returns ``model`` itself when nothing can be folded.

    Example:
    ```python
    base = keras.applications.MobileNetV2(include_top=False, weights=None)
    fast = fold_batchnorm(base)   # same outputs in inference mode, fewer ops
    ```
    """
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    folded_bns = set(pairs.values())

    def clone(layer):
        if layer.name in folded_bns:
            return FoldedBatchNormalization(name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:  # input layers may be renamed by the clone; others keep names
        if layer.name in folded_bns or not layer.weights:
            continue
        target = new.get_layer(layer.name)
        if layer.name in pairs:
            target.set_weights(_folded_weights(layer, model.get_layer(pairs[layer.name])))
        else:
            target.set_weights(layer.get_weights())
    if verify:
        _verify(model, new, atol)
    return new


def _verify(model: keras.Model, new: keras.Model, atol: float) -> None:
    shapes = [(2, *t.shape[1:]) for t in model.inputs]
    if any(d is None for s in shapes for d in s):  # unknown image size: nothing to run
        return
    rng = np.random.default_rng(0)
    x = [rng.standard_normal(s).astype("float32") for s in shapes]
    x = x[0] if len(x) == 1 else x
    a = keras.tree.flatten(model(x, training=False))
    b = keras.tree.flatten(new(x, training=False))
    for u, v in zip(a, b, strict=True):
        u, v = keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v)
        scale = max(float(np.abs(u).max()), 1e-12)
        err = float(np.abs(u - v).max()) / scale
        if err > atol:
            raise ValueError(f"Folding BatchNormalization into {model.name!r} changed its output "
                             f"(max relative difference {err:.2e} > {atol:g}); use the model unfolded.")
