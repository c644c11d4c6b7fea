"""The ``tl-kit`` command line: thin subcommands over the tl_kit library.

Each subcommand is one module of this package (``tl_kit.cli.train``, ...) holding a
function that adds its arguments to its parser, one that runs it (calling library code
only) and the :class:`Subcommand` that names them (``COMMAND``); :data:`SUBCOMMANDS`
lists them in the order of ``tl-kit --help``. To add a subcommand, write such a module
and add its ``COMMAND`` to :data:`SUBCOMMANDS` below (or append a :class:`Subcommand` to
it at run time).
Shared output and argument checks live in :mod:`tl_kit.cli.common`; the TensorFlow banner
filter, warning format and user-facing error types in :mod:`tl_kit.cli.runtime`.

Errors that are the user's to fix (:class:`tl_kit.errors.UserError`, ``ValueError``
raised for bad input, ``FileNotFoundError``) print ``tl-kit: error: ...`` on one line
to stderr and exit with status 2; ``--traceback`` shows the full traceback instead.
Argparse usage errors also exit with 2. TensorFlow and Keras are imported inside the
run functions only, so ``tl-kit --help`` is fast, and not at all for a subcommand that
says it does not need them (``Subcommand.needs_tensorflow``: ``tl-kit cache``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence

from tl_kit import __version__
from tl_kit.cli import (
    augment,
    cache,
    demo,
    doctor,
    evaluate,
    explain,
    export,
    lr_find,
    models,
    predict,
    summary,
    train,
    weights,
)
from tl_kit.cli.command import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USER_ERROR,
    PROG,
    SUBCOMMANDS,
    Subcommand,
)
from tl_kit.cli.runtime import (
    import_tensorflow_quietly,
    one_line,
    show_warning,
    user_facing_errors,
    without_tf_banner,
)

__all__ = [
    "Subcommand",
    "SUBCOMMANDS",
    "build_parser",
    "main",
    "EXIT_OK",
    "EXIT_USER_ERROR",
    "EXIT_INTERRUPTED",
    "PROG",
    "without_tf_banner",
    "import_tensorflow_quietly",
]

# The subcommands, in the order `tl-kit --help` lists them.
SUBCOMMANDS.extend(
    module.COMMAND
    for module in (models, summary, train, demo, evaluate, predict, export, weights, cache,
                   augment, lr_find, explain, doctor)
)


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
        p.set_defaults(_run=cmd.run, _flags=_flags_of(p, cmd.arguments),
                       _needs_tensorflow=cmd.needs_tensorflow)
    return parser


def _flags_of(parser: argparse.ArgumentParser, aliases: Mapping[str, str]) -> dict[str, str]:
    """Argument name -> the long flag that sets it (``{"top_k": "--top-k"}``), from the
    parser's own options plus the subcommand's ``arguments`` aliases."""
    flags = {}
    for action in parser._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long and action.dest not in ("help", argparse.SUPPRESS):
            flags[action.dest] = long[0]
    flags.update({name: flags[dest] for name, dest in aliases.items() if dest in flags})
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tl-kit`` with ``argv`` (``sys.argv[1:]`` by default); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return (
            exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USER_ERROR)
        )
    if getattr(args, "_needs_tensorflow", True):  # --help returned above
        import_tensorflow_quietly()
    from tl_kit.errors import in_terms_of_flags

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            status = args._run(args)
    except Exception as err:
        if args.traceback or not isinstance(err, user_facing_errors()):
            raise
        message = in_terms_of_flags(one_line(err), getattr(args, "_flags", {}))
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `tl-kit models | head -1`
        return EXIT_OK
    return EXIT_OK if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
