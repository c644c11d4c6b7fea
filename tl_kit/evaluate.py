"""Evaluate and interpret a classifier: metrics, confusion matrix, worst predictions, curves,
and ensembles.

Everything here works on any ``keras.Model`` that maps raw [0, 255] images (B, H, W, C) to
softmax probabilities, plus the list of class names; the learner, the CLI and notebooks all
call these functions.

Example:
```python
report = evaluate_model(model, (x_test, y_test), ["cat", "dog"], out_dir="runs/pets")
print(report["accuracy"], report["most_confused"][:3])
big = ensemble([model_a, model_b])   # a keras.Model again
```
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tl_kit._io import write_json_atomic
from tl_kit.errors import UserError
from tl_kit.tta import model_image_size, predict_tta

__all__ = ["evaluate_model", "evaluate_run", "plot_history", "ensemble", "iter_batches",
           "load_evaluation_data", "is_training_data", "new_report_dir"]

_EPSILON = 1e-7  # keras.backend.epsilon(): the clip Keras' crossentropy uses


# === Data ===


def _labels_to_int(labels, num_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.argmax(axis=-1).astype(np.int64)
    if labels.ndim == 1:
        return labels.astype(np.int64)
    raise UserError(
        "Labels must be integers (N,) or one-hot (N, num_classes). "
        f"Received: labels.shape={labels.shape}"
    )


def _default_split(data) -> str:
    for split in ("test", "val"):
        if data.has(split):
            return split
    return "train"


def iter_batches(data, *, split: str | None = None, batch_size: int = 32):
    """Yield ``(images float32 (B,H,W,C), int labels (B,))`` from any supported source.

    ``data`` is ``(x, y)`` arrays (y integer or one-hot), a ``tf.data.Dataset`` of
    ``(images, labels)`` batches, or a ``tl_kit.data.Data`` (``split`` defaults to "test",
    else "val", else "train").
    """
    if isinstance(data, tuple | list) and len(data) == 2:
        images = np.asarray(data[0], np.float32)
        labels = _labels_to_int(data[1])
        if images.ndim != 4 or len(images) != len(labels):
            raise UserError(
                "Expected (images (N,H,W,C), labels (N,)) with matching N. "
                f"Received: images.shape={images.shape}, labels.shape={labels.shape}"
            )
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]
        return
    if hasattr(data, "dataset") and hasattr(data, "has"):
        split = split or _default_split(data)
        data = data.dataset(split, batch_size=batch_size, training=False, shuffle=False)
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        for images, labels in data.as_numpy_iterator():
            yield np.asarray(images, np.float32), _labels_to_int(labels)
        return
    raise UserError(
        "data must be (images, labels) arrays, a tf.data.Dataset of (images, labels) or a "
        f"tl_kit Data object. Received: data={type(data).__name__}"
    )


# === Metrics ===


def evaluate_model(
    model,
    data,
    class_names: Sequence[str],
    out_dir: str | os.PathLike | None = None,
    tta: str | None = None,
    top_k: int = 5,
    *,
    split: str | None = None,
    batch_size: int = 32,
    num_worst: int = 16,
    num_confused: int = 10,
    worst_heatmaps: bool = True,
) -> dict:
    """Evaluate a classifier and, with ``out_dir``, save the report and plots.

    Args:
        model: keras.Model mapping raw [0, 255] images to probabilities.
        data: ``(x, y)`` arrays, a ``tf.data.Dataset`` of ``(images, labels)`` or a tl_kit
            ``Data`` (see :func:`iter_batches`).
        class_names: one name per output unit, in order.
        out_dir: where to write ``metrics.json``, ``confusion_matrix.csv`` and
            ``plots/confusion_matrix.png``, ``plots/worst_predictions.png``; None writes nothing.
        tta: None, ``"flip"`` or ``"multicrop"`` (see :mod:`tl_kit.tta`).
        top_k: k of the top-k accuracy (capped at the number of classes).
        split: which split of a ``Data`` object (default "test", else "val").
        num_worst: images in the worst-predictions grid (highest loss).
        num_confused: how many most-confused (true, predicted) pairs to list.
        worst_heatmaps: overlay each worst prediction with its Grad-CAM heatmap (of the
            predicted class, :mod:`tl_kit.explain`) where the model allows it (a Keras
            classifier with a backbone sub-model); otherwise the plain images.

    Returns:
        A JSON-ready dict: ``loss``, ``accuracy``, ``top_k``, ``top_k_accuracy``,
        ``num_samples``, ``per_class`` (precision/recall/f1/support), ``macro_avg``,
        ``weighted_avg``, ``confusion_matrix``, ``most_confused``, ``worst``, ``files``.

    Example:
    ```python
    report = evaluate_model(model, data, data.info.class_names, out_dir=run_dir, tta="flip")
    ```
    """
    from sklearn.metrics import classification_report, confusion_matrix

    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
    probs_parts, label_parts = [], []
    worst_images = worst_losses = worst_labels = worst_probs = None
    offset = 0
    for images, labels in iter_batches(data, split=split, batch_size=batch_size):
        probs = predict_tta(model, images, tta, batch_size=batch_size)
        if probs.shape[-1] != num_classes:
            raise UserError(
                f"The model predicts {probs.shape[-1]} classes but {num_classes} class names "
                f"were given. Received: class_names={class_names}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise UserError(
                f"Labels must lie in [0, {num_classes}). Received: labels with max={labels.max()}"
            )
        losses = -np.log(np.clip(probs[np.arange(len(labels)), labels], _EPSILON, 1.0))
        probs_parts.append(probs)
        label_parts.append(labels)
        # Keep only the `num_worst` highest-loss images seen so far (bounded memory).
        if num_worst > 0:
            cand_images = images if worst_images is None else np.concatenate([worst_images, images])
            cand_losses = losses if worst_losses is None else np.concatenate([worst_losses, losses])
            cand_labels = labels if worst_labels is None else np.concatenate([worst_labels, labels])
            cand_probs = probs if worst_probs is None else np.concatenate([worst_probs, probs])
            keep = np.argsort(-cand_losses, kind="stable")[:num_worst]
            worst_images, worst_losses = cand_images[keep], cand_losses[keep]
            worst_labels, worst_probs = cand_labels[keep], cand_probs[keep]
        offset += len(labels)
    if offset == 0:
        raise UserError("No images to evaluate: the data is empty. Received: num_samples=0")

    probs = np.concatenate(probs_parts)
    labels = np.concatenate(label_parts)
    preds = probs.argmax(axis=-1)
    k = max(1, min(int(top_k), num_classes))
    topk = np.argsort(-probs, axis=-1)[:, :k]
    true_probs = np.clip(probs[np.arange(len(labels)), labels], _EPSILON, 1.0)
    matrix = confusion_matrix(labels, preds, labels=list(range(num_classes)))
    report = classification_report(
        labels, preds, labels=list(range(num_classes)), target_names=class_names,
        output_dict=True, zero_division=0,
    )
    per_class = {
        name: {key: float(report[name][key]) for key in ("precision", "recall", "f1-score")}
        | {"support": int(report[name]["support"])}
        for name in class_names
    }
    pairs = [
        (int(matrix[t, p]), t, p)
        for t in range(num_classes) for p in range(num_classes) if t != p and matrix[t, p] > 0
    ]
    pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
    most_confused = [
        {"true": class_names[t], "predicted": class_names[p], "count": count}
        for count, t, p in pairs[:num_confused]
    ]
    metrics = {
        "loss": float(-np.log(true_probs).mean()),
        "accuracy": float((preds == labels).mean()),
        "top_k": k,
        "top_k_accuracy": float((topk == labels[:, None]).any(axis=-1).mean()),
        "num_samples": int(len(labels)),
        "tta": tta,
        "class_names": class_names,
        "per_class": per_class,
        "macro_avg": {key: float(v) for key, v in report["macro avg"].items()},
        "weighted_avg": {key: float(v) for key, v in report["weighted avg"].items()},
        "confusion_matrix": matrix.astype(int).tolist(),
        "most_confused": most_confused,
        "worst": [
            {
                "true": class_names[int(t)],
                "predicted": class_names[int(p.argmax())],
                "probability": float(p.max()),
                "loss": float(loss),
            }
            for t, p, loss in zip(
                worst_labels if worst_labels is not None else [],
                worst_probs if worst_probs is not None else [],
                worst_losses if worst_losses is not None else [],
                strict=True,
            )
        ],
        "files": {},
    }
    if out_dir is not None:
        out = Path(out_dir)
        plots = out / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        files = metrics["files"]
        files["confusion_matrix_csv"] = str(_write_confusion_csv(matrix, class_names, out))
        files["confusion_matrix_png"] = str(
            plot_confusion_matrix(matrix, class_names, plots / "confusion_matrix.png")
        )
        if worst_images is not None and len(worst_images):
            files["worst_predictions_png"] = str(
                plot_worst(worst_images, worst_labels, worst_probs, class_names,
                           plots / "worst_predictions.png",
                           heatmaps=_worst_heatmaps(model, worst_images) if worst_heatmaps else None)
            )
        files["metrics_json"] = str(out / "metrics.json")
        _merge_json(out / "metrics.json", metrics)
    return metrics


def _merge_json(path: Path, payload: dict) -> None:
    """Write ``payload`` into the JSON object at ``path``, keeping keys others wrote there.

    A run directory's ``metrics.json`` is shared: training writes its own figures
    (``train_seconds``, ``val``) and evaluation adds its report beside them.
    """
    merged: dict = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            merged = old if isinstance(old, dict) else {}
        except (OSError, ValueError):
            merged = {}
    merged.update(payload)
    write_json_atomic(path, merged)




def _write_confusion_csv(matrix: np.ndarray, class_names: Sequence[str], out: Path) -> Path:
    path = out / "confusion_matrix.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true\\predicted", *class_names])
        for name, row in zip(class_names, matrix, strict=True):
            writer.writerow([name, *(int(v) for v in row)])
    return path


# === Plots ===


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(
    matrix, class_names: Sequence[str], out_png: str | os.PathLike
) -> Path:
    """Save a confusion matrix (rows: true class, columns: predicted) as a PNG."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = len(class_names)
    side = min(4 + 0.45 * n, 30)
    fig, ax = plt.subplots(figsize=(side, side))
    try:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(n), labels=class_names, rotation=90 if n > 6 else 0)
        ax.set_yticks(range(n), labels=class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 30:
            threshold = matrix.max() / 2 if matrix.size else 0
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > threshold else "black")
        fig.tight_layout()
        fig.savefig(out_png, dpi=100)
    finally:
        plt.close(fig)
    return Path(out_png)


