"""tl_kit.data: folders with every hygiene case, splits + manifest, arrays, tf.data, tfds mock."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tl_kit.data import DatasetInfo, hygiene_table, load_data
from tl_kit.errors import UserError

SIZE = (16, 16)


def _img(color, size=(20, 24), mode="RGB"):
    return Image.new(mode, size, color)


def _fill_class(folder, n, color, ext=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _img(color).save(folder / f"img{i}{ext}")


def _messy_folder(root):
    """Three classes with every bad case the hygiene scan must handle."""
    a, b, c = root / "apple", root / "banana", root / "cherry"
    _fill_class(a, 6, (200, 30, 30), ".jpg")
    _fill_class(b, 4, (30, 200, 30), ".png")
    _fill_class(c, 4, (30, 30, 200), ".bmp")
    # bad files: skipped and listed
    (a / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + bytes(range(200)))
    good = a / "img0.jpg"
    (a / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    (b / "notes.txt").write_text("this is not an image")
    # read by content: a PNG named .jpg
    _img((30, 200, 30)).save(b / "really_png.jpg", format="PNG")
    # modes: grey, palette, RGBA (transparent -> white), CMYK
    _img(100, mode="L").save(c / "grey.png")
    _img((30, 30, 200)).convert("P").save(c / "palette.gif")
    rgba = Image.new("RGBA", (20, 24), (0, 0, 0, 0))
    rgba.save(c / "transparent.png")
    Image.new("CMYK", (20, 24), (255, 0, 0, 0)).save(c / "cmyk.jpg", quality=95)
    # EXIF orientation 6 (display = rotate 90 degrees clockwise): left red, right blue
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16] = (255, 0, 0)
    arr[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(c / "rotated.jpg", exif=exif, quality=95)
    # upper-case extensions, WebP, nested folders
    _img((200, 30, 30)).save(a / "UPPER.JPEG", format="JPEG")
    _img((30, 200, 30)).save(b / "UPPER.PNG", format="PNG")
    _img((30, 200, 30)).save(b / "pic.WebP", format="WEBP")
    (b / "sub" / "deeper").mkdir(parents=True)
    _img((30, 200, 30)).save(b / "sub" / "deeper" / "nested.png")
    (root / "stray.txt").write_text("outside any class")
    return root


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return _messy_folder(tmp_path_factory.mktemp("messy"))


def _by_name(data, name):
    """(image, label) of the file whose path ends with ``name``, from any split."""
    for s in ("train", "val", "test"):
        if data.has(s):
            x, y = data.arrays(s)
            for img, lab, p in zip(x, y, data.paths(s), strict=True):
                if p.endswith(name):
                    return img, lab
    raise AssertionError(f"{name} not loaded")


def test_folder_hygiene(messy, tmp_path):
    with pytest.warns(UserWarning, match="Skipped"):
        data = load_data(messy, image_size=SIZE, validation_split=0.25, run_dir=tmp_path, seed=3)
    info = data.info
    assert info.class_names == ["apple", "banana", "cherry"]
    skipped = {p.split("/")[-1]: why for p, why in info.skipped}
    assert set(skipped) == {"corrupt.jpg", "truncated.jpg", "notes.txt", "stray.txt"}
    assert "truncated" in skipped["truncated.jpg"] or "corrupt" in skipped["truncated.jpg"]
    assert "not an image" in skipped["notes.txt"]
    assert info.counts == {"apple": 7, "banana": 8, "cherry": 9}
    # hygiene report saved, and a printable table
    rows = json.loads((tmp_path / "hygiene.json").read_text())
    assert rows["skipped"] == 4 and (tmp_path / "hygiene.csv").exists()
    table = hygiene_table(data.hygiene)
    assert "truncated.jpg" in table and "CMYK->RGB" in table and "read by content" in table
    # conversions, by value
    grey, _ = _by_name(data, "grey.png")
    assert grey.shape == (16, 16, 3) and np.allclose(grey, 100)
    white, _ = _by_name(data, "transparent.png")
    assert np.allclose(white, 255)
    cmyk, _ = _by_name(data, "cmyk.jpg")
    assert cmyk[..., 0].mean() < 60 and cmyk[..., 1].mean() > 190 and cmyk[..., 2].mean() > 190
    pal, lab = _by_name(data, "palette.gif")
    assert lab == 2 and abs(pal[..., 2].mean() - 200) < 15
    png_as_jpg, lab = _by_name(data, "really_png.jpg")
    assert lab == 1 and np.allclose(png_as_jpg, (30, 200, 30))
    rot, _ = _by_name(data, "rotated.jpg")  # rotated 90 cw: red on top, blue at the bottom
    assert rot[2, :, 0].mean() > 200 and rot[2, :, 2].mean() < 50
    assert rot[-3, :, 2].mean() > 200 and rot[-3, :, 0].mean() < 50
    _, lab = _by_name(data, "nested.png")
    assert lab == 1
    for name in ("UPPER.JPEG", "UPPER.PNG", "pic.WebP", "img0.bmp"):
        _by_name(data, name)
    # pipeline yields the contract's dtypes/shapes
    x, y = next(iter(data.dataset("train", batch_size=4, training=True)))
    assert x.dtype == tf.float32 and x.shape == (4, 16, 16, 3) and y.shape == (4, 3)
    assert np.allclose(y.numpy().sum(1), 1)


def test_folder_grey_and_streaming(messy, monkeypatch):
    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # force the streaming (decode in tf.data) path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_data(messy, image_size=SIZE, channels=1, validation_split=0.25, seed=3,
                         resize="crop")
    assert data._splits["train"].x is None
    x, y = next(iter(data.dataset("val", batch_size=64)))
    assert x.shape[1:] == (16, 16, 1) and x.shape[0] == data.size("val")
    xa, ya = data.arrays("val")
    np.testing.assert_array_equal(np.argmax(y.numpy(), 1), ya)
    np.testing.assert_allclose(np.sort(xa.reshape(len(xa), -1).mean(1)),
                               np.sort(x.numpy().reshape(len(xa), -1).mean(1)), atol=1e-4)


def test_resize_modes(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        wide = np.zeros((10, 40, 3), np.uint8)
        wide[:, :, :] = 255
        for i in range(3):
            Image.fromarray(wide).save(tmp_path / c / f"{i}.png")
    pad = load_data(tmp_path, image_size=SIZE, validation_split=0, resize="pad").arrays("train")[0]
    crop = load_data(tmp_path, image_size=SIZE, validation_split=0, resize="crop").arrays("train")[0]
    assert pad[0, 0].max() == 0 and pad[0, 8].min() == 255  # black bars above and below
    assert crop.min() == 255


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_data(tmp_path / "nope")
    _fill_class(tmp_path / "a", 5, (1, 2, 3))
    _fill_class(tmp_path / "b", 5, (1, 2, 3))
    with pytest.raises(UserError, match="num_classes=3"):
        load_data(tmp_path, image_size=SIZE, num_classes=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "bad.jpg").write_bytes(b"junk")
    with pytest.raises(UserError, match="empty.*no usable images"):
        load_data(tmp_path, image_size=SIZE)
    (tmp_path / "empty" / "bad.jpg").unlink()
    _fill_class(tmp_path / "empty", 1, (1, 2, 3))
    with pytest.raises(UserError, match="too few images.*empty"):
        load_data(tmp_path, image_size=SIZE, validation_split=0.2)


def test_split_reproducible_and_manifest_reused(tmp_path):
    root = tmp_path / "d"
    _fill_class(root / "a", 12, (10, 10, 10))
    _fill_class(root / "b", 8, (20, 20, 20))
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
    _fill_class(root / "a", 16, (10, 10, 10))  # img12..img15 are new
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


def test_arrays_int_and_onehot(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 20, 24, 3)).astype(np.uint8)
    y = np.repeat(np.arange(3), 10)
    d1 = load_data((x, y), image_size=SIZE, validation_split=0.2, seed=1, run_dir=tmp_path)
    d2 = load_data((x, np.eye(3)[y]), image_size=SIZE, validation_split=0.2, seed=1)
    assert isinstance(d1.info, DatasetInfo) and d1.info.num_classes == 3
    assert d1.info.source == "arrays" and d1.paths("train") is None
    np.testing.assert_array_equal(d1.arrays("val")[1], d2.arrays("val")[1])
    xv, yv = d1.arrays("val")
    assert xv.shape == (6, 16, 16, 3) and xv.dtype == np.float32 and yv.dtype.kind == "i"
    assert json.loads((tmp_path / "manifest.json").read_text())["kind"] == "indices"
    d3 = load_data((x, y), image_size=SIZE, validation_split=0.2, seed=5, run_dir=tmp_path)
    np.testing.assert_array_equal(d3.arrays("val")[0], xv)  # manifest reused
    # already the right size: pixels untouched; the pipeline is float32 [0, 255] + one-hot
    d4 = load_data((x, y), image_size=(20, 24), validation_split=0.0, seed=1)
    xb, yb = next(iter(d4.dataset("train", batch_size=30, shuffle=False)))
    np.testing.assert_array_equal(xb.numpy(), x.astype(np.float32))
    np.testing.assert_array_equal(yb.numpy(), np.eye(3)[y])
    with pytest.raises(UserError, match="num_classes"):
        load_data((x, np.eye(3)[y]), image_size=SIZE, num_classes=4)
    with pytest.raises(UserError, match="labels"):
        load_data((x, y[:5]), image_size=SIZE)


def test_tf_data_and_dict_sources():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 24, 24, 3)).astype(np.uint8)
    y = np.repeat(np.arange(2), 10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(6)
    data = load_data(ds, image_size=SIZE, validation_split=0.2, class_names=["cat", "dog"])
    assert data.info.source == "tf.data" and data.info.class_names == ["cat", "dog"]
    assert data.info.split_counts["val"] == {"cat": 2, "dog": 2}
    d = load_data({"train": (x, y), "validation": tf.data.Dataset.from_tensor_slices((x[:4], y[:4]))},
                  image_size=SIZE, validation_split=0.0)
    assert d.size("train") == 20 and d.size("val") == 4 and not d.has("test")
    grey = load_data((x, y), image_size=SIZE, channels=1, validation_split=0.0)
    assert grey.arrays("train")[0].shape == (20, 16, 16, 1)


@pytest.mark.filterwarnings("ignore:Skipped 1 unreadable file")
def test_split_folders_as_a_dict_or_a_parent_folder(tmp_path):
    """photos/train/<class>, photos/val/<class>: the user's split is kept, labels follow the
    train folder's class names, bad files are skipped in every split."""
    root = tmp_path / "photos"
    colours = {"apple": (200, 30, 30), "banana": (30, 200, 30), "cherry": (30, 30, 200)}
    for name, col in colours.items():
        _fill_class(root / "train" / name, 5, col)
    for name in ("banana", "cherry"):  # val lacks a class: allowed
        _fill_class(root / "val" / name, 2, colours[name], ".jpg")
    (root / "val" / "cherry" / "broken.jpg").write_bytes(b"not an image")
    for src in ({"train": root / "train", "validation": str(root / "val")}, root):
        data = load_data(src, image_size=SIZE, run_dir=tmp_path / "run")
        assert data.class_names == ["apple", "banana", "cherry"]
        assert data.size("train") == 15 and data.size("val") == 4 and not data.has("test")
        assert data.info.split_counts["val"] == {"apple": 0, "banana": 2, "cherry": 2}
        x, y = data.arrays("val")
        for img, label in zip(x, y, strict=True):  # each image carries its class's colour
            np.testing.assert_allclose(img.mean(axis=(0, 1)), colours[data.class_names[label]], atol=3)
        assert any(p.endswith("broken.jpg") for p, _ in data.info.skipped)
        assert (tmp_path / "run" / "hygiene.csv").is_file()
    # without a val folder, val is carved from train (stratified) as for one folder
    carved = load_data({"train": root / "train"}, image_size=SIZE, validation_split=0.2)
    assert carved.size("val") == 3 and carved.info.split_counts["val"] == {"apple": 1, "banana": 1, "cherry": 1}
    # a class the train folder does not have is an error naming both folders
    _fill_class(root / "val" / "durian", 1, (90, 90, 90))
    with pytest.raises(UserError, match=r"val folder .*photos/val has class folder\(s\) \['durian'\]"):
        load_data(root, image_size=SIZE)
    with pytest.raises(UserError, match="needs a 'train' entry"):
        load_data({"val": root / "val"}, image_size=SIZE)


