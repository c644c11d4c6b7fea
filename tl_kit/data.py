"""Data loading: folders, TensorFlow Datasets names, arrays and tf.data, into tf.data pipelines.

``load_data(source, ...)`` returns a :class:`Data`: a :class:`DatasetInfo` (class names,
counts, split, class weights, skipped files) plus ``Data.dataset(split, ...)`` pipelines
that yield ``(images, labels)`` batches: float32 raw pixels in ``[0, 255]`` of shape
``(B, H, W, C)`` and one-hot float32 labels ``(B, K)`` (the convention in CONTRACTS.md).

Sources
    * a folder with one sub-folder per class (images anywhere below a class folder belong
      to it; JPEG, PNG, BMP, GIF and WebP, extension in any case); or a folder whose
      sub-folders are ``train`` / ``val`` (``validation``) / ``test``, each with one
      sub-folder per class: that split is used as it is;
    * ``"tfds:NAME"`` (``tensorflow_datasets.load``; downloads happen on the user's machine);
    * ``(x, y)`` arrays, ``y`` integer labels or one-hot;
    * a ``tf.data.Dataset`` of ``(image, label)`` (batched or not);
    * a dict of explicit splits ``{"train": ..., "val": ..., "test": ...}`` of the above
      (folders included: ``{"train": "photos/train", "val": "photos/val"}``).

Decoding strategy (folders)
    Every file is decoded once during the hygiene scan, in parallel threads, by
    :mod:`tl_kit.decode`: the one decoder and resize that ``evaluate``, ``predict`` and the
    SavedModel's ``serving_default`` signature also use, so the same bytes give the same
    pixels in training and serving (TensorFlow's ``decode_jpeg`` with the accurate DCT,
    ``decode_image`` for PNG/GIF/BMP/WebP, bilinear antialiased resize rounded to uint8).
    Files are read by content, not by extension, so a PNG named ``.jpg`` is read correctly.
    Files TensorFlow would show differently (EXIF-rotated, transparent, CMYK, 16-bit,
    palette BMP) or cannot decode are decoded with Pillow and recorded as such
    (``HygieneRecord.decoder == "pil"``); see :mod:`tl_kit.decode` for what serving does
    with them. Files that fail to decode fully (corrupt, truncated, not an image) are
    skipped and listed, so training never meets them mid-epoch. With a hygiene index
    (:mod:`tl_kit.hygiene_index`: in ``run_dir``, or ``$TL_KIT_CACHE_DIR``), a file whose
    size and mtime did not change keeps its verdict without being decoded again, and the
    in-memory path's pixels are read back from beside the index when nothing changed. Mode conversion: grey,
    palette, CMYK and 16-bit become RGB (or ``L`` for ``channels=1``); images with
    transparency (RGBA, LA, palette with a transparent colour) are composited on a WHITE
    background, since transparent regions in photos/icons are meant as background, not black.

    When the resized uint8 images of the dataset fit in the memory budget
    (:data:`CACHE_LIMIT_BYTES`, default ``min(2 GiB, 25% of RAM)``), the pixels decoded by
    the scan are kept as a uint8 cache and the pipeline reads from memory (decode once,
    never again: the cached path). Otherwise the scan keeps only the verdicts and the
    pipeline decodes the known-good files again inside the tf.data graph with the same TF
    ops (``num_parallel_calls=AUTOTUNE``; the few Pillow files through
    ``tf.numpy_function``): the streaming path. A file that became unreadable since the
    scan is dropped from the epoch with a warning (``ignore_errors``), never a crash. Both paths then shuffle,
    batch, cast to float32, one-hot the labels, augment (training only) and prefetch
    (``AUTOTUNE``).

Resize (``resize=``): ``"stretch"`` (ignore aspect ratio), ``"crop"`` (aspect-preserving
resize so the shorter side fits, then centre crop) or ``"pad"`` (aspect-preserving resize so
the longer side fits, then pad with black).

Split and manifest
    The split is stratified per class with a seeded generator: each class is shuffled and
    ``round(n * validation_split)`` (at least 1) images go to val, likewise for test, the
    rest to train, so every class appears in every split (a class too small for that
    raises a :class:`~tl_kit.errors.UserError` naming its folder). With ``run_dir`` the
    split is written to ``run_dir/manifest.json`` (relative file paths per split) and an
    existing manifest is reused, so no image changes side when a run is resumed or
    repeated. Files listed in the manifest that vanished (or now fail hygiene) are reported
    in ``info.skipped``; files added since are assigned to a split by a stable hash of
    ``(seed, relative path)`` with the same fractions (so they are assigned the same way on
    every repeat and never move an older file) and the manifest is updated. With
    ``record=False`` (evaluation, export) an existing manifest is only read: nothing in
    ``run_dir`` is written or changed. For arrays,
    tf.data and tfds sources the manifest stores indices and is reused when the number of
    examples and labels is unchanged.

The hygiene report (one row per file: status, reason, conversions, decoder) is saved as
``run_dir/hygiene.csv`` and ``run_dir/hygiene.json`` (``record=True`` only); :func:`hygiene_table` formats it.

Example:
```python
data = load_data("data/flowers", image_size=(160, 160), validation_split=0.2, run_dir="runs/f")
train = data.dataset("train", batch_size=32, training=True, augment="standard")
print(data.info.class_names, data.info.class_weights)
```
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tl_kit import decode as _dec
from tl_kit._io import write_json_atomic
from tl_kit.errors import UserError

__all__ = [
    "CACHE_LIMIT_BYTES",
    "IMAGE_EXTENSIONS",
    "RESIZE_MODES",
    "SPLITS",
    "Data",
    "DatasetInfo",
    "HygieneRecord",
    "decode_image_file",
    "hygiene_table",
    "load_data",
    "shard_indices",
]

SPLITS = ("train", "val", "test")
RESIZE_MODES = ("stretch", "crop", "pad")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp")
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


def _memory_budget() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(min(2 << 30, total // 4))


#: Largest uint8 image cache (bytes) kept in memory; above it folders stream from disk.
CACHE_LIMIT_BYTES: int = _memory_budget()


# === Info ===


@dataclass
class DatasetInfo:
    """What was loaded: class names (in label order), counts, split, class weights, skips."""

    class_names: list[str]
    num_classes: int
    counts: dict[str, int]
    split_counts: dict[str, dict[str, int]]
    class_weights: dict[int, float]
    channels: int
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: folders: "memory" (decoded once into a uint8 cache) or "stream" (decoded in the
    #: tf.data graph each epoch), with the reason; "" for other sources
    pipeline: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_weights"] = {str(k): float(v) for k, v in self.class_weights.items()}
        d["skipped"] = [list(s) for s in self.skipped]
        return d

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.num_classes} classes, {sum(self.counts.values())} images"]
        width = max([len(c) for c in self.class_names] + [5])
        splits = [s for s in SPLITS if s in self.split_counts]
        lines.append(f"  {'class':<{width}} " + " ".join(f"{s:>6}" for s in splits) + "  weight")
        for i, c in enumerate(self.class_names):
            row = " ".join(f"{self.split_counts[s].get(c, 0):>6}" for s in splits)
            lines.append(f"  {c:<{width}} {row}  {self.class_weights.get(i, 1.0):.3f}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} file(s); see hygiene report")
        if self.pipeline:
            lines.append(f"  pipeline: {self.pipeline}")
        return "\n".join(lines)


@dataclass
class HygieneRecord:
    """One row of the hygiene report."""

    path: str
    label: str
    status: str  # "ok" | "skipped"
    reason: str = ""  # why skipped, or the conversions applied ("CMYK->RGB; exif rotate")
    decoder: str = ""  # "tf" | "pil" (tl_kit.decode) for files read, "" for skipped ones


def hygiene_table(records: list[HygieneRecord], *, only_problems: bool = True) -> str:
    """Format a hygiene report as a plain-text table (skipped and converted files)."""
    rows = [r for r in records if not only_problems or r.status != "ok" or r.reason]
    n_skip = sum(r.status == "skipped" for r in records)
    n_conv = sum(r.status == "ok" and bool(r.reason) for r in records)
    head = f"hygiene: {len(records)} files, {n_skip} skipped, {n_conv} converted"
    if not rows:
        return head
    w = min(max(len(r.path) for r in rows), 70)
    lines = [head, f"{'status':<8} {'file':<{w}} reason"]
    for r in rows:
        p = r.path if len(r.path) <= w else "..." + r.path[-(w - 3):]
        lines.append(f"{r.status:<8} {p:<{w}} {r.reason}")
    return "\n".join(lines)


# === Data ===


class _Split:
    """One split's examples: a uint8/float32 array in memory, or file paths to stream."""

    def __init__(self, labels: np.ndarray, x: np.ndarray | None = None,
                 paths: list[str] | None = None, pil: np.ndarray | None = None):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.x = x
        self.paths = paths
        # per path: decoded with Pillow (tl_kit.decode.needs_pil) instead of TF ops
        self.pil = np.asarray(pil, bool) if pil is not None else (
            np.zeros(len(paths), bool) if paths is not None else None)

    def take(self, ii) -> _Split:
        """The examples at indices ``ii``."""
        ii = np.asarray(ii, np.int64)
        return _Split(self.labels[ii], x=self.x[ii] if self.x is not None else None,
                      paths=[self.paths[i] for i in ii] if self.paths is not None else None,
                      pil=self.pil[ii] if self.pil is not None else None)

    def every(self, start: int, step: int) -> _Split:
        """Every ``step``-th example from ``start`` (images as a strided view, not a copy)."""
        return _Split(self.labels[start::step], x=self.x[start::step] if self.x is not None else None,
                      paths=self.paths[start::step] if self.paths is not None else None,
                      pil=self.pil[start::step] if self.pil is not None else None)

    def __len__(self) -> int:
        return len(self.labels)


