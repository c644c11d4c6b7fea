"""Tests for tl_kit.export.versions and format names: which version an export goes to, the
base folder checks, and the staged install that leaves nothing behind on failure."""

from __future__ import annotations

import pytest

from tl_kit.errors import UserError
from tl_kit.export import next_version, resolve_version
from tl_kit.export.model import check_formats
from tl_kit.export.versions import check_base, prepare_base, staged_version, version_folder


def test_next_and_resolved_versions(tmp_path):
    base = tmp_path / "m"
    assert next_version(base) == 1  # no folder yet
    # --overwrite without --version: the newest version, None when there is none yet
    assert resolve_version(base, None, True) is None
    assert resolve_version(base, None, False) is None
    for name in ("1", "3", "notes", ".tmp-export-9-abc"):
        (base / name).mkdir(parents=True)
    assert next_version(base) == 4
    assert resolve_version(base, None, True) == 3
    assert resolve_version(base, None, False) is None  # the next free one
    assert resolve_version(base, 1, True) == 1 and resolve_version(base, 7, False) == 7


def test_version_folders_and_base_checks(tmp_path):
    base = prepare_base(tmp_path / "a" / "b")
    assert base.is_dir()
    assert version_folder(base, None, False) == (1, base / "1")
    (base / "1").mkdir()
    with pytest.raises(UserError, match="overwrite=True"):
        version_folder(base, 1, False)
    assert version_folder(base, 1, True) == (1, base / "1")
    assert version_folder(base, None, False) == (2, base / "2")
    with pytest.raises(UserError, match="positive integer"):
        version_folder(base, 0, False)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UserError, match="itself a SavedModel"):
        prepare_base(base / "1")
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        check_base(file)
    with pytest.raises(UserError, match="a file"):
        check_base(file / "sub")
    assert not (file / "sub").exists()


def test_staged_version_installs_or_leaves_nothing(tmp_path):
    base = prepare_base(tmp_path / "m")
    with staged_version(base, 1) as staging:
        assert staging.parent == base and staging.name.startswith(".tmp-export-1-")
        (staging / "a.txt").write_text("new")
    assert (base / "1" / "a.txt").read_text() == "new"
    with pytest.raises(RuntimeError, match="failed"):
        with staged_version(base, 1) as staging:
            (staging / "a.txt").write_text("broken")
            raise RuntimeError("failed")
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert (base / "1" / "a.txt").read_text() == "new"
    with staged_version(base, 1) as staging:  # replaces the existing version
        (staging / "b.txt").write_text("newer")
    assert sorted(p.name for p in (base / "1").iterdir()) == ["b.txt"]
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_check_formats():
    assert check_formats("Saved_Model") == ("saved_model",)
    assert check_formats(["tflite", "saved-model", "TFLite"]) == ("tflite", "saved_model")
    with pytest.raises(UserError, match="formats must be some of"):
        check_formats(["coreml"])
    with pytest.raises(UserError, match="formats must be some of"):
        check_formats([])
