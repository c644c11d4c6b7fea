"""Data at scale: tl_kit's folder loading vs ``keras.utils.image_dataset_from_directory``.

    python benchmarks/bench_data.py --files 20000            # generates the folder once
    python benchmarks/bench_data.py --files 100000 --sides tl_stream,keras,decode_once --rounds 3
    python benchmarks/bench_data.py --files 20000 --sides tl_memory --before /tmp/old_checkout
    python benchmarks/bench_data.py --files 100000 --sides tl_memory --loads-only
    python benchmarks/bench_data.py --files 100000 --sides tl_memory --loads-only --load-px 80
    python benchmarks/bench_data.py --files 2000 --source-px 1024 --sides tl_stream,decode_once --loads-only

Generates N small JPEGs (96 px, 10 classes; in parallel processes, cached under
``/tmp/tl_kit_bench_data/n<N>`` across runs) and measures, each side in its own fresh
subprocess (so the peak RSS, ``VmHWM``, is that side's alone), at 64 px (``--load-px``),
batch 64:

* ``tl_stream``: ``tl_kit.load_data`` forced onto the streaming path (in-graph decode);
* ``tl_memory``: ``tl_kit.load_data`` on the in-memory path (uint8 cache; CACHE_LIMIT_BYTES
  raised so it applies);
* ``keras``: ``image_dataset_from_directory`` + RandomFlip, RandomZoom, RandomBrightness,
  RandomContrast layers mapped over the batches (the Keras guide's way);
* ``decode_once``: every file read, decoded and resized once by a parallel tf.data graph
  (what a first load "with every file checked" is measured against), run twice: with as many
  calls at once as tl_kit's scan (``tl_kit.data.decoding.graph_calls``) and with ``AUTOTUNE``;
  ``decode_once_s`` and ``decode_once_cpu_s`` are the lower of the two. Also every file
  decoded at full size with nothing kept (``decode_full_size_s``: the least a decode costs),
  and decoded and resized into one new uint8 array (``decode_once_kept_s``: what the
  in-memory path's product, the pixels in memory, costs at the least).
* ``decode_kept``: that last pass alone (``decode_once_kept_s``), so that it alternates with
  ``tl_memory`` a few seconds apart.

A pass's ``cores`` is its CPU seconds over its wall seconds. This 2-core machine spends
spells giving a process about one core (a pass then takes ~1.7x as long, with *less* CPU:
no hyper-thread sibling competes); ``full_core_rounds`` gives the in-memory ratios over the
rounds where both sides of the pair used at least ``FULL_CORES`` cores, so a spell that
caught only one side does not decide the figure (every round stays in ``rounds``).

Per side: first load (no hygiene index), second load (same folder, unchanged, as a second
training run into a new run directory: the index in the user's cache), one training epoch
with the standard policy (``augment="standard"``) and the peak RSS. First loads and
decode-once passes also record their CPU seconds (user + system, every thread): the work
done, which a machine that takes cores away for a while changes far less than the wall clock.

``--before DIR`` (a folder holding another checkout's ``tl_kit/``, e.g. from ``git archive``)
also runs each tl_kit side with that tl_kit, as ``<side>@before``, one after the other in the
same run, so a change is measured side by side with what it replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# the tl_kit to measure: this checkout, or (a --before side) the one its parent process names
sys.path.insert(0, os.environ.get("TL_KIT_BENCH_TL_PATH") or str(Path(__file__).resolve().parent.parent))

SIDES = ("tl_stream", "tl_memory", "keras", "decode_once")
EXTRA_SIDES = ("decode_kept",)
FULL_CORES = 1.6
GEN_ROOT = Path(tempfile.gettempdir()) / "tl_kit_bench_data"
CLASSES = 10
SRC_PX = 96
LOAD_PX = 64
BATCH = 64


def _make_chunk(args) -> int:
    root, start, stop, px = args
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(start)
    yy, xx = np.mgrid[0:px, 0:px]
    for i in range(start, stop):
        k = i % CLASSES
        base = (np.stack([xx * (k + 1), yy * (10 - k), (xx + yy) * 2], -1) % 256).astype(np.float32)
        img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(Path(root) / f"c{k}" / f"{i:07d}.jpg", quality=90)
    return stop - start


def generate(n: int, workers: int | None = None) -> Path:
    """``n`` JPEGs of ``SRC_PX`` px in ``GEN_ROOT/n<n>[-px<SRC_PX>]/c<k>/``, made once (a
    ``.done`` marker) and reused."""
    from concurrent.futures import ProcessPoolExecutor

    root = GEN_ROOT / (f"n{n}" if SRC_PX == 96 else f"n{n}-px{SRC_PX}")
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for k in range(CLASSES):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
    step = 2000
    chunks = [(str(root), s, min(n, s + step), SRC_PX) for s in range(0, n, step)]
    with ProcessPoolExecutor(workers or os.cpu_count()) as ex:
        sum(ex.map(_make_chunk, chunks))
    (root / ".done").write_text(str(n))
    return root


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """User + system CPU seconds of this process so far, every thread's."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _epoch(ds) -> tuple[float, int]:
    t, n = time.perf_counter(), 0
    for x, _ in ds:
        n += int(x.shape[0])
    return time.perf_counter() - t, n


