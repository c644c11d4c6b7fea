"""``tl-kit weights``: pre-download ImageNet weights or show the cache (tl_kit.weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import console, print_json, rich_table, spinner
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=("fetch", "list"),
        help="fetch: download into the Keras cache; list: show what is cached",
    )
    p.add_argument(
        "names",
        nargs="*",
        help="backbone names (fetch), or shell-style patterns (list; default: all)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        return _fetch(args)
    return _list(args)


def _cache_dir() -> Path:
    from tl_kit.weights import keras_cache_dir

    return Path(keras_cache_dir()) / "models"


def _fetch(args: argparse.Namespace) -> int:
    """``weights fetch NAME...``: download into the Keras cache."""
    from tl_kit.backbones import get_backbone

    if not args.names:
        raise UserError("weights fetch needs at least one backbone name. Received: names=[]")
    specs = [get_backbone(n) for n in args.names]  # unknown names fail before any download
    from tl_kit.weights import fetch_weights

    with spinner(
        f"fetching ImageNet weights for {', '.join(s.name for s in specs)}", quiet=args.json
    ):
        result = fetch_weights([s.name for s in specs], verbose=False)
    if args.json:
        print_json(result)
    else:
        rows = [(name, path) for name, paths in result.items() for path in paths]
        rich_table(f"Keras cache: {_cache_dir()}", ("backbone", "file"), rows)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    """``weights list [PATTERN...]``: whether each backbone's file is cached."""
    from rich.progress import Progress

    from tl_kit.backbones import get_backbone, list_backbones
    from tl_kit.weights import weights_status

    patterns = args.names or ["*"]
    names = sorted({n for pat in patterns for n in list_backbones(pat)})
    if not names:
        raise UserError(f"No backbone matches {patterns}. Received: names={patterns}")
    specs = [get_backbone(n) for n in names]
    entries = []
    with Progress(console=console(stderr=True), transient=True, disable=args.json) as progress:
        task = progress.add_task("checking the weights cache", total=len(specs))
        for spec in specs:
            entries.append(weights_status(spec))
            progress.advance(task)
    if args.json:
        print_json({"cache_dir": str(_cache_dir()), "backbones": entries})
        return EXIT_OK
    rows = [
        (
            e["backbone"],
            "no ImageNet weights"
            if not e["imagenet"]
            else ("cached" if e["cached"] else "missing"),
            e["file"] or "",
        )
        for e in entries
    ]
    rich_table(f"Keras cache: {_cache_dir()}", ("backbone", "imagenet", "file"), rows)
    return EXIT_OK

COMMAND = Subcommand(
    name="weights",
    help="pre-download ImageNet weights (fetch) or show the cache (list)",
    description="'fetch' downloads the ImageNet weights (no top) of the named backbones "
    "into the Keras cache ($KERAS_HOME/models, ~/.keras/models by default): run it where "
    "there is a network, then copy that folder to offline machines. 'list' shows, for each "
    "backbone, whether its file is cached (nothing is downloaded).",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n"
    "  tl-kit weights fetch keras:resnet50 mobilenetv2\n"
    "  tl-kit weights list\n"
    "  tl-kit weights list 'keras:efficientnet*' --json",
)
