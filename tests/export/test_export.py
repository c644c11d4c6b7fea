"""Tests for tl_kit.export: SavedModel signatures in a fresh TensorFlow-only process, TFLite and
ONNX checks, version folders, no overwrite, no half-written export."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from _paths import TEXTURES
from PIL import Image

from tl_kit.decode import resize_array
from tl_kit.errors import UserError
from tl_kit.evaluate import ensemble
from tl_kit.export import ExportError, export_model, tflite_predict
from tl_kit.predict import ExportedModel, load_for_inference, predict_images

NAMES = ["red", "green", "blue"]
SIZE = 32


@keras.saving.register_keras_serializable(package="tl_kit_test")
class ScalePixels(keras.layers.Layer):
    """A custom layer the fresh process knows nothing about."""

    def call(self, inputs):
        return inputs / 127.5 - 1.0


def _model(size: int = SIZE, seed: int = 0, name: str = "tiny") -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = ScalePixels(name="preprocess")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    # 8*3*3*16 = 1152 weights: big enough (>= 1024) for TFLite to quantise them.
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def _colour_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.uniform(0, 140, (n, SIZE, SIZE, 3)).astype("float32")
    images[np.arange(n), :, :, labels] += 100
    return images, labels


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One trained tiny model exported to every format (shared: exports are slowish)."""
    model = _model()
    x_train, y_train = _colour_data(60, 0)
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=4, batch_size=20, verbose=0)
    base = tmp_path_factory.mktemp("exports") / "colours"
    report = export_model(model, base, NAMES, formats=("saved_model", "tflite", "onnx"),
                          representative_data=x_train, test_data=_colour_data(30, 1))
    return model, base, report


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_export_layout_and_checks(exported):
    model, base, report = exported
    version = base / "1"
    assert report["path"] == str(version) and report["version"] == 1
    for name in ("saved_model.pb", "labels.txt", "export_report.json", "model.onnx",
                 "model_float32.tflite", "model_dynamic_range.tflite", "model_int8.tflite"):
        assert (version / name).is_file(), name
    assert (version / "labels.txt").read_text().splitlines() == NAMES
    assert not [p for p in base.iterdir() if p.name.startswith(".")]
    assert json.loads((version / "export_report.json").read_text())["tflite"] == report["tflite"]

    assert report["saved_model"]["max_abs_diff"] <= 1e-5
    assert report["tflite"]["float32"]["max_abs_diff"] <= 1e-4
    assert report["onnx"]["max_abs_diff"] <= 1e-4
    tflite = report["tflite"]
    assert tflite["dynamic_range"]["size_bytes"] < tflite["float32"]["size_bytes"]
    assert tflite["dynamic_range"]["top1_agreement"] >= 0.9
    int8 = report["tflite"]["int8"]
    assert int8["keras_accuracy"] >= 0.9  # the tiny model learned the colours
    assert int8["accuracy_drop"] == pytest.approx(int8["keras_accuracy"] - int8["accuracy"])
    assert abs(int8["accuracy_drop"]) <= 0.1 and int8["top1_agreement"] >= 0.9

    # The int8 model really is integer at its edges and agrees with Keras.
    content = (version / "model_int8.tflite").read_bytes()
    interpreter = tf.lite.Interpreter(model_content=content)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    images, _ = _colour_data(6, 2)
    np.testing.assert_allclose(tflite_predict(content, images), model.predict(images, verbose=0),
                               atol=0.1)


FRESH_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, inputs, outputs = sys.argv[1:4]
    model = tf.saved_model.load(export_dir)
    data = np.load(inputs)
    uint8 = model.signatures["serving_uint8"](images=tf.constant(data["uint8"]))
    files = [open(path, "rb").read() for path in sys.argv[4:]]
    from_bytes = model.signatures["serving_default"](image_bytes=tf.constant(files))
    meta = model.signatures["metadata"]()
    np.savez(outputs, uint8=uint8["probabilities"].numpy(),
             uint8_names=uint8["class_name"].numpy().astype(str),
             bytes=from_bytes["probabilities"].numpy(),
             bytes_index=from_bytes["class_index"].numpy(),
             names=meta["class_names"].numpy().astype(str))
    print(json.dumps({"tl_kit": "tl_kit" in sys.modules,
                      "custom": any(m.startswith("tests") for m in sys.modules)}))