class Data:
    """Loaded data: ``info`` plus ``dataset(split)`` pipelines and ``arrays(split)``.

    Example:
    ```python
    data = load_data((x, y), image_size=(32, 32))
    ds = data.dataset("train", batch_size=16, training=True, augment="light")
    ```
    """

    def __init__(self, info: DatasetInfo, image_size: tuple[int, int], splits: dict[str, _Split],
                 *, resize: str = "stretch", hygiene: list[HygieneRecord] | None = None,
                 run_dir: str | None = None, seed: int = 0):
        self.info = info
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.resize = resize
        self.hygiene = hygiene or []
        self.run_dir = run_dir
        self.seed = seed
        self._splits = splits

    def __repr__(self) -> str:
        sizes = {s: len(v) for s, v in self._splits.items()}
        return (f"Data(source={self.info.source!r}, classes={self.info.num_classes}, "
                f"image_size={self.image_size}, splits={sizes})")

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def has(self, split: str) -> bool:
        """Whether ``split`` ("train" | "val" | "test") holds any example."""
        s = _SPLIT_ALIASES.get(split, split)
        return s in self._splits and len(self._splits[s]) > 0

    def size(self, split: str) -> int:
        """Number of examples in ``split`` (0 when absent)."""
        s = _SPLIT_ALIASES.get(split, split)
        return len(self._splits[s]) if s in self._splits else 0

    def _get(self, split: str) -> _Split:
        s = _SPLIT_ALIASES.get(split)
        if s is None:
            raise UserError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        if not self.has(s):
            have = [k for k in SPLITS if self.has(k)]
            raise UserError(f"This data has no {s!r} split (it has {have}). Received: split={split!r}")
        return self._splits[s]

    def paths(self, split: str) -> list[str] | None:
        """File paths of ``split`` in label order of ``arrays``; None for non-folder data."""
        sp = self._get(split)
        return list(sp.paths) if sp.paths is not None else None

    def labels(self, split: str) -> np.ndarray:
        """Integer labels ``(N,)`` of ``split`` (no decoding)."""
        return self._get(split).labels.copy()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``: float32 images ``(N, H, W, C)`` in [0, 255] and int labels ``(N,)``."""
        sp = self._get(split)
        if sp.x is not None:
            return sp.x.astype(np.float32), sp.labels.copy()
        x = _decode_many(sp.paths, self.image_size, self.info.channels, self.resize)
        return x.astype(np.float32), sp.labels.copy()

    def dataset(self, split: str, *, batch_size: int = 32, training: bool = False,
                augment: str | list | None = None, backend: str = "tf",
                shuffle: bool | None = None, repeat: bool = False,
                drop_remainder: bool = False, seed: int | None = None,
                shard: tuple[int, int] | str | None = None, deterministic: bool | None = None):
        """A ``tf.data.Dataset`` of ``(images float32 (B,H,W,C), labels one-hot (B,K))``.

        Augmentation (``tl_kit.augment`` policy or op list) runs only when ``training`` is
        True; ``shuffle`` defaults to ``training``.

        ``shard``: ``(num_workers, worker_index)`` reads only that worker's files (file-level
        sharding, before any decode: :func:`shard_indices`); ``"auto"`` takes them from a
        ``MultiWorkerMirroredStrategy`` in scope (no sharding otherwise); None (default): no
        sharding. TensorFlow's own auto-sharding is then turned off, so no worker reads
        another's files; distribute such a dataset with sharding ``"off"`` and give every
        worker the same number of steps (shards differ by at most one file). ``deterministic=True`` keeps the element order fixed for a seed
        (parallel maps in order); the default is deterministic, so a seed reproduces a run;
        ``deterministic=False`` trades that for throughput.
        """
        import tensorflow as tf

        sp = self._get(split)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        shuffle = training if shuffle is None else shuffle
        seed = self.seed if seed is None else seed
        k = self.info.num_classes
        h, w = self.image_size
        c = self.info.channels
        autotune = tf.data.AUTOTUNE
        shards = _worker_shard() if shard == "auto" else shard
        if shards is not None:
            shard_indices(len(sp), *shards)  # checks the arguments
            sp = sp.every(shards[1], shards[0])  # == sp.take(shard_indices(...)), as views
        order = True if deterministic is None else bool(deterministic)
        if sp.x is not None:
            ds = _from_memory(sp, batch_size, shuffle, seed, repeat, drop_remainder)
        else:
            ds = _stream(sp, self.image_size, c, self.resize, shuffle, seed, order)
            if repeat:
                ds = ds.repeat()
            ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=autotune)

        def _to_float(x, y):
            return tf.cast(x, tf.float32), tf.one_hot(tf.cast(y, tf.int32), k, dtype=tf.float32)

        ds = ds.map(_to_float, num_parallel_calls=autotune)
        if training and augment is not None and augment != "none":
            from tl_kit.augment import build_augmenter

            fn = build_augmenter(augment, image_size=self.image_size, backend=backend, seed=seed)
            ds = ds.map(fn, num_parallel_calls=autotune, deterministic=order)
        options = tf.data.Options()
        options.deterministic = order
        if shards is not None:  # already one worker's files: TF must not shard again
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(autotune)


def shard_indices(n: int, num_shards: int, index: int) -> np.ndarray:
    """Which of ``n`` examples worker ``index`` of ``num_shards`` reads: every
    ``num_shards``-th from ``index`` (disjoint, together all of them, sizes within one)."""
    if not (isinstance(num_shards, (int, np.integer)) and num_shards >= 1
            and isinstance(index, (int, np.integer)) and 0 <= index < num_shards):
        raise UserError(f"`shard` must be (num_workers >= 1, 0 <= worker_index < num_workers). "
                        f"Received: shard={(num_shards, index)!r}")
    if n < num_shards:
        raise UserError(f"{n} example(s) cannot be sharded over {num_shards} workers (each needs "
                        f"at least one). Received: shard={(num_shards, index)!r}")
    return np.arange(index, n, num_shards, dtype=np.int64)


def _worker_shard() -> tuple[int, int] | None:
    """``(num_workers, worker_index)`` under a MultiWorkerMirroredStrategy with more than one
    worker, else None."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    workers = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return (workers, int(resolver.task_id or 0)) if workers > 1 else None


