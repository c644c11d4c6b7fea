"""TFLite: float32, dynamic-range and int8 (uint8 in/out) models converted from the plain
SavedModel, each checked against the Keras model and, with test data, scored."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tl_kit.export.common import FLOAT_ATOL, ExportError, max_abs_diff

__all__ = ["TFLITE_MODES", "tflite_predict", "convert_tflite", "write_tflite"]

TFLITE_MODES = ("float32", "dynamic_range", "int8")


def _interpreter(content: bytes):
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to LiteRT
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_content=content)


def _quantise(batch: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(batch / scale + zero), info.min, info.max).astype(detail["dtype"])


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
            batch = _quantise(batch, inp)
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        parts.append(result.astype(np.float32))
    return np.concatenate(parts)


def convert_tflite(plain: Path, mode: str, calibration: np.ndarray) -> bytes:
    """The TFLite flatbuffer of the plain SavedModel in ``mode`` (one of
    :data:`TFLITE_MODES`; int8 calibrates on ``calibration``)."""
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
            from tl_kit.decode import resize_float

            images = resize_float(images, size).numpy()
        correct += int((fn(images).argmax(-1) == labels).sum())
        total += len(labels)
    return (correct / total if total else float("nan")), total


def write_tflite(plain: Path, out: Path, calibration: np.ndarray, check: np.ndarray,
                 reference: np.ndarray, test, model, size: tuple[int, int]) -> dict:
    """Convert, write and check ``model_<mode>.tflite`` for every mode -> ``{mode: entry}``
    (file, size, difference and top-1 agreement with the Keras ``reference`` on ``check``;
    with ``test``, the accuracy and its drop from the Keras model's)."""
    results = {}
    keras_accuracy = None
    if test is not None:
        keras_accuracy, _ = _accuracy(lambda x: model.predict(x, verbose=0), test, size)
    for mode in TFLITE_MODES:
        content = convert_tflite(plain, mode, calibration)
        name = f"model_{mode}.tflite"
        (out / name).write_bytes(content)
        probs = tflite_predict(content, check)
        diff = max_abs_diff(probs, reference)
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