def _worst_heatmaps(model, images) -> np.ndarray | None:
    """Grad-CAM heatmaps of ``images`` (predicted class), or None where the model has no
    backbone/``predictions`` chain to explain (an ensemble, an export): a plot extra only."""
    try:
        from tl_kit.explain import gradcam

        return gradcam(model, images)["heatmaps"]
    except Exception:  # noqa: BLE001 - never lose an evaluation over its heatmaps
        return None


def plot_worst(
    images, labels, probs, class_names: Sequence[str], out_png: str | os.PathLike,
    heatmaps: np.ndarray | None = None,
) -> Path:
    """Save a grid of images titled ``true -> predicted (p)``, e.g. the highest-loss ones;
    with ``heatmaps`` (N, H, W) in [0, 1], each image carries its Grad-CAM overlay."""
    plt = _pyplot()
    count = len(images)
    cols = min(4, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    try:
        for ax in axes.ravel():
            ax.axis("off")
        for i, (ax, image, label, prob) in enumerate(zip(axes.ravel(), images, labels, probs, strict=False)):
            pixels = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
            if heatmaps is not None:
                from tl_kit.explain import overlay

                ax.imshow(overlay(pixels, heatmaps[i]))
            elif pixels.shape[-1] == 1:
                ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(pixels)
            pred = int(np.argmax(prob))
            ax.set_title(
                f"{class_names[int(label)]} -> {class_names[pred]}\n"
                f"p={prob[pred]:.2f}, p(true)={prob[int(label)]:.2f}",
                fontsize=9,
            )
        fig.tight_layout()
        fig.savefig(out_png, dpi=100)
    finally:
        plt.close(fig)
    return Path(out_png)


def _read_history(history) -> list[dict]:
    if isinstance(history, str | os.PathLike):
        with open(history, newline="") as handle:
            return list(csv.DictReader(handle))
    if hasattr(history, "to_dict"):  # pandas DataFrame
        return history.to_dict("records")
    if isinstance(history, dict):  # keras History.history: {metric: [values]}
        length = max((len(v) for v in history.values()), default=0)
        return [{key: values[i] for key, values in history.items()} for i in range(length)]
    return list(history)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def plot_history(history, out_png: str | os.PathLike) -> Path:
    """Plot training curves (loss and accuracy, train and validation) across all stages.

    Args:
        history: path to ``history.csv`` (columns ``stage, epoch, loss, accuracy, val_loss,
            val_accuracy, ...``), a DataFrame, a list of row dicts, or a Keras
            ``History.history`` dict.
        out_png: PNG to write. Stage boundaries are drawn as dashed vertical lines.

    Example:
    ```python
    plot_history("runs/pets/history.csv", "runs/pets/plots/history.png")
    ```
    """
    rows = _read_history(history)
    if not rows:
        raise UserError(f"The training history is empty. Received: history={history!r}")
    plt = _pyplot()
    columns = list(rows[0].keys())
    x = np.arange(1, len(rows) + 1)
    stages = [str(row.get("stage", "")) for row in rows]
    panels = [m for m in ("loss", "accuracy") if m in columns or f"val_{m}" in columns]
    if not panels:
        raise UserError(
            "The history has neither loss nor accuracy columns. "
            f"Received: columns={columns}"
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], panels, strict=True):
            for key, style in ((metric, "-"), (f"val_{metric}", "--")):
                if key in columns:
                    ax.plot(x, [_number(row.get(key)) for row in rows], style, marker="o",
                            markersize=3, label=key)
            for i in range(1, len(stages)):
                if stages[i] != stages[i - 1]:
                    ax.axvline(i + 0.5, color="grey", linestyle=":", linewidth=1)
            starts = [0] + [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
            for start in starts:
                if stages[start]:
                    ax.annotate(stages[start], (x[start], 1.0), xycoords=("data", "axes fraction"),
                                xytext=(2, -12), textcoords="offset points", fontsize=8)
            ax.set_xlabel("epoch (all stages)")
            ax.set_title(metric)
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        Path(out_png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, dpi=100)
    finally:
        plt.close(fig)
    return Path(out_png)


# === Ensembles ===


def ensemble(
    models: Sequence,
    weights: Sequence[float] | None = None,
    name: str = "ensemble",
    *,
    image_size: Sequence[int] | None = None,
):
    """Average (or weight) several classifiers' probabilities into one ``keras.Model``.

    The ensemble takes raw images at ``image_size`` (default: the largest member input)
    and resizes them inside the graph (a ``Resizing`` layer per member whose size differs),
    so members may use different backbones and input sizes. The result saves to ``.keras``,
    evaluates, predicts and exports like any other model.

    Args:
        models: two or more keras.Models with the same number of classes and channels.
        weights: one non-negative weight per model (normalised to sum 1); None averages.
        name: the ensemble model's name.
        image_size: ``(height, width)`` of the ensemble input.

    Example:
    ```python
    both = ensemble([vgg_model, mobilenet_model], weights=[2, 1])
    probs = both.predict(images)
    ```
    """
    import keras

    models = list(models)
    if len(models) < 1:
        raise UserError(f"ensemble needs at least one model. Received: models={models}")
    channels = {m.input_shape[-1] for m in models}
    outputs = {m.output_shape[-1] for m in models}
    if len(channels) != 1 or len(outputs) != 1:
        raise UserError(
            "Ensemble members must take the same channels and predict the same classes. "
            f"Received: channels={sorted(channels)}, num_classes={sorted(outputs)}"
        )
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise UserError(
                "weights must hold one non-negative number per model, not all zero. "
                f"Received: weights={weights}"
            )
        weights = [w / sum(weights) for w in weights]
    sizes = [model_image_size(m) for m in models]
    if image_size is None:
        known = [s for s in sizes if s is not None]
        image_size = max(known, key=lambda s: (s[0] * s[1], s)) if known else (None, None)
    height, width = image_size
    inputs = keras.Input((height, width, channels.pop()), name="image")
    seen: set[str] = set()
    member_outputs = []
    for i, (model, size) in enumerate(zip(models, sizes, strict=True)):
        x = inputs
        if size is not None and tuple(size) != (height, width):
            x = keras.layers.Resizing(*size, name=f"member{i}_resize")(x)
        if model.name in seen or model.name == name:
            # Two members (or member and ensemble) with one name: nest under a unique name.
            inner = keras.Input(model.input_shape[1:])
            model = keras.Model(inner, model(inner), name=f"member{i}_{model.name}")
        seen.add(model.name)
        probs = model(x)
        if weights is not None:
            probs = keras.layers.Rescaling(weights[i], name=f"member{i}_weight")(probs)
        member_outputs.append(probs)
    if len(member_outputs) == 1:
        outputs_ = keras.layers.Identity(name="predictions")(member_outputs[0])
    elif weights is None:
        outputs_ = keras.layers.Average(name="predictions")(member_outputs)
    else:
        outputs_ = keras.layers.Add(name="predictions")(member_outputs)
    return keras.Model(inputs, outputs_, name=name)


# === Evaluation data ===


def _manifest(run_dir) -> dict | None:
    """The run's split manifest (``run_dir/manifest.json``), or None."""
    if run_dir is None:
        return None
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _manifest_source(manifest: dict | None) -> str | None:
    if not manifest:
        return None
    return manifest.get("source_path") or manifest.get("source")


def is_training_data(source, run_dir) -> bool:
    """Whether ``source`` (a folder or ``"tfds:NAME"``) is the data the run in ``run_dir``
    trained on, by its split manifest: same folder (resolved path) or same tfds name."""
    trained = _manifest_source(_manifest(run_dir))
    if trained is None:
        return False
    if str(source).startswith("tfds:") or str(trained).startswith("tfds:"):
        return str(source) == str(trained)
    try:
        return os.path.realpath(os.fspath(source)) == os.path.realpath(trained)
    except (OSError, ValueError):
        return False


def load_evaluation_data(source, *, image_size, channels: int, class_names, split: str | None = None,
                         run_dir=None):
    """Load ``source`` for evaluation -> ``(Data, split, how)``; nothing is written anywhere.

    * The run's own data (``source`` is the folder or tfds name the run in ``run_dir`` was
      trained on, or None): the run's split manifest decides, read only; ``split`` defaults
      to "test", else "val".
    * A folder split into ``train/``, ``val/`` (``validation/``), ``test/`` sub-folders:
      ``split`` picks that folder (default "test", else "val").
    * Any other folder (or tfds name): all of it. A ``split`` is then an error: the run's
      manifest does not describe these files, and such a folder has no split of its own.

    ``how`` says which of these happened, for the report.
    """
    from tl_kit.data import SPLITS, _split_subfolders, load_data

    manifest = _manifest(run_dir)
    own = source is None or is_training_data(source, run_dir)
    if source is None:
        source = _manifest_source(manifest)
        if source is None:
            raise UserError(
                f"No data given and {run_dir} has no split manifest naming its training data; "
                f"pass the folder to evaluate (--data). Received: data=None")
    if split is not None and split not in SPLITS:
        alias = {"validation": "val", "valid": "val"}.get(split)
        if alias is None:
            raise UserError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        split = alias
    names = [str(c) for c in class_names] if class_names else None
    common = dict(image_size=image_size, channels=channels, class_names=names)
    layout = None if str(source).startswith("tfds:") else _split_subfolders(Path(source))
    if own and manifest is not None:
        data = load_data(source, **common, run_dir=str(run_dir), record=False,
                         seed=int(manifest.get("seed", 0)),
                         validation_split=float(manifest.get("validation_split") or 0.0),
                         test_split=float(manifest.get("test_split") or 0.0))
        how = f"the run's own training data: the {{split}} split of its manifest ({run_dir}/manifest.json)"
    elif layout is not None:
        data = load_data(source, **common, validation_split=0.0)
        how = "the {split} folder of " + str(source)
    else:
        if split is not None:
            raise UserError(
                f"{source} is neither split into train/val/test sub-folders nor the data this "
                f"run was trained on, so it has no {split!r} split: leave the split out to "
                f"evaluate all of it, or pass the split's own folder. Received: split={split!r}")
        data = load_data(source, **common, validation_split=0.0)
        return (_align_classes(data, names, source), "train",
                f"all {data.size('train')} images of {source}")
    if split is None:
        split = next((s for s in ("test", "val") if data.has(s)), None)
        if split is None:
            have = [s for s in SPLITS if data.has(s)]
            raise UserError(
                f"{source} holds no test or val split (it has {have}); pass the split to "
                f"evaluate (--split). Received: split=None")
    data._get(split)  # a clear error when that split is absent
    return _align_classes(data, names, source), split, how.format(split=split)


def _align_classes(data, names: list[str] | None, source):
    """Relabel ``data`` to the model's class order by name (a folder may hold fewer classes,
    sorted differently); a class the model does not know is an error."""
    if not names or data.class_names == names:
        return data
    unknown = [c for c in data.class_names if c not in names]
    if unknown:
        raise UserError(
            f"{source} has class folder(s) {unknown} that the model does not predict (it knows "
            f"{names}). Received: {unknown!r}")
    from tl_kit.data import _make_info

    remap = np.array([names.index(c) for c in data.class_names], np.int64)
    for part in data._splits.values():
        part.labels = remap[part.labels]
    data.info = _make_info(names, data.info.channels, data.info.source,
                           {s: v.labels for s, v in data._splits.items()}, data.info.skipped)
    return data


def _report_name(source, split: str) -> str:
    """``<data-name>-<split>`` for the report folder (file-system safe)."""
    raw = str(source).rstrip("/\\") if source is not None else "data"
    name = Path(raw).name or raw
    if raw.startswith("tfds:"):
        name = raw[5:].replace("/", "_")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "data"
    return f"{safe}-{split}"


def new_report_dir(base: str | os.PathLike, source, split: str) -> Path:
    """A new folder ``base/<data-name>-<split>-<n>`` (n = 1, 2, ...: never an existing one)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stem = _report_name(source, split)
    n = 1
    while True:
        folder = base / f"{stem}-{n}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


# === Run directories (CLI entry point) ===


def evaluate_run(
    run_dir: str | os.PathLike,
    data=None,
    *,
    split: str | None = None,
    out_dir: str | os.PathLike | None = None,
    tta: str | None = None,
    top_k: int = 5,
    batch_size: int = 32,
) -> dict:
    """Evaluate the model saved in a run (or export) directory; backs ``tl-kit evaluate``.

    ``data`` is a source for ``tl_kit.data.load_data`` (folder, ``"tfds:NAME"``), loaded as
    :func:`load_evaluation_data` says: the run's own data (or ``data=None``) by the run's
    split manifest (default its test split, else val); a folder with ``train/ val/ test/``
    sub-folders by ``split`` (default test, else val); any other folder all of it. Or
    anything :func:`evaluate_model` accepts (arrays, tf.data, ``Data``).

    Nothing in ``run_dir`` that training wrote is changed. The report goes into a new folder
    ``<out_dir>/<data-name>-<split>-<n>/`` (``out_dir`` defaults to ``run_dir/evaluations``):
    ``metrics.json``, ``confusion_matrix.csv``, ``plots/``, and for folders the hygiene
    report of the evaluated data (``hygiene.csv``, ``hygiene.json``). The returned report
    names that folder in ``files["report_dir"]`` and what was evaluated in ``evaluated``.
    """
    from tl_kit.predict import load_for_inference

    model, class_names = load_for_inference(run_dir)
    run = Path(run_dir)
    home = run if run.is_dir() else run.parent
    evaluated = {"data": None, "split": split, "how": "the data given"}
    if data is None or isinstance(data, str | os.PathLike):
        size = model_image_size(model)
        if size is None:
            raise UserError(
                f"The model in {run_dir} has no fixed input size to load images at. "
                f"Received: input_shape={model.input_shape}"
            )
        source = None if data is None else str(data)
        data, split, how = load_evaluation_data(
            source, image_size=size, channels=int(model.input_shape[-1]),
            class_names=class_names, split=split, run_dir=home if home.is_dir() else None)
        evaluated = {"data": data.info.source, "split": split, "how": how,
                     "skipped": [list(s) for s in data.info.skipped]}
        name_source = source if source is not None else data.info.source
    else:
        name_source = "data"
    base = Path(out_dir) if out_dir is not None else home / "evaluations"
    folder = new_report_dir(base, name_source, split or "all")
    report = evaluate_model(model, data, class_names, out_dir=folder, tta=tta, top_k=top_k,
                            split=split, batch_size=batch_size)
    hygiene = getattr(data, "hygiene", None)
    if hygiene:  # the evaluated split's files, plus every file skipped while loading
        keep = set(data.paths(split) or []) if split is not None else set()
        hygiene = [r for r in hygiene if r.path in keep or r.status != "ok"]
        from tl_kit.data import _write_hygiene

        _write_hygiene(folder, hygiene, Path(str(evaluated["data"])))
        report["files"]["hygiene_csv"] = str(folder / "hygiene.csv")
        report["files"]["hygiene_json"] = str(folder / "hygiene.json")
    report["files"]["report_dir"] = str(folder)
    report["evaluated"] = evaluated
    write_json_atomic(folder / "metrics.json", report)
    return report