def _from_memory(sp: _Split, batch_size: int, shuffle: bool, seed: int, repeat: bool,
                 drop_remainder: bool):
    """In-memory path: batches of ``(images, labels)`` gathered from ``sp.x`` by shuffled
    indices (the array is read in place: no tensor copy of it, no shuffle buffer of images)."""
    import tensorflow as tf

    x, labels = sp.x, sp.labels
    n = len(sp)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    dtype = tf.as_dtype(x.dtype)

    def gather(i):
        i = np.asarray(i, np.int64)
        if len(i) > 1 and np.all(np.diff(i) == 1):
            return x[i[0]:i[-1] + 1], labels[i[0]:i[-1] + 1]
        return x[i], labels[i]

    def _map(i):
        xb, yb = tf.numpy_function(gather, [i], (dtype, tf.int64), stateful=False)
        xb = tf.ensure_shape(xb, (None, *x.shape[1:]))
        return xb, tf.ensure_shape(yb, (None,))

    return ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)


def _stream(sp: _Split, size, channels: int, mode: str, shuffle: bool, seed: int,
            deterministic: bool | None = None):
    """Streaming path: (uint8 image, label) decoded inside the tf.data graph by
    :func:`tl_kit.decode.load_path`; Pillow files (``sp.pil``) through ``numpy_function``.
    A file broken since the scan is dropped with a warning (never a crash mid-epoch)."""
    import tensorflow as tf

    h, w = size
    n = len(sp)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(sp.paths), sp.pil, sp.labels))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    any_pil = bool(sp.pil.any())

    def _pil(p):
        return _dec.decode_file(p.decode() if isinstance(p, bytes) else str(p), size, channels, mode)[0]

    def _map(p, use_pil, y):
        def graph():
            return _dec.load_path(p, size, channels, mode)

        if any_pil:
            img = tf.cond(use_pil, lambda: tf.numpy_function(_pil, [p], tf.uint8, stateful=False),
                          graph)
        else:
            img = graph()
        img = tf.ensure_shape(img, (h, w, channels))
        return img, y

    order = True if deterministic is None else deterministic
    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=order)
    return ds.ignore_errors(log_warning=True)


# === Array helpers ===


def _resize_array(x: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a batch (N, h, w, C) to ``size`` with ``mode``; keeps uint8 as uint8."""
    import tensorflow as tf

    if x.shape[1:3] == tuple(size):
        return x
    out = []
    for i in range(0, len(x), 256):
        out.append(_tf_resize(tf.convert_to_tensor(x[i:i + 256]), size, mode).numpy())
    r = np.concatenate(out) if out else np.zeros((0, *size, x.shape[-1]), np.float32)
    if x.dtype == np.uint8:
        return np.clip(np.round(r), 0, 255).astype(np.uint8)
    return r.astype(np.float32)


def _tf_resize(img, size: tuple[int, int], mode: str):
    """TF resize of one image (h, w, C) or a batch, float32 result (tl_kit.decode's resize)."""
    return _dec.resize_float(img, size, mode)


def _convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, C) with C in 1, 3, 4 -> ``channels`` (alpha dropped, grey = ITU-R 601-2)."""
    c = x.shape[-1]
    if c == 4:
        x = x[..., :3]
        c = 3
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if c == 3 and channels == 1:
        g = x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        g = g[..., None]
        return np.clip(np.round(g), 0, 255).astype(np.uint8) if x.dtype == np.uint8 else g
    raise UserError(f"Images with {c} channels cannot become {channels}. Received: channels={channels!r}")


def _normalize_images(x, size: tuple[int, int], channels: int, mode: str, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise UserError(
            f"{what} images must have shape (N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, H, W, 4). "
            f"Received: shape={x.shape}"
        )
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{what} images must be numeric. Received: dtype={x.dtype}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if x.size and float(np.nanmax(x)) <= 1.0 and float(np.nanmin(x)) >= 0.0:
            warnings.warn(
                f"{what} images are float with values in [0, 1]; tl_kit expects raw pixels in "
                "[0, 255] (models normalise inside). Multiply by 255 if these are scaled images.",
                stacklevel=3,
            )
    x = _convert_channels(x, channels)
    return _resize_array(x, size, mode)


def _normalize_labels(y, num_classes: int | None, what: str) -> tuple[np.ndarray, int | None]:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:  # one-hot (or soft) labels
        return y.argmax(axis=1).astype(np.int64), y.shape[1]
    if y.ndim != 1:
        raise UserError(f"{what} labels must be integers (N,) or one-hot (N, K). Received: shape={y.shape}")
    if y.size and (np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0)):
        raise UserError(f"{what} labels must be integer class indices. Received: dtype={y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise UserError(f"{what} labels must be >= 0. Received: min label={int(y.min())}")
    return y, None


def _dataset_to_arrays(ds, size: tuple[int, int], channels: int, mode: str, what: str):
    """Materialise a tf.data dataset of (image, label) into resized arrays."""
    import tensorflow as tf

    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise UserError(
            f"{what} tf.data dataset must yield (image, label) pairs. Received: element_spec={spec}"
        )
    img_spec = spec[0]
    if img_spec.shape.rank == 4:
        ds = ds.unbatch()
        img_spec = ds.element_spec[0]
    if img_spec.shape.rank not in (2, 3):
        raise UserError(f"{what} images must be (H, W) or (H, W, C). Received: shape={img_spec.shape}")
    keep_uint8 = img_spec.dtype == tf.uint8

    def _prep(img, lab):
        if img.shape.rank == 2:
            img = img[..., None]
        img = _tf_resize(img, size, mode)
        if keep_uint8:
            img = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
        return img, lab

    ds = ds.map(_prep, num_parallel_calls=tf.data.AUTOTUNE).batch(256).prefetch(2)
    xs, ys = [], []
    for img, lab in ds.as_numpy_iterator():
        xs.append(img)
        ys.append(lab)
    if not xs:
        raise UserError(f"{what} tf.data dataset is empty.")
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    return _convert_channels(x, channels), y


# === Splitting ===


def _split_counts(n: int, fracs: dict[str, float]) -> dict[str, int]:
    out = {}
    for s in ("val", "test"):
        f = fracs.get(s, 0.0)
        out[s] = max(1, int(round(n * f))) if f > 0 else 0
    out["train"] = n - out["val"] - out["test"]
    return out


def _check_fracs(validation_split: float, test_split: float) -> dict[str, float]:
    for name, v in (("validation_split", validation_split), ("test_split", test_split)):
        if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise UserError(f"`{name}` must be a fraction in [0, 1). Received: {name}={v!r}")
    if validation_split + test_split >= 1.0:
        raise UserError(
            "`validation_split + test_split` must leave images for training. "
            f"Received: validation_split={validation_split!r}, test_split={test_split!r}"
        )
    return {"val": float(validation_split), "test": float(test_split)}


def stratified_split(labels: np.ndarray, fracs: dict[str, float], seed: int,
                     class_names: list[str], where: str = "") -> dict[str, np.ndarray]:
    """Indices per split, stratified per class with a seeded generator (sorted per split).

    Raises a UserError naming the class (and ``where``) when a class has too few
    examples to appear in every requested split.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    need = 1 + sum(1 for s in ("val", "test") if fracs.get(s, 0) > 0)
    for k, name in enumerate(class_names):
        idx = np.flatnonzero(labels == k)
        if len(idx) == 0:
            continue
        cnt = _split_counts(len(idx), fracs)
        if cnt["train"] < 1 or len(idx) < need:
            loc = os.path.join(where, name) if where else f"class {name!r}"
            raise UserError(
                f"Class {name!r} has too few images for the split: {len(idx)} image(s), needs at "
                f"least {need} (one per split: validation_split={fracs.get('val', 0)}, "
                f"test_split={fracs.get('test', 0)}). Add images to {loc} or lower the split "
                f"fractions. Received: {loc}={len(idx)} images"
            )
        idx = rng.permutation(idx)
        parts["val"].append(idx[: cnt["val"]])
        parts["test"].append(idx[cnt["val"]: cnt["val"] + cnt["test"]])
        parts["train"].append(idx[cnt["val"] + cnt["test"]:])
    return {s: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for s, v in parts.items()}


def _hash_split(key: str, seed: int, fracs: dict[str, float]) -> str:
    """Stable split for a file added after the manifest was written."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < fracs.get("val", 0):
        return "val"
    if h < fracs.get("val", 0) + fracs.get("test", 0):
        return "test"
    return "train"


def compute_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn "balanced" weights ``n / (k * n_c)`` for classes present; 1.0 otherwise."""
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = {k: 1.0 for k in range(num_classes)}
    if len(labels) and len(present):
        w = compute_class_weight("balanced", classes=present, y=labels)
        for k, v in zip(present, w, strict=True):
            weights[int(k)] = float(v)
    return weights


# === Manifest ===


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"The split manifest {path} cannot be read ({e}); delete it to make a new split. "
            f"Received: manifest={str(path)!r}"
        ) from e