def test_tfds_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        data = load_data("tfds:beans", image_size=SIZE, validation_split=0.2)
    assert data.info.class_names == ["angular_leaf_spot", "bean_rust", "healthy"]
    assert data.info.source == "tfds:beans"
    assert data.size("train") == 12 and data.size("val") == 12 and data.size("test") == 12
    x, y = next(iter(data.dataset("train", batch_size=5)))
    assert x.shape == (5, 16, 16, 3) and y.shape == (5, 3)


# === One decoder (tl_kit.decode) in every path; read-only manifests ===


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
    assert cached._splits["train"].x is not None and streamed._splits["train"].x is None
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


def test_streaming_drops_a_file_broken_since_the_scan(tmp_path, monkeypatch):
    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
    _fill_class(tmp_path / "a", 3, (200, 30, 30), ".jpg")
    _fill_class(tmp_path / "b", 3, (30, 30, 200), ".jpg")
    data = load_data(tmp_path, image_size=SIZE, validation_split=0.0)
    (tmp_path / "a" / "img1.jpg").write_bytes(b"\xff\xd8\xff broken after the scan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = np.concatenate([b[0].numpy() for b in data.dataset("train", batch_size=4)])
    assert len(x) == 5  # dropped, the epoch goes on


def test_record_false_reads_the_manifest_and_writes_nothing(tmp_path):
    root = tmp_path / "d"
    _fill_class(root / "a", 8, (10, 10, 10))
    _fill_class(root / "b", 8, (20, 20, 20))
    run = tmp_path / "run"
    first = load_data(root, image_size=SIZE, validation_split=0.25, run_dir=run, seed=1)
    def files(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    before = files(run)
    assert {"manifest.json", "hygiene.csv", "hygiene.json"} <= set(before)
    _fill_class(root / "a", 10, (10, 10, 10))  # two files added
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


# === Hygiene index (tl_kit.hygiene_index): a second load only lists and stats ===


def test_hygiene_index_skips_unchanged_files_and_rechecks_changed_ones(messy, tmp_path, monkeypatch):
    import os

    import tl_kit.data as D
    import tl_kit.decode as dec

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # streaming: pixels not needed at load
    monkeypatch.setenv("TL_KIT_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    import shutil

    shutil.copytree(messy, root)
    decoded = []
    real = dec.decode_file
    monkeypatch.setattr(dec, "decode_file", lambda p, *a, **k: decoded.append(Path(p).name) or real(p, *a, **k))

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
    stamp = index_files[0].stat().st_mtime_ns
    os.chmod(root, 0o555)  # a read-only data folder works: nothing is written there
    try:
        second = load()
    finally:
        os.chmod(root, 0o755)
    assert decoded == []  # unchanged folder: listed and stat'ed, nothing decoded
    assert index_files[0].stat().st_mtime_ns == stamp  # and the index not rewritten
    assert [(r.path, r.status, r.reason, r.decoder) for r in second.hygiene] == \
        [(r.path, r.status, r.reason, r.decoder) for r in first.hygiene]
    assert second.info.skipped == first.info.skipped
    # changed, added and removed files
    good = root / "apple" / "img1.jpg"
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
    assert len(decoded) == n_files + 1 and cached._splits["train"].x is not None  # + new.jpg


def test_memory_cache_is_one_array_in_split_order_and_the_pipeline_is_stated(messy, monkeypatch):
    import tl_kit.data as D
    from tl_kit.decode import decode_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_data(messy, image_size=SIZE, validation_split=0.3, test_split=0.2, seed=3)
        monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
        streamed = load_data(messy, image_size=SIZE, validation_split=0.3, test_split=0.2, seed=3)
    assert data.info.pipeline.startswith("memory:") and "pipeline: memory" in str(data.info)
    assert streamed.info.pipeline.startswith("stream:")
    xs = {s: data._splits[s].x for s in ("train", "val", "test")}
    base = xs["train"].base
    assert base is not None and all(x.base is base for x in xs.values())  # views of ONE array
    for s in ("train", "val", "test"):
        assert data.paths(s) == streamed.paths(s)
        x, y = data.arrays(s)
        for i, path in enumerate(data.paths(s)):  # each row is its own file's pixels
            np.testing.assert_array_equal(x[i], decode_file(path, SIZE)[0], err_msg=path)
        # shuffled batches gathered from the cache keep each image with its label
        by_pixels = {x[i].astype(np.uint8).tobytes(): int(y[i]) for i in range(len(y))}
        seen = 0
        for xb, yb in data.dataset(s, batch_size=4, shuffle=True, seed=1):
            for img, lab in zip(xb.numpy().astype(np.uint8), yb.numpy().argmax(-1), strict=True):
                assert by_pixels[img.tobytes()] == int(lab)
                seen += 1
        assert seen == len(y)


def test_file_level_shards_are_disjoint_and_cover_the_split(messy, monkeypatch):
    import tl_kit.data as D
    from tl_kit.data import shard_indices

    parts = [shard_indices(10, 3, i) for i in range(3)]
    assert [list(p) for p in parts] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(UserError, match="shard"):
        shard_indices(10, 3, 3)
    with pytest.raises(UserError, match="cannot be sharded"):
        shard_indices(2, 3, 0)
    assert D._worker_shard() is None  # no multi-worker strategy in scope: no sharding
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for limit in (D.CACHE_LIMIT_BYTES, 0):  # in-memory and streaming
            monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", limit)
            data = load_data(messy, image_size=SIZE, validation_split=0.0)
            x, y = data.arrays("train")
            rows = [data.dataset("train", batch_size=5, shard=(2, i), deterministic=True)
                    for i in range(2)]
            for i, ds in enumerate(rows):
                pol = ds.options().experimental_distribute.auto_shard_policy
                assert pol == tf.data.experimental.AutoShardPolicy.OFF and ds.options().deterministic
                got = np.concatenate([b.numpy() for b, _ in ds])
                np.testing.assert_array_equal(got, x[i::2])  # only this worker's files, in order
            whole = data.dataset("train", batch_size=5, shard="auto")  # no cluster: unsharded
            assert whole.options().experimental_distribute.auto_shard_policy != \
                tf.data.experimental.AutoShardPolicy.OFF


def test_a_tf_io_gfile_folder_loads_trains_and_evaluates_without_a_copy(tmp_path, monkeypatch):
    """``ram://`` (TensorFlow's in-memory filesystem) stands in for gs:// and the schemes
    tensorflow-io adds: listing through tf.io.gfile, bytes through GFile / tf.io.read_file,
    the hygiene index keyed by the URI."""
    import io
    import uuid

    import tl_kit
    import tl_kit.data as D
    from tl_kit.train import scratch_recipe

    uri = f"ram://tl_kit_{uuid.uuid4().hex}/photos"
    local = tmp_path / "photos"
    for k, (name, colour) in enumerate((("blue", (20, 40, 220)), ("red", (220, 30, 30)))):
        tf.io.gfile.makedirs(f"{uri}/{name}")
        (local / name).mkdir(parents=True)
        for i in range(6):
            buf = io.BytesIO()
            noise = np.random.default_rng(10 * k + i).integers(0, 30, (40, 40, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(buf, "JPEG")
            with tf.io.gfile.GFile(f"{uri}/{name}/img{i}.jpg", "wb") as f:
                f.write(buf.getvalue())
            (local / name / f"img{i}.jpg").write_bytes(buf.getvalue())
    tf.io.gfile.makedirs(f"{uri}/red/broken")
    with tf.io.gfile.GFile(f"{uri}/red/broken/bad.jpg", "wb") as f:
        f.write(b"not a jpeg")
    index = tmp_path / "index.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remote = load_data(uri, image_size=32, validation_split=0.0, hygiene_index=index)
        here = load_data(str(local), image_size=32, validation_split=0.0, hygiene_index=False)
        monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
        streamed = load_data(uri, image_size=32, validation_split=0.0, hygiene_index=index)
    assert remote.info.counts == {"blue": 6, "red": 6} and remote.paths("train")[0].startswith(uri)
    assert [p for p, _ in remote.info.skipped] == [f"{uri}/red/broken/bad.jpg"]
    saved = json.loads(index.read_text())
    assert saved["root"] == uri and "blue/img0.jpg" in saved["files"]  # keyed by the URI
    x_remote, y_remote = remote.arrays("train")
    x_here, y_here = here.arrays("train")
    np.testing.assert_array_equal(x_remote, x_here)  # same bytes, same pixels
    np.testing.assert_array_equal(y_remote, y_here)
    got = np.concatenate([b.numpy() for b, _ in streamed.dataset("train", batch_size=4)])
    np.testing.assert_array_equal(got, x_here)  # in-graph tf.io.read_file from ram://
    # --data given as the URI: train one epoch, then evaluate on it
    learner = tl_kit.finetune(backbone="lenet5", weights=None, image_size=32, channels=3,
                              run_dir=tmp_path / "run", verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner.fit(uri, recipe=scratch_recipe(epochs=1, batch_size=4))
        report = learner.evaluate(uri, split="val")
    assert report["num_samples"] >= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["source"] == uri


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
        kept = list(tmp_path.glob("index-16x16-stretch.npy"))
        assert len(kept) == 1
        real = dec.decode_file
        calls = []
        monkeypatch.setattr(dec, "decode_file", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
        again = load_data(root, image_size=SIZE, validation_split=0.25, hygiene_index=index, seed=2)
        assert calls == []  # nothing decoded: pixels and verdicts from beside the index
        for s in ("train", "val"):
            assert again.paths(s) == first.paths(s)
            np.testing.assert_array_equal(again.arrays(s)[0], first.arrays(s)[0])
        assert [r.reason for r in again.hygiene] == [r.reason for r in first.hygiene]
        changed = root / "apple" / "img0.png"
        _img((1, 2, 3)).save(changed)
        os.utime(changed, ns=(1, 1))
        third = load_data(root, image_size=SIZE, validation_split=0.25, hygiene_index=index, seed=2)
    assert len(calls) > 1  # the listing changed: decoded again
    i = third.paths("train" if str(changed) in third.paths("train") else "val").index(str(changed))
    split = "train" if str(changed) in third.paths("train") else "val"
    np.testing.assert_array_equal(third.arrays(split)[0][i], dec.decode_file(changed, SIZE)[0])
