"""Tests for tl_kit.distribute: strategies, precision, XLA choice and custom_fit.

Multi-device scenarios (two logical CPUs, two worker processes) run in fresh processes
through tests/distribute/_dist_worker.py, because device layout and MultiWorkerMirroredStrategy must
be set before TensorFlow initialises.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _paths import ROOT
from _subproc import communicate_all, free_port, subprocess_env

from tl_kit import distribute as dist
from tl_kit.distribute import precision

WORKER = Path(__file__).with_name("_dist_worker.py")


# === Multi-device (subprocesses) ===


def test_mirrored_two_cpu_devices_match_one_device(tmp_path):
    """Same global batch (16), SGD, fixed data order: weights agree within 1e-6 (abs)."""
    out = tmp_path / "mirrored.json"
    proc = subprocess.run(
        [sys.executable, str(WORKER), "mirrored", str(out)],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["replicas"] == 2
    assert report["moved"] > 1e-3  # training changed the weights
    assert report["custom_max_diff"] < 1e-6  # custom_fit, 2 replicas vs 1 device
    assert report["custom_xla_max_diff"] < 1e-6  # same with the replica step under XLA
    assert report["custom_spe_max_diff"] < 1e-6  # same with 3 steps per graph call
    assert report["fit_max_diff"] < 1e-6  # Keras fit under MirroredStrategy
    assert report["custom_vs_fit_max_diff"] < 1e-6  # custom_fit == Keras fit
    np.testing.assert_allclose(report["loss_one"], report["loss_two"], rtol=1e-5)


def test_a_replica_with_an_empty_batch_adds_nothing(tmp_path):
    """17 examples in global batches of 16 on two replicas: the last step gives one replica no
    example (as a worker whose file shard ran out a step early). Training and validation
    run through it, and the weights and losses match one device."""
    out = tmp_path / "empty.json"
    proc = subprocess.run([sys.executable, str(WORKER), "mirrored_empty", str(out)], env=subprocess_env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["max_diff"] < 1e-6
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(report["history"]["one"][key], report["history"]["two"][key], rtol=1e-5)


def test_two_workers_train_to_the_end_and_only_chief_writes_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs: list[subprocess.Popen] = []
    outs = [tmp_path / f"worker{i}.json" for i in range(2)]
    try:
        for i in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), "worker", str(outs[i]), str(run_dir)],
                    env=subprocess_env(TF_CONFIG=tf_config),
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    finally:
        logs = communicate_all(procs, timeout=120)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(s[-2000:] for s in logs)
    chief, other = (json.loads(o.read_text()) for o in outs)
    try:
        assert chief["strategy"] == other["strategy"] == "CollectiveAllReduceStrategy"
        assert chief["replicas"] == other["replicas"] == 2
        assert chief["chief"] is True and other["chief"] is False
        # Both ran 3 epochs in lockstep and ended with identical weights.
        assert len(chief["history"]["loss"]) == 3
        assert chief["history"] == other["history"]
        assert chief["first_kernel_sum"] == pytest.approx(other["first_kernel_sum"], abs=1e-6)
        # One progress line per epoch, from the chief only.
        assert len(chief["lines"]) == 3 and chief["lines"][-1].startswith("Epoch 3/3")
        assert other["lines"] == []
        # The chief's run directory is complete and holds nothing else.
        ckpt_dir = run_dir / "checkpoints"
        assert chief["write_dir"] == str(ckpt_dir)
        assert sorted(os.listdir(run_dir)) == ["checkpoints", "history.csv"]
        assert {"state.json", "checkpoint", "ckpt-3.index", "best"} <= set(os.listdir(ckpt_dir))
        state = json.loads((ckpt_dir / "state.json").read_text())
        assert state["epochs_done"] == 3 and state["replicas"] == 2
        assert len((run_dir / "history.csv").read_text().strip().splitlines()) == 4
        # The other worker saved too (collective), but elsewhere.
        assert not other["write_dir"].startswith(str(run_dir))
        assert other["write_dir"].startswith(tempfile.gettempdir())
        assert "ckpt-3.index" in other["write_dir_files"]
    finally:
        shutil.rmtree(Path(other["write_dir"]).parent, ignore_errors=True)


# === Strategy resolution ===


def test_resolve_strategy_choices(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    default = tf.distribute.get_strategy()
    assert dist.resolve_strategy("auto") is default  # CPU only, no cluster
    assert dist.resolve_strategy("default") is default
    assert dist.resolve_strategy(None) is default
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert dist.resolve_strategy(mirrored) is mirrored
    assert isinstance(dist.resolve_strategy("mirrored"), tf.distribute.MirroredStrategy)
    assert dist.is_chief(default) and dist.is_chief(mirrored)
    assert dist.worker_dir("runs/x", default) == "runs/x"


@pytest.mark.parametrize("bad", ["bogus", 3, "tpu"])
def test_resolve_strategy_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=rf"Received: strategy={bad!r}$"):
        dist.resolve_strategy(bad)


def test_tf_config_parsing(monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"], "chief": ["127.0.0.1:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {}}))
    assert dist.cluster_size() == 3
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        dist.cluster_size()
    monkeypatch.delenv("TF_CONFIG")
    assert dist.cluster_size() == 0


class _FakeStrategy:
    def __init__(self, cluster: dict, task_type: str, task_id: int):
        spec = tf.train.ClusterSpec(cluster)
        self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            spec, task_type=task_type, task_id=task_id
        )


def test_is_chief_and_worker_dir_follow_tf_convention(tmp_path):
    workers = {"worker": ["h:1", "h:2"]}
    with_chief = {"chief": ["h:0"], "worker": ["h:1"]}
    assert dist.is_chief(_FakeStrategy(workers, "worker", 0))
    assert not dist.is_chief(_FakeStrategy(workers, "worker", 1))
    assert dist.is_chief(_FakeStrategy(with_chief, "chief", 0))
    assert not dist.is_chief(_FakeStrategy(with_chief, "worker", 0))
    run_dir = str(tmp_path / "run")
    assert dist.worker_dir(run_dir, _FakeStrategy(workers, "worker", 0)) == run_dir
    other = dist.worker_dir(run_dir, _FakeStrategy(workers, "worker", 1))
    assert other.startswith(tempfile.gettempdir()) and not other.startswith(run_dir)
    assert other == dist.worker_dir(run_dir, _FakeStrategy(workers, "worker", 1))  # stable
    assert other.endswith("worker_1")


def test_distribute_dataset_sets_sharding(tmp_path):
    strategy = tf.distribute.get_strategy()
    mem = tf.data.Dataset.from_tensor_slices(np.zeros((4, 2), "float32")).batch(2)
    policy = tf.data.experimental.AutoShardPolicy
    out = dist.distribute_dataset(strategy, mem)
    assert out.options().experimental_distribute.auto_shard_policy == policy.DATA
    path = str(tmp_path / "a.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(b"x")
    files = tf.data.TFRecordDataset([path]).batch(1)
    out = dist.distribute_dataset(strategy, files)
    assert out.options().experimental_distribute.auto_shard_policy == policy.FILE
    out = dist.distribute_dataset(strategy, files, sharding="data")
    assert out.options().experimental_distribute.auto_shard_policy == policy.DATA
    with pytest.raises(ValueError, match="Received: sharding='rows'"):
        dist.distribute_dataset(strategy, mem, sharding="rows")
    with pytest.raises(TypeError, match="Received: dataset=ndarray"):
        dist.distribute_dataset(strategy, np.zeros(3))


def test_scale_learning_rate():
    assert dist.scale_learning_rate(0.1, 512) == pytest.approx(0.2)
    assert dist.scale_learning_rate(0.1, 1024, rule="sqrt") == pytest.approx(0.2)
    assert dist.scale_learning_rate(0.1, 64, base_batch=32, rule=None) == 0.1
    with pytest.raises(ValueError, match="Received: rule='cubic'"):
        dist.scale_learning_rate(0.1, 64, rule="cubic")
    with pytest.raises(ValueError, match="global_batch=0"):
        dist.scale_learning_rate(0.1, 0)


# === Precision and XLA ===


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ([], "float32"),
        ([(6, 1)], "float32"),
        ([(7, 0)], "mixed_float16"),
        ([(7, 5)], "mixed_float16"),
        ([(8, 0)], "mixed_bfloat16"),
        ([(9, 0), (9, 0)], "mixed_bfloat16"),
        ([(9, 0), (7, 0)], "mixed_float16"),  # the weakest GPU decides
    ],
)
def test_resolve_precision_auto(monkeypatch, caps, expected):
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: caps)
    assert dist.resolve_precision("auto") == expected


def test_resolve_precision_explicit_and_errors():
    assert dist.resolve_precision("auto") == "float32"  # this machine has no GPU
    assert dist.resolve_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="Received: precision='fp8'"):
        dist.resolve_precision("fp8")


def test_apply_precision_sets_global_policy():
    try:
        assert dist.apply_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        dense = keras.layers.Dense(2, dtype="float32")
        assert dense.compute_dtype == "float32"  # a float32 head stays float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _tiny(extra: list | None = None) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            *(extra or []),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def test_resolve_jit_compile(monkeypatch):
    plain, rotating = _tiny(), _tiny([keras.layers.RandomRotation(0.1)])
    assert dist.resolve_jit_compile("auto", None, plain) is False  # CPU: off
    assert dist.resolve_jit_compile(True, None, plain) is True
    assert dist.resolve_jit_compile(True, None, rotating) is False  # cannot compile
    assert dist.resolve_jit_compile(False, None, plain) is False
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [(9, 0)])
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert dist.resolve_jit_compile("auto", None, plain) is True
    assert dist.resolve_jit_compile("auto", None, rotating) is False
    assert dist.resolve_jit_compile("auto", mirrored, plain) is True  # custom_fit
    assert dist.resolve_jit_compile("auto", mirrored, plain, loop="fit") is False  # Keras rule
    with pytest.raises(ValueError, match="Received: jit_compile='yes'"):
        dist.resolve_jit_compile("yes")


# === custom_fit (single process, default strategy) ===


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def _net():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    return model, keras.optimizers.SGD(0.1, momentum=0.9)


def _fit(ckpt_dir, epochs, ds=None, **kw):
    model, opt = _net()
    lines: list[str] = []
    result = dist.custom_fit(
        model,
        opt,
        "categorical_crossentropy",
        ds or _data(),
        _data(24, 1),
        epochs=epochs,
        checkpoint_dir=ckpt_dir,
        log=lines.append,
        restore_best_weights=False,
        **kw,
    )
    return model, result, lines


def test_custom_fit_resumes_after_last_finished_epoch(tmp_path):
    ckpt, csv = tmp_path / "ck", tmp_path / "history.csv"
    straight, full, _ = _fit(None, 4)
    _, first, _ = _fit(ckpt, 2, history_csv=csv)
    assert first.initial_epoch == 0 and len(first.history["loss"]) == 2
    model, second, lines = _fit(ckpt, 4, history_csv=csv)
    assert second.initial_epoch == 2 and lines[0].startswith("Resuming at epoch 3/4")
    assert [ln.split(" - ")[0] for ln in lines[1:]] == ["Epoch 3/4", "Epoch 4/4"]
    assert second.epoch == [0, 1, 2, 3]
    assert set(second.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in second.history.items():  # each epoch once, same as a straight run
        np.testing.assert_allclose(values, full.history[key], rtol=1e-5, atol=1e-6)
    for a, b in zip(model.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # optimizer state restored
    assert len(csv.read_text().strip().splitlines()) == 5
    _, third, lines = _fit(ckpt, 4)
    assert third.stop_reason == "already_finished" and third.initial_epoch == 4
    assert not [ln for ln in lines if ln.startswith("Epoch")]


def test_custom_fit_stops_on_nan_and_keeps_last_good_checkpoint(tmp_path):
    ckpt = tmp_path / "ck"
    good, _, _ = _fit(ckpt, 2)
    x = np.ones((32, 6), "float32")
    y = np.full((32, 3), np.nan, "float32")  # corrupt labels: the loss turns NaN
    poisoned = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model, opt = _net()
    with pytest.raises(
        dist.NonFiniteLossError, match=r"epoch 3/4.*last good checkpoint \(epoch 2\)"
    ) as info:
        dist.custom_fit(
            model,
            opt,
            "categorical_crossentropy",
            poisoned,
            epochs=4,
            checkpoint_dir=ckpt,
            verbose=0,
        )
    assert info.value.result.initial_epoch == 2 and len(info.value.result.history["loss"]) == 2
    for a, b in zip(model.get_weights(), good.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)  # the model was reset to the last good epoch
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epochs_done"] == 2 and (ckpt / "ckpt-2.index").exists()


def test_custom_fit_early_stopping_restores_best_weights(tmp_path):
    x_val = np.random.default_rng(1).normal(size=(24, 6)).astype("float32")
    # Validation labels contradict the training rule: val_loss rises as training improves.
    y_bad = np.eye(3, dtype="float32")[2 - ((x_val[:, 0] > 0).astype(int) + (x_val[:, 1] > 1))]
    val = tf.data.Dataset.from_tensor_slices((x_val, y_bad)).batch(16)
    model, opt = _net()
    result = dist.custom_fit(
        model,
        opt,
        "categorical_crossentropy",
        _data(),
        val,
        epochs=10,
        patience=2,
        checkpoint_dir=tmp_path / "ck",
        verbose=0,
    )
    assert result.stop_reason == "early_stopping"
    n = len(result.history["val_loss"])
    assert n < 10 and result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    best_model, _, _ = _fit(None, result.best_epoch)
    for a, b in zip(model.get_weights(), best_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _uneven(n=50, batch=16):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)  # 16, 16, 16, 2


@pytest.mark.parametrize("spe", [2, 3, 64])
def test_steps_per_execution_gives_the_same_training(tmp_path, spe):
    """Several steps per graph call (partial chunks, a short last batch, validation, class
    weights) train exactly like one step per call."""
    kw = dict(ds=_uneven(), class_weight={0: 2.0, 1: 1.0, 2: 0.5})
    ref_model, ref, _ = _fit(None, 3, **kw)
    model, res, lines = _fit(tmp_path / "ck", 3, steps_per_execution=spe, **kw)
    for key, values in ref.history.items():
        np.testing.assert_allclose(res.history[key], values, rtol=1e-6, atol=1e-7)
    for a, b in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert [ln.split(" - ")[0] for ln in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert (tmp_path / "ck" / "ckpt-3.index").exists()


def test_steps_per_execution_with_steps_per_epoch_on_a_repeated_dataset():
    """A fixed number of steps per epoch continues the same iterator across epochs."""
    ds = _uneven(48).repeat()
    ref_model, ref, _ = _fit(None, 3, ds=ds, steps_per_epoch=4)
    model, res, _ = _fit(None, 3, ds=ds, steps_per_epoch=4, steps_per_execution=3)
    np.testing.assert_allclose(res.history["loss"], ref.history["loss"], rtol=1e-6)
    for a, b in zip(model.get_weights(), ref_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="steps_per_execution"):
        _fit(None, 1, steps_per_execution=0)


def test_custom_fit_class_weight_and_errors(tmp_path):
    model, opt = _net()
    plain = dist.custom_fit(model, opt, "categorical_crossentropy", _data(), epochs=1, verbose=0)
    model, opt = _net()
    weighted = dist.custom_fit(
        model,
        opt,
        keras.losses.CategoricalCrossentropy(),
        _data(),
        epochs=1,
        verbose=0,
        class_weight={0: 3.0},
    )
    assert weighted.history["loss"][0] > plain.history["loss"][0] * 1.2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    lines: list[str] = []
    with pytest.raises(OSError, match="Cannot write checkpoints"):
        dist.custom_fit(
            model,
            opt,
            "categorical_crossentropy",
            _data(),
            epochs=1,
            checkpoint_dir=blocker / "ck",
            log=lines.append,
        )
    assert lines == []  # failed before training started
    with pytest.raises(ValueError, match="Received: epochs=0"):
        dist.custom_fit(model, opt, "categorical_crossentropy", _data(), epochs=0)
    with pytest.raises(ValueError, match="Received: monitor='val_loss'"):
        dist.custom_fit(
            model, opt, "categorical_crossentropy", _data(), epochs=1, monitor="val_loss"
        )


# === benchmarks/gpu_bench.py smoke test ===


def test_gpu_bench_quick_runs_on_cpu_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    modes = "float32,mixed_xla,default_strategy,mirrored_strategy"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_bench.py"),
            "--quick",
            "--model",
            "tiny",
            "--modes",
            modes,
            "--out",
            str(out),
        ],
        env=subprocess_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["backend"] == "tensorflow" and report["skipped"] == []
    assert [r["mode"] for r in report["results"]] == modes.split(",")
    mixed = report["results"][1]
    assert mixed["policy"] == "mixed_bfloat16" and mixed["jit_compile"] is True
    assert mixed["backbone_compute_dtype"] == "bfloat16"  # the policy really applied
    assert report["results"][0]["backbone_compute_dtype"] == "float32"
    assert all(r["images_per_s"] > 0 and np.isfinite(r["final_loss"]) for r in report["results"])
    assert "mirrored_strategy/default_strategy" in report["ratios"]
    assert "MirroredStrategy (1 device) / default strategy" in proc.stdout


# === Checkpoint policy (issue 16, point 11) and smoothed best epoch (point 12) ===


class _Interrupt(keras.callbacks.Callback):
    """Raises at the end of epoch ``at`` (0-based), before that epoch's checkpoint."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_checkpoint_interval_bounds_writes_and_files(tmp_path):
    """Every epoch (interval 0): one model + optimizer checkpoint kept, not one per epoch;
    a long interval: one write, at the end. The best weights hold no optimizer state."""
    every = tmp_path / "every"
    _, result, _ = _fit(every, 5, checkpoint_interval=0)
    assert result.checkpoint_writes == 5
    assert sorted(p for p in os.listdir(every) if p.startswith("ckpt-")) == [
        "ckpt-5.data-00000-of-00001", "ckpt-5.index"]
    rare = tmp_path / "rare"
    model, result, _ = _fit(rare, 5, checkpoint_interval=1e9)
    assert result.checkpoint_writes == 1
    state = json.loads((rare / "state.json").read_text())
    assert state["epochs_done"] == 5 and state["checkpoint"] == "ckpt-5"
    assert state["checkpoint_writes"] == 1
    # restore_best_weights: best weights as one .npz of the model's weights only
    best_dir = tmp_path / "best"
    model, opt = _net()
    result = dist.custom_fit(model, opt, "categorical_crossentropy", _data(), _data(24, 1), epochs=4,
                             checkpoint_dir=best_dir, checkpoint_interval=0, verbose=0)
    files = os.listdir(best_dir / "best")
    assert files == [f"weights-{result.best_epoch}.npz"]
    n_weights = sum(w.size for w in model.get_weights())
    with np.load(best_dir / "best" / files[0]) as best:
        assert sum(best[k].size for k in best.files) == n_weights
    with pytest.raises(ValueError, match="checkpoint_interval"):
        _fit(None, 1, checkpoint_interval=-1)