def _index_split(labels: np.ndarray, fracs, seed, class_names, run_dir, source: str,
                 where: str = "", record: bool = True) -> dict[str, np.ndarray]:
    """Split indices for array-like sources, reusing run_dir/manifest.json when it matches
    (written only when ``record``)."""
    fingerprint = hashlib.sha1(np.asarray(labels, np.int64).tobytes()).hexdigest()
    mpath = Path(run_dir) / "manifest.json" if run_dir else None
    if mpath is not None:
        m = _read_json(mpath)
        if m is not None:
            if m.get("kind") == "indices" and m.get("fingerprint") == fingerprint:
                return {s: np.asarray(m["splits"].get(s, []), np.int64) for s in SPLITS}
            if record:
                warnings.warn(
                    f"{mpath} was written for other data (different examples or labels); "
                    "making a new split and overwriting it.", stacklevel=3)
    idx = stratified_split(labels, fracs, seed, class_names, where)
    if mpath is not None and record:
        write_json_atomic(mpath, {
            "version": 1, "kind": "indices", "source": source, "seed": seed,
            "validation_split": fracs["val"], "test_split": fracs["test"],
            "class_names": class_names, "fingerprint": fingerprint, "num_examples": len(labels),
            "splits": {s: [int(i) for i in v] for s, v in idx.items()},
        })
    return idx


# === Class names ===


def _resolve_classes(y_all: np.ndarray, k_onehot: int | None, num_classes, class_names,
                     what: str) -> list[str]:
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(set(class_names)) != len(class_names):
            raise UserError(f"`class_names` must be unique. Received: class_names={class_names!r}")
    k = None
    if k_onehot is not None:
        k = k_onehot
    if class_names is not None:
        if k is not None and k != len(class_names):
            raise UserError(
                f"{what} labels have {k} classes but {len(class_names)} class names were given. "
                f"Received: class_names={class_names!r}")
        k = len(class_names)
    if num_classes is not None:
        if k is not None and k != num_classes:
            raise UserError(
                f"{what} has {k} classes but `num_classes` says {num_classes}. "
                f"Received: num_classes={num_classes!r}")
        k = int(num_classes)
    seen = int(y_all.max()) + 1 if y_all.size else 0
    if k is None:
        k = seen
    if seen > k:
        raise UserError(
            f"{what} labels go up to {seen - 1}, more than the {k} classes declared. "
            f"Received: num_classes={num_classes!r}, max label={seen - 1}")
    if k < 1:
        raise UserError(f"{what} has no labelled examples.")
    return class_names if class_names is not None else [str(i) for i in range(k)]


def _make_info(class_names, channels, source, split_labels: dict[str, np.ndarray],
               skipped=None) -> DatasetInfo:
    k = len(class_names)
    split_counts = {
        s: {c: int(np.sum(lab == i)) for i, c in enumerate(class_names)}
        for s, lab in split_labels.items() if len(lab)
    }
    counts = {c: sum(sc.get(c, 0) for sc in split_counts.values()) for c in class_names}
    train = split_labels.get("train", np.zeros(0, np.int64))
    return DatasetInfo(
        class_names=list(class_names), num_classes=k, counts=counts, split_counts=split_counts,
        class_weights=compute_class_weights(train, k), channels=channels, source=source,
        skipped=list(skipped or []),
    )


# === Loaders: arrays, tf.data, dicts, tfds ===


def _is_tf_dataset(obj) -> bool:
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, tf.data.Dataset)


def _to_xy(src, size, channels, resize, what):
    """(x uint8/float32 resized, y int, k_onehot) from arrays or a tf.data dataset."""
    if _is_tf_dataset(src):
        x, y = _dataset_to_arrays(src, size, channels, resize, what)
    elif isinstance(src, (tuple, list)) and len(src) == 2:
        x = _normalize_images(src[0], size, channels, resize, what)
        y = src[1]
    else:
        raise UserError(
            f"{what} must be (x, y) arrays or a tf.data.Dataset of (image, label). "
            f"Received: {type(src).__name__}")
    y, k = _normalize_labels(y, None, what)
    if len(x) != len(y):
        raise UserError(f"{what} has {len(x)} images but {len(y)} labels. Received: len(y)={len(y)}")
    return x, y, k


