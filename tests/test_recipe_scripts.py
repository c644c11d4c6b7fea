"""The runnable recipe scripts (recipes/*_data.py) use the same engine as `tl-kit train`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXTURES = ROOT / "data" / "textures"


@pytest.mark.parametrize("regime", ["small", "medium", "large"])
def test_each_recipe_script_names_its_toml(regime):
    script = ROOT / "recipes" / f"{regime}_data.py"
    text = script.read_text()
    assert f'"{regime}_data.toml"' in text and 'main(["train"' in text
    assert (ROOT / "recipes" / f"{regime}_data.toml").is_file()


def test_small_data_script_trains_in_a_subprocess(tmp_path):
    data = tmp_path / "textures"
    for cls in ("brick", "grass", "gravel"):
        (data / cls).mkdir(parents=True)
        for f in sorted((TEXTURES / cls).glob("*.jpg"))[:8]:
            shutil.copy(f, data / cls / f.name)
    run = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "small_data.py"),
            "--data",
            str(data),
            "--backbone",
            "lenet5",
            "--weights",
            "none",
            "--image-size",
            "32",
            "--quick",
            "--out",
            str(run),
            "--json",
        ],  # fmt: skip
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["recipe"] == "small" and summary["backbone"] == "lenet5"
    assert summary["class_names"] == ["brick", "grass", "gravel"]
    assert (run / "model.keras").is_file() and (run / "config.toml").is_file()
    assert 'name = "small"' in (run / "config.toml").read_text()

    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "small_data.py"),
            "--data",
            str(tmp_path / "x"),
            "--backbone",
            "lenet5",
        ],  # fmt: skip
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("tl-kit: error: Folder not found")