def _side_tl(root: Path, streaming: bool, epoch: bool = True) -> dict:
    import keras  # noqa: F401 - imported as on the Keras side, so the RSS baselines compare

    import tl_kit.data as D
    import tl_kit.train  # noqa: F401

    D.CACHE_LIMIT_BYTES = 0 if streaming else 64 << 30
    work = Path(tempfile.mkdtemp(prefix="tl_bench_"))
    # the default index location, in a cache of this run's own; the second load is a second
    # training run into a NEW run directory, as a user's second `tl-kit train` on the folder
    os.environ["TL_KIT_CACHE_DIR"] = str(work / "cache")
    rss_before = _peak_rss_mb()  # TensorFlow, Keras and tl_kit imported
    try:
        t, cpu = time.perf_counter(), _cpu_s()
        data = D.load_data(str(root), image_size=LOAD_PX, validation_split=0.1, run_dir=work / "run")
        first, first_cpu = time.perf_counter() - t, _cpu_s() - cpu
        rss_first = _peak_rss_mb()
        pixels = sum(data.size(s) for s in D.SPLITS) * LOAD_PX * LOAD_PX * 3
        del data
        t = time.perf_counter()
        data = D.load_data(str(root), image_size=LOAD_PX, validation_split=0.1, run_dir=work / "run2")
        second = time.perf_counter() - t
        out = {"first_load_s": first, "first_load_cpu_s": first_cpu, "second_load_s": second,
               "peak_rss_after_first_load_mb": rss_first, "rss_before_load_mb": rss_before,
               "cached_pixel_mb": pixels / 2**20 if not streaming else 0.0}
        if epoch:
            ds = data.dataset("train", batch_size=BATCH, training=True, augment="standard")
            secs, n = _epoch(ds)
            out.update(epoch_s=secs, epoch_images=n, epoch_images_per_s=n / secs)
        return {**out, "peak_rss_mb": _peak_rss_mb(), "tl_kit": str(Path(D.__file__).parent.parent)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _keras_augmenter():
    import keras

    return keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomZoom((-0.4, 0.0)),
        keras.layers.RandomBrightness(0.1, value_range=(0, 255)),
        keras.layers.RandomContrast(0.1),
    ])


def _side_keras(root: Path) -> dict:
    import keras
    import tensorflow as tf

    def load():
        return keras.utils.image_dataset_from_directory(
            str(root), image_size=(LOAD_PX, LOAD_PX), batch_size=BATCH, validation_split=0.1,
            subset="training", seed=0, label_mode="categorical", verbose=False)

    t = time.perf_counter()
    load()
    first = time.perf_counter() - t
    t = time.perf_counter()
    ds = load()
    second = time.perf_counter() - t
    aug = _keras_augmenter()
    ds = ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    secs, n = _epoch(ds)
    return {"first_load_s": first, "second_load_s": second, "epoch_s": secs, "epoch_images": n,
            "epoch_images_per_s": n / secs, "peak_rss_mb": _peak_rss_mb()}


