"""The two listing commands, before and after, side by side in one run: wall clock and peak RSS.

    python benchmarks/bench_listing.py --files 100000 --rounds 2 --out results/listing.json

* ``weights``: :func:`tl_kit.weights.imagenet_weights_file` for every backbone with ImageNet
  weights (what ``tl-kit weights list`` does), as now (each build in a Keras stateless
  scope: no variable initialised) and as before (``StatelessScope`` replaced by a plain
  context, so every variable is initialised). Both sides must name the same files.
* ``cache``: ``tl-kit cache list --json`` over a cache holding one folder of ``--files``
  generated JPEGs (``bench_data.generate``, indexed once by a streaming load), as now (no
  TensorFlow import) and as before (TensorFlow imported first, as every command did).

Each side runs in a fresh subprocess, the sides alternate round by round; figures are each
side's median wall seconds and peak RSS (``ru_maxrss``) over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import emit, load_snapshot  # noqa: E402

_WEIGHTS = """
import contextlib, json, resource, sys, time
t = time.perf_counter()
import keras.src.backend.common.stateless_scope as scope
if sys.argv[1] == "before":
    scope.StatelessScope = lambda **kw: contextlib.nullcontext()
from tl_kit.backbones import get_backbone, list_backbones
from tl_kit.weights import imagenet_weights_file
files = {}
for name in sorted(list_backbones(sys.argv[2])):
    spec = get_backbone(name)
    if spec.imagenet:
        files[name] = imagenet_weights_file(spec)[0]
print(json.dumps({"wall_s": time.perf_counter() - t, "files": files,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_CACHE = """
import contextlib, io, json, resource, sys, time
t = time.perf_counter()
if sys.argv[1] == "before":
    from tl_kit.cli.runtime import import_tensorflow_quietly
    import_tensorflow_quietly()
from tl_kit.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert main(["cache", "list", "--json"]) == 0
listed = json.loads(out.getvalue())
print(json.dumps({"wall_s": time.perf_counter() - t, "files": sum(f["files"] for f in listed["folders"]),
                  "tensorflow": "tensorflow" in sys.modules,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _side(code: str, args: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"side {args} failed: {(proc.stderr or proc.stdout)[-2000:]}")
    return json.loads(lines[-1])


def _summary(runs: dict[str, list[dict]]) -> dict:
    sides = {side: {"wall_s": round(statistics.median(r["wall_s"] for r in rs), 3),
                    "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rs), 1)}
             for side, rs in runs.items()}
    before, now = sides["before"], sides["now"]
    return {"sides": sides, "wall_before_over_now": round(before["wall_s"] / now["wall_s"], 2),
            "rss_before_over_now": round(before["peak_rss_mb"] / now["peak_rss_mb"], 2),
            "rounds": {side: [round(r["wall_s"], 3) for r in rs] for side, rs in runs.items()}}


def weights_listing(pattern: str = "*", rounds: int = 1) -> dict:
    """Every ImageNet backbone matching ``pattern``, looked up before and now."""
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for _ in range(rounds):
        for side in runs:
            runs[side].append(_side(_WEIGHTS, [side, pattern]))
    files = {side: rs[0]["files"] for side, rs in runs.items()}
    out = _summary(runs)
    out.update(backbones=len(files["now"]), same_files=files["before"] == files["now"])
    return out


def cache_listing(files: int = 100000, rounds: int = 1) -> dict:
    """``tl-kit cache list`` over one indexed folder of ``files`` JPEGs, before and now."""
    import benchmarks.bench_data as bd

    root = bd.generate(files)
    cache = Path(tempfile.mkdtemp(prefix="tl_listing_cache_"))
    env = dict(os.environ, TL_KIT_CACHE_DIR=str(cache))
    index = ("import tl_kit.data as D; D.CACHE_LIMIT_BYTES = 0; "
             f"D.load_data({str(root)!r}, image_size=16); print('{{}}')")
    _side(index, [], env)
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for _ in range(rounds):
        for side in runs:
            runs[side].append(_side(_CACHE, [side], env))
    out = _summary(runs)
    out.update(files=files, listed=runs["now"][0]["files"],
               tensorflow_imported={side: rs[0]["tensorflow"] for side, rs in runs.items()},
               index_bytes=sum(p.stat().st_size for p in (cache / "hygiene").glob("*.json")))
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="weights,cache", help="weights, cache or both")
    ap.add_argument("--pattern", default="*", help="backbones to look up (weights)")
    ap.add_argument("--files", type=int, default=100000, help="files in the indexed folder (cache)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", help="also write the figures to this JSON file")
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    if not only or only - {"weights", "cache"}:
        ap.error(f"--only: weights and/or cache. Received: --only {a.only}")
    out: dict = {"load_before": load_snapshot(), "cpus": len(os.sched_getaffinity(0))}
    if "weights" in only:
        out["weights"] = weights_listing(a.pattern, a.rounds)
    if "cache" in only:
        out["cache"] = cache_listing(a.files, a.rounds)
    out["load_after"] = load_snapshot()
    return emit(out, a.out)


if __name__ == "__main__":
    main()
