"""tl_kit.data.hygiene and hygiene_index: one decoder recorded, verdicts and pixels kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_kit.data import hygiene_table, load_data

SIZE = (16, 16)


# === One decoder (tl_kit.decode) in every path ===


def _pixels_by_path(data, split):
    x = np.concatenate([b[0].numpy() for b in data.dataset(split, batch_size=64, shuffle=False)])
    return dict(zip(data.paths(split), x, strict=True))


def test_decoder_recorded_and_streaming_equals_cached_exactly(messy, monkeypatch):
    import tl_kit.data as D
    from tl_kit.decode import decode_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached = load_data(messy, image_size=SIZE, validation_split=0.0)
        monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
        streamed = load_data(messy, image_size=SIZE, validation_split=0.0)
    assert cached.examples("train").x is not None and streamed.examples("train").x is None
    decoder = {Path(r.path).name: r.decoder for r in cached.hygiene if r.status == "ok"}
    for name in ("rotated.jpg", "cmyk.jpg", "transparent.png"):
        assert decoder[name] == "pil", name  # TF would show these differently
    for name in ("img0.jpg", "img0.png", "img0.bmp", "grey.png", "really_png.jpg", "pic.WebP"):
        assert decoder[name] == "tf", name
    assert "decoded with PIL" in hygiene_table(cached.hygiene)
    # In-graph streaming (TF ops, Pillow files through numpy_function) == the scan's cache
    a, b = _pixels_by_path(cached, "train"), _pixels_by_path(streamed, "train")
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path], b[path], err_msg=path)
        np.testing.assert_array_equal(a[path], decode_file(path, SIZE)[0], err_msg=path)


# === Hygiene index (tl_kit.data.hygiene_index): a second load only lists and stats ===


def test_hygiene_index_skips_unchanged_files_and_rechecks_changed_ones(messy, tmp_path, monkeypatch):
    import os

    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # streaming: pixels not needed at load
    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    import shutil

    shutil.copytree(messy, root)
    from tl_kit.data import hygiene

    decoded = []  # every file the scan reads and decodes (the index's "todo")
    real = hygiene._check_all

    def check_all(todo, files, *a, **k):
        decoded.extend(Path(files[i][0]).name for i in todo)
        return real(todo, files, *a, **k)

    monkeypatch.setattr(hygiene, "_check_all", check_all)

    def load():
        decoded.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_data(root, image_size=SIZE, validation_split=0.0)

    first = load()
    n_files = len(decoded)
    assert n_files == len(first.hygiene) - 1  # every file checked once (stray.txt is listed only)
    index_files = list((tmp_path / "cache" / "hygiene").glob("*.json"))
    assert len(index_files) == 1
    stamp = (index_files[0].stat().st_ino, index_files[0].read_bytes())  # saved: a new inode
    os.chmod(root, 0o555)  # a read-only data folder works: nothing is written there
    try:
        second = load()
    finally:
        os.chmod(root, 0o755)
    assert decoded == []  # unchanged folder: listed and stat'ed, nothing decoded
    assert (index_files[0].stat().st_ino, index_files[0].read_bytes()) == stamp  # not rewritten
    assert [(r.path, r.status, r.reason, r.decoder) for r in second.hygiene] == \
        [(r.path, r.status, r.reason, r.decoder) for r in first.hygiene]
    assert second.info.skipped == first.info.skipped
    # changed, added and removed files
    good = root / "apple" / "img1.jpg"
    from tl_kit.data.uri import FileStamp, stat_file

    kept = stat_file(str(good))  # what the index keeps per file: size and mtime only
    assert isinstance(kept, FileStamp) and kept == (good.stat().st_size, good.stat().st_mtime_ns)
    (root / "apple" / "img2.jpg").write_bytes(good.read_bytes()[:40])  # now truncated
    Image.new("RGB", (20, 24), (200, 30, 30)).save(root / "apple" / "new.jpg")
    (root / "banana" / "img3.png").unlink()
    third = load()
    assert sorted(decoded) == ["img2.jpg", "new.jpg"]
    skipped = {Path(p).name for p, _ in third.info.skipped}
    assert "img2.jpg" in skipped and "new.jpg" in {Path(p).name for p in third.paths("train")}
    (root / "banana" / "img3.png").write_bytes((root / "banana" / "img0.png").read_bytes())
    load()
    assert decoded == ["img3.png"]  # a removed file that comes back is checked again
    # the in-memory path needs pixels: it decodes, and the verdicts agree
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 1 << 30)
    cached = load()
    assert len(decoded) == n_files + 1 and cached.examples("train").x is not None  # + new.jpg


def test_in_memory_pixels_are_kept_beside_the_index_until_a_file_changes(messy, tmp_path, monkeypatch):
    import os
    import shutil

    import tl_kit.decode as dec

    root = tmp_path / "photos"
    shutil.copytree(messy, root)
    index = tmp_path / "index.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = load_data(root, image_size=SIZE, validation_split=0.25, hygiene_index=index, seed=2)
        kept = list(tmp_path.glob(f"index-16x16-stretch-r{dec.RESIZE_VERSION}.npy"))
        assert len(kept) == 1 and not list(tmp_path.glob(".*.tmp.npy"))  # published, no leftover
        filled = first.examples("train").pixels  # decoded straight into the kept file: no copy
        assert isinstance(filled, np.memmap) and _mapped(kept[0])
        assert first.examples("val").pixels is filled and not filled.flags.writeable
        real = dec.decode_file
        calls = []
        monkeypatch.setattr(dec, "decode_file", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
        again = load_data(root, image_size=SIZE, validation_split=0.25, hygiene_index=index, seed=2)
        assert calls == []  # nothing decoded: pixels and verdicts from beside the index
        base = again.examples("train").pixels  # the file kept, mapped read-only: one array
        assert isinstance(base, np.memmap) and again.examples("val").pixels is base
        assert not base.flags.writeable and Path(base.filename) == kept[0]
        for s in ("train", "val"):
            assert again.paths(s) == first.paths(s)
            np.testing.assert_array_equal(again.arrays(s)[0], first.arrays(s)[0])
        assert [r.reason for r in again.hygiene] == [r.reason for r in first.hygiene]
        changed = root / "apple" / "img0.png"
        Image.new("RGB", (20, 24), (1, 2, 3)).save(changed)
        os.utime(changed, ns=(1, 1))
        held = np.array(again.examples("train").pixels)  # every file's row, copied
        third = load_data(root, image_size=SIZE, validation_split=0.25, hygiene_index=index, seed=2)
    assert len(calls) > 1  # the listing changed: decoded again
    # the file was replaced, not rewritten in place: the load that maps the old one keeps it
    np.testing.assert_array_equal(again.examples("train").pixels, held)
    assert _mapped(kept[0]) and isinstance(third.examples("train").pixels, np.memmap)
    assert not np.array_equal(np.load(kept[0]), held)  # while the file kept now differs
    i = third.paths("train" if str(changed) in third.paths("train") else "val").index(str(changed))
    split = "train" if str(changed) in third.paths("train") else "val"
    np.testing.assert_array_equal(third.arrays(split)[0][i], dec.decode_file(changed, SIZE)[0])


def _mapped(path: Path) -> bool:
    """Whether this process maps the file now at ``path`` (Linux names a renamed file's
    mapping by its new name)."""
    return f" {path.resolve()}\n" in Path("/proc/self/maps").read_text()


def test_a_pixel_file_is_never_left_half_written(messy, tmp_path, monkeypatch):
    """A scan that fails, a full disk and a process killed mid-scan leave no pixel file behind
    (a 100k-file folder's is over a GB), and the load itself still works from plain memory."""
    import errno
    import os

    import tl_kit.data.hygiene as H
    from tl_kit.data.hygiene_index import _HOST
    from tl_kit.decode import RESIZE_VERSION

    index = tmp_path / "index.json"
    dead = tmp_path / f".index-16x16-stretch-r{RESIZE_VERSION}.npy.{_HOST}-999999999.tmp.npy"  # no such pid
    mine = tmp_path / f".index-16x16-stretch-r{RESIZE_VERSION}.npy.{_HOST}-{os.getppid()}.tmp.npy"  # alive
    dead.write_bytes(b"half")
    mine.write_bytes(b"half")
    real = H._check_all

    def fails(*a, **k):
        real(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(H, "_check_all", fails)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            load_data(messy, image_size=SIZE, validation_split=0.25, hygiene_index=index)
        assert not dead.exists() and mine.exists()  # the dead process's file went, a live one's stays
        mine.unlink()
        assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*.npy"))  # the failed scan's too
        monkeypatch.setattr(H, "_check_all", real)

        def full(*a):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
        data = load_data(messy, image_size=SIZE, validation_split=0.25, hygiene_index=index)
    base = data.examples("train").pixels
    assert not isinstance(base, np.memmap) and base.flags.writeable  # decoded into plain memory
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*.npy"))  # nothing kept
    x, _ = data.arrays("train")
    assert x.shape[0] == data.size("train") and x.max() > 0


@pytest.mark.parametrize("keep", [True, False], ids=["in_memory", "streaming"])
def test_the_one_graph_scan_gives_the_verdicts_and_pixels_of_checking_each_file_alone(messy, keep,
                                                                                       monkeypatch):
    """One tf.data graph for every file, Pillow's header only for the files that are not
    plain: every hygiene case of the messy folder (corrupt, truncated, not an image, PNG
    named .jpg, grey, palette, transparent, CMYK, EXIF-rotated) gets check_file's verdict
    and (in memory) pixels; the plain JPEGs and PNGs never reach Pillow."""
    import tl_kit.decode as dec
    from tl_kit.data.folders import list_folder
    from tl_kit.data.hygiene import check_file, scan

    sniffed = []
    real = dec.sniff_file
    monkeypatch.setattr(dec, "sniff_file", lambda p, *a, **k: sniffed.append(Path(p).name) or real(p, *a, **k))
    classes, files, _ = list_folder(messy)
    records, pixels = scan(files, classes, SIZE, 3, "stretch", keep)
    assert (pixels is not None) == keep
    for i, (path, k) in enumerate(files):
        alone = np.zeros((1, *SIZE, 3), np.uint8)
        ref = check_file(path, classes[k], SIZE, 3, "stretch", alone, 0)
        got = records[i]
        assert (got.path, got.label, got.status, got.reason, got.decoder) == \
            (ref.path, ref.label, ref.status, ref.reason, ref.decoder), path
        if keep:
            assert np.array_equal(pixels[i], alone[0]), path
    decoders = {r.decoder for r in records if r.status == "ok"}
    assert decoders == {"tf", "pil"} and any(r.status == "skipped" for r in records)
    plain = {f"img{i}.jpg" for i in range(6)} | {f"img{i}.png" for i in range(4)} | \
        {"UPPER.JPEG", "UPPER.PNG", "grey.png", "nested.png"}
    assert not plain & set(sniffed)
    assert {"cmyk.jpg", "rotated.jpg", "transparent.png", "really_png.jpg"} <= set(sniffed)


def test_index_lookup_and_put_over_a_listing(tmp_path):
    """The listing-wide lookup and put: an unchanged file keeps its verdict, a changed size
    or mtime does not, and a file that could not be stat'ed is dropped at save."""
    from tl_kit.data.hygiene_index import HygieneIndex
    from tl_kit.data.uri import FileStamp

    root = tmp_path / "photos"
    files = [str(root / "a" / f"{i}.jpg") for i in range(4)]
    stats = [FileStamp(100 + i, 1_000 + i) for i in range(4)]
    where = tmp_path / "index.json"
    first = HygieneIndex(where, root, 3)
    assert first.lookup_all(files, stats) == [None] * 4 and first.hits == 0
    first.put_all(files[:3], stats[:3], ("ok", "", "tf"))
    first.put(files[3], stats[3], "skipped", "truncated", "")
    assert first.save()
    again = HygieneIndex(where, root, 3)
    now = [stats[0], FileStamp(999, 1_001), FileStamp(102, 5), stats[3]]
    assert again.lookup_all(files, now) == [("ok", "", "tf"), None, None, ("skipped", "truncated", "")]
    assert again.hits == 2 and not again.dirty()
    third = HygieneIndex(where, root, 3)
    assert third.lookup_all(files, [stats[0], None, stats[2], stats[3]])[1] is None
    assert third.dirty() and third.save()  # the file that could not be stat'ed is forgotten
    from tl_kit.data.uri import stat_all

    (root / "a").mkdir(parents=True)
    (root / "a" / "0.jpg").write_bytes(b"x" * 7)
    assert stat_all(files[:2]) == [(7, (root / "a" / "0.jpg").stat().st_mtime_ns), None]  # 1.jpg: gone
    assert HygieneIndex(where, root, 3).lookup_all(files, stats) == [
        ("ok", "", "tf"), None, ("ok", "", "tf"), ("skipped", "truncated", "")]


def test_folder_load_pauses_cyclic_gc_and_restores_it(messy, monkeypatch):
    """The per-file tables are built with the cycle collector paused (tl_kit.data._gc); it
    is on again after the load, and stays off for a caller who had turned it off."""
    import gc

    from tl_kit.data import folders

    seen = []
    real = folders.scan

    def scan(*a, **k):
        seen.append(gc.isenabled())
        return real(*a, **k)

    monkeypatch.setattr(folders, "scan", scan)
    assert gc.isenabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_data(messy, image_size=SIZE, validation_split=0.0)
        assert seen == [False] and gc.isenabled()
        gc.disable()
        try:
            with pytest.raises(Exception, match="num_classes"):
                load_data(messy, image_size=SIZE, validation_split=0.0, num_classes=99)
            assert not gc.isenabled()
        finally:
            gc.enable()
    with pytest.raises(Exception, match="num_classes"):
        load_data(messy, image_size=SIZE, validation_split=0.0, num_classes=99)
    assert gc.isenabled()  # on again after an error too


@pytest.mark.parametrize("keep", [True, False], ids=["in_memory", "streaming"])
def test_a_broken_file_costs_the_graph_scan_its_batch_only(tmp_path, keep, monkeypatch):
    """The scan's graph drops a batch with a broken file whole (its map runs fused with the
    batch); the batch-mates are decoded again in a per-file pass, so only the broken files
    reach check_file, and every other file keeps the graph's verdict, header and pixels."""
    import tl_kit.data.hygiene as H
    import tl_kit.decode as dec
    from tl_kit.data.folders import list_folder

    rng = np.random.default_rng(0)
    for k in range(2):
        (tmp_path / f"c{k}").mkdir()
        for i in range(300):  # 600 files: three batches of the graph's 256
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), np.uint8)).save(tmp_path / f"c{k}" / f"{i:03d}.jpg")
    broken = {tmp_path / "c0" / "007.jpg", tmp_path / "c1" / "250.jpg"}
    for p in broken:
        p.write_bytes(p.read_bytes()[:40])  # a header and no scan: the graph fails on it
    checked = []
    real = H.check_file
    monkeypatch.setattr(H, "check_file", lambda path, *a, **k: checked.append(path) or real(path, *a, **k))
    classes, files, _ = list_folder(tmp_path)
    records, pixels = H.scan(files, classes, SIZE, 3, "stretch", keep)
    assert sorted(checked) == sorted(str(p) for p in broken)
    for i, (path, _) in enumerate(files):
        r = records[i]
        if Path(path) in broken:
            assert r.status == "skipped", path
            continue
        assert (r.status, r.reason, r.decoder, r.height, r.width) == ("ok", "", "tf", 20, 24), path
        if keep and i % 37 == 0:
            np.testing.assert_array_equal(pixels[i], dec.decode_file(path, SIZE, 3, "stretch")[0], err_msg=path)
