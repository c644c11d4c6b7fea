"""Tracing a model's graph on symbolic tensors: every layer call becomes a
:class:`~tl_kit.analysis.results.LayerRow` with its output shape, parameters, multiply-adds
and receptive field (``rf += (k_eff - 1) * jump; jump *= stride``)."""

from __future__ import annotations

import math
from typing import Any

from tl_kit.analysis.macs import is_tensor, layer_macs
from tl_kit.analysis.results import LayerRow

__all__ = ["Tracer", "input_name", "is_graph_model"]


class Tracer:
    """Runs a model's graph on symbolic tensors and records every layer call."""

    def __init__(self) -> None:
        self.rows: dict[int, LayerRow] = {}
        self.rf: dict[int, tuple[int, int]] = {}  # id(tensor) -> (receptive field, jump)
        self.keep: list[Any] = []  # keeps traced tensors alive so their ids stay unique
        self.undefined: list[str] = []

    # --- graph walking ---

    def run_model(self, model, inputs, prefix: str, depth: int) -> Any:
        import keras

        if isinstance(model, keras.Sequential):
            x = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
            for layer in model.layers:
                x = self.call(layer, (x,), {}, prefix, depth)
            return x

        def operation_fn(op):
            def call(*args, **kwargs):
                return self.call(op, args, kwargs, prefix, depth)

            return call

        return model._run_through_graph(inputs, operation_fn=operation_fn)

    def call(self, op, args, kwargs, prefix: str, depth: int) -> Any:
        from keras import tree

        if is_graph_model(op):
            inputs = args[0] if len(args) == 1 else list(args)
            out = self.run_model(op, inputs, f"{prefix}{op.name}/", depth + 1)
        else:
            out = op.compute_output_spec(*args, **kwargs)
            ins = [t for t in tree.flatten((args, kwargs)) if is_tensor(t)]
            self.record(op, ins, tree.flatten(out), prefix, depth)
        self.keep.append(out)
        return out

    # --- per layer ---

    def record(self, op, ins, outs, prefix: str, depth: int) -> None:
        shapes = [tuple(t.shape[1:]) for t in outs if is_tensor(t)]
        macs = layer_macs(op, ins, outs)
        if macs is None:
            self.undefined.append(f"{prefix}{op.name}")
            macs = 0
        rf = self._receptive_field(op, ins, outs)
        row = self.rows.get(id(op))
        if row is None:
            params, trainable = _layer_params(op)
            row = LayerRow(
                name=f"{prefix}{op.name}",
                class_name=type(op).__name__,
                output_shape=shapes[0] if len(shapes) == 1 else shapes,
                params=params,
                trainable_params=trainable,
                macs=macs,
                receptive_field=rf,
                depth=depth,
            )
            self.rows[id(op)] = row
        else:  # a shared layer called again
            row.macs += macs
            if rf is not None:
                row.receptive_field = max(row.receptive_field or 0, rf)

    def _receptive_field(self, op, ins, outs) -> int | None:
        states = [self.rf[id(t)] for t in ins if id(t) in self.rf]
        name = type(op).__name__
        if not states or "Global" in name or name in ("Flatten", "Reshape", "Dense", "EinsumDense"):
            return None
        if "Transpose" in name or "UpSampling" in name:
            return None  # not tracked through upsampling
        rf_in = max(s[0] for s in states)
        jump_in = max(s[1] for s in states)
        window = _window(op)
        if window is None:
            rf, jump = rf_in, jump_in
        else:
            k, s, d = window
            rf = rf_in + (d * (k - 1)) * jump_in
            jump = jump_in * s
        for t in outs:
            if is_tensor(t) and len(t.shape) >= 3:
                self.rf[id(t)] = (rf, jump)
        return rf


def input_name(model, ref) -> str:
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer" and getattr(layer, "output", None) is ref:
            return layer.name
    history = getattr(ref, "_keras_history", None)
    op = getattr(history, "operation", None)
    return getattr(op, "name", None) or "input"


def is_graph_model(op) -> bool:
    import keras

    if isinstance(op, keras.Sequential):
        return bool(op.layers) and op.built
    return (
        isinstance(op, keras.Model)
        and hasattr(op, "_run_through_graph")
        and hasattr(op, "_nodes_by_depth")
    )


def _first(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _window(op) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) along the height axis of a sliding-window layer."""
    if hasattr(op, "kernel_size") and hasattr(op, "strides"):
        return _first(op.kernel_size), _first(op.strides), _first(getattr(op, "dilation_rate", 1))
    if hasattr(op, "pool_size") and getattr(op, "pool_size", None) is not None:
        strides = op.strides if op.strides is not None else op.pool_size
        return _first(op.pool_size), _first(strides), 1
    return None


def _layer_params(op) -> tuple[int, int]:
    weights = getattr(op, "weights", None) or []
    trainable = getattr(op, "trainable_weights", None) or []
    return (
        int(sum(math.prod(w.shape) for w in weights)),
        int(sum(math.prod(w.shape) for w in trainable)),
    )
