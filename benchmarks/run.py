"""Run the CPU benchmark set and print every target as a ratio, side by side, from one run.

    python benchmarks/run.py --quick                  # < 10 minutes on 2 CPU cores
    python benchmarks/run.py                          # full settings (about 30-40 minutes)
    python benchmarks/run.py --quick --only overhead,cache --out results.json

Benchmarks (one module each in benchmarks/):

1. ``overhead`` (bench_overhead.py): tl_kit's training-step throughput / the Keras
   transfer-learning guide's loop, per regime (small, medium, large). Target >= 0.95.
2. ``cache`` (bench_cache.py): head-only training, time to the same validation accuracy,
   the guide's frozen-backbone loop / tl_kit's feature cache. Target >= 20x.
3. ``pipeline`` (bench_pipeline.py): input pipeline with the standard augmentation policy,
   each backend / the training step, MobileNetV2 and ResNet50 at 128 px. Target >= 1.5x.
4. ``recipe`` (bench_recipe.py): the whole medium recipe on the demo's data, end to end,
   hand-written Keras wall time / tl_kit wall time (> 1: tl_kit is faster; no target).
5. ``mirrored`` (gpu_bench.py): MirroredStrategy on one device / the default strategy
   (ResNet50 on this CPU, small settings), runs alternated; plus the recorded GPU figures
   (benchmarks/results/jax_h100.json, Keras on JAX on an H100).
6. ``stability`` (bench_stability.py): test accuracy over 5 seeds on data/textures (120 real
   photos), mean and standard deviation, early stopping on the tiny validation set (before)
   against tl_kit's small-validation rule (after). Target: std <= 0.05.
7. ``data`` (bench_data.py): folder loading and a streaming epoch against Keras's
   ``image_dataset_from_directory`` with equivalent augmentation layers; first and second
   load, in-memory RSS over the cached pixels. Targets: epoch >= 1.0x, second load <= 3 s
   per 100k files, first load >= decoding every file once, RSS <= ~1.5x the pixels.
8. ``demo`` (bench_demo.py): ``tl-kit demo`` in a child process, wall and CPU time and peak
   memory. Target: under 5 minutes wall. Full mode only (``--only demo`` runs it alone).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import load_snapshot  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMES = ("overhead", "cache", "pipeline", "recipe", "mirrored", "stability", "overhead_lite0",
         "cache_lite0", "data", "demo")

# settings per benchmark: quick (< 10 min in all on 2 cores) and full
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "overhead": {"size": 64, "images": 256, "batch": 32, "epochs": 3, "repeats": 3},
        "cache": {"size": 128, "images": 1797, "epochs": 30, "tl_repeats": 3},
        "pipeline": {"size": 128, "batches": 8, "steps": 3, "images": 192},
        "recipe": {"labels_per_class": 20, "pre_epochs": 5, "epochs": 9, "repeats": 2},
        "mirrored": {"size": 64, "batch": 16, "steps": 5, "warmup": 2, "repeats": 2},
        "stability": {"backbone": "lenet5", "size": 32, "epochs": 30, "seeds": 5},
        "overhead_lite0": {"size": 64, "images": 128, "batch": 32, "epochs": 3, "repeats": 1,
                           "backbone": "efficientnet_lite0"},
        "cache_lite0": {"size": 96, "images": 600, "epochs": 10, "tl_repeats": 1,
                        "backbone": "efficientnet_lite0"},
        "data": {"files": 3000},
    },
    "full": {
        "overhead": {"size": 128, "images": 256, "batch": 32, "epochs": 5, "repeats": 5},
        "cache": {"size": 128, "images": 1797, "epochs": 30, "tl_repeats": 5},
        "pipeline": {"size": 128, "batches": 30, "steps": 10, "images": 1024},
        "recipe": {"labels_per_class": 20, "pre_epochs": 20, "epochs": 15, "repeats": 3},
        "mirrored": {"size": 128, "batch": 32, "steps": 10, "warmup": 3, "repeats": 3},
        "stability": {"backbone": "mobilenet_v2", "size": 32, "epochs": 20, "seeds": 5},
        "overhead_lite0": {"size": 128, "images": 256, "batch": 32, "epochs": 5, "repeats": 3,
                           "backbone": "efficientnet_lite0"},
        "cache_lite0": {"size": 128, "images": 1797, "epochs": 30, "tl_repeats": 3,
                        "backbone": "efficientnet_lite0"},
        "data": {"files": 20000},
        "demo": {"quick": False},
    },
}


def bench_overhead(**kw) -> dict:
    from benchmarks.bench_overhead import bench_overhead as run

    return run(**kw)


def bench_cache(**kw) -> dict:
    from benchmarks.bench_cache import bench_cache as run

    return run(**kw)


def bench_pipeline(**kw) -> dict:
    from benchmarks.bench_pipeline import pipeline_vs_step

    kw = dict(kw)
    kw["batch_size"] = kw.pop("batch", 32)
    return pipeline_vs_step(**kw)


def bench_recipe(**kw) -> dict:
    from benchmarks.bench_recipe import bench_recipe as run

    return run(**kw)


def bench_mirrored(size: int = 64, batch: int = 16, steps: int = 5, warmup: int = 2,
                   repeats: int = 2, model: str = "resnet50") -> dict:
    """MirroredStrategy (one device) / default strategy with gpu_bench, order alternated.

    The second mode of a process runs measurably slower here whichever it is, so the
    ratio is the geometric mean over the alternated repeats (cancels that order effect)."""
    import contextlib
    import io

    import numpy as np

    from benchmarks import gpu_bench

    ratios, rows = [], []
    for rep in range(repeats):
        modes = "default_strategy,mirrored_strategy" if rep % 2 == 0 else "mirrored_strategy,default_strategy"
        argv = ["--modes", modes, "--batch", str(batch), "--image-size", str(size), "--steps",
                str(steps), "--warmup", str(warmup), "--classes", "10", "--model", model]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rep_out = gpu_bench.main(argv)
        by = {r["mode"]: r["images_per_s"] for r in rep_out["results"]}
        rows.append(by)
        if "mirrored_strategy/default_strategy" in rep_out["ratios"]:
            ratios.append(rep_out["ratios"]["mirrored_strategy/default_strategy"])
    gpu = json.loads((HERE / "results" / "jax_h100.json").read_text())
    return {"model": model, "image_size": size, "batch": batch, "steps": steps,
            "ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan"),
            "ratios": [round(r, 3) for r in ratios], "runs": rows,
            "gpu_h100_jax": {r["mode"]: round(r["images_per_s"], 1) for r in gpu["results"]}}


def bench_stability(**kw) -> dict:
    from benchmarks.bench_stability import bench_stability as run

    return run(**kw)


def bench_data(files: int = 3000, sides: str = "tl_stream,tl_memory,keras,decode_once") -> dict:
    from benchmarks.bench_data import bench_data as run

    return run(files=files, sides=sides)


def bench_demo(quick: bool = True) -> dict:
    import tempfile

    from benchmarks.bench_demo import bench_demo as run

    with tempfile.TemporaryDirectory(prefix="tl_kit_demo_bench_") as out:
        return run(out=out, quick=quick)


FUNCS = {"overhead": bench_overhead, "cache": bench_cache, "pipeline": bench_pipeline,
         "recipe": bench_recipe, "mirrored": bench_mirrored, "stability": bench_stability,
         "overhead_lite0": bench_overhead, "cache_lite0": bench_cache, "data": bench_data,
         "demo": bench_demo}


def _overhead_rows(results: dict) -> list[tuple]:
    rows = []
    for key, net in (("overhead", "MobileNetV2"), ("overhead_lite0", "ImageNet Lite0")):
        if key not in results:
            continue
        r = results[key]
        for regime, v in r["regimes"].items():
            rows.append((f"1 overhead {regime} ({net} {r['image_size']}px, b{r['batch']})",
                         f"{v['tl_kit_images_per_s']:.1f} img/s", f"{v['guide_images_per_s']:.1f} img/s (guide)",
                         f"{v['ratio']:.3f}", ">= 0.95", _met(v["ratio"] >= 0.95)))
    return rows


def _cache_rows(results: dict) -> list[tuple]:
    rows = []
    for key, net in (("cache", ""), ("cache_lite0", " ImageNet Lite0")):
        if key not in results:
            continue
        r = results[key]
        s = r["seconds_to_target"]
        rows.append((f"2 cache{net}: time to val acc {r['target_val_accuracy']:.3f} ({r['train_images']} imgs)",
                     f"{s['tl_kit']:.1f} s", f"{s['guide']:.1f} s (guide)", f"{r['speedup']:.1f}x",
                     ">= 20x", _met(r["speedup"] >= 20)))
        rows.append(("  per-epoch throughput", f"{r['cached_head_epoch_images_per_s']:.0f} img/s",
                     f"{r['guide_epoch_images_per_s']:.0f} img/s (guide)",
                     f"{r['cached_head_epoch_images_per_s'] / r['guide_epoch_images_per_s']:.0f}x", "-", ""))
    return rows


def _pipeline_rows(r: dict) -> list[tuple]:
    rows = []
    for v in r["rows"]:
        rows.append((f"3 pipeline {r['policy']} {v['backend']} / {v['backbone']} step",
                     f"{v['pipeline_images_per_s']:.0f} img/s",
                     f"{v['finetune_step_images_per_s']:.1f} img/s (fine-tune step)",
                     f"{v['ratio_finetune']:.1f}x", ">= 1.5x", _met(v["ratio_finetune"] >= 1.5)))
        rows.append(("  vs frozen-backbone step", "", f"{v['frozen_step_images_per_s']:.1f} img/s",
                     f"{v['ratio_frozen']:.1f}x", "-", ""))
    return rows


def _recipe_rows(r: dict) -> list[tuple]:
    rows = [(f"4 recipe end to end (acc tl {r['tl_kit_test_accuracy']:.3f} / hand {r['hand_test_accuracy']:.3f})",
             f"{r['tl_kit_seconds']:.1f} s", f"{r['hand_seconds']:.1f} s (hand)",
             f"{r['ratio']:.2f}x", ">= 1.0 (>1 = tl_kit faster)", _met(r["ratio"] >= 1.0))]
    if "checkpoint_share" in r:
        rows.append(("  checkpoint writing / tl_kit wall time", "", "", f"{r['checkpoint_share']:.1%}",
                     "< 10%", _met(r["checkpoint_share"] < 0.10)))
    return rows


def _mirrored_rows(r: dict) -> list[tuple]:
    rows = [(f"5 MirroredStrategy/default (CPU, ResNet50 {r['image_size']}px b{r['batch']})",
             "", "", f"{r['ratio']:.3f}", "overhead ratio", "")]
    g = r["gpu_h100_jax"]
    if "float32_xla" in g and "mixed_float16_xla" in g:
        rows.append(("5 H100 (Keras on JAX) ResNet50 224px b256, mixed f16+XLA / f32+XLA",
                     f"{g['mixed_float16_xla']:.0f} img/s", f"{g['float32_xla']:.0f} img/s",
                     f"{g['mixed_float16_xla'] / g['float32_xla']:.2f}x", "recorded", ""))
    return rows


def _stability_rows(r: dict) -> list[tuple]:
    b, a = r["before"], r["after"]
    return [(f"6 stability: test acc over {r['seeds']} seeds ({r['backbone']} {r['image_size']}px, "
             f"{r['test_images']} test photos)", f"{a['mean']:.3f} +- {a['std']:.3f}",
             f"{b['mean']:.3f} +- {b['std']:.3f} (early stop on {r['runs']['before'][0]['val_images']} val)",
             "", "std <= 0.05", _met(a["std"] <= 0.05))]


DEMO_TARGET_SECONDS = 300  # the demo's target: under 5 minutes on 2 cores


def _demo_rows(r: dict) -> list[tuple]:
    if r.get("returncode") != 0:
        return [("8 demo: tl-kit demo failed", "", "", "", f"< {DEMO_TARGET_SECONDS} s", "NO")]
    load = max(r.get("load1_samples") or [r["load_before"].get("load1", 0.0)])
    return [(f"8 demo: tl-kit demo{' --quick' if '--quick' in r['command'] else ''} (load up to {load:.1f})",
             f"{r['seconds']:.0f} s wall", f"{r['cpu_seconds']:.0f} s CPU", f"{r['peak_rss_mib']:.0f} MiB peak",
             f"< {DEMO_TARGET_SECONDS} s wall", _met(r["seconds"] < DEMO_TARGET_SECONDS))]


def _data_rows(r: dict) -> list[tuple]:
    s, q, rows = r["sides"], r["ratios"], []
    tl, k, m, d = (s.get(n, {}) for n in ("tl_stream", "keras", "tl_memory", "decode_once"))
    if "stream_epoch_vs_keras" in q:
        rows.append((f"7 data epoch, standard policy, streaming ({r['files']} files)",
                     f"{tl['epoch_images_per_s']:.0f} img/s", f"{k['epoch_images_per_s']:.0f} img/s (Keras)",
                     f"{q['stream_epoch_vs_keras']:.2f}x", ">= 1.0x", _met(q["stream_epoch_vs_keras"] >= 1.0)))
    if "first_load_vs_decode_once" in q:
        rows.append(("7 data first load (stream) vs decoding every file once", f"{tl['first_load_s']:.1f} s",
                     f"{d['decode_once_s']:.1f} s", f"{q['first_load_vs_decode_once']:.2f}x", ">= 1.0x",
                     _met(q["first_load_vs_decode_once"] >= 1.0)))
    if "second_load_s" in tl:
        per100k = tl["second_load_s"] * 100000 / r["files"]
        rows.append(("7 data second load, unchanged (scaled to 100k files)", f"{tl['second_load_s']:.2f} s",
                     f"{k.get('second_load_s', float('nan')):.2f} s (Keras)", f"{per100k:.1f} s/100k", "<= 3 s",
                     _met(per100k <= 3)))
    if "memory_added_over_pixels" in q:  # the load's own memory, over the imported libraries
        added = m["peak_rss_after_first_load_mb"] - m["rss_before_load_mb"]
        rows.append((f"7 data in-memory RSS added by the load / pixels (total {q['memory_peak_over_pixels']:.1f}x)",
                     f"{added:.0f} MB", f"{m['cached_pixel_mb']:.0f} MB", f"{q['memory_added_over_pixels']:.2f}x",
                     "<= ~1.5x", _met(q["memory_added_over_pixels"] <= 1.5)))
    if "epoch_images_per_s" in m and "epoch_images_per_s" in k:
        rows.append(("  in-memory epoch, standard policy", f"{m['epoch_images_per_s']:.0f} img/s",
                     f"{k['epoch_images_per_s']:.0f} img/s (Keras)",
                     f"{m['epoch_images_per_s'] / k['epoch_images_per_s']:.2f}x", "-", ""))
    return rows


def summary_rows(results: dict[str, dict]) -> list[tuple[str, str, str, str, str, str]]:
    """(benchmark, tl_kit, baseline, ratio, target, met) rows for the side-by-side table."""
    rows = _overhead_rows(results) + _cache_rows(results)
    for key, make in (("pipeline", _pipeline_rows), ("recipe", _recipe_rows),
                      ("mirrored", _mirrored_rows), ("stability", _stability_rows),
                      ("data", _data_rows), ("demo", _demo_rows)):
        if key in results:
            rows += make(results[key])
    return rows


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"




def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["ram_gib"] = round(int(mem) / 2**20, 1)
    except OSError:  # pragma: no cover
        pass
    try:
        import keras
        import tensorflow as tf

        info["tensorflow"], info["keras"], info["keras_backend"] = tf.__version__, keras.__version__, keras.backend.backend()
    except ImportError:  # pragma: no cover
        pass
    return info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small settings (< 10 minutes on 2 cores)")
    ap.add_argument("--only", default=",".join(NAMES), help=f"comma list of {NAMES}")
    ap.add_argument("--out", default=None, help="write every figure as JSON here")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in names if n not in NAMES]
    if bad:
        ap.error(f"unknown benchmark(s) {bad}; choose from {NAMES}. Received: only={args.only!r}")
    mode = "quick" if args.quick else "full"
    skipped = [n for n in names if n not in SETTINGS[mode]]
    if skipped:
        print(f"[run] {', '.join(skipped)}: full mode only, skipped", flush=True)
        names = [n for n in names if n in SETTINGS[mode]]
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.autograph.set_verbosity(0)
    report: dict[str, Any] = {"mode": mode, "machine": machine(), "command": " ".join(
        ["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "results": {}, "seconds": {}, "load": {}}
    t_all = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        report["load"][name] = load_snapshot()
        print(f"[run] {name} ...", flush=True)
        report["results"][name] = FUNCS[name](**SETTINGS[mode][name])
        report["seconds"][name] = round(time.perf_counter() - t, 1)
        print(f"[run] {name} done in {report['seconds'][name]:.0f}s (load {report['load'][name]})", flush=True)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    rows = summary_rows(report["results"])
    widths = [max(len(r[i]) for r in rows + [("benchmark", "tl_kit", "baseline", "ratio", "target", "met")])
              for i in range(6)]
    print()
    for r in [("benchmark", "tl_kit", "baseline", "ratio", "target", "met"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    m = report["machine"]
    print(f"\n{m.get('cpus')} CPUs ({m.get('cpu', '?')}), {m.get('ram_gib', '?')} GiB, TF "
          f"{m.get('tensorflow', '?')}, Keras {m.get('keras', '?')}; {mode} mode, "
          f"{report['total_seconds']:.0f}s in all; load averages before each: "
          + ", ".join(f"{k} {v.get('load1', '?')}" for k, v in report["load"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
