"""The learner's evaluation: a split's loss and accuracy after fit, and the full report of
:meth:`tl_kit.train.Learner.evaluate` (:func:`tl_kit.evaluate.evaluate_model`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tl_kit.errors import UserError

__all__ = ["evaluate_split", "evaluation_data", "learner_evaluate", "finish_run", "EAGER_EVAL_MAX"]

EAGER_EVAL_MAX = 256  # splits up to this size are evaluated eagerly after fit (no graph trace)


def evaluate_split(model, data, split: str) -> dict[str, float]:
    """Loss and accuracy of one split, computed locally on this process (no Keras
    ``evaluate``: it shares ``fit``'s break under MultiWorkerMirroredStrategy)."""
    import tensorflow as tf

    if data.size(split) <= EAGER_EVAL_MAX:  # tracing the whole network costs more than it saves
        def predict(x):
            return tf.cast(model(x, training=False), tf.float32)
    else:
        predict = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32))
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in data.dataset(split, batch_size=64):
        p = predict(x).numpy()
        yv = y.numpy()
        loss_sum += float(-np.sum(yv * np.log(np.clip(p, 1e-7, 1.0))))
        correct += int(np.sum(p.argmax(axis=1) == yv.argmax(axis=1)))
        n += len(yv)
    return {"accuracy": correct / max(n, 1), "loss": loss_sum / max(n, 1)}


def evaluation_data(learner, data, split: str | None):
    """Raw evaluation data -> ``(Data, split)``; nothing in the run directory is written."""
    from tl_kit.evaluate import load_evaluation_data

    if isinstance(data, str | os.PathLike):
        names = None if learner.placeholder_names else learner.class_names
        out = learner.rundir.out
        loaded, split, how = load_evaluation_data(
            str(data), image_size=learner.image_size, channels=learner.channels,
            class_names=names, split=split, run_dir=out if out.is_dir() else None)
        learner.log(f"evaluating {how}")
        return loaded, split
    if isinstance(data, dict) and split is not None:
        # A dict of splits ({"train": ..., "test": ...}): `split` picks one of them.
        if split not in data:
            raise UserError(
                f"No {split!r} split in the data given; it has {sorted(data)}. "
                f"Received: split={split!r}")
        data, split = data[split], None
    if split is not None:
        raise UserError(
            "Arrays and tf.data datasets are evaluated whole; `split` applies to folders "
            "split into train/val/test, to a dict of splits and to the run's own data. "
            f"Received: split={split!r}")
    return learner.load_data(data, whole=True), "train"


def learner_evaluate(learner, data=None, split: str | None = None, tta: str | None = None,
                     top_k: int = 5) -> dict[str, Any]:
    """Backs :meth:`tl_kit.train.Learner.evaluate` (see there)."""
    from tl_kit import distribute as dist
    from tl_kit.data import Data
    from tl_kit.evaluate import evaluate_model

    if learner.model is None:
        learner.build()
    raw = data is not None and not isinstance(data, Data)
    if raw:
        data, split = evaluation_data(learner, data, split)
    else:
        data = learner.load_data(data)
    if split is None:
        split = "test" if data.has("test") else ("val" if data.has("val") else "train")
    rundir = learner.rundir
    out = rundir.out if learner.writes_plots() else None
    report = evaluate_model(learner.model, data, learner.class_names, out_dir=out, tta=tta,
                            top_k=top_k, split=split)
    key = "evaluate" if raw else split
    learner.metrics[key] = {k: report[k] for k in ("loss", "accuracy", "top_k", "top_k_accuracy",
                                                   "num_samples", "tta")}
    if dist.is_chief(learner.strategy) and rundir.out.exists():
        if out is None:  # no plots, but the report still lands in metrics.json
            rundir.merge_metrics({k: v for k, v in report.items() if k != "files"})
        rundir.merge_metrics(learner.metrics)
    return report


def finish_run(learner) -> None:
    """After the last stage (and calibration): the final model (BatchNorm in inference
    mode), its validation figures, ``model.keras``, the training curves, ``metrics.json``
    and the ``complete`` status with the run directory's size."""
    from tl_kit import distribute as dist
    from tl_kit.predict import save_for_inference

    rundir, metrics = learner.rundir, learner.metrics
    learner.model = learner.classifier.assemble(train_bn=False)
    if learner.data is not None and learner.data.has("val") and dist.is_chief(learner.strategy):
        # the chief's metrics.json (other workers would only decode every val file again)
        metrics["val"] = evaluate_split(learner.model, learner.data, "val")
    if learner.save_model:  # model.keras + class_names.json: what load_for_inference reads
        save_for_inference(learner.model, learner.class_names, rundir.out)
    if learner.writes_plots() and learner.history:
        error = rundir.plot_history()
        if error:
            learner.log(f"could not plot the training curves: {error}")
    metrics["run_dir_bytes"] = learner.run_dir_bytes()  # metrics.json itself excluded
    rundir.merge_metrics(metrics)
    rundir.write_status("complete", stages=[s.name for s in learner.resolved_recipe.stages],
                        epochs=len(learner.history), run_dir_bytes=metrics["run_dir_bytes"])
    ck = metrics.get("checkpoints", {})
    learner.log(f"run directory: {learner.run_dir} ({metrics['run_dir_bytes'] / 2**20:.1f} MiB; "
                f"{ck.get('writes', 0)} checkpoint(s) written in {ck.get('seconds', 0.0):.1f}s)")