def _load_single(src, *, size, channels, resize, fracs, seed, run_dir, num_classes, class_names,
                 source: str, record: bool = True) -> Data:
    x, y, k = _to_xy(src, size, channels, resize, source)
    names = _resolve_classes(y, k, num_classes, class_names, source)
    idx = _index_split(y, fracs, seed, names, run_dir, source, record=record)
    splits = {s: _Split(y[i], x=x[i]) for s, i in idx.items() if len(i)}
    info = _make_info(names, channels, source, {s: v.labels for s, v in splits.items()})
    return Data(info, size, splits, resize=resize, run_dir=_str(run_dir), seed=seed)


def _split_key(key, seen: dict, src: dict) -> str:
    """The split a dict key names ("validation" -> "val"); unknown or repeated is an error."""
    s = _SPLIT_ALIASES.get(str(key))
    if s is None:
        raise UserError(f"Split names must be among {SPLITS}. Received: key={key!r}")
    if s in seen:
        raise UserError(f"Split {s!r} given twice. Received: keys={list(src)!r}")
    return s


def _carve_missing(splits: dict[str, _Split], fracs, seed, names, run_dir, source: str,
                   record: bool = True) -> None:
    """A dict without "val" (or "test") gets it from train when its fraction is > 0
    (stratified, seeded, reusing run_dir/manifest.json)."""
    missing = {s: f for s, f in fracs.items() if f > 0 and s not in splits}
    if not missing:
        return
    tr = splits["train"]
    idx = _index_split(tr.labels, {s: missing.get(s, 0.0) for s in ("val", "test")}, seed, names,
                       run_dir, source, record=record)
    for s in ["train", *missing]:
        splits[s] = tr.take(idx[s])


def _load_dict(src: dict, *, size, channels, resize, fracs, seed, run_dir, num_classes,
               class_names, source: str = "dict", record: bool = True) -> Data:
    parts = {}
    for key, val in src.items():
        parts[_split_key(key, parts, src)] = _to_xy(val, size, channels, resize, f"{source}[{key!r}]")
    if "train" not in parts:
        raise UserError(f"A dict of splits needs a 'train' entry. Received: keys={list(src)!r}")
    ks = {p[2] for p in parts.values() if p[2] is not None}
    if len(ks) > 1:
        raise UserError(f"One-hot labels disagree on the number of classes across splits: {sorted(ks)}")
    y_all = np.concatenate([p[1] for p in parts.values()])
    names = _resolve_classes(y_all, ks.pop() if ks else None, num_classes, class_names, source)
    splits = {s: _Split(p[1], x=p[0]) for s, p in parts.items()}
    _carve_missing(splits, fracs, seed, names, run_dir, source, record)
    info = _make_info(names, channels, source, {s: v.labels for s, v in splits.items()})
    return Data(info, size, splits, resize=resize, run_dir=_str(run_dir), seed=seed)


def _open_index(root: Path, channels: int, run_dir, record: bool, explicit):
    """The hygiene index a load of ``root`` uses (:mod:`tl_kit.hygiene_index`), or None."""
    from tl_kit.hygiene_index import HygieneIndex, index_location

    where = index_location(root, channels, run_dir=run_dir, explicit=explicit)
    if where is None:
        return None
    in_run = run_dir is not None and explicit in (None, True)
    return HygieneIndex(where, root, channels, writable=record or not in_run)


def _load_split_folders(src: dict, *, size, channels, resize, fracs, seed, run_dir, num_classes,
                        class_names, workers=None, record: bool = True, hygiene_index=None) -> Data:
    """``{"train": folder, "val": folder, "test": folder}``: splits made by the user, one
    class folder layout each. Every folder gets the same hygiene scan; the class names are
    the train folder's, and another split may hold fewer classes but no new one. A missing
    "val" (or "test") is carved from train with the requested fraction, stratified."""
    zero = {k: 0.0 for k in fracs}
    loaded: dict[str, Data] = {}
    for key, folder in src.items():
        s = _split_key(key, loaded, src)
        loaded[s] = _load_folder(_as_path(os.fspath(folder)), size=size, channels=channels, resize=resize, fracs=zero,
                                 seed=seed, run_dir=None, num_classes=num_classes if s == "train" else None,
                                 workers=workers, record=record, hygiene_index=hygiene_index,
                                 index_run_dir=run_dir)
    if "train" not in loaded:
        raise UserError(f"A dict of split folders needs a 'train' entry. Received: keys={list(src)!r}")
    names = loaded["train"].class_names
    if class_names is not None and list(class_names) != list(names):
        raise UserError(f"class_names {list(class_names)} differ from the class folders of "
                        f"{src['train']} ({names}). Received: class_names={list(class_names)!r}")
    splits: dict[str, _Split] = {}
    records: list[HygieneRecord] = []
    skipped: list = []
    for s, d in loaded.items():
        part = d._get("train")
        extra = [c for c in d.class_names if c not in names]
        if extra:
            raise UserError(f"The {s} folder {_src_of(src, s)} has class folder(s) {extra} that the train "
                            f"folder {_src_of(src, 'train')} does not have. Received: {extra!r}")
        remap = np.array([names.index(c) for c in d.class_names], np.int64)
        splits[s] = _Split(remap[part.labels], x=part.x, paths=part.paths, pil=part.pil)
        records += d.hygiene
        skipped += d.info.skipped
    _carve_missing(splits, fracs, seed, names, run_dir, "train folder", record)
    if run_dir is not None and record:
        _write_hygiene(run_dir, records, _as_path(_src_of(src, "train")))
    source = ", ".join(f"{k}={_src_of(src, k)}" for k in loaded)
    info = _make_info(names, channels, source, {k: v.labels for k, v in splits.items()}, skipped)
    return Data(info, size, splits, resize=resize, hygiene=records, run_dir=_str(run_dir), seed=seed)


def _split_subfolders(root: Path) -> dict[str, str] | None:
    """``{"train": root/train, ...}`` when ``root``'s sub-folders are all split names
    (train, val/validation/valid, test), one of them train, each holding class folders;
    otherwise None (then the sub-folders are the classes)."""
    if not root.is_dir():
        return None
    subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not subs or any(p.name.lower() not in _SPLIT_ALIASES for p in subs):
        return None
    if "train" not in {_SPLIT_ALIASES[p.name.lower()] for p in subs}:
        return None
    if not all(any(c.is_dir() for c in p.iterdir()) for p in subs):
        return None
    return {p.name.lower(): str(p) for p in sorted(subs)}


def _src_of(src: dict, split: str) -> str:
    """The folder given for ``split`` (by any of its aliases)."""
    for k, v in src.items():
        if _SPLIT_ALIASES.get(str(k)) == split:
            return os.fspath(v)
    return "?"


def _str(p) -> str | None:
    return None if p is None else str(p)


# === Public entry point ===


