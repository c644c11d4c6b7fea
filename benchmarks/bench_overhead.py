"""Overhead: tl_kit's training-step throughput against the Keras transfer-learning guide.

For each regime the same network (Keras Applications MobileNetV2, ``weights=None``), input
size, batch size and in-memory data are trained two ways:

- **tl_kit**: ``Learner(...).fit(Data)`` with a one-stage recipe: the built-in recipe's stage
  for that regime (``small``: the head stage with the feature cache turned off, so the
  frozen backbone runs in the loop as in the guide; ``medium``: the ``finetune`` stage, the
  last ``default_unfreeze`` blocks trainable; ``large``: the ``finetune`` stage, every layer),
  augmentation off, early stopping off, no validation split.
- **guide**: the hand-written loop of https://keras.io/guides/transfer_learning/ -
  ``Rescaling -> base_model(x, training=False) -> GlobalAveragePooling2D -> Dropout -> Dense``,
  ``base_model.trainable = False`` for the head-only fit; for fine-tuning
  ``base_model.trainable = True`` and ``for layer in base.layers[:fine_tune_at]:
  layer.trainable = False`` at the same block boundary, BatchNormalization frozen (the same
  trainable variables as tl_kit), the same optimizer and learning rate, ``model.fit(x, y)``.

Steady-state throughput excludes tracing/compilation and the first epoch: a Keras
callback on both sides (tl_kit's through ``Learner._callbacks``, the hook every stage's
callbacks come from, whether the stage runs ``model.fit`` or ``tl_kit.distribute.custom_fit``)
records the wall time of every epoch; rate = images per epoch / median epoch time over
epochs 2..E. If the hook ever stops reaching the training loop, the timing falls back to
the difference of two whole fits (``e`` and 1 epochs), which cancels every fixed cost too.
The runs of the two sides alternate (tl, guide, then guide, tl, ...) to cancel drift from
other load on the machine; the reported ratio is the median over repeats of
tl_kit rate / guide rate.

``backbone="efficientnet_lite0"``: the same on tl_kit's ImageNet-pretrained
EfficientNet-Lite0 (bundled weights, both sides ``weights="imagenet"``; its normalisation is
inside the network, so the guide's Rescaling is the identity).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks._common import digits_rgb, guide_model, load_snapshot, median, mobilenetv2

REGIMES = ("small", "medium", "large")
BACKBONE = "mobilenet_v2"


def _stage(regime: str, epochs: int, batch: int = 32):
    import dataclasses

    from tl_kit.recipes import builtin_recipe

    r = builtin_recipe(regime)
    st = r.stages[0] if regime == "small" else r.stages[-1]
    return dataclasses.replace(st, epochs=epochs, augment="none", early_stopping=0,
                               cache_features=False, warmup_epochs=0,
                               batch_size=batch), r.dropout


def _backbone_fn(backbone: str):
    if backbone == "efficientnet_lite0":
        def lite0(shape):
            import tl_kit

            return tl_kit.build_model("efficientnet_lite0", include_top=False, weights="imagenet",
                                      input_shape=shape)
        return lite0, (1.0, 0.0)
    return mobilenetv2, (1 / 127.5, -1.0)


def fine_tune_at(regime: str, size: int, backbone: str = BACKBONE) -> int:
    """Index of the first backbone layer the learner trains in ``regime`` (0: all, -1: none)."""
    import keras

    from tl_kit.backbones import assign_blocks, resolve_backbone

    if regime == "small":
        return -1
    if regime == "large":
        return 0
    spec = resolve_backbone(backbone, None)[0]
    keras.backend.clear_session()
    inner = spec.build((size, size, 3), weights=None)
    groups = [g for g in assign_blocks(inner, spec.blocks) if g]
    first = groups[len(groups) - spec.default_unfreeze][0].name
    return [layer.name for layer in inner.layers].index(first)


def _epoch_rate(clock_rows: list, images: int) -> float | None:
    """images / median epoch time over epochs 2..E (None with fewer than 2 epochs)."""
    ends = [t for t, _ in clock_rows]
    if len(ends) < 2:
        return None
    return images / median([b - a for a, b in zip(ends[:-1], ends[1:], strict=False)])


def run_tl_kit(regime: str, data, size: int, epochs: int, batch: int, run_dir: str,
               backbone: str = BACKBONE) -> dict:
    """``Learner.fit`` for ``epochs`` epochs of the regime's stage: seconds and epoch ends."""
    import keras

    from benchmarks._common import EpochClock
    from tl_kit.recipes import Recipe
    from tl_kit.train import Learner

    clock = EpochClock()

    class _Timed(Learner):
        def _callbacks(self, *args, **kwargs):
            cbs = list(super()._callbacks(*args, **kwargs))
            clock.start = time.perf_counter()
            return [*cbs, clock]

    stage, dropout = _stage(regime, epochs, batch)
    keras.backend.clear_session()
    weights = "imagenet" if backbone == "efficientnet_lite0" else None
    learner = _Timed(backbone, data.info.num_classes, weights=weights, image_size=size,
                     recipe=Recipe(name=regime, stages=[stage], dropout=dropout, head_pool="avg"),
                     run_dir=run_dir, verbose=0, tensorboard=False, save_model=False)
    t = time.perf_counter()
    learner.fit(data)
    return {"seconds": time.perf_counter() - t, "epochs": clock.rows}


