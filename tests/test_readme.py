"""Every README code block marked runnable runs, so the README never rots.

A block is runnable when the line before its opening fence is ``<!-- runnable -->``.
Python blocks run in a fresh interpreter, bash blocks with ``bash -e`` and the project's
virtual environment first on PATH; each runs in a temporary folder holding a copy of
``data/`` and ``recipes/``, one after another in the same folder (a later block may use
what an earlier one wrote, as a reader following the README would).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"<!-- runnable -->\n```(python|bash)\n(.*?)```", re.S)


def runnable_blocks() -> list[tuple[str, str]]:
    return FENCE.findall((ROOT / "README.md").read_text())


def test_readme_marks_blocks_runnable():
    langs = [lang for lang, _ in runnable_blocks()]
    assert "python" in langs and "bash" in langs, "README lost its runnable examples"


def test_readme_blocks_run(tmp_path: Path):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["KERAS_HOME"] = str(tmp_path / "keras_home")  # converted weights never go to the real home
    blocks = runnable_blocks()
    assert blocks
    for i, (lang, code) in enumerate(blocks):
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"README block {i} ({lang}) failed:\n{code}\n--- output ---\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    # What the quickstart promises exists afterwards.
    assert (tmp_path / "exports").exists()


@pytest.mark.parametrize("needle", [".venv/bin/pip install -e", ".venv/bin/python -m pytest"])
def test_readme_opens_with_the_two_commands(needle: str):
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert needle in head
    ci = (ROOT / ".ci" / "run").read_text()
    # CI installs and tests exactly as README says.
    assert needle.split(" -e")[0].split(" -m")[0] in ci
