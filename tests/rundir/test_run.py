"""RunDir: the run directory's on-disk format (status, config differences, overwrite, the
pre-training undo, free space, history, finished stages)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import namedtuple

import keras
import numpy as np
import pytest

from tl_kit.errors import UserError
from tl_kit.rundir import RUN_ARTEFACTS, RunDir, config_differences, write_state


def _config(epochs: int = 2, lr: float = 1e-3, **run) -> dict:
    return {"run": {"backbone": "lenet5", "seed": 0, "strategy": "OneDeviceStrategy", **run},
            "recipe": {"name": "r", "calibrate": True,
                       "stages": [{"name": "all", "epochs": epochs, "learning_rate": lr}]}}


def test_status_reads_run_json_and_runs_from_before_it(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert rd.status() == {}
    rd.check_writable()
    rd.write_status("running", stage="1_all")
    state = json.loads((tmp_path / "run" / "run.json").read_text())
    assert state["status"] == "running" and state["stage"] == "1_all" and "time" in state
    assert rd.status() == state
    (tmp_path / "run" / "run.json").write_text("{not json")
    assert rd.status() == {"status": "running"}  # unreadable: never taken for complete
    (tmp_path / "run" / "run.json").unlink()
    (tmp_path / "run" / "model.keras").write_text("m")
    assert rd.status() == {}
    (tmp_path / "run" / "config.toml").write_text("")
    assert rd.status() == {"status": "complete"}  # written before run.json existed


def test_config_differences_name_each_setting_but_not_the_volatile_ones():
    old = _config()
    assert config_differences(old, _config(strategy="MirroredStrategy")) == []
    new = _config(epochs=3, lr=1e-2)
    new["recipe"]["calibrate"] = False  # calibration is not part of a run's identity
    assert config_differences(old, new) == ["recipe.stages[0].epochs: 2 -> 3",
                                            "recipe.stages[0].learning_rate: 0.001 -> 0.01"]
    assert config_differences(old, _config(seed=1) | {"extra": {"k": 1}}) == [
        "extra.k: '<unset>' -> 1", "run.seed: 0 -> 1"]


def test_resumes_the_same_settings_and_names_a_clash(tmp_path):
    lines = []
    rd = RunDir(tmp_path, log=lines.append)
    assert rd.read_config() is None and not rd.resumes(_config(), overwrite=False)
    rd.write_config(_config())
    assert rd.read_config() == _config()
    assert rd.resumes(_config(strategy="MirroredStrategy"), overwrite=False)
    assert lines == [f"resuming the unfinished run in {tmp_path} (same settings)"]
    with pytest.raises(UserError, match=r"different settings \(recipe\.stages\[0\]\.epochs: 2 -> 3\)"
                                        r".*Received: run_dir="):
        rd.resumes(_config(epochs=3), overwrite=False)
    (tmp_path / "keep_me.txt").write_text("user file")
    assert not rd.resumes(_config(epochs=3), overwrite=True)  # cleared: a fresh run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep_me.txt"]
    assert lines[-1].startswith("overwrite=True: removed the previous run's config.toml")


def test_a_complete_run_is_refused_unless_overwrite(tmp_path):
    rd = RunDir(tmp_path)
    rd.write_status("complete")
    (tmp_path / "model.keras").write_text("m")
    with pytest.raises(UserError, match=r"already holds a complete run \(model\.keras, run\.json\)"):
        rd.refuse_complete(overwrite=False)
    assert (tmp_path / "model.keras").is_file()
    rd.refuse_complete(overwrite=True)
    assert not any(tmp_path.iterdir())
    RunDir(tmp_path).refuse_complete(overwrite=False)  # nothing there: nothing to refuse


def test_undo_restores_an_existing_directory_exactly(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text("old log\n")
    (run / "history.csv").write_text("old history")
    (run / "user.txt").write_text("mine")
    rd = RunDir(run)
    with pytest.raises(RuntimeError, match="boom"), rd.preparing():
        rd.append_log("a new line")
        rd.clear()  # set aside, not deleted, while preparing
        (run / "manifest.json").write_text("{}")
        assert not (run / "history.csv").exists()
        raise RuntimeError("boom")
    assert rd.undo is None
    assert sorted(p.name for p in run.iterdir()) == ["history.csv", "train.log", "user.txt"]
    assert (run / "train.log").read_text() == "old log\n"
    assert (run / "history.csv").read_text() == "old history"
    with rd.preparing():  # success: the replaced run is gone, the new files stay
        rd.clear()
        rd.append_log("new")
    assert sorted(p.name for p in run.iterdir()) == ["train.log", "user.txt"]
    assert (run / "train.log").read_text() == "new\n"


def test_undo_removes_a_directory_it_created(tmp_path):
    rd = RunDir(tmp_path / "a" / "b" / "run")
    with pytest.raises(UserError), rd.preparing():
        rd.check_writable()
        rd.write_status("running")
        raise UserError("one class only")
    assert not (tmp_path / "a").exists()


def test_unwritable_and_full_locations_fail_clearly(tmp_path, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("a file, so no directory can be created under it")
    with pytest.raises(UserError, match=r"Cannot write the run directory .*afile/run.*Received: run_dir="):
        RunDir(blocker / "run").check_writable()
    rd = RunDir(tmp_path / "full")
    rd.check_writable()
    assert not any((tmp_path / "full").iterdir())  # the probe file is gone
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, (1 << 30) - (1 << 20), 1 << 20))
    rd.check_free_space(1 << 19)
    with pytest.raises(UserError, match=r"Not enough free space .* 1 MiB free, about 64 MiB needed"):
        rd.check_free_space(64 << 20)


def test_history_csv_keeps_every_column_in_order(tmp_path):
    rd = RunDir(tmp_path)
    rows = [{"stage": "head", "epoch": 1, "loss": 0.5},
            {"stage": "all", "epoch": 1, "loss": 0.25, "val_loss": 0.75}]
    rd.write_history(rows)
    with open(tmp_path / "history.csv", newline="") as fh:
        assert list(csv.reader(fh)) == [["stage", "epoch", "loss", "val_loss"],
                                        ["head", "1", "0.5", ""], ["all", "1", "0.25", "0.75"]]
    rd.write_history([])
    assert (tmp_path / "history.csv").read_text().strip() == "stage,epoch"


def test_metrics_merge_keeps_other_keys(tmp_path):
    rd = RunDir(tmp_path)
    rd.merge_metrics({"accuracy": np.float32(0.5), "per_class": {"a": 1}})
    rd.merge_metrics({"train_seconds": 2.0})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        "accuracy": 0.5, "per_class": {"a": 1}, "train_seconds": 2.0}


def test_finished_stage_keeps_weights_and_state_only(tmp_path):
    rd = RunDir(tmp_path)
    stage = tmp_path / "checkpoints" / "1_all"
    write_state(str(stage), {"epochs_done": 2, "history": {"loss": [1.0, 0.5]}})
    (stage / "ckpt-2.index").write_text("x")
    (stage / "best").mkdir()
    assert rd.stage_state("1_all")["epochs_done"] == 2
    assert rd.stage_dir("1_all") == stage
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.optimizer = keras.optimizers.Adam()
    rd.save_stage_weights(model, "1_all")
    assert model.optimizer is not None  # put back after the write
    assert sorted(p.name for p in stage.iterdir()) == ["state.json"]
    assert rd.stage_weights("1_all").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1_all", "1_all.weights.h5"]
    rd.remove_stage("1_all")  # a fresh run never resumes another run's stage
    assert not any((tmp_path / "checkpoints").iterdir()) and rd.stage_state("1_all") is None


def test_artefacts_list_is_what_overwrite_removes(tmp_path):
    rd = RunDir(tmp_path)
    for name in RUN_ARTEFACTS:
        (tmp_path / name).write_text("x")
    (tmp_path / "notes.md").write_text("mine")
    assert rd.clear() == list(RUN_ARTEFACTS)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]
