"""Model analysis: per-layer output shapes, parameters, multiply-adds, receptive field.

:func:`summary` takes a ``keras.Model`` or a registered name and returns a
:class:`ModelSummary`: one row per layer (layers of nested models such as a backbone
inside a classifier included, named ``backbone/block1_conv1``) and the totals.

Convention for multiply-adds (MACs), as in the papers (VGG's 15.5 G, ResNet-50's 3.8-4.1 G,
MobileNetV2's 300 M): only convolutions and fully connected layers are counted, one MAC
per weight use, biases ignored:

- ``Conv`` (1D/2D/3D, any ``groups``): ``prod(output spatial) * k_h * k_w * C_in / groups * C_out``
- ``DepthwiseConv``: ``prod(output spatial) * k_h * k_w * C_in * depth_multiplier``
- ``SeparableConv``: the depthwise part plus the 1x1 pointwise part, both at the output size
- ``ConvTranspose``: ``prod(input spatial) * k_h * k_w * C_in * C_out``
- ``Dense``: ``in * out`` per position (``prod`` of the non-feature output dimensions)

Batch normalization, activations, pooling, additions, concatenations and preprocessing
are counted as 0. FLOPs are usually quoted as ``2 * MACs``.

The receptive field (``rf``) is the theoretical one along the height axis, taken as the
largest over all paths: ``rf += (k_eff - 1) * jump; jump *= stride`` for convolutions and
pooling windows, where ``k_eff = dilation * (k - 1) + 1``. Layers that mix all positions
(flatten, global pooling, dense on a flat vector) have no receptive field column.

Keras is imported inside the functions so that ``tl-kit --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tl_kit.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "LayerRow",
    "ModelSummary",
    "summary",
    "parse_input_shape",
    "model_catalog",
    "MACS_CONVENTION",
]

MACS_CONVENTION = (
    "MACs count multiply-adds of convolution and dense layers only (biases, batch norm, "
    "activations, pooling and additions count 0), as in the papers; FLOPs ~ 2 x MACs."
)


# === Results ===


@dataclass
class LayerRow:
    """One layer of a :class:`ModelSummary`.

    Attributes:
        name: qualified name; layers of nested models are ``outer/inner``.
        class_name: the layer class (``"Conv2D"``).
        output_shape: output shape without the batch dimension (a list of shapes for
            layers with several outputs).
        params: number of weights of the layer.
        trainable_params: number of trainable weights.
        macs: multiply-adds of one forward pass for one image (summed over calls of a
            shared layer).
        receptive_field: theoretical receptive field (pixels, height axis) of the output,
            or None where it is not defined.
        depth: nesting depth (0 for layers of the outer model).
    """

    name: str
    class_name: str
    output_shape: tuple | list
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    receptive_field: int | None = None
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        shape = self.output_shape
        d["output_shape"] = [list(s) for s in shape] if isinstance(shape, list) else list(shape)
        return d


@dataclass
class ModelSummary:
    """Per-layer table and totals of a model; prints as a table.

    ``str(s)`` / ``repr(s)`` give a plain text table, :meth:`print` a rich table when
    ``rich`` is installed, :meth:`to_dict` / :meth:`to_json` the same data as JSON.

    Example:
    ```python
    s = tl_kit.summary("vgg16")
    s.macs / 1e9               # 15.47
    s.layer("block5_pool").output_shape   # (7, 7, 512)
    s.print()
    ```
    """

    name: str
    input_shape: tuple | list
    rows: list[LayerRow] = field(default_factory=list)
    params: int = 0
    trainable_params: int = 0
    non_trainable_params: int = 0
    macs: int = 0
    receptive_field: int | None = None
    source: str = "keras.Model"

    # --- access ---

    def layer(self, name: str) -> LayerRow:
        """The row of the layer ``name`` (qualified ``outer/inner``, or a unique bare name)."""
        for row in self.rows:
            if row.name == name:
                return row
        matches = [r for r in self.rows if r.name.rsplit("/", 1)[-1] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(r.name for r in matches)
            raise KeyError(f"Layer name {name!r} is ambiguous: {names}. Received: name={name!r}")
        raise KeyError(f"No layer named {name!r} in model {self.name!r}. Received: name={name!r}")

    @property
    def gmacs(self) -> float:
        """Multiply-adds in billions."""
        return self.macs / 1e9

    def totals(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "receptive_field": self.receptive_field,
        }

    def to_dict(self) -> dict[str, Any]:
        shape = self.input_shape
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": [list(s) for s in shape] if isinstance(shape, list) else list(shape),
            "layers": [r.to_dict() for r in self.rows],
            "totals": self.totals(),
            "convention": MACS_CONVENTION,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    # --- display ---

    def _table_rows(self) -> list[tuple[str, str, str, str, str]]:
        out = []
        for r in self.rows:
            out.append(
                (
                    "  " * r.depth + f"{r.name.rsplit('/', 1)[-1]} ({r.class_name})",
                    _fmt_shape(r.output_shape),
                    f"{r.params:,}",
                    f"{r.macs:,}" if r.macs else "0",
                    "-" if r.receptive_field is None else str(r.receptive_field),
                )
            )
        return out

    def _totals_lines(self) -> list[str]:
        lines = [
            f"Total params: {self.params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            f"Multiply-adds (MACs): {self.macs:,} ({_human(self.macs)})",
        ]
        if self.receptive_field is not None:
            lines.append(f"Receptive field: {self.receptive_field} px")
        return lines

    def to_text(self) -> str:
        """The plain text table with the totals."""
        header = ("Layer (type)", "Output shape", "Param #", "MACs", "RF")
        rows = self._table_rows()
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
            for i, h in enumerate(header)
        ]

        def fmt(cells: tuple[str, ...]) -> str:
            parts = [cells[0].ljust(widths[0]), cells[1].ljust(widths[1])]
            parts += [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join(parts).rstrip()

        rule = "-" * len(fmt(tuple("x" * w for w in widths)))
        lines = [
            f'Model: "{self.name}"  input {_fmt_shape(self.input_shape)}',
            rule,
            fmt(header),
            rule,
        ]
        lines += [fmt(r) for r in rows]
        lines.append(rule)
        lines += self._totals_lines()
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        table = Table(title=f"{self.name}  input {_fmt_shape(self.input_shape)}", show_lines=False)
        table.add_column("Layer (type)", no_wrap=True)
        table.add_column("Output shape")
        table.add_column("Param #", justify="right")
        table.add_column("MACs", justify="right")
        table.add_column("RF", justify="right")
        for cells in self._table_rows():
            table.add_row(*cells)
        return Group(table, "\n".join(self._totals_lines()))

    def print(self, file=None) -> None:
        """Print the table: a rich table when ``rich`` is installed, plain text otherwise."""
        try:
            from rich.console import Console
        except ImportError:  # pragma: no cover - rich is a dependency
            print(self.to_text(), file=file)
            return
        out = file if file is not None else sys.stdout
        is_tty = hasattr(out, "isatty") and out.isatty()
        Console(file=out, width=None if is_tty else 120).print(self)


def _fmt_shape(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


# === Input shapes ===


def parse_input_shape(value) -> tuple[int, ...] | None:
    """Parse ``"224,224,3"``, ``"224x224x3"`` or a sequence into a tuple of ints.

    Two numbers ``"H,W"`` are returned as ``(H, W)``; :func:`summary` then takes the
    channels from the model's default input.
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,xX\s]+", value.strip().strip("()[]")) if p]
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            dims = ()
    else:
        try:
            dims = tuple(int(d) for d in value)
        except (TypeError, ValueError):
            dims = ()
    if len(dims) not in (2, 3) or any(d < 1 for d in dims):
        raise UserError(
            "The input shape must be H,W,C (or HxWxC) with positive integers, e.g. 224,224,3. "
            f"Received: input_shape={value!r}"
        )
    return dims


