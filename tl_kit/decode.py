"""One image decoder and one resize for every path: training (cached and streaming),
``evaluate``, ``predict`` and the SavedModel's ``serving_default`` signature.

The same encoded bytes give the same pixels everywhere, because everywhere they go through
:func:`decode_bytes` and :func:`resize_image` (TensorFlow ops, graph-safe):

* JPEG: ``tf.io.decode_jpeg(dct_method=DCT_METHOD)`` (``"INTEGER_ACCURATE"``, libjpeg's
  ``JDCT_ISLOW``: the accurate integer DCT, the one Pillow uses; TensorFlow's default is the
  fast one, up to 3 levels off). Decoded for a given size (:func:`decode_resize`, what every
  path above runs), a JPEG at least twice that size is decoded at libjpeg's DCT scale 1/2,
  1/4 or 1/8 (:func:`dct_scale`: the largest that still leaves at least the pixels the
  resize needs), so a photo's inverse DCT, colour conversion and resize run on up to 64x
  fewer pixels (benchmarks/RESULTS.md, "Photos decode at a DCT scale");
* PNG, GIF (first frame), BMP, WebP: ``tf.io.decode_image``;
* grey images become RGB by repeating the channel (``channels=3``), colour images become
  grey with the decoder's own conversion (``channels=1``);
* resize (:func:`resample`): a box filter (``tf.image.resize(method="area")``) when the
  image shrinks, bilinear when it grows, antialiased bilinear when one side grows and the
  other shrinks; ``"stretch"`` (the serving signature's resize), aspect-preserving variants
  for ``"crop"`` / ``"pad"``; then rounded (half to even) to uint8, the dtype the in-memory
  cache keeps. :data:`RESIZE_VERSION` names this definition (version 1 was antialiased
  bilinear everywhere, version 2 decoded every JPEG at full size); the in-memory path's
  saved pixels are keyed by it.

Files TensorFlow would decode differently from what the picture shows are decoded with
Pillow instead (:func:`needs_pil` says which, from the header): EXIF orientation other than
1 (TensorFlow ignores it), transparency (RGBA, LA, PA, palette with a transparent colour:
composited on WHITE; TensorFlow would drop the alpha channel and show what lies under it),
CMYK (Adobe's inverted CMYK is common), 16-bit and 1-bit images, palette BMPs (TensorFlow
reads their indices as grey), and any file TensorFlow fails on but Pillow reads. Their
pixels then go through the same :func:`resize_image` (a JPEG among them read by Pillow at
the same DCT scale, with ``draft``). The hygiene scan records
which decoder each file used (``HygieneRecord.decoder``: ``"tf"`` or ``"pil"``).

The SavedModel's ``serving_default`` receives bytes and has only TensorFlow: for the files
above it decodes them as TensorFlow does (EXIF ignored, alpha dropped, TensorFlow's CMYK
conversion), so its pixels may differ from training's. Convert such files to plain RGB
JPEG/PNG before serving, or send ``serving_uint8`` the pixels of :func:`decode_file` at the
model's size (training's own; :func:`read_image`'s full-size pixels resized give training's
only for images smaller than twice the model's size, which decode at full size).
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np

__all__ = [
    "read_bytes",
    "DCT_METHOD",
    "RESIZE_VERSION",
    "decode_bytes",
    "decode_resize",
    "decode_scaled",
    "dct_scale",
    "decode_file",
    "decode_file_bytes",
    "check_bytes",
    "ext_code",
    "header_check",
    "plain_codes",
    "plain_header",
    "plain_of",
    "png_plain",
    "png_to_test",
    "sniff_file",
    "load_path",
    "load_routed",
    "route_codes",
    "needs_pil",
    "read_image",
    "resize_array",
    "resize_float",
    "resize_image",
    "resample",
]

DCT_METHOD = "INTEGER_ACCURATE"
#: The version of :func:`resample`'s definition: pixels saved by an earlier version are decoded again, never mixed.
RESIZE_VERSION = 3
#: libjpeg's DCT scales: ``tf.io.decode_jpeg(ratio=r)`` decodes at 1/r of each side (rounded up).
DCT_RATIOS = (1, 2, 4, 8)

_EXT_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".bmp": "BMP",
               ".gif": "GIF", ".webp": "WEBP"}
_TF_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"}


# === TensorFlow ops (graph-safe) ===


def decode_bytes(contents, channels: int = 3):
    """Encoded image bytes (scalar string tensor) -> uint8 ``(H, W, channels)``, TF ops only."""
    import tensorflow as tf

    image = tf.cond(tf.io.is_jpeg(contents), lambda: _decode_jpeg(contents, channels),
                    lambda: _decode_other(contents, channels))
    image.set_shape([None, None, channels])
    return image


def dct_scale(height: int, width: int, size, mode: str = "stretch") -> int:
    """The DCT scale (1, 2, 4 or 8) :func:`decode_scaled` decodes a ``height`` x ``width``
    JPEG at for :func:`resize_image` to ``size`` with ``mode``: the largest at which the
    decoded image still holds at least the pixels the resize keeps of it, so the resize
    still only shrinks. ``"stretch"`` and ``"crop"``: both sides at least ``r`` times the
    size's; ``"pad"`` (the image shrinks by its larger ratio): either side. Python ints."""
    pick = max if mode == "pad" else min
    q = pick(height // int(size[0]), width // int(size[1]))  # how many times the size fits
    return max(r for r in DCT_RATIOS if q >= r) if q >= 1 else 1


def _scale_index(shape, size, mode: str):
    """In-graph, from a JPEG's ``(height, width, components)``: the index in
    :data:`DCT_RATIOS` of its :func:`dct_scale`, in four ops (inside tf.data each op costs
    about a microsecond a file): both sides' quotients (the components' term made one that
    never decides), each one's scale index, and the smaller (the larger for ``"pad"``)."""
    import tensorflow as tf

    pad = mode == "pad"
    q = (shape * [1, 1, 0 if pad else 8]) // [int(size[0]), int(size[1]), 1]
    index = tf.raw_ops.Bucketize(input=q, boundaries=[float(r) for r in DCT_RATIOS[1:]])
    return tf.reduce_max(index) if pad else tf.reduce_min(index)


def decode_scaled(contents, size, channels: int = 3, mode: str = "stretch"):
    """In-graph: encoded bytes -> uint8 ``(h, w, channels)`` ready for :func:`resize_image`
    to ``size`` with ``mode``: a JPEG at its :func:`dct_scale` (read from its header), any
    other image as :func:`decode_bytes` gives it."""
    import tensorflow as tf

    image = tf.cond(tf.io.is_jpeg(contents), lambda: _decode_jpeg_at(contents, channels, size, mode),
                    lambda: _decode_other(contents, channels))
    image.set_shape([None, None, channels])
    return image


def decode_resize(contents, size, channels: int = 3, mode: str = "stretch"):
    """In-graph: encoded bytes -> uint8 ``(H, W, channels)`` at ``size``, training's pixels:
    :func:`resize_image` of :func:`decode_scaled`."""
    return resize_image(decode_scaled(contents, size, channels, mode), size, mode)


def _decode_jpeg_at(contents, channels: int, size, mode: str, shape=None):
    """A JPEG decoded at its :func:`dct_scale` for ``size`` and ``mode``; ``shape``: its
    ``tf.io.extract_jpeg_shape`` when already read."""
    import tensorflow as tf

    shape = tf.io.extract_jpeg_shape(contents) if shape is None else shape
    index = _scale_index(shape, size, mode)
    return tf.switch_case(index, [
        (lambda r=r: tf.io.decode_jpeg(contents, channels=channels, ratio=r, dct_method=DCT_METHOD))
        for r in DCT_RATIOS])


def check_bytes(contents, channels: int = 3):
    """In-graph: the shape of the image the bytes decode to, decoding every byte as
    :func:`decode_bytes` would but cheaper, for the hygiene scan of a streamed folder (no
    pixels kept). A JPEG is decoded with libjpeg's DCT scaling (``ratio=8``): every
    entropy-coded coefficient is read, so a truncated or corrupt file fails exactly as in a
    full decode, but the inverse DCT and the colour conversion run at 1/64 of the pixels
    (benchmarks/RESULTS.md, "First load in one graph"). Other formats: :func:`decode_bytes`."""
    import tensorflow as tf

    return tf.cond(tf.io.is_jpeg(contents), lambda: _check_jpeg(contents, channels),
                   lambda: tf.shape(_decode_other(contents, channels)))


def _decode_jpeg(contents, channels: int):
    import tensorflow as tf

    return tf.io.decode_jpeg(contents, channels=channels, dct_method=DCT_METHOD)


def _check_jpeg(contents, channels: int):
    import tensorflow as tf

    return tf.shape(tf.io.decode_jpeg(contents, channels=channels, ratio=8, dct_method=DCT_METHOD))


def _decode_other(contents, channels: int):
    import tensorflow as tf

    return tf.io.decode_image(contents, channels=channels, expand_animations=False)


#: :func:`ext_code` values: the format a file's extension names, for :func:`plain_header`.
EXT_OTHER, EXT_JPEG, EXT_PNG = 0, 1, 2
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# PNG chunks that can make Pillow's reading differ from TensorFlow's (transparency) or carry an
# EXIF orientation (eXIf; "Raw profile type exif" in text chunks; XMP in iTXt)
_PNG_CHUNKS_FOR_PIL = (b"tRNS", b"eXIf", b"tEXt", b"zTXt", b"iTXt")


def ext_code(path) -> int:
    """The :func:`plain_header` code of the format ``path``'s extension names."""
    fmt = _EXT_FORMAT.get(os.path.splitext(str(path))[1].lower())
    return EXT_JPEG if fmt == "JPEG" else EXT_PNG if fmt == "PNG" else EXT_OTHER


def plain_header(contents, ext):
    """In-graph, from the bytes: True only when :func:`header_check` of the file is certain to
    give no note and no reason for Pillow, so the hygiene scan needs no Pillow header for it.

    * JPEG named ``.jpg``/``.jpeg``/``.jpe``: 1 or 3 components (not CMYK) and no APP1 marker
      (``FF E1``) anywhere, so no EXIF or XMP orientation (entropy-coded data never holds
      ``FF E1``: its ``FF`` bytes are followed by ``00`` or a restart marker);
    * PNG named ``.png``: 8-bit RGB or grey, or palette, and none of the chunk names tRNS,
      eXIf, tEXt, zTXt, iTXt anywhere in the file.

    False means "ask Pillow" (:func:`sniff_file`), not "bad": a byte pattern found by chance
    costs one header read. ``ext``: :func:`ext_code` of the file's name. The scan's graphs
    reach the same verdict in two steps: :func:`plain_codes` per file (then :func:`plain_of`
    per batch), and :func:`png_plain` for the files :func:`png_to_test` names."""
    import tensorflow as tf

    def other():
        components, pieces = _other_codes(contents, ext)
        return tf.logical_and(png_to_test(components, pieces), png_plain(contents))

    return tf.cond(tf.io.is_jpeg(contents), lambda: plain_of(ext, *_jpeg_codes(contents)), other)


def plain_codes(contents, ext):
    """In-graph: ``(components, pieces)``, two int32 codes a file. JPEG bytes: the frame's
    component count and the number of pieces the bytes split into on ``FF E1`` (1: no APP1
    marker), from which :func:`plain_of` gives :func:`plain_header`'s verdict. Other bytes:
    ``(0, 1)`` for PNG bytes named ``.png`` (:func:`png_to_test`: :func:`png_plain` decides),
    ``(0, 0)`` for anything else (not plain).

    Only the ops that read the bytes run per file and the PNG test is not in the graph: inside
    tf.data every op of a ``tf.cond`` runs per file, taken branch or not (dead, but scheduled),
    so the whole test in one graph cost 28-41 us a JPEG against ~10 us this way
    (benchmarks/RESULTS.md, "The scan's header test: two codes a file")."""
    import tensorflow as tf

    return tf.cond(tf.io.is_jpeg(contents), lambda: _jpeg_codes(contents),
                   lambda: _other_codes(contents, ext))


def plain_of(ext, components, pieces):
    """The JPEG verdict of :func:`plain_header` from :func:`plain_codes` (tensors, or NumPy
    arrays of a batch): a JPEG named as one, with 1 or 3 components and no APP1 marker."""
    return ((components == 1) | (components == 3)) & (ext == EXT_JPEG) & (pieces == 1)


def png_to_test(components, pieces):
    """Which :func:`plain_codes` are PNG bytes named ``.png``: :func:`png_plain` decides them."""
    return (components == 0) & (pieces == 1)


def png_plain(contents):
    """In-graph, for PNG bytes: 8-bit RGB or grey, or palette (the IHDR chunk), and none of the
    chunk names tRNS, eXIf, tEXt, zTXt, iTXt anywhere in the bytes. A file too short for its
    IHDR is not plain."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, 26), b"\0" * 26]), 0, 26)
    a = tf.io.decode_raw(head, tf.uint8)
    depth, colour = a[24], a[25]
    mode = tf.logical_or(tf.logical_and(tf.logical_or(tf.equal(colour, 2), tf.equal(colour, 0)),
                                        tf.equal(depth, 8)),
                         tf.equal(colour, 3))
    ihdr = tf.logical_and(tf.equal(tf.strings.substr(head, 12, 4), b"IHDR"), tf.strings.length(contents) >= 26)
    found = tf.reduce_any(tf.stack([_pieces(contents, c) > 1 for c in _PNG_CHUNKS_FOR_PIL]))
    return tf.logical_and(tf.logical_and(ihdr, mode), tf.logical_not(found))


def decode_plain(contents, ext, channels: int = 3, size=None, mode: str = "stretch", *,
                 header: bool = False):
    """In-graph: ``(plain_codes(contents, ext), decode_bytes(contents, channels))`` (with a
    ``size``: :func:`decode_scaled` for it and ``mode`` instead of :func:`decode_bytes`), the
    same values from ONE branch on the format per file instead of two (a ``tf.cond`` costs
    about 10 microseconds a file inside tf.data; the in-memory hygiene scan's graph). The
    JPEG header is read once, for the codes and the scale. ``header=True``: the first code
    is the JPEG's whole header shape ``(height, width, components)`` (``(0, 0, 0)`` for
    other bytes) instead of its component count, at no extra op (the scan records it, so
    that streamed epochs need not read it again: :func:`route_codes`)."""
    def jpeg(shape):
        if size is None:
            return _decode_jpeg(contents, channels)
        return _decode_jpeg_at(contents, channels, size, mode, shape)

    shape, pieces, image = _with_plain(contents, ext, jpeg, lambda: _decode_other(contents, channels))
    image.set_shape([None, None, channels])
    return (shape if header else shape[2], pieces), image


def check_plain(contents, ext, channels: int = 3, *, header: bool = False):
    """In-graph: ``(plain_codes(contents, ext), check_bytes(contents, channels))`` from ONE
    branch on the format per file (the streamed hygiene scan's graph); ``header`` as in
    :func:`decode_plain`."""
    import tensorflow as tf

    shape, pieces, decoded = _with_plain(contents, ext, lambda _: _check_jpeg(contents, channels),
                                         lambda: tf.shape(_decode_other(contents, channels)))
    return (shape if header else shape[2], pieces), decoded


def _with_plain(contents, ext, jpeg, other):
    """One ``tf.cond`` on the format: ``(header shape, FF E1 pieces, jpeg(header shape))``
    for JPEG bytes, else ``((0, 0, 0), *_other_codes[1:], other())``: :func:`plain_codes`
    with the whole header in place of the component count."""
    import tensorflow as tf

    def is_jpeg():
        shape = tf.io.extract_jpeg_shape(contents)
        return shape, _pieces(contents, b"\xff\xe1"), jpeg(shape)

    def not_jpeg():
        return tf.zeros([3], tf.int32), _other_codes(contents, ext)[1], other()

    return tf.cond(tf.io.is_jpeg(contents), is_jpeg, not_jpeg)


def _jpeg_codes(contents):
    """:func:`plain_codes` of bytes that are a JPEG: component count, pieces on ``FF E1``."""
    import tensorflow as tf

    return tf.io.extract_jpeg_shape(contents)[2], _pieces(contents, b"\xff\xe1")


def _pieces(contents, needle: bytes):
    """In-graph: how many pieces the bytes ``contents`` (a scalar string tensor) split into
    on ``needle`` (int32; 1: ``needle`` is nowhere in them). One byte-wise substring search
    (``tf.strings.split``); a search of the bytes as a uint8 tensor took ~3x the CPU."""
    import tensorflow as tf

    return tf.size(tf.strings.split(tf.reshape(contents, [1]), sep=needle).values)


def _other_codes(contents, ext):
    """:func:`plain_codes` of bytes that are not a JPEG: ``(0, 1)`` for PNG bytes named
    ``.png``, else ``(0, 0)``."""
    import tensorflow as tf

    png = tf.logical_and(tf.equal(ext, EXT_PNG), tf.equal(tf.strings.substr(contents, 0, 8), _PNG_MAGIC))
    return tf.constant(0), tf.cast(png, tf.int32)


def resample(image, size):
    """``image`` ``(h, w, C)`` or a batch, float32, to ``size`` (ints or a tensor): a box filter
    (``tf.image.resize(method="area")``: each output pixel averages the input area it covers,
    so shrinking does not alias) when neither side grows, bilinear when neither side shrinks,
    and bilinear with an antialiasing kernel when one side grows and the other shrinks.

    Antialiased bilinear (TensorFlow's ``ScaleAndTranslate``) costs ~0.28 ms per 96 px image
    on this machine's CPU, more than decoding the JPEG; the box filter costs a tenth of that,
    and a streamed epoch runs ~1.6x as fast (benchmarks/RESULTS.md, "Resize v2")."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    ih, iw = shape[-3], shape[-2]
    oh, ow = size[0], size[1]

    def area():
        return tf.image.resize(image, size, method="area")

    def bilinear():
        return tf.image.resize(image, size, method="bilinear")

    def mixed():
        return tf.image.resize(image, size, method="bilinear", antialias=True)

    shrink = tf.logical_and(ih >= oh, iw >= ow)
    grow = tf.logical_and(ih <= oh, iw <= ow)
    return tf.cond(shrink, area, lambda: tf.cond(grow, bilinear, mixed))


def resize_float(image, size, mode: str = "stretch"):
    """Resize one image ``(h, w, C)`` or a batch to ``size`` with ``mode`` (each through
    :func:`resample`); float32 result."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    size = [int(size[0]), int(size[1])]
    shape = tf.shape(image)
    ih = tf.cast(shape[-3], tf.float32)
    iw = tf.cast(shape[-2], tf.float32)
    if mode == "stretch":
        return resample(image, size)
    if mode == "pad":  # the whole image fits, centred on black (tf.image.resize_with_pad's geometry)
        ratio = tf.maximum(iw / size[1], ih / size[0])
        fh, fw = ih / ratio, iw / ratio
        nh = tf.maximum(tf.cast(tf.math.floor(fh), tf.int32), 1)
        nw = tf.maximum(tf.cast(tf.math.floor(fw), tf.int32), 1)
        top = tf.maximum(0, tf.cast(tf.math.floor((size[0] - fh) / 2), tf.int32))
        left = tf.maximum(0, tf.cast(tf.math.floor((size[1] - fw) / 2), tf.int32))
        return tf.image.pad_to_bounding_box(resample(image, tf.stack([nh, nw])), top, left, size[0], size[1])
    # crop: aspect-preserving resize so the shorter side fits, then centre crop
    scale = tf.maximum(size[0] / ih, size[1] / iw)
    nh = tf.maximum(tf.cast(tf.math.ceil(ih * scale), tf.int32), size[0])
    nw = tf.maximum(tf.cast(tf.math.ceil(iw * scale), tf.int32), size[1])
    image = resample(image, tf.stack([nh, nw]))
    return tf.image.resize_with_crop_or_pad(image, size[0], size[1])


def resize_image(image, size, mode: str = "stretch"):
    """uint8 pixels -> uint8 at ``size``: :func:`resize_float`, rounded half to even."""
    import tensorflow as tf

    out = resize_float(image, size, mode)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


@lru_cache(maxsize=32)
def _tf_decode_resize(size: tuple[int, int], channels: int, mode: str):
    """A traced ``bytes -> uint8 (H, W, C)`` function (one trace per size/channels/mode)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def fn(contents):
        return decode_resize(contents, size, channels, mode)

    return fn


@lru_cache(maxsize=32)
def _tf_resize_fn(size: tuple[int, int], mode: str, channels: int):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, channels], tf.uint8)])
    def fn(image):
        return resize_image(image, size, mode)

    return fn


