"""The hygiene scan of a folder: every file decoded once, bad ones skipped and reported.

Every file is read and decoded once, by one parallel tf.data graph with the ops of
:mod:`tl_kit.decode` (the decoder training, ``evaluate``, ``predict`` and the SavedModel's
``serving_default`` share); the graph also says, from the bytes, which files are plain
JPEGs and PNGs, and only the others get their Pillow header read. A file that fails to
decode fully (corrupt, truncated, not an image) is skipped and listed, so training never
meets it mid-epoch; one read with Pillow or converted is recorded as such. The verdicts are
:class:`HygieneRecord` rows; :func:`hygiene_table` formats them and :func:`write_hygiene`
saves them as ``hygiene.csv`` and ``hygiene.json``.

With a hygiene index (:mod:`tl_kit.data.hygiene_index`), a file whose size and mtime did not
change keeps its verdict without being decoded again, and the in-memory path's pixels are
mapped from beside the index when nothing in the listing changed."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tl_kit import decode as _dec
from tl_kit._io import write_json_atomic
from tl_kit.data.decoding import graph_calls, worker_count
from tl_kit.data.shared_scan import current_share
from tl_kit.data.uri import stat_all

__all__ = ["HygieneRecord", "check_file", "hygiene_table", "listing_digest", "open_index", "scan",
           "write_hygiene"]


@dataclass
class HygieneRecord:
    """One row of the hygiene report."""

    path: str
    label: str
    status: str  # "ok" | "skipped"
    reason: str = ""  # why skipped, or the conversions applied ("CMYK->RGB; exif rotate")
    decoder: str = ""  # "tf" | "pil" (tl_kit.decode) for files read, "" for skipped ones
    # the header TensorFlow decodes it by: a JPEG's height and width, 0 and 0 for other bytes,
    # -1 when not known (Pillow files, skipped ones, verdicts of an index written without it);
    # a streamed epoch decodes by it (tl_kit.decode.route_codes), not in hygiene.csv
    height: int = -1
    width: int = -1


def hygiene_table(records: list[HygieneRecord], *, only_problems: bool = True) -> str:
    """Format a hygiene report as a plain-text table (skipped and converted files)."""
    rows = [r for r in records if not only_problems or r.status != "ok" or r.reason]
    n_skip = sum(r.status == "skipped" for r in records)
    n_conv = sum(r.status == "ok" and bool(r.reason) for r in records)
    head = f"hygiene: {len(records)} files, {n_skip} skipped, {n_conv} converted"
    if not rows:
        return head
    w = min(max(len(r.path) for r in rows), 70)
    lines = [head, f"{'status':<8} {'file':<{w}} reason"]
    for r in rows:
        p = r.path if len(r.path) <= w else "..." + r.path[-(w - 3):]
        lines.append(f"{r.status:<8} {p:<{w}} {r.reason}")
    return "\n".join(lines)


def _reason(e: Exception) -> str:
    """The hygiene reason of a file that failed to decode."""
    reason = str(e) or type(e).__name__
    if "cannot identify image file" in reason:
        return "not an image (content not recognised)"
    if "truncated" in reason.lower():
        return f"truncated: {reason}"
    return f"corrupt: {type(e).__name__}: {reason}"


def check_file(path: str, label: str, size, channels, resize, out=None, i: int = 0) -> HygieneRecord:
    """Decode one file: its hygiene record; its pixels go to ``out[i]`` when ``out`` is given."""
    try:
        arr, notes, decoder = _dec.decode_file(path, size, channels, resize)
    except Exception as e:
        return HygieneRecord(path, label, "skipped", _reason(e))
    if out is not None:
        out[i] = arr
    return HygieneRecord(path, label, "ok", notes, decoder)


def scan(files: list[tuple[str, int]], classes: list[str], size, channels, resize, keep: bool,
         workers=None, index=None) -> tuple[list[HygieneRecord], np.ndarray | None]:
    """Verdicts of every ``(path, label)`` file, and (``keep``) its pixels in ONE
    preallocated uint8 array ``(N, H, W, C)`` filled in place (no per-file arrays held twice;
    rows of skipped files stay zero). With a :class:`~tl_kit.data.hygiene_index.HygieneIndex`,
    that array is a memory-mapped file beside the index
    (:meth:`~tl_kit.data.hygiene_index.HygieneIndex.pixel_target`), and an unchanged file keeps
    its verdict from a stat alone (unless its pixels are needed); only the rest are decoded,
    in parallel threads. Inside :func:`tl_kit.data.shared_scan.shared_scan`, a streamed scan
    checks only this worker's share of the files."""
    shape = (len(files), size[0], size[1], channels)
    records, stats, todo, known_all = _known_verdicts(files, classes, keep, index)
    key = digest = out = None
    if keep and index is not None:  # the in-memory path: pixels saved by the last load?
        key, digest = f"{size[0]}x{size[1]}-{resize}-r{_dec.RESIZE_VERSION}", listing_digest(files, stats)
        saved = index.load_pixels(key, digest, shape) if known_all else None
        if saved is not None:
            return records, saved
        if all(st is not None for st in stats):  # decode straight into the file kept
            out = index.pixel_target(key, shape)
    if keep and out is None:
        out = np.zeros(shape, np.uint8)
    how = (size, channels, resize)
    share = current_share()
    try:
        if share is not None and share.agree(files, keep):
            _check_shared(share, todo, files, classes, how, records, stats, index, workers)
        else:
            _check_all(todo, files, classes, how, out, records, stats, index, workers)
            if share is not None:
                share.checked, share.files = share.checked + len(todo), share.files + len(files)
    except BaseException:
        if key is not None:
            index.drop_pixels(key)
        raise
    if key is not None:
        index.keep_pixels(key, digest, out)
    return records, out