def test_resume_restarts_at_the_last_written_checkpoint_with_each_epoch_once(tmp_path):
    """Killed after epoch 5 with the last checkpoint at epoch 2: the rerun trains epochs 3-6
    again and matches a straight run exactly (history, weights, history.csv)."""
    ckpt, csv = tmp_path / "ck", tmp_path / "history.csv"
    straight, full, _ = _fit(None, 6)
    _fit(ckpt, 2, history_csv=csv, checkpoint_interval=0)
    with pytest.raises(KeyboardInterrupt):
        _fit(ckpt, 6, history_csv=csv, checkpoint_interval=1e9, callbacks=[_Interrupt(4)])
    assert json.loads((ckpt / "state.json").read_text())["epochs_done"] == 2
    model, resumed, lines = _fit(ckpt, 6, history_csv=csv, checkpoint_interval=1e9)
    assert resumed.initial_epoch == 2 and lines[0].startswith("Resuming at epoch 3/6")
    assert [ln.split(" - ")[0] for ln in lines[1:]] == [f"Epoch {e}/6" for e in range(3, 7)]
    for key, values in resumed.history.items():
        np.testing.assert_allclose(values, full.history[key], rtol=1e-5, atol=1e-6)
    for a, b in zip(model.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    rows = csv.read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_resume_restores_the_best_weights_written_with_the_checkpoint(tmp_path):
    """The best epoch's weights come back after a resume and are restored at the end."""
    x_val = np.random.default_rng(1).normal(size=(24, 6)).astype("float32")
    y_bad = np.eye(3, dtype="float32")[2 - ((x_val[:, 0] > 0).astype(int) + (x_val[:, 1] > 1))]
    val = tf.data.Dataset.from_tensor_slices((x_val, y_bad)).batch(16)

    def fit(epochs, **kw):
        model, opt = _net()
        res = dist.custom_fit(model, opt, "categorical_crossentropy", _data(), val, epochs=epochs,
                              checkpoint_dir=tmp_path / "ck", checkpoint_interval=0, verbose=0, **kw)
        return model, res

    model, ref = fit(6)
    shutil.rmtree(tmp_path / "ck")
    fit(3)
    resumed_model, res = fit(6)
    assert res.initial_epoch == 3 and res.best_epoch == ref.best_epoch
    for a, b in zip(resumed_model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_smoothing_picks_the_best_moving_average_epoch(tmp_path):
    """smoothing=3: the best epoch is the one ending the best 3-epoch mean of val_loss, and
    its weights are restored at the end (no early stop: patience None)."""
    model, opt = _net()
    result = dist.custom_fit(model, opt, "categorical_crossentropy", _data(), _data(24, 1),
                             epochs=8, smoothing=3, verbose=0)
    vl = np.array(result.history["val_loss"])
    means = [vl[max(0, i - 2):i + 1].mean() for i in range(len(vl))]
    assert result.stop_reason == "completed" and len(vl) == 8
    assert result.best_epoch == int(np.argmin(means)) + 1
    best_model, _, _ = _fit(None, result.best_epoch)
    for a, b in zip(model.get_weights(), best_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class _Poison(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            self.model.set_weights([np.full(w.shape, np.nan, "float32") for w in self.model.get_weights()])


def test_nan_resets_to_the_last_written_checkpoint_not_the_last_epoch(tmp_path):
    """Epochs 3-4 ran but were not checkpointed (long interval); NaN in epoch 5: the model
    and the returned history go back to epoch 2, the checkpoint state.json points to."""
    ckpt = tmp_path / "ck"
    good, _, _ = _fit(ckpt, 2, checkpoint_interval=0)
    model, opt = _net()
    with pytest.raises(dist.NonFiniteLossError, match=r"epoch 5/6.*last good checkpoint \(epoch 2\)") as info:
        dist.custom_fit(model, opt, "categorical_crossentropy", _data(), _data(24, 1), epochs=6,
                        checkpoint_dir=ckpt, checkpoint_interval=1e9, callbacks=[_Poison(4)],
                        restore_best_weights=False, verbose=0)
    assert len(info.value.result.history["loss"]) == 2
    assert json.loads((ckpt / "state.json").read_text())["epochs_done"] == 2
    for a, b in zip(model.get_weights(), good.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)  # reset to epoch 2, not to the unsaved epoch 4
