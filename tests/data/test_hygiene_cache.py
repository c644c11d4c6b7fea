"""The user's hygiene cache, folder by folder: what `cache_contents` lists and what
`clear_cache` removes (`tl-kit cache list|clear`)."""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import tl_kit.data as D
from tl_kit.data import load_data
from tl_kit.data.hygiene_cache import cache_contents, clear_cache, hygiene_cache_dir
from tl_kit.data.hygiene_index import _HOST
from tl_kit.errors import UserError

DAY = 86400


def _load(root, size=(16, 16), **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_data(root, image_size=size, validation_split=0.25, seed=1, **kw)


def _first_batch(data) -> np.ndarray:
    return next(iter(data.dataset("train", batch_size=4, shuffle=False)))[0].numpy()


def _files(where: Path) -> set[str]:
    return {p.name for p in where.iterdir()}


def test_list_shows_each_folder_with_its_verdicts_pixels_and_sizes(photos, tmp_path):
    first = _load(photos)
    _load(photos, size=(8, 8))  # a second image size: a second pixel file
    _load(photos, channels=1)  # grey: an entry of its own
    where = hygiene_cache_dir()
    unrelated = where / "notes.txt"
    unrelated.write_text("not tl_kit's")
    contents = cache_contents()
    assert contents.where == where and contents.strays == []
    assert sorted((f.folder, f.channels) for f in contents.folders) == [
        (str(photos.resolve()), 1), (str(photos.resolve()), 3)]
    rgb = next(f for f in contents.folders if f.channels == 3)
    assert rgb.files == sum(bool(r.label) for r in first.hygiene)  # stray.txt: listed only
    assert rgb.skipped == sum(r.status == "skipped" and bool(r.label) for r in first.hygiene) > 0
    assert rgb.exists is True
    assert sorted(p.key.split("-")[0] for p in rgb.pixels) == ["16x16", "8x8"]
    assert all(p.current for p in rgb.pixels)
    for p in rgb.pixels:
        h, w = map(int, p.key.split("-")[0].split("x"))
        ok = sum(r.status == "ok" and bool(r.label) for r in first.hygiene)
        assert p.bytes == p.path.stat().st_size >= h * w * 3 * ok
    assert rgb.bytes == rgb.index.stat().st_size + sum(p.path.stat().st_size for p in rgb.pixels)
    assert contents.bytes == sum(f.bytes for f in contents.folders)
    assert unrelated.name not in {p.path.name for f in contents.folders for p in f.pixels}
    d = contents.as_dict()
    assert d["cache_dir"] == str(where) and len(d["folders"]) == 2


def _aged(path: Path, days: float) -> Path:
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def test_leftover_files_are_strays_but_a_fill_in_progress_is_not(photos):
    _load(photos)
    where = hygiene_cache_dir()
    stem = "0123456789abcdef-c3"
    orphan = where / f"{stem}-16x16-stretch-r3.npy"  # its index is gone
    orphan.write_bytes(b"x" * 100)
    dead = where / f".{stem}.json.{_HOST}-999999999.tmp"  # this host, no such process
    live = where / f".{stem}-16x16-stretch-r3.npy.{_HOST}-{os.getpid()}.tmp.npy"  # filling
    elsewhere = where / f".{stem}-8x8-stretch-r3.npy.otherhost-77.tmp.npy"  # a shared cache
    abandoned = where / f".{stem}-4x4-stretch-r3.npy.otherhost-78.tmp.npy"
    unnamed = where / f".{stem}.json.4242.tmp"  # an older index save: no host in its name
    for f in (dead, live, elsewhere, abandoned, unnamed):
        f.write_bytes(b"x" * 10)
    _aged(dead, 0)
    _aged(abandoned, 2 / 24)  # no one has written to it for two hours
    _aged(_aged(unnamed, 0.5), 0.5)
    broken = where / "fedcba9876543210-c3.json"
    broken.write_text("not json")
    malformed = {  # readable JSON, but no load would read it as an index
        "1111111111111111-c3.json": {"root": "/x", "channels": 3, "files": []},
        "2222222222222222-c3.json": {"version": 1, "root": "/x", "channels": 3, "files": 5},
        "3333333333333333-c3.json": {"version": 1, "root": "/x", "channels": 1, "files": {}},
        "4444444444444444-c3.json": {"version": 99, "root": "/x", "channels": 3, "files": {}},
        "5555555555555555-c3.json": [1, 2, 3],
        "6666666666666666-c3.json": {"version": 1, "root": "/x", "channels": 3, "files": {},
                                     "pixels": ["16x16"]},
    }
    for name, body in malformed.items():
        (where / name).write_text(json.dumps(body))
    contents = cache_contents()
    assert sorted(p.name for p, _ in contents.strays) == sorted(
        [orphan.name, dead.name, abandoned.name, unnamed.name, broken.name, *malformed])
    assert dict(contents.strays)[orphan] == 100
    assert sorted((p.name, n, w) for p, n, w in contents.busy) == sorted([
        (live.name, 10, f"{_HOST} pid {os.getpid()}"), (elsewhere.name, 10, "otherhost pid 77")])
    assert contents.bytes == sum(f.bytes for f in contents.folders) + sum(
        n for _, n in contents.strays) + 20
    assert len(contents.folders) == 1
    removed = {p for p, _ in clear_cache(everything=True)}
    assert live.exists() and elsewhere.exists()  # busy: never removed
    assert removed == {p for p, _ in contents.strays} | {contents.folders[0].index} | {
        p.path for p in contents.folders[0].pixels}
    _aged(elsewhere, 2 / 24)  # its writer went quiet: now a stray
    assert elsewhere in {p for p, _ in clear_cache(gone=True)} and not elsewhere.exists()


def test_a_folder_is_found_however_it_is_spelled(photos, tmp_path, monkeypatch):
    _load(photos)
    link = tmp_path / "link"
    link.symlink_to(photos, target_is_directory=True)
    monkeypatch.chdir(photos.parent)
    for spelled in (f"{photos}/", f"./{photos.name}", photos.name, str(link)):
        [path] = [p for p, _ in clear_cache([spelled], dry_run=True) if p.suffix == ".json"]
        assert path == cache_contents().folders[0].index, spelled


def test_a_uri_folder_is_matched_as_a_load_keys_it_and_never_gone(tmp_path):
    where = hygiene_cache_dir()
    where.mkdir(parents=True)
    index = where / "abcdefabcdefabcd-c3.json"
    index.write_text(json.dumps({"version": 1, "root": "gs://bucket/photos", "channels": 3,
                                 "files": {"a.jpg": [1, 2, "ok", "", "jpeg"]}, "pixels": {}}))
    [entry] = cache_contents().folders
    assert entry.folder == "gs://bucket/photos" and entry.exists is None and entry.files == 1
    assert clear_cache(gone=True) == []  # not looked up, so never taken as gone
    assert [p for p, _ in clear_cache(["gs://bucket/photos/"], dry_run=True)] == [index]


def test_a_folder_that_cannot_be_looked_up_is_not_known_and_never_gone(photos, monkeypatch):
    _load(photos)
    real = Path.is_dir

    def is_dir(self):
        if self == photos.resolve():
            raise PermissionError(13, "Permission denied")  # an unreadable parent, a stale mount
        return real(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    [entry] = cache_contents().folders
    assert entry.exists is None
    assert clear_cache(gone=True) == []


def test_a_pixel_file_its_index_does_not_name_is_old(photos):
    _load(photos)
    [rgb] = cache_contents().folders
    [kept] = rgb.pixels
    other = kept.path.with_name(kept.path.name.replace("16x16", "12x12"))
    shutil.copyfile(kept.path, other)
    by = {p.path: p for p in cache_contents().folders[0].pixels}
    assert by[kept.path].current is True and by[other].current is False


def test_gone_with_pixels_removes_leftover_pixel_files_and_keeps_every_index(photos):
    _load(photos)
    where = hygiene_cache_dir()
    orphan = where / "0123456789abcdef-c3-16x16-stretch-r3.npy"
    orphan.write_bytes(b"x" * 100)
    broken = where / "fedcba9876543210-c3.json"
    broken.write_text("not json")
    removed = [p for p, _ in clear_cache(gone=True, pixels_only=True)]
    assert removed == [orphan] and broken.exists()
    assert cache_contents().folders[0].index.exists()


def test_a_file_that_cannot_be_removed_is_named_after_the_rest_are_removed(photos, tmp_path,
                                                                           monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(photos, other)
    _load(photos)
    _load(other)
    stuck = next(f for f in cache_contents().folders if f.folder == str(photos.resolve())).index
    real = Path.unlink

    def unlink(self, *a, **k):
        if self == stuck:
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(UserError, match=rf"could not remove 1: {stuck} \(Permission denied\)"):
        clear_cache(everything=True)
    assert stuck.exists()
    assert [p for p in hygiene_cache_dir().iterdir()] == [stuck]  # every other file removed


def test_clear_a_folder_removes_its_entry_and_the_next_load_checks_again(photos, tmp_path,
                                                                       checked):
    other = tmp_path / "other"
    shutil.copytree(photos, other)
    _load(photos)
    _load(other)
    where = hygiene_cache_dir()
    (where / "notes.txt").write_text("kept")
    before = cache_contents()
    mine = next(f for f in before.folders if f.folder == str(photos.resolve()))
    planned = clear_cache([str(photos)], dry_run=True)
    assert sorted(p for p, _ in planned) == sorted([mine.index, *(p.path for p in mine.pixels)])
    assert cache_contents().folders == before.folders  # a dry run removes nothing
    removed = clear_cache([str(photos)])
    assert removed == planned and sum(n for _, n in removed) == mine.bytes
    assert not mine.index.exists() and not any(p.path.exists() for p in mine.pixels)
    assert [f.folder for f in cache_contents().folders] == [str(other.resolve())]
    assert "notes.txt" in _files(where)  # not tl_kit's: left alone
    checked.clear()
    _load(other)
    assert checked == []  # the other folder kept its verdicts
    again = _load(photos)
    assert len(checked) == len(again.hygiene) - 1  # checked again (stray.txt is only listed)


def test_clear_pixels_keeps_the_verdicts(photos, checked, monkeypatch):
    first = _load(photos)
    rgb = cache_contents().folders[0]
    removed = clear_cache([str(photos)], pixels_only=True)
    assert sorted(p for p, _ in removed) == sorted(p.path for p in rgb.pixels)
    assert rgb.index.exists() and not any(p.path.exists() for p in rgb.pixels)
    with monkeypatch.context() as m:
        m.setattr(D, "CACHE_LIMIT_BYTES", 0)  # streaming: only the verdicts are needed
        checked.clear()
        _load(photos)
        assert checked == []  # the verdicts were kept: nothing checked again
    again = _load(photos)  # in memory: each file decoded once more, its pixels kept again
    assert "kept in" in again.info.index
    np.testing.assert_array_equal(_first_batch(again), _first_batch(first))
    assert [p.path.name for p in cache_contents().folders[0].pixels] == \
        [p.path.name for p in rgb.pixels]


def test_gone_and_older_than_pick_their_entries(photos, tmp_path):
    old = tmp_path / "old"
    gone = tmp_path / "gone"
    shutil.copytree(photos, old)
    shutil.copytree(photos, gone)
    for root in (photos, old, gone):
        _load(root, size=(8, 8))
    orphan = hygiene_cache_dir() / "0123456789abcdef-c3.json"
    orphan.write_text("{broken")
    by = {f.folder: f for f in cache_contents().folders}
    aged = by[str(old.resolve())].index
    long_ago = time.time() - 40 * DAY
    os.utime(aged, (long_ago, long_ago))
    shutil.rmtree(gone)
    by = {f.folder: f for f in cache_contents().folders}
    assert by[str(gone.resolve())].exists is False
    assert time.time() - by[str(old.resolve())].last_used > 39 * DAY

    assert clear_cache(older_than_days=50) == []
    removed = {p for p, _ in clear_cache(gone=True)}
    assert by[str(gone.resolve())].index in removed and orphan in removed
    assert by[str(old.resolve())].index not in removed
    assert {f.folder for f in cache_contents().folders} == {
        str(photos.resolve()), str(old.resolve())}

    text = aged.read_text()
    _load(old, size=(8, 8))  # a load marks the entry used, without rewriting it
    assert aged.read_text() == text and time.time() - aged.stat().st_mtime < DAY
    assert clear_cache(older_than_days=30, dry_run=True) == []
    os.utime(aged, (long_ago, long_ago))
    removed = {p for p, _ in clear_cache(older_than_days=30)}
    assert aged in removed and {f.folder for f in cache_contents().folders} == {
        str(photos.resolve())}
    assert by[str(photos.resolve())].index in {p for p, _ in clear_cache(everything=True)}
    assert cache_contents().folders == []


def test_clear_says_what_is_wrong(photos, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="Say what to clear"):
        clear_cache()
    with pytest.raises(UserError, match="for folder '.*nowhere'"):
        clear_cache([str(tmp_path / "nowhere")])
    with pytest.raises(UserError, match="older_than_days must be 0 or more"):
        clear_cache(older_than_days=-1)
    _load(photos)
    with pytest.raises(UserError, match="nowhere"):  # nothing is removed when one is wrong
        clear_cache([str(photos), str(tmp_path / "nowhere")])
    assert len(cache_contents().folders) == 1
    monkeypatch.setenv("TL_KIT_CACHE_DIR", "")
    assert cache_contents().where is None and cache_contents().folders == []
    with pytest.raises(UserError, match="turned off"):
        clear_cache(everything=True)


def test_a_cleared_cache_under_a_load_in_progress_is_harmless(photos, monkeypatch):
    """The in-memory pixels of a load stay valid when their file is removed under them."""
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 1 << 30)
    first = _load(photos)
    second = _load(photos)  # maps the kept pixels
    assert "mapped from" in second.info.index
    batch = _first_batch(second)
    clear_cache(everything=True)
    assert not any(hygiene_cache_dir().iterdir())
    np.testing.assert_array_equal(_first_batch(second), batch)
    np.testing.assert_array_equal(batch, _first_batch(first))
