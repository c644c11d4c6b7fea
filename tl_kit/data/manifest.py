"""The split manifest, ``run_dir/manifest.json``: which example is in which split.

With ``run_dir`` the split is written to ``run_dir/manifest.json`` and an existing manifest
is reused, so no image changes side when a run is resumed or repeated. Two kinds:

* ``"files"`` (folders): relative file paths per split. Files listed that vanished are
  reported; files added since are assigned by :func:`~tl_kit.data.split.hash_split` with
  the manifest's fractions (the same way on every repeat, never moving an older file) and
  the manifest is updated;
* ``"indices"`` (arrays, tf.data, tfds): example indices per split, reused when the
  examples' labels (a fingerprint) are unchanged.

With ``record=False`` (evaluation, export) an existing manifest is only read: nothing in
``run_dir`` is written or changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tl_kit._io import write_json_atomic
from tl_kit.data._warn import warn
from tl_kit.data.examples import Examples
from tl_kit.data.split import SPLITS, hash_split, stratified_split
from tl_kit.errors import UserError

__all__ = ["MANIFEST", "carve_missing", "folder_split", "index_split", "read_manifest"]

MANIFEST = "manifest.json"


def read_manifest(path: Path) -> dict | None:
    """The manifest at ``path``, None when there is none; a UserError when unreadable."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"The split manifest {path} cannot be read ({e}); delete it to make a new split. "
            f"Received: manifest={str(path)!r}"
        ) from e


def folder_split(rels: list[str], labels: np.ndarray, classes: list[str], fracs, seed, run_dir,
                 root: Path, all_rels: set[str], record: bool = True
                 ) -> tuple[dict[str, list[int]], list[tuple[str, str]]]:
    """Indices (into ``rels``, the good files' relative paths) per split, and the files the
    manifest lists that are missing (``all_rels``: every listed file, good or not). From
    ``run_dir/manifest.json`` when present (written or updated only when ``record``)."""
    mpath = Path(run_dir) / MANIFEST if run_dir else None
    m = read_manifest(mpath) if mpath is not None else None
    if m is not None and m.get("kind") == "files":
        return _reuse_files(m, mpath, rels, classes, fracs, seed, root, all_rels, record)
    idx = stratified_split(labels, fracs, seed, classes, str(root))
    if mpath is not None and record:
        if m is not None:
            warn(f"{mpath} was not written for a folder; overwriting it.")
        write_json_atomic(mpath, {
            "version": 1, "kind": "files", "source": str(root), "source_path": str(root.resolve()),
            "seed": seed,
            "validation_split": fracs["val"], "test_split": fracs["test"], "class_names": classes,
            "splits": {s: [rels[i] for i in v] for s, v in idx.items()},
        })
    return {s: [int(i) for i in v] for s, v in idx.items()}, []


def _reuse_files(m: dict, mpath: Path, rels, classes, fracs, seed, root: Path, all_rels: set[str],
                 record: bool) -> tuple[dict[str, list[int]], list[tuple[str, str]]]:
    """The split of a ``"files"`` manifest, new files placed by hash (and recorded)."""
    if m.get("class_names") != classes:
        raise UserError(
            f"The classes in {root} ({classes}) differ from those in the split manifest "
            f"{mpath} ({m.get('class_names')}). Use a new run directory, or delete the manifest "
            f"to make a new split. Received: source={str(root)!r}")
    if (m.get("validation_split"), m.get("test_split"), m.get("seed")) != (fracs["val"], fracs["test"], seed):
        warn(f"Reusing the split in {mpath} (validation_split={m.get('validation_split')}, "
             f"test_split={m.get('test_split')}, seed={m.get('seed')}); the arguments given "
             "differ. Delete the manifest to split again.")
    out, added, problems = _place(m, rels, seed, root, all_rels)
    if added and record:
        for rel, s in added:
            m["splits"].setdefault(s, []).append(rel)
        write_json_atomic(mpath, m)
        warn(f"{len(added)} new file(s) since {mpath} was written were assigned to "
             "splits by a stable hash of their path; older files keep their side.")
    if problems:
        warn(f"{len(problems)} file(s) listed in {mpath} are missing from {root}.")
    return {s: sorted(v) for s, v in out.items()}, problems


def _place(m: dict, rels: list[str], seed, root: Path, all_rels: set[str]):
    """``(indices per split, [(new rel, split)], [(missing file, why)])`` for a manifest."""
    where = {rel: s for s in SPLITS for rel in m["splits"].get(s, [])}
    pos = {rel: i for i, rel in enumerate(rels)}
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    problems: list[tuple[str, str]] = []
    for rel, s in where.items():
        if rel in pos:
            out[s].append(pos[rel])
        elif rel not in all_rels:
            problems.append((str(root / rel), f"in manifest ({s}) but missing from the folder"))
    fracs = {"val": m.get("validation_split", 0.0), "test": m.get("test_split", 0.0)}
    added = []
    for rel, i in pos.items():
        if rel not in where:
            s = hash_split(rel, int(m.get("seed", seed)), fracs)
            out[s].append(i)
            added.append((rel, s))
    return out, added, problems


def index_split(labels: np.ndarray, fracs, seed, class_names, run_dir, source: str,
                where: str = "", record: bool = True) -> dict[str, np.ndarray]:
    """Split indices for array-like sources, reusing run_dir/manifest.json when it matches
    (written only when ``record``)."""
    fingerprint = hashlib.sha1(np.asarray(labels, np.int64).tobytes()).hexdigest()
    mpath = Path(run_dir) / MANIFEST if run_dir else None
    if mpath is not None:
        m = read_manifest(mpath)
        if m is not None:
            if m.get("kind") == "indices" and m.get("fingerprint") == fingerprint:
                return {s: np.asarray(m["splits"].get(s, []), np.int64) for s in SPLITS}
            if record:
                warn(f"{mpath} was written for other data (different examples or labels); "
                     "making a new split and overwriting it.")
    idx = stratified_split(labels, fracs, seed, class_names, where)
    if mpath is not None and record:
        write_json_atomic(mpath, {
            "version": 1, "kind": "indices", "source": source, "seed": seed,
            "validation_split": fracs["val"], "test_split": fracs["test"],
            "class_names": class_names, "fingerprint": fingerprint, "num_examples": len(labels),
            "splits": {s: [int(i) for i in v] for s, v in idx.items()},
        })
    return idx


def carve_missing(splits: dict[str, Examples], fracs, seed, names, run_dir, source: str,
                  record: bool = True) -> None:
    """Given splits without "val" (or "test") get it from train when its fraction is > 0
    (stratified, seeded, reusing run_dir/manifest.json): ``splits`` is updated in place."""
    missing = {s: f for s, f in fracs.items() if f > 0 and s not in splits}
    if not missing:
        return
    tr = splits["train"]
    idx = index_split(tr.labels, {s: missing.get(s, 0.0) for s in ("val", "test")}, seed, names,
                      run_dir, source, record=record)
    for s in ["train", *missing]:
        splits[s] = tr.take(idx[s])