def resize_array(image: np.ndarray, size, mode: str = "stretch") -> np.ndarray:
    """NumPy uint8 ``(h, w, C)`` -> uint8 ``(H, W, C)`` through :func:`resize_image`."""
    size = (int(size[0]), int(size[1]))
    return _tf_resize_fn(size, mode, int(image.shape[-1]))(np.ascontiguousarray(image)).numpy()


# === Which decoder ===


def needs_pil(im) -> str:
    """Why the open PIL image ``im`` (header read) must be decoded with Pillow; "" if not."""
    fmt, mode = im.format, im.mode
    if fmt not in _TF_FORMATS:
        return f"{fmt} is not a format TensorFlow decodes"
    orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
    if orientation not in (None, 1):
        return "EXIF orientation"
    if mode in ("RGB", "L"):
        if fmt == "PNG" and "transparency" in im.info:
            return "transparent colour"
        return ""
    if mode == "P" and fmt in ("PNG", "GIF") and "transparency" not in im.info:
        return ""
    return f"mode {mode}"


# === Pillow fallback ===


def _to_mode(im, channels: int):
    """PIL image of any mode -> "RGB" (or "L"), with the conversions applied as notes."""
    from PIL import Image

    notes = []
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba).convert("RGB")
        notes.append(f"{mode}->RGB (alpha composited on white)")
    elif mode.startswith("I") or mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16") or (a.size and a.max() > 255):
            a = a / 257.0
        im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
        notes.append(f"{mode}->8-bit")
    elif mode not in ("RGB", "L"):
        im = im.convert("RGB")
        notes.append(f"{mode}->RGB")
    target = "L" if channels == 1 else "RGB"
    if im.mode != target:
        if not notes:
            notes.append(f"{im.mode}->{target}")
        im = im.convert(target)
    return im, notes


