"""Export a Keras classifier under ``path/<version>/`` in the formats asked for."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tl_kit.errors import UserError
from tl_kit.export.build import write_export, write_report
from tl_kit.export.versions import prepare_base, staged_version, version_folder
from tl_kit.tta import model_image_size

__all__ = ["FORMATS", "check_formats", "export_model"]

FORMATS = ("saved_model", "tflite", "onnx")


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``formats`` as a tuple of known format names (lower case, ``-`` read as ``_``,
    duplicates dropped); a UserError for an unknown or empty one."""
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(str(f).lower().replace("-", "_") for f in formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"formats must be some of {FORMATS}. Received: formats={formats}")
    return formats


def _input_size(model, names: list[str], image_size) -> tuple[int, int]:
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
    return size


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
    formats = check_formats(formats)
    names = [str(name) for name in class_names]
    size = _input_size(model, names, image_size)
    channels = int(model.input_shape[-1])
    if "tflite" in formats and representative_data is None:
        raise UserError(
            "TFLite export needs representative_data (training images) to calibrate the int8 "
            "model. Received: representative_data=None"
        )
    base = prepare_base(path)
    version, target = version_folder(base, version, overwrite)
    with staged_version(base, version) as staging:
        report = write_export(model, staging, names, formats, size, channels,
                              representative_data, test_data)
        report.update({"path": str(target), "version": version})
        write_report(staging, report)
    return report
