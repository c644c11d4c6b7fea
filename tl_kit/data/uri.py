"""Folders given as ``tf.io.gfile`` URIs (``gs://bucket/photos``, ``ram://photos``, the
schemes tensorflow-io adds) or as local paths: the few path operations a folder load uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["FileStamp", "URIPath", "as_path", "folder_prefix", "is_uri", "join", "relative",
           "stat_all", "stat_file", "walk"]


class FileStamp(NamedTuple):
    """What the hygiene index keys a file's verdict on: its size and modification time.

    A 2-tuple (about 140 bytes a file) rather than an ``os.stat_result`` (about 650): a
    folder load keeps one per file while it scans."""

    st_size: int
    st_mtime_ns: int


class URIPath:
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
        return f"URIPath({self._s!r})"

    def __truediv__(self, other) -> URIPath:
        return URIPath(f"{self._s}/{other}")

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._s)

    def __lt__(self, other) -> bool:
        return str(self) < str(other)

    @property
    def name(self) -> str:
        return self._s.rsplit("/", 1)[-1]

    def expanduser(self) -> URIPath:
        return self

    def resolve(self) -> URIPath:
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


def is_uri(source) -> bool:
    """Whether ``source`` is a ``tf.io.gfile`` URI (``scheme://...``)."""
    return isinstance(source, str) and "://" in source


def as_path(source):
    """``Path`` for local folders, :class:`URIPath` for ``tf.io.gfile`` URIs."""
    return URIPath(source) if is_uri(source) else Path(source)


def walk(folder):
    """``(dirpath, dirnames, filenames)`` below ``folder`` (os.walk, or tf.io.gfile.walk)."""
    if isinstance(folder, URIPath):
        import tensorflow as tf

        for dirpath, dirnames, filenames in tf.io.gfile.walk(str(folder)):
            dirnames[:] = sorted(d.rstrip("/") for d in dirnames if not d.startswith("."))
            yield dirpath.rstrip("/"), dirnames, filenames
        return
    yield from os.walk(folder, followlinks=True)


def join(dirpath: str, name: str) -> str:
    """``dirpath/name`` for a URI or a local folder."""
    return f"{dirpath}/{name}" if "://" in dirpath else os.path.join(dirpath, name)


def stat_file(path: str) -> FileStamp:
    """Size and mtime of a file: ``os.stat``, or ``tf.io.gfile.stat`` for a URI."""
    if "://" not in path:
        st = os.stat(path)
        return FileStamp(st.st_size, st.st_mtime_ns)
    import tensorflow as tf

    st = tf.io.gfile.stat(path)
    return FileStamp(int(st.length), int(st.mtime_nsec))


def stat_all(paths: list[str]) -> list[FileStamp | None]:
    """:func:`stat_file` of each path, None for one that cannot be read (gone, no access)."""
    out: list[FileStamp | None] = []
    for path in paths:
        try:
            out.append(stat_file(path))
        except Exception:  # noqa: BLE001 - OSError, or tf.errors for a URI
            out.append(None)
    return out


def folder_prefix(root) -> str:
    """``root`` plus its separator: what a file below it starts with."""
    return f"{root}/" if isinstance(root, URIPath) else os.path.join(str(root), "")


def relative(path: str, prefix: str) -> str:
    """``path`` relative to the folder whose path plus separator is ``prefix`` (posix)."""
    rel = path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, prefix)
    return rel if os.sep == "/" else rel.replace(os.sep, "/")
