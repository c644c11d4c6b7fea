"""What decoding photo-sized JPEGs at a DCT scale saves (tl_kit does it since RESIZE_VERSION 3).

    python benchmarks/bench_draft_decode.py --files 400 --source-px 1024 --size 224 --rounds 3
    python benchmarks/bench_draft_decode.py --files 2000 --source-px 96 --size 64 --rounds 15 --one-cpu 0

``--one-cpu``: this process on that CPU alone, so wall clock is the work done (this VM's
speed steps between two levels; compare the per-round pairs, ``round_full_over_decode_resize``).

libjpeg can decode at 1/2, 1/4 or 1/8 scale (``tf.io.decode_jpeg(ratio=...)``). Every
entropy-coded coefficient is still read, but the inverse DCT, the colour conversion and the
resize that follows run on far fewer pixels. Over the generated benchmark folder of
``--source-px`` JPEGs (``bench_data.generate``), read into memory once, this maps in one
process, in turn each round (wall and CPU seconds, medians over the rounds):

* ``full_decode``: :func:`tl_kit.decode.decode_bytes` only (no resize);
* ``full_decode_resize``: what tl_kit did up to RESIZE_VERSION 2,
  :func:`tl_kit.decode.resize_image` of that;
* ``scaled_decode``: ``decode_jpeg`` at that scale (:func:`tl_kit.decode.dct_scale` of
  the known source size), no resize;
* ``scaled_decode_resize``: the same, then :func:`tl_kit.decode.resize_image`;
* ``decode_resize``: what tl_kit does now, :func:`tl_kit.decode.decode_resize` (the scale
  read from each file's header, so it costs the header read and the pick on top).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import check_one_cpu, emit  # noqa: E402
from benchmarks.bench_data import _cpu_s  # noqa: E402 - CPU seconds, as bench_data measures them


def largest_ratio(source_px: int, size: int) -> int:
    """The DCT scale tl_kit decodes a ``source_px`` square JPEG at for ``size``
    (:func:`tl_kit.decode.dct_scale`)."""
    from tl_kit.decode import dct_scale

    return dct_scale(source_px, source_px, (size, size))


def draft_cost(files: int = 400, source_px: int = 1024, size: int = 224, rounds: int = 3,
               calls: int = 16) -> dict:
    import tensorflow as tf

    import benchmarks.bench_data as bd
    from tl_kit import decode

    before, bd.SRC_PX = bd.SRC_PX, source_px
    try:
        paths = sorted(str(p) for p in bd.generate(files).glob("c*/*.jpg"))[:files]
    finally:
        bd.SRC_PX = before  # the module's setting, as other callers expect it
    src = tf.data.Dataset.from_tensor_slices([Path(p).read_bytes() for p in paths]).cache()
    for _ in src:  # every side reads the bytes from memory
        pass
    ratio = largest_ratio(source_px, size)
    hw = (size, size)
    sides = {
        "full_decode": lambda b: tf.shape(decode.decode_bytes(b, 3)),
        "full_decode_resize": lambda b: decode.resize_image(decode.decode_bytes(b, 3), hw),
        "scaled_decode": lambda b: tf.shape(tf.io.decode_jpeg(b, 3, ratio=ratio, dct_method=decode.DCT_METHOD)),
        "scaled_decode_resize": lambda b: decode.resize_image(
            tf.io.decode_jpeg(b, 3, ratio=ratio, dct_method=decode.DCT_METHOD), hw),
        "decode_resize": lambda b: decode.decode_resize(b, hw, 3),
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            ds = src.map(tf.autograph.experimental.do_not_convert(fn), num_parallel_calls=calls).batch(64)
            t, cpu = time.perf_counter(), _cpu_s()
            n = sum(int(x.shape[0]) for x in ds)
            runs[name].append((time.perf_counter() - t, _cpu_s() - cpu))
            assert n == len(paths)
    med = {k: {"wall_s": round(statistics.median(w for w, _ in v), 3),
               "cpu_s": round(statistics.median(c for _, c in v), 3)} for k, v in runs.items()}
    full, scaled, ours = (med[k]["cpu_s"] for k in ("full_decode_resize", "scaled_decode_resize", "decode_resize"))
    return {"files": len(paths), "source_px": source_px, "size": size, "ratio": ratio, "rounds": rounds,
            "machine": f"{os.cpu_count()} cores", "sides": med, "runs": runs,
            "round_full_over_decode_resize": [round(a[0] / b[0], 3) for a, b in
                                              zip(runs["full_decode_resize"], runs["decode_resize"], strict=True)],
            "cpu_full_over_scaled": round(full / scaled, 3) if scaled else None,
            "cpu_full_over_decode_resize": round(full / ours, 3) if ours else None}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--source-px", type=int, default=1024)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=16, help="num_parallel_calls of every side's map")
    ap.add_argument("--one-cpu", type=int, default=None, metavar="CPU",
                    help="run on this CPU alone (wall clock is then the work done)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    check_one_cpu(ap, args.one_cpu)
    if args.one_cpu is not None:
        os.sched_setaffinity(0, {args.one_cpu})
    out = draft_cost(args.files, args.source_px, args.size, args.rounds, args.calls)
    out["one_cpu"] = args.one_cpu
    return emit(out, args.out)


if __name__ == "__main__":
    main()
