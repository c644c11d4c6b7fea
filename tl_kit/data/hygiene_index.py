"""Hygiene once per file: an index of the scan's verdicts keyed by path, size and mtime.

A folder scan (:func:`tl_kit.data.hygiene.scan`, run by :func:`tl_kit.data.load_data`)
decodes every file to find the corrupt, truncated and non-image ones. With an index, a file whose size and modification time
(nanoseconds) match its entry keeps its verdict (status, reason, decoder, and a JPEG's header height
and width, by which a streamed epoch picks its DCT scale) without being
opened: a second load of an unchanged folder only lists and stats it. A changed or added
file is checked again; a removed file's entry is dropped, so it is checked again if it
comes back. The index is written only when something changed, atomically.

Where it lives (never in the data folder, so read-only data folders work), first match,
``<name>`` being ``<hash of the folder's absolute path>-c<channels>.json``:

1. ``hygiene_index=PATH`` given to ``load_data``: that file (``False``: no index);
2. the run directory's own ``run_dir/hygiene_index/<name>`` when that file exists (a run
   that kept its index there; read, and written only by training, not by evaluation or
   export, which never change a run's records);
3. the user's cache, shared by every run and every load of the folder, so a second
   ``tl-kit train`` into a new run directory only lists and stats an unchanged folder:
   ``<cache>/hygiene/<name>``, ``<cache>`` being :func:`cache_dir`
   (``$TL_KIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/tl_kit``, else ``~/.cache/tl_kit``);
4. with the cache turned off (``TL_KIT_CACHE_DIR=""``): ``run_dir/hygiene_index/<name>``
   of a run directory, else no index.

A load that may write its index sets the index's mtime, so the mtime says when the folder
was last used; :mod:`tl_kit.data.hygiene_cache` (``tl-kit cache list|clear``) lists the
cache per folder and removes entries, which nothing else does.

The in-memory path needs every file's pixels for its cache: the first load decodes each file
(that decode is the cache fill) straight into a file beside the index, memory-mapped
(``<index name>-<H>x<W>-<resize>-r<RESIZE_VERSION>.npy``, rows in listing order, with a
digest of the listing: every path, label, size and mtime in order), so keeping the pixels
costs no copy; the next load of the same unchanged listing at the same size maps that file
read-only instead of decoding. Any change (a file added, removed or touched) decodes
again and replaces it (atomically: a load that holds the old file keeps it); the file of
an earlier ``RESIZE_VERSION`` at the same size is removed once the new one is kept. Verdicts depend on ``channels`` (conversion notes), not on the
image size or resize mode; an index written for other channels is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import numpy as np

from tl_kit.data.uri import FileStamp

__all__ = ["CACHE_SUBDIR", "HygieneIndex", "cache_dir", "in_run_dir", "index_location"]

INDEX_VERSION = 1
INDEX_DIR = "hygiene_index"
CACHE_SUBDIR = "hygiene"  # below cache_dir(): the shared indexes and pixel files
_HOST = socket.gethostname().replace(".", "_") or "host"


def cache_dir() -> Path | None:
    """tl_kit's cache folder for hygiene indexes and kept pixels: ``$TL_KIT_CACHE_DIR``
    when set (set and empty: None, no cache), else ``$XDG_CACHE_HOME/tl_kit``, else
    ``~/.cache/tl_kit`` (None when there is no home directory)."""
    env = os.environ.get("TL_KIT_CACHE_DIR")
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "tl_kit"
    try:
        return Path.home() / ".cache" / "tl_kit"
    except (RuntimeError, KeyError):  # no home directory to be found: no cache
        return None


def index_location(root: Path, channels: int, run_dir=None, explicit=None) -> Path | None:
    """Which index file a load of ``root`` uses (see the module docstring), or None."""
    if explicit is False:
        return None
    if explicit is not None and explicit is not True:
        return Path(explicit)
    key = hashlib.sha1(_where(root).encode()).hexdigest()[:16]
    name = f"{key}-c{int(channels)}.json"
    own = Path(run_dir) / INDEX_DIR / name if run_dir is not None else None
    if own is not None and own.is_file():
        return own
    cache = cache_dir()
    return cache / CACHE_SUBDIR / name if cache is not None else own


def in_run_dir(path: Path | None, run_dir) -> bool:
    """Whether the index file ``path`` is ``run_dir``'s own (a run's record: written only by
    training), not a cache shared by every load."""
    return path is not None and run_dir is not None and Path(path).parent == Path(run_dir) / INDEX_DIR


def _where(root) -> str:
    """The folder's key: its absolute path, or its URI (``gs://...``, ``ram://...``) as given."""
    text = str(root)
    return text if "://" in text else str(Path(text).resolve())


