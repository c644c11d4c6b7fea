"""The time of ``tl-kit demo``: wall clock, CPU (user + sys) and peak memory of the command.

The demo runs as a child process (``python -m tl_kit.cli demo --out DIR [--quick]
[--task digits]``), so the CPU figures are the demo's alone: ``resource.getrusage`` of the
children, user + sys over every thread. The machine's 1-minute load average is sampled
every ``--every`` seconds during the run (other processes share it; on a busy machine the
wall time stretches, the CPU time much less). The issue's target: under 5 minutes wall on
2 cores, i.e. at most ~250 s of user + sys on a shared machine.

Usage: ``python benchmarks/bench_demo.py [--out /tmp/demo_bench] [--quick] [--task photos]``
(prints a JSON object: seconds, cpu_seconds, user, sys, peak_rss_mib, load samples, and the
demo's own total and per-cell seconds from its demo.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import load_snapshot  # noqa: E402


def _sample_load(samples: list[float], stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        samples.append(round(os.getloadavg()[0], 2))


def bench_demo(out: str = "/tmp/demo_bench", quick: bool = False, task: str = "photos",
               every: float = 10.0) -> dict:
    """Run ``tl-kit demo`` once in a child process; wall, CPU and load of that run."""
    cmd = [sys.executable, "-m", "tl_kit.cli", "demo", "--out", out, "--task", task]
    if quick:
        cmd.append("--quick")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(samples, stop, every), daemon=True)
    before_load = load_snapshot()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    sampler.start()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    stop.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    result = {"command": " ".join(cmd[1:]), "returncode": proc.returncode,
              "seconds": round(wall, 1), "cpu_seconds": round(user + system, 1),
              "user": round(user, 1), "sys": round(system, 1),
              "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
              "load_before": before_load, "load_after": load_snapshot(), "load1_samples": samples}
    saved = Path(out) / "demo.json"
    if proc.returncode == 0 and saved.is_file():
        demo = json.loads(saved.read_text())
        result["demo_total_seconds"] = demo.get("total_seconds")
        result["demo_setup_seconds"] = demo.get("setup_seconds")
        result["cell_seconds"] = {f"k{r['labels_per_class']}_s{r['seed']}_{r['regime']}": r["seconds"]
                                  for r in demo["rows"]}
    else:
        result["stderr_tail"] = proc.stderr[-2000:]
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/demo_bench")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--task", choices=("photos", "digits"), default="photos")
    p.add_argument("--every", type=float, default=10.0, help="seconds between load samples")
    a = p.parse_args(argv)
    result = bench_demo(a.out, a.quick, a.task, a.every)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
