"""Send everything written to this process's stdout/stderr (Python, C++ libraries, warnings) into a log file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console


@contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 point at `log_path` (appended) inside the block; restored after, whatever happens."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def detached(console: Console) -> Console:
    """A console writing to its own copy of the terminal's descriptor, so `output_to` never swallows it."""
    try:
        fileno = console.file.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (pytest's capture, a StringIO)
        return console
    return Console(file=os.fdopen(os.dup(fileno), "w", buffering=1), width=console.width,
                   force_terminal=console.is_terminal, stderr=False, emoji=False)
