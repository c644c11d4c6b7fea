"""What decoding by the recorded header saves a streamed epoch, side by side in one process.

    python benchmarks/bench_routes.py --files 20000 --rounds 7 --one-cpu 0
    python benchmarks/bench_routes.py --files 2000 --source-px 1024 --size 224 --rounds 5 --one-cpu 0

Since the hygiene scan records each JPEG's header (height, width), a streamed epoch decodes
every file by :func:`tl_kit.decode.load_routed` with the scale :func:`tl_kit.decode.route_codes`
picked once, instead of :func:`tl_kit.decode.load_path`, which reads the header, picks the
scale and branches on the format in the graph for every file, every epoch. Over the generated
benchmark folder (``bench_data.generate``; files in the page cache after a first pass), this
maps in turn each round, with the same parallel map and batch as the pipeline (no
augmentation, so the decode is all there is):

* ``load_path``: the per-file header read (what streaming did before);
* ``load_routed``: the recorded header's route (what it does now).

``--epoch``: instead, one epoch of the real streaming pipeline (``load_data`` with
``CACHE_LIMIT_BYTES = 0``, ``dataset("train", training=True, augment="standard")``), with
the recorded routes, and with :func:`tl_kit.decode.route_codes` made to say
``ROUTE_HEADER`` for every file (each header read in the graph: what streaming did before).

``--one-cpu``: this process on that CPU alone, so wall clock is the work done; this VM's
speed steps between two levels, so read the per-round pairs (``round_path_over_routed``).
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


def routes_cost(files: int = 20000, source_px: int = 96, size: int = 64, rounds: int = 5) -> dict:
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    import benchmarks.bench_data as bd
    from tl_kit import decode

    before, bd.SRC_PX = bd.SRC_PX, source_px
    try:
        paths = sorted(str(p) for p in bd.generate(files).glob("c*/*.jpg"))[:files]
    finally:
        bd.SRC_PX = before
    header = np.asarray([Image.open(p).size[::-1] for p in paths], np.int32)  # what the scan records
    hw = (size, size)
    codes = decode.route_codes(header, hw, "stretch")
    routes = np.unique(codes)
    branch = np.searchsorted(routes, codes).astype(np.int32)
    routes = routes.tolist()
    src = tf.data.Dataset.from_tensor_slices((paths, branch))
    sides = {
        "load_path": lambda p, k: decode.load_path(p, hw, 3, "stretch"),
        "load_routed": lambda p, k: decode.load_routed(p, k, routes, hw, 3, "stretch"),
    }
    dss = {name: src.map(tf.autograph.experimental.do_not_convert(fn), num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=False).batch(64).prefetch(tf.data.AUTOTUNE)
           for name, fn in sides.items()}
    for _ in dss["load_path"]:  # the page cache, and one trace of each side, before any clock
        pass
    for _ in dss["load_routed"].take(1):
        pass
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for _ in range(rounds):
        for name, ds in dss.items():
            t, cpu = time.perf_counter(), _cpu_s()
            n = sum(int(x.shape[0]) for x in ds)
            runs[name].append((round(time.perf_counter() - t, 3), round(_cpu_s() - cpu, 3)))
            assert n == len(paths)
    med = {k: {"wall_s": round(statistics.median(w for w, _ in v), 3),
               "cpu_s": round(statistics.median(c for _, c in v), 3)} for k, v in runs.items()}
    pairs = [round(a[0] / b[0], 3) for a, b in zip(runs["load_path"], runs["load_routed"], strict=True)]
    return {"files": len(paths), "source_px": source_px, "size": size, "routes": routes,
            "rounds": rounds, "machine": f"{os.cpu_count()} cores", "sides": med, "runs": runs,
            "round_path_over_routed": pairs,
            "median_path_over_routed": round(statistics.median(pairs), 3),
            "saved_us_per_file": round(1e6 * (med["load_path"]["wall_s"] - med["load_routed"]["wall_s"])
                                       / len(paths), 2)}


def epoch_cost(files: int = 20000, size: int = 64, rounds: int = 5, augment: str | None = "standard") -> dict:
    import shutil
    import tempfile

    import numpy as np

    import benchmarks.bench_data as bd
    import tl_kit.data as D
    from tl_kit import decode

    routed = decode.route_codes

    def per_file(header, size, mode="stretch"):
        return np.full(len(np.asarray(header).reshape(-1, 2)), decode.ROUTE_HEADER, np.int32)

    work = Path(tempfile.mkdtemp(prefix="tl_bench_routes_"))
    limit, D.CACHE_LIMIT_BYTES = D.CACHE_LIMIT_BYTES, 0  # streaming; restored below
    runs: dict[str, list[tuple[float, float]]] = {"per_file_header": [], "routed": []}
    n = 0
    try:
        data = D.load_data(str(bd.generate(files)), image_size=size, validation_split=0.1,
                           run_dir=work / "run", hygiene_index=work / "index.json")
        for _ in range(rounds):
            for name, fn in (("per_file_header", per_file), ("routed", routed)):
                decode.route_codes = fn
                ds = data.dataset("train", batch_size=bd.BATCH, training=True, augment=augment)
                next(iter(ds))  # the trace, before the clock
                t, cpu = time.perf_counter(), _cpu_s()
                n = sum(int(x.shape[0]) for x, _ in ds)
                runs[name].append((round(time.perf_counter() - t, 3), round(_cpu_s() - cpu, 3)))
    finally:
        decode.route_codes = routed
        D.CACHE_LIMIT_BYTES = limit
        shutil.rmtree(work, ignore_errors=True)
    med = {k: {"wall_s": round(statistics.median(w for w, _ in v), 3),
               "cpu_s": round(statistics.median(c for _, c in v), 3)} for k, v in runs.items()}
    # rounds whose two sides both ran without a stall (wall within 3% of CPU): wall = work
    clean = [(a[0], b[0]) for a, b in zip(runs["per_file_header"], runs["routed"], strict=True)
             if a[0] <= 1.03 * a[1] and b[0] <= 1.03 * b[1]]
    return {"epoch": True, "files": files, "epoch_images": n, "train_images": data.size("train"), "size": size, "augment": augment,
            "rounds": rounds, "machine": f"{os.cpu_count()} cores", "sides": med, "runs": runs,
            "cpu_per_file_over_routed": round(med["per_file_header"]["cpu_s"] / med["routed"]["cpu_s"], 3),
            "clean_round_ratios": [round(a / b, 3) for a, b in clean]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--source-px", type=int, default=96)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--one-cpu", type=int, default=None, metavar="CPU",
                    help="run on this CPU alone (wall clock is then the work done)")
    ap.add_argument("--epoch", action="store_true",
                    help="one epoch of the streaming pipeline with the standard policy instead")
    ap.add_argument("--no-augment", action="store_true", help="with --epoch: no augmentation")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    check_one_cpu(ap, args.one_cpu)
    if args.one_cpu is not None:
        os.sched_setaffinity(0, {args.one_cpu})
    if args.epoch:
        out = epoch_cost(args.files, args.size, args.rounds, None if args.no_augment else "standard")
    else:
        out = routes_cost(args.files, args.source_px, args.size, args.rounds)
    out["one_cpu"] = args.one_cpu
    return emit(out, args.out)


if __name__ == "__main__":
    main()
