"""Per-block learning rates (Stage.layer_decay / Stage.block_lr) and weight EMA (Stage.ema)
in the learner's training loop, under the default strategy, MirroredStrategy (two logical
CPUs) and MultiWorkerMirroredStrategy (two worker processes).

The update-size check: after ONE Adam step from the same weights, an element's update is
``lr * g / (|g| + eps)``, i.e. +-lr wherever the gradient is not tiny, so the largest
update in each block is the block's learning rate. The ratio to the head's must be the
block's multiplier.

The distributed scenarios run this file as a script in a fresh interpreter (devices and
MultiWorkerMirroredStrategy must be set before TensorFlow starts):
``python tests/test_block_lr.py MODE OUT_JSON RUN_DIR [TASK_INDEX PORT0 PORT1]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _subproc import communicate_all, free_port, subprocess_env

HERE = Path(__file__).resolve()
LR = 1e-3


def _data():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    keep = y < 3
    return x[keep][:40], y[keep][:40]


def _recipe(**rates):
    from tl_kit.recipes import Recipe, Stage

    # one stage of one step (batch >= the train split), no dropout / augmentation, so every
    # replica and every run sees the same gradient
    return Recipe(name="rates", dropout=0.0, calibrate=False, stages=[Stage(
        name="all", trainable="all", epochs=1, batch_size=64, learning_rate=LR, optimizer="adam",
        early_stopping=0, augment="none", cache_features=False, **rates)])


def _block_updates(strategy, run_dir: str, **rates) -> dict[str, float]:
    """Largest |weight change| per block (and 'head') after one step, divided by LR."""
    import keras

    from tl_kit.backbones import assign_blocks
    from tl_kit.train import Learner

    keras.utils.set_random_seed(0)
    x, y = _data()
    learner = Learner("lenet5", 3, weights=None, recipe=_recipe(**rates), run_dir=run_dir,
                      strategy=strategy, verbose=0, tensorboard=False, seed=0, save_model=False)
    groups = dict(zip(learner.blocks, assign_blocks(learner.backbone, learner.blocks), strict=True))
    head = [layer for layer in learner.model.layers if layer.name == "predictions"]
    before = {k: [w.numpy().copy() for layer in g for w in layer.weights] for k, g in groups.items()}
    before["head"] = [w.numpy().copy() for layer in head for w in layer.weights]
    learner.fit((x, y))
    after = {k: [w.numpy() for layer in g for w in layer.weights] for k, g in groups.items()}
    after["head"] = [w.numpy() for layer in head for w in layer.weights]
    return {k: max(float(np.max(np.abs(a - b))) for a, b in zip(after[k], before[k], strict=True)) / LR
            for k in before}


def _check_ratios(updates: dict[str, float], expected: dict[str, float]) -> None:
    head = updates["head"]
    assert head == pytest.approx(1.0, rel=0.02)  # the head at the stage's rate
    for block, mult in expected.items():
        assert updates[block] / head == pytest.approx(mult, rel=0.02), (block, updates)


# lenet5 declares two blocks, block1_ and block2_; the head is the last block.
DECAY = {"block1_": 0.5**2, "block2_": 0.5}
EXPLICIT = {"block1_": 0.25, "block2_": 1.0}  # block_lr={"1": 0.25}: block 2 not named


def test_layer_decay_and_explicit_multipliers_set_update_sizes(tmp_path):
    plain = _block_updates("default", str(tmp_path / "plain"))
    assert all(v == pytest.approx(1.0, rel=0.02) for v in plain.values()), plain
    _check_ratios(_block_updates("default", str(tmp_path / "decay"), layer_decay=0.5), DECAY)
    _check_ratios(_block_updates("default", str(tmp_path / "explicit"), block_lr={"1": 0.25}), EXPLICIT)
    zero = _block_updates("default", str(tmp_path / "zero"), block_lr={"block1_": 0, "head": 1})
    assert zero["block1_"] == 0.0 and zero["block2_"] > 0.5  # multiplier 0: that block does not move


def test_bad_settings_are_clear_user_errors():
    import keras

    from tl_kit.block_lr import block_multipliers
    from tl_kit.errors import UserError
    from tl_kit.models import build_model
    from tl_kit.recipes import Stage

    with pytest.raises(UserError, match="either layer_decay or block_lr"):
        Stage(layer_decay=0.7, block_lr={"head": 1.0})
    with pytest.raises(UserError, match=r"layer_decay must be in \(0, 1\]"):
        Stage(layer_decay=1.5)
    with pytest.raises(UserError, match="numbers >= 0"):
        Stage(block_lr={"head": -1})
    with pytest.raises(UserError, match="ema"):
        Stage(ema=1.0)
    net = build_model("lenet5", include_top=False, weights=None, input_shape=(32, 32, 1))
    with pytest.raises(UserError, match=r"'block9', which is not a block.*position 1\.\.2.*'block1_'"):
        block_multipliers(net, ("block1_", "block2_"), block_lr={"block9": 0.1})
    assert isinstance(net, keras.Model)


def test_rates_survive_a_toml_round_trip(tmp_path):
    from tl_kit.recipes import Recipe, Stage, load_recipe

    recipe = Recipe(name="r", stages=[Stage(layer_decay=0.65, ema=0.99),
                                      Stage(block_lr={"head": 1.0, "3": 0.5})])
    path = tmp_path / "r.toml"
    path.write_text(recipe.to_toml())
    back = load_recipe(path)
    assert back.stages[0].layer_decay == 0.65 and back.stages[0].ema == 0.99
    assert back.stages[1].block_lr == {"head": 1.0, "3": 0.5}
    assert "layer_decay" not in Recipe(name="plain").to_toml()  # old runs' config.toml unchanged


def test_ema_gives_the_model_the_averaged_weights(tmp_path):
    """ema=0.999 over 2 epochs of 4 steps: the moving average starts at the weights after
    the first step and barely moves after that, so the model ends about ONE step away from
    where it started; without ema it ends several steps away."""
    import keras

    from tl_kit.recipes import Recipe, Stage
    from tl_kit.train import Learner

    x, y = _data()
    moved = {}
    for name, ema in (("raw", None), ("ema", 0.999)):
        keras.utils.set_random_seed(0)
        recipe = Recipe(name=name, dropout=0.0, calibrate=False, stages=[Stage(
            name="all", trainable="all", epochs=2, batch_size=8, learning_rate=LR,
            early_stopping=0, augment="none", cache_features=False, ema=ema)])
        learner = Learner("lenet5", 3, weights=None, recipe=recipe, run_dir=tmp_path / name,
                          verbose=0, tensorboard=False, seed=0, save_model=False)
        start = {v.path: v.numpy().copy() for v in learner.model.trainable_variables}
        learner.fit((x, y))
        end = {v.path: v.numpy() for v in learner.model.weights if v.path in start}
        assert set(end) == set(start)
        moved[name] = max(float(np.max(np.abs(end[k] - start[k]))) for k in start) / LR
    assert moved["ema"] < 1.3  # about one Adam step (each element moves <= lr per step)
    assert moved["raw"] > 2.5  # several steps: the ema run's weights are the average


def test_layer_decay_under_mirrored_strategy(tmp_path):
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(HERE), "mirrored", str(out), str(tmp_path / "run")],
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    _check_ratios(result["updates"], DECAY)


def test_layer_decay_under_multiworker_strategy(tmp_path):
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen(
        [sys.executable, str(HERE), "worker", str(tmp_path / f"out{i}.json"), str(tmp_path / "run"),
         str(i), *map(str, ports)],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    logs = communicate_all(procs, timeout=600)
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    for i in range(2):
        result = json.loads((tmp_path / f"out{i}.json").read_text())
        assert result["replicas"] == 2
        _check_ratios(result["updates"], DECAY)


def _main(argv: list[str]) -> None:
    mode, out, run_dir = argv[:3]
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        index, ports = int(argv[3]), argv[4:6]
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index}})
        strategy = "multiworker"
    updates = _block_updates(strategy, run_dir, layer_decay=0.5)
    from tl_kit import distribute as dist

    replicas = dist.resolve_strategy(strategy).num_replicas_in_sync if isinstance(strategy, str) \
        else strategy.num_replicas_in_sync
    Path(out).write_text(json.dumps({"updates": updates, "replicas": replicas}))


if __name__ == "__main__":
    _main(sys.argv[1:])


def test_cli_train_reads_per_block_rates_from_a_recipe_file(tmp_path, capsys):
    """``tl-kit train recipe.toml``: the stage's layer_decay reaches the optimizer (the log
    lists each trainable block's multiplier) and ema is accepted."""
    from _paths import TEXTURES

    from tl_kit.cli import main

    recipe = tmp_path / "decay.toml"
    recipe.write_text(
        'name = "decay"\nimage_size = 32\ncalibrate = false\n'
        '[[stages]]\nname = "all"\ntrainable = "all"\nepochs = 1\nbatch_size = 32\n'
        'augment = "none"\ncache_features = false\nlayer_decay = 0.5\nema = 0.9\n')
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--data", str(TEXTURES), "--backbone", "lenet5",
                 "--weights", "none", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    log = (run / "train.log").read_text()
    assert "per-block learning rates: block1_ x0.25, block2_ x0.5" in log, log
