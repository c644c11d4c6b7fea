"""Which images an evaluation scores: the run's own data by its split manifest, a folder's
``test/`` (or ``val/``) sub-folder, or all of another folder; read only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tl_kit.errors import UserError

__all__ = ["load_evaluation_data", "is_training_data"]

_SPLIT_ALIASES = {"validation": "val", "valid": "val"}


def _manifest(run_dir) -> dict | None:
    """The run's split manifest (``run_dir/manifest.json``), or None."""
    if run_dir is None:
        return None
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _manifest_source(manifest: dict | None) -> str | None:
    if not manifest:
        return None
    return manifest.get("source_path") or manifest.get("source")


def is_training_data(source, run_dir) -> bool:
    """Whether ``source`` (a folder or ``"tfds:NAME"``) is the data the run in ``run_dir``
    trained on, by its split manifest: same folder (resolved path) or same tfds name."""
    trained = _manifest_source(_manifest(run_dir))
    if trained is None:
        return False
    if str(source).startswith("tfds:") or str(trained).startswith("tfds:"):
        return str(source) == str(trained)
    try:
        return os.path.realpath(os.fspath(source)) == os.path.realpath(trained)
    except (OSError, ValueError):
        return False


def _check_split(split: str | None) -> str | None:
    from tl_kit.data import SPLITS

    if split is None or split in SPLITS:
        return split
    alias = _SPLIT_ALIASES.get(split)
    if alias is None:
        raise UserError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    return alias


def _default_split(data, source) -> str:
    from tl_kit.data import SPLITS

    split = next((s for s in ("test", "val") if data.has(s)), None)
    if split is None:
        have = [s for s in SPLITS if data.has(s)]
        raise UserError(
            f"{source} holds no test or val split (it has {have}); pass the split to "
            f"evaluate (--split). Received: split=None")
    return split


def load_evaluation_data(source, *, image_size, channels: int, class_names, split: str | None = None,
                         run_dir=None) -> tuple[Any, str, str]:
    """Load ``source`` for evaluation -> ``(Data, split, how)``; nothing is written anywhere.

    * The run's own data (``source`` is the folder or tfds name the run in ``run_dir`` was
      trained on, or None): the run's split manifest decides, read only; ``split`` defaults
      to "test", else "val".
    * A folder split into ``train/``, ``val/`` (``validation/``), ``test/`` sub-folders:
      ``split`` picks that folder (default "test", else "val").
    * Any other folder (or tfds name): all of it. A ``split`` is then an error: the run's
      manifest does not describe these files, and such a folder has no split of its own.

    ``how`` says which of these happened, for the report.
    """
    from tl_kit.data import load_data, split_subfolders

    manifest = _manifest(run_dir)
    own = source is None or is_training_data(source, run_dir)
    if source is None:
        source = _manifest_source(manifest)
        if source is None:
            raise UserError(
                f"No data given and {run_dir} has no split manifest naming its training data; "
                f"pass the folder to evaluate (--data). Received: data=None")
    split = _check_split(split)
    names = [str(c) for c in class_names] if class_names else None
    common = dict(image_size=image_size, channels=channels, class_names=names)
    layout = None if str(source).startswith("tfds:") else split_subfolders(Path(source))
    if own and manifest is not None:
        data = load_data(source, **common, run_dir=str(run_dir), record=False,
                         seed=int(manifest.get("seed", 0)),
                         validation_split=float(manifest.get("validation_split") or 0.0),
                         test_split=float(manifest.get("test_split") or 0.0))
        how = f"the run's own training data: the {{split}} split of its manifest ({run_dir}/manifest.json)"
    elif layout is not None:
        data = load_data(source, **common, validation_split=0.0)
        how = "the {split} folder of " + str(source)
    else:
        if split is not None:
            raise UserError(
                f"{source} is neither split into train/val/test sub-folders nor the data this "
                f"run was trained on, so it has no {split!r} split: leave the split out to "
                f"evaluate all of it, or pass the split's own folder. Received: split={split!r}")
        data = load_data(source, **common, validation_split=0.0)
        return (_align_classes(data, names, source), "train",
                f"all {data.size('train')} images of {source}")
    if split is None:
        split = _default_split(data, source)
    data._get(split)  # a clear error when that split is absent
    return _align_classes(data, names, source), split, how.format(split=split)


def _align_classes(data, names: list[str] | None, source):
    """Relabel ``data`` to the model's class order by name (a folder may hold fewer classes,
    sorted differently); a class the model does not know is an error."""
    if not names or data.class_names == names:
        return data
    unknown = [c for c in data.class_names if c not in names]
    if unknown:
        raise UserError(
            f"{source} has class folder(s) {unknown} that the model does not predict (it knows "
            f"{names}). Received: {unknown!r}")
    return data.in_class_order(names)
