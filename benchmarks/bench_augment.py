"""One training epoch streaming from disk with the standard policy: tl_kit (this tree and an
earlier revision) side by side with ``image_dataset_from_directory`` + Keras layers.

    python benchmarks/bench_augment.py --files 20000 --before 3089c9b --rounds 2

Reuses ``bench_data.py``: its generated folder (``generate``), its epoch timer and its Keras
side (``image_dataset_from_directory`` + RandomFlip, RandomZoom, RandomBrightness,
RandomContrast, mapped over the batches). Sides, each in its own fresh subprocess, run in
turn ``--rounds`` times (so a change in the machine's load hits every side alike):

* ``keras``: bench_data's Keras side;
* ``after``: ``tl_kit.load_data`` of this tree, forced onto the streaming path (in-graph
  decode), ``augment="standard"``, one epoch;
* ``before``: the same with ``tl_kit/`` of git revision ``--before`` (exported to a temporary
  folder), when given;
* ``plain_resize`` (``--plain-resize``): ``after`` with tl_kit's resize swapped for plain
  bilinear without antialiasing, as Keras's loader resizes. A diagnostic only: it shows
  what the antialiased resize costs (tl_kit always antialiases, in training and serving).

The hygiene index is built once by a first load and shared, so the loads are quick and the
sides differ in the epoch only. Prints one JSON line per side and a summary with the epoch
images/s (median over rounds) and each tl_kit side over Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_data as B  # noqa: E402

# bench_data puts this tree first on sys.path; a side's PYTHONPATH (the tree it measures) wins
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _side_tl(root: Path, work: Path) -> dict:
    import keras  # noqa: F401 - imported as on the Keras side

    import tl_kit.data as D

    D.CACHE_LIMIT_BYTES = 0  # streaming: decoded in the tf.data graph each epoch
    if os.environ.get("TL_BENCH_PLAIN_RESIZE"):  # the plain_resize side (a diagnostic)
        import tensorflow as tf

        from tl_kit import decode

        decode.resize_float = lambda image, size, mode="stretch": tf.image.resize(
            tf.cast(image, tf.float32), [int(size[0]), int(size[1])], method="bilinear")
    t = time.perf_counter()
    data = D.load_data(str(root), image_size=B.LOAD_PX, validation_split=0.1, run_dir=work / "run",
                       hygiene_index=work / "index.json")
    load = time.perf_counter() - t
    ds = data.dataset("train", batch_size=B.BATCH, training=True, augment="standard")
    cpu = time.process_time()
    secs, n = B._epoch(ds)
    return {"load_s": load, "epoch_s": secs, "epoch_images": n, "epoch_images_per_s": n / secs,
            "epoch_cpu_s": time.process_time() - cpu, "tl_kit": str(Path(D.__file__).parent)}


def _side_keras(root: Path) -> dict:
    cpu = time.process_time()
    out = B._side_keras(root)
    out["cpu_s_all"] = time.process_time() - cpu
    return out


def _export(rev: str, dest: Path) -> Path:
    """``tl_kit/`` of git revision ``rev`` under ``dest``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tl_kit"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _run(side: str, root: Path, work: Path, pythonpath: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pythonpath), str(ROOT)]))
    if side == "plain_resize":
        env["TL_BENCH_PLAIN_RESIZE"] = "1"
    proc = subprocess.run([sys.executable, __file__, "--side", side, "--root", str(root),
                           "--work", str(work)], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in json.loads(lines[-1]).items()}


def bench_augment(files: int, before: str | None, rounds: int, plain_resize: bool = False) -> dict:
    root = B.generate(files)
    work = Path(tempfile.mkdtemp(prefix="tl_bench_aug_"))
    try:
        trees = {"after": ROOT}
        if before:
            trees["before"] = _export(before, Path(tempfile.mkdtemp(prefix="tl_before_", dir=work)))
        if plain_resize:
            trees["plain_resize"] = ROOT
        out: dict = {"files": files, "load_px": B.LOAD_PX, "batch": B.BATCH, "before": before,
                     "load_before": os.getloadavg(), "runs": []}
        _run("after", root, work, ROOT)  # builds the shared hygiene index (not counted)
        for r in range(rounds):
            for side in ("keras", *trees):
                res = _run(side, root, work, trees.get(side, ROOT))
                out["runs"].append({"round": r, "side": side, **res})
                print(f"[bench_augment] round {r} {side}: {res}", flush=True)
        out["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {}
    for side in ("keras", *trees):
        vals = [x["epoch_images_per_s"] for x in out["runs"] if x["side"] == side and "epoch_images_per_s" in x]
        if vals:
            med[side] = round(statistics.median(vals), 1)
    out["median_epoch_images_per_s"] = med
    out["vs_keras"] = {s: round(v / med["keras"], 3) for s, v in med.items() if s != "keras" and "keras" in med}
    return out


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--before", default=None, help="git revision whose tl_kit/ is the 'before' side")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--plain-resize", action="store_true",
                    help="also a tl_kit side with plain (not antialiased) bilinear resizing")
    ap.add_argument("--side", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:  # one side, in this (fresh) process
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        root = Path(args.root)
        res = _side_keras(root) if args.side == "keras" else _side_tl(root, Path(args.work))
        print(json.dumps(res), flush=True)
        return None
    from benchmarks._common import emit

    return emit(bench_augment(args.files, args.before, args.rounds, args.plain_resize), args.out)


if __name__ == "__main__":
    main()
