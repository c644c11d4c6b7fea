"""``tl-kit summary``: a model's layer table (tl_kit.analysis.summary)."""

from __future__ import annotations

import argparse
import sys

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered model or backbone name, or a saved .keras model file")
    p.add_argument(
        "--input-shape",
        metavar="H,W,C",
        help="input size, as H,W,C or HxWxC (H,W keeps the model's channels); default: the model's",
    )
    top = p.add_mutually_exclusive_group()
    top.add_argument(
        "--include-top",
        dest="include_top",
        action="store_const",
        const=True,
        default=None,
        help="build with the classifier (the builder's default)",
    )
    top.add_argument(
        "--no-top",
        dest="include_top",
        action="store_const",
        const=False,
        help="build the feature extractor only (any input size from the model's minimum)",
    )
    p.add_argument("--classes", type=int, default=None, help="number of classes of the classifier")
    p.add_argument("--json", action="store_true", help="print the table and totals as JSON")


def _run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import summary

    kwargs = {}
    if args.include_top is not None:
        kwargs["include_top"] = args.include_top
    if args.classes is not None:
        kwargs["classes"] = args.classes
    result = summary(args.name, input_shape=args.input_shape, **kwargs)
    if args.json:
        echo(result.to_json())
    else:
        result.print(file=sys.stdout)
    return EXIT_OK


COMMAND = Subcommand(
    name="summary",
    help="layer table: output shapes, parameters, multiply-adds, receptive field",
    description="Build a model (weights=None, nothing is downloaded) and print one row per "
    "layer (nested models included) and the totals. MACs count the multiply-adds of "
    "convolution and dense layers only, as the papers do; FLOPs ~ 2 x MACs.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit summary vgg16\n"
    "  tl-kit summary resnet50 --no-top --input-shape 160,160,3\n"
    "  tl-kit summary lenet5 --json > lenet5.json\n"
    "  tl-kit summary runs/photos/model.keras",
)
