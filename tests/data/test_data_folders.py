"""tl_kit.data.folders: class folders with every hygiene case, split folders, gfile URIs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tl_kit.data import hygiene_table, load_data
from tl_kit.errors import UserError

SIZE = (16, 16)


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
    assert data.examples("train").x is None
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


def test_folder_errors(tmp_path, fill_class):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_data(tmp_path / "nope")
    with pytest.raises(UserError, match="nope"):  # a user mistake: one line, exit status 2
        load_data(tmp_path / "nope")
    fill_class(tmp_path / "a", 5, (1, 2, 3))
    fill_class(tmp_path / "b", 5, (1, 2, 3))
    with pytest.raises(UserError, match="num_classes=3"):
        load_data(tmp_path, image_size=SIZE, num_classes=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "bad.jpg").write_bytes(b"junk")
    with pytest.raises(UserError, match="empty.*no usable images"):
        load_data(tmp_path, image_size=SIZE)
    (tmp_path / "empty" / "bad.jpg").unlink()
    fill_class(tmp_path / "empty", 1, (1, 2, 3))
    with pytest.raises(UserError, match="too few images.*empty"):
        load_data(tmp_path, image_size=SIZE, validation_split=0.2)


@pytest.mark.filterwarnings("ignore:Skipped 1 unreadable file")
def test_split_folders_as_a_dict_or_a_parent_folder(tmp_path, fill_class):
    """photos/train/<class>, photos/val/<class>: the user's split is kept, labels follow the
    train folder's class names, bad files are skipped in every split."""
    root = tmp_path / "photos"
    colours = {"apple": (200, 30, 30), "banana": (30, 200, 30), "cherry": (30, 30, 200)}
    for name, col in colours.items():
        fill_class(root / "train" / name, 5, col)
    for name in ("banana", "cherry"):  # val lacks a class: allowed
        fill_class(root / "val" / name, 2, colours[name], ".jpg")
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
    fill_class(root / "val" / "durian", 1, (90, 90, 90))
    with pytest.raises(UserError, match=r"val folder .*photos/val has class folder\(s\) \['durian'\]"):
        load_data(root, image_size=SIZE)
    with pytest.raises(UserError, match="needs a 'train' entry"):
        load_data({"val": root / "val"}, image_size=SIZE)


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
