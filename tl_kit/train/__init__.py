"""Training: a backbone + new softmax head, trained stage by stage from a recipe.

```python
learner = tl_kit.finetune(backbone="vgg16", num_classes=3)      # builds, does not train
learner.fit("data/my_photos")                                   # folder, tf.data, arrays, "tfds:..."
learner.evaluate(); learner.predict(["a.jpg"]); learner.export("exports/my_model")
```

Modules (one job each):

* ``learner``: :class:`Learner`, the orchestration (public API);
* ``head``: the classifier (backbone + head) and the models cut from it (feature model,
  head-only model);
* ``regime``: which recipe a fit runs and why;
* ``stages``: the stage runner (freezing, optimizer, class weights, early stopping,
  :func:`tl_kit.distribute.custom_fit`); ``schedule``: optimizers and :class:`WarmupCosine`;
  ``callbacks``: the run's history, TensorBoard, BatchNorm handling;
* ``feature_cache``: features of the frozen backbone, the cached head fit, imprinting;
* ``evaluation``: the split figures after fit, ``Learner.evaluate``, finishing a run;
* ``inputs`` and ``options``: the learner's data, settings and checks before training;
* ``worker_inputs``: under ``MultiWorkerMirroredStrategy``, one pipeline per worker of its
  own files.

Every fit writes a run directory (:class:`tl_kit.rundir.RunDir` owns its format):
``config.toml`` (resolved recipe and choices), ``history.csv`` (stage, epoch, metrics),
``metrics.json``, ``checkpoints/`` (weights after each stage), ``model.keras`` +
``class_names.json`` at the end (:func:`tl_kit.predict.save_for_inference`;
:func:`tl_kit.predict.load_for_inference` reads the run directory back), ``plots/history.png``
(training curves, at the end), ``logs/`` (TensorBoard), ``train.log`` and the data
``manifest.json``. ``learner.evaluate`` adds its report to ``metrics.json`` plus
``confusion_matrix.csv`` and ``plots/``.

Run directories, resume and overwrite (what ``fit`` does with ``run_dir``):
    * Before training, ``run_dir`` is created and a probe file written: an unwritable
      location (or too little free space for the checkpoints) fails at once.
    * New or empty directory: a fresh run.
    * A COMPLETE run (``run.json`` status "complete"): :class:`~tl_kit.errors.UserError`
      unless ``overwrite=True`` (``tl-kit train --overwrite``), which deletes what tl_kit
      wrote there (config, history, metrics, model, logs, checkpoints, manifest) and
      starts again. Nothing else in the directory is touched.
    * An INCOMPLETE run (killed, crashed, NaN-stopped) with the same resolved settings
      (``config.toml``: backbone, weights, image size, classes, seed, data source,
      recipe): RESUMES. Finished stages are skipped (their weights are loaded from
      ``checkpoints/<n>_<stage>.weights.h5``); the interrupted stage continues after its
      last finished epoch from ``checkpoints/<n>_<stage>/`` (model, optimizer and
      schedule state, early-stopping state); the data split is reused from
      ``manifest.json``; ``history.csv`` holds every epoch once. The strategy, number
      of devices and precision may differ on resume.
    * An incomplete run with DIFFERENT settings: :class:`~tl_kit.errors.UserError`
      naming the directory and each differing setting, unless ``overwrite=True``.
    * Checkpoints: per stage, one model + optimizer checkpoint, written on the
      ``checkpoint_interval`` policy and at the stage's end, plus the best epoch's
      weights; a resumed stage restarts after the epoch of its last checkpoint (later
      epochs run again, each epoch once in the history). A finished stage keeps only
      ``<n>_<stage>.weights.h5`` (no optimizer state) and its ``state.json``. The run
      directory's size is logged at the end and written to run.json and metrics.json
      (``run_dir_bytes``; checkpoint writes and seconds under ``checkpoints``).
    * A NaN/inf loss stops training with :class:`tl_kit.distribute.NonFiniteLossError`;
      the model is reset to the last good epoch, whose checkpoint stays on disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tl_kit.recipes import Recipe, builtin_recipe, scratch_recipe
from tl_kit.rundir.run import config_differences
from tl_kit.train.learner import Learner
from tl_kit.train.schedule import WarmupCosine
from tl_kit.train.stages import EARLY_STOPPING_MIN_VAL, SMALL_VAL_SMOOTHING

__all__ = ["Learner", "finetune", "WarmupCosine", "scratch_recipe", "builtin_recipe",
           "config_differences", "EARLY_STOPPING_MIN_VAL", "SMALL_VAL_SMOOTHING"]


def finetune(
    backbone: str = "vgg16",
    num_classes: int | None = None,
    data=None,
    regime: str = "auto",
    recipe: Recipe | str | os.PathLike | None = None,
    weights: Any = "auto",
    image_size: int | Sequence[int] | None = None,
    run_dir: str | os.PathLike | None = None,
    strategy: Any = "auto",
    precision: str = "auto",
    jit_compile: bool | str = "auto",
    overwrite: bool = False,
    **kwargs: Any,
) -> Learner:
    """Build a learner (backbone + new softmax head); with ``data`` also train it.

    ``weights="auto"`` means ImageNet where published (Keras Applications, and tl_kit names
    with a Keras twin such as ``"resnet50"``), else random initialisation. Offline without
    the cached file, ImageNet fails at once naming the file and the folder to put it in.
    ``strategy``, ``precision``, ``jit_compile`` and ``overwrite`` are :class:`Learner`'s
    (rerunning the same call on the same ``run_dir`` after a crash resumes it).

    Example:
    ```python
    learner = tl_kit.finetune(backbone="lenet5", weights=None, data=(x, y))
    ```
    """
    learner = Learner(backbone, num_classes, regime=regime, recipe=recipe, weights=weights,
                      image_size=image_size, run_dir=run_dir, strategy=strategy,
                      precision=precision, jit_compile=jit_compile, overwrite=overwrite, **kwargs)
    if data is not None:
        learner.fit(data)
    return learner
