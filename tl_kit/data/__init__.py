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
    ``decode_image`` for PNG/GIF/BMP/WebP, the resize of :func:`tl_kit.decode.resample` rounded
    to uint8).
    Files are read by content, not by extension, so a PNG named ``.jpg`` is read correctly.
    Files TensorFlow would show differently (EXIF-rotated, transparent, CMYK, 16-bit,
    palette BMP) or cannot decode are decoded with Pillow and recorded as such
    (``HygieneRecord.decoder == "pil"``); see :mod:`tl_kit.decode` for what serving does
    with them. Files that fail to decode fully (corrupt, truncated, not an image) are
    skipped and listed, so training never meets them mid-epoch. With a hygiene index
    (:mod:`tl_kit.data.hygiene_index`: in the user's cache, ``~/.cache/tl_kit`` or
    ``$TL_KIT_CACHE_DIR``, shared by every run of the folder), a file whose
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

Modules (one job each; every name below is importable from ``tl_kit.data``)
    :mod:`~tl_kit.data.sources` (``load_data``), :mod:`~tl_kit.data.folders` (class
    folders, split folders), :mod:`~tl_kit.data.arrays` (arrays, tf.data), :mod:`~tl_kit.data.uri`
    (``tf.io.gfile`` URIs), :mod:`~tl_kit.data.hygiene` (the scan, its records and reports),
    :mod:`~tl_kit.data.hygiene_index`, :mod:`~tl_kit.data.split` (stratified and hash splits,
    class weights), :mod:`~tl_kit.data.manifest` (``manifest.json``), :mod:`~tl_kit.data.cache`
    (the in-memory cache), :mod:`~tl_kit.data.pipeline` (:class:`Data`, the tf.data pipelines,
    sharding), :mod:`~tl_kit.data.info` (:class:`DatasetInfo`).

Example:
```python
data = load_data("data/flowers", image_size=(160, 160), validation_split=0.2, run_dir="runs/f")
train = data.dataset("train", batch_size=32, training=True, augment="standard")
print(data.info.class_names, data.info.class_weights)
```
"""

from __future__ import annotations

import sys
import types

from tl_kit.data import cache
from tl_kit.data.arrays import resolve_classes
from tl_kit.data.decoding import decode_image_file
from tl_kit.data.examples import Examples
from tl_kit.data.folders import (
    IMAGE_EXTENSIONS,
    FolderNotFoundError,
    list_folder,
    load_folder,
    load_split_folders,
    split_subfolders,
)
from tl_kit.data.hygiene import HygieneRecord, hygiene_table, scan, write_hygiene
from tl_kit.data.info import DatasetInfo, make_info
from tl_kit.data.manifest import folder_split, index_split, read_manifest
from tl_kit.data.pipeline import Data, shard_indices, worker_shard
from tl_kit.data.sources import RESIZE_MODES, load_data
from tl_kit.data.split import (
    SPLITS,
    check_fracs,
    compute_class_weights,
    hash_split,
    stratified_split,
)
from tl_kit.data.uri import URIPath

__all__ = [
    "CACHE_LIMIT_BYTES",
    "IMAGE_EXTENSIONS",
    "RESIZE_MODES",
    "SPLITS",
    "Data",
    "DatasetInfo",
    "Examples",
    "FolderNotFoundError",
    "HygieneRecord",
    "URIPath",
    "check_fracs",
    "compute_class_weights",
    "decode_image_file",
    "folder_split",
    "hash_split",
    "hygiene_table",
    "index_split",
    "list_folder",
    "load_data",
    "load_folder",
    "load_split_folders",
    "make_info",
    "read_manifest",
    "resolve_classes",
    "scan",
    "shard_indices",
    "split_subfolders",
    "stratified_split",
    "worker_shard",
    "write_hygiene",
]



class _DataPackage(types.ModuleType):
    """``tl_kit.data.CACHE_LIMIT_BYTES`` reads and sets :data:`tl_kit.data.cache.CACHE_LIMIT_BYTES`
    (the value :mod:`tl_kit.data.cache` reads at each load), so the knob works from here
    without the cache module importing its package."""

    @property
    def CACHE_LIMIT_BYTES(self) -> int:  # noqa: N802 - the module constant's name
        return cache.CACHE_LIMIT_BYTES

    @CACHE_LIMIT_BYTES.setter
    def CACHE_LIMIT_BYTES(self, value: int) -> None:  # noqa: N802
        cache.CACHE_LIMIT_BYTES = int(value)


sys.modules[__name__].__class__ = _DataPackage
