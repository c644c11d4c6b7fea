"""Evaluate and interpret a classifier: metrics, confusion matrix, worst predictions, curves,
and ensembles.

Everything here works on any ``keras.Model`` that maps raw [0, 255] images (B, H, W, C) to
softmax probabilities, plus the list of class names; the learner, the CLI and notebooks all
call these functions.

- :mod:`~tl_kit.evaluate.batches`: labelled batches from arrays, tf.data or ``Data``
  (:func:`iter_batches`);
- :mod:`~tl_kit.evaluate.metrics`: :func:`evaluate_model`, :func:`classification_scores`;
- :mod:`~tl_kit.evaluate.report`: the report's files (``metrics.json``,
  ``confusion_matrix.csv``, plots) and report folders (:func:`new_report_dir`);
- :mod:`~tl_kit.evaluate.plots`: confusion matrix, worst predictions, training curves;
- :mod:`~tl_kit.evaluate.ensembles`: :func:`ensemble`;
- :mod:`~tl_kit.evaluate.sources`: which images to score (:func:`load_evaluation_data`);
- :mod:`~tl_kit.evaluate.run`: :func:`evaluate_run`, behind ``tl-kit evaluate``.

Example:
```python
report = evaluate_model(model, (x_test, y_test), ["cat", "dog"], out_dir="runs/pets")
print(report["accuracy"], report["most_confused"][:3])
big = ensemble([model_a, model_b])   # a keras.Model again
```
"""

from __future__ import annotations

from tl_kit.evaluate.batches import iter_batches
from tl_kit.evaluate.ensembles import ensemble
from tl_kit.evaluate.metrics import WorstPredictions, classification_scores, evaluate_model
from tl_kit.evaluate.plots import plot_confusion_matrix, plot_history, plot_worst
from tl_kit.evaluate.report import merge_json, new_report_dir, write_report
from tl_kit.evaluate.run import evaluate_run
from tl_kit.evaluate.sources import is_training_data, load_evaluation_data

__all__ = ["evaluate_model", "evaluate_run", "plot_history", "ensemble", "iter_batches",
           "load_evaluation_data", "is_training_data", "new_report_dir",
           "plot_confusion_matrix", "plot_worst", "classification_scores", "WorstPredictions",
           "merge_json", "write_report"]
