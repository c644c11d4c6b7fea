"""How ``tl-kit`` talks to the terminal around a command: TensorFlow imported without its
start-up banner, warnings as one ``tl-kit: warning:`` line, and which errors are the
user's (one ``tl-kit: error:`` line, exit status 2)."""

from __future__ import annotations

import sys

from tl_kit.cli.command import PROG
from tl_kit.errors import UserError

__all__ = ["without_tf_banner", "import_tensorflow_quietly", "show_warning", "one_line",
           "user_facing_errors"]

# TensorFlow's native start-up banner: written by C++ straight to file descriptor 2 while
# TensorFlow is imported, whatever TF_CPP_MIN_LOG_LEVEL says (TF 2.21). Only these lines are
# dropped; anything else written during the import (a missing CUDA library, say) is kept.
_TF_BANNER = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
)


def without_tf_banner(text: str) -> str:
    """``text`` without the lines of TensorFlow's start-up banner (:data:`_TF_BANNER`)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(marker in line for marker in _TF_BANNER))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 sent to a temporary file, then write back
    what it held minus the banner (all of it if the import fails)."""
    if "tensorflow" in sys.modules:
        return
    import os
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr: nothing to filter
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            sys.stderr.write(text if failed else without_tf_banner(text))
            sys.stderr.flush()


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as ``tl-kit: warning: MESSAGE`` (no Python file, line or source line);
    the signature of :func:`warnings.showwarning`."""
    print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def one_line(err: BaseException) -> str:
    """The message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join((text or type(err).__name__).split())


def user_facing_errors() -> tuple[type[BaseException], ...]:
    """Exceptions shown as one line with exit status 2: bad input, or a missing file or
    weights download the message tells the user how to provide."""
    from tl_kit.errors import TLKitError

    types: list[type[BaseException]] = [UserError, TLKitError, FileNotFoundError, ValueError]
    weights = sys.modules.get("tl_kit.weights")  # imported only by commands that need it
    if weights is not None:
        types.append(weights.WeightsUnavailableError)
    return tuple(types)