def run_guide(regime: str, x: np.ndarray, y: np.ndarray, size: int, epochs: int, batch: int,
              first_trainable: int, backbone: str = BACKBONE) -> dict:
    """The guide's ``model.fit`` for ``epochs`` epochs: seconds and epoch ends."""
    import keras

    from benchmarks._common import EpochClock

    stage, dropout = _stage(regime, epochs, batch)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    fn, rescale = _backbone_fn(backbone)
    model, base = guide_model(fn, size, int(y.max()) + 1, dropout=dropout, rescale=rescale)
    if first_trainable >= 0:
        base.trainable = True
        for layer in base.layers[:first_trainable]:
            layer.trainable = False
        for layer in base.layers:  # BN stays frozen (and in inference mode), as in tl_kit
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    if stage.optimizer == "adamw":
        opt = keras.optimizers.AdamW(stage.learning_rate, weight_decay=stage.weight_decay or 1e-4)
    else:
        opt = keras.optimizers.Adam(stage.learning_rate)
    model.compile(optimizer=opt,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=stage.label_smoothing),
                  metrics=["accuracy"])
    onehot = np.eye(int(y.max()) + 1, dtype="float32")[y]
    xf = x.astype("float32")
    clock = EpochClock()
    t = time.perf_counter()
    model.fit(xf, onehot, batch_size=batch, epochs=epochs, shuffle=True, verbose=0,
              callbacks=[clock])
    return {"seconds": time.perf_counter() - t, "epochs": clock.rows}


def bench_overhead(size: int = 128, images: int = 128, batch: int = 32, repeats: int = 3,
                   epochs: int = 4, regimes: tuple[str, ...] = REGIMES,
                   backbone: str = BACKBONE) -> dict[str, Any]:
    """tl_kit / guide steady-state training throughput per regime (target >= 0.95)."""
    from tl_kit.data import load_data

    if epochs < 2:
        raise ValueError(f"`epochs` must be >= 2 (the first is excluded). Received: epochs={epochs}")
    x, y = digits_rgb(size, images)
    images = len(x)
    data = load_data({"train": (x, y)}, image_size=(size, size), validation_split=0.0)
    out: dict[str, Any] = {"backbone": ("EfficientNet-Lite0 (tl_kit, ImageNet, bundled)"
                                        if backbone == "efficientnet_lite0"
                                        else "MobileNetV2 (keras.applications, weights=None)"),
                           "image_size": size, "batch": batch, "images": images,
                           "steps_per_epoch": math.ceil(images / batch), "epochs": epochs,
                           "repeats": repeats, "load_before": load_snapshot(), "regimes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for regime in regimes:
            first = fine_tune_at(regime, size, backbone)
            tl_rates, guide_rates, ratios, methods = [], [], [], set()
            for rep in range(repeats):
                sides = ("tl", "guide") if rep % 2 == 0 else ("guide", "tl")
                rate = {}
                for side in sides:
                    def run(e: int, side: str = side, regime: str = regime, rep: int = rep,
                            first: int = first) -> dict:
                        if side == "tl":
                            return run_tl_kit(regime, data, size, e, batch,
                                              f"{tmp}/{regime}_{rep}_{e}", backbone)
                        return run_guide(regime, x, y, size, e, batch, first, backbone)

                    res = run(epochs)
                    r = _epoch_rate(res["epochs"], images)
                    if r is None:  # the callback never ran: two whole fits, difference
                        one = run(1)
                        r = (epochs - 1) * images / max(res["seconds"] - one["seconds"], 1e-9)
                        methods.add(f"{side}: difference of whole fits")
                    else:
                        methods.add(f"{side}: per-epoch callback")
                    rate[side] = r
                tl_rates.append(rate["tl"])
                guide_rates.append(rate["guide"])
                ratios.append(rate["tl"] / rate["guide"])
            out["regimes"][regime] = {
                "tl_kit_images_per_s": median(tl_rates), "guide_images_per_s": median(guide_rates),
                "ratio": median(ratios), "ratios": [round(r, 3) for r in ratios],
                "first_trainable_layer_index": first, "timing": sorted(methods),
            }
    out["load_after"] = load_snapshot()
    return out
