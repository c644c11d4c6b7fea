"""JPEGs decoded at a DCT scale (tl_kit.decode.dct_scale / decode_resize): the scale rule,
the pixels it gives, and the same pixels in every path (streaming, scan, predict, serving,
Pillow's draft for the files Pillow decodes)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tl_kit import decode


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth picture with some texture (JPEG-friendly, so scales stay comparable)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(np.sin(x / 17.0) + 1) * 110, (np.cos(y / 11.0) + 1) * 110, (x * 255.0 / w)], -1)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, exif=None) -> bytes:
    buf = io.BytesIO()
    kw = {"exif": exif} if exif is not None else {}
    Image.fromarray(img).save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def _full(data: bytes, size, mode="stretch") -> np.ndarray:
    return decode.resize_image(decode.decode_bytes(tf.constant(data), 3), size, mode).numpy()


def _at_ratio(data: bytes, r: int, size, mode="stretch") -> np.ndarray:
    image = tf.io.decode_jpeg(data, channels=3, ratio=r, dct_method=decode.DCT_METHOD)
    return decode.resize_image(image, size, mode).numpy()


@pytest.mark.parametrize(("h", "w", "size", "mode", "want"), [
    (127, 900, (64, 64), "stretch", 1),   # one side under twice the size: full decode
    (128, 900, (64, 64), "stretch", 2),
    (511, 512, (64, 64), "stretch", 4),
    (512, 512, (64, 64), "stretch", 8),
    (4000, 3000, (64, 64), "stretch", 8),  # never past libjpeg's 1/8
    (128, 900, (64, 64), "crop", 2),       # crop keeps the shorter side: as stretch
    (128, 900, (64, 64), "pad", 8),        # pad shrinks by the larger ratio
    (30, 30, (64, 64), "pad", 1),          # an image that grows
])
def test_dct_scale_is_the_largest_that_keeps_the_pixels_the_resize_needs(h, w, size, mode, want):
    assert decode.dct_scale(h, w, size, mode) == want
    index = int(decode._scale_index(tf.constant([h, w, 3]), size, mode))
    assert decode.DCT_RATIOS[index] == want


def test_the_in_graph_scale_agrees_with_the_rule_everywhere():
    sides = [1, 63, 64, 127, 128, 255, 256, 513, 4001]
    for h, w, c in itertools.product(sides, sides, [1, 3]):
        for size, mode in itertools.product([(64, 64), (32, 100)], ["stretch", "crop", "pad"]):
            index = int(decode._scale_index(tf.constant([h, w, c]), size, mode))
            assert decode.DCT_RATIOS[index] == decode.dct_scale(h, w, size, mode), (h, w, c, size, mode)


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_a_large_jpeg_decodes_at_its_scale_close_to_the_full_decode(mode):
    data = _jpeg(_photo(384, 512))
    size = (40, 48)
    r = decode.dct_scale(384, 512, size, mode)
    assert r == 8
    got = decode.decode_resize(tf.constant(data), size, 3, mode).numpy()
    assert got.shape == (40, 48, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, _at_ratio(data, r, size, mode))  # the scaled decode, resized
    full = _full(data, size, mode)
    diff = np.abs(got.astype(int) - full.astype(int))
    assert diff.any()  # not the full decode ...
    assert diff.mean() < 3.0  # ... but the same picture


def test_a_jpeg_under_twice_the_size_and_other_formats_decode_in_full():
    small = _jpeg(_photo(100, 120))
    np.testing.assert_array_equal(decode.decode_resize(tf.constant(small), (64, 64), 3).numpy(),
                                  _full(small, (64, 64)))
    buf = io.BytesIO()
    Image.fromarray(_photo(384, 512)).save(buf, "PNG")
    png = buf.getvalue()
    np.testing.assert_array_equal(decode.decode_resize(tf.constant(png), (40, 48), 3).numpy(),
                                  _full(png, (40, 48)))


def test_every_path_gives_the_scaled_pixels(tmp_path):
    """decode_file (predict, the Pillow-free route), load_path (streaming), the in-memory
    scan's graph (decode_plain) and the SavedModel's decode all give the same pixels."""
    from tl_kit.export.saved_model import _serving_functions

    data = _jpeg(_photo(300, 260, seed=1))
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    size = (32, 32)
    want = _at_ratio(data, 8, size)
    arr, notes, decoder = decode.decode_file(path, size)
    assert decoder == "tf" and notes == ""
    np.testing.assert_array_equal(arr, want)
    np.testing.assert_array_equal(decode.load_path(tf.constant(str(path)), size).numpy(), want)
    (components, pieces), image = decode.decode_plain(tf.constant(data), decode.EXT_JPEG, 3, size, "stretch")
    assert int(components) == 3 and int(pieces) == 1
    np.testing.assert_array_equal(decode.resize_image(image, size).numpy(), want)
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(2, activation="softmax")])
    served = _serving_functions(model, ["a", "b"], size, 3)["decode_images"](tf.constant([data]))
    np.testing.assert_array_equal(served["images"].numpy()[0], want)


def test_predict_on_a_file_decodes_it_as_training_does(tmp_path):
    from tl_kit.predict import collect_images, load_image, predict_images

    data = _jpeg(_photo(256, 256, seed=2))
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    want = decode.decode_file(path, (32, 32))[0]
    assert not np.array_equal(want, decode.resize_array(decode.read_image(path), (32, 32)))
    np.testing.assert_array_equal(load_image(path, 3, (32, 32)), want)
    images, _, failed = collect_images([str(path)], 3, (32, 32))
    assert not failed
    np.testing.assert_array_equal(images[0], want)
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(2, activation="softmax")])
    got = predict_images(model, [str(path)], ["a", "b"], top_k=2)[0]["probs"]
    probs = model.predict(want[None].astype(np.float32), verbose=0)[0]
    np.testing.assert_allclose([got["a"], got["b"]], probs, atol=1e-6)


def test_pillow_decodes_an_exif_rotated_jpeg_at_the_scale_of_the_picture_as_shown(tmp_path):
    """Orientation 6: stored 128 wide and 512 high on screen. At (64, 16) the picture as
    shown fits 8 times (the stored one only 2 times in height)."""
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg(_photo(128, 512, seed=3), exif=exif.tobytes())
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data)
    size = (64, 16)
    arr, notes, decoder = decode.decode_file(path, size)
    assert decoder == "pil" and "EXIF orientation 6" in notes

    def pil_at(r):
        with Image.open(path) as im:
            if r > 1:
                im.draft(im.mode, (512 // r, 128 // r))
            im = ImageOps.exif_transpose(im).convert("RGB")
            assert im.size == (-(-128 // r), -(-512 // r))
            return decode.resize_array(np.asarray(im), size)

    np.testing.assert_array_equal(arr, pil_at(8))
    assert not np.array_equal(arr, pil_at(2))
    assert not np.array_equal(arr, pil_at(1))
