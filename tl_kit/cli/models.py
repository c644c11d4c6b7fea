"""``tl-kit models``: the registered classic models (tl_kit.analysis.model_catalog)."""

from __future__ import annotations

import argparse
import json

from tl_kit.cli.command import EXIT_OK, Subcommand
from tl_kit.cli.common import echo, format_table
from tl_kit.errors import UserError


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*' (default: all)"
    )
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")


def _run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import model_catalog

    entries = model_catalog(args.pattern)
    if not entries:
        from tl_kit.models.registry import list_models

        raise UserError(
            f"No model matches {args.pattern!r}. Known models: {', '.join(list_models())}. "
            f"Received: pattern={args.pattern!r}"
        )
    if args.json:
        echo(json.dumps(entries, indent=2))
        return EXIT_OK
    rows = []
    for e in entries:
        params = "?" if e["params"] is None else f"{e['params']:,}"
        if e["params_trainable_only"]:
            params += " (trainable)"
        rows.append(
            (
                e["name"],
                "x".join(str(d) for d in e["default_size"]),
                params,
                str(len(e["blocks"])),
                e["paper"],
            )
        )
    echo(format_table(("name", "default size", "params", "blocks", "paper"), rows, right=(2, 3)))
    return EXIT_OK


COMMAND = Subcommand(
    name="models",
    help="list the classic models tl_kit can build",
    description="List the registered classic models with their default input size, the "
    "paper's parameter count, the number of blocks (used by freezing) and the paper.",
    add_arguments=_args,
    run=_run,
    epilog="examples:\n  tl-kit models\n  tl-kit models 'resnet*'\n  tl-kit models vgg16 --json",
)