def load_data(source, *, image_size=(224, 224), channels: int = 3, validation_split: float = 0.2,
              test_split: float = 0.0, seed: int = 0, run_dir=None, num_classes: int | None = None,
              resize: str = "stretch", class_names=None, workers: int | None = None,
              record: bool = True, hygiene_index=None) -> Data:
    """Load a folder, ``"tfds:NAME"``, ``(x, y)`` arrays, a tf.data dataset or a dict of splits.

    Args:
        source: see the module docstring.
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
        hygiene_index: the hygiene index of folder sources (:mod:`tl_kit.hygiene_index`:
            unchanged files are not decoded again by the scan): None for the default place
            (``run_dir``, else ``$TL_KIT_CACHE_DIR``), a file path, or False for none.

    Returns:
        A :class:`Data`.

    Example:
    ```python
    data = tl_kit.load_data("data/flowers", image_size=(128, 128), run_dir="runs/flowers")
    ```
    """
    size = _check_size(image_size)
    if channels not in (1, 3):
        raise UserError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    if resize not in RESIZE_MODES:
        raise UserError(f"`resize` must be one of {RESIZE_MODES}. Received: resize={resize!r}")
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
        raise UserError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    fracs = _check_fracs(validation_split, test_split)
    kw = dict(size=size, channels=channels, resize=resize, fracs=fracs, seed=int(seed),
              run_dir=run_dir, num_classes=num_classes, class_names=class_names, record=bool(record))
    if isinstance(source, dict):
        if source and all(isinstance(v, (str, os.PathLike)) for v in source.values()):
            return _load_split_folders(source, workers=workers, hygiene_index=hygiene_index, **kw)
        return _load_dict(source, **kw)
    if _is_tf_dataset(source):
        return _load_single(source, source="tf.data", **kw)
    if isinstance(source, (tuple, list)) and len(source) == 2 and not isinstance(source[0], str):
        return _load_single(tuple(source), source="arrays", **kw)
    if isinstance(source, str) and source.startswith("tfds:"):
        return _load_tfds(source, **kw)
    if isinstance(source, (str, os.PathLike)):
        root = _as_path(os.fspath(source))
        split_dirs = _split_subfolders(root)
        if split_dirs:  # photos/train/<class>, photos/val/<class>: the user's own split
            return _load_split_folders(split_dirs, workers=workers, hygiene_index=hygiene_index, **kw)
        return _load_folder(root, workers=workers, hygiene_index=hygiene_index, **kw)
    raise UserError(
        "`source` must be a folder path, 'tfds:NAME', (x, y) arrays, a tf.data.Dataset or a dict "
        f"of splits. Received: source={type(source).__name__}")


def _check_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in tuple(image_size)[:2])
    except (TypeError, ValueError):
        raise UserError(f"`image_size` must be (height, width). Received: image_size={image_size!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"`image_size` must be positive. Received: image_size={image_size!r}")
    return h, w


# === TensorFlow Datasets ===


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
        s = _SPLIT_ALIASES.get(str(key))
        if s is not None and s not in parts:
            parts[s] = ds
    if "train" not in parts:
        raise UserError(f"{name!r} has no 'train' split (it has {sorted(splits)}). Received: source={source!r}")
    if class_names is None:
        label = info.features[info.supervised_keys[1]] if info.supervised_keys else None
        names = getattr(label, "names", None)
        class_names = list(names) if names else None
    return _load_dict(parts, class_names=class_names, source=source, **kw)


# === Folders: decoding and hygiene ===

def decode_image_file(path, size, channels: int = 3, resize: str = "stretch") -> tuple[np.ndarray, str]:
    """Decode one file by content the way training does -> ``(uint8 (H, W, C), notes)``.

    Through :func:`tl_kit.decode.decode_file` (TF ops; Pillow for EXIF-rotated,
    transparent, CMYK, 16-bit files): EXIF orientation applied, grey/palette/CMYK/RGBA/16-bit
    converted to RGB (or L), transparency composited on white, resized with ``resize``.
    Raises on corrupt, truncated or non-image files (the hygiene scan turns that into a skip).
    """
    arr, notes, _ = _dec.decode_file(path, size, channels, resize)
    return arr, notes


def _decode_for_pipeline(p, size, channels, mode) -> np.ndarray:
    """Decode one known-good file; a file broken since the scan gives black (with a warning)."""
    path = p.decode() if isinstance(p, bytes) else str(p)
    try:
        return _dec.decode_file(path, size, channels, mode)[0]
    except Exception as e:  # never crash mid-way
        warnings.warn(f"{path} could not be decoded ({e}); a black image stands in.", stacklevel=1)
        return np.zeros((size[0], size[1], channels), np.uint8)


def _workers(workers: int | None) -> int:
    return max(1, int(workers or min(8, (os.cpu_count() or 2) * 2)))


def _decode_many(paths, size, channels, mode, workers=None) -> np.ndarray:
    out = np.zeros((len(paths), size[0], size[1], channels), np.uint8)

    def one(i):
        out[i] = _decode_for_pipeline(paths[i], size, channels, mode)

    with ThreadPoolExecutor(_workers(workers)) as ex:
        list(ex.map(one, range(len(paths))))
    return out


class _URIPath:
    """The few ``pathlib.Path`` operations a folder load uses, for a ``tf.io.gfile`` URI
    (``gs://bucket/photos``, ``ram://photos``, the schemes tensorflow-io adds): listing
    through ``tf.io.gfile``; file bytes are read by :mod:`tl_kit.decode` (``GFile``) and
    ``tf.io.read_file`` (streaming)."""

    def __init__(self, uri: str):
        self._s = uri.rstrip("/") if not uri.endswith("://") else uri

    def __str__(self) -> str:
        return self._s

    __fspath__ = __str__

    def __repr__(self) -> str:
        return f"_URIPath({self._s!r})"

    def __truediv__(self, other) -> _URIPath:
        return _URIPath(f"{self._s}/{other}")

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._s)

    def __lt__(self, other) -> bool:
        return str(self) < str(other)

    @property
    def name(self) -> str:
        return self._s.rsplit("/", 1)[-1]

    def expanduser(self) -> _URIPath:
        return self

    def resolve(self) -> _URIPath:
        return self

    def exists(self) -> bool:
        import tensorflow as tf

        return tf.io.gfile.exists(self._s)

    def is_dir(self) -> bool:
        import tensorflow as tf

        return tf.io.gfile.isdir(self._s)

    def is_file(self) -> bool:
        return self.exists() and not self.is_dir()

    def iterdir(self):
        import tensorflow as tf

        for name in tf.io.gfile.listdir(self._s):
            yield self / name.rstrip("/")


def _is_uri(source) -> bool:
    return isinstance(source, str) and "://" in source


def _as_path(source):
    """``Path`` for local folders, :class:`_URIPath` for ``tf.io.gfile`` URIs."""
    return _URIPath(source) if _is_uri(source) else Path(source)


def _walk(folder):
    """``(dirpath, dirnames, filenames)`` below ``folder`` (os.walk, or tf.io.gfile.walk)."""
    if isinstance(folder, _URIPath):
        import tensorflow as tf

        for dirpath, dirnames, filenames in tf.io.gfile.walk(str(folder)):
            dirnames[:] = sorted(d.rstrip("/") for d in dirnames if not d.startswith("."))
            yield dirpath.rstrip("/"), dirnames, filenames
        return
    yield from os.walk(folder, followlinks=True)