def _side_decode_once(root: Path) -> dict:
    import tensorflow as tf

    from tl_kit import decode
    from tl_kit.data.decoding import graph_calls

    files = sorted(str(p) for p in root.glob("c*/*.jpg"))

    def once(fn, calls) -> tuple[float, float, int]:
        t, cpu = time.perf_counter(), _cpu_s()
        ds = tf.data.Dataset.from_tensor_slices(files).map(
            tf.autograph.experimental.do_not_convert(fn), num_parallel_calls=calls)
        n = sum(int(b.shape[0]) for b in ds.batch(256))
        return time.perf_counter() - t, _cpu_s() - cpu, n

    def load(p):
        return decode.load_path(p, (LOAD_PX, LOAD_PX), 3)

    # at full size, nothing kept (the least a decode of every file costs), then decoded and
    # resized to the load size (what loading at that size costs), with as many calls at once
    # as tl_kit's scan and with AUTOTUNE: the faster of the two is the baseline
    calls = graph_calls()
    full, full_cpu, _ = once(lambda p: tf.shape(decode.decode_bytes(tf.io.read_file(p), 3)), calls)
    queued, queued_cpu, n = once(load, calls)
    auto, auto_cpu, _ = once(load, tf.data.AUTOTUNE)
    secs, cpu = min(queued, auto), min(queued_cpu, auto_cpu)
    kept, kept_cpu = _decode_kept(files, load, calls)
    return {"decode_once_s": secs, "decode_once_cpu_s": cpu, "files": n, "per_file_ms": 1000 * secs / n,
            "decode_once_calls": calls, "decode_once_calls_s": queued, "decode_once_calls_cpu_s": queued_cpu,
            "decode_once_autotune_s": auto, "decode_once_autotune_cpu_s": auto_cpu,
            "decode_once_kept_s": kept, "decode_once_kept_cpu_s": kept_cpu,
            "decode_full_size_s": full, "decode_full_size_cpu_s": full_cpu, "peak_rss_mb": _peak_rss_mb()}


def _side_decode_kept(root: Path) -> dict:
    from tl_kit import decode
    from tl_kit.data.decoding import graph_calls

    files = sorted(str(p) for p in root.glob("c*/*.jpg"))
    kept, kept_cpu = _decode_kept(files, lambda p: decode.load_path(p, (LOAD_PX, LOAD_PX), 3), graph_calls())
    return {"decode_once_kept_s": kept, "decode_once_kept_cpu_s": kept_cpu, "files": len(files),
            "peak_rss_mb": _peak_rss_mb()}


def _decode_kept(files: list[str], load, calls) -> tuple[float, float]:
    """Decode and resize every file once, keeping the uint8 pixels in one new array (what the
    in-memory path's product costs at the least: the decode plus the new memory it fills)."""
    import numpy as np
    import tensorflow as tf

    t, cpu = time.perf_counter(), _cpu_s()
    out = np.zeros((len(files), LOAD_PX, LOAD_PX, 3), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(files)), files)).map(
        tf.autograph.experimental.do_not_convert(lambda i, p: (i, load(p))), num_parallel_calls=calls,
        deterministic=False)
    for i, x in ds.batch(256):
        out[i.numpy()] = x.numpy()
    return time.perf_counter() - t, _cpu_s() - cpu


def run_side(side: str, root: Path, epoch: bool = True) -> dict:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if side == "tl_stream":
        return _side_tl(root, True, epoch)
    if side == "tl_memory":
        return _side_tl(root, False, epoch)
    if side == "keras":
        return _side_keras(root)
    if side == "decode_kept":
        return _side_decode_kept(root)
    return _side_decode_once(root)


def bench_data(files: int = 20000, sides: str = ",".join(SIDES), before: str | None = None,
               epoch: bool = True, rounds: int = 1, one_cpu: int | None = None) -> dict:
    """Generate (or reuse) the folder, run every side in its own subprocess, return figures
    (``before``: also each tl_kit side with the tl_kit found in that folder; ``epoch=False``:
    the tl_kit sides measure the loads only). With ``rounds`` > 1 every side runs once per
    round, the sides in turn; ``sides`` then holds each figure's median over the rounds,
    ``rounds`` each round's figures and ``round_ratios`` each round's ratios. ``one_cpu``:
    every side runs on that one CPU alone (``sched_setaffinity``), so its wall clock is the
    work it does, with no second thread beside it on the core's sibling."""
    t = time.perf_counter()
    root = generate(files)
    gen = time.perf_counter() - t
    out: dict = {"files": files, "source_px": SRC_PX, "load_px": LOAD_PX, "batch": BATCH,
                 "generate_s": round(gen, 1), "load_before": os.getloadavg(), "one_cpu": one_cpu,
                 "sides": {}}
    here = str(Path(__file__).resolve().parent.parent)
    runs = []
    for side in [s for s in sides.split(",") if s]:
        if before and side.startswith("tl_"):
            runs.append((f"{side}@before", side, str(Path(before).resolve())))
        runs.append((side, side, here))
    per_round = []
    for k in range(rounds):
        got = {}
        for name, side, path in runs:
            got[name] = _run_side(side, root, path, epoch, one_cpu)
            print(f"[bench_data] round {k} {name}: {got[name]}", flush=True)
        per_round.append(got)
    out["sides"] = per_round[0] if rounds == 1 else _medians(per_round)
    if rounds > 1:
        out["rounds"] = per_round
        out["round_ratios"] = [_ratios({"sides": r})["ratios"] for r in per_round]
        out["median_round_ratio"] = _median_ratios(out["round_ratios"])
        out["full_core_rounds"] = _full_core_ratios(out["round_ratios"])
    if before:
        out["before"] = str(Path(before).resolve())
    out["load_after"] = os.getloadavg()
    return _ratios(out)


