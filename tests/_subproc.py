"""Helpers for tests that run tl_kit in fresh Python processes (devices, workers, kills)."""

from __future__ import annotations

import os
import socket
import subprocess
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


def communicate_all(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    """Each process's output once it ends (``timeout`` seconds each); any process still
    running when this returns or raises is killed, so a failing test leaves none behind."""
    try:
        return [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
