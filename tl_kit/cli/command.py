"""The table of ``tl-kit`` subcommands and the exit statuses.

Each subcommand module defines a function that adds its arguments to its parser and one
that runs it, and its :class:`Subcommand` as ``COMMAND``; ``tl_kit.cli`` puts them in
:data:`SUBCOMMANDS` in the order ``tl-kit --help`` lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Subcommand", "SUBCOMMANDS", "EXIT_OK", "EXIT_USER_ERROR",
           "EXIT_INTERRUPTED", "PROG"]

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
        arguments: library argument names the run function passes a flag's value to under
            another name (``{"run_dir": "out"}``: ``Learner(run_dir=args.out)``), so that
            error messages naming ``run_dir`` show ``--out``; same-named ones need no entry.
        needs_tensorflow: whether ``tl-kit`` imports TensorFlow (quietly, without its banner)
            before running it; False for a command that never touches it (``cache``), which
            then answers in a fraction of a second instead of the seconds that import takes.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    description: str = ""
    epilog: str = ""
    arguments: Mapping[str, str] = field(default_factory=dict)
    needs_tensorflow: bool = True


# Filled by tl_kit.cli (its __init__), in the order of `tl-kit --help`.
SUBCOMMANDS: list[Subcommand] = []