def _join(dirpath: str, name: str) -> str:
    return f"{dirpath}/{name}" if "://" in dirpath else os.path.join(dirpath, name)


def _stat(path: str):
    """``os.stat`` of a local file; for a URI, ``tf.io.gfile.stat`` as (st_size, st_mtime_ns)."""
    if "://" not in path:
        return os.stat(path)
    import types

    import tensorflow as tf

    st = tf.io.gfile.stat(path)
    return types.SimpleNamespace(st_size=int(st.length), st_mtime_ns=int(st.mtime_nsec))


def _list_folder(root: Path) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, str]]]:
    """Class names (sorted sub-folders), (file, label) pairs, and stray files at the root."""
    if not root.exists():
        raise FileNotFoundError(f"Data folder not found: {root}. Received: source={str(root)!r}")
    if not root.is_dir():
        raise UserError(f"The data source must be a folder with one sub-folder per class. "
                        f"Received: source={str(root)!r}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    stray = [(str(p), "not inside a class folder") for p in sorted(root.iterdir())
             if p.is_file() and not p.name.startswith(".")]
    if not classes:
        raise UserError(
            f"{root} has no class sub-folders; put each class's images in their own folder "
            f"({root}/cats/*.jpg, {root}/dogs/*.jpg). Received: source={str(root)!r}")
    files = []
    for k, c in enumerate(classes):
        for dirpath, dirnames, filenames in _walk(root / c):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if not f.startswith("."):
                    files.append((_join(dirpath, f), k))
    return classes, files, stray


