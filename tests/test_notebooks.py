"""Execute every notebook in notebooks/ top to bottom (nbclient), with small settings.

The kernel is this interpreter (a kernelspec written into tmp_path whose argv is
sys.executable, found first through JUPYTER_PATH), so it works in any venv without
registering a kernel. Each notebook runs with TL_KIT_QUICK=1 and its working directory in
tmp_path, so nothing is written into the repository. The stored notebooks carry no outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED = {
    "quickstart.ipynb",
    "classic_architectures.ipynb",
    "recipes_and_regimes.ipynb",
    "export_and_serving.ipynb",
}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tl_kit tests", "language": "python",
    }))  # fmt: skip
    return root


def test_all_notebooks_present_and_stored_without_outputs():
    assert {p.name for p in NOTEBOOKS} == EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
                # tl_kit only (+ numpy / matplotlib / the standard library)
                for line in cell.source.splitlines():
                    if line.startswith(("import ", "from ")):
                        top = line.split()[1].split(".")[0]
                        assert top in {"tl_kit", "numpy", "matplotlib", "os", "pathlib"}, line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, kernel_env, monkeypatch):
    monkeypatch.setenv("TL_KIT_QUICK", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    produced = {p.name for p in tmp_path.iterdir()}
    if path.name in ("quickstart.ipynb", "export_and_serving.ipynb"):
        assert {"runs", "exports"} <= produced
        assert (tmp_path / "exports" / "textures" / "1" / "saved_model.pb").is_file()
