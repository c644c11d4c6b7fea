"""Small file helpers shared by the modules that write run directories."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file and a rename, so a reader
    (or a crash) never sees half a file. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent) + "\n")
    os.replace(tmp, path)


def merge_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` into the JSON object at ``path`` (atomically), keeping the keys
    others wrote there; values JSON cannot hold (numpy numbers) are written as floats.

    A run directory's ``metrics.json`` is shared: training writes its own figures
    (``train_seconds``, ``val``) and evaluation adds its report beside them.
    """
    path = Path(path)
    merged: dict = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            merged = old if isinstance(old, dict) else {}
        except (OSError, ValueError):
            merged = {}
    merged.update(json.loads(json.dumps(payload, default=float)))
    write_json_atomic(path, merged)
