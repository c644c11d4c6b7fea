"""Where an in-memory first load's time goes, phase by phase, against decoding into an array.

    python benchmarks/bench_load_phases.py --files 100000 --rounds 3 --one-cpu 0

On the generated benchmark folder (``bench_data.generate``), each round runs in turn, each in
a fresh subprocess:

* ``load``: ``tl_kit.load_data`` on the in-memory path (no hygiene index yet), with a timer
  on each phase: the listing (``list_folder``), the stat of every file and the index lookup
  (``_known_verdicts``), the scan's tf.data graph (``_graph_pass``: every file decoded,
  resized into the pixel file and given its header test), the listing digest, the index
  write, the hygiene report (``write_hygiene``), the split (``folder_split``) and the rest;
* ``load_no_header_test``: the same, with the JPEG header test's ops replaced by constants
  (what the test costs inside the graph; the verdicts are then wrong, it is a measurement);
* ``decode_kept``: every file decoded and resized once into one new uint8 array
  (``bench_data``'s ``decode_kept`` side), the least the in-memory path's product costs.

``--one-cpu``: every side on that one CPU alone, so its wall clock is the work it does
(this machine's cores come and go; see benchmarks/RESULTS.md). Figures: each phase's
median over the rounds, in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import check_one_cpu, emit, pin_to, timed_parts  # noqa: E402

SIDES = ("load", "load_no_header_test", "decode_kept")
PHASES = (("listing", "tl_kit.data.folders", None, "list_folder"),
          ("stat_and_lookup", "tl_kit.data.hygiene", None, "_known_verdicts"),
          ("scan_graph", "tl_kit.data.hygiene", None, "_graph_pass"),
          ("listing_digest", "tl_kit.data.hygiene", None, "listing_digest"),
          ("index_write", "tl_kit.data.hygiene_index", "HygieneIndex", "save"),
          ("hygiene_report", "tl_kit.data.folders", None, "write_hygiene"),
          ("split", "tl_kit.data.folders", None, "folder_split"))


def run_load(root: Path, load_px: int, header_test: bool = True) -> dict:
    """One in-memory first load of ``root``, its seconds per phase (``rest``: what no phase timer covers)."""
    import keras  # noqa: F401 - imported before the clock starts, as in bench_data's tl_kit sides
    import tensorflow as tf

    import tl_kit.data as D
    import tl_kit.decode as dec
    import tl_kit.train  # noqa: F401

    if not header_test:

        dec._pieces = lambda contents, needle: tf.constant(1)  # the JPEG header test's only op
    spent: dict = {}
    D.CACHE_LIMIT_BYTES = 64 << 30  # the in-memory path, whatever the folder's size
    work = Path(tempfile.mkdtemp(prefix="tl_phases_"))
    with timed_parts(spent, PHASES):
        t = time.perf_counter()
        data = D.load_data(str(root), image_size=load_px, validation_split=0.1, run_dir=work / "run",
                           hygiene_index=work / "index.json")
        total = time.perf_counter() - t
    assert data.info.pipeline.startswith("memory"), data.info.pipeline
    out = {"total_s": total, **{f"{k}_s": v for k, v in spent.items()}}
    out["rest_s"] = total - sum(spent.values())  # the phases do not nest
    return out


def run_decode_kept(root: Path, load_px: int) -> dict:
    import benchmarks.bench_data as bd

    bd.LOAD_PX = load_px
    r = bd._side_decode_kept(root)
    return {"total_s": r["decode_once_kept_s"]}


def phases(files: int, rounds: int = 3, one_cpu: int | None = None, load_px: int = 64) -> dict:
    """Every side once per round, in turn, each in a fresh subprocess; medians over the rounds."""
    import benchmarks.bench_data as bd

    root = bd.generate(files)
    pin = pin_to(one_cpu)
    per_round = []
    for k in range(rounds):
        got = {}
        for side in SIDES:
            cmd = [sys.executable, __file__, "--side", side, "--root", str(root), "--load-px", str(load_px)]
            proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pin)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            got[side] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
                "error": (proc.stderr or proc.stdout)[-2000:]}
            print(f"[bench_load_phases] round {k} {side}: {got[side]}", flush=True)
        per_round.append(got)
    med = {side: {key: round(statistics.median(r[side][key] for r in per_round), 3)
                  for key in per_round[0][side] if all(key in r[side] for r in per_round)}
           for side in SIDES}
    out = {"files": files, "load_px": load_px, "rounds": rounds, "one_cpu": one_cpu,
           "medians": med, "per_round": per_round}
    # each round's own pair: on a machine whose speed steps, a round where one side caught
    # the other speed shows as a ratio near 2 or 0.5 (benchmarks/RESULTS.md)
    out["round_ratios"] = [{"load_vs_decode_kept": round(r["decode_kept"]["total_s"] / r["load"]["total_s"], 3),
                            "scan_graph_vs_decode_kept": round(r["decode_kept"]["total_s"] / r["load"]["scan_graph_s"], 3)}
                           for r in per_round if "total_s" in r["decode_kept"] and "total_s" in r["load"]]
    if out["round_ratios"]:
        out["load_vs_decode_kept"] = statistics.median(x["load_vs_decode_kept"] for x in out["round_ratios"])
    return out


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one-cpu", type=int, default=None, metavar="CPU")
    ap.add_argument("--load-px", type=int, default=64)
    ap.add_argument("--out", default=None)
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        root = Path(args.root)
        fig = (run_decode_kept(root, args.load_px) if args.side == "decode_kept"
               else run_load(root, args.load_px, header_test=args.side == "load"))
        print(json.dumps(fig), flush=True)
        return None
    check_one_cpu(ap, args.one_cpu)
    return emit(phases(args.files, args.rounds, args.one_cpu, args.load_px), args.out)


if __name__ == "__main__":
    main()
