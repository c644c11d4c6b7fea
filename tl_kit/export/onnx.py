"""ONNX: ``model.onnx`` converted from the plain SavedModel with tf2onnx, checked with
onnxruntime."""

from __future__ import annotations

from pathlib import Path

from tl_kit.export.common import FLOAT_ATOL, ExportError, max_abs_diff

__all__ = ["ONNX_OPSET", "write_onnx"]

ONNX_OPSET = 17


def write_onnx(plain: Path, out: Path, check, reference, size, channels: int) -> dict:
    """Convert the plain SavedModel to ``out/model.onnx`` and check it on ``check`` against
    the Keras probabilities ``reference`` -> the report entry."""
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
    diff = max_abs_diff(probs, reference)
    if diff > FLOAT_ATOL:
        raise ExportError(
            f"The ONNX model differs from the Keras model by {diff:.2e} (> {FLOAT_ATOL}). "
            f"Received: max_abs_diff={diff}"
        )
    return {"file": "model.onnx", "opset": ONNX_OPSET, "max_abs_diff": diff,
            "input": session.get_inputs()[0].name, "tf2onnx": tf2onnx.__version__}
