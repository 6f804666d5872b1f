import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """One artifact cache for the whole session (tiny models train once), never the user's."""
    os.environ.setdefault("RECBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


def recbench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ})


@pytest.fixture(scope="session")
def tiny_ws():
    from models.artifacts import Workspace
    from models.registry import get_family

    return Workspace(get_family("dlrm"), "tiny")


def sigint_default() -> None:
    """preexec_fn: a shell may start the suite with SIGINT ignored (as a background job) and a child inherits that;
    the CLI under test gets Ctrl-C as a user's terminal would send it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
