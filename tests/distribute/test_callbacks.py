"""Tests for tl_kit.distribute.callbacks, each callback on its own (and the loop's order)."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_kit import distribute as dist
from tl_kit.distribute import callbacks as cbs
from tl_kit.distribute.loop import FitCallbacks
from tl_kit.distribute.steps import EpochRunner, ReplicaSteps, per_example_loss
from tl_kit.errors import UserError

# Keras's CallbackList hands callbacks the logs with their keys sorted
SORTED_LOGS = ("accuracy", "loss", "val_accuracy", "val_loss")


def _model() -> keras.Model:
    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])


def _logs(loss: float, val_loss: float = 1.0) -> dict:
    values = {"accuracy": 0.5, "loss": loss, "val_accuracy": 0.5, "val_loss": val_loss}
    return {k: values[k] for k in SORTED_LOGS}


def _shift(model: keras.Model, by: float) -> list[np.ndarray]:
    """Move every weight by ``by``; returns the new weights."""
    model.set_weights([w + by for w in model.get_weights()])
    return model.get_weights()


def _assert_weights(model: keras.Model, expected: list[np.ndarray]) -> None:
    for a, b in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(a, b)


def _epoch(callbacks: list, epoch: int, logs: dict) -> None:
    for cb in callbacks:
        cb.on_epoch_end(epoch, dict(logs))


# === EpochHistory, HistoryCSV, EpochProgress ===


def test_history_keeps_the_stage_order_and_the_resumed_epochs(tmp_path):
    history = cbs.EpochHistory({"loss": [3.0], "accuracy": [0.1], "val_loss": [3.5], "val_accuracy": [0.0]})
    history.on_epoch_end(1, _logs(2.0, 2.5))
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history.history["loss"] == [3.0, 2.0] and history.epochs_done == 2
    assert list(history.last) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    fresh = cbs.EpochHistory()
    fresh.on_epoch_end(0, _logs(1.0))
    assert list(fresh.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]  # not sorted
    csv = tmp_path / "h.csv"
    cbs.HistoryCSV(csv, history).on_epoch_end(1)
    assert csv.read_text().splitlines() == [
        "epoch,loss,accuracy,val_loss,val_accuracy", "1,3,0.1,3.5,0", "2,2,0.5,2.5,0.5"]
    history.truncate(1)
    assert history.history["loss"] == [3.0] and history.epochs_done == 1


def test_progress_prints_one_line_per_epoch_in_history_order():
    history, lines = cbs.EpochHistory(), []
    progress = cbs.EpochProgress(lines.append, 7, history)
    progress.on_epoch_begin(2)
    history.on_epoch_end(2, _logs(0.25, 0.5))
    progress.on_epoch_end(2, {"learning_rate": 0.1, **_logs(9.0)})  # reads the history, not logs
    assert len(lines) == 1
    head, secs, *parts = lines[0].split(" - ")
    assert head == "Epoch 3/7" and secs.endswith("s") and float(secs[:-1]) < 5
    assert parts == ["loss: 0.2500", "accuracy: 0.5000", "val_loss: 0.5000", "val_accuracy: 0.5000"]


# === SmoothedEarlyStopping ===


def _stopping(model, **kw):
    history = cbs.EpochHistory()
    es = cbs.SmoothedEarlyStopping("val_loss", history, **kw)
    es.set_model(model)
    return history, es


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model = _model()
    lines: list[str] = []
    history, es = _stopping(model, patience=2, log=lines.append)
    weights = {}
    model.stop_training = False
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7, 0.6]):
        weights[epoch] = _shift(model, 1.0)
        _epoch([history, es], epoch, _logs(1.0, val_loss))
        assert es.stopped == (epoch == 3) == model.stop_training
    assert es.best == 0.5 and es.best_epoch == 2 and es.wait == 2
    assert es.state() == {"monitor": "val_loss", "best": 0.5, "best_epoch": 2, "wait": 2}
    es.on_train_end()
    assert lines == ["Early stopping: val_loss did not improve for 2 epochs (best 0.5000 at epoch 2)."]
    es.restore_best(model)
    _assert_weights(model, weights[1])  # epoch 2 (1-based) is index 1


def test_early_stopping_min_delta_max_mode_and_no_patience():
    model = _model()
    history = cbs.EpochHistory()
    es = cbs.SmoothedEarlyStopping("val_accuracy", history, min_delta=0.1, restore_best_weights=False)
    es.set_model(model)
    model.stop_training = False
    for epoch, acc in enumerate([0.5, 0.55, 0.7, 0.75, 0.7, 0.6]):
        _epoch([history, es], epoch, {**_logs(1.0), "val_accuracy": acc})
    assert es.mode == "max" and es.best_epoch == 3 and es.best == 0.7  # 0.55, 0.75: not > best + 0.1
    assert not es.stopped and not model.stop_training  # patience None: never stops
    assert es.best_weights is None


def test_smoothed_monitor_uses_the_mean_of_the_last_epochs():
    model = _model()
    history, es = _stopping(model, smoothing=2, patience=5)
    model.stop_training = False
    # the raw best is epoch 2 (0.2); the 2-epoch means are 1.0, 0.6, 0.65, 0.7, 0.55
    for epoch, val_loss in enumerate([1.0, 0.2, 1.1, 0.3, 0.8]):
        _shift(model, 1.0)
        _epoch([history, es], epoch, _logs(1.0, val_loss))
    assert es.best_epoch == 5 and es.best == pytest.approx(0.55)
    assert es.wait == 0 and not es.stopped


def test_restore_best_leaves_the_last_epoch_and_resume_continues():
    model = _model()
    history, es = _stopping(model)
    _epoch([history, es], 0, _logs(1.0, 0.9))
    last = _shift(model, 1.0)
    _epoch([history, es], 1, _logs(1.0, 0.8))  # the last epoch is the best
    _shift(model, 1.0)
    es.restore_best(model)
    _assert_weights(model, [w + 1.0 for w in last])  # best == last epoch: weights untouched
    other = cbs.SmoothedEarlyStopping("val_loss", history)
    other.resume({"best": 0.8, "best_epoch": 2, "wait": 1}, last)
    assert (other.best, other.best_epoch, other.wait) == (0.8, 2, 1)
    history.on_epoch_end(2, _logs(1.0, 0.7))
    other.restore_best(model)
    _assert_weights(model, last)


def test_resolve_monitor():
    assert cbs.resolve_monitor("auto", True) == "val_loss"
    assert cbs.resolve_monitor("auto", False) == "loss"
    assert cbs.monitor_mode("val_accuracy") == "max" and cbs.monitor_mode("loss") == "min"
    with pytest.raises(UserError, match="needs validation data"):
        cbs.resolve_monitor("val_accuracy", False)
    with pytest.raises(UserError, match="Received: monitor='f1'"):
        cbs.resolve_monitor("f1", True)


# === EpochCheckpoint ===


def _checkpointing(tmp_path, model, epochs=5, interval="auto", restore=True):
    strategy = tf.distribute.get_strategy()
    opt = keras.optimizers.SGD(0.1)
    opt.build(model.trainable_variables)
    history = cbs.EpochHistory()
    es = cbs.SmoothedEarlyStopping("val_loss", history, restore_best_weights=restore)
    es.set_model(model)
    ck = cbs.EpochCheckpoint(model, opt, strategy, str(tmp_path), str(tmp_path), epochs=epochs,
                             history=history, best=es, interval=interval)
    model.stop_training = False
    return history, es, ck


def _state(tmp_path) -> dict:
    return json.loads((tmp_path / "state.json").read_text())


def test_auto_policy_writes_after_the_first_and_the_last_epoch(tmp_path):
    model = _model()
    history, es, ck = _checkpointing(tmp_path, model)
    assert ck.resume() is None and ck.initial_epoch == 0
    for epoch in range(5):
        _epoch([history, es, ck], epoch, _logs(1.0, 1.0 - epoch / 10))
        assert ck.writes == (1 if epoch < 4 else 2), epoch
    state = _state(tmp_path)
    assert state["epochs_done"] == 5 and state["checkpoint"] == "ckpt-5"
    assert state["checkpoint_writes"] == 2 and not state["stopped_early"]
    assert list(state) == ["epochs_done", "checkpoint", "history", "monitor", "best", "best_epoch",
                           "best_file", "wait", "stopped_early", "replicas", "checkpoint_writes"]
    assert state["best_file"] == "best/weights-5.npz" and state["history"] == history.history
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-5.data-00000-of-00001", "ckpt-5.index"]
    assert [p.name for p in (tmp_path / "best").iterdir()] == ["weights-5.npz"]
    assert ck.seconds > 0


def test_interval_zero_writes_every_epoch_and_a_stop_writes_at_once(tmp_path):
    model = _model()
    history, es, ck = _checkpointing(tmp_path / "every", model, interval=0)
    for epoch in range(3):
        _epoch([history, es, ck], epoch, _logs(1.0))
        assert _state(tmp_path / "every")["epochs_done"] == epoch + 1
    history, es, ck = _checkpointing(tmp_path / "rare", _model(), interval=1e9)
    _epoch([history, es, ck], 0, _logs(1.0))
    assert ck.writes == 0 and not (tmp_path / "rare" / "state.json").exists()
    model = ck.model
    model.stop_training = True  # e.g. a user's callback stops training
    _epoch([history, es, ck], 1, _logs(1.0))
    assert ck.writes == 1 and _state(tmp_path / "rare")["stopped_early"] is True


def test_resume_restores_model_history_and_early_stopping_state(tmp_path):
    model = _model()
    history, es, ck = _checkpointing(tmp_path, model, epochs=4, interval=0)
    for epoch, val_loss in enumerate([0.9, 0.5, 0.7]):
        weights = _shift(model, 1.0)
        if epoch == 1:
            best = weights
        _epoch([history, es, ck], epoch, _logs(1.0, val_loss))
    saved = model.get_weights()
    lines: list[str] = []
    again = _model()
    history2 = cbs.EpochHistory()
    es2 = cbs.SmoothedEarlyStopping("val_loss", history2)
    opt = keras.optimizers.SGD(0.1)
    opt.build(again.trainable_variables)
    ck2 = cbs.EpochCheckpoint(again, opt, tf.distribute.get_strategy(), str(tmp_path), str(tmp_path),
                              epochs=4, history=history2, best=es2, log=lines.append)
    state = ck2.resume()
    assert state["epochs_done"] == 3 and ck2.initial_epoch == 3 and ck2.writes == 3
    assert lines == [f"Resuming at epoch 4/4 from {tmp_path}"]
    assert history2.history == history.history
    assert (es2.best, es2.best_epoch, es2.wait) == (0.5, 2, 1)
    _assert_weights(again, saved)
    for a, b in zip(es2.best_weights, best, strict=True):
        np.testing.assert_allclose(a, b)  # best/weights-2.npz


def test_check_interval():
    cbs.check_interval("auto")
    cbs.check_interval(0)
    with pytest.raises(UserError, match="Received: checkpoint_interval='often'"):
        cbs.check_interval("often")
    assert cbs.AUTO_CHECKPOINT_SECONDS == dist.AUTO_CHECKPOINT_SECONDS == 60.0


# === NonFiniteLossGuard ===


def test_guard_resets_to_the_last_checkpoint_and_raises_with_the_result(tmp_path):
    model = _model()
    history, es, ck = _checkpointing(tmp_path, model, epochs=6, interval=1e9)
    fit = FitCallbacks(model, history, es, ck, epochs=6, replicas=1)
    guard = cbs.NonFiniteLossGuard(6, fit.result, checkpoint=ck, read_dir=str(tmp_path))
    guard.on_epoch_end(0, _logs(1.0))  # finite: nothing happens
    _epoch([history, es], 0, _logs(1.0))
    ck.write(0, False)
    good = model.get_weights()
    _epoch([history, es, ck], 1, _logs(0.9))  # not written (long interval)
    _shift(model, 3.0)
    with pytest.raises(dist.NonFiniteLossError, match=r"epoch 3/6.*last good checkpoint \(epoch 1\)") as info:
        guard.on_epoch_end(2, {**_logs(1.0), "loss": math.nan})
    _assert_weights(model, good)  # the model went back to epoch 1
    result = info.value.result
    assert result.stop_reason == "non_finite_loss" and result.history["loss"] == [1.0]
    assert result.checkpoint_writes == 1 and result.checkpoint_dir == str(tmp_path)
    assert "Received: loss=nan" in str(info.value)


def test_guard_without_checkpoints_keeps_the_model_and_the_history():
    model = _model()
    history = cbs.EpochHistory()
    es = cbs.SmoothedEarlyStopping("loss", history)
    fit = FitCallbacks(model, history, es, None, epochs=3, replicas=1)
    guard = cbs.NonFiniteLossGuard(3, fit.result)
    history.on_epoch_end(0, _logs(1.0))
    before = model.get_weights()
    with pytest.raises(dist.NonFiniteLossError, match=r"epoch 1/3.*\(no epoch \(nothing was saved\)\)"):
        guard.on_epoch_end(0, {**_logs(1.0), "val_loss": math.inf})
    _assert_weights(model, before)
    assert history.history["loss"] == [1.0]


# === The loop's order (custom_fit) and the steps ===


def _ds(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[(x[:, 0] > 0).astype(int)]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


class _Meddler(keras.callbacks.Callback):
    """A user's callback that adds a key to the logs (as ReduceLROnPlateau does) and records
    what it saw."""

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = 0.1
        self.seen.append(epoch)


def test_user_callbacks_run_between_the_history_and_the_checkpoint(tmp_path):
    model = _model()
    meddler, lines = _Meddler(), []
    result = dist.custom_fit(model, keras.optimizers.SGD(0.1), "categorical_crossentropy", _ds(), _ds(16),
                             epochs=2, checkpoint_dir=tmp_path / "ck", history_csv=tmp_path / "h.csv",
                             callbacks=[meddler], log=lines.append)
    assert meddler.seen == [0, 1]
    assert list(result.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all("learning_rate" not in ln for ln in lines) and len(lines) == 2
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    fit = FitCallbacks.create(model, keras.optimizers.SGD(0.1), tf.distribute.get_strategy(),
                              str(tmp_path / "x"), str(tmp_path / "x"), epochs=2, monitor="loss",
                              history_csv=tmp_path / "x.csv", log=lines.append)
    order = [type(cb).__name__ for cb in fit.around([meddler])]
    assert order == ["NonFiniteLossGuard", "EpochHistory", "SmoothedEarlyStopping", "_Meddler",
                     "EpochCheckpoint", "HistoryCSV", "EpochProgress"]


def test_epoch_runner_sums_over_the_epoch_and_rejects_an_empty_dataset():
    strategy = tf.distribute.get_strategy()
    model = _model()
    steps = ReplicaSteps(model, keras.optimizers.SGD(0.0), per_example_loss("categorical_crossentropy"),
                         strategy)
    ds = _ds(20)  # batches of 8, 8, 4
    loss, acc = EpochRunner(strategy, steps.evaluate, dist.distribute_dataset(strategy, ds)).run()
    x = np.concatenate([b[0].numpy() for b in ds])
    y = np.concatenate([b[1].numpy() for b in ds])
    expected = keras.losses.categorical_crossentropy(y, model(x)).numpy().mean()
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert acc == pytest.approx(float(np.mean(model(x).numpy().argmax(-1) == y.argmax(-1))))
    empty = dist.distribute_dataset(strategy, _ds(8).take(0))
    with pytest.raises(UserError, match="produced no batches"):
        EpochRunner(strategy, steps.evaluate, empty).run()
    with pytest.raises(UserError, match="produced no batches"):
        EpochRunner(strategy, steps.evaluate, empty, steps_per_execution=2).run()
    with pytest.raises(UserError, match="Received: loss_fn=3"):
        per_example_loss(3)
