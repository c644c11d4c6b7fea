"""What the hygiene scan's in-graph header test costs per file, side by side in one process.

    python benchmarks/bench_header_test.py --files 30000 --rounds 7

Reads ``--files`` JPEGs of the generated benchmark folder (bench_data.generate) into memory
once, then maps three functions over the bytes in a parallel tf.data graph, in turn, each
round (CPU seconds of this process; the median over the rounds):

* ``format_only``: the scan's ``tf.cond`` on the format, with ``tf.io.extract_jpeg_shape``
  standing in for the decode in the JPEG branch: what any graph that decodes pays;
* ``codes``: the same ``tf.cond`` with :func:`tl_kit.decode.plain_codes`'s two codes in it
  (what the scan runs now; the verdict is then one NumPy expression per batch);
* ``whole_test``: the same ops as :func:`tl_kit.decode.plain_header`, every one in that
  ``tf.cond`` per file (the comparisons, and the PNG test in the other branch): how the scan
  ran it before.

``codes - format_only`` and ``whole_test - format_only`` are the header test's cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_data import _cpu_s, generate  # noqa: E402 - CPU seconds as bench_data measures them


def header_test_cost(files: list[str], rounds: int = 5) -> dict:
    """CPU seconds of each side over ``files`` (median of ``rounds``) and the header test's
    cost per file in microseconds."""
    import numpy as np
    import tensorflow as tf

    from tl_kit import decode as dec
    from tl_kit.data.decoding import graph_calls

    blobs = [Path(f).read_bytes() for f in files]
    exts = np.asarray([dec.ext_code(f) for f in files], np.int32)
    src = tf.data.Dataset.from_tensor_slices((blobs, exts)).cache()
    for _ in src:  # fill the cache: every side reads bytes from memory
        pass

    def zero():
        return tf.zeros([3], tf.int32)

    def format_only(c, e):
        return tf.cond(tf.io.is_jpeg(c), lambda: tf.io.extract_jpeg_shape(c), zero), tf.constant(0)

    def codes(c, e):
        header, pieces, shape = dec._with_plain(c, e, lambda header: header, zero)
        return shape, header[2] + pieces

    def whole_test(c, e):  # the same ops, every one in the graph per file, in one tf.cond
        def other():
            return tf.logical_and(dec.png_to_test(*dec._other_codes(c, e)), dec.png_plain(c)), zero()

        plain, shape = tf.cond(tf.io.is_jpeg(c),
                               lambda: (dec.plain_of(e, *dec._jpeg_codes(c)), tf.io.extract_jpeg_shape(c)),
                               other)
        return shape, tf.cast(plain, tf.int32)

    sides = {"format_only": format_only, "codes": codes, "whole_test": whole_test}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            ds = src.map(tf.autograph.experimental.do_not_convert(fn), num_parallel_calls=graph_calls(),
                         deterministic=False).batch(256)
            t = _cpu_s()
            for _batch in ds:
                pass
            cpu[name].append(_cpu_s() - t)
    med = {k: round(statistics.median(v), 3) for k, v in cpu.items()}
    n = len(files)
    return {"files": n, "rounds": rounds, "cpu_s_median": med,
            "cpu_s_rounds": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
            "codes_us_per_file": round(1e6 * (med["codes"] - med["format_only"]) / n, 1),
            "whole_test_us_per_file": round(1e6 * (med["whole_test"] - med["format_only"]) / n, 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=30000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--folder", type=int, default=100000, help="the generated folder's size (bench_data)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    root = generate(args.folder)
    files = sorted(str(p) for p in root.glob("c*/*.jpg"))[: args.files]
    r = header_test_cost(files, args.rounds)
    r["machine"] = f"{os.cpu_count()} cores"
    from benchmarks._common import emit

    return emit(r, args.out, indent=1)


if __name__ == "__main__":
    main()
