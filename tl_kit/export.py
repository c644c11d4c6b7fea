"""Export a classifier for serving: SavedModel (TensorFlow Serving), TFLite, ONNX.

An export is one numbered version folder, ``path/<version>/``, the layout TensorFlow
Serving watches. It holds:

- the SavedModel (``saved_model.pb``, ``variables/``), preprocessing and class names inside,
  with the signatures
  - ``serving_default(image_bytes: string[None])``: encoded JPEG/PNG/BMP/GIF/WebP images of
    any size, grey or colour (first GIF frame), decoded and resized in the graph by
    :mod:`tl_kit.decode`, the decoder and resize training uses: the same bytes give the same
    pixels as in training (files training had to decode with Pillow, such as EXIF-rotated,
    transparent or CMYK ones, are the exception: see :mod:`tl_kit.decode`);
  - ``decode_images(image_bytes: string[None])``: the uint8 pixels ``serving_default``
    classifies (``images``), to check an input;
  - ``serving_uint8(images: uint8[None, None, None, C])``: pixel batches, any size (resized
    and rounded to uint8 as training resizes decoded files);
  - ``serving_float32(images: float32[None, None, None, C])``: raw [0, 255] pixels;
  - ``metadata()``: ``class_names`` and ``input_shape``;
  each classifying signature returns ``probabilities`` (float32 [B, K]), ``class_index``
  (int64 [B]) and ``class_name`` (string [B]);
- ``labels.txt`` (one class name per line) beside ``saved_model.pb``;
- ``model_float32.tflite``, ``model_dynamic_range.tflite``, ``model_int8.tflite`` (uint8
  input = raw pixels, uint8 output = quantised probabilities), each checked against the
  Keras model with the TFLite interpreter;
- ``model.onnx`` (tf2onnx), checked with onnxruntime;
- ``export_report.json``: what was written and the measured differences, including the
  int8 accuracy drop on the test data; ``saved_model.serving_default`` is measured from
  encoded bytes (the data's own image files when given, else JPEG-encoded check images)
  through ``serving_default`` against training's decode path plus the Keras model.

The folder is assembled in a hidden temporary folder beside it and renamed into place, so a
failed export leaves nothing behind, and an existing version is never replaced unless
``overwrite=True``.

Example:
```python
report = export_model(model, "exports/pets", ["cat", "dog"], formats=("saved_model", "tflite"),
                      representative_data=x_train, test_data=(x_test, y_test))
report["path"]                     # 'exports/pets/1'
report["tflite"]["int8"]["accuracy_drop"]
```
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tl_kit import decode as _dec
from tl_kit.errors import TLKitError, UserError
from tl_kit.tta import model_image_size

__all__ = ["FORMATS", "export_model", "export_run", "next_version", "ExportError"]

FORMATS = ("saved_model", "tflite", "onnx")
TFLITE_MODES = ("float32", "dynamic_range", "int8")
# Largest difference in probabilities accepted between the Keras model and an export that
# computes in float32 (SavedModel, TFLite float32, ONNX); exports beyond it are not written.
FLOAT_ATOL = 1e-4
NUM_CALIBRATION = 100
NUM_CHECK = 32
ONNX_OPSET = 17


class ExportError(TLKitError):
    """An export could not be written or failed its check against the Keras model."""


# === Public API ===


def next_version(path: str | os.PathLike) -> int:
    """The next free TensorFlow Serving version number under ``path`` (1 if none)."""
    base = Path(path)
    numbers = [int(c.name) for c in base.iterdir() if c.name.isdigit()] if base.is_dir() else []
    return max(numbers, default=0) + 1


def export_model(
    model,
    path: str | os.PathLike,
    class_names: Sequence[str],
    *,
    formats: Sequence[str] = ("saved_model",),
    version: int | None = None,
    overwrite: bool = False,
    representative_data=None,
    test_data=None,
    image_size: Sequence[int] | None = None,
) -> dict:
    """Export ``model`` (raw [0, 255] images -> probabilities) under ``path/<version>/``.

    Args:
        model: keras.Model mapping raw [0, 255] images (B, H, W, C) to probabilities.
        path: the model's base folder (TensorFlow Serving ``model_base_path``).
        class_names: one name per output unit.
        formats: any of ``"saved_model"``, ``"tflite"``, ``"onnx"``.
        version: version folder number; None takes the next free one.
        overwrite: replace an existing ``path/<version>`` (otherwise an error).
        representative_data: training images for int8 calibration and the export checks:
            (N, H, W, C) array, ``(images, labels)``, a ``tf.data.Dataset`` or a tl_kit
            ``Data`` (its train split). Needed for the int8 TFLite model.
        test_data: labelled data (anything :func:`tl_kit.evaluate.iter_batches` reads) to
            measure the accuracy of each TFLite model against the Keras model.
        image_size: ``(height, width)`` for models whose input size is not fixed.

    Returns:
        The export report (also written as ``export_report.json``): ``path``, ``version``,
        ``files``, ``saved_model`` / ``tflite`` / ``onnx`` check results.
    """
    formats = _check_formats(formats)
    names = [str(name) for name in class_names]
    units = model.output_shape[-1]
    if units != len(names):
        raise UserError(
            f"The model predicts {units} classes but {len(names)} class names were given. "
            f"Received: class_names={names}"
        )
    size = tuple(int(v) for v in image_size) if image_size is not None else model_image_size(model)
    if size is None:
        raise UserError(
            "The model has no fixed input size; pass image_size=(height, width). "
            f"Received: input_shape={model.input_shape}"
        )
    channels = int(model.input_shape[-1])
    if "tflite" in formats and representative_data is None:
        raise UserError(
            "TFLite export needs representative_data (training images) to calibrate the int8 "
            "model. Received: representative_data=None"
        )

    base = _check_base(path)
    if (base / "saved_model.pb").exists():
        raise UserError(
            f"{str(base)!r} is itself a SavedModel; exports go into numbered folders under a "
            f"base folder. Pass its parent or a new folder. Received: path={str(path)!r}"
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"Cannot create the export folder {str(base)!r} ({error.strerror or error}). "
            f"Received: path={str(path)!r}") from None
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise UserError(f"version must be a positive integer. Received: version={version}")
    target = base / str(version)
    if target.exists() and not overwrite:
        raise UserError(
            f"An export already exists at {str(target)!r}; pass overwrite=True to replace it "
            f"or another version. Received: version={version}, overwrite={overwrite}"
        )

    # mkdir (not tempfile.mkdtemp, which makes 0700 folders): the version folder honours the
    # umask like any file the user writes, so a serving process of another user can read it.
    staging = base / f".tmp-export-{version}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        report = _write_export(
            model, staging, names, formats, size, channels, representative_data, test_data
        )
        report.update({"path": str(target), "version": version})
        (staging / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
        if target.exists():  # overwrite=True: swap, then drop the old one
            old = base / f".old-{version}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def export_run(
    run_dir: str | os.PathLike,
    path: str | os.PathLike | None = None,
    *,
    formats: Sequence[str] = ("saved_model",),
    data=None,
    version: int | None = None,
    overwrite: bool = False,
) -> dict:
    """Export the model of a run directory; backs ``tl-kit export RUN --format ...``.

    ``path`` defaults to ``run_dir/export``. ``data`` (a folder or tfds source, or anything
    ``export_model`` accepts) supplies the representative (train split) and test images for
    TFLite and the image files of the ``serving_default`` check; a source string is loaded
    with the run's split manifest, read only (nothing in ``run_dir`` changes).
    """
    from tl_kit.predict import load_for_inference

    _check_base(path if path is not None else Path(run_dir) / "export")  # before any loading
    model, names = load_for_inference(run_dir)
    if not hasattr(model, "get_config"):
        raise UserError(
            f"{str(run_dir)!r} holds an export, not a Keras model; export from the run "
            f"directory instead. Received: run_dir={str(run_dir)!r}"
        )
    representative = test = None
    if data is not None:
        if isinstance(data, str | os.PathLike):
            from tl_kit.data import load_data

            data = load_data(str(data), image_size=model_image_size(model),
                             channels=int(model.input_shape[-1]), class_names=list(names),
                             run_dir=str(run_dir), record=False)  # the run's records stay
        if hasattr(data, "has"):
            representative = data
            test = data if (data.has("test") or data.has("val")) else None
        else:
            representative = test = data
    return export_model(
        model, path if path is not None else Path(run_dir) / "export", names, formats=formats,
        version=version, overwrite=overwrite, representative_data=representative,
        test_data=test,
    )


# === Implementation ===


def _check_base(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it is a folder or can become one; a UserError naming it when
    it (or a folder above it) is a file. Nothing is created or changed."""
    base = Path(path)
    for folder in (base, *base.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "is a file" if folder == base else f"is under {str(folder)!r}, a file"
                raise UserError(
                    f"The export folder {str(base)!r} {what}, not a folder: exports go into "
                    f"numbered folders under a base folder; choose a folder (new or existing). "
                    f"Received: path={str(path)!r}")
            break
    return base


def _check_formats(formats) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(str(f).lower().replace("-", "_") for f in formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"formats must be some of {FORMATS}. Received: formats={formats}")
    return formats


def _write_export(model, out: Path, names, formats, size, channels, representative, test) -> dict:
    import tensorflow as tf

    height, width = size
    report: dict = {
        "formats": list(formats),
        "class_names": list(names),
        "input_shape": [height, width, channels],
        "input": "raw pixels in [0, 255]; resize: bilinear, antialias (as tl_kit.data)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "tensorflow": tf.__version__,
        "files": [],
    }
    (out / "labels.txt").write_text("\n".join(names) + "\n")
    report["files"].append("labels.txt")
    calibration = _take_images(representative, NUM_CALIBRATION, size) if representative is not None else None
    check = calibration[:NUM_CHECK] if calibration is not None else _random_images(size, channels)
    reference = np.asarray(model.predict(check, verbose=0), np.float32)

    scratch = Path(tempfile.mkdtemp(prefix="tl_kit_export_"))
    try:
        if "saved_model" in formats:
            _write_saved_model(model, out, names, size, channels)
            report["files"] += ["saved_model.pb", "variables/", "assets/"]
            report["signatures"] = ["serving_default", "decode_images", "serving_uint8",
                                    "serving_float32", "metadata"]
            report["saved_model"] = _check_saved_model(out, check, reference)
            report["saved_model"]["serving_default"] = _check_serving_bytes(
                out, model, _check_bytes(representative, check), size, channels)
        if "tflite" in formats or "onnx" in formats:
            plain = scratch / "plain"
            _write_plain_saved_model(model, plain, size, channels)
        if "tflite" in formats:
            report["tflite"] = _write_tflite(plain, out, calibration, check, reference, test, model, size)
            report["files"] += [entry["file"] for entry in report["tflite"].values()]
        if "onnx" in formats:
            report["onnx"] = _write_onnx(plain, out, check, reference, size, channels)
            report["files"].append(report["onnx"]["file"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _random_images(size, channels: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (8, *size, channels)).astype(np.float32)


def _take_images(data, count: int, size) -> np.ndarray:
    """Up to ``count`` images from arrays / (x, y) / tf.data / Data, resized to ``size``."""
    import tensorflow as tf

    if hasattr(data, "dataset") and hasattr(data, "has"):
        data = data.dataset("train", batch_size=32, training=False, shuffle=False)
    if isinstance(data, tuple | list) and len(data) == 2 and np.ndim(data[0]) == 4:
        data = data[0]
    if isinstance(data, tf.data.Dataset):
        parts, total = [], 0
        for item in data.as_numpy_iterator():
            images = np.asarray(item[0] if isinstance(item, tuple | list) else item, np.float32)
            if images.ndim == 3:
                images = images[None]
            parts.append(images)
            total += len(images)
            if total >= count:
                break
        if not parts:
            raise UserError("representative_data is empty. Received: an empty dataset")
        data = np.concatenate(parts)
    images = np.asarray(data, np.float32)[:count]
    if images.ndim != 4 or len(images) == 0:
        raise UserError(
            "representative_data must hold images (N, H, W, C). "
            f"Received: shape={images.shape}"
        )
    if tuple(images.shape[1:3]) != tuple(size):
        images = tf.image.resize(images, size, method="bilinear", antialias=True).numpy()
    return images.astype(np.float32)


def _write_saved_model(model, out: Path, names, size, channels: int) -> None:
    """The serving SavedModel: bytes, uint8 and float32 signatures plus metadata."""
    import keras
    import tensorflow as tf

    height, width = size
    class_table = tf.constant(list(names))

    def classify(images):
        images = _dec.resize_float(images, (height, width))
        probs = tf.cast(model(images, training=False), tf.float32)
        index = tf.argmax(probs, axis=-1)
        return {"probabilities": probs, "class_index": index,
                "class_name": tf.gather(class_table, index)}

    def decode(encoded):  # training's decoder and resize (tl_kit.decode), uint8
        return _dec.resize_image(_dec.decode_bytes(encoded, channels), (height, width))

    def decode_images(image_bytes):
        images = tf.map_fn(decode, image_bytes,
                           fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8))
        return {"images": images}

    def serve_bytes(image_bytes):
        return classify(decode_images(image_bytes)["images"])

    def serve_uint8(images):  # decoded pixels: resized and rounded as training resizes files
        resized = _dec.resize_image(images, (height, width))
        return classify(resized)

    def metadata():
        return {"class_names": class_table,
                "input_shape": tf.constant([height, width, channels], tf.int32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve_bytes,
                         [tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("decode_images", decode_images,
                         [tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("serving_uint8", serve_uint8,
                         [tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")])
    archive.add_endpoint("serving_float32", classify,
                         [tf.TensorSpec([None, None, None, channels], tf.float32, name="images")])
    archive.add_endpoint("metadata", metadata, [])
    archive.write_out(str(out), verbose=False)


def _write_plain_saved_model(model, out: Path, size, channels: int) -> None:
    """A one-signature SavedModel (float32 images at the model size) for the converters."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda image: tf.cast(model(image, training=False), tf.float32),
        [tf.TensorSpec([None, *size, channels], tf.float32, name="image")],
    )
    archive.write_out(str(out), verbose=False)


def _check_saved_model(out: Path, check: np.ndarray, reference: np.ndarray) -> dict:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    probs = loaded.signatures["serving_float32"](images=tf.constant(check))["probabilities"]
    diff = float(np.abs(probs.numpy() - reference).max())
    if diff > FLOAT_ATOL:
        raise ExportError(
            f"The SavedModel differs from the Keras model by {diff:.2e} (> {FLOAT_ATOL}). "
            f"Received: max_abs_diff={diff}"
        )
    return {"max_abs_diff": diff, "atol": FLOAT_ATOL, "num_images": int(len(check))}


def _check_bytes(representative, check: np.ndarray, count: int = NUM_CHECK) -> list[tuple[str, bytes]]:
    """Encoded images for the serving_default check: ``(name, bytes)`` of up to ``count``
    image files of ``representative`` (a tl_kit ``Data``) that training decodes with TF ops,
    else the check images encoded as JPEG (quality 95)."""
    if hasattr(representative, "_splits"):
        for split in ("train", "val", "test"):
            sp = representative._splits.get(split)
            if sp is None or sp.paths is None:
                continue
            chosen = [p for p, pil in zip(sp.paths, sp.pil, strict=True) if not pil][:count]
            if chosen:
                return [(p, _dec._read_bytes(p)) for p in chosen]
    import io

    from PIL import Image

    out = []
    for i, image in enumerate(np.clip(np.round(check), 0, 255).astype(np.uint8)):
        buffer = io.BytesIO()
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        pil.save(buffer, format="JPEG", quality=95)
        out.append((f"check_image_{i}.jpg", buffer.getvalue()))
    return out


def _check_serving_bytes(out: Path, model, samples: list[tuple[str, bytes]], size, channels) -> dict:
    """serving_default on encoded bytes vs training's decode path + the Keras model on the
    same bytes: pixels (decode_images) and probabilities."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    contents = tf.constant([b for _, b in samples])
    served = loaded.signatures["serving_default"](image_bytes=contents)["probabilities"].numpy()
    served_pixels = loaded.signatures["decode_images"](image_bytes=contents)["images"].numpy()
    pixels = np.stack([_dec.decode_file_bytes(b, size, channels, name=name)[0] for name, b in samples])
    reference = np.asarray(model.predict(pixels.astype(np.float32), verbose=0), np.float32)
    diff = float(np.abs(served - reference).max())
    pixel_diff = int(np.abs(served_pixels.astype(np.int32) - pixels.astype(np.int32)).max())
    if diff > FLOAT_ATOL or pixel_diff:
        raise ExportError(
            f"serving_default on encoded images differs from training's decoding + the Keras "
            f"model: probabilities by {diff:.2e} (atol {FLOAT_ATOL}), pixels by {pixel_diff}. "
            f"Received: max_abs_diff={diff}, max_pixel_diff={pixel_diff}")
    return {"max_abs_diff": diff, "max_pixel_diff": pixel_diff, "atol": FLOAT_ATOL,
            "num_images": len(samples),
            "from": "image files of the data" if not samples[0][0].startswith("check_image_")
            else "check images encoded as JPEG (quality 95)"}


# --- TFLite ---


def _interpreter(content: bytes):
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to LiteRT
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_content=content)


def tflite_predict(content: bytes, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Run a TFLite model on raw [0, 255] images; quantised inputs/outputs are handled."""
    interpreter = _interpreter(content)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    parts = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], np.float32)
        interpreter.resize_tensor_input(inp["index"], list(batch.shape))
        interpreter.allocate_tensors()
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            batch = np.clip(np.round(batch / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        parts.append(result.astype(np.float32))
    return np.concatenate(parts)


def _convert_tflite(plain: Path, mode: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(plain), signature_keys=["serve"])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        def representative():
            for image in calibration:
                yield [image[None]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        return converter.convert()
    except Exception as error:  # converter errors are long; keep the cause attached
        raise ExportError(
            f"TFLite {mode} conversion failed: {str(error).splitlines()[0][:300]}. "
            f"Received: mode={mode!r}"
        ) from error


def _accuracy(fn, test, size) -> tuple[float, int]:
    from tl_kit.evaluate import iter_batches

    correct = total = 0
    for images, labels in iter_batches(test, split=None, batch_size=64):
        if tuple(images.shape[1:3]) != tuple(size):
            import tensorflow as tf

            images = tf.image.resize(images, size, method="bilinear", antialias=True).numpy()
        correct += int((fn(images).argmax(-1) == labels).sum())
        total += len(labels)
    return (correct / total if total else float("nan")), total


def _write_tflite(plain, out, calibration, check, reference, test, model, size) -> dict:
    results = {}
    keras_accuracy = None
    if test is not None:
        keras_accuracy, _ = _accuracy(lambda x: model.predict(x, verbose=0), test, size)
    for mode in TFLITE_MODES:
        content = _convert_tflite(plain, mode, calibration)
        name = f"model_{mode}.tflite"
        (out / name).write_bytes(content)
        probs = tflite_predict(content, check)
        diff = float(np.abs(probs - reference).max())
        entry = {
            "file": name,
            "size_bytes": len(content),
            "max_abs_diff": diff,
            "top1_agreement": float((probs.argmax(-1) == reference.argmax(-1)).mean()),
            "num_check_images": int(len(check)),
        }
        if mode == "float32" and diff > FLOAT_ATOL:
            raise ExportError(
                f"The float32 TFLite model differs from the Keras model by {diff:.2e} "
                f"(> {FLOAT_ATOL}). Received: max_abs_diff={diff}"
            )
        if test is not None:
            accuracy, count = _accuracy(lambda x, c=content: tflite_predict(c, x), test, size)
            entry.update({"accuracy": accuracy, "keras_accuracy": keras_accuracy,
                          "accuracy_drop": keras_accuracy - accuracy, "num_test_images": count})
        results[mode] = entry
    return results


# --- ONNX ---


def _write_onnx(plain, out, check, reference, size, channels) -> dict:
    import tensorflow as tf

    try:
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise ExportError(
            "ONNX export needs tf2onnx and onnxruntime: pip install 'tl_kit[onnx]'. "
            f"Received: {error}"
        ) from error
    loaded = tf.saved_model.load(str(plain))
    serve = loaded.signatures["serve"]
    spec = [tf.TensorSpec([None, *size, channels], tf.float32, name="image")]
    function = tf.function(lambda image: {"probabilities": serve(image=image)["output_0"]})
    file = out / "model.onnx"
    try:
        tf2onnx.convert.from_function(function, input_signature=spec, opset=ONNX_OPSET,
                                      output_path=str(file))
    except Exception as error:
        raise ExportError(
            f"tf2onnx {tf2onnx.__version__} could not convert this model with TensorFlow "
            f"{tf.__version__} ({type(error).__name__}: {str(error)[:300]}); export without "
            f"'onnx' or use a tf2onnx release that supports this TensorFlow. "
            f"Received: formats=('onnx',)"
        ) from error
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    probs = session.run(None, {session.get_inputs()[0].name: check})[0]
    diff = float(np.abs(probs - reference).max())
    if diff > FLOAT_ATOL:
        raise ExportError(
            f"The ONNX model differs from the Keras model by {diff:.2e} (> {FLOAT_ATOL}). "
            f"Received: max_abs_diff={diff}"
        )
    return {"file": "model.onnx", "opset": ONNX_OPSET, "max_abs_diff": diff,
            "input": session.get_inputs()[0].name, "tf2onnx": tf2onnx.__version__}
