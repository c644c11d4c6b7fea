"""Undo what ``Learner.fit`` wrote into a run directory when it fails before training.

Before the first epoch, fit creates the run directory, scans the data (``manifest.json``,
``hygiene.csv``, ``hygiene.json``), appends to ``train.log`` and, with ``overwrite=True``,
clears the previous run. When any of that ends in an error (a one-class folder, a clash
of settings, missing weights), :class:`PreTrainingUndo` puts the directory back: a
directory fit created is removed (with the empty parents it created), an existing one
gets back exactly the entries it had.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["PreTrainingUndo"]

STASH = ".tl_kit_undo"  # inside the run directory while fit prepares; gone afterwards
# Top-level files fit may rewrite in place before training (copied, restored on failure).
REWRITTEN = ("train.log", "manifest.json", "hygiene.csv", "hygiene.json", "run.json",
             "config.toml")


class PreTrainingUndo:
    """Snapshot of a run directory taken before fit touches it.

    ``set_aside(path)`` replaces deleting a previous run's artefact (it is moved into a
    stash); ``restore()`` puts everything back; ``commit()`` drops the stash once training
    may start.
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.created = _first_missing(self.dir)
        self.stash = self.dir / STASH
        self.before: set[str] = set()
        if self.created is None:
            shutil.rmtree(self.stash, ignore_errors=True)  # left by a killed earlier attempt
            self.before = {p.name for p in self.dir.iterdir()}
            for name in REWRITTEN:
                if (self.dir / name).is_file():
                    self.stash.mkdir(exist_ok=True)
                    shutil.copy2(self.dir / name, self.stash / name)

    def set_aside(self, path: Path) -> None:
        """Take ``path`` (a file or folder in the run directory) out of the way."""
        if self.created is not None or path.name not in self.before:
            _remove(path)  # this fit wrote it: nothing of the user's to keep
            return
        self.stash.mkdir(exist_ok=True)
        if (self.stash / path.name).exists():  # the stash holds the original already
            _remove(path)
        else:
            os.replace(path, self.stash / path.name)

    def restore(self) -> None:
        """Put the run directory back as it was (or remove it if fit created it)."""
        if self.created is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            parent = self.dir.absolute().parent
            while parent == self.created or self.created in parent.parents:
                try:
                    parent.rmdir()  # only while empty
                except OSError:
                    break
                parent = parent.parent
            return
        if not self.dir.is_dir():
            return
        for entry in self.dir.iterdir():
            if entry.name not in self.before and entry.name != STASH:
                _remove(entry)
        if self.stash.is_dir():
            for entry in self.stash.iterdir():
                target = self.dir / entry.name
                if target.exists():
                    _remove(target)
                os.replace(entry, target)
            self.stash.rmdir()

    def commit(self) -> None:
        """Training starts: the stashed copies and the replaced run are no longer needed."""
        shutil.rmtree(self.stash, ignore_errors=True)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` (itself included) that does not exist yet."""
    missing = None
    path = path.absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
