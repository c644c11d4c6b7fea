"""The ``tl-kit`` command line: thin subcommands over the tl_kit library.

Each subcommand is one entry of :data:`SUBCOMMANDS`: a name, a one-line help, an
epilog with examples, a function that adds its arguments to its parser and a
function that runs it (calling library code only). To add a subcommand, write those
two functions and append a :class:`Subcommand` to the table.

Errors that are the user's to fix (:class:`tl_kit.errors.UserError`, ``ValueError``
raised for bad input, ``FileNotFoundError``) print ``tl-kit: error: ...`` on one line
to stderr and exit with status 2; ``--traceback`` shows the full traceback instead.
Argparse usage errors also exit with 2. TensorFlow and Keras are imported inside the
run functions only, so ``tl-kit --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tl_kit import __version__
from tl_kit.errors import UserError

__all__ = ["Subcommand", "SUBCOMMANDS", "build_parser", "main", "EXIT_USER_ERROR"]

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

PROG = "tl-kit"


@dataclass(frozen=True)
class Subcommand:
    """One ``tl-kit`` subcommand.

    Attributes:
        name: the word on the command line (``"summary"``).
        help: one line shown in ``tl-kit --help``.
        add_arguments: adds the subcommand's arguments to its parser.
        run: runs it; returns the exit status (None means 0).
        description: longer text at the top of ``tl-kit NAME --help`` (defaults to help).
        epilog: examples shown at the end of ``tl-kit NAME --help``.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""
    epilog: str = ""


def _print(text: str = "") -> None:
    print(text, file=sys.stdout)


def _format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """Plain aligned columns (pipe-friendly); columns listed in ``right`` are right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# === models ===


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*' (default: all)"
    )
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")


def _models_run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import model_catalog

    entries = model_catalog(args.pattern)
    if not entries:
        from tl_kit.models.registry import list_models

        raise UserError(
            f"No model matches {args.pattern!r}. Known models: {', '.join(list_models())}. "
            f"Received: pattern={args.pattern!r}"
        )
    if args.json:
        _print(json.dumps(entries, indent=2))
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
    _print(_format_table(("name", "default size", "params", "blocks", "paper"), rows, right=(2, 3)))
    return EXIT_OK


# === summary ===


def _summary_args(p: argparse.ArgumentParser) -> None:
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


def _summary_run(args: argparse.Namespace) -> int:
    from tl_kit.analysis import summary

    kwargs = {}
    if args.include_top is not None:
        kwargs["include_top"] = args.include_top
    if args.classes is not None:
        kwargs["classes"] = args.classes
    result = summary(args.name, input_shape=args.input_shape, **kwargs)
    if args.json:
        _print(result.to_json())
    else:
        result.print(file=sys.stdout)
    return EXIT_OK


# === The table of subcommands ===

SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        name="models",
        help="list the classic models tl_kit can build",
        description="List the registered classic models with their default input size, the "
        "paper's parameter count, the number of blocks (used by freezing) and the paper.",
        add_arguments=_models_args,
        run=_models_run,
        epilog="examples:\n  tl-kit models\n  tl-kit models 'resnet*'\n  tl-kit models vgg16 --json",
    ),
    Subcommand(
        name="summary",
        help="layer table: output shapes, parameters, multiply-adds, receptive field",
        description="Build a model (weights=None, nothing is downloaded) and print one row per "
        "layer (nested models included) and the totals. MACs count the multiply-adds of "
        "convolution and dense layers only, as the papers do; FLOPs ~ 2 x MACs.",
        add_arguments=_summary_args,
        run=_summary_run,
        epilog="examples:\n"
        "  tl-kit summary vgg16\n"
        "  tl-kit summary resnet50 --no-top --input-shape 160,160,3\n"
        "  tl-kit summary lenet5 --json > lenet5.json\n"
        "  tl-kit summary runs/photos/model.keras",
    ),
]


# === Parser and entry point ===


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="tl_kit: transfer learning on images with Keras 3 / TensorFlow.",
        epilog="Run 'tl-kit COMMAND --help' for the options and examples of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full Python traceback on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for cmd in SUBCOMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description or cmd.help,
            epilog=cmd.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def _one_line(err: BaseException) -> str:
    """The message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join((text or type(err).__name__).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tl-kit`` with ``argv`` (``sys.argv[1:]`` by default); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return (
            exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USER_ERROR)
        )
    try:
        status = args._run(args)
    except (UserError, FileNotFoundError, ValueError) as err:
        if args.traceback:
            raise
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `tl-kit models | head -1`
        return EXIT_OK
    return EXIT_OK if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
