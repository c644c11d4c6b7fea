"""Numbered version folders (``path/<version>/``, the layout TensorFlow Serving watches):
picking a version, checking the base folder, and installing a staged folder atomically."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tl_kit.errors import UserError

__all__ = ["next_version", "resolve_version", "check_base", "prepare_base", "version_folder",
           "staged_version"]


def next_version(path: str | os.PathLike) -> int:
    """The next free TensorFlow Serving version number under ``path`` (1 if none)."""
    base = Path(path)
    numbers = [int(c.name) for c in base.iterdir() if c.name.isdigit()] if base.is_dir() else []
    return max(numbers, default=0) + 1


def resolve_version(path: str | os.PathLike, version: int | None, overwrite: bool) -> int | None:
    """The version to export to as ``tl-kit export`` picks it: ``version`` when given;
    with ``overwrite`` and no version, the newest existing one under ``path`` (None when
    there is none yet); otherwise None (the next free one)."""
    if version is not None or not overwrite:
        return version
    newest = next_version(path) - 1
    return newest if newest >= 1 else None


def check_base(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a folder or can become one; a UserError naming it when
    it (or a folder above it) is a file. Nothing is created or changed."""
    base = Path(path)
    for folder in (base, *base.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "is a file" if folder == base else f"is under {str(folder)!r}, a file"
                raise UserError(
                    f"The export folder {str(base)!r} {what}, not a folder: exports go into "
                    f"numbered folders under a base folder; choose a folder (new or existing). "
                    f"Received: path={str(path)!r}")
            break
    return base


def prepare_base(path: str | os.PathLike) -> Path:
    """Check and create the base folder ``path`` (never a SavedModel itself)."""
    base = check_base(path)
    if (base / "saved_model.pb").exists():
        raise UserError(
            f"{str(base)!r} is itself a SavedModel; exports go into numbered folders under a "
            f"base folder. Pass its parent or a new folder. Received: path={str(path)!r}"
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"Cannot create the export folder {str(base)!r} ({error.strerror or error}). "
            f"Received: path={str(path)!r}") from None
    return base


def version_folder(base: Path, version: int | None, overwrite: bool) -> tuple[int, Path]:
    """``(version, base/<version>)``: the next free version for None; an existing folder is
    an error unless ``overwrite``."""
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise UserError(f"version must be a positive integer. Received: version={version}")
    target = base / str(version)
    if target.exists() and not overwrite:
        raise UserError(
            f"An export already exists at {str(target)!r}; pass overwrite=True to replace it "
            f"or another version. Received: version={version}, overwrite={overwrite}"
        )
    return version, target


@contextmanager
def staged_version(base: Path, version: int) -> Iterator[Path]:
    """A hidden staging folder beside ``base/<version>``; renamed into place (replacing an
    existing version) when the block succeeds, removed when it fails."""
    target = base / str(version)
    # mkdir (not tempfile.mkdtemp, which makes 0700 folders): the version folder honours the
    # umask like any file the user writes, so a serving process of another user can read it.
    staging = base / f".tmp-export-{version}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        yield staging
        if target.exists():  # overwrite=True: swap, then drop the old one
            old = base / f".old-{version}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
