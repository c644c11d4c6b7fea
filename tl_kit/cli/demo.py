"""``tl-kit demo``: the offline end-to-end transfer demo (tl_kit.demo.run_demo)."""

from __future__ import annotations

import argparse

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, print_json


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="small budget (one seed, fewer epochs): a first look in about a minute",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="runs/demo",
        help="run directory for the table, plot and pretraining run (default runs/demo)",
    )
    p.add_argument(
        "--task",
        choices=("photos", "digits"),
        default="photos",
        help="photos (default): ImageNet EfficientNet-Lite0 transferred to 8 photo classes; "
        "digits: LeNet-5 pretrained on digits 0-4, transferred to 5-9",
    )
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")


def _run(args: argparse.Namespace) -> int:
    from tl_kit.demo import run_demo

    kwargs: dict = {"out_dir": args.out, "quick": args.quick, "verbose": 0 if args.json else 1,
                    "task": args.task}
    if args.quick:
        kwargs.update(seeds=(0,))
    result = run_demo(**kwargs)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "table"})
        return EXIT_OK
    # run_demo (verbose=1) has already printed each cell, the table and what helped.
    echo(f"results: {args.out}")
    return EXIT_OK


COMMAND = Subcommand(
    name="demo",
    help="offline end-to-end transfer demo: ImageNet EfficientNet-Lite0 on photos (or --task digits)",
    description="Pretrain LeNet-5 on digits 0-4, transfer to digits 5-9 with 1, 5 and 20 "
    "labels per class under each regime and from scratch, and print test accuracy (mean "
    "and spread over seeds) and time per cell. No network needed.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n  tl-kit demo\n  tl-kit demo --quick --out runs/demo_quick\n"
    "  tl-kit demo --task digits\n  tl-kit demo --json > demo.json",
)
