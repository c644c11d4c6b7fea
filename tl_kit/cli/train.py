"""``tl-kit train``: fine-tune a backbone on an image folder (tl_kit.train.Learner)."""

from __future__ import annotations

import argparse
import importlib.util

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import (
    check_min_size,
    echo,
    existing_dir,
    existing_path,
    fmt,
    image_size,
    print_json,
    rich_table,
)
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe",
        help="recipe TOML file (recipes/*.toml), a built-in (small, medium, large), scratch "
        "(random weights, every layer), or auto (chosen from images per class)",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="image folder (one sub-folder per class, nested ok) or tfds:NAME",
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="backbone name (tl-kit models; keras:* names); default: the recipe's",
    )
    p.add_argument(
        "--out",
        metavar="RUN_DIR",
        default=None,
        help="run directory (default runs/<backbone>-<time>)",
    )
    p.add_argument(
        "--weights",
        default="auto",
        help="auto (ImageNet where published), imagenet, none, a weights file, "
        "a .keras model or a run directory",
    )
    p.add_argument(
        "--image-size",
        default=None,
        metavar="S",
        help="input size, S or H,W (default: the recipe's, else the backbone's)",
    )
    _budget_args(p)
    _runtime_args(p)


def _budget_args(p: argparse.ArgumentParser) -> None:
    """--epochs-scale / --epochs / --quick (one of them), --batch-size and --unfreeze."""
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs-scale",
        type=float,
        default=None,
        metavar="F",
        help="multiply every stage's epochs by F (at least 1 epoch per stage)",
    )
    budget.add_argument(
        "--epochs", type=int, default=None, metavar="N", help="N epochs for every stage"
    )
    budget.add_argument(
        "--quick",
        action="store_true",
        help="1 epoch per stage, no augmented feature copies (a smoke run)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="global batch size, every stage")
    p.add_argument(
        "--unfreeze",
        type=int,
        default=None,
        help="blocks the medium recipe unfreezes (default: the backbone's)",
    )


def _runtime_args(p: argparse.ArgumentParser) -> None:
    """--seed, --pipeline, the device settings, --overwrite, --json and --no-calibrate."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--pipeline",
        choices=("auto", "memory", "stream"),
        default="auto",
        help="how images reach training: auto (in memory when the resized pixels fit in "
        "min(2 GiB, 25%% of RAM), else streamed from disk), memory (decoded once, kept) or "
        "stream (decoded each epoch); train.log says which and why",
    )
    p.add_argument(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker"),
        default="auto",
        help="auto: multi-worker when TF_CONFIG describes a cluster, mirrored with several "
        "GPUs, else default (one device)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        default="auto",
        help="auto: mixed precision on GPUs that support it; float32 turns it off",
    )
    p.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA for the training step (auto: on GPU where the model allows it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a complete run (or one with other settings) in --out; without it a "
        "rerun of an unfinished run resumes it",
    )
    p.add_argument(
        "--json", action="store_true", help="no progress output; print the run summary as JSON"
    )
    p.add_argument(
        "--no-calibrate",
        action="store_true",
        help="do not fit a temperature on the validation split after training "
        "(default: calibrated probabilities, see README 'Calibrated probabilities')",
    )


def _recipe(args: argparse.Namespace):
    """The recipe RECIPE names with the budget flags applied; None for ``auto``."""
    from tl_kit.recipes import recipe_from_name

    overrides = args.quick or args.epochs is not None or args.epochs_scale is not None
    if args.recipe == "auto" and overrides:
        raise UserError(
            "--quick, --epochs and --epochs-scale need a named recipe (small, medium, large, "
            "scratch or a TOML file), not 'auto'. Received: recipe='auto'"
        )
    recipe = recipe_from_name(args.recipe)
    if recipe is None:
        return None
    return recipe.with_budget(quick=args.quick, epochs=args.epochs,
                              epochs_scale=args.epochs_scale, batch_size=args.batch_size)


def _backbone(args: argparse.Namespace, recipe, size: tuple[int, int] | None):
    """The backbone spec (--backbone, else the recipe's), checked against the input size
    (--image-size, else the recipe's) before anything loads."""
    from tl_kit.backbones import get_backbone

    backbone = args.backbone or (recipe.backbone if recipe is not None else None)
    if not backbone:
        raise UserError(
            f"Which backbone? The recipe names none: pass --backbone NAME (see tl-kit models, "
            f"tl_kit.list_backbones()). Received: backbone=None, recipe={args.recipe!r}"
        )
    spec = get_backbone(backbone)  # unknown name: one-line error before anything loads
    if size is None and recipe is not None and recipe.image_size:
        size = (recipe.image_size, recipe.image_size)
    check_min_size(spec, size)
    return spec


def _run(args: argparse.Namespace) -> int:
    data = existing_dir(args.data, "data")
    size = image_size(args.image_size)
    recipe = _recipe(args)
    spec = _backbone(args, recipe, size)
    weights = None if str(args.weights).lower() == "none" else args.weights
    if weights not in (None, "auto", "imagenet"):
        existing_path(weights, "weights")

    from tl_kit.train import Learner

    learner = Learner(
        spec.name,
        recipe=recipe,
        regime="auto",
        weights=weights,
        image_size=size,
        run_dir=args.out,
        seed=args.seed,
        verbose=0 if args.json else 2,
        unfreeze=args.unfreeze,
        strategy=args.strategy,
        precision=args.precision,
        jit_compile={"on": True, "off": False}.get(args.jit_compile, "auto"),
        overwrite=args.overwrite,
        pipeline=args.pipeline,
        # TensorBoard logs only where the tensorboard package is installed; without it the
        # Learner's default would write JSON-lines logs instead, which tl-kit train never did.
        tensorboard=importlib.util.find_spec("tensorboard") is not None,
    )
    if args.no_calibrate:
        learner.calibrate = False
    learner.fit(data)
    _report(learner, data, as_json=args.json)
    return EXIT_OK


def _report(learner, data: str, as_json: bool) -> None:
    """The run summary: JSON, or a table and the next command."""
    summary = {
        "run_dir": str(learner.run_dir),
        "backbone": learner.spec.name,
        "weights": None if learner.weights is None else str(learner.weights),
        "recipe": learner.resolved_recipe.name,
        "regime_reason": learner.regime_reason,
        "image_size": list(learner.image_size),
        "class_names": list(learner.class_names),
        "metrics": learner.metrics,
        "history": learner.history,
    }
    if as_json:
        print_json(summary)
        return
    rows = [
        ("run directory", summary["run_dir"]),
        ("backbone", f"{summary['backbone']} (weights={summary['weights']})"),
        ("recipe", f"{summary['recipe']}: {summary['regime_reason']}"),
        ("classes", ", ".join(summary["class_names"])),
    ]
    rows += metric_rows(learner.metrics)
    rich_table("training finished", ("", ""), rows)
    echo(f"next: tl-kit evaluate {summary['run_dir']} --data {data}")


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    """The rows of the end-of-training table for ``learner.metrics``: the run directory's size
    in MiB, the checkpoints written and their time, and each split's figures."""
    rows = []
    for key, values in metrics.items():
        if key == "run_dir_bytes":
            rows.append(("run directory size", f"{values / 2**20:.1f} MiB"))
        elif key == "checkpoints" and isinstance(values, dict):
            rows.append(("checkpoints", f"{values.get('writes', 0)} written in {values.get('seconds', 0.0):.1f} s"))
        elif isinstance(values, dict):
            rows.append((key, ", ".join(f"{k} {fmt(v)}" for k, v in values.items())))
        else:
            rows.append((key, fmt(values)))
    return rows


COMMAND = Subcommand(
    name="train",
    help="fine-tune a backbone on an image folder following a recipe",
    description="Train backbone + new softmax head on DIR following RECIPE's stages (which "
    "blocks are trainable, epochs, learning rates, augmentation). Writes a run directory: "
    "config.toml, history.csv, metrics.json, checkpoints/, model.keras, logs/. Recipes: "
    "small (frozen backbone, head only), medium (head warm-up, then the last blocks), "
    "large (head warm-up, then everything); RECIPE auto picks one from images per class.",
    add_arguments=_args,
    run=_run,
    arguments={"run_dir": "out", "source": "data"},
    epilog="examples:\n"
    "  tl-kit train recipes/medium_data.toml --data data/my_photos --backbone resnet50 "
    "--out runs/photos\n"
    "  tl-kit train small --data data/textures --backbone mobilenet_v2 --weights none "
    "--image-size 64 --quick\n"
    "  tl-kit train recipes/small_data.toml --data tfds:beans --backbone keras:efficientnetb0 "
    "--epochs-scale 0.5 --json",
)
