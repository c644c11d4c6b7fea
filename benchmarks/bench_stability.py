"""Spread of test accuracy over seeds on a small real photo set: early stopping on a tiny
validation set (before) against tl_kit's small-validation rule (after).

Data: ``data/textures`` (3 classes x 40 real photo crops: brick, grass, gravel). Fixed split,
the same for every run: in each class, the files sorted by name, every 4th file (10 per
class, 30 in all) is the TEST set; the other 30 per class (90) are given to the learner,
which carves its validation split (20 %, stratified, by the run's seed: 18 images) out of
them. Images are decoded once with tl_kit's own decoder (``tl_kit.data.decode_image_file``).

Each run: the same command with ``seed`` 0..n-1 (initialisation, validation carve,
shuffling, augmentation): ``scratch_recipe`` (every layer from random weights, BatchNorm in
training mode, light augmentation) with early stopping patience 5 on validation loss; with
``weights=...`` (pretrained backbones) the built-in ``small`` recipe (head on cached
features) with the same patience.

- **before**: early stopping decides on the 18 validation images (the minimum lowered to
  0, i.e. what tl_kit did before: stop when val_loss has not improved for 5 epochs, keep
  the best epoch's weights);
- **after**: tl_kit's rule (``tl_kit.train.EARLY_STOPPING_MIN_VAL`` = 100 validation
  images): below it the full schedule runs and the best epoch is chosen by val_loss
  averaged over ``SMALL_VAL_SMOOTHING`` (3) epochs.

Reported: test accuracy and epochs run of every run; per side the mean, the sample standard
deviation (``ddof=1``) over the seeds, min and max. Target: std <= 0.05 after.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import load_snapshot

DATA = Path(__file__).resolve().parent.parent / "data" / "textures"


def split_textures(size: int, root: Path = DATA) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str]]:
    """``((x_learn, y_learn), (x_test, y_test), class_names)``: every 4th file of each class
    (sorted by name) is test, the rest is for the learner; uint8 images at ``size``."""
    from tl_kit.data import decode_image_file

    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    learn: tuple[list, list] = ([], [])
    test: tuple[list, list] = ([], [])
    for c, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.is_file())
        for i, path in enumerate(files):
            img, _ = decode_image_file(path, (size, size), 3)
            part = test if i % 4 == 0 else learn
            part[0].append(img)
            part[1].append(c)
    arr = lambda p: (np.stack(p[0]), np.array(p[1], dtype="int64"))  # noqa: E731
    return arr(learn), arr(test), classes


def run_one(learn, test, classes, *, backbone: str, size: int, epochs: int, seed: int,
            rule: bool, tmp: str, weights: str | None = None) -> dict[str, Any]:
    """One seed: fit on ``learn`` (validation carved by tl_kit), accuracy on ``test``.
    ``weights=None``: the scratch recipe; pretrained weights: the built-in ``small`` recipe
    (head on cached features), both with ``epochs`` and patience 5."""
    import keras

    import tl_kit.train as T
    from tl_kit.recipes import builtin_recipe

    if weights is None:
        recipe = T.scratch_recipe(epochs, early_stopping=5, augment="light")
    else:
        recipe = builtin_recipe("small").with_stage_overrides(epochs=epochs, early_stopping=5)

    saved = T.stages.EARLY_STOPPING_MIN_VAL
    T.stages.EARLY_STOPPING_MIN_VAL = saved if rule else 0
    try:
        keras.backend.clear_session()
        t = time.perf_counter()
        learner = T.Learner(backbone, len(classes), class_names=classes, weights=weights,
                            image_size=size, channels=3, recipe=recipe,
                            run_dir=os.path.join(tmp, f"{backbone}-{size}-{'after' if rule else 'before'}-{seed}"),
                            seed=seed, verbose=0, tensorboard=False)
        learner.fit({"train": learn})
        probs = learner.model.predict(test[0].astype("float32"), verbose=0, batch_size=64)
        return {"seed": seed, "test_accuracy": float(np.mean(probs.argmax(1) == test[1])),
                "epochs_run": len(learner.history), "val_images": int(learner.data.size("val")),
                "seconds": round(time.perf_counter() - t, 1)}
    finally:
        T.stages.EARLY_STOPPING_MIN_VAL = saved


def _spread(rows: list[dict]) -> dict[str, float]:
    acc = np.array([r["test_accuracy"] for r in rows])
    return {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "min": float(acc.min()), "max": float(acc.max())}


def bench_stability(backbone: str = "lenet5", size: int = 32, epochs: int = 30, seeds: int = 5,
                    weights: str | None = None) -> dict[str, Any]:
    """Test accuracy over ``seeds`` seeds, before (early stopping on the tiny validation set)
    and after (tl_kit's small-validation rule), runs alternated; mean and std per side."""
    learn, test, classes = split_textures(size)
    out: dict[str, Any] = {"data": "data/textures (3 classes x 40 real photo crops)",
                           "split": "every 4th file per class (sorted) = test (30); 90 to the learner, "
                                    "which carves 20% validation by seed",
                           "backbone": backbone, "image_size": size,
                           "weights": "none (scratch recipe)" if weights is None else f"{weights} (small recipe)",
                           "epochs": epochs, "patience": 5, "seeds": seeds,
                           "learn_images": len(learn[1]), "test_images": len(test[1]),
                           "load_before": load_snapshot()}
    rows: dict[str, list] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            order = ("before", "after") if seed % 2 == 0 else ("after", "before")
            for side in order:
                rows[side].append(run_one(learn, test, classes, backbone=backbone, size=size,
                                          epochs=epochs, seed=seed, rule=side == "after", tmp=tmp,
                                          weights=weights))
    out.update({side: _spread(r) for side, r in rows.items()})
    out.update({"runs": rows, "load_after": load_snapshot()})
    return out


if __name__ == "__main__":
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(json.dumps(bench_stability(**{k: int(v) if v.isdigit() else v for k, v in
                                        (a.split("=") for a in sys.argv[1:])}), indent=1))