def _known_verdicts(files, classes, keep: bool, index):
    """``(records, stats, todo, known_all)``: the index's verdicts of unchanged files (a stat
    per file, then one lookup pass over the listing), and which files must be decoded."""
    n = len(files)
    records: list[HygieneRecord | None] = [None] * n
    if index is None:
        return records, [None] * n, list(range(n)), False
    paths = [path for path, _ in files]
    stats = stat_all(paths)
    todo: list[int] = []
    known_all = True
    for i, known in enumerate(index.lookup_all(paths, stats)):
        if known is not None:
            records[i] = HygieneRecord(paths[i], classes[files[i][1]], *known)
            if not keep:
                continue
        else:
            known_all = False
        todo.append(i)
    return records, stats, todo, known_all


def _check_all(todo: list[int], files, classes, how: tuple, out, records: list, stats: list,
               index, workers) -> None:
    """Check the files ``todo``: their records into ``records``, verdicts into ``index``,
    pixels into ``out``.

    1. One tf.data graph (:func:`_graph_pass`) reads every file once, decodes it (pixels for
       ``out``, or :func:`tl_kit.decode.check_bytes` when none are kept) and says from its
       bytes whether it is plain (:func:`tl_kit.decode.plain_header`, as two codes a file
       and one :func:`tl_kit.decode.plain_of` per batch): a plain file that decoded is "ok",
       with no Python per file.
    2. A file that decoded but is not plain gets its Pillow header read
       (:func:`tl_kit.decode.sniff_file`, in threads): not an image -> skipped; one Pillow must
       decode (:func:`tl_kit.decode.needs_pil`) -> :func:`check_file`; else "ok" with the
       header's notes.
    3. A file the graph failed on goes through :func:`check_file`, which gives the same
       verdict one file at a time (Pillow, or the reason it is skipped).

    A Pillow header read per file before the graph cost ~0.09 ms of Python per file, a third
    of the first load (benchmarks/RESULTS.md, "First load in one graph")."""
    if not todo:
        return
    size, channels, resize = how
    n_workers = worker_count(workers)
    header = np.full((len(files), 2), -1, np.int64)  # filled by the graph for the files it decoded

    def done(i: int, rec: HygieneRecord) -> None:
        records[i] = rec
        if index is not None and stats[i] is not None:
            index.put(files[i][0], stats[i], rec.status, rec.reason, rec.decoder,
                      rec.height, rec.width)

    def headers(chunk):
        for i in chunk:
            path, k = files[i]
            try:
                notes, why = _dec.sniff_file(path)
            except Exception as e:  # noqa: BLE001 - any failure is the file's verdict
                done(i, HygieneRecord(path, classes[k], "skipped", _reason(e)))
                continue
            if why:
                done(i, check_file(path, classes[k], size, channels, resize, out, i))
            else:
                done(i, HygieneRecord(path, classes[k], "ok", "; ".join(notes), "tf", *header[i].tolist()))

    def one_by_one(chunk):
        for i in chunk:
            path, k = files[i]
            done(i, check_file(path, classes[k], size, channels, resize, out, i))

    def plain_ok(rows: list[int]) -> None:  # while the graph goes on with the next files
        _record_plain(rows, files, classes, records, stats, index, header)

    plain = _graph_pass(todo, files, size, channels, resize, out, plain_ok, header)
    _in_threads(headers, sorted(i for i, is_plain in plain.items() if not is_plain), n_workers)
    _in_threads(one_by_one, sorted(set(todo) - set(plain)), n_workers)


