"""What the subcommands share: plain and rich tables, JSON printing, a console and a
spinner on stderr, and the checks of path and image-size arguments (one-line
:class:`~tl_kit.errors.UserError` messages)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tl_kit.errors import UserError

__all__ = ["echo", "format_table", "console", "rich_table", "spinner", "jsonable",
           "print_json", "fmt", "existing_dir", "existing_path", "image_size",
           "check_min_size"]


def echo(text: str = "") -> None:
    """``text`` and a newline on stdout."""
    print(text, file=sys.stdout)


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """Plain aligned columns (pipe-friendly); columns listed in ``right`` are right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def console(stderr: bool = False):
    """A rich Console on the current stdout/stderr (wide when not a terminal, so pipes keep
    whole rows)."""
    from rich.console import Console

    file = sys.stderr if stderr else sys.stdout
    return Console(file=file, width=None if file.isatty() else 200, highlight=False)


def rich_table(
    title: str | None, header: Sequence[str], rows: Sequence[Sequence], right: Sequence[int] = ()
) -> None:
    """Print a rich table on stdout; columns listed in ``right`` are right-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(header):
        table.add_column(str(name), justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console().print(table)


@contextlib.contextmanager
def spinner(message: str, quiet: bool = False) -> Iterator[None]:
    """A rich spinner on stderr while a long step runs (nothing when ``quiet``)."""
    if quiet:
        yield
        return
    err = console(stderr=True)
    with err.status(message, spinner="dots"):
        yield
    err.print(f"[green]done[/green] {message}")


def jsonable(obj: Any) -> Any:
    """Numpy scalars/arrays, tuples and paths into plain JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout (see :func:`jsonable`)."""
    echo(json.dumps(jsonable(obj), indent=2))


def fmt(value: Any, digits: int = 4) -> str:
    """A float with ``digits`` decimals, ``-`` for None, anything else as str."""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def existing_dir(path: str, arg: str) -> str:
    """``path`` if it is a folder (or a ``tfds:NAME`` source); otherwise a one-line UserError."""
    if str(path).startswith("tfds:"):
        return path
    if "://" in str(path):  # a tf.io.gfile URI (gs://, ram://, ...): read in place
        import tensorflow as tf

        if not tf.io.gfile.isdir(str(path)):
            raise UserError(f"Folder not found: {path}. Received: {arg}={path!r}")
        return path
    p = Path(path)
    if not p.exists():
        raise UserError(f"Folder not found: {path}. Received: {arg}={path!r}")
    if not p.is_dir():
        raise UserError(f"Expected a folder, got a file: {path}. Received: {arg}={path!r}")
    return path


def existing_path(path: str, arg: str) -> str:
    """``path`` if it exists; otherwise a one-line UserError."""
    if not Path(path).exists():
        raise UserError(f"Not found: {path}. Received: {arg}={path!r}")
    return path


def image_size(value: str | None) -> tuple[int, int] | None:
    """``"64"`` -> (64, 64); ``"64,96"`` / ``"64x96"`` -> (64, 96)."""
    if value is None:
        return None
    parts = [p for p in str(value).replace("x", ",").split(",") if p.strip()]
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise UserError(
            f"--image-size takes one or two positive integers (64 or 64,96). "
            f"Received: image_size={value!r}"
        )
    return size


def check_min_size(spec, size: Sequence[int] | None) -> None:
    """The backbone's own size check (:meth:`tl_kit.backbones.BackboneSpec.check_input_size`,
    the one ``build`` makes), run before anything is loaded."""
    if size is not None:
        spec.check_input_size(size, argument="image_size", received=f"{size[0]}x{size[1]}")
