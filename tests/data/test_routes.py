"""A streamed epoch decodes each file by the header the hygiene scan read
(tl_kit.decode.route_codes / load_routed): the scan records it, the index keeps it, the
stream uses it, and the pixels stay load_path's."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tl_kit import decode
from tl_kit.data import load_data

SIZE = 32


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(np.sin(x / 9.0) + 1) * 110, (np.cos(y / 7.0) + 1) * 110, (x * 255.0 / w)], -1)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _save(path, img, fmt="JPEG", **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, fmt, **kw)


@pytest.fixture
def folder(tmp_path):
    """Per class: a photo 8x the load size (decodes at 1/8), one 2x (1/2), one under 2x (full),
    a PNG, and (class b) an EXIF-rotated JPEG that Pillow decodes."""
    root = tmp_path / "data"
    for k, c in enumerate("ab"):
        _save(root / c / "big.jpg", _photo(8 * SIZE + 5, 9 * SIZE, k), quality=92)
        _save(root / c / "half.jpg", _photo(2 * SIZE, 3 * SIZE, k + 2), quality=92)
        _save(root / c / "small.jpg", _photo(SIZE + 7, SIZE + 3, k + 4), quality=92)
        _save(root / c / "flat.png", _photo(40, 50, k + 6), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(root / "b" / "turned.jpg", _photo(3 * SIZE, 5 * SIZE, 9), quality=92, exif=exif.tobytes())
    return root


@pytest.fixture(autouse=True)
def _streaming(monkeypatch):
    import tl_kit.data as D

    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)  # every load below streams


def _streamed(data, split="train") -> dict[str, np.ndarray]:
    """Each file's pixels as the streamed dataset gives them (in listing order: no shuffle)."""
    ds = data.dataset(split, batch_size=64, deterministic=True)
    x = np.concatenate([b.numpy() for b, _ in ds])
    return dict(zip(data.paths(split), x, strict=True))


def _load(root, index):
    data = load_data(str(root), image_size=SIZE, validation_split=0.0, hygiene_index=index)
    assert data.info.pipeline.startswith("stream:")
    return data


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_route_codes_pick_dct_scale_for_every_header(mode):
    sides = [1, 31, 32, 63, 64, 127, 128, 255, 256, 257, 4001]
    hw = np.asarray(list(itertools.product(sides, sides)))
    codes = decode.route_codes(hw, (32, 48), mode)
    want = [decode.DCT_RATIOS.index(decode.dct_scale(h, w, (32, 48), mode)) for h, w in hw]
    assert codes.tolist() == want
    assert decode.route_codes([[0, 0], [-1, -1], [-1, 7]], (32, 32), mode).tolist() == [
        decode.ROUTE_OTHER, decode.ROUTE_HEADER, decode.ROUTE_HEADER]


def test_the_scan_records_each_files_header_and_the_index_keeps_it(folder, tmp_path):
    index = tmp_path / "index.json"
    first = _load(folder, index)
    sp = first.examples("train")
    got = {p.split("/data/")[1]: tuple(hw) for p, hw in zip(sp.paths, sp.header.tolist(), strict=True)}
    assert got["a/big.jpg"] == (8 * SIZE + 5, 9 * SIZE) and got["b/half.jpg"] == (2 * SIZE, 3 * SIZE)
    assert got["a/small.jpg"] == (SIZE + 7, SIZE + 3)
    assert got["a/flat.png"] == (0, 0)  # not a JPEG: decode_image, no header needed
    assert got["b/turned.jpg"] == (-1, -1)  # decoded by Pillow: no route
    entries = json.loads(index.read_text())["files"]
    assert entries["a/big.jpg"][5:] == [8 * SIZE + 5, 9 * SIZE] and entries["a/flat.png"][5:] == [0, 0]
    again = _load(folder, index)  # nothing decoded: the headers come from the index
    assert again.examples("train").header.tolist() == sp.header.tolist()
    assert [(r.path, r.height, r.width) for r in again.hygiene] == [
        (r.path, r.height, r.width) for r in first.hygiene]


