"""Multiply-adds (MACs) of one layer call, as the papers count them: convolutions and fully
connected layers only, one MAC per weight use, biases ignored (see :mod:`tl_kit.analysis`)."""

from __future__ import annotations

import math

__all__ = ["layer_macs", "is_tensor"]


def is_tensor(t) -> bool:
    """Whether ``t`` is tensor-like (has ``shape`` and ``dtype``)."""
    return hasattr(t, "shape") and hasattr(t, "dtype")


def _spatial(shape, data_format: str | None) -> int | None:
    dims = shape[2:] if data_format == "channels_first" else shape[1:-1]
    if any(d is None for d in dims):
        return None
    return math.prod(dims)


def layer_macs(op, ins, outs) -> int | None:
    """Multiply-adds of one call (see the module docstring); None if a size is undefined."""
    from keras import layers as L

    if not outs or not is_tensor(outs[0]):
        return 0
    out_shape = tuple(outs[0].shape)
    fmt = getattr(op, "data_format", "channels_last")
    transposes = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
    if isinstance(op, transposes):
        if not ins:
            return 0
        n = _spatial(tuple(ins[0].shape), fmt)
        return None if n is None else n * math.prod(op.kernel.shape)
    if isinstance(op, (L.SeparableConv1D, L.SeparableConv2D)):
        n = _spatial(out_shape, fmt)
        kernels = math.prod(op.depthwise_kernel.shape) + math.prod(op.pointwise_kernel.shape)
        return None if n is None else n * kernels
    if isinstance(op, (L.DepthwiseConv1D, L.DepthwiseConv2D, L.Conv1D, L.Conv2D, L.Conv3D)):
        n = _spatial(out_shape, fmt)
        return None if n is None else n * math.prod(op.kernel.shape)
    if isinstance(op, L.Dense):
        dims = out_shape[1:-1]
        if any(d is None for d in dims):
            return None
        return math.prod(dims) * math.prod(op.kernel.shape)
    return 0