# === Building from a name ===


def _backbones_module():
    """tl_kit.backbones if that module exists (it is optional for the analysis), else None."""
    if (
        "tl_kit.backbones" not in sys.modules
        and importlib.util.find_spec("tl_kit.backbones") is None
    ):
        return None
    return importlib.import_module("tl_kit.backbones")


def _build_from_name(name: str, input_shape, build_kwargs: dict[str, Any]):
    from tl_kit.models.registry import _REGISTRY, get_spec, list_models

    list_models()  # loads the registry
    if name in _REGISTRY:
        spec = get_spec(name)
        if input_shape is not None and len(input_shape) == 2:
            input_shape = (*input_shape, spec.default_size[2])
        kwargs = {"weights": None, **build_kwargs}
        if input_shape is not None:
            kwargs["input_shape"] = tuple(input_shape)
        return spec.build(**kwargs), "tl_kit.models"
    backbones = _backbones_module()
    if backbones is not None:
        if name in backbones.list_backbones():
            bspec = backbones.get_backbone(name)
            kwargs = dict(build_kwargs)
            if kwargs.pop("include_top", False):
                raise UserError(
                    f"{name!r} is a backbone without a classifier top; summarise it without "
                    "include_top (CLI: --no-top). Received: include_top=True"
                )
            if input_shape is not None and len(input_shape) == 2:
                input_shape = (*input_shape, bspec.default_size[2])
            kwargs.setdefault("weights", None)
            return bspec.build(input_shape=input_shape, **kwargs), "tl_kit.backbones"
    from tl_kit.errors import unknown_name

    known = list(_REGISTRY) + (backbones.list_backbones() if backbones is not None else [])
    raise unknown_name("model", name, known, "tl-kit models lists them, tl-kit weights "
                       "list the keras: ones", "name")


def _load_model_file(path: str):
    import keras

    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file not found. Received: path={path!r}")
    if importlib.util.find_spec("tl_kit.layers") is not None:
        importlib.import_module("tl_kit.layers")  # registers tl_kit's serializable layers
    return keras.saving.load_model(path, compile=False)


_MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def model_catalog(pattern: str = "*") -> list[dict[str, Any]]:
    """Metadata of the registered tl_kit models matching ``pattern`` (shell-style).

    Each entry: ``name``, ``family``, ``default_size``, ``min_size``, ``params`` (the
    paper's count for the default configuration, from the registry metadata; None if
    none is recorded), ``params_trainable_only``, ``blocks`` (ordered declarations),
    ``preprocess``, ``paper``. Nothing is built, so this is fast.

    Example:
    ```python
    [m["name"] for m in model_catalog("resnet*")]
    ```
    """
    from tl_kit.models.registry import get_spec, list_models

    out = []
    for name in list_models(pattern):
        spec = get_spec(name)
        checks = [c for c in spec.param_checks if not c.kwargs and c.input_shape is None]
        check = checks[0] if checks else None
        out.append(
            {
                "name": name,
                "family": spec.family,
                "default_size": list(spec.default_size),
                "min_size": spec.min_size,
                "params": check.expected if check else None,
                "params_trainable_only": bool(check and check.trainable_only),
                "classes": check.classes if check else None,
                "blocks": list(spec.blocks),
                "preprocess": spec.preprocess,
                "paper": spec.paper,
            }
        )
    return out


# === Tracing ===


class _Tracer:
    """Runs a model's graph on symbolic tensors and records every layer call."""

    def __init__(self) -> None:
        self.rows: dict[int, LayerRow] = {}
        self.rf: dict[int, tuple[int, int]] = {}  # id(tensor) -> (receptive field, jump)
        self.keep: list[Any] = []  # keeps traced tensors alive so their ids stay unique
        self.undefined: list[str] = []

    # --- graph walking ---

    def run_model(self, model, inputs, prefix: str, depth: int):
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

    def call(self, op, args, kwargs, prefix: str, depth: int):
        from keras import tree

        if _is_graph_model(op):
            inputs = args[0] if len(args) == 1 else list(args)
            out = self.run_model(op, inputs, f"{prefix}{op.name}/", depth + 1)
        else:
            out = op.compute_output_spec(*args, **kwargs)
            ins = [t for t in tree.flatten((args, kwargs)) if _is_tensor(t)]
            self.record(op, ins, tree.flatten(out), prefix, depth)
        self.keep.append(out)
        return out

    # --- per layer ---

    def record(self, op, ins, outs, prefix: str, depth: int) -> None:
        shapes = [tuple(t.shape[1:]) for t in outs if _is_tensor(t)]
        macs = _layer_macs(op, ins, outs)
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
            if _is_tensor(t) and len(t.shape) >= 3:
                self.rf[id(t)] = (rf, jump)
        return rf


def _input_name(model, ref) -> str:
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer" and getattr(layer, "output", None) is ref:
            return layer.name
    history = getattr(ref, "_keras_history", None)
    op = getattr(history, "operation", None)
    return getattr(op, "name", None) or "input"


def _is_tensor(t) -> bool:
    return hasattr(t, "shape") and hasattr(t, "dtype")


def _is_graph_model(op) -> bool:
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


def _spatial(shape, data_format: str | None) -> int | None:
    dims = shape[2:] if data_format == "channels_first" else shape[1:-1]
    if any(d is None for d in dims):
        return None
    return math.prod(dims)


def _layer_macs(op, ins, outs) -> int | None:
    """Multiply-adds of one call (see the module docstring); None if a size is undefined."""
    from keras import layers as L

    if not outs or not _is_tensor(outs[0]):
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


# === Public entry point ===


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
    import keras

    shape = parse_input_shape(input_shape)
    if isinstance(model_or_name, (str, os.PathLike)) and (
        str(model_or_name).endswith(_MODEL_FILE_SUFFIXES) or os.path.sep in str(model_or_name)
    ):
        if build_kwargs:
            raise UserError(
                "Builder arguments only apply when a model name is given. "
                f"Received: build_kwargs={sorted(build_kwargs)}"
            )
        model, source = _load_model_file(os.fspath(model_or_name)), os.fspath(model_or_name)
    elif isinstance(model_or_name, str):
        model, source = _build_from_name(model_or_name, shape, build_kwargs)
        shape = None  # the builder already used it
    elif isinstance(model_or_name, keras.Model):
        if build_kwargs:
            raise UserError(
                "Builder arguments only apply when a model name is given. "
                f"Received: build_kwargs={sorted(build_kwargs)}"
            )
        model, source = model_or_name, "keras.Model"
    else:
        raise UserError(
            "summary() needs a keras.Model or a registered model name. "
            f"Received: model_or_name={type(model_or_name).__name__}"
        )
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
                    f"Model {model.name!r} takes inputs of shape {_fmt_shape(ref_shape)}; "
                    f"the input shape given does not fit it. Received: input_shape={input_shape!r}"
                )
            ref_shape = new
        specs.append(keras.KerasTensor(shape=(None, *ref_shape), dtype=ref.dtype, name=ref.name))

    tracer = _Tracer()
    input_rows = []
    for spec, ref in zip(specs, ref_inputs, strict=True):
        tracer.rf[id(spec)] = (1, 1)
        input_rows.append(
            LayerRow(
                name=_input_name(model, ref),
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
            f"Received: input_shape={_fmt_shape(tuple(ref_inputs[0].shape[1:]))}"
        )

    rows = input_rows + list(tracer.rows.values())
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