def _medians(per_round: list[dict]) -> dict:
    """Each side's numeric figures: the median over the rounds (other values: the first round's)."""
    import statistics

    out = {}
    for name, first in per_round[0].items():
        out[name] = {k: (round(statistics.median(r[name][k] for r in per_round), 3)
                         if isinstance(v, (int, float)) and all(k in r[name] for r in per_round) else v)
                     for k, v in first.items()}
    return out


def _median_ratios(round_ratios: list[dict]) -> dict:
    """Each ratio's median over the rounds where it was measured: a round's ratio pairs the
    sides that ran next to each other, so a slow spell of the machine shifts both of them,
    where a ratio of medians may pair figures from different rounds."""
    import statistics

    names = sorted({k for r in round_ratios for k in r})
    return {k: round(statistics.median(r[k] for r in round_ratios if k in r), 3) for k in names}


def _full_core_ratios(round_ratios: list[dict], least: float = FULL_CORES) -> dict:
    """The in-memory first load against decoding into a new array, over the rounds where
    both passes used at least ``least`` cores: ``rounds`` (which), and each ratio's median."""
    import statistics

    keep = [k for k, r in enumerate(round_ratios)
            if r.get("memory_first_load_cores", 0) >= least and r.get("decode_once_kept_cores", 0) >= least]
    names = ("memory_first_load_vs_decode_once_kept", "memory_first_load_cpu_vs_decode_once_kept")
    out: dict = {"least_cores": least, "rounds": keep}
    for name in names:
        got = [round_ratios[k][name] for k in keep if name in round_ratios[k]]
        if got:
            out[name] = round(statistics.median(got), 3)
    return out


def _run_side(side: str, root: Path, pythonpath: str, epoch: bool = True,
              one_cpu: int | None = None) -> dict:
    """One side in a fresh subprocess importing tl_kit from ``pythonpath`` (on CPU ``one_cpu``
    alone when given)."""
    env = dict(os.environ, PYTHONPATH=pythonpath, TL_KIT_BENCH_TL_PATH=pythonpath)
    cmd = [sys.executable, __file__, "--side", side, "--root", str(root), "--load-px", str(LOAD_PX)]
    from benchmarks._common import pin_to  # the parent's import path: this checkout

    proc = subprocess.run(cmd + ([] if epoch else ["--loads-only"]), capture_output=True,
                          text=True, env=env, preexec_fn=pin_to(one_cpu))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in json.loads(lines[-1]).items()}


