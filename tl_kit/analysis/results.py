"""The result of :func:`~tl_kit.analysis.summary`: one :class:`LayerRow` per layer and the
:class:`ModelSummary` with its totals, as plain text, a rich table or JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MACS_CONVENTION", "LayerRow", "ModelSummary", "fmt_shape"]

MACS_CONVENTION = (
    "MACs count multiply-adds of convolution and dense layers only (biases, batch norm, "
    "activations, pooling and additions count 0), as in the papers; FLOPs ~ 2 x MACs."
)


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
                    fmt_shape(r.output_shape),
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
            f'Model: "{self.name}"  input {fmt_shape(self.input_shape)}',
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

        table = Table(title=f"{self.name}  input {fmt_shape(self.input_shape)}", show_lines=False)
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


def fmt_shape(shape) -> str:
    if isinstance(shape, list):
        return ", ".join(fmt_shape(s) for s in shape)
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)
