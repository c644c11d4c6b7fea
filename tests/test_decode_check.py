"""The hygiene scan's in-graph checks (tl_kit.decode): ``plain_header`` says from the bytes
which files need no Pillow header, ``check_bytes`` fails exactly where a full decode fails."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, PngImagePlugin

from tl_kit import decode as dec


def _rgb(h=24, w=20, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 9 % 256, yy * 7 % 256, (xx + yy) * 5 % 256], -1).astype(np.float32)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _files(root):
    """Every header case: name -> True when the scan may skip Pillow's header for it."""
    arr = _rgb()
    im = Image.fromarray(arr)
    exif1, exif6 = Image.Exif(), Image.Exif()
    exif1[0x0112], exif6[0x0112] = 1, 6
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "hello")
    cases = {
        "rgb.jpg": (lambda p: im.save(p, quality=90), True),
        "progressive.jpeg": (lambda p: im.save(p, quality=90, progressive=True), True),
        "UPPER.JPG": (lambda p: im.save(p, format="JPEG"), True),
        "grey.jpg": (lambda p: im.convert("L").save(p), True),
        "rgb.png": (lambda p: im.save(p), True),
        "grey.png": (lambda p: im.convert("L").save(p), True),
        "palette.png": (lambda p: im.convert("P").save(p), True),
        # EXIF (any orientation, even 1) or XMP: APP1, so Pillow's header is read
        "exif1.jpg": (lambda p: im.save(p, exif=exif1), False),
        "exif6.jpg": (lambda p: im.save(p, exif=exif6), False),
        "xmp.jpg": (lambda p: im.save(p, xmp=b"<x:xmpmeta><tiff:Orientation>6</tiff:Orientation></x:xmpmeta>"),
                    False),
        "cmyk.jpg": (lambda p: im.convert("CMYK").save(p), False),
        "rgba.png": (lambda p: im.convert("RGBA").save(p), False),
        "palette_transparent.png": (lambda p: im.convert("P").save(p, transparency=0), False),
        "grey_transparent.png": (lambda p: im.convert("L").save(p, transparency=7), False),
        "grey16.png": (lambda p: Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(p), False),
        "text.png": (lambda p: im.save(p, pnginfo=text), False),
        "exif.png": (lambda p: im.save(p, exif=exif6), False),
        "png_named.jpg": (lambda p: im.save(p, format="PNG"), False),
        "jpeg_named.png": (lambda p: im.save(p, format="JPEG"), False),
        "pic.gif": (lambda p: im.convert("P").save(p), False),
        "pic.bmp": (lambda p: im.save(p), False),
        "pic.webp": (lambda p: im.save(p), False),
    }
    out = {}
    for name, (save, plain) in cases.items():
        save(root / name)
        out[root / name] = plain
    return out


def _plain(path) -> bool:
    import tensorflow as tf

    return bool(dec.plain_header(tf.io.read_file(str(path)), dec.ext_code(path)).numpy())


def test_plain_header_skips_pillow_only_where_its_header_would_say_nothing(tmp_path):
    cases = _files(tmp_path)
    got = {p.name: _plain(p) for p in cases}
    assert got == {p.name: plain for p, plain in cases.items()}
    for p, plain in got.items():
        if plain:  # the promise: Pillow's header would give no note and no reason
            assert dec.sniff_file(tmp_path / p) == ([], ""), p
    # and the conservative cases are real: Pillow's header does send these to Pillow
    for name in ("exif6.jpg", "xmp.jpg", "cmyk.jpg", "rgba.png", "palette_transparent.png",
                 "grey_transparent.png", "grey16.png", "exif.png"):
        assert dec.sniff_file(tmp_path / name)[1], name


def test_the_one_branch_scans_give_plain_header_and_the_decoders_values(tmp_path):
    """The scan graphs' fused ops (one branch on the format per file) give exactly
    plain_header's verdict with decode_bytes's pixels (in memory) or check_bytes's shape
    (streamed), for every header case: JPEG, PNG, GIF, BMP, misnamed files."""
    import tensorflow as tf

    cases = _files(tmp_path)
    assert any(not p.suffix == ".jpg" for p in cases)
    decoded, batch = 0, []
    for p in cases:
        contents, ext = tf.io.read_file(str(p)), dec.ext_code(p)
        if _fails(lambda c=contents: dec.decode_bytes(c, 3).numpy()):  # WebP: Pillow's
            assert _fails(lambda c=contents, e=ext: dec.decode_plain(c, e, 3)[1].numpy()), p.name
            assert _fails(lambda c=contents, e=ext: dec.check_plain(c, e, 3)[1].numpy()), p.name
            continue
        codes, image = dec.decode_plain(contents, ext, 3)
        codes = tuple(int(c.numpy()) for c in codes)
        assert codes == tuple(int(c.numpy()) for c in dec.plain_codes(contents, ext)), p.name
        assert _two_step(contents, ext, codes) == _plain(p) == cases[p], p.name
        np.testing.assert_array_equal(image.numpy(), dec.decode_bytes(contents, 3).numpy(), err_msg=p.name)
        check_codes, shape = dec.check_plain(contents, ext, 3)
        assert tuple(int(c.numpy()) for c in check_codes) == codes, p.name
        assert list(shape.numpy()) == list(dec.check_bytes(contents, 3).numpy()), p.name
        batch.append((ext, *codes, cases[p]))
        decoded += 1
    assert decoded >= len(cases) - 1
    # the scan's way: plain_of / png_to_test over a batch's NumPy codes
    ext, components, pieces, want = (np.asarray(col) for col in zip(*batch, strict=True))
    jpeg, png = dec.plain_of(ext, components, pieces), dec.png_to_test(components, pieces)
    assert not (jpeg & png).any()
    np.testing.assert_array_equal(jpeg, want & (components > 0))
    assert set(np.flatnonzero(want & (components == 0))) <= set(np.flatnonzero(png))
    assert jpeg.any() and png.any() and not want.all()


