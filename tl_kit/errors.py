"""Exception types shared by tl_kit modules and the ``tl-kit`` command line.

``UserError`` marks a problem with what the user asked for (a bad argument, an
unknown name, an impossible input size). It subclasses :class:`ValueError`, so code
that already catches ``ValueError`` keeps working; the CLI turns it into a one-line
``tl-kit: error: ...`` message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import ast
import difflib
import re
import shlex
from collections.abc import Iterable, Mapping

__all__ = ["TLKitError", "UserError", "close_matches", "unknown_name", "in_terms_of_flags"]


class TLKitError(Exception):
    """Base class of every exception tl_kit raises on purpose."""


class UserError(TLKitError, ValueError):
    """Bad input from the user: the message says what to change.

    Example:
    ```python
    raise UserError("Unknown model 'vgg61'. Known models: vgg16, vgg19. Received: name='vgg61'")
    ```
    """


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The registered names closest to a mistyped ``name`` (difflib ratio >= 0.6), best
    first; the best one and any as close (``vgg61``: ``vgg16``, ``vgg19``), at most ``n``.

    A ``keras:`` name also matches without its prefix (``mobilenetv3smal`` ->
    ``keras:mobilenetv3small``); on a tie the tl_kit name comes first (``resnet5`` ->
    ``resnet50``).
    """
    word = str(name).lower()

    def score(full: str) -> float:
        ratio = difflib.SequenceMatcher(None, word, full.lower()).ratio()
        if full.lower().startswith("keras:"):  # unprefixed, a hair below a tl_kit name's tie
            bare = full.lower().removeprefix("keras:")
            ratio = max(ratio, difflib.SequenceMatcher(None, word, bare).ratio() - 0.01)
        return ratio

    scored = sorted(((score(full), full) for full in set(candidates)), key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] < 0.6:
        return []
    return [full for value, full in scored if value >= scored[0][0] - 1e-9][:n]


def unknown_name(kind: str, name: str, candidates: Iterable[str], where: str,
                 argument: str) -> UserError:
    """``Unknown backbone 'resnt18'; did you mean resnet18? (WHERE). Received: ...``.

    Args:
        kind: what was looked up ("backbone", "model").
        name: what the user gave.
        candidates: every registered name (the closest are suggested, none listed).
        where: where the full list is, e.g. ``"tl-kit models lists them"``.
        argument: the argument that held ``name``, for the ``Received:`` part.
    """
    matches = close_matches(name, candidates)
    hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
    return UserError(f"Unknown {kind} {name!r}{hint} ({where}). Received: {argument}={name!r}")


def in_terms_of_flags(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with its Python argument references written as command-line flags.

    Library messages name arguments as Python does (``pass overwrite=True``, ``Received:
    run_dir='runs/a'``, `` `top_k` ``); ``flags`` maps argument names to the flags a
    command line offers (``{"overwrite": "--overwrite", "run_dir": "--out"}``) and this
    writes them as typed there (``pass --overwrite``, ``Received: --out runs/a``). Names
    not in ``flags`` are kept.

    Example:
    ```python
    in_terms_of_flags("pass overwrite=True. Received: run_dir='r'",
                      {"overwrite": "--overwrite", "run_dir": "--out"})
    # 'pass --overwrite. Received: --out r'
    ```
    """
    if not flags:
        return message
    names = "|".join(re.escape(n) for n in sorted(flags, key=len, reverse=True))
    value = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\[[^\]]*\]|\([^)]*\)|[^\s,;)\]]+"
    assignment = re.compile(rf"(?<![\w.\-/])`?({names})`?=({value})")
    backticked = re.compile(rf"`({names})`")
    # bare identifiers with an underscore only (run_dir, top_k): plain words ("data") stay
    bare = re.compile(rf"(?<![\w.\-/'\"`])({names})(?![\w.\-/'\"`=])")

    def assign(match: re.Match) -> str:
        flag, raw = flags[match.group(1)], match.group(2)
        tail = "." if raw.endswith(".") and raw[:1] not in "'\"[(" else ""
        raw = raw[:-1] if tail else raw
        try:
            parsed = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return f"{flag} {raw}{tail}"
        if parsed is True:
            return flag + tail
        if parsed is False:
            return f"no {flag}{tail}"
        if parsed is None:
            return f"{flag} none{tail}"
        if isinstance(parsed, list | tuple):
            return f"{flag} {' '.join(shlex.quote(str(v)) for v in parsed)}{tail}"
        return f"{flag} {shlex.quote(str(parsed))}{tail}"

    message = assignment.sub(assign, message)
    message = backticked.sub(lambda m: flags[m.group(1)], message)
    return bare.sub(lambda m: flags[m.group(1)] if "_" in m.group(1) else m.group(1), message)