""")


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    mode = "L" if array.ndim == 2 else "RGB"
    Image.fromarray(array.astype(np.uint8), mode).save(buffer, format=fmt)
    return buffer.getvalue()


def test_saved_model_in_fresh_tensorflow_only_process(exported, tmp_path):
    model, base, _ = exported
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)  # other size, one channel
    files = [_encode(pixels[0], "PNG"), _encode(grey, "PNG"), _encode(pixels[1], "BMP"),
             _encode(pixels[2], "GIF"), _encode(pixels[2], "JPEG")]
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, uint8=pixels)
    paths = []
    for i, content in enumerate(files):
        paths.append(tmp_path / f"image{i}")
        paths[-1].write_bytes(content)
    outputs = tmp_path / "outputs.npz"
    run = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT, str(base / "1"), str(inputs), str(outputs),
         *map(str, paths)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    flags = json.loads(run.stdout.strip().splitlines()[-1])
    assert flags == {"tl_kit": False, "custom": False}
    got = np.load(outputs)

    expected = model.predict(pixels.astype("float32"), verbose=0)
    np.testing.assert_allclose(got["uint8"], expected, atol=1e-5)  # stated tolerance
    assert list(got["uint8_names"]) == [NAMES[i] for i in expected.argmax(-1)]
    assert list(got["names"]) == NAMES
    # PNG and BMP are lossless: decoding in the graph gives the very same pixels.
    np.testing.assert_allclose(got["bytes"][0], expected[0], atol=1e-5)
    np.testing.assert_allclose(got["bytes"][2], expected[1], atol=1e-5)
    # Another size: resized as training resizes decoded files (tl_kit.decode.resample, rounded
    # to uint8: tl_kit.decode.resize_array), not left in float.
    grey_rgb = np.repeat(grey[..., None], 3, axis=-1)
    resized = resize_array(grey_rgb, (SIZE, SIZE)).astype("float32")[None]
    np.testing.assert_allclose(got["bytes"][1], model.predict(resized, verbose=0)[0], atol=1e-5)
    assert got["bytes"].shape == (5, 3)
    np.testing.assert_allclose(got["bytes"].sum(-1), 1.0, atol=1e-5)  # GIF and JPEG decode too
    np.testing.assert_array_equal(got["bytes_index"], got["bytes"].argmax(-1))


def test_export_loads_for_inference(exported):
    model, base, _ = exported
    loaded, names = load_for_inference(base)  # base folder: highest version is used
    assert isinstance(loaded, ExportedModel) and names == NAMES
    images, _ = _colour_data(4, 3)
    np.testing.assert_allclose(loaded.predict(images), model.predict(images, verbose=0), atol=1e-5)
    preds = predict_images(loaded, images, names, tta="flip")
    ref = predict_images(model, images, names, tta="flip")
    assert [p["top"][0][0] for p in preds] == [p["top"][0][0] for p in ref]


def test_versions_never_overwrite_unless_asked(tmp_path):
    model, base = _model(16, seed=1), tmp_path / "m"
    first = export_model(model, base, NAMES)
    second = export_model(model, base, NAMES)
    assert (first["version"], second["version"]) == (1, 2)
    marker = base / "1" / "marker.txt"
    marker.write_text("keep me")
    with pytest.raises(UserError, match="overwrite=True"):
        export_model(model, base, NAMES, version=1)
    assert marker.read_text() == "keep me"
    replaced = export_model(model, base, NAMES, version=1, overwrite=True)
    assert replaced["version"] == 1 and not marker.exists()
    assert (base / "1" / "saved_model.pb").is_file()
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    with pytest.raises(UserError, match="SavedModel"):
        export_model(model, base / "1", NAMES)


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import tl_kit.export.onnx as onnx_export

    model, base = _model(16, seed=2), tmp_path / "m"
    export_model(model, base, NAMES)
    (base / "1" / "marker.txt").write_text("old")

    def broken(*args, **kwargs):
        raise ExportError("simulated converter failure")

    monkeypatch.setattr(onnx_export, "write_onnx", broken)
    for kwargs in ({}, {"version": 1, "overwrite": True}):
        with pytest.raises(ExportError, match="simulated"):
            export_model(model, base, NAMES, formats=("saved_model", "onnx"), **kwargs)
        assert sorted(p.name for p in base.iterdir()) == ["1"]  # no "2", no temp folder
        assert (base / "1" / "marker.txt").read_text() == "old"  # old export intact
    with pytest.raises(UserError, match="representative_data"):
        export_model(model, base, NAMES, formats=("tflite",))
    with pytest.raises(UserError, match="formats"):
        export_model(model, base, NAMES, formats=("coreml",))
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_ensemble_of_different_sizes_exports_as_saved_model(tmp_path):
    both = ensemble([_model(16, 3, "a"), _model(24, 4, "b")], weights=[1, 2])
    report = export_model(both, tmp_path / "ens", NAMES)
    loaded = tf.saved_model.load(report["path"])
    images, _ = _colour_data(3, 4)
    images = tf.image.resize(images, (24, 24)).numpy()
    probs = loaded.signatures["serving_float32"](images=tf.constant(images))["probabilities"]
    np.testing.assert_allclose(probs.numpy(), both.predict(images, verbose=0), atol=1e-5)
    assert report["input_shape"] == [24, 24, 3]


FRESH_JPEG_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    export_dir, outputs = sys.argv[1:3]
    model = tf.saved_model.load(export_dir)
    files = tf.constant([open(path, "rb").read() for path in sys.argv[3:]])
    pixels = model.signatures["decode_images"](image_bytes=files)["images"]
    probs = model.signatures["serving_default"](image_bytes=files)["probabilities"]
    np.savez(outputs, pixels=pixels.numpy(), probs=probs.numpy())
    print("tl_kit" in sys.modules)
""")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("channels", [3, 1])
def test_real_jpeg_bytes_give_training_pixels_in_a_fresh_process(tmp_path, channels):
    """Train/serve skew: the same JPEG bytes give the very same pixels in training
    (Data.dataset, no augmentation), in learner.predict and in serving_default."""
    import tl_kit
    from tl_kit.data import load_data

    root = TEXTURES
    files = sorted(root.glob("*/*.jpg"))[::10]  # 12 real photographs, three classes
    assert len(files) >= 9 and all(f.read_bytes()[:3] == b"\xff\xd8\xff" for f in files)
    learner = tl_kit.finetune(backbone="lenet5", num_classes=3, weights=None, image_size=32,
                              channels=channels, run_dir=tmp_path / "run")
    learner.build()
    report = learner.export(tmp_path / "exp")
    data = load_data(root, image_size=(32, 32), channels=channels, validation_split=0.0)
    paths = data.paths("train")
    x = np.concatenate([b[0].numpy() for b in data.dataset("train", batch_size=64, shuffle=False)])
    training = np.stack([x[paths.index(str(f))] for f in files])

    outputs = tmp_path / "out.npz"
    run = subprocess.run(
        [sys.executable, "-c", FRESH_JPEG_SCRIPT, report["path"], str(outputs), *map(str, files)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "False"  # TensorFlow only
    got = np.load(outputs)
    np.testing.assert_array_equal(got["pixels"].astype(np.float32), training)
    preds = learner.predict([str(f) for f in files], top_k=1)
    probs = np.array([[p["probs"][c] for c in learner.class_names] for p in preds])
    np.testing.assert_allclose(got["probs"], probs, atol=1e-5)
    # The export report measured serving_default from encoded bytes, not decoded pixels.
    served = report["saved_model"]["serving_default"]
    assert served["max_pixel_diff"] == 0 and served["max_abs_diff"] <= 1e-5
    assert served["num_images"] >= 8 and served["from"].startswith("check images")


def test_export_check_uses_the_data_files(tmp_path):
    """With a folder as representative data, the serving_default check reads its files."""
    from tl_kit.data import load_data

    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c, name in enumerate(NAMES):
        (root / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 100, (40, 36, 3), dtype=np.uint8)
            pixels[..., c] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=90)
    data = load_data(root, image_size=(SIZE, SIZE), validation_split=0.0)
    report = export_model(_model(), tmp_path / "exp", NAMES, representative_data=data)
    served = report["saved_model"]["serving_default"]
    assert served["from"] == "image files of the data" and served["num_images"] == 9
    assert served["max_pixel_diff"] == 0 and served["max_abs_diff"] <= 1e-5
