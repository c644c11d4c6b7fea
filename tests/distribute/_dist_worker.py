"""Multi-device scenarios for the tests in tests/distribute/, each run in its own process.

Device layout (logical CPU devices) and MultiWorkerMirroredStrategy must be configured
before TensorFlow initialises its runtime, so every scenario runs as
``python tests/distribute/_dist_worker.py MODE OUT_JSON [RUN_DIR [EPOCHS | FOLDER]]`` in a fresh
interpreter.

Modes:
    mirrored        two logical CPUs: custom_fit (XLA off and on, steps_per_execution) and Keras fit under
                    MirroredStrategy vs one device, same global batch -> max weight diffs.
    mirrored_empty  two logical CPUs: a last global batch of one example (one replica empty)
                    -> max weight diff against one device.
    worker          one task of a multi-worker cluster (TF_CONFIG from the environment):
                    custom_fit of a tiny convnet into RUN_DIR/checkpoints + RUN_DIR/history.csv.
    keras_fit_mwms  one task running Keras's own model.fit under MultiWorkerMirroredStrategy
                    (records the upstream failure, keras-team/keras#20585).
    learner_mirrored  two logical CPUs: a two-stage recipe through the Learner on one device
                    and on two replicas -> max weight diff (run dirs under RUN_DIR).
    learner_worker  one task of a multi-worker cluster: ``finetune`` of a recipe into RUN_DIR
                    (stage 2 runs EPOCHS epochs; SLOW_EPOCHS=s in the environment sleeps s
                    seconds after each epoch, so a test can kill the workers mid-stage).
    learner_worker_files  one task of a multi-worker cluster: ``finetune`` of the image folder
                    FOLDER streamed from disk; records every file its pipelines decode.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GLOBAL_BATCH = 16


def _data(n: int = 64, size: int = 8):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(n, size, size, 3)).astype("float32")
    labels = (x[:, :, :, 0].mean(axis=(1, 2)) > 127.5).astype("int64")
    y = np.eye(2, dtype="float32")[labels]
    return x, y


def _model(seed: int = 1):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax", dtype="float32"),
        ]
    )


def _max_diff(a, b) -> float:
    import numpy as np

    return float(max(np.max(np.abs(u - v)) for u, v in zip(a, b, strict=True)))


def mirrored(out: str) -> dict:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from tl_kit import distribute as dist

    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    one = dist.resolve_strategy("default")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def train_custom(strategy, jit, spe=1):
        with strategy.scope():
            model = _model()
            opt = keras.optimizers.SGD(0.05)
        result = dist.custom_fit(
            model,
            opt,
            "categorical_crossentropy",
            ds,
            epochs=3,
            strategy=strategy,
            restore_best_weights=False,
            jit_compile=jit,
            steps_per_execution=spe,
            verbose=0,
        )
        return model.get_weights(), result

    def train_fit(strategy):
        with strategy.scope():
            model = _model()
            model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy")
        model.fit(ds, epochs=3, verbose=0, shuffle=False)
        return model.get_weights()

    w1, r1 = train_custom(one, False)
    w2, r2 = train_custom(two, False)
    w2x, _ = train_custom(two, True)
    w2s, _ = train_custom(two, False, spe=3)  # 4 batches: one call of 3 steps, one of 1
    f1, f2 = train_fit(one), train_fit(two)
    w0 = _model().get_weights()
    return {
        "replicas": two.num_replicas_in_sync,
        "custom_max_diff": _max_diff(w1, w2),
        "custom_xla_max_diff": _max_diff(w1, w2x),
        "custom_spe_max_diff": _max_diff(w1, w2s),
        "fit_max_diff": _max_diff(f1, f2),
        "custom_vs_fit_max_diff": _max_diff(w1, f1),
        "moved": _max_diff(w0, w1),
        "loss_one": r1.history["loss"],
        "loss_two": r2.history["loss"],
    }


def mirrored_empty(out: str) -> dict:
    """17 examples in global batches of 16 on two replicas: the last batch (1 example) leaves
    one replica empty. Weights after 2 epochs against one device (the same batches)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from tl_kit import distribute as dist

    x, y = _data(n=17)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    weights, history = {}, {}
    for name, strategy in (("one", dist.resolve_strategy("default")),
                           ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        with strategy.scope():
            model = _model()
            opt = keras.optimizers.SGD(0.05)
        result = dist.custom_fit(model, opt, "categorical_crossentropy", ds, ds, epochs=2, strategy=strategy,
                                 restore_best_weights=False, verbose=0)
        weights[name], history[name] = model.get_weights(), result.history
    return {"max_diff": _max_diff(weights["one"], weights["two"]), "history": history}


def _cluster_model_and_data(strategy):
    import keras
    import tensorflow as tf

    x, y = _data(n=96)
    train = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(GLOBAL_BATCH)
    val = tf.data.Dataset.from_tensor_slices((x[64:], y[64:])).batch(GLOBAL_BATCH)
    with strategy.scope():
        model = _model()
        opt = keras.optimizers.SGD(0.05, momentum=0.9)
    return model, opt, train, val


def worker(out: str, run_dir: str) -> dict:
    from tl_kit import distribute as dist

    strategy = dist.resolve_strategy("auto")  # first TF call: MWMS from TF_CONFIG
    model, opt, train, val = _cluster_model_and_data(strategy)
    lines: list[str] = []
    result = dist.custom_fit(
        model,
        opt,
        "categorical_crossentropy",
        train,
        val,
        epochs=3,
        strategy=strategy,
        checkpoint_dir=os.path.join(run_dir, "checkpoints"),
        history_csv=os.path.join(run_dir, "history.csv"),
        patience=5,
        log=lines.append,
    )
    return {
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "chief": dist.is_chief(strategy),
        "write_dir": result.checkpoint_dir,
        "write_dir_files": sorted(os.listdir(result.checkpoint_dir)),
        "history": result.history,
        "lines": lines,
        "first_kernel_sum": float(model.get_weights()[0].sum()),
    }


def keras_fit_mwms(out: str, patched: bool = False) -> dict:
    from tl_kit import distribute as dist

    strategy = dist.resolve_strategy("multiworker")
    if patched:  # skip the symbolic build that reduces a PerReplica batch (model is built)
        from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

        TensorFlowTrainer._maybe_symbolic_build = lambda self, *a, **k: None
    model, opt, train, _ = _cluster_model_and_data(strategy)
    with strategy.scope():
        model.compile(opt, "categorical_crossentropy", metrics=["accuracy"])
    try:
        model.fit(train, epochs=1, verbose=0)
    except Exception as exc:  # the upstream failure is the thing being recorded
        message = f"{type(exc).__name__}: {exc}"
        frames = traceback.extract_tb(exc.__traceback__)
        return {
            "ok": False,
            "error_head": message[:200],
            "error_tail": message[-300:],
            "frames": [f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in frames][-8:],
        }
    return {"ok": True}


# === The Learner (tests/distribute/test_learner_distributed.py) ===


def _digits():
    from tl_kit.demo import digits_32

    x, y = digits_32()
    keep = y < 3
    return x[keep][:48], y[keep][:48]


def _recipe():
    from tl_kit.recipes import Recipe, Stage

    # dropout 0: Dropout's random masks differ per replica; no augmentation for the same reason
    return Recipe(name="dist", dropout=0.0, stages=[
        Stage(name="head", epochs=1, cache_copies=0, early_stopping=0, augment="none", batch_size=16),
        Stage(name="all", trainable="all", epochs=2, early_stopping=0, augment="none", batch_size=16,
              optimizer="sgd", learning_rate=0.02)])


def learner_mirrored(out: str, run_dir: str) -> dict:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    from tl_kit.train import Learner

    x, y = _digits()
    weights, logs = {}, {}
    for name, strategy in (("one", "default"), ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        keras.backend.clear_session()
        learner = Learner("lenet5", 3, weights=None, recipe=_recipe(), run_dir=os.path.join(run_dir, name),
                          strategy=strategy, verbose=0, tensorboard=False, seed=3)
        learner.fit((x, y))
        weights[name] = learner.model.get_weights()
        logs[name] = learner.strategy.num_replicas_in_sync
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights["one"], weights["two"], strict=True))
    return {"replicas": logs, "max_diff": diff}


