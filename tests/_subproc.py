"""Helpers for tests that run tl_kit in fresh Python processes (devices, workers, kills)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment for a child process: the repository importable, no GPU, no
    TF_CONFIG inherited, plus ``extra``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a worker's TF_CONFIG address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
