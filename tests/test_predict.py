"""Tests for tl_kit.predict: predictions from paths, arrays and PIL images; saving and
loading a model for inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _colour import NAMES, colour_data, colour_model, conv_model
from PIL import Image

from tl_kit.errors import UserError
from tl_kit.predict import (
    format_predictions,
    load_for_inference,
    predict_images,
    save_for_inference,
)


def test_predict_images_from_paths_arrays_and_pil(tmp_path):
    model = colour_model()
    paths = []
    for name, rgb in (("r.png", (200, 0, 0)), ("g.jpg", (0, 200, 0)), ("b.bmp", (0, 0, 200))):
        Image.new("RGB", (20, 12), rgb).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    preds = predict_images(model, paths, NAMES, top_k=2)
    assert [p["top"][0][0] for p in preds] == NAMES
    assert [p["path"] for p in preds] == paths
    assert len(preds[0]["top"]) == 2 and preds[0]["top"][0][1] >= preds[0]["top"][1][1]
    assert sum(preds[0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)

    images, _ = colour_data()
    from_arrays = predict_images(model, images[:2], NAMES, top_k=5)
    assert len(from_arrays[0]["top"]) == 3 and from_arrays[0]["path"] is None
    np.testing.assert_allclose(list(from_arrays[0]["probs"].values()),
                               model.predict(images[:1], verbose=0)[0], atol=1e-6)
    pil = predict_images(model, Image.new("RGB", (30, 30), (0, 0, 250)), NAMES, tta="flip")
    assert pil[0]["top"][0][0] == "blue"

    table = format_predictions(preds)
    assert "r.png" in table and "red" in table and len(table.splitlines()) == 4
    parsed = json.loads(format_predictions(preds, as_json=True))
    assert parsed[1]["top"][0]["class"] == "green"
    with pytest.raises(UserError, match="not found"):
        predict_images(model, [str(tmp_path / "missing.png")], NAMES)


def test_save_and_load_for_inference_from_run_dir(tmp_path):
    model = conv_model(16, "net", 3)
    run = tmp_path / "run"
    save_for_inference(model, NAMES, run)
    assert json.loads((run / "class_names.json").read_text()) == NAMES
    loaded, names = load_for_inference(run)
    assert names == NAMES
    images = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)
    with pytest.raises(UserError, match="class names"):
        save_for_inference(model, ["a"], tmp_path / "bad")
    with pytest.raises(UserError, match="Received: path="):
        load_for_inference(tmp_path / "nothing_here")


def test_collect_images_and_resize_to(tmp_path):
    from tl_kit.predict import collect_images, resize_to

    Image.new("RGB", (20, 12), (200, 0, 0)).save(tmp_path / "r.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    pil = Image.new("L", (5, 4), 7)
    arrays, paths, failed = collect_images(
        [str(tmp_path / "r.png"), str(tmp_path / "broken.png"), pil, np.zeros((3, 3))], 3)
    assert paths == [str(tmp_path / "r.png"), str(tmp_path / "broken.png"), None, None]
    assert arrays[0].shape == (12, 20, 3) and arrays[0].dtype == np.uint8
    assert arrays[1] is None and set(failed) == {1}
    assert arrays[2].shape == (4, 5, 3) and arrays[3].shape == (3, 3, 1)
    batch, batch_paths, _ = collect_images(np.zeros((6, 6, 3)), 3)  # one (H, W, C) array
    assert len(batch) == 1 and batch_paths == [None]
    with pytest.raises(UserError, match=r"\(N, H, W, C\)"):
        collect_images(np.zeros((2, 2)), 3)

    same = resize_to(arrays[0], (12, 20))
    assert same.dtype == np.float32 and np.array_equal(same, arrays[0])
    from tl_kit.decode import resize_array

    np.testing.assert_array_equal(resize_to(arrays[0], (6, 10)), resize_array(arrays[0], (6, 10)))
    floats = resize_to(np.full((8, 8, 3), 100.0, np.float32), (4, 4))
    assert floats.shape == (4, 4, 3) and np.allclose(floats, 100.0)
