"""tl_kit.augment: every op keeps shape/dtype and does what it claims, in both backends."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from _paths import ROOT

from tl_kit.augment import (
    IMAGENET_EIGVECS,
    OPS,
    POLICIES,
    build_augmenter,
    pca_eigen,
    policy_ops,
    save_augmentation_grid,
    save_augmentation_preview,
)
from tl_kit.data import load_data
from tl_kit.errors import UserError

H = W = 24
BACKENDS = ("tf", "albumentations")


def _batch(n=6, seed=0, lo=50, hi=150):
    rng = np.random.default_rng(seed)
    x = rng.integers(lo, hi, (n, H, W, 3)).astype(np.float32)
    y = np.eye(n, dtype=np.float32)
    return x, y


def _run(ops, x, y, backend="tf", seed=0, in_tf_data=False):
    fn = build_augmenter(ops, image_size=(H, W), backend=backend, seed=seed)
    if in_tf_data:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)).map(fn, num_parallel_calls=2)
        xa, ya = next(iter(ds))
    else:
        xa, ya = fn(tf.constant(x), tf.constant(y))
    assert xa.dtype == tf.float32 and xa.shape == x.shape and ya.shape == y.shape
    return xa.numpy(), ya.numpy()


def _ops_for(backend):
    names = [n for n in OPS if n not in ("clahe", "grid_distortion")] if backend == "tf" else list(OPS)
    return [{"name": n, "p": 1.0} for n in names]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_op_keeps_shape_dtype_and_range(backend):
    x, y = _batch()
    for op in _ops_for(backend):
        xa, ya = _run([op], x, y, backend)
        assert xa.min() >= 0 and xa.max() <= 255, op
        assert not np.array_equal(xa, x), f"{op['name']} changed nothing"
        np.testing.assert_allclose(ya.sum(1), 1, atol=1e-5)
    # all of them chained, inside tf.data with parallel calls
    xa, ya = _run(_ops_for(backend), x, y, backend, in_tf_data=True)
    assert xa.min() >= 0 and xa.max() <= 255 and not np.array_equal(xa, x)
    np.testing.assert_allclose(ya.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flip_is_an_exact_mirror(backend):
    x, y = _batch()
    xa, _ = _run([{"name": "flip", "p": 1.0}], x, y, backend)
    np.testing.assert_array_equal(xa, x[:, :, ::-1])
    xa, _ = _run([{"name": "flip", "p": 0.0}], x, y, backend)
    np.testing.assert_array_equal(xa, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_color_shift_moves_channel_means_by_the_offsets(backend):
    x, y = _batch()
    xa, _ = _run([{"name": "color_shift", "offsets": [20, -20, 20], "p": 1.0}], x, y, backend)
    np.testing.assert_allclose(xa.mean((1, 2)) - x.mean((1, 2)), [[20, -20, 20]] * len(x), atol=1e-3)
    # random offsets: one constant shift per image and channel, within +-max_offset
    xa, _ = _run([{"name": "color_shift", "max_offset": 20, "p": 1.0}], x, y, backend)
    d = xa - x
    assert np.abs(d - d[:, :1, :1, :]).max() < 1e-3
    assert np.abs(d).max() <= 20 + 1e-3 and np.abs(d).max() > 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_pca_color_moves_along_the_eigenvectors(backend):
    x, y = _batch()
    # with eigvals (1, 0, 0) and identity eigenvectors only red may move
    op = {"name": "pca_color", "std": 0.1, "eigvals": [1, 0, 0], "eigvecs": np.eye(3).tolist()}
    xa, _ = _run([op], x, y, backend)
    d = (xa - x).mean((1, 2))
    assert np.abs(d[:, 1:]).max() < 1e-3 and np.abs(d[:, 0]).max() > 0.5
    # ImageNet default: the shift of each image is a combination of the eigenvectors
    xa, _ = _run(["pca_color"], x, y, backend)
    d = xa - x
    assert np.abs(d - d[:, :1, :1, :]).max() < 1e-3
    alpha_eig = np.linalg.solve(np.array(IMAGENET_EIGVECS), d[:, 0, 0, :].T / 255.0)
    assert np.all(np.isfinite(alpha_eig))


def test_pca_eigen_finds_the_colour_axis():
    rng = np.random.default_rng(0)
    img = np.full((4, 8, 8, 3), 100.0)
    img[..., 0] += rng.normal(0, 30, (4, 8, 8))  # only red varies
    vals, vecs = pca_eigen(img)
    assert vals[0] > 100 * vals[1] and abs(abs(vecs[0, 0]) - 1) < 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_brightness_contrast_rotation(backend):
    x, y = _batch()
    xa, _ = _run([{"name": "brightness", "max_delta": 0.1, "p": 1.0}], x, y, backend)
    d = xa - x
    assert np.abs(d - d[:, :1, :1, :1]).max() < 1.01 and np.abs(d).max() <= 0.1 * 255 + 1
    xa, _ = _run([{"name": "contrast", "lower": 0.5, "upper": 0.6, "p": 1.0}], x, y, backend)
    ratio = xa.std((1, 2)) / x.std((1, 2))
    assert np.all((ratio > 0.45) & (ratio < 0.65))
    np.testing.assert_allclose(xa.mean((1, 2)), x.mean((1, 2)), atol=1.5)
    flat = np.full_like(x, 77.0)
    xa, _ = _run([{"name": "rotation", "degrees": 30, "p": 1.0}], flat, y, backend)
    np.testing.assert_allclose(xa, 77.0, atol=0.5)


def test_crops_zoom_in_and_cutout_zeroes_a_square():
    ramp = np.tile(np.arange(W, dtype=np.float32)[None, :, None] * 10, (H, 1, 3))
    x = np.stack([ramp] * 4)
    y = np.eye(4, dtype=np.float32)
    for op in ({"name": "random_crop", "scale": 0.5}, {"name": "random_resized_crop", "scale": (0.2, 0.3)}):
        xa, _ = _run([op], x, y)
        span = xa.max((1, 2, 3)) - xa.min((1, 2, 3))
        assert np.all(span < 0.8 * (x.max() - x.min()))  # a zoomed-in window of the ramp
        assert np.all(xa >= x.min() - 1e-3) and np.all(xa <= x.max() + 1e-3)
    xa, _ = _run([{"name": "coarse_dropout", "size": 0.25, "p": 1.0}], x + 1, y)
    zeros = (xa == 0).all(-1).sum((1, 2))
    np.testing.assert_array_equal(zeros, [6 * 6] * 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixup_and_cutmix_labels_sum_to_one_and_match_pixels(backend):
    n = 6
    vals = np.arange(n, dtype=np.float32) * 40
    x = np.broadcast_to(vals[:, None, None, None], (n, H, W, 3)).copy()
    y = np.eye(n, dtype=np.float32)
    xa, ya = _run([{"name": "mixup", "alpha": 0.4}], x, y, backend)
    np.testing.assert_allclose(ya.sum(1), 1, atol=1e-5)
    lam = ya[np.arange(n), np.arange(n)]
    np.testing.assert_allclose(xa[:, 0, 0, 0], lam * vals + (1 - lam) * vals[::-1], atol=1e-3)
    xa, ya = _run([{"name": "cutmix", "alpha": 1.0}], x, y, backend)
    np.testing.assert_allclose(ya.sum(1), 1, atol=1e-5)
    own = (xa[..., 0] == vals[:, None, None]).mean((1, 2))
    np.testing.assert_allclose(ya[np.arange(n), np.arange(n)], own, atol=1e-5)


def test_policies_resolve_and_strong_uses_albumentations_only_ops():
    assert POLICIES == ("none", "light", "standard", "strong")
    assert policy_ops("none") == [] and policy_ops(None) == []
    tf_names = [o["name"] for o in policy_ops("strong", "tf")]
    albu_names = [o["name"] for o in policy_ops("strong", "albumentations")]
    assert "clahe" not in tf_names and {"clahe", "grid_distortion"} <= set(albu_names)
    assert {"mixup", "cutmix", "flip"} <= set(tf_names)
    with pytest.raises(UserError, match="albumentations"):
        policy_ops(["clahe"], "tf")
    with pytest.raises(UserError, match="policy='wild'"):
        policy_ops("wild")
    with pytest.raises(UserError, match="op='twirl'"):
        policy_ops(["twirl"])
    with pytest.raises(UserError, match="backend"):
        build_augmenter("light", image_size=(H, W), backend="torch")


def test_data_pipeline_augments_training_only_and_differs_per_epoch(tmp_path):
    x, _ = _batch(n=8)
    labels = np.arange(8) % 2
    data = load_data((x, labels), image_size=(H, W), validation_split=0.0)
    plain = data.dataset("train", batch_size=8, shuffle=False, augment="strong")
    np.testing.assert_array_equal(next(iter(plain))[0].numpy(), x)
    for backend in BACKENDS:
        ds = data.dataset("train", batch_size=8, training=True, shuffle=False,
                          augment="strong", backend=backend)
        e1 = next(iter(ds))[0].numpy()
        e2 = next(iter(ds))[0].numpy()
        assert e1.shape == x.shape and not np.array_equal(e1, x) and not np.array_equal(e1, e2)
    out = save_augmentation_preview(data, tmp_path / "plots" / "aug.png", policy="standard", n=6)
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"


def test_preview_grid_from_arrays_and_from_a_loader(tmp_path):
    x, _ = _batch(n=8)
    labels = np.arange(8) % 2
    out = save_augmentation_grid(x, labels, tmp_path / "grid.png", class_names=["a", "b"],
                                 policy=["flip", "mixup"], n=5, columns=2)
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"
    calls = []

    def load(source, **kw):
        calls.append((source, kw))
        return load_data((x, labels), image_size=(H, W), validation_split=0.0)

    out = save_augmentation_preview("some/folder", tmp_path / "p.png", policy="light", n=4,
                                    image_size=(H, W), seed=3, load=load)
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert calls == [("some/folder", {"image_size": (H, W), "validation_split": 0.0, "seed": 3})]
    with pytest.raises(UserError, match="n=0"):
        save_augmentation_grid(x, labels, tmp_path / "g.png", class_names=["a", "b"], n=0)


def test_augment_does_not_import_the_data_layer():
    code = ("import sys, numpy as np, tl_kit.augment as A; "
            "A.build_augmenter('standard', image_size=(8, 8), seed=0)(np.zeros((2, 8, 8, 3), 'f'), "
            "np.eye(2, dtype='f')); print('tl_kit.data' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("policy", ["light", "standard", "strong",
                                    ["brightness", "flip", "contrast", "flip", "random_crop", "pca_color"]])
def test_pending_work_gives_the_pixels_of_the_ops_one_at_a_time(policy):
    """The tf backend defers full-size work (flips and a crop as one resampling, offsets,
    contrast and clipping as one scale/shift/clamp); applying the pixels after every op, with
    the same random draws, must give the same images."""
    from tl_kit.augment import tf_ops

    x, _ = _batch(n=8, lo=0, hi=256)
    ops = [o for o in policy_ops(policy, "tf") if o["name"] not in ("mixup", "cutmix")]
    ops = [{**o, "p": 0.5} for o in ops]  # some images picked, some not, by every op

    def run(step_by_step):
        keys = tf_ops.Keys(tf.constant([7, 11], tf.int64))
        st, g = tf_ops.Pending(tf.constant(x)), tf_ops.geom(tf.constant(x))
        for op in ops:
            tf_ops.apply_image_op(op, st, g, keys)
            if step_by_step:
                st.images()
        return st.images().numpy()

    fused, stepwise = run(False), run(True)
    assert fused.min() >= 0 and fused.max() <= 255
    np.testing.assert_allclose(fused, stepwise, atol=2e-3)
    assert not np.array_equal(fused, x)