def _two_step(contents, ext, codes) -> bool:
    """The scan's verdict: plain_of from the codes, png_plain for the files png_to_test names."""
    if dec.png_to_test(*codes):
        return bool(dec.png_plain(contents).numpy())
    return bool(dec.plain_of(ext, *codes))


def test_plain_header_of_a_file_too_short_for_its_header_says_not_plain():
    import tensorflow as tf

    short = tf.constant(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert not bool(dec.plain_header(short, dec.EXT_PNG).numpy())
    assert not bool(dec.png_plain(short).numpy())
    # the header test needs 26 bytes (through IHDR's colour type): 25 are not plain
    cut = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x03"
    assert len(cut) == 26 and bool(dec.png_plain(tf.constant(cut)).numpy())
    assert not bool(dec.png_plain(tf.constant(cut[:25])).numpy())
    assert not bool(dec.plain_header(tf.constant(b"hello"), dec.EXT_JPEG).numpy())


def _jpeg(seed: int, progressive: bool) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(40 + seed % 50, 30 + seed % 70, seed)).save(buf, "JPEG", quality=90,
                                                                      progressive=progressive)
    return buf.getvalue()


def _fails(fn) -> bool:
    import tensorflow as tf

    try:
        fn()
    except tf.errors.OpError:
        return True
    return False


def test_check_bytes_fails_exactly_where_a_full_decode_fails():
    """The streamed scan's JPEG check (DCT-scaled decode) reads every coefficient: truncated,
    overwritten and zeroed files fail or pass as training's full decode does."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    verdicts = []
    for trial in range(90):
        data = bytearray(_jpeg(trial, bool(trial % 2)))
        kind = trial % 3
        if kind == 0:
            data = data[:int(rng.integers(10, len(data)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 20))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        else:
            j = int(rng.integers(0, len(data)))
            data[j:j + 120] = bytes(len(data[j:j + 120]))
        t = tf.constant(bytes(data))
        full = _fails(lambda t=t: dec.decode_bytes(t, 3).numpy())
        check = _fails(lambda t=t: dec.check_bytes(t, 3).numpy())
        fused = _fails(lambda t=t: dec.check_plain(t, dec.EXT_JPEG, 3)[1].numpy())
        decoded = _fails(lambda t=t: dec.decode_plain(t, dec.EXT_JPEG, 3)[1].numpy())
        assert full == check == fused == decoded, (trial, kind)
        verdicts.append(full)
    assert 10 < sum(verdicts) < 80  # both outcomes are exercised
    png = io.BytesIO()
    Image.fromarray(_rgb()).save(png, "PNG")
    assert dec.check_bytes(tf.constant(png.getvalue()), 3).numpy().tolist() == [24, 20, 3]
    assert _fails(lambda: dec.check_bytes(tf.constant(png.getvalue()[:60]), 3).numpy())


def test_the_in_graph_byte_search_finds_a_needle_exactly_where_python_does():
    """plain_header's byte search (one substring search per needle, for FF E1 and the PNG
    chunk names) agrees with Python's ``in`` on random bytes: needles at the start, at the
    end, overlapping a near miss (FF FF E1), split over a NUL, and absent."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    needles = (b"\xff\xe1", *dec._PNG_CHUNKS_FOR_PIL)
    alphabet = np.frombuffer(b"\xff\xe1\x00" + b"".join(needles), np.uint8)
    cases = [b"", b"\xff", b"\xe1\xff", b"\xff\xe1", b"\xff\xff\xe1", b"\x00\xff\xe1\x00", b"tRN", b"xtRNS"]
    cases += [rng.choice(alphabet, int(rng.integers(0, 40))).tobytes() for _ in range(300)]
    for needle in needles:
        half = len(needle) // 2
        mine = [*cases, needle, b"\x00" + needle, needle + b"\x00", needle[:half] + b"\x00" + needle[half:],
                rng.choice(alphabet, 30).tobytes() + needle + rng.choice(alphabet, 30).tobytes()]
        got = [int(dec._pieces(tf.constant(c), needle).numpy()) > 1 for c in mine]
        assert got == [needle in c for c in mine], needle
        assert any(got) and not all(got), needle
