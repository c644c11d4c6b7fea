"""Grad-CAM: the heatmap finds the patch that decides the class; any backbone; CLI; evaluate."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from tl_kit.errors import UserError
from tl_kit.explain import gradcam, gradcam_model, target_layer
from tl_kit.recipes import Recipe, Stage
from tl_kit.train import Learner

PATCH = 8


def _patch_images(n: int, seed: int):
    """32x32 grey noise with one bright 8x8 patch: class 0 when it lies in the left half,
    1 in the right half (only its position decides the class). Returns images, labels, boxes."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 40, (n, 32, 32, 1)).astype("float32")
    y = np.arange(n) % 2
    boxes = []
    for i in range(n):
        col = rng.integers(1, 8) if y[i] == 0 else rng.integers(17, 24)
        row = rng.integers(1, 24)
        x[i, row:row + PATCH, col:col + PATCH] = 230.0
        boxes.append((row, col))
    return x, y, boxes


@pytest.fixture(scope="module")
def patch_learner(tmp_path_factory):
    x, y, _ = _patch_images(240, seed=0)
    recipe = Recipe(name="patch", calibrate=False, head_pool="avg", stages=[
        Stage(name="all", trainable="all", epochs=8, learning_rate=2e-3, augment="none",
              early_stopping=0, batch_size=32, cache_features=False, class_weights=False)])
    learner = Learner("lenet5", 2, weights=None, recipe=recipe, verbose=0, tensorboard=False,
                      run_dir=tmp_path_factory.mktemp("patch") / "run", seed=1)
    learner.fit((x, y))
    return learner


def test_heatmap_peak_lies_on_the_deciding_patch(patch_learner, tmp_path):
    x, y, boxes = _patch_images(40, seed=5)
    probs = patch_learner.model.predict(x, verbose=0)
    assert (probs.argmax(axis=1) == y).mean() >= 0.9, "the tiny CNN learned the task"
    result = patch_learner.explain(x, out=tmp_path / "cam")
    assert result["layer"] == "block2_pool"  # LeNet-5's last block, from its declaration
    hits = 0
    for heat, (row, col) in zip(result["heatmaps"], boxes, strict=True):
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        hits += (row - 3 <= r < row + PATCH + 3) and (col - 3 <= c < col + PATCH + 3)
    assert hits >= 0.8 * len(boxes), f"peak on the patch for {hits}/{len(boxes)} images"
    assert len(result["files"]) == 40 and all(f.endswith("_gradcam.png") for f in result["files"])
    # A class-agnostic map would not flip with the class explained: explaining the other class
    # must move the peak off the patch for most images.
    other = patch_learner.explain(x, classes=[1 - c for c in result["classes"]])
    same = sum(np.argmax(a) == np.argmax(b) for a, b in zip(result["heatmaps"], other["heatmaps"], strict=True))
    assert same < 0.5 * len(x)


@pytest.mark.parametrize("name, size, expected", [
    ("vgg16", 32, "block4_pool"),              # block5_pool is 1x1 at 32 px: one block back
    ("keras:mobilenetv2", 64, "out_relu"),     # a Keras Application (2x2 map at 64 px)
    ("keras:resnet50", 64, "conv5_block3_out"),
])
def test_any_backbone_uses_its_last_block_and_rebuilds_exactly(name, size, expected):
    keras.backend.clear_session()
    learner = Learner(name, 3, weights=None, image_size=size, verbose=0, tensorboard=False)
    assert target_layer(learner.backbone, learner.blocks) == expected
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    result = gradcam(learner.model, x, blocks=learner.blocks)
    assert result["layer"] == expected and result["heatmaps"].shape == (2, size, size)
    assert np.isfinite(result["heatmaps"]).all() and result["heatmaps"].max() == pytest.approx(1.0)
    np.testing.assert_allclose(result["probabilities"], learner.model.predict(x, verbose=0), atol=1e-5)


def test_models_it_cannot_explain_fail_clearly():
    inp = keras.Input((8, 8, 3))
    a = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp), name="a")
    b = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp), name="b")
    two = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="predictions")(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a(inp), b(inp)]))))
    with pytest.raises(UserError, match="one backbone sub-model"):
        gradcam_model(two)
    flat = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="predictions")(
        keras.layers.Flatten()(keras.layers.Conv2D(4, 3, name="conv")(inp))))
    assert gradcam(flat, np.ones((1, 8, 8, 3), "float32"))["layer"] == "conv"
    with pytest.raises(UserError, match="No layer 'nope'"):
        gradcam(flat, np.ones((1, 8, 8, 3), "float32"), layer="nope")


def test_cli_explain_and_evaluate_overlays(patch_learner, tmp_path, capsys):
    from PIL import Image

    from tl_kit.cli import main
    from tl_kit.evaluate import evaluate_model

    x, y, _ = _patch_images(4, seed=9)
    files = []
    for i, image in enumerate(x):
        files.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(image[..., 0].astype("uint8")).save(files[-1])
    run = str(patch_learner.run_dir)
    assert main(["explain", run, *files, "--out", str(tmp_path / "cam"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layer"] == "block2_pool" and len(report["images"]) == 4
    assert all((tmp_path / "cam").joinpath(r["overlay"].split("/")[-1]).is_file() for r in report["images"])
    assert main(["explain", run, files[0], "--class", "nope"]) == 2
    # evaluate's worst-predictions grid carries the overlays (and differs from the plain grid).
    pngs = []
    for flag in (True, False):
        out = tmp_path / f"eval_{flag}"
        evaluate_model(patch_learner.model, (x, y), ["0", "1"], out_dir=out, worst_heatmaps=flag)
        pngs.append(np.asarray(Image.open(out / "plots" / "worst_predictions.png").convert("RGB"), float))
    assert pngs[0].shape == pngs[1].shape
    colourful = [np.abs(p[..., 0] - p[..., 2]).mean() for p in pngs]  # grey images vs jet overlay
    assert colourful[0] > colourful[1] + 5
