"""``tl-kit predict``: classify image files (tl_kit.predict.predict_run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tl_kit.cli.command import EXIT_OK, PROG, Subcommand
from tl_kit.cli.common import echo, existing_path, rich_table, spinner
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="run directory, .keras model file or export folder")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF) or folders")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "multicrop"),
        default="none",
        help="test-time augmentation (default none)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def _run(args: argparse.Namespace) -> int:
    existing_path(args.model, "model")  # the images are checked one by one, in the library
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1. Received: top_k={args.top_k}")
    from tl_kit.predict import format_predictions, predict_run

    with spinner(f"predicting {len(args.images)} file(s) or folder(s)", quiet=args.json):
        preds = predict_run(
            args.model,
            list(args.images),
            top_k=args.top_k,
            tta=None if args.tta == "none" else args.tta,
            batch_size=args.batch_size,
        )
    if args.json:
        echo(format_predictions(preds, as_json=True))
        _warn_unread(preds)
        return EXIT_OK
    k = max(len(p["top"]) for p in preds)
    header = ["image"] + [f"top {i + 1}" for i in range(k)]
    rows = [
        [p["path"] or f"image[{i}]"]
        + ([f"{name} {prob:.3f}" for name, prob in p["top"]] if not p.get("error")
           else [f"not read: {p['error']}"] + [""] * (k - 1))
        for i, p in enumerate(preds)
    ]
    rich_table(None, header, rows)
    _warn_unread(preds)
    return EXIT_OK


def _warn_unread(preds: Sequence[dict]) -> None:
    """One stderr line when some images could not be read (their rows say why)."""
    bad = sum(1 for p in preds if p.get("error"))
    if bad:
        print(f"{PROG}: warning: {bad} of {len(preds)} image(s) could not be read (see their "
              "rows); the others were predicted", file=sys.stderr)


COMMAND = Subcommand(
    name="predict",
    help="classify image files with a run directory, a .keras model or an export",
    description="Print the top-k classes and probabilities for each image (JPEG, PNG, BMP, "
    "GIF; folders are expanded). Works on a run directory, a .keras file with "
    "class_names.json beside it, or a SavedModel export.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit predict runs/photos a.jpg b.png\n"
    "  tl-kit predict runs/photos/export photos/ --top-k 1 --json\n"
    "  tl-kit predict runs/photos a.jpg --tta multicrop",
)
