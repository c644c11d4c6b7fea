"""A classifier's metrics on labelled data: loss, accuracy, top-k, per-class scores,
confusion matrix, most-confused pairs and the highest-loss (worst) predictions.

Example:
```python
report = evaluate_model(model, (x_test, y_test), ["cat", "dog"], out_dir="runs/pets")
print(report["accuracy"], report["most_confused"][:3])
scores = classification_scores(probs, labels, ["cat", "dog"])   # from probabilities
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tl_kit.errors import UserError
from tl_kit.evaluate.batches import iter_batches
from tl_kit.tta import predict_tta

__all__ = ["evaluate_model", "classification_scores", "WorstPredictions"]

_EPSILON = 1e-7  # keras.backend.epsilon(): the clip Keras' crossentropy uses
_HEAD = ("loss", "accuracy", "top_k", "top_k_accuracy", "num_samples")


class WorstPredictions:
    """The ``size`` highest-loss predictions seen so far (bounded memory, stable order)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.images = self.losses = self.labels = self.probs = None

    def add(self, images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
            losses: np.ndarray) -> None:
        """Offer one batch; keep the ``size`` highest losses of the kept ones and these."""
        if self.size <= 0:
            return
        if self.images is not None:
            images = np.concatenate([self.images, images])
            losses = np.concatenate([self.losses, losses])
            labels = np.concatenate([self.labels, labels])
            probs = np.concatenate([self.probs, probs])
        keep = np.argsort(-losses, kind="stable")[: self.size]
        self.images, self.losses = images[keep], losses[keep]
        self.labels, self.probs = labels[keep], probs[keep]

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def rows(self, class_names: Sequence[str]) -> list[dict]:
        """One ``{true, predicted, probability, loss}`` dict per kept prediction."""
        if self.images is None:
            return []
        return [
            {
                "true": class_names[int(t)],
                "predicted": class_names[int(p.argmax())],
                "probability": float(p.max()),
                "loss": float(loss),
            }
            for t, p, loss in zip(self.labels, self.probs, self.losses, strict=True)
        ]


def _true_class_losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], _EPSILON, 1.0))


def _check_batch(probs: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
    num_classes = len(class_names)
    if probs.shape[-1] != num_classes:
        raise UserError(
            f"The model predicts {probs.shape[-1]} classes but {num_classes} class names "
            f"were given. Received: class_names={class_names}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(
            f"Labels must lie in [0, {num_classes}). Received: labels with max={labels.max()}"
        )


def _predict_all(model, data, class_names: list[str], tta: str | None, *, split: str | None,
                 batch_size: int, worst: WorstPredictions) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of every image of ``data``; feeds ``worst`` on the way."""
    probs_parts, label_parts = [], []
    for images, labels in iter_batches(data, split=split, batch_size=batch_size):
        probs = predict_tta(model, images, tta, batch_size=batch_size)
        _check_batch(probs, labels, class_names)
        worst.add(images, labels, probs, _true_class_losses(probs, labels))
        probs_parts.append(probs)
        label_parts.append(labels)
    if not label_parts or sum(len(part) for part in label_parts) == 0:
        raise UserError("No images to evaluate: the data is empty. Received: num_samples=0")
    return np.concatenate(probs_parts), np.concatenate(label_parts)


def _most_confused(matrix: np.ndarray, class_names: list[str], count: int) -> list[dict]:
    num_classes = len(class_names)
    pairs = [
        (int(matrix[t, p]), t, p)
        for t in range(num_classes) for p in range(num_classes) if t != p and matrix[t, p] > 0
    ]
    pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [
        {"true": class_names[t], "predicted": class_names[p], "count": n}
        for n, t, p in pairs[:count]
    ]


def classification_scores(
    probs: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    top_k: int = 5,
    num_confused: int = 10,
) -> dict:
    """Scores of predicted probabilities (N, K) against integer labels (N,).

    Returns a JSON-ready dict: ``loss`` (mean crossentropy), ``accuracy``, ``top_k``
    (capped at K), ``top_k_accuracy``, ``num_samples``, ``class_names``, ``per_class``
    (precision/recall/f1-score/support), ``macro_avg``, ``weighted_avg``,
    ``confusion_matrix`` (rows: true class, columns: predicted) and ``most_confused``
    (the ``num_confused`` largest off-diagonal cells, largest first).
    """
    from sklearn.metrics import classification_report, confusion_matrix

    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
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
    return {
        "loss": float(-np.log(true_probs).mean()),
        "accuracy": float((preds == labels).mean()),
        "top_k": k,
        "top_k_accuracy": float((topk == labels[:, None]).any(axis=-1).mean()),
        "num_samples": int(len(labels)),
        "class_names": class_names,
        "per_class": per_class,
        "macro_avg": {key: float(v) for key, v in report["macro avg"].items()},
        "weighted_avg": {key: float(v) for key, v in report["weighted avg"].items()},
        "confusion_matrix": matrix.astype(int).tolist(),
        "most_confused": _most_confused(matrix, class_names, num_confused),
    }


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
    class_names = [str(name) for name in class_names]
    worst = WorstPredictions(num_worst)
    probs, labels = _predict_all(model, data, class_names, tta, split=split,
                                 batch_size=batch_size, worst=worst)
    scores = classification_scores(probs, labels, class_names, top_k=top_k,
                                   num_confused=num_confused)
    metrics = (
        {key: scores[key] for key in _HEAD}
        | {"tta": tta}
        | {key: value for key, value in scores.items() if key not in _HEAD}
        | {"worst": worst.rows(class_names), "files": {}}
    )
    if out_dir is not None:
        from tl_kit.evaluate.report import write_report

        write_report(out_dir, metrics, worst, model=model, worst_heatmaps=worst_heatmaps)
    return metrics
