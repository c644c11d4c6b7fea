"""What the user's hygiene cache holds, folder by folder, and its removal (``tl-kit cache``).

The shared cache (:func:`tl_kit.data.hygiene_index.cache_dir`, ``<cache>/hygiene/``) keeps,
for every folder loaded, one index of verdicts (``<key>-c<channels>.json``, small) and, for
the in-memory path, one pixel file per image size and resize mode
(``<key>-c<channels>-<H>x<W>-<mode>-r<version>.npy``: a 100k-file folder at 64 px is
1.2 GB). No load removes a folder's entry: :func:`cache_contents` says what is there and
:func:`clear_cache` removes what the user picks (loads only remove their own leftovers: a
pixel file of an older resize version, a half-written file of a process of this host that
is gone). Removing an entry loses no data: the next load of its folder checks the files
again (and decodes them again) and writes them anew; a load that has a pixel file mapped
keeps its pages (on POSIX; where an open file cannot be removed, the removal fails and
says so).

A half-written file (``.<name>.<host>-<pid>.tmp[.npy]``) is *busy*, listed and never
removed, while its process may still be writing it: a live process of this host, or, for
another host's file (a cache shared over the network) or an older name without a host,
one written to in the last :data:`BUSY_S` seconds. After that it is a stray.

Only files named as tl_kit names them are listed or removed; anything else in the folder
(``TL_KIT_CACHE_DIR`` pointed at a folder that holds other things) is left alone.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tl_kit.errors import UserError

__all__ = ["CachedFolder", "CacheContents", "PixelFile", "cache_contents", "clear_cache",
           "hygiene_cache_dir"]

_INDEX = re.compile(r"^(?P<stem>[0-9a-f]{16}-c\d+)\.json$")
_PIXELS = re.compile(r"^(?P<stem>[0-9a-f]{16}-c\d+)-(?P<key>\d+x\d+-[A-Za-z0-9_]+-r\d+)\.npy$")
# half-written files: an index being saved (".<name>.json.<host>-<pid>.tmp"; older versions:
# ".<name>.json.<pid>.tmp") or pixels being filled (".<name>.npy.<host>-<pid>.tmp.npy")
_TMP = re.compile(r"^\.(?P<stem>[0-9a-f]{16}-c\d+)\S*\.tmp(\.npy)?$")
_WRITER = re.compile(r"\.(?P<host>[^.]+)-(?P<pid>\d+)\.tmp(\.npy)?$")
_DAY = 86400.0
BUSY_S = 3600.0
"""How long a half-written file whose writer this host cannot ask is taken as busy."""


def hygiene_cache_dir(cache: Path | str | None = None) -> Path | None:
    """``<cache>/hygiene`` for ``cache`` (default: :func:`~tl_kit.data.hygiene_index.cache_dir`,
    None when the cache is turned off)."""
    from tl_kit.data.hygiene_index import CACHE_SUBDIR, cache_dir

    base = Path(cache).expanduser() if cache is not None else cache_dir()
    return base / CACHE_SUBDIR if base is not None else None


@dataclass(frozen=True)
class PixelFile:
    """One kept pixel file: ``key`` is ``"<H>x<W>-<mode>-r<version>"``; ``current`` is False
    for a file its index does not name (an older listing's, or its index is gone): no load
    reads it again."""

    path: Path
    key: str
    bytes: int
    current: bool


@dataclass(frozen=True)
class CachedFolder:
    """One folder's entry: its index and pixel files.

    Attributes:
        folder: the folder's absolute path or URI, as its loads gave it.
        channels: 3 (RGB) or 1 (grey): a folder loaded both ways has two entries.
        index: the index file.
        files: files with a verdict; ``skipped``: of which corrupt or not images.
        pixels: the pixel files of this folder.
        exists: whether the folder is still there (None when not known: a URI, which is
            not looked up, or a path whose lookup failed).
        last_used: when a load last read or wrote the index (its mtime, which every load
            that may write it sets; seconds since the epoch).
    """

    folder: str
    channels: int
    index: Path
    files: int
    skipped: int
    index_bytes: int
    pixels: tuple[PixelFile, ...]
    exists: bool | None
    last_used: float

    @property
    def bytes(self) -> int:
        return self.index_bytes + sum(p.bytes for p in self.pixels)

    def as_dict(self) -> dict:
        return {"folder": self.folder, "channels": self.channels, "index": str(self.index),
                "files": self.files, "skipped": self.skipped, "bytes": self.bytes,
                "exists": self.exists, "last_used": self.last_used,
                "pixels": [{"file": str(p.path), "key": p.key, "bytes": p.bytes,
                            "current": p.current} for p in self.pixels]}


@dataclass(frozen=True)
class CacheContents:
    """The cache folder, its folders' entries (most recently used first), and ``strays``:
    tl_kit's files that belong to no readable index (pixel files whose index is gone, an
    unreadable index or one of another format version, files half-written by a process
    that is no longer running); and ``busy``: half-written files that a process may still
    be writing (``(file, bytes, writer)``, writer ``"host pid N"``), which nothing removes."""

    where: Path | None
    folders: list[CachedFolder] = field(default_factory=list)
    strays: list[tuple[Path, int]] = field(default_factory=list)
    busy: list[tuple[Path, int, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return (sum(f.bytes for f in self.folders) + sum(n for _, n in self.strays)
                + sum(n for _, n, _w in self.busy))

    def as_dict(self) -> dict:
        return {"cache_dir": str(self.where) if self.where else None, "bytes": self.bytes,
                "folders": [f.as_dict() for f in self.folders],
                "strays": [{"file": str(p), "bytes": n} for p, n in self.strays],
                "busy": [{"file": str(p), "bytes": n, "writer": w} for p, n, w in self.busy]}


def cache_contents(cache: Path | str | None = None) -> CacheContents:
    """What the hygiene cache holds (``cache``: the cache folder, default the user's)."""
    where = hygiene_cache_dir(cache)
    if where is None or not where.is_dir():
        return CacheContents(where)
    names = sorted(p.name for p in where.iterdir() if p.is_file())
    pixels: dict[str, list[tuple[str, Path]]] = {}
    for name in names:
        m = _PIXELS.match(name)
        if m:
            pixels.setdefault(m["stem"], []).append((m["key"], where / name))
    folders, strays, busy, claimed = [], [], [], set()
    for name in names:
        m = _INDEX.match(name)
        if not m:
            continue
        entry = _entry(where / name, pixels.get(m["stem"], []))
        if entry is None:
            continue  # unreadable: its files are strays
        folders.append(entry)
        claimed.add(m["stem"])
    for name in names:
        path = where / name
        if _TMP.match(name):
            writer = _writer(path)
            if writer is not None:
                busy.append((path, _size(path), writer))
                continue
        else:
            m = _INDEX.match(name) or _PIXELS.match(name)
            if m is None or m["stem"] in claimed:
                continue
        strays.append((path, _size(path)))
    folders.sort(key=lambda f: (-f.last_used, f.folder))
    return CacheContents(where, folders, strays, busy)


def _named(contents: CacheContents, folders: list[str]) -> list[CachedFolder]:
    """The entries of ``folders`` (as given to a load, or as listed); a UserError names a
    folder that has none."""
    from tl_kit.data.hygiene_index import _where
    from tl_kit.data.uri import as_path

    picked = []
    for given in folders:
        keys = {str(given), _where(as_path(given))}  # as a load keys it: ./x, x/, a link
        hits = [f for f in contents.folders if f.folder in keys]
        if not hits:
            raise UserError(f"No entry in the hygiene cache ({contents.where}) for folder "
                            f"'{given}'; 'tl-kit cache list' shows the folders it holds.")
        picked += hits
    return picked


def _entry(index: Path, pixel_files: list[tuple[str, Path]]) -> CachedFolder | None:
    """The entry of ``index``; None for a file no load would read (unreadable, not an index
    of this format version, or not of the channels its name says): a stray."""
    from tl_kit.data.hygiene_index import INDEX_VERSION

    try:
        found = json.loads(index.read_text())
        st = index.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    root, channels = found.get("root"), found.get("channels")
    entries, named = found.get("files", {}), found.get("pixels", {})
    if (found.get("version") != INDEX_VERSION or not isinstance(root, str) or not root
            or not isinstance(entries, dict) or not isinstance(named, dict)
            or not index.name.endswith(f"-c{channels}.json")):
        return None
    skipped = sum(1 for e in entries.values() if isinstance(e, list) and len(e) > 2
                  and e[2] == "skipped")
    kept = tuple(PixelFile(p, key, _size(p), key in named) for key, p in pixel_files)
    exists: bool | None = None
    if "://" not in root:
        try:
            exists = Path(root).is_dir()
        except OSError:  # an unreadable parent, a stale network mount: not known
            exists = None
    return CachedFolder(root, int(channels), index, len(entries), skipped, st.st_size, kept,
                        exists, st.st_mtime)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _writer(tmp: Path) -> str | None:
    """Who may still be writing the half-written file ``tmp`` (``"host pid N"``), or None
    when no one can be: its process of this host is gone, or (another host's, or an older
    name with no host) it has not been written to for :data:`BUSY_S` seconds."""
    from tl_kit.data.hygiene_index import _HOST, _alive

    m = _WRITER.search(tmp.name)
    if m is not None and m["host"] == _HOST:
        return f"{_HOST} pid {m['pid']}" if _alive(int(m["pid"])) else None
    try:
        idle = time.time() - tmp.stat().st_mtime
    except OSError:
        return None
    if idle >= BUSY_S:
        return None
    return f"{m['host']} pid {m['pid']}" if m is not None else "unknown writer"


def clear_cache(folders: list[str] | None = None, *, gone: bool = False,
                older_than_days: float | None = None, everything: bool = False,
                pixels_only: bool = False, dry_run: bool = False,
                cache: Path | str | None = None) -> list[tuple[Path, int]]:
    """Remove entries of the hygiene cache; returns ``(file, bytes)`` of each file removed
    (with ``dry_run``: that would be removed, nothing is).

    What is removed is what ANY of the selectors picks:

    * ``folders``: those folders' entries (paths as given to a load, or as
      :func:`cache_contents` lists them); a folder with no entry is a UserError naming it;
    * ``gone``: entries of folders that no longer exist, and the strays;
    * ``older_than_days``: entries no load has used for that many days;
    * ``everything``: every entry and stray.

    ``pixels_only`` removes only the picked entries' pixel files (the big ones), and of
    the strays only pixel files, and keeps the verdicts: a streaming load still checks
    nothing again; an in-memory load decodes every file once more (that decode checks it
    too) and keeps its pixels again. With no selector: a UserError. Busy files are never
    removed. A file that cannot be removed (permissions, a read-only cache) is a UserError
    naming it, after every other file picked is removed.
    """
    if not (folders or gone or older_than_days is not None or everything):
        raise UserError("Say what to clear: one or more folders, --gone, --older-than DAYS "
                        "or --all ('tl-kit cache list' shows what the cache holds).")
    if older_than_days is not None and not older_than_days >= 0:
        raise UserError(f"older_than_days must be 0 or more. Received: "
                        f"older_than_days={older_than_days}")
    contents = cache_contents(cache)
    if contents.where is None:
        raise UserError("The tl_kit cache is turned off (TL_KIT_CACHE_DIR is set and empty): "
                        "there is nothing to clear.")
    picked = _named(contents, folders or [])
    now = time.time()
    picked += [f for f in contents.folders if everything or (gone and f.exists is False) or (
        older_than_days is not None and now - f.last_used >= older_than_days * _DAY)]
    chosen: dict[Path, int] = {}
    for f in picked:
        chosen.update({p.path: p.bytes for p in f.pixels})
        if not pixels_only:
            chosen[f.index] = f.index_bytes
    if gone or everything:
        chosen.update({p: n for p, n in contents.strays
                       if not pixels_only or p.name.endswith(".npy")})
    removed, failed = [], []
    for path, n in sorted(chosen.items()):
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # removed meanwhile (another clear, a load replacing it)
            except OSError as e:
                failed.append(f"{path} ({e.strerror or e})")
                continue
        removed.append((path, n))
    if failed:
        raise UserError(f"Removed {len(removed)} file(s) of the hygiene cache, but could not "
                        f"remove {len(failed)}: " + "; ".join(failed[:5])
                        + ("; ..." if len(failed) > 5 else "")
                        + f". Check the permissions of {contents.where}.")
    return removed
