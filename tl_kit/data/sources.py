"""``load_data``: a folder, ``"tfds:NAME"``, ``(x, y)`` arrays, a tf.data dataset or a dict of
splits, checked and loaded into a :class:`~tl_kit.data.pipeline.Data`."""

from __future__ import annotations

import os

import numpy as np

from tl_kit.data.arrays import is_tf_dataset, resolve_classes, to_xy
from tl_kit.data.cache import check_pipeline
from tl_kit.data.examples import Examples
from tl_kit.data.folders import load_folder, load_split_folders, split_subfolders
from tl_kit.data.info import make_info
from tl_kit.data.manifest import carve_missing, index_split
from tl_kit.data.pipeline import Data
from tl_kit.data.split import check_fracs, split_key, split_name
from tl_kit.data.uri import as_path
from tl_kit.errors import UserError

__all__ = ["RESIZE_MODES", "check_size", "load_data"]

RESIZE_MODES = ("stretch", "crop", "pad")


def load_data(source, *, image_size=(224, 224), channels: int = 3, validation_split: float = 0.2,
              test_split: float = 0.0, seed: int = 0, run_dir=None, num_classes: int | None = None,
              resize: str = "stretch", class_names=None, workers: int | None = None,
              record: bool = True, hygiene_index=None, pipeline: str = "auto") -> Data:
    """Load a folder, ``"tfds:NAME"``, ``(x, y)`` arrays, a tf.data dataset or a dict of splits.

    Args:
        source: see :mod:`tl_kit.data` (folders, split folders, ``"tfds:NAME"``, arrays,
            tf.data, dicts of splits).
        image_size: ``(height, width)`` every image is resized to.
        channels: 3 (RGB) or 1 (grey).
        validation_split, test_split: fractions split off (stratified, seeded) when the
            source has no such split of its own.
        seed: split (and shuffle) seed.
        run_dir: where ``manifest.json`` and the hygiene report go; an existing manifest
            is reused so no image changes side when a run is resumed or repeated.
        num_classes: expected number of classes; a mismatch raises a UserError.
        resize: ``"stretch"``, ``"crop"`` or ``"pad"``.
        class_names: names in label order (arrays/tf.data sources; ignored for folders,
            whose names are the sorted sub-folder names).
        workers: threads for the folder hygiene scan and decoding (default: CPU count).
        record: write the split manifest and hygiene report into ``run_dir`` (training).
            False (evaluation, export) only reads an existing manifest there: nothing in
            ``run_dir`` is created or changed.
        hygiene_index: the hygiene index of folder sources (:mod:`tl_kit.data.hygiene_index`:
            unchanged files are not decoded again by the scan): None for the default place
            (``run_dir``'s own index when it has one, else the user's cache:
            :func:`tl_kit.data.hygiene_index.cache_dir`), a file path, or False for none.
        pipeline: folder sources: ``"auto"`` (in memory when the resized pixels fit in
            :data:`tl_kit.data.CACHE_LIMIT_BYTES`, else streamed), ``"memory"`` (decoded
            once, kept; refused when they exceed the machine's RAM) or ``"stream"``
            (decoded in the tf.data graph each epoch). Other sources are in memory already.

    Returns:
        A :class:`Data`.

    Example:
    ```python
    data = tl_kit.load_data("data/flowers", image_size=(128, 128), run_dir="runs/flowers")
    ```
    """
    size = check_size(image_size)
    if channels not in (1, 3):
        raise UserError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    if resize not in RESIZE_MODES:
        raise UserError(f"`resize` must be one of {RESIZE_MODES}. Received: resize={resize!r}")
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
        raise UserError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    fracs = check_fracs(validation_split, test_split)
    check_pipeline(pipeline)
    kw = dict(size=size, channels=channels, resize=resize, fracs=fracs, seed=int(seed),
              run_dir=run_dir, num_classes=num_classes, class_names=class_names, record=bool(record))
    if isinstance(source, dict):
        if source and all(isinstance(v, (str, os.PathLike)) for v in source.values()):
            return load_split_folders(source, workers=workers, hygiene_index=hygiene_index,
                                      pipeline=pipeline, **kw)
        return _load_dict(source, **kw)
    if is_tf_dataset(source):
        return _load_arrays(source, source="tf.data", **kw)
    if isinstance(source, (tuple, list)) and len(source) == 2 and not isinstance(source[0], str):
        return _load_arrays(tuple(source), source="arrays", **kw)
    if isinstance(source, str) and source.startswith("tfds:"):
        return _load_tfds(source, **kw)
    if isinstance(source, (str, os.PathLike)):
        root = as_path(os.fspath(source))
        split_dirs = split_subfolders(root)
        if split_dirs:  # photos/train/<class>, photos/val/<class>: the user's own split
            return load_split_folders(split_dirs, workers=workers, hygiene_index=hygiene_index,
                                      pipeline=pipeline, **kw)
        return load_folder(root, workers=workers, hygiene_index=hygiene_index, pipeline=pipeline, **kw)
    raise UserError(
        "`source` must be a folder path, 'tfds:NAME', (x, y) arrays, a tf.data.Dataset or a dict "
        f"of splits. Received: source={type(source).__name__}")


