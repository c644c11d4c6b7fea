"""tl_kit.data.manifest and split: reproducible splits, the manifest reused, read-only loads."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tl_kit.data import load_data

SIZE = (16, 16)


def test_split_reproducible_and_manifest_reused(tmp_path, fill_class):
    root = tmp_path / "d"
    fill_class(root / "a", 12, (10, 10, 10))
    fill_class(root / "b", 8, (20, 20, 20))
    kw = dict(image_size=SIZE, validation_split=0.25, test_split=0.25)
    one = load_data(root, seed=7, **kw)
    two = load_data(root, seed=7, **kw)
    for s in ("train", "val", "test"):
        assert one.paths(s) == two.paths(s)
    assert one.info.split_counts["val"] == {"a": 3, "b": 2}
    other = load_data(root, seed=8, **kw)
    assert other.paths("val") != one.paths("val")
    # class weights: sklearn "balanced" from the train split (a: 6, b: 4)
    assert one.info.class_weights == pytest.approx({0: 10 / 12, 1: 10 / 8})

    run = tmp_path / "run"
    first = load_data(root, seed=7, run_dir=run, **kw)
    manifest = json.loads((run / "manifest.json").read_text())
    assert sorted(manifest["splits"]["val"]) == sorted(
        p.split("d/")[-1] for p in first.paths("val"))
    # add files and remove one; reuse with another seed: old files keep their side
    fill_class(root / "a", 16, (10, 10, 10))  # img12..img15 are new
    removed = first.paths("train")[0]
    Path(removed).unlink()
    with pytest.warns(UserWarning):
        again = load_data(root, seed=99, run_dir=run, **kw)
    for s in ("train", "val", "test"):
        old = set(first.paths(s)) - {removed}
        assert old <= set(again.paths(s))
    assert sum(again.size(s) for s in ("train", "val", "test")) == 20 - 1 + 4
    assert any("missing" in why for _, why in again.info.skipped)
    manifest2 = json.loads((run / "manifest.json").read_text())
    assert sum(len(v) for v in manifest2["splits"].values()) == 24


def test_record_false_reads_the_manifest_and_writes_nothing(tmp_path, fill_class):
    root = tmp_path / "d"
    fill_class(root / "a", 8, (10, 10, 10))
    fill_class(root / "b", 8, (20, 20, 20))
    run = tmp_path / "run"
    first = load_data(root, image_size=SIZE, validation_split=0.25, run_dir=run, seed=1)
    def files(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    before = files(run)
    assert {"manifest.json", "hygiene.csv", "hygiene.json"} <= set(before)
    fill_class(root / "a", 10, (10, 10, 10))  # two files added
    (root / "b" / "img0.png").write_bytes(b"now broken")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load_data(root, image_size=SIZE, validation_split=0.25, run_dir=run, seed=1,
                          record=False)
    assert files(run) == before
    assert set(first.paths("val")) - {str(root / "b" / "img0.png")} <= set(again.paths("val"))
    assert sum(again.size(s) for s in ("train", "val")) == 17
    fresh = tmp_path / "fresh"
    with pytest.warns(UserWarning, match="Skipped 1"):
        load_data(root, image_size=SIZE, run_dir=fresh, record=False)
    assert not fresh.exists()
