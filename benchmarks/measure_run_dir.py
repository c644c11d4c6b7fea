"""Bytes written and run-directory size of one ``tl-kit train`` run (issue 16, point 11).

    python benchmarks/measure_run_dir.py RUN_DIR [RECIPE] [extra tl-kit train flags...]

Runs ``tl-kit train RECIPE --data data/textures --backbone resnet18 --weights none
--image-size 64 --out RUN_DIR --overwrite`` in this process and prints, as JSON, the wall
seconds, the bytes this process wrote (``/proc/self/io``: ``write_bytes``, what reached the
storage layer, and ``wchar``, every write call), the run directory's size, and its files.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _io() -> dict[str, int]:
    with open("/proc/self/io") as fh:
        return {k: int(v) for k, v in (line.split(":") for line in fh)}


def _files(root: str) -> dict[str, int]:
    return {os.path.relpath(os.path.join(r, f), root): os.path.getsize(os.path.join(r, f))
            for r, _, fs in os.walk(root) for f in fs}


def main(argv: list[str]) -> dict:
    from tl_kit.cli import main as cli

    out, recipe, extra = argv[0], (argv[1] if len(argv) > 1 else "scratch"), argv[2:]
    args = ["train", recipe, "--data", "data/textures", "--backbone", "resnet18", "--weights", "none",
            "--image-size", "64", "--out", out, "--overwrite", *extra]
    before, t = _io(), time.perf_counter()
    code = cli(args)
    after = _io()
    files = _files(out)
    return {"command": "tl-kit " + " ".join(args), "exit": code, "wall_s": round(time.perf_counter() - t, 1),
            "write_bytes": after["write_bytes"] - before["write_bytes"], "wchar": after["wchar"] - before["wchar"],
            "run_dir_bytes": sum(files.values()),
            "largest_files": dict(sorted(files.items(), key=lambda kv: -kv[1])[:8])}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
