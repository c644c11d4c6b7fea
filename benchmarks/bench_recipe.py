"""Whole recipe, end to end, on the demo's data: tl_kit against the same recipe by hand.

The demo's task (``tl_kit.demo``): scikit-learn's digits as 32x32 grey images; LeNet-5 is
pretrained on digits 0-4 (the source task), then transferred to digits 5-9 with ``k``
labelled images per class for training and ``k`` for validation, and tested on every other
5-9 digit. Both sides run the same steps with the same network, epochs, batch sizes,
learning rates, label smoothing, dropout and early stopping:

1. pretrain from random weights on 0-4 (80/20 train/validation split);
2. medium recipe on 5-9: head warm-up on the frozen backbone, then the last block unfrozen
   at a 10x lower learning rate with early stopping on validation loss;
3. test accuracy.

- **tl_kit**: ``Learner(...).fit`` twice (scratch recipe, then the demo's ``medium`` recipe,
  whose head stage trains on cached features with augmented copies and an imprinted head)
  and ``evaluate``; run directories, logs and history files included in the time.
- **hand**: plain Keras following the transfer-learning guide: augmentation layers in the
  model, ``base.trainable = False`` -> ``fit`` -> unfreeze the last block -> recompile ->
  ``fit`` with ``EarlyStopping`` -> ``evaluate``. The network comes from the same
  constructor (the comparison is about the training, not the layer definitions).

Reported: wall seconds of each side (data preparation excluded, model building included),
hand / tl_kit, and each side's test accuracy; and where tl_kit's time goes beyond the
training steps (``parts``: seconds per run-directory/bookkeeping part, measured by timing
the learner's own methods during the tl_kit runs; parts may nest, e.g. ``finish_run``
holds ``final_val_evaluation`` and ``save_model``).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np

from benchmarks._common import load_snapshot, timed_parts


def _split(k: int, seed: int = 0):
    from tl_kit.demo import _sample, digits_32

    x, y = digits_32()
    src = y < 5
    xt, yt = x[~src], y[~src] - 5
    rng = np.random.default_rng(seed)
    tr = _sample(yt, range(5), k, rng)
    va = _sample(yt, range(5), k, rng, exclude=tr)
    te = np.setdiff1d(np.arange(len(yt)), np.concatenate([tr, va]))
    return (x[src], y[src]), (xt[tr], yt[tr]), (xt[va], yt[va]), (xt[te], yt[te])


# (part name, module, object name, attribute): the learner's fixed costs, timed in place
PARTS = (
    ("prepare_run_dir", "tl_kit.rundir.run", "RunDir", "check_writable"),
    ("config_and_run_state", "tl_kit.rundir.run", "RunDir", "write_config"),
    ("config_and_run_state", "tl_kit.rundir.run", "RunDir", "write_status"),
    ("history_csv", "tl_kit.rundir.run", "RunDir", "write_history"),
    ("stage_weights", "tl_kit.rundir.run", "RunDir", "save_stage_weights"),
    ("plots_history", "tl_kit.rundir.run", "RunDir", "plot_history"),
    ("feature_cache", "tl_kit.train.feature_cache", None, "extract_features"),
    ("finish_run", "tl_kit.train.evaluation", None, "finish_run"),
    ("final_val_evaluation", "tl_kit.train.evaluation", None, "evaluate_split"),
    ("save_model", "tl_kit.predict", None, "save_for_inference"),
    ("evaluate_report", "tl_kit.train", "Learner", "evaluate"),
    ("evaluate_plots", "tl_kit.evaluate.plots", None, "plot_worst"),
    ("evaluate_plots", "tl_kit.evaluate.plots", None, "plot_confusion_matrix"),
)
# custom_fit's own checkpoint writes are reported by the learner (metrics["checkpoints"]).


def run_tl_kit(source, train, val, test, pre_epochs: int, epochs: int, tmp: str) -> dict[str, Any]:
    import keras

    from tl_kit.demo import DEMO_AUGMENT, _recipes
    from tl_kit.train import Learner, scratch_recipe

    t = time.perf_counter()
    keras.backend.clear_session()
    pre = Learner("lenet5", 5, weights=None, class_names=[str(i) for i in range(5)],
                  recipe=scratch_recipe(pre_epochs, learning_rate=3e-3, augment=DEMO_AUGMENT,
                                        early_stopping=0, batch_size=64, class_weights=False),
                  run_dir=f"{tmp}/pretrain", seed=0, verbose=0, tensorboard=False)
    pre.fit(source)
    backbone = f"{tmp}/pretrain/backbone.weights.h5"
    pre.backbone.save_weights(backbone)
    keras.backend.clear_session()
    learner = Learner("lenet5", 5, class_names=[str(i + 5) for i in range(5)], weights=backbone,
                      recipe=_recipes(epochs, max(epochs // 3, 3))["medium"],
                      run_dir=f"{tmp}/transfer", seed=0, verbose=0, tensorboard=False)
    learner.fit({"train": train, "val": val, "test": test})
    acc = learner.evaluate(split="test")["accuracy"]
    ck = [m.get("checkpoints", {}) for m in (pre.metrics, learner.metrics)]
    return {"seconds": time.perf_counter() - t, "test_accuracy": float(acc),
            "epoch_checkpoints": {"writes": sum(c.get("writes", 0) for c in ck),
                                  "seconds": sum(c.get("seconds", 0.0) for c in ck)},
            "run_dir_bytes": pre.metrics.get("run_dir_bytes", 0) + learner.metrics.get("run_dir_bytes", 0)}


def _augment():
    import keras

    # the demo policy: random crop (scale 0.85) and rotation (10 degrees), no flips
    return keras.Sequential([keras.layers.RandomZoom((-0.15, 0.0)), keras.layers.RandomTranslation(0.075, 0.075),
                             keras.layers.RandomRotation(10 / 360)], name="augmentation")


def run_hand(source, train, val, test, pre_epochs: int, epochs: int) -> dict[str, Any]:
    import keras

    from tl_kit.backbones import resolve_backbone

    spec = resolve_backbone("lenet5", None)[0]
    eye = np.eye(5, dtype="float32")
    t = time.perf_counter()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)

    def classifier(base, augment: bool):
        inp = keras.Input((32, 32, 1))
        x = _augment()(inp) if augment else inp
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
        x = base(x, training=False)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dropout(0.2)(x)
        return keras.Model(inp, keras.layers.Dense(5, activation="softmax")(x))

    # 1. pretrain on 0-4 (80/20 split), every layer, from random weights
    base = spec.build((32, 32, 1), weights=None)
    model = classifier(base, augment=True)
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=["accuracy"])
    xs, ys = source
    idx = np.random.default_rng(0).permutation(len(xs))
    cut = int(0.8 * len(xs))
    model.fit(xs[idx[:cut]], eye[ys[idx[:cut]]], validation_data=(xs[idx[cut:]], eye[ys[idx[cut:]]]),
              batch_size=64, epochs=pre_epochs, verbose=0)
    # 2. transfer to 5-9: new head on the frozen backbone, then the last block
    warm = max(epochs // 3, 1)
    patience = max(epochs // 3, 3)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    base.trainable = False
    model = classifier(base, augment=True)
    model.compile(keras.optimizers.Adam(3e-3), loss, metrics=["accuracy"])
    (xtr, ytr), (xva, yva) = train, val
    model.fit(xtr, eye[ytr], validation_data=(xva, eye[yva]), batch_size=32, epochs=warm, verbose=0)
    base.trainable = True
    first = [layer.name.startswith(spec.blocks[-1]) for layer in base.layers].index(True)
    for layer in base.layers[:first]:
        layer.trainable = False
    model.compile(keras.optimizers.Adam(3e-4), loss, metrics=["accuracy"])
    model.fit(xtr, eye[ytr], validation_data=(xva, eye[yva]), batch_size=32, epochs=epochs - warm,
              verbose=0, callbacks=[keras.callbacks.EarlyStopping(
                  patience=patience, restore_best_weights=True)])
    # 3. test
    acc = model.evaluate(test[0], eye[test[1]], verbose=0, return_dict=True)["accuracy"]
    return {"seconds": time.perf_counter() - t, "test_accuracy": float(acc)}


def bench_recipe(labels_per_class: int = 20, pre_epochs: int = 10, epochs: int = 15,
                 repeats: int = 1) -> dict[str, Any]:
    """End-to-end wall time, hand / tl_kit (> 1: tl_kit is faster), and test accuracies."""
    source, train, val, test = _split(labels_per_class)
    out: dict[str, Any] = {"task": "LeNet-5 pretrained on digits 0-4, medium recipe on 5-9",
                           "labels_per_class": labels_per_class, "pretrain_epochs": pre_epochs,
                           "epochs": epochs, "repeats": repeats, "source_images": len(source[0]),
                           "test_images": len(test[0]), "load_before": load_snapshot()}
    tl, hand = [], []
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            order = ("tl", "hand") if rep % 2 == 0 else ("hand", "tl")
            for side in order:
                if side == "tl":
                    with timed_parts(parts, PARTS):
                        tl.append(run_tl_kit(source, train, val, test, pre_epochs, epochs, f"{tmp}/{rep}"))
                else:
                    hand.append(run_hand(source, train, val, test, pre_epochs, epochs))
    parts["epoch_checkpoints"] = sum(r["epoch_checkpoints"]["seconds"] for r in tl)
    tl_total = sum(r["seconds"] for r in tl)
    med = lambda rows, k: float(np.median([r[k] for r in rows]))  # noqa: E731
    out.update({"tl_kit_seconds": med(tl, "seconds"), "hand_seconds": med(hand, "seconds"),
                "ratio": med(hand, "seconds") / med(tl, "seconds"),
                "tl_kit_test_accuracy": med(tl, "test_accuracy"),
                "hand_test_accuracy": med(hand, "test_accuracy"),
                "parts_seconds_per_run": {k: round(v / repeats, 3) for k, v in sorted(parts.items())},
                "parts_share_of_tl_kit": {k: round(v / tl_total, 4) for k, v in sorted(parts.items())},
                "checkpoint_share": round((parts["epoch_checkpoints"] + parts.get("stage_weights", 0.0))
                                          / tl_total, 4),
                "runs": {"tl_kit": tl, "hand": hand}, "load_after": load_snapshot()})
    return out
