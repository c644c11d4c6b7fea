"""Exception types shared by tl_kit modules and the ``tl-kit`` command line.

``UserError`` marks a problem with what the user asked for (a bad argument, an
unknown name, an impossible input size). It subclasses :class:`ValueError`, so code
that already catches ``ValueError`` keeps working; the CLI turns it into a one-line
``tl-kit: error: ...`` message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

__all__ = ["TLKitError", "UserError"]


class TLKitError(Exception):
    """Base class of every exception tl_kit raises on purpose."""


class UserError(TLKitError, ValueError):
    """Bad input from the user: the message says what to change.

    Example:
    ```python
    raise UserError("Unknown model 'vgg61'. Known models: vgg16, vgg19. Received: name='vgg61'")
    ```
    """