def _pil_pixels(im, channels: int, size=None, mode: str = "stretch") -> tuple[np.ndarray, list[str]]:
    """Full decode with Pillow (EXIF orientation, mode conversions) -> uint8 (h, w, C); a
    JPEG decoded for ``size`` at its :func:`dct_scale` (of the picture as shown, EXIF
    rotation applied), through Pillow's ``draft``."""
    from PIL import ImageOps

    orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
    if size is not None and im.format in ("JPEG", "MPO"):
        w, h = im.size
        shown = (w, h) if orientation in (5, 6, 7, 8) else (h, w)  # (height, width) once rotated
        r = dct_scale(shown[0], shown[1], size, mode)
        if r > 1:  # draft picks the largest scale at which (w, h) still holds the size asked
            im.draft(im.mode, (max(1, w // r), max(1, h // r)))
    im.load()  # full decode: truncated/corrupt files raise here
    notes = []
    if orientation not in (None, 1):
        im = ImageOps.exif_transpose(im)
        notes.append(f"EXIF orientation {orientation} applied")
    im, conv = _to_mode(im, channels)
    arr = np.asarray(im, dtype=np.uint8)
    return (arr[..., None] if arr.ndim == 2 else arr), notes + conv


# === Files ===


def _decode(data: bytes, name: str, channels: int, size=None,
            mode: str = "stretch") -> tuple[np.ndarray, list[str], str]:
    """Decode encoded bytes (of the file ``name``) -> ``(uint8 pixels, notes, decoder)``;
    resized when ``size`` is given."""
    import tensorflow as tf

    with _open(io.BytesIO(data), name) as im:  # header: format, mode, EXIF
        notes, why = header_check(im, name)
        if not why:
            try:
                if size is not None:
                    fn = _tf_decode_resize((int(size[0]), int(size[1])), channels, mode)
                    return fn(tf.constant(data)).numpy(), notes, "tf"
                return decode_bytes(tf.constant(data), channels).numpy(), notes, "tf"
            except tf.errors.OpError as e:  # TensorFlow refuses it; Pillow decides below
                why = f"TensorFlow could not decode it ({_first_line(e)})"
        arr, conv = _pil_pixels(im, channels, size, mode)
    notes += conv
    notes.append(f"decoded with PIL ({why})")
    if size is not None:
        arr = resize_array(arr, size, mode)
    return arr, notes, "pil"


def header_check(im, name) -> tuple[list[str], str]:
    """``(notes, why)`` from the header of the open PIL image ``im`` of the file ``name``: a
    note when the extension names another format than the content, and why Pillow must
    decode it (:func:`needs_pil`; "" when TensorFlow's ops decode it as the picture shows)."""
    notes = []
    ext = os.path.splitext(str(name))[1].lower()
    if _EXT_FORMAT.get(ext) != im.format and not (im.format == "MPO" and _EXT_FORMAT.get(ext) == "JPEG"):
        notes.append(f"extension {ext or '(none)'} but content {im.format}: read by content")
    return notes, needs_pil(im)


def sniff_file(path) -> tuple[list[str], str]:
    """:func:`header_check` of a file, reading its header only (the whole file for a URI).
    Raises as :func:`decode_file` does on a file that is not an image."""
    p = os.fspath(path)
    with _open(io.BytesIO(read_bytes(p)) if "://" in p else p, p) as im:
        return header_check(im, p)


def _open(source, name):
    """``PIL.Image.open(source)`` (header only); a file Pillow does not recognise raises
    naming ``name``'s base name (Pillow would name an in-memory buffer by its address)."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(source)
    except UnidentifiedImageError:
        raise UnidentifiedImageError(f"cannot identify image file {os.path.basename(str(name))!r}") from None


def decode_file(path, size, channels: int = 3, resize: str = "stretch") -> tuple[np.ndarray, str, str]:
    """Decode and resize one file the way training does -> ``(uint8 (H, W, C), notes, decoder)``.

    ``decoder`` is ``"tf"`` or ``"pil"`` (see the module docstring); ``notes`` lists the
    conversions applied. Raises on corrupt, truncated or non-image files.
    """
    arr, notes, decoder = _decode(read_bytes(path), str(path), channels, size, resize)
    return arr, "; ".join(notes), decoder


def decode_file_bytes(data: bytes, size, channels: int = 3, resize: str = "stretch", *,
                      name: str = "") -> tuple[np.ndarray, str, str]:
    """:func:`decode_file` on bytes already read (``name``: the file's name, for notes)."""
    arr, notes, decoder = _decode(data, name, channels, size, resize)
    return arr, "; ".join(notes), decoder


def read_image(path, channels: int = 3) -> np.ndarray:
    """Decode one file at its own size -> uint8 ``(h, w, channels)`` (training's decoder).

    Resize it with :func:`resize_array` to get training's pixels at a given size.
    """
    return _decode(read_bytes(path), str(path), channels)[0]


def read_bytes(path) -> bytes:
    """The bytes of an image file, local or on any filesystem TensorFlow reads (``gs://``...)."""
    import tensorflow as tf

    p = os.fspath(path)
    if "://" in p:  # any filesystem TensorFlow reads
        with tf.io.gfile.GFile(p, "rb") as f:
            return f.read()
    with open(p, "rb") as f:
        return f.read()


def _first_line(error) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__


def load_path(path, size, channels: int = 3, mode: str = "stretch"):
    """In-graph: file path (string tensor) -> uint8 ``(H, W, C)``, for files whose decoder is
    ``"tf"`` (the streaming pipeline; any filesystem ``tf.io.read_file`` reads)."""
    import tensorflow as tf

    return decode_resize(tf.io.read_file(path), size, channels, mode)


#: :func:`route_codes` values: 0-3 a JPEG decoded at ``DCT_RATIOS[code]``; then:
ROUTE_OTHER = 4  # bytes that are not a JPEG (``tf.io.decode_image``)
ROUTE_HEADER = 5  # not known: the bytes say (:func:`decode_scaled`, the header read per file)


def route_codes(header, size, mode: str = "stretch") -> np.ndarray:
    """NumPy, per file: how :func:`load_routed` decodes it for ``size`` and ``mode``, from
    the header the hygiene scan recorded (``header``: ``(N, 2)`` height and width; ``(0, 0)``
    bytes that are not a JPEG; negative: not known). The same pick as :func:`dct_scale`
    (and, in-graph, :func:`decode_scaled`), made once per file instead of once per epoch."""
    hw = np.asarray(header, np.int64).reshape(-1, 2)
    codes = np.full(len(hw), ROUTE_HEADER, np.int32)
    jpeg = (hw > 0).all(axis=1)
    q = hw[jpeg] // np.asarray([int(size[0]), int(size[1])], np.int64)
    q = q.max(axis=1) if mode == "pad" else q.min(axis=1)
    codes[jpeg] = np.searchsorted(np.asarray(DCT_RATIOS[1:]), q, side="right")
    codes[(hw == 0).all(axis=1)] = ROUTE_OTHER
    return codes


def load_routed(path, branch, routes, size, channels: int = 3, mode: str = "stretch"):
    """In-graph: :func:`load_path`'s pixels, decoded the way :func:`route_codes` said:
    ``routes`` (Python ints, sorted) are the codes that occur, ``branch`` (int32 tensor) the
    file's position among them. A streamed epoch then neither reads a JPEG's header nor
    picks its scale nor branches on its format per file (one ``tf.switch_case``, no switch
    at all when one code covers every file). The pixels are :func:`load_path`'s as long as
    the file is the one the scan saw; a file that changed since stays an image (it decodes
    at the old scale) or fails like a broken one (a JPEG replaced by another format)."""
    import tensorflow as tf

    contents = tf.io.read_file(path)

    def at(code: int):
        if code < ROUTE_OTHER:
            return lambda: tf.io.decode_jpeg(contents, channels=channels, ratio=DCT_RATIOS[code],
                                             dct_method=DCT_METHOD)
        if code == ROUTE_OTHER:
            return lambda: _decode_other(contents, channels)
        return lambda: decode_scaled(contents, size, channels, mode)

    fns = [at(int(code)) for code in routes]
    image = fns[0]() if len(fns) == 1 else tf.switch_case(branch, fns)
    image.set_shape([None, None, channels])
    return resize_image(image, size, mode)