def _slow_epochs(seconds: float) -> None:
    """Every ``custom_fit`` of this process sleeps ``seconds`` after each epoch (the Learner
    calls ``tl_kit.distribute.custom_fit``, so wrapping it reaches every stage)."""
    import time

    import keras

    from tl_kit import distribute as dist

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(seconds)

    original = dist.custom_fit

    def custom_fit(*args, callbacks=None, **kwargs):
        return original(*args, callbacks=[*(callbacks or []), Slow()], **kwargs)

    dist.custom_fit = custom_fit


def learner_worker(out: str, run_dir: str, epochs: int = 2) -> dict:
    import tensorflow as tf

    from tl_kit import distribute as dist
    from tl_kit import train as T  # the Learner resolves strategy="auto" first: MWMS

    if os.environ.get("SLOW_EPOCHS"):  # the resume test kills the workers mid-stage
        _slow_epochs(float(os.environ["SLOW_EPOCHS"]))
    x, y = _digits()
    recipe = _recipe()
    recipe.stages[1].epochs = epochs
    learner = T.finetune("lenet5", data=(x, y), weights=None, recipe=recipe, run_dir=run_dir,
                         verbose=1, tensorboard=False, seed=3)
    written = dist.worker_dir(learner.run_dir, learner.strategy)  # where THIS process wrote
    return {
        "mwms": isinstance(learner.strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "replicas": learner.strategy.num_replicas_in_sync,
        "out": str(written),
        "out_files": sorted(os.listdir(written)),
        "history": [(r["stage"], r["epoch"]) for r in learner.history],
        "kernel_sum": float(learner.model.get_layer("predictions").get_weights()[0].sum()),
    }


def _record_checks() -> list[str]:
    """Every file this process's hygiene scan decodes (the rows given to its one graph,
    :func:`tl_kit.data.hygiene._graph_pass`), in order."""
    from tl_kit.data import hygiene

    checked: list[str] = []
    real = hygiene._graph_pass

    def graph_pass(rows, files, *args, **kwargs):
        checked.extend(files[i][0] for i in rows)
        return real(rows, files, *args, **kwargs)

    hygiene._graph_pass = graph_pass
    return checked


def _record_reads() -> list[str]:
    """Every file the training pipelines of this process decode, in order: the in-graph
    decoders (``tl_kit.decode.load_routed``, which every streamed file TensorFlow decodes
    goes through, and ``load_path``) are wrapped to append the path to the returned list
    before they read the file, and so is ``tl_kit.decode.decode_file`` when the pipeline
    calls it for a Pillow file. The hygiene scan's decode at load time does not go through
    them (:func:`tl_kit.data.hygiene._graph_pass` reads with its own ops;
    :func:`_record_checks` records it), so it is not counted here."""
    import numpy as np
    import tensorflow as tf

    from tl_kit import decode

    reads: list[str] = []

    def note(p):
        reads.append(p.decode() if isinstance(p, bytes) else str(p))
        return np.int64(0)

    def noted(original):
        def load(p, *args, **kwargs):
            done = tf.numpy_function(note, [p], tf.int64, stateful=True)
            with tf.control_dependencies([done]):
                return original(tf.identity(p), *args, **kwargs)

        return load

    decode.load_path = noted(decode.load_path)
    decode.load_routed = noted(decode.load_routed)
    original_file = decode.decode_file

    def decode_file(path, *args, **kwargs):  # Pillow files: the pipeline's numpy_function
        if sys._getframe(1).f_code.co_name == "_pil":  # not the hygiene scan's check_file
            reads.append(str(path))
        return original_file(path, *args, **kwargs)

    decode.decode_file = decode_file
    return reads


def learner_worker_files(out: str, run_dir: str, folder: str) -> dict:
    """One task of a multi-worker cluster: ``finetune`` of a folder streamed from disk
    (in-memory cache off), recording every file this worker's pipelines decode."""
    import tensorflow as tf

    from tl_kit import train as T  # the Learner resolves strategy="auto" first: MWMS
    from tl_kit.data import cache
    from tl_kit.recipes import Recipe, Stage

    cache.CACHE_LIMIT_BYTES = 0  # stream: every epoch decodes its files
    reads = _record_reads()
    checked = _record_checks()
    recipe = Recipe(name="files", dropout=0.0, stages=[
        Stage(name="head", epochs=1, cache_copies=0, early_stopping=0, augment="none", batch_size=8,
              head_init="imprint"),
        Stage(name="all", trainable="all", epochs=2, early_stopping=0, augment="light", batch_size=8,
              optimizer="sgd", learning_rate=0.02)])
    learner = T.finetune("lenet5", data=folder, weights=None, recipe=recipe, run_dir=run_dir,
                         verbose=1, tensorboard=False, seed=3)
    return {
        "mwms": isinstance(learner.strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "train": learner.data.paths("train"),
        "val": learner.data.paths("val"),
        "reads": reads,
        "checked": checked,
        "hygiene": [(r.path, r.status, r.reason, r.decoder) for r in learner.data.hygiene],
        "history": [(r["stage"], r["epoch"]) for r in learner.history],
        "kernel_sum": float(learner.model.get_layer("predictions").get_weights()[0].sum()),
        "conv_sum": float(learner.model.get_weights()[0].sum()),
    }


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "mirrored":
        report = mirrored(out)
    elif mode == "mirrored_empty":
        report = mirrored_empty(out)
    elif mode == "worker":
        report = worker(out, sys.argv[3])
    elif mode in ("keras_fit_mwms", "keras_fit_mwms_patched"):
        report = keras_fit_mwms(out, patched=mode.endswith("patched"))
    elif mode == "learner_mirrored":
        report = learner_mirrored(out, sys.argv[3])
    elif mode == "learner_worker_files":
        report = learner_worker_files(out, sys.argv[3], sys.argv[4])
    elif mode == "learner_worker":
        report = learner_worker(out, sys.argv[3], *(int(a) for a in sys.argv[4:]))
    else:
        raise SystemExit(f"unknown mode: {mode}")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(report, fh)
