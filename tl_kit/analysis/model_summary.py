""":func:`summary`: shapes, parameters, multiply-adds and receptive field of a model, layer
by layer."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from tl_kit.analysis.results import LayerRow, ModelSummary, fmt_shape
from tl_kit.analysis.shapes import parse_input_shape
from tl_kit.analysis.sources import MODEL_FILE_SUFFIXES, build_from_name, load_model_file
from tl_kit.analysis.trace import Tracer, input_name
from tl_kit.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["summary"]


def _no_build_kwargs(build_kwargs: dict[str, Any]) -> None:
    if build_kwargs:
        raise UserError(
            "Builder arguments only apply when a model name is given. "
            f"Received: build_kwargs={sorted(build_kwargs)}"
        )


def _resolve_model(model_or_name, shape, build_kwargs: dict[str, Any]):
    """``(model, source, shape to analyse at)`` for a model, a model file or a name (whose
    builder takes the shape, so None is left to analyse at)."""
    import keras

    if isinstance(model_or_name, (str, os.PathLike)) and (
        str(model_or_name).endswith(MODEL_FILE_SUFFIXES) or os.path.sep in str(model_or_name)
    ):
        _no_build_kwargs(build_kwargs)
        path = os.fspath(model_or_name)
        return load_model_file(path), path, shape
    if isinstance(model_or_name, str):
        model, source = build_from_name(model_or_name, shape, build_kwargs)
        return model, source, None  # the builder already used the shape
    if isinstance(model_or_name, keras.Model):
        _no_build_kwargs(build_kwargs)
        return model_or_name, "keras.Model", shape
    raise UserError(
        "summary() needs a keras.Model or a registered model name. "
        f"Received: model_or_name={type(model_or_name).__name__}"
    )


def _input_specs(model, shape, input_shape) -> list:
    """Symbolic inputs (batch dimension None) at the model's input shapes, or at ``shape``
    where the model leaves sizes undefined."""
    import keras

    if not model.built or not getattr(model, "inputs", None):
        raise UserError(
            f"Model {model.name!r} has no defined inputs yet; build it on an Input "
            f"(or call it once) before summarising. Received: model={model.name!r}"
        )
    ref_inputs = list(model.inputs)
    if shape is not None and len(ref_inputs) != 1:
        raise UserError(
            f"input_shape can only be given for a model with one input; {model.name!r} has "
            f"{len(ref_inputs)}. Received: input_shape={input_shape!r}"
        )
    specs = []
    for ref in ref_inputs:
        ref_shape = tuple(ref.shape[1:])
        if shape is not None:
            new = tuple(shape) if len(shape) == len(ref_shape) else (*shape, ref_shape[-1])
            if len(new) != len(ref_shape) or any(
                r is not None and r != n for r, n in zip(ref_shape, new, strict=True)
            ):
                raise UserError(
                    f"Model {model.name!r} takes inputs of shape {fmt_shape(ref_shape)}; "
                    f"the input shape given does not fit it. Received: input_shape={input_shape!r}"
                )
            ref_shape = new
        specs.append(keras.KerasTensor(shape=(None, *ref_shape), dtype=ref.dtype, name=ref.name))
    return specs


def _trace_rows(model, specs: list) -> list[LayerRow]:
    """One row per input and per layer call of ``model`` traced on ``specs``."""
    tracer = Tracer()
    input_rows = []
    for spec, ref in zip(specs, model.inputs, strict=True):
        tracer.rf[id(spec)] = (1, 1)
        input_rows.append(
            LayerRow(
                name=input_name(model, ref),
                class_name="InputLayer",
                output_shape=tuple(spec.shape[1:]),
            )
        )
    tracer.run_model(model, specs if len(specs) > 1 else specs[0], prefix="", depth=0)
    if tracer.undefined:
        shown = ", ".join(tracer.undefined[:3])
        raise UserError(
            f"Model {model.name!r} has undefined spatial sizes (at {shown}), so its multiply-adds "
            "cannot be counted; pass input_shape=(H, W, C). "
            f"Received: input_shape={fmt_shape(tuple(model.inputs[0].shape[1:]))}"
        )
    return input_rows + list(tracer.rows.values())


def summary(
    model_or_name: keras.Model | str,
    input_shape: tuple[int, ...] | str | None = None,
    **build_kwargs: Any,
) -> ModelSummary:
    """Shapes, parameters, multiply-adds and receptive field of a model, layer by layer.

    Args:
        model_or_name: a ``keras.Model``, a path to a saved ``.keras`` / ``.h5`` model,
            or a registered name: a tl_kit classic model (``tl_kit.list_models()``) or,
            failing that, a backbone (``tl_kit.list_backbones()``), built with
            ``weights=None``.
        input_shape: ``(H, W, C)`` (or ``"224x224x3"``). For a name it is passed to the
            builder; for a model whose input has undefined sizes it is the size to
            analyse at (the model is not changed). ``(H, W)`` takes C from the model.
        **build_kwargs: extra builder arguments for a name (``include_top=False``,
            ``classes=10``, ``groups=2``, ...).

    Returns:
        A :class:`ModelSummary`. MACs follow :data:`MACS_CONVENTION`: multiply-adds of
        convolution and dense layers only, as the papers count them.

    Example:
    ```python
    s = tl_kit.summary("resnet50")
    print(s)                       # table + totals
    s.macs, s.params               # (about 3.9e9, 25_636_712)
    tl_kit.summary(my_model, input_shape=(64, 64, 3)).to_json()
    ```
    """
    model, source, shape = _resolve_model(model_or_name, parse_input_shape(input_shape),
                                          build_kwargs)
    specs = _input_specs(model, shape, input_shape)
    rows = _trace_rows(model, specs)
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    rfs = [r.receptive_field for r in rows if r.receptive_field is not None]
    in_shapes = [tuple(s.shape[1:]) for s in specs]
    return ModelSummary(
        name=model.name,
        input_shape=in_shapes[0] if len(in_shapes) == 1 else in_shapes,
        rows=rows,
        params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        macs=int(sum(r.macs for r in rows)),
        receptive_field=max(rfs) if rfs and max(rfs) > 1 else None,
        source=source,
    )
