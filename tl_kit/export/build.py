"""Assemble one export folder: ``labels.txt``, the formats asked for, each checked against
the Keras model, and the report that says what was written and measured."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tl_kit.export import onnx as onnx_format
from tl_kit.export import saved_model as saved_model_format
from tl_kit.export import tflite as tflite_format
from tl_kit.export.common import NUM_CALIBRATION, NUM_CHECK, random_images, take_images

__all__ = ["write_export", "write_report"]


def _new_report(names, formats, size, channels: int) -> dict:
    import tensorflow as tf

    height, width = size
    return {
        "formats": list(formats),
        "class_names": list(names),
        "input_shape": [height, width, channels],
        "input": "raw pixels in [0, 255]; resize: box filter shrinking, bilinear growing (tl_kit.decode.resample, as tl_kit.data)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "tensorflow": tf.__version__,
        "files": [],
    }


def _add_saved_model(report: dict, model, out: Path, names, size, channels: int, check,
                     reference, representative) -> None:
    saved_model_format.write_saved_model(model, out, names, size, channels)
    report["files"] += ["saved_model.pb", "variables/", "assets/"]
    report["signatures"] = list(saved_model_format.SIGNATURES)
    report["saved_model"] = saved_model_format.check_saved_model(out, check, reference)
    report["saved_model"]["serving_default"] = saved_model_format.check_serving_bytes(
        out, model, saved_model_format.check_bytes(representative, check), size, channels)


def write_export(model, out: Path, names, formats, size, channels: int, representative,
                 test) -> dict:
    """Write ``labels.txt`` and every format of ``formats`` into the folder ``out``, each
    checked against ``model`` -> the export report (without ``path`` and ``version``)."""
    report = _new_report(names, formats, size, channels)
    (out / "labels.txt").write_text("\n".join(names) + "\n")
    report["files"].append("labels.txt")
    calibration = (take_images(representative, NUM_CALIBRATION, size)
                   if representative is not None else None)
    check = calibration[:NUM_CHECK] if calibration is not None else random_images(size, channels)
    reference = np.asarray(model.predict(check, verbose=0), np.float32)

    scratch = Path(tempfile.mkdtemp(prefix="tl_kit_export_"))
    try:
        if "saved_model" in formats:
            _add_saved_model(report, model, out, names, size, channels, check, reference,
                             representative)
        if "tflite" in formats or "onnx" in formats:
            plain = scratch / "plain"
            saved_model_format.write_plain_saved_model(model, plain, size, channels)
        if "tflite" in formats:
            report["tflite"] = tflite_format.write_tflite(plain, out, calibration, check,
                                                          reference, test, model, size)
            report["files"] += [entry["file"] for entry in report["tflite"].values()]
        if "onnx" in formats:
            report["onnx"] = onnx_format.write_onnx(plain, out, check, reference, size, channels)
            report["files"].append(report["onnx"]["file"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def write_report(out: Path, report: dict) -> None:
    """``out/export_report.json``."""
    (out / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