def check_size(image_size) -> tuple[int, int]:
    """``(height, width)`` from an int or a pair; a UserError otherwise."""
    if isinstance(image_size, (int, np.integer)):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in tuple(image_size)[:2])
    except (TypeError, ValueError):
        raise UserError(f"`image_size` must be (height, width). Received: image_size={image_size!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"`image_size` must be positive. Received: image_size={image_size!r}")
    return h, w


def _load_arrays(src, *, size, channels, resize, fracs, seed, run_dir, num_classes, class_names,
                 source: str, record: bool = True) -> Data:
    x, y, k = to_xy(src, size, channels, resize, source)
    names = resolve_classes(y, k, num_classes, class_names, source)
    idx = index_split(y, fracs, seed, names, run_dir, source, record=record)
    splits = {s: Examples(y[i], x=x[i]) for s, i in idx.items() if len(i)}
    info = make_info(names, channels, source, {s: v.labels for s, v in splits.items()})
    return Data(info, size, splits, resize=resize, run_dir=_str(run_dir), seed=seed)


def _load_dict(src: dict, *, size, channels, resize, fracs, seed, run_dir, num_classes,
               class_names, source: str = "dict", record: bool = True) -> Data:
    parts = {}
    for key, val in src.items():
        parts[split_key(key, parts, src)] = to_xy(val, size, channels, resize, f"{source}[{key!r}]")
    if "train" not in parts:
        raise UserError(f"A dict of splits needs a 'train' entry. Received: keys={list(src)!r}")
    ks = {p[2] for p in parts.values() if p[2] is not None}
    if len(ks) > 1:
        raise UserError(f"One-hot labels disagree on the number of classes across splits: {sorted(ks)}")
    y_all = np.concatenate([p[1] for p in parts.values()])
    names = resolve_classes(y_all, ks.pop() if ks else None, num_classes, class_names, source)
    splits = {s: Examples(p[1], x=p[0]) for s, p in parts.items()}
    carve_missing(splits, fracs, seed, names, run_dir, source, record)
    info = make_info(names, channels, source, {s: v.labels for s, v in splits.items()})
    return Data(info, size, splits, resize=resize, run_dir=_str(run_dir), seed=seed)


def _load_tfds(source: str, *, class_names=None, **kw) -> Data:
    """``"tfds:NAME[/CONFIG][:VERSION]"`` via ``tfds.load(as_supervised=True)``.

    Its ``train``/``validation``/``test`` splits are used as they are; a missing
    validation (or test) split is carved from train with the requested fractions.
    """
    import tensorflow_datasets as tfds

    name = source[len("tfds:"):].strip()
    if not name:
        raise UserError(f"Give a dataset name after 'tfds:'. Received: source={source!r}")
    data_dir = os.environ.get("TFDS_DATA_DIR")
    try:
        splits, info = tfds.load(name, as_supervised=True, with_info=True, data_dir=data_dir)
        if not splits:  # split list unknown (no metadata, e.g. tfds.testing.mock_data): ask by name
            for cand in ("train", "validation", "test"):
                try:
                    splits[cand] = tfds.load(name, split=cand, as_supervised=True, data_dir=data_dir)
                except Exception:  # noqa: BLE001 - that split does not exist
                    continue
    except Exception as e:  # DatasetNotFoundError, download/network errors
        raise UserError(
            f"TensorFlow Datasets could not load {name!r}: {e}. The first load downloads the "
            "data (internet needed) into ~/tensorflow_datasets or $TFDS_DATA_DIR. "
            f"Received: source={source!r}") from e
    parts = {}
    for key, ds in splits.items():
        s = split_name(key)
        if s is not None and s not in parts:
            parts[s] = ds
    if "train" not in parts:
        raise UserError(f"{name!r} has no 'train' split (it has {sorted(splits)}). Received: source={source!r}")
    if class_names is None:
        label = info.features[info.supervised_keys[1]] if info.supervised_keys else None
        names = getattr(label, "names", None)
        class_names = list(names) if names else None
    return _load_dict(parts, class_names=class_names, source=source, **kw)


def _str(p) -> str | None:
    return None if p is None else str(p)
