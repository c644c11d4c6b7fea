"""Where the hygiene index lives: the user's cache, shared by every run of a folder, so a second
training run into a new run directory does not check an unchanged folder again."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

import tl_kit.data as D
from tl_kit.data import hygiene, load_data
from tl_kit.data.hygiene_index import INDEX_DIR, cache_dir, in_run_dir, index_location

SIZE = (16, 16)


def _load(root, checked, **kw):
    checked.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_data(root, image_size=SIZE, validation_split=0.25, seed=1, **kw)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("TL_KIT_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "tl_kit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tl_kit"
    with monkeypatch.context() as m:
        m.setattr(Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
        assert cache_dir() is None  # no home directory: no cache, not a crash
    monkeypatch.setenv("TL_KIT_CACHE_DIR", "")  # set and empty: no cache
    assert cache_dir() is None
    run = tmp_path / "run"
    where = index_location(Path("/data/x"), 3, run_dir=run)
    assert where.parent == run / INDEX_DIR and in_run_dir(where, run)  # the run's own, as before
    assert index_location(Path("/data/x"), 3) is None


def test_a_new_run_directory_reuses_the_verdicts_of_an_earlier_run(photos, tmp_path, checked, monkeypatch):
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # streaming: only the verdicts are looked up
    first = _load(photos, checked, run_dir=tmp_path / "run_a")
    n = len(checked)
    assert n == len(first.hygiene) - 1  # every file checked (stray.txt is only listed)
    shared = list((cache_dir() / "hygiene").glob("*.json"))
    assert len(shared) == 1 and not (tmp_path / "run_a" / INDEX_DIR).exists()
    second = _load(photos, checked, run_dir=tmp_path / "run_b")  # another training run
    assert checked == []  # listed and stat'ed only
    assert [(r.path, r.status, r.reason) for r in second.hygiene] == \
        [(r.path, r.status, r.reason) for r in first.hygiene]
    assert (tmp_path / "run_b" / "hygiene.csv").is_file()  # the run still records its hygiene
    for s in ("train", "val"):
        assert second.paths(s) == first.paths(s)
    (photos / "apple" / "img1.jpg").write_bytes(b"not a jpeg any more")
    third = _load(photos, checked, run_dir=tmp_path / "run_c")
    assert checked == ["img1.jpg"]  # only the changed file is checked again
    assert "img1.jpg" in {Path(p).name for p, _ in third.info.skipped}


def test_a_new_run_directory_maps_the_pixels_an_earlier_run_decoded(photos, tmp_path, checked, monkeypatch):
    import tl_kit.decode as dec

    first = _load(photos, checked, run_dir=tmp_path / "run_a")
    assert first.examples("train").in_memory and checked
    calls = []
    real = dec.decode_file
    monkeypatch.setattr(dec, "decode_file", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    graph = []
    real_graph = hygiene._graph_pass
    monkeypatch.setattr(hygiene, "_graph_pass", lambda *a, **k: graph.append(1) or real_graph(*a, **k))
    second = _load(photos, checked, run_dir=tmp_path / "run_b")
    assert checked == [] and calls == [] and graph == []  # nothing decoded at all
    assert "pixels kept in" in first.info.index and "0 of " in first.info.index
    n = len(second.hygiene) - 1  # stray.txt is listed, never looked up
    assert f"{n} of {n} files known" in second.info.index and "pixels mapped from" in second.info.index
    assert f"hygiene index: {second.info.index}" in str(second.info)
    base = second.examples("train").pixels
    assert isinstance(base, np.memmap) and Path(base.filename).parent == cache_dir() / "hygiene"
    for s in ("train", "val"):
        np.testing.assert_array_equal(second.arrays(s)[0], first.arrays(s)[0])


def test_a_run_that_kept_its_own_index_still_reads_it_and_evaluation_never_writes_it(
        photos, tmp_path, checked, monkeypatch):
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
    cache = cache_dir()
    monkeypatch.setenv("TL_KIT_CACHE_DIR", "")  # no shared cache: the index goes into the run
    run = tmp_path / "run"
    _load(photos, checked, run_dir=run)
    own = list((run / INDEX_DIR).glob("*.json"))
    assert len(own) == 1 and checked
    stamp = own[0].stat().st_mtime_ns
    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(cache))  # the cache is on again
    (photos / "apple" / "img1.jpg").write_bytes(b"changed since training")
    _load(photos, checked, run_dir=run, record=False)  # evaluation of that run
    assert checked == ["img1.jpg"]  # the run's index was read: only the changed file checked
    assert own[0].stat().st_mtime_ns == stamp  # and not written: a run's record stays as it was
    assert not (cache / "hygiene").exists()  # nor was a shared index made for it
    # an evaluation with no index of its run: the shared cache, which it may write
    _load(photos, checked, run_dir=tmp_path / "other_run", record=False)
    assert len(list((cache / "hygiene").glob("*.json"))) == 1
    _load(photos, checked, run_dir=tmp_path / "other_run", record=False)
    assert checked == []
