"""Folder sources: one sub-folder per class, or ``train`` / ``val`` / ``test`` split folders.

Images anywhere below a class folder belong to it (JPEG, PNG, BMP, GIF and WebP, any
extension case; files are read by content). Every file goes through the hygiene scan
(:mod:`tl_kit.data.hygiene`); the good ones are split (:mod:`tl_kit.data.manifest`) and held
in memory or streamed (:mod:`tl_kit.data.cache`). A folder may be local or a
``tf.io.gfile`` URI (:mod:`tl_kit.data.uri`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tl_kit.data._gc import gc_paused
from tl_kit.data._warn import warn
from tl_kit.data.cache import pipeline_choice
from tl_kit.data.examples import Examples
from tl_kit.data.hygiene import HygieneRecord, hygiene_table, open_index, scan, write_hygiene
from tl_kit.data.info import make_info
from tl_kit.data.manifest import carve_missing, folder_split
from tl_kit.data.pipeline import Data
from tl_kit.data.split import SPLIT_ALIASES, split_key, split_name
from tl_kit.data.uri import URIPath, as_path, folder_prefix, join, relative, walk
from tl_kit.errors import UserError

__all__ = ["IMAGE_EXTENSIONS", "FolderNotFoundError", "list_folder", "load_folder", "load_split_folders",
           "split_subfolders"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp")


class FolderNotFoundError(UserError, FileNotFoundError):
    """The data folder given does not exist (a UserError that is also a FileNotFoundError)."""


def list_folder(root: Path) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, str]]]:
    """Class names (sorted sub-folders), (file, label) pairs, and stray files at the root."""
    if not root.exists():
        raise FolderNotFoundError(f"Data folder not found: {root}. Received: source={str(root)!r}")
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
        for dirpath, dirnames, filenames in walk(root / c):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            prefix = join(dirpath, "")  # the folder and its separator: one join per folder
            files.extend((prefix + f, k) for f in sorted(filenames) if not f.startswith("."))
    return classes, files, stray


@gc_paused  # per-file tables, no cycles: see tl_kit.data._gc
def load_folder(root, *, size, channels, resize, fracs, seed, run_dir, num_classes,
                class_names=None, workers=None, record: bool = True, hygiene_index=None,
                index_run_dir=None, pipeline: str = "auto") -> Data:
    """One folder of class folders: scanned, split (``fracs``), in memory or streamed
    (``pipeline``: :func:`tl_kit.data.cache.pipeline_choice`).
    ``index_run_dir``: where the hygiene index lives when not in ``run_dir``."""
    root = root.expanduser() if isinstance(root, (Path, URIPath)) else as_path(os.fspath(root)).expanduser()
    classes, files, stray = list_folder(root)
    if num_classes is not None and num_classes != len(classes):
        raise UserError(
            f"{root} has {len(classes)} class folders ({', '.join(classes)}) but num_classes="
            f"{num_classes}. Fix the folder or num_classes. Received: num_classes={num_classes!r}")
    keep, pipeline = pipeline_choice(len(files), size, channels, pipeline, root)
    index = open_index(root, channels, index_run_dir if index_run_dir is not None else run_dir,
                       record, hygiene_index)
    records, pixels = scan(files, classes, size, channels, resize, keep, workers, index)
    changed = True
    index_note = "none (every file checked)"
    if index is not None:
        index_note = f"{index.path}: {index.hits} of {len(files)} files known, not checked again"
        if index.pixels_note:
            index_note += f"; {index.pixels_note}"
        changed = index.dirty()
        index.save()
        del index  # its per-file entries go before the split's per-file tables come
    records = [HygieneRecord(p, "", "skipped", why) for p, why in stray] + records
    if run_dir is not None and record:
        write_hygiene(run_dir, records, root, changed=changed or bool(stray))
    body = records[len(stray):]
    ok = [i for i, r in enumerate(body) if r.status == "ok"]
    skipped = [(r.path, r.reason) for r in records if r.status == "skipped"]
    labels_all = np.array([files[i][1] for i in ok], np.int64)
    _check_every_class(root, classes, files, labels_all)
    if skipped:
        warn(f"Skipped {len(skipped)} unreadable file(s) in {root}:\n" + hygiene_table(records))
    prefix = folder_prefix(root)
    listed = [relative(p, prefix) for p, _ in files]
    rels = [listed[i] for i in ok]  # the same strings, not a second set of them
    all_rels = set(listed)
    del listed
    idx, problems = folder_split(rels, labels_all, classes, fracs, seed, run_dir, root, all_rels,
                                 record)
    skipped += problems
    # in memory, every split is row indices into the one pixel array (no copy, no reorder)
    whole = Examples(labels_all, x=pixels, rows=ok if keep else None,
                     paths=[files[i][0] for i in ok], pil=[body[i].decoder == "pil" for i in ok],
                     header=None if keep else [(body[i].height, body[i].width) for i in ok])
    splits = {s: whole.take(ii) for s, ii in idx.items() if ii}
    info = make_info(classes, channels, str(root), {s: v.labels for s, v in splits.items()}, skipped)
    info.pipeline, info.index = pipeline, index_note
    return Data(info, size, splits, resize=resize, hygiene=records, run_dir=_str(run_dir), seed=seed)


def _check_every_class(root, classes: list[str], files, labels: np.ndarray) -> None:
    """A UserError naming the first class folder without a usable image."""
    counts = np.bincount(labels, minlength=len(classes))
    for k, c in enumerate(classes):
        if not counts[k]:
            n_files = sum(1 for _, lab in files if lab == k)
            extra = f" ({n_files} file(s) there could not be read; see the hygiene report)" if n_files else ""
            raise UserError(
                f"Class folder {root / c} has no usable images{extra}. Add images or remove the "
                f"folder. Received: {root / c}=0 images")


def split_subfolders(root: Path) -> dict[str, str] | None:
    """``{"train": root/train, ...}`` when ``root``'s sub-folders are all split names
    (train, val/validation/valid, test), one of them train, each holding class folders;
    otherwise None (then the sub-folders are the classes)."""
    if not root.is_dir():
        return None
    subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not subs or any(p.name.lower() not in SPLIT_ALIASES for p in subs):
        return None
    if "train" not in {SPLIT_ALIASES[p.name.lower()] for p in subs}:
        return None
    if not all(any(c.is_dir() for c in p.iterdir()) for p in subs):
        return None
    return {p.name.lower(): str(p) for p in sorted(subs)}


def load_split_folders(src: dict, *, size, channels, resize, fracs, seed, run_dir, num_classes,
                       class_names, workers=None, record: bool = True, hygiene_index=None,
                       pipeline: str = "auto") -> Data:
    """``{"train": folder, "val": folder, "test": folder}``: splits made by the user, one
    class folder layout each. Every folder gets the same hygiene scan; the class names are
    the train folder's, and another split may hold fewer classes but no new one. A missing
    "val" (or "test") is carved from train with the requested fraction, stratified."""
    zero = {k: 0.0 for k in fracs}
    loaded: dict[str, Data] = {}
    for key, folder in src.items():
        s = split_key(key, loaded, src)
        loaded[s] = load_folder(as_path(os.fspath(folder)), size=size, channels=channels,
                                resize=resize, fracs=zero, seed=seed, run_dir=None,
                                num_classes=num_classes if s == "train" else None,
                                workers=workers, record=record, hygiene_index=hygiene_index,
                                index_run_dir=run_dir, pipeline=pipeline)
    if "train" not in loaded:
        raise UserError(f"A dict of split folders needs a 'train' entry. Received: keys={list(src)!r}")
    names = loaded["train"].class_names
    if class_names is not None and list(class_names) != list(names):
        raise UserError(f"class_names {list(class_names)} differ from the class folders of "
                        f"{src['train']} ({names}). Received: class_names={list(class_names)!r}")
    splits, records, skipped = _merge(loaded, names, src)
    carve_missing(splits, fracs, seed, names, run_dir, "train folder", record)
    if run_dir is not None and record:
        write_hygiene(run_dir, records, as_path(_src_of(src, "train")))
    source = ", ".join(f"{k}={_src_of(src, k)}" for k in loaded)
    info = make_info(names, channels, source, {k: v.labels for k, v in splits.items()}, skipped)
    info.pipeline = "; ".join(f"{k}: {d.info.pipeline}" for k, d in loaded.items())
    info.index = "; ".join(f"{k}: {d.info.index}" for k, d in loaded.items())
    return Data(info, size, splits, resize=resize, hygiene=records, run_dir=_str(run_dir), seed=seed)


def _merge(loaded: dict[str, Data], names: list[str], src: dict):
    """Each loaded folder's examples as one split, labels in the train folder's class order:
    ``(splits, hygiene records, skipped files)``."""
    splits: dict[str, Examples] = {}
    records: list[HygieneRecord] = []
    skipped: list = []
    for s, d in loaded.items():
        part = d.examples("train")
        extra = [c for c in d.class_names if c not in names]
        if extra:
            raise UserError(f"The {s} folder {_src_of(src, s)} has class folder(s) {extra} that the train "
                            f"folder {_src_of(src, 'train')} does not have. Received: {extra!r}")
        remap = np.array([names.index(c) for c in d.class_names], np.int64)
        splits[s] = part.relabel(remap[part.labels])
        records += d.hygiene
        skipped += d.info.skipped
    return splits, records, skipped


def _src_of(src: dict, split: str) -> str:
    """The folder given for ``split`` (by any of its aliases)."""
    for k, v in src.items():
        if split_name(k) == split:
            return os.fspath(v)
    return "?"


def _str(p) -> str | None:
    return None if p is None else str(p)
