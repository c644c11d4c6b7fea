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

- :mod:`~tl_kit.export.model`: :func:`export_model`; :mod:`~tl_kit.export.run`:
  :func:`export_run`, behind ``tl-kit export``;
- :mod:`~tl_kit.export.versions`: version folders (:func:`next_version`,
  :func:`resolve_version`) and the staged, atomic install;
- :mod:`~tl_kit.export.build`: one folder's formats and its ``export_report.json``;
- :mod:`~tl_kit.export.saved_model`, :mod:`~tl_kit.export.tflite`,
  :mod:`~tl_kit.export.onnx`: each format, written and checked;
- :mod:`~tl_kit.export.common`: :class:`ExportError`, the tolerance, the check images.

Example:
```python
report = export_model(model, "exports/pets", ["cat", "dog"], formats=("saved_model", "tflite"),
                      representative_data=x_train, test_data=(x_test, y_test))
report["path"]                     # 'exports/pets/1'
report["tflite"]["int8"]["accuracy_drop"]
```
"""

from __future__ import annotations

from tl_kit.export.common import FLOAT_ATOL, NUM_CALIBRATION, NUM_CHECK, ExportError
from tl_kit.export.model import FORMATS, export_model
from tl_kit.export.onnx import ONNX_OPSET
from tl_kit.export.run import export_run
from tl_kit.export.tflite import TFLITE_MODES, tflite_predict
from tl_kit.export.versions import next_version, resolve_version

__all__ = ["FORMATS", "export_model", "export_run", "next_version", "resolve_version",
           "ExportError", "tflite_predict", "TFLITE_MODES", "FLOAT_ATOL", "NUM_CALIBRATION",
           "NUM_CHECK", "ONNX_OPSET"]