class HygieneIndex:
    """Verdicts of one folder's files: ``{relative path: (size, mtime_ns, status, reason,
    decoder[, height, width])}`` (the header TensorFlow decodes the file by, when the scan
    read it: :attr:`tl_kit.data.hygiene.HygieneRecord.height`); :meth:`lookup_all` before
    decoding, :meth:`put_all` / :meth:`put` after, :meth:`save` at the end."""

    def __init__(self, path: Path | None, root: Path, channels: int, writable: bool = True):
        self.path = path
        self.root = root if "://" in str(root) else Path(root)
        self._prefix = f"{self.root}/" if "://" in str(root) else os.path.join(str(self.root), "")
        self.channels = int(channels)
        self.writable = writable and path is not None
        self._entries: dict[str, list] = {}
        self._pixels: dict[str, str] = {}  # "HxW-mode" -> digest of the listing it holds
        self._pending: dict[str, Path] = {}  # "HxW-mode" -> the pixel file being filled
        self._seen: set[str] = set()
        self._changed = False
        self._lock = threading.Lock()
        self.hits = 0
        self.pixels_note = ""  # the in-memory path's pixel file: read back, or kept for next time
        if path is not None and path.is_file():
            self._read(path)

    def _read(self, path: Path) -> None:
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # unreadable index: every file is checked again and the index rewritten
        if (isinstance(found, dict) and found.get("version") == INDEX_VERSION
                and found.get("channels") == self.channels
                and found.get("root") == _where(self.root)):
            self._entries = dict(found.get("files", {}))
            self._pixels = dict(found.get("pixels", {}))
            if self.writable:  # its mtime says when a load last used it (tl-kit cache)
                with contextlib.suppress(OSError):
                    os.utime(path)

    def _key(self, file: str) -> str:
        file = os.fspath(file)
        prefix = self._prefix
        if file.startswith(prefix):  # string slicing: no Path object per file
            rel = file[len(prefix):]
            return rel if os.sep == "/" else rel.replace(os.sep, "/")
        try:
            return Path(file).relative_to(self.root).as_posix()
        except ValueError:
            return str(Path(file).resolve())

    def keys(self, files: list[str]) -> list[str]:
        """:meth:`_key` of each file (a slice for the files below the folder, as is usual)."""
        prefix, n = self._prefix, len(self._prefix)
        if os.sep == "/":
            return [f[n:] if f.startswith(prefix) else self._key(f) for f in files]
        return [self._key(f) for f in files]

    def dirty(self) -> bool:
        """Whether :meth:`save` would change the index (a verdict added or changed, or a
        file gone since it was written)."""
        return self._changed or len(self._seen) != len(self._entries) or bool(
            set(self._entries) - self._seen)

    def lookup_all(self, files: list[str], stats: list) -> list[tuple | None]:
        """``(status, reason, decoder)`` of each file unchanged since it was checked, plus
        ``(height, width)`` when the entry has its header, else None (``stats``: each file's
        :func:`~tl_kit.data.uri.stat_file` now, None when it
        could not be read: such a file is not looked up, so its entry is dropped at save).
        One pass and one lock for the whole listing: a call per file cost ~3 us of Python."""
        keys = self.keys(files)
        out: list[tuple[str, str, str] | None] = [None] * len(keys)
        get = self._entries.get
        with self._lock:
            for j, (key, st) in enumerate(zip(keys, stats, strict=True)):
                if st is None:
                    continue
                self._seen.add(key)
                entry = get(key)
                if entry is not None and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
                    out[j] = tuple(entry[2:7])
                    self.hits += 1
        return out

    def put(self, file: str, stat: FileStamp | os.stat_result, status: str, reason: str,
            decoder: str, height: int = -1, width: int = -1) -> None:
        """Record the verdict of ``file`` as it was when ``stat`` was taken (with its header's
        ``height`` and ``width`` when known, i.e. not negative)."""
        self.put_all([file], [stat], (status, reason, decoder), [(height, width)])

    def put_all(self, files: list[str], stats: list, verdict: tuple[str, str, str],
                headers: list | None = None) -> None:
        """Record one ``(status, reason, decoder)`` for every file in ``files`` (each as it
        was when its ``stats`` entry was taken; files with a None stat are not recorded),
        with each one's ``(height, width)`` from ``headers`` where known (not negative)."""
        keys = self.keys(files)
        headers = headers if headers is not None else [(-1, -1)] * len(keys)
        with self._lock:
            for key, st, (h, w) in zip(keys, stats, headers, strict=True):
                if st is None:
                    continue
                self._seen.add(key)
                entry = [st.st_size, st.st_mtime_ns, *verdict]
                if h >= 0 and w >= 0:
                    entry += [h, w]
                if self._entries.get(key) != entry:
                    self._entries[key] = entry
                    self._changed = True

    # --- the in-memory path's decoded pixels, kept beside the index ---

    def _pixel_file(self, key: str) -> Path:
        return self.path.with_name(f"{self.path.stem}-{key}.npy")

    def load_pixels(self, key: str, digest: str, shape: tuple) -> np.ndarray | None:
        """The uint8 pixels saved for this exact listing (``digest``: every file's path, size
        and mtime in order), memory-mapped read-only (nothing is read until a row is used),
        or None (other files, other size, unreadable)."""
        if self.path is None or self._pixels.get(key) != digest:
            return None
        try:
            arr = np.load(self._pixel_file(key), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.shape != tuple(shape) or arr.dtype != np.uint8:
            return None
        self.pixels_note = f"pixels mapped from {self._pixel_file(key).name}, nothing decoded"
        return arr

    def pixel_target(self, key: str, shape: tuple) -> np.ndarray | None:
        """A new zeroed uint8 array of ``shape`` for the scan to decode into, memory-mapped
        from a private file beside the index: :meth:`keep_pixels` then publishes that file
        for the next load, with no copy of the pixels (the pages written ARE the file). Its
        space is allocated first, so a full disk gives None here (the scan then decodes into
        plain memory and keeps nothing), never a crash mid-scan. None too when the index is
        read-only or has no location."""
        if not self.writable or self.path is None:
            return None
        target = self._pixel_file(key)
        tmp = target.with_name(f".{target.name}.{_HOST}-{os.getpid()}.tmp.npy")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _drop_stale(target)
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=tuple(shape))
            if hasattr(os, "posix_fallocate"):
                with open(tmp, "r+b") as f:
                    os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except (OSError, ValueError):
            tmp.unlink(missing_ok=True)
            return None
        with self._lock:
            self._pending[key] = tmp
        return arr

    def keep_pixels(self, key: str, digest: str, pixels: np.ndarray) -> bool:
        """Publish the file behind :meth:`pixel_target`'s ``pixels`` (now filled) for the
        next load of the same listing: renamed into place, atomically. ``pixels`` becomes
        read-only (the file is shared with later loads)."""
        with self._lock:
            tmp = self._pending.pop(key, None)
        if tmp is None:
            return False
        pixels.flags.writeable = False
        try:
            os.replace(tmp, self._pixel_file(key))
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        with self._lock:
            self._pixels[key] = digest
            self._changed = True
        self.pixels_note = f"pixels kept in {self._pixel_file(key).name} for the next load"
        self._drop_other_versions(key)
        return True

    def _drop_other_versions(self, key: str) -> None:
        """Remove the pixel files of the same size and resize mode but another
        ``RESIZE_VERSION`` (key ``...-r<N>``): no load reads them again, and a 100k-file
        folder's is over a GB. An array mapped from one stays valid in its process."""
        stem, _, version = key.rpartition("-r")
        if not stem or not version.isdigit():
            return
        prefix = f"{self.path.stem}-"
        for p in self.path.parent.glob(f"{prefix}{stem}-r*.npy"):
            other = p.name[len(prefix):-len(".npy")]
            base, _, n = other.rpartition("-r")
            if other != key and base == stem and n.isdigit():
                p.unlink(missing_ok=True)
                with self._lock:
                    self._pixels.pop(other, None)

    def drop_pixels(self, key: str) -> None:
        """Forget :meth:`pixel_target`'s file for ``key`` (a failed scan): it is removed; an
        array mapped from it stays valid in this process."""
        with self._lock:
            tmp = self._pending.pop(key, None)
        if tmp is not None:
            tmp.unlink(missing_ok=True)

    def save(self) -> bool:
        """Write the index (files of this listing only) if anything changed; False when
        nothing was written (unchanged, read-only, or the location is not writable)."""
        gone = set(self._entries) - self._seen
        if gone:
            for key in gone:
                del self._entries[key]
            self._changed = True
        if not (self.writable and self._changed):
            return False
        payload = {"version": INDEX_VERSION, "root": _where(self.root),
                   "channels": self.channels, "files": self._entries, "pixels": self._pixels}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{_HOST}-{os.getpid()}.tmp")
            tmp.write_text(json.dumps(payload, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            return False  # an index is an optimisation: loading goes on without it
        self._changed = False
        return True


def _drop_stale(target: Path) -> None:
    """Remove pixel files this host's processes left half-written beside ``target`` (their
    process is gone: killed mid-scan), so that they do not pile up."""
    for p in target.parent.glob(f".{target.name}.{_HOST}-*.tmp.npy"):
        try:
            pid = int(p.name[len(f".{target.name}.{_HOST}-"):-len(".tmp.npy")])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # not ours to signal: it exists
        return True
    return True
