"""tl_kit.decode.resample: the one resize of training, evaluation, prediction and serving.

A box filter when the image shrinks (no aliasing), bilinear when it grows, antialiased
bilinear when one side grows and the other shrinks; a batch gives the pixels of its
images resized one at a time, in every mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tl_kit import decode


def _img(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_shrinking_averages_the_covered_pixels():
    x = _img(8, 12)
    out = decode.resample(x, (4, 3)).numpy()
    blocks = x.astype(np.float64).reshape(4, 2, 3, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out, blocks, atol=1e-4)


def test_growing_is_bilinear_and_the_mixed_case_antialiased():
    x = _img(10, 20).astype(np.float32)
    np.testing.assert_allclose(decode.resample(x, (30, 40)).numpy(),
                               tf.image.resize(x, (30, 40), method="bilinear").numpy(), atol=1e-4)
    mixed = tf.image.resize(x, (30, 8), method="bilinear", antialias=True).numpy()
    np.testing.assert_allclose(decode.resample(x, (30, 8)).numpy(), mixed, atol=1e-4)


def test_same_size_is_unchanged():
    x = _img(16, 16)
    assert np.array_equal(decode.resize_image(x, (16, 16)).numpy(), x)


def test_a_fine_pattern_shrinks_to_grey_instead_of_aliasing():
    """Stripes one pixel wide, 96 -> 64 px: the box filter averages them (grey, small spread);
    bilinear without antialiasing picks pixels and leaves a false coarse pattern."""
    stripes = np.zeros((96, 96, 3), np.float32)
    stripes[:, ::2] = 255.0
    ours = decode.resample(stripes, (64, 64)).numpy()
    naive = tf.image.resize(stripes, (64, 64), method="bilinear").numpy()
    assert abs(ours.mean() - 127.5) < 1 and ours.std() < 50
    assert naive.std() > 1.2 * ours.std()


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
def test_a_batch_gives_the_pixels_of_each_image_alone(mode):
    for h, w in ((96, 96), (100, 75), (20, 30), (64, 64), (50, 130)):
        images = np.stack([_img(h, w, 1), _img(h, w, 2)])
        batch = decode.resize_image(images, (64, 48), mode).numpy()
        assert batch.shape == (2, 64, 48, 3)
        for i in range(2):
            assert np.array_equal(batch[i], decode.resize_image(images[i], (64, 48), mode).numpy()), (h, w)


def test_pad_keeps_the_geometry_of_resize_with_pad():
    x = _img(100, 50)
    ours = decode.resize_image(x, (64, 64), "pad").numpy()
    theirs = tf.image.resize_with_pad(x.astype(np.float32), 64, 64).numpy()
    assert np.array_equal(ours.sum(-1) > 0, theirs.sum(-1) > 0)  # the same picture box, same border


def test_the_in_memory_cache_of_another_resize_version_is_not_reused(tmp_path, monkeypatch):
    from PIL import Image

    from tl_kit.data import load_data

    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(_img(24, 24, i + (10 if c == "b" else 0))).save(tmp_path / "data" / c / f"{i}.png")
    index = tmp_path / "index.json"
    first = load_data(tmp_path / "data", image_size=16, validation_split=0.0, hygiene_index=index)
    now = decode.RESIZE_VERSION
    assert [p.name for p in tmp_path.glob(f"index*-r{now}.npy")], sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(decode, "RESIZE_VERSION", now + 1)
    again = load_data(tmp_path / "data", image_size=16, validation_split=0.0, hygiene_index=index)
    assert [p.name for p in tmp_path.glob(f"index*-r{now + 1}.npy")]  # decoded again and kept under the new one
    assert not list(tmp_path.glob(f"index*-r{now}.npy"))  # the old version's file is gone
    kept = json.loads(index.read_text())["pixels"]
    assert [k.rpartition("-r")[2] for k in kept] == [str(now + 1)]  # and forgotten by the index
    assert np.array_equal(first.arrays("train")[0], again.arrays("train")[0])