def _ratios(out: dict) -> dict:
    s = out["sides"]
    r: dict = {}
    tl, k, m = s.get("tl_stream", {}), s.get("keras", {}), s.get("tl_memory", {})
    d = {**s.get("decode_kept", {}), **s.get("decode_once", {})}
    if "epoch_images_per_s" in tl and "epoch_images_per_s" in k:
        r["stream_epoch_vs_keras"] = round(tl["epoch_images_per_s"] / k["epoch_images_per_s"], 3)
    if "first_load_s" in tl and "decode_once_s" in d:
        r["first_load_vs_decode_once"] = round(d["decode_once_s"] / tl["first_load_s"], 3)
    if "first_load_s" in tl and "decode_full_size_s" in d:
        r["first_load_vs_decode_full_size"] = round(d["decode_full_size_s"] / tl["first_load_s"], 3)
    # CPU seconds: the work done, which a busy or throttled machine does not change as much
    if "first_load_cpu_s" in tl and "decode_once_cpu_s" in d:
        r["first_load_cpu_vs_decode_once"] = round(d["decode_once_cpu_s"] / tl["first_load_cpu_s"], 3)
    if "first_load_cpu_s" in m and "decode_once_cpu_s" in d:
        r["memory_first_load_cpu_vs_decode_once"] = round(d["decode_once_cpu_s"] / m["first_load_cpu_s"], 3)
    if "first_load_s" in m and "decode_once_s" in d:
        r["memory_first_load_vs_decode_once"] = round(d["decode_once_s"] / m["first_load_s"], 3)
    if "first_load_s" in m and "decode_once_kept_s" in d:  # the same product: pixels in memory
        r["memory_first_load_vs_decode_once_kept"] = round(d["decode_once_kept_s"] / m["first_load_s"], 3)
    if "first_load_cpu_s" in m and "decode_once_kept_cpu_s" in d:
        r["memory_first_load_cpu_vs_decode_once_kept"] = round(
            d["decode_once_kept_cpu_s"] / m["first_load_cpu_s"], 3)
    for name, fig, secs, cpu in (("memory_first_load_cores", m, "first_load_s", "first_load_cpu_s"),
                                 ("decode_once_kept_cores", d, "decode_once_kept_s", "decode_once_kept_cpu_s")):
        if fig.get(secs) and cpu in fig:
            r[name] = round(fig[cpu] / fig[secs], 3)
    for name in ("tl_memory", "tl_memory@before"):
        r.update(_memory_ratios(s.get(name, {}), name.replace("tl_memory", "memory")))
    out["ratios"] = r
    return out


def _memory_ratios(m: dict, prefix: str) -> dict:
    """Peak RSS of an in-memory side over its cached pixel bytes: in total, and what the
    load added over the imported libraries."""
    if not m.get("cached_pixel_mb"):
        return {}
    r = {f"{prefix}_peak_over_pixels": round(m["peak_rss_after_first_load_mb"] / m["cached_pixel_mb"], 3)}
    if "rss_before_load_mb" in m:
        r[f"{prefix}_added_over_pixels"] = round(
            (m["peak_rss_after_first_load_mb"] - m["rss_before_load_mb"]) / m["cached_pixel_mb"], 3)
    return r


def main(argv: list[str] | None = None) -> dict | None:
    global LOAD_PX, SRC_PX
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--sides", default=",".join(SIDES),
                    help=f"comma-separated, of {', '.join(SIDES + EXTRA_SIDES)} (default: {', '.join(SIDES)})")
    ap.add_argument("--side", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    ap.add_argument("--before", default=None,
                    help="a folder with another tl_kit/ checkout: its tl_kit sides run too")
    ap.add_argument("--loads-only", action="store_true",
                    help="tl_kit sides: first and second load and their RSS, no epoch")
    ap.add_argument("--load-px", type=int, default=LOAD_PX,
                    help=f"the size images are loaded at (default {LOAD_PX}; larger: more cached pixels)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every side this many times, in turn; figures are the medians")
    ap.add_argument("--source-px", type=int, default=SRC_PX,
                    help=f"the side of the generated JPEGs (default {SRC_PX}; e.g. 1024 for photos)")
    ap.add_argument("--one-cpu", type=int, default=None, metavar="CPU",
                    help="run every side on this one CPU alone: wall clock = work done (a steadier "
                         "measure on a machine whose cores come and go)")
    args = ap.parse_args(argv)
    LOAD_PX, SRC_PX = args.load_px, args.source_px
    unknown = [x for x in args.sides.split(",") if x and x not in SIDES + EXTRA_SIDES]
    if unknown:
        ap.error(f"--sides: unknown {', '.join(unknown)}; choose from {', '.join(SIDES + EXTRA_SIDES)}")
    if args.side:  # one side, in this (fresh) process
        print(json.dumps(run_side(args.side, Path(args.root), not args.loads_only)), flush=True)
        return None
    from benchmarks._common import check_one_cpu, emit

    check_one_cpu(ap, args.one_cpu)
    out = bench_data(args.files, args.sides, args.before, not args.loads_only, args.rounds, args.one_cpu)
    return emit(out, args.out)


if __name__ == "__main__":
    main()
