"""A run directory written by tl_kit before the package redesign (tests/fixtures/
interrupted_run, made by tests/fixtures/make_interrupted_run.py at commit c4515de and killed
in epoch 2 of its second stage) still resumes, evaluates and exports with today's code."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def old_run(tmp_path, monkeypatch):
    for name in ("interrupted_run", "interrupted_run_data", "interrupted_run_recipe.toml"):
        src = FIXTURES / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # the run recorded its data source as "interrupted_run_data"
    return tmp_path / "interrupted_run"


def test_old_run_resumes_evaluates_and_exports(old_run, capsys):
    import tl_kit
    from tl_kit.cli import main

    state = json.loads((old_run / "checkpoints" / "2_all" / "state.json").read_text())
    assert state["epochs_done"] == 1 and json.loads((old_run / "run.json").read_text())["status"] == "running"

    learner = tl_kit.finetune(backbone="lenet5", weights=None, recipe="interrupted_run_recipe.toml",
                              run_dir="interrupted_run", seed=0, tensorboard=False,
                              checkpoint_interval=0, strategy="default", precision="float32",
                              jit_compile=False)
    learner.fit("interrupted_run_data", verbose=1)
    log = capsys.readouterr().out
    assert "resuming the unfinished run" in log
    assert "stage 1 'head' was finished" in log  # not trained again: weights from its .weights.h5
    assert "stage 2 'all' continues at epoch 2/3" in log  # from the epoch-1 checkpoint

    assert json.loads((old_run / "run.json").read_text())["status"] == "complete"
    with open(old_run / "history.csv", newline="") as fh:
        rows = [(r["stage"], int(r["epoch"])) for r in csv.DictReader(fh)]
    assert rows == [("head", 1), ("all", 1), ("all", 2), ("all", 3)]  # each epoch once
    assert (old_run / "model.keras").is_file()

    assert main(["evaluate", "interrupted_run", "--data", "interrupted_run_data", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.9  # dark vs light images: the resumed model learned them
    assert main(["export", "interrupted_run", "--json"]) == 0
    export = json.loads(capsys.readouterr().out)
    assert export["saved_model"]["serving_default"]["max_abs_diff"] < 1e-4
    assert (Path(export["path"]) / "saved_model.pb").is_file()