def test_streamed_pixels_are_load_paths_for_every_route(folder, tmp_path):
    data = _load(folder, tmp_path / "index.json")
    sp = data.examples("train")
    codes = decode.route_codes(sp.header, (SIZE, SIZE), "stretch")
    assert {0, 1, 3, decode.ROUTE_OTHER} <= set(codes[~sp.pil].tolist())  # full, 1/2, 1/8, PNG
    streamed = _streamed(data)
    for path, image in streamed.items():
        want = decode.decode_file(path, (SIZE, SIZE), 3, "stretch")[0]
        np.testing.assert_array_equal(image, want, err_msg=path)


def test_the_stream_decodes_by_the_recorded_header(folder, tmp_path):
    """An index entry that says the 8x photo is small makes the stream decode it at full size:
    the route comes from the recorded header, not from the bytes."""
    index = tmp_path / "index.json"
    _load(folder, index)
    payload = json.loads(index.read_text())
    payload["files"]["a/big.jpg"][5:] = [SIZE, SIZE]  # a lie: fits once, so route 0 (full decode)
    index.write_text(json.dumps(payload))
    data = _load(folder, index)
    big = next(p for p in data.examples("train").paths if p.endswith("a/big.jpg"))
    image = _streamed(data)[big]
    raw = open(big, "rb").read()
    full = decode.resize_image(tf.io.decode_jpeg(raw, channels=3, dct_method=decode.DCT_METHOD),
                               (SIZE, SIZE), "stretch").numpy()
    np.testing.assert_array_equal(image, full)
    assert not np.array_equal(image, decode.decode_file(big, (SIZE, SIZE), 3, "stretch")[0])


def test_an_index_without_headers_streams_by_reading_them(folder, tmp_path):
    """Verdicts from an index written before headers were recorded: the stream reads each
    header per file (decode_scaled), and the pixels are the same."""
    index = tmp_path / "index.json"
    _load(folder, index)
    payload = json.loads(index.read_text())
    payload["files"] = {k: v[:5] for k, v in payload["files"].items()}
    index.write_text(json.dumps(payload))
    data = _load(folder, index)
    sp = data.examples("train")
    assert (sp.header[~sp.pil] == -1).all()
    assert set(decode.route_codes(sp.header, (SIZE, SIZE), "stretch").tolist()) == {decode.ROUTE_HEADER}
    for path, image in _streamed(data).items():
        np.testing.assert_array_equal(image, decode.decode_file(path, (SIZE, SIZE), 3, "stretch")[0])


def test_load_routed_with_one_route_and_with_several():
    big = io.BytesIO()
    Image.fromarray(_photo(4 * SIZE, 4 * SIZE)).save(big, "JPEG", quality=90)
    png = io.BytesIO()
    Image.fromarray(_photo(20, 30)).save(png, "PNG")
    paths = []
    for name, buf in (("big.jpg", big), ("p.png", png)):
        path = f"ram://routes/{name}"
        tf.io.gfile.makedirs("ram://routes")
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buf.getvalue())
        paths.append(path)
    want = [decode.load_path(p, (SIZE, SIZE)).numpy() for p in paths]
    codes = decode.route_codes([[4 * SIZE, 4 * SIZE], [0, 0]], (SIZE, SIZE))
    assert codes.tolist() == [2, decode.ROUTE_OTHER]
    routes = sorted(set(codes.tolist()))
    for k, (p, w) in enumerate(zip(paths, want, strict=True)):
        got = decode.load_routed(tf.constant(p), tf.constant(k, tf.int32), routes, (SIZE, SIZE)).numpy()
        np.testing.assert_array_equal(got, w)
        alone = decode.load_routed(tf.constant(p), tf.constant(0, tf.int32), [int(codes[k])], (SIZE, SIZE))
        np.testing.assert_array_equal(alone.numpy(), w)
        unknown = decode.load_routed(tf.constant(p), tf.constant(0, tf.int32), [decode.ROUTE_HEADER], (SIZE, SIZE))
        np.testing.assert_array_equal(unknown.numpy(), w)
