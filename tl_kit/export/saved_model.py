"""The serving SavedModel and its signatures (bytes, uint8, float32, metadata), the plain
one-signature SavedModel the converters read, and their checks against the Keras model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tl_kit import decode as _dec
from tl_kit.export.common import FLOAT_ATOL, NUM_CHECK, ExportError, max_abs_diff

__all__ = ["SIGNATURES", "write_saved_model", "write_plain_saved_model", "check_saved_model",
           "check_bytes", "check_serving_bytes"]

SIGNATURES = ["serving_default", "decode_images", "serving_uint8", "serving_float32", "metadata"]


def _serving_functions(model, names, size, channels: int) -> dict:
    """The signature functions by name (see the package docstring)."""
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
        return _dec.decode_resize(encoded, (height, width), channels)

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

    return {"serving_default": serve_bytes, "decode_images": decode_images,
            "serving_uint8": serve_uint8, "serving_float32": classify, "metadata": metadata}


def write_saved_model(model, out: Path, names, size, channels: int) -> None:
    """The serving SavedModel: bytes, uint8 and float32 signatures plus metadata."""
    import keras
    import tensorflow as tf

    functions = _serving_functions(model, names, size, channels)
    pixels = [tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")]
    specs = {
        "serving_default": [tf.TensorSpec([None], tf.string, name="image_bytes")],
        "decode_images": [tf.TensorSpec([None], tf.string, name="image_bytes")],
        "serving_uint8": pixels,
        "serving_float32": [tf.TensorSpec([None, None, None, channels], tf.float32, name="images")],
        "metadata": [],
    }
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name in SIGNATURES:
        archive.add_endpoint(name, functions[name], specs[name])
    archive.write_out(str(out), verbose=False)


def write_plain_saved_model(model, out: Path, size, channels: int) -> None:
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


def check_saved_model(out: Path, check: np.ndarray, reference: np.ndarray) -> dict:
    """``serving_float32`` of the SavedModel in ``out`` on ``check`` vs the Keras
    probabilities ``reference``; an ExportError beyond :data:`FLOAT_ATOL`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    probs = loaded.signatures["serving_float32"](images=tf.constant(check))["probabilities"]
    diff = max_abs_diff(probs.numpy(), reference)
    if diff > FLOAT_ATOL:
        raise ExportError(
            f"The SavedModel differs from the Keras model by {diff:.2e} (> {FLOAT_ATOL}). "
            f"Received: max_abs_diff={diff}"
        )
    return {"max_abs_diff": diff, "atol": FLOAT_ATOL, "num_images": int(len(check))}


def _data_files(representative, count: int) -> list[tuple[str, bytes]]:
    """Up to ``count`` image files of a tl_kit ``Data`` that training decodes with TF ops."""
    for split in ("train", "val", "test"):
        sp = representative.examples(split) if representative.has(split) else None
        if sp is None or sp.paths is None:
            continue
        chosen = [p for p, pil in zip(sp.paths, sp.pil, strict=True) if not pil][:count]
        if chosen:
            return [(p, _dec.read_bytes(p)) for p in chosen]
    return []


def check_bytes(representative, check: np.ndarray, count: int = NUM_CHECK) -> list[tuple[str, bytes]]:
    """Encoded images for the serving_default check: ``(name, bytes)`` of up to ``count``
    image files of ``representative`` (a tl_kit ``Data``) that training decodes with TF ops,
    else the check images encoded as JPEG (quality 95)."""
    if hasattr(representative, "_splits"):
        files = _data_files(representative, count)
        if files:
            return files
    from PIL import Image

    out = []
    for i, image in enumerate(np.clip(np.round(check), 0, 255).astype(np.uint8)):
        buffer = io.BytesIO()
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        pil.save(buffer, format="JPEG", quality=95)
        out.append((f"check_image_{i}.jpg", buffer.getvalue()))
    return out


def check_serving_bytes(out: Path, model, samples: list[tuple[str, bytes]], size, channels) -> dict:
    """serving_default on encoded bytes vs training's decode path + the Keras model on the
    same bytes: pixels (decode_images) and probabilities."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out))
    contents = tf.constant([b for _, b in samples])
    served = loaded.signatures["serving_default"](image_bytes=contents)["probabilities"].numpy()
    served_pixels = loaded.signatures["decode_images"](image_bytes=contents)["images"].numpy()
    pixels = np.stack([_dec.decode_file_bytes(b, size, channels, name=name)[0] for name, b in samples])
    reference = np.asarray(model.predict(pixels.astype(np.float32), verbose=0), np.float32)
    diff = max_abs_diff(served, reference)
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