def _scan(files: list[tuple[str, int]], classes: list[str], size, channels, resize, keep: bool,
          workers, index=None) -> tuple[list[HygieneRecord], np.ndarray | None]:
    """Verdicts of every file, and (``keep``) its pixels in ONE preallocated uint8 array
    ``(N, H, W, C)`` filled in place (no per-file arrays held twice; rows of skipped files
    stay zero). With a :class:`~tl_kit.hygiene_index.HygieneIndex`, an unchanged file keeps
    its verdict from a stat alone (unless its pixels are needed); only the rest are decoded,
    in parallel threads."""
    n = len(files)
    out = np.zeros((n, size[0], size[1], channels), np.uint8) if keep else None
    records: list[HygieneRecord | None] = [None] * n
    stats: list = [None] * n
    todo: list[int] = []
    known_all = index is not None
    for i, (path, k) in enumerate(files):  # serial: a stat and a dict lookup per file
        if index is not None:
            try:
                stats[i] = _stat(path)
            except Exception:  # noqa: BLE001 - OSError, or tf.errors for a URI
                stats[i] = None
            known = index.lookup(path, stats[i]) if stats[i] is not None else None
            if known is not None:
                records[i] = HygieneRecord(path, classes[k], *known)
                if not keep:
                    continue
            else:
                known_all = False
        todo.append(i)
    if keep and index is not None:  # the in-memory path: pixels saved by the last load?
        key = f"{size[0]}x{size[1]}-{resize}"
        digest = _listing_digest(files, stats)
        if known_all:
            saved = index.load_pixels(key, digest, out.shape)
            if saved is not None:
                return records, saved

    def one(i):
        path, k = files[i]
        records[i] = rec = _check_file(path, classes[k], size, channels, resize, out, i)
        if index is not None and stats[i] is not None:
            index.put(path, stats[i], rec.status, rec.reason, rec.decoder)

    def run(chunk):
        for i in chunk:
            one(i)

    if todo:  # a few hundred files per task: no future per file
        step = max(1, min(256, len(todo) // (4 * _workers(workers)) or 1))
        with ThreadPoolExecutor(_workers(workers)) as ex:
            list(ex.map(run, [todo[j:j + step] for j in range(0, len(todo), step)]))
    if keep and index is not None and all(st is not None for st in stats):
        index.save_pixels(key, digest, out)
    return records, out


def _listing_digest(files: list[tuple[str, int]], stats: list) -> str:
    """One hash of every file's path, label, size and mtime, in listing order."""
    h = hashlib.sha1()
    for (path, k), st in zip(files, stats, strict=True):
        h.update(f"{path}\0{k}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()


def _check_file(path: str, label: str, size, channels, resize, out, i) -> HygieneRecord:
    """Decode one file: its hygiene record; its pixels go to ``out[i]`` when ``out`` is given."""
    try:
        arr, notes, decoder = _dec.decode_file(path, size, channels, resize)
    except Exception as e:
        reason = str(e) or type(e).__name__
        if "cannot identify image file" in reason:
            reason = "not an image (content not recognised)"
        elif "truncated" in reason.lower():
            reason = f"truncated: {reason}"
        else:
            reason = f"corrupt: {type(e).__name__}: {reason}"
        return HygieneRecord(path, label, "skipped", reason)
    if out is not None:
        out[i] = arr
    return HygieneRecord(path, label, "ok", notes, decoder)


def _write_hygiene(run_dir, records: list[HygieneRecord], root: Path, changed: bool = True) -> None:
    """``hygiene.csv`` (one row per file) and ``hygiene.json`` (counts, and the records of the
    files that were skipped, converted or decoded with Pillow). Not rewritten when
    ``changed`` is False (the hygiene index saw no change) and both exist for as many files."""
    d = Path(run_dir)
    if not changed and (d / "hygiene.csv").is_file():
        prev = _read_json_quiet(d / "hygiene.json")
        if prev is not None and prev.get("files") == len(records) and prev.get("source") == str(root):
            return
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "hygiene.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "class", "status", "reason", "decoder"])
        w.writerows((r.path, r.label, r.status, r.reason, r.decoder) for r in records)
    os.replace(tmp, d / "hygiene.csv")
    notable = [r for r in records if r.status != "ok" or r.reason or r.decoder == "pil"]
    summary = {
        "source": str(root), "files": len(records),
        "skipped": sum(r.status == "skipped" for r in records),
        "converted": sum(r.status == "ok" and bool(r.reason) for r in records),
        "decoded_with_pil": sum(r.decoder == "pil" for r in records),
        "records": [{"path": r.path, "label": r.label, "status": r.status, "reason": r.reason,
                     "decoder": r.decoder} for r in notable],
    }
    write_json_atomic(d / "hygiene.json", summary)


def _read_json_quiet(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _folder_split(rels: list[str], labels: np.ndarray, classes: list[str], fracs, seed, run_dir,
                  root: Path, all_rels: set[str], record: bool = True
                  ) -> tuple[dict[str, list[int]], list[tuple[str, str]]]:
    """Indices (into ``rels``) per split, from run_dir/manifest.json when present (written
    or updated only when ``record``)."""
    mpath = Path(run_dir) / "manifest.json" if run_dir else None
    m = _read_json(mpath) if mpath is not None else None
    problems: list[tuple[str, str]] = []
    if m is not None and m.get("kind") == "files":
        if m.get("class_names") != classes:
            raise UserError(
                f"The classes in {root} ({classes}) differ from those in the split manifest "
                f"{mpath} ({m.get('class_names')}). Use a new run directory, or delete the manifest "
                f"to make a new split. Received: source={str(root)!r}")
        if (m.get("validation_split"), m.get("test_split"), m.get("seed")) != (fracs["val"], fracs["test"], seed):
            warnings.warn(
                f"Reusing the split in {mpath} (validation_split={m.get('validation_split')}, "
                f"test_split={m.get('test_split')}, seed={m.get('seed')}); the arguments given "
                "differ. Delete the manifest to split again.", stacklevel=4)
        where = {rel: s for s in SPLITS for rel in m["splits"].get(s, [])}
        pos = {rel: i for i, rel in enumerate(rels)}
        out: dict[str, list[int]] = {s: [] for s in SPLITS}
        added = []
        for rel, s in where.items():
            if rel in pos:
                out[s].append(pos[rel])
            elif rel not in all_rels:
                problems.append((str(root / rel), f"in manifest ({s}) but missing from the folder"))
        for rel, i in pos.items():
            if rel not in where:
                s = _hash_split(rel, int(m.get("seed", seed)), {"val": m.get("validation_split", 0.0),
                                                                "test": m.get("test_split", 0.0)})
                out[s].append(i)
                added.append((rel, s))
        if added and record:
            for rel, s in added:
                m["splits"].setdefault(s, []).append(rel)
            write_json_atomic(mpath, m)
            warnings.warn(f"{len(added)} new file(s) since {mpath} was written were assigned to "
                          "splits by a stable hash of their path; older files keep their side.",
                          stacklevel=4)
        if problems:
            warnings.warn(f"{len(problems)} file(s) listed in {mpath} are missing from {root}.",
                          stacklevel=4)
        return {s: sorted(v) for s, v in out.items()}, problems
    idx = stratified_split(labels, fracs, seed, classes, str(root))
    if mpath is not None and record:
        if m is not None:
            warnings.warn(f"{mpath} was not written for a folder; overwriting it.", stacklevel=4)
        write_json_atomic(mpath, {
            "version": 1, "kind": "files", "source": str(root), "source_path": str(root.resolve()),
            "seed": seed,
            "validation_split": fracs["val"], "test_split": fracs["test"], "class_names": classes,
            "splits": {s: [rels[i] for i in v] for s, v in idx.items()},
        })
    return {s: [int(i) for i in v] for s, v in idx.items()}, problems


def _rel(path: str, prefix: str) -> str:
    """``path`` relative to the folder whose path plus separator is ``prefix`` (posix)."""
    rel = path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, prefix)
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def _permute_rows(x: np.ndarray, order: np.ndarray) -> None:
    """In place, ``x[j] = old x[order[j]]`` for a permutation ``order``, one spare row
    (no second copy of the array)."""
    done = np.zeros(len(order), bool)
    for start in range(len(order)):
        if done[start] or order[start] == start:
            done[start] = True
            continue
        spare = x[start].copy()
        j = start
        while True:
            done[j] = True
            k = int(order[j])
            if k == start:
                x[j] = spare
                break
            x[j] = x[k]
            j = k


def _cache_splits(pixels: np.ndarray, ok: list[int], whole: _Split,
                  idx: dict[str, list[int]]) -> dict[str, _Split]:
    """Splits whose images are contiguous views of ``pixels`` (rows reordered in place:
    the cache's peak is one array of the good files' pixels, never two)."""
    order = np.asarray([ok[i] for s in SPLITS for i in idx.get(s, [])], np.int64)
    used = len(order)
    if used < len(pixels) or not np.array_equal(order, np.arange(used)):
        # move the used rows to the front in split order: a permutation of all rows
        rest = np.setdiff1d(np.arange(len(pixels)), order, assume_unique=True)
        _permute_rows(pixels, np.concatenate([order, rest]))
    splits, at = {}, 0
    for s in SPLITS:
        ii = idx.get(s, [])
        if ii:
            part = whole.take(ii)
            part.x = pixels[at:at + len(ii)]
            splits[s] = part
            at += len(ii)
    return splits


def _load_folder(root: Path, *, size, channels, resize, fracs, seed, run_dir, num_classes,
                 class_names=None, workers=None, record: bool = True, hygiene_index=None,
                 index_run_dir=None) -> Data:
    root = root.expanduser() if isinstance(root, (Path, _URIPath)) else _as_path(os.fspath(root)).expanduser()
    classes, files, stray = _list_folder(root)
    if num_classes is not None and num_classes != len(classes):
        raise UserError(
            f"{root} has {len(classes)} class folders ({', '.join(classes)}) but num_classes="
            f"{num_classes}. Fix the folder or num_classes. Received: num_classes={num_classes!r}")
    per_image = size[0] * size[1] * channels
    need = len(files) * per_image
    keep = need <= CACHE_LIMIT_BYTES
    pipeline = (f"memory: {len(files)} files x {size[0]}x{size[1]}x{channels} uint8 = "
                f"{need / 2**20:.0f} MiB <= CACHE_LIMIT_BYTES {CACHE_LIMIT_BYTES / 2**20:.0f} MiB, "
                "decoded once" if keep else
                f"stream: {need / 2**20:.0f} MiB of pixels > CACHE_LIMIT_BYTES "
                f"{CACHE_LIMIT_BYTES / 2**20:.0f} MiB, decoded in the tf.data graph each epoch")
    index = _open_index(root, channels, index_run_dir if index_run_dir is not None else run_dir,
                        record, hygiene_index)
    records, pixels = _scan(files, classes, size, channels, resize, keep, workers, index)
    changed = True
    if index is not None:
        changed = index.dirty()
        index.save()
    records = [HygieneRecord(p, "", "skipped", why) for p, why in stray] + records
    if run_dir is not None and record:
        _write_hygiene(run_dir, records, root, changed=changed or bool(stray))
    body = records[len(stray):]
    ok = [i for i, r in enumerate(body) if r.status == "ok"]
    skipped = [(r.path, r.reason) for r in records if r.status == "skipped"]
    labels_all = np.array([files[i][1] for i in ok], np.int64)
    counts = np.bincount(labels_all, minlength=len(classes))
    for k, c in enumerate(classes):
        if not counts[k]:
            n_files = sum(1 for _, lab in files if lab == k)
            extra = f" ({n_files} file(s) there could not be read; see the hygiene report)" if n_files else ""
            raise UserError(
                f"Class folder {root / c} has no usable images{extra}. Add images or remove the "
                f"folder. Received: {root / c}=0 images")
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} unreadable file(s) in {root}:\n"
                      + hygiene_table(records), stacklevel=3)
    prefix = f"{root}/" if isinstance(root, _URIPath) else os.path.join(str(root), "")
    rels = [_rel(files[i][0], prefix) for i in ok]
    all_rels = {_rel(p, prefix) for p, _ in files}
    idx, problems = _folder_split(rels, labels_all, classes, fracs, seed, run_dir, root, all_rels,
                                  record)
    skipped += problems
    whole = _Split(labels_all, paths=[files[i][0] for i in ok],
                   pil=[body[i].decoder == "pil" for i in ok])
    if keep:
        splits = _cache_splits(pixels, ok, whole, idx)
    else:
        splits = {s: whole.take(ii) for s, ii in idx.items() if ii}
    info = _make_info(classes, channels, str(root), {s: v.labels for s, v in splits.items()}, skipped)
    info.pipeline = pipeline
    return Data(info, size, splits, resize=resize, hygiene=records, run_dir=_str(run_dir), seed=seed)
