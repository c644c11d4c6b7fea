"""Resilience of the learner's run directory: SIGKILL + resume, NaN stop, unwritable or full
output locations, and the overwrite / resume / clash rules (LeNet-5 at 32x32 on digits)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from _subproc import subprocess_env

from tl_kit.distribute import NonFiniteLossError
from tl_kit.errors import UserError
from tl_kit.recipes import Recipe, Stage
from tl_kit.train import Learner, finetune

# A training script the test kills and reruns: two stages, a slow epoch so the kill lands
# in the middle of stage 2 (the sleep is the script's, not the library's).
SCRIPT = r'''
import os, sys, time
import keras
import numpy as np
from tl_kit.demo import digits_32
from tl_kit.recipes import Recipe, Stage
from tl_kit import train as T

x, y = digits_32()
keep = y < 3
x, y = x[keep][:60], y[keep][:60]
if os.environ.get("SLOW_EPOCHS"):
    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(float(os.environ["SLOW_EPOCHS"]))
    original = T.Learner._callbacks
    T.Learner._callbacks = lambda self, *a, **k: original(self, *a, **k) + [Slow()]
recipe = Recipe(name="kill", dropout=0.0, stages=[
    Stage(name="head", epochs=2, cache_copies=0, early_stopping=0, augment="none"),
    Stage(name="all", trainable="all", epochs=4, early_stopping=0, augment="none",
          batch_size=16)])
T.finetune("lenet5", data=(x, y), weights=None, run_dir=sys.argv[1], recipe=recipe,
           verbose=1, tensorboard=False, seed=1)
print("TRAINING DONE", flush=True)
'''


def _rows(run: Path) -> list[tuple[str, str]]:
    with open(run / "history.csv") as f:
        return [(r["stage"], r["epoch"]) for r in csv.DictReader(f)]


def test_sigkill_mid_stage_then_rerun_resumes_stage_and_epoch(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    state = run / "checkpoints" / "2_all" / "state.json"
    proc = subprocess.Popen([sys.executable, str(script), str(run)], env=subprocess_env(SLOW_EPOCHS="1.5"),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file() and json.loads(state.read_text())["epochs_done"] >= 1:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()[-3000:]
        assert state.is_file(), "no epoch of stage 2 finished within 120 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    done_before = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done_before < 4
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    assert not (run / "model.keras").exists()

    # the same command again: resumes stage 2 after its last finished epoch
    again = subprocess.run([sys.executable, str(script), str(run)], env=subprocess_env(), cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert "TRAINING DONE" in out
    assert "resumed: stage 1 'head' was finished (2 epochs)" in out
    assert f"resumed: stage 2 'all' continues at epoch {done_before + 1}/4" in out
    assert "feature cache" not in out  # stage 1 was not trained again
    epoch_lines = [line for line in out.splitlines() if line.startswith("[tl_kit] Epoch ")]
    assert len(epoch_lines) == 4 - done_before  # only the missing epochs ran
    rows = _rows(run)
    assert rows == [("head", "1"), ("head", "2"), ("all", "1"), ("all", "2"), ("all", "3"), ("all", "4")]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    model = keras.saving.load_model(run / "model.keras")
    probs = model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    assert probs.shape == (2, 3) and np.all(np.isfinite(probs))
    log = (run / "train.log").read_text()
    assert log.count("resuming the unfinished run") == 1


@pytest.fixture(scope="module")
def digits():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    keep = y < 3
    return x[keep][:45], y[keep][:45]


def _recipe(epochs: int = 2, lr: float = 1e-3, **kw) -> Recipe:
    return Recipe(name="r", dropout=0.0, stages=[
        Stage(name="all", trainable="all", epochs=epochs, augment="none", early_stopping=0,
              batch_size=8, learning_rate=lr, **kw)])


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
        tmp_path, digits, monkeypatch):
    x, y = digits
    # 1) NaN pixels in the data (a learning rate of 1e30 only saturates LeNet-5's units,
    #    the loss stays finite): non-finite in the first epoch, a clear error
    bad = x.copy()
    bad[:, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"non-finite in epoch 1/2.*check the inputs for NaN"):
        finetune("lenet5", data=(bad, y), weights=None, run_dir=tmp_path / "nan", verbose=0,
                 tensorboard=False, recipe=_recipe())
    assert json.loads((tmp_path / "nan" / "run.json").read_text())["status"] == "failed"
    assert "non-finite" in (tmp_path / "nan" / "train.log").read_text()

    # 2) NaN weights injected at the start of epoch 2: epoch 1's checkpoint stays good
    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.set_weights([np.full(w.shape, np.nan, "float32") for w in self.model.get_weights()])

    original = Learner._callbacks
    monkeypatch.setattr(Learner, "_callbacks", lambda self, *a, **k: original(self, *a, **k) + [Poison()])
    run = tmp_path / "poison"
    learner = Learner("lenet5", 3, weights=None, run_dir=run, verbose=0, tensorboard=False,
                      recipe=_recipe(epochs=3))
    with pytest.raises(NonFiniteLossError, match="epoch 2/3") as info:
        learner.fit((x, y))
    assert info.value.result.history["loss"] and len(info.value.result.history["loss"]) == 1
    weights = learner.model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)  # reset to the last good epoch
    ckpts = run / "checkpoints" / "1_all"
    assert (ckpts / "ckpt-1.index").is_file() and not (ckpts / "ckpt-2.index").exists()
    assert _rows(run) == [("all", "1")]
    assert json.loads((ckpts / "state.json").read_text())["epochs_done"] == 1


def test_unwritable_or_full_output_fails_before_training(tmp_path, digits, monkeypatch):
    import tl_kit.distribute as dist

    x, y = digits
    calls = []
    monkeypatch.setattr(dist, "custom_fit", lambda *a, **k: calls.append(1))
    blocker = tmp_path / "afile"
    blocker.write_text("a regular file, so no directory can be created under it (even as root)")
    with pytest.raises(UserError, match=r"Cannot write the run directory .*afile/run"):
        finetune("lenet5", data=(x, y), weights=None, run_dir=blocker / "run", verbose=0,
                 tensorboard=False, recipe=_recipe())
    # a full disk: 1 MiB free
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, (1 << 30) - (1 << 20), 1 << 20))
    with pytest.raises(UserError, match=r"Not enough free space .* 1 MiB free"):
        finetune("lenet5", data=(x, y), weights=None, run_dir=tmp_path / "full", verbose=0,
                 tensorboard=False, recipe=_recipe())
    assert calls == []  # no training started
    assert not (tmp_path / "full" / "history.csv").exists()


def test_complete_runs_are_not_overwritten_unless_asked_and_clashes_are_named(tmp_path, digits):
    x, y = digits
    run = tmp_path / "run"
    kw = dict(data=(x, y), weights=None, run_dir=run, verbose=0, tensorboard=False)
    finetune("lenet5", recipe=_recipe(epochs=1), **kw)
    first_model = (run / "model.keras").stat().st_mtime_ns
    with pytest.raises(UserError, match=r"already holds a complete run.*overwrite=True"):
        finetune("lenet5", recipe=_recipe(epochs=1), **kw)
    assert (run / "model.keras").stat().st_mtime_ns == first_model  # untouched
    (run / "keep_me.txt").write_text("user file")
    finetune("lenet5", recipe=_recipe(epochs=2), overwrite=True, **kw)
    assert _rows(run) == [("all", "1"), ("all", "2")]  # a fresh run, each epoch once
    assert (run / "keep_me.txt").read_text() == "user file"  # only tl_kit's files replaced
    assert "overwrite=True: removed" in (run / "train.log").read_text()

    # an unfinished run (as if killed after its last epoch) with other settings: named clash
    state = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**state, "status": "running"}))
    with pytest.raises(UserError, match=r"different settings \(recipe\.stages\[0\]\.epochs: 2 -> 3; "
                                        r"recipe\.stages\[0\]\.learning_rate: 0\.001 -> 0\.01\)"):
        finetune("lenet5", recipe=_recipe(epochs=3, lr=1e-2), **kw)
    # the same settings resume: the finished stage is not trained again
    learner = finetune("lenet5", recipe=_recipe(epochs=2), **kw)
    assert "resumed: stage 1 'all' was finished (2 epochs)" in "\n".join(
        (run / "train.log").read_text().splitlines()[-8:])
    assert [(r["stage"], r["epoch"]) for r in learner.history] == [("all", 1), ("all", 2)]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