def _check_shared(share, todo: list[int], files, classes, how: tuple, records: list, stats: list,
                  index, workers) -> None:
    """A streamed scan shared over the workers (:mod:`tl_kit.data.shared_scan`): check the
    files of ``todo`` this worker owns, share every owned file's verdict code in one sum,
    take the plain verdicts of the others' files and check the rest here."""
    from tl_kit.data.shared_scan import OTHER, PLAIN

    n = len(files)
    owned = share.owned(n)
    mine = set(owned.tolist())
    _check_all([i for i in todo if i in mine], files, classes, how, None, records, stats, index, workers)
    codes = np.zeros(n)
    for i in owned.tolist():
        r = records[i]
        if (r.status, r.reason, r.decoder) == ("ok", "", "tf"):
            codes[i] = PLAIN + 4 * _header_code(r.height, r.width)  # exact in float64
        else:
            codes[i] = OTHER
    codes = share.total(codes)
    kind, known = np.remainder(codes, 4), np.floor_divide(codes, 4).astype(np.int64) - 1
    header = np.where(known[:, None] >= 0, np.stack([known // 65536, known % 65536], axis=1), -1)
    rest = [i for i in todo if i not in mine]
    _record_plain([i for i in rest if kind[i] == PLAIN], files, classes, records, stats, index, header)
    again = [i for i in rest if kind[i] != PLAIN]
    _check_all(again, files, classes, how, None, records, stats, index, workers)
    share.shared = True
    share.checked += len(todo) - len(rest) + len(again)
    share.files += n


def _header_code(height: int, width: int) -> int:
    """A header (JPEG sides are under 65536) as one int for a shared scan's sum: 0 not known."""
    return 0 if height < 0 or width < 0 else 1 + height * 65536 + width


def _record_plain(rows: list[int], files, classes, records: list, stats: list, index,
                  header: np.ndarray) -> None:
    """Plain files that decoded in the graph: "ok", decoded by TensorFlow, no notes, with the
    header the graph read (``header[row]``)."""
    hw = header[rows].tolist()
    for i, (h, w) in zip(rows, hw, strict=True):
        records[i] = HygieneRecord(files[i][0], classes[files[i][1]], "ok", "", "tf", h, w)
    if index is not None:
        index.put_all([files[i][0] for i in rows], [stats[i] for i in rows], ("ok", "", "tf"), hw)


def _in_threads(fn, items: list[int], n_workers: int) -> None:
    """``fn(chunk)`` over chunks of ``items`` in ``n_workers`` threads."""
    if not items:
        return
    step = max(1, min(256, len(items) // (4 * n_workers) or 1))
    with ThreadPoolExecutor(n_workers) as ex:
        list(ex.map(fn, [items[j:j + step] for j in range(0, len(items), step)]))


def _graph_pass(rows: list[int], files, size, channels, resize, out, on_plain,
                header: np.ndarray) -> dict[int, bool]:
    """Read and decode the files ``rows`` in one parallel tf.data graph (pixels resized into
    ``out[row]`` when ``out`` is given); ``{row: plain}`` for the rows that decoded, ``plain``
    from :func:`tl_kit.decode.plain_header` (a file that fails is dropped, not raised), and
    ``header[row]`` set to each one's JPEG height and width (0, 0: not a JPEG). The graph
    drops a batch in which a file fails, and decodes that batch's files again in a second
    pass that drops file by file: a clean folder is read once, a broken file costs its
    batch-mates a second decode.
    ``on_plain(rows)`` is called with each batch's plain rows as it arrives, so their
    records are written while the graph decodes the next files."""
    if not rows:
        return {}
    import tensorflow as tf

    h, w = int(size[0]), int(size[1])
    paths = np.asarray([files[i][0] for i in rows])
    exts = np.asarray([_dec.ext_code(files[i][0]) for i in rows], np.int32)
    ext_of = np.zeros(max(rows) + 1, np.int32)
    ext_of[rows] = exts

    @tf.autograph.experimental.do_not_convert  # plain TF ops: converting them cost ~1 s a load
    def load(i, path, ext):
        contents = tf.io.read_file(path)
        if out is None:
            codes, shape = _dec.check_plain(contents, ext, channels, header=True)
            return i, *codes, shape
        codes, image = _dec.decode_plain(contents, ext, channels, (h, w), resize, header=True)
        return i, *codes, _dec.resize_image(image, (h, w), resize)

    row_of = np.asarray(rows, np.int64)

    def batches(take: np.ndarray, per_file: bool):
        ds = tf.data.Dataset.from_tensor_slices((row_of[take], paths[take], exts[take])).map(
            load, num_parallel_calls=graph_calls(), deterministic=False)
        # first pass: the map runs fused with its batch, ~4-11 us a file less than dropping
        # errors file by file between them (benchmarks/RESULTS.md); a batch with a file that
        # fails is dropped whole, and its files go through a second pass that drops file by file
        ds = ds.ignore_errors().batch(256) if per_file else ds.batch(256).ignore_errors()
        return ds.prefetch(2)

    plain: dict[int, bool] = {}
    png_rows: list[int] = []
    take = np.arange(len(rows))
    for per_file in (False, True):
        for idx, shapes, pieces, pixels in batches(take, per_file):
            idx = idx.numpy()
            if out is not None:
                out[idx] = pixels.numpy()
            shapes, pieces = shapes.numpy(), pieces.numpy()
            header[idx] = shapes[:, :2]
            components = shapes[:, 2]
            flags = _dec.plain_of(ext_of[idx], components, pieces).tolist()
            png_rows += idx[_dec.png_to_test(components, pieces)].tolist()
            idx = idx.tolist()
            plain.update(zip(idx, flags, strict=True))
            on_plain([i for i, f in zip(idx, flags, strict=True) if f])
        take = np.asarray([j for j, i in enumerate(rows) if i not in plain], np.int64)
        if not len(take):
            break
    if png_rows:  # their PNG test, in a graph of their own (see tl_kit.decode.plain_codes)
        verdicts = _png_pass(png_rows, files)
        plain.update(verdicts)
        on_plain([i for i, f in verdicts.items() if f])
    return plain


def _png_pass(rows: list[int], files) -> dict[int, bool]:
    """:func:`tl_kit.decode.png_plain` of the files ``rows`` (PNGs that decoded), read again
    in one parallel graph; a file that cannot be read now is not plain (its header is read)."""
    import tensorflow as tf

    paths = np.asarray([files[i][0] for i in rows])
    ds = (tf.data.Dataset.from_tensor_slices((np.asarray(rows, np.int64), paths))
          .map(tf.autograph.experimental.do_not_convert(
              lambda i, path: (i, _dec.png_plain(tf.io.read_file(path)))),
              num_parallel_calls=graph_calls(), deterministic=False)
          .ignore_errors().batch(256))
    verdicts = dict.fromkeys(rows, False)
    for idx, flags in ds:
        verdicts.update(zip(idx.numpy().tolist(), flags.numpy().tolist(), strict=True))
    return verdicts


def listing_digest(files: list[tuple[str, int]], stats: list) -> str:
    """One hash of every file's path, label, size and mtime, in listing order."""
    h = hashlib.sha1()
    for (path, k), st in zip(files, stats, strict=True):
        h.update(f"{path}\0{k}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()


def open_index(root: Path, channels: int, run_dir, record: bool, explicit):
    """The hygiene index a load of ``root`` uses (:mod:`tl_kit.data.hygiene_index`), or None."""
    from tl_kit.data.hygiene_index import HygieneIndex, in_run_dir, index_location

    where = index_location(root, channels, run_dir=run_dir, explicit=explicit)
    if where is None:
        return None
    in_run = explicit in (None, True) and in_run_dir(where, run_dir)
    return HygieneIndex(where, root, channels, writable=record or not in_run)


def write_hygiene(run_dir, records: list[HygieneRecord], root: Path, changed: bool = True) -> None:
    """``hygiene.csv`` (one row per file) and ``hygiene.json`` (counts, and the records of the
    files that were skipped, converted or decoded with Pillow). Not rewritten when
    ``changed`` is False (the hygiene index saw no change) and both exist for as many files."""
    d = Path(run_dir)
    if not changed and (d / "hygiene.csv").is_file():
        prev = _read_json_quiet(d / "hygiene.json")
        if prev is not None and prev.get("files") == len(records) and prev.get("source") == str(root):
            return
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "hygiene.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "class", "status", "reason", "decoder"])
        w.writerows((r.path, r.label, r.status, r.reason, r.decoder) for r in records)
    os.replace(tmp, d / "hygiene.csv")
    notable = [r for r in records if r.status != "ok" or r.reason or r.decoder == "pil"]
    summary = {
        "source": str(root), "files": len(records),
        "skipped": sum(r.status == "skipped" for r in records),
        "converted": sum(r.status == "ok" and bool(r.reason) for r in records),
        "decoded_with_pil": sum(r.decoder == "pil" for r in records),
        "records": [{"path": r.path, "label": r.label, "status": r.status, "reason": r.reason,
                     "decoder": r.decoder} for r in notable],
    }
    write_json_atomic(d / "hygiene.json", summary)


def _read_json_quiet(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
