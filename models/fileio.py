"""File helpers every layer shares (bench imports them; models is the lowest layer that needs them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import yaml

from models.errors import ModelError


def cache_root() -> Path:
    """Where artifacts are cached: $RECBENCH_CACHE, else ~/.cache/recbench (torch-free: job processes read it)."""
    return Path(os.environ.get("RECBENCH_CACHE", Path.home() / ".cache" / "recbench"))


def save_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through `write(tmp)` and rename over `path`: readers never see a half-written file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def yaml_problem(err: yaml.YAMLError) -> str:
    """The parser's complaint with the line and column it points at (1-based, as editors count)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


def load_yaml(path: Path) -> dict:
    """A YAML file's top-level mapping; unreadable, empty, invalid or non-mapping files are one-line errors."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ModelError(f"{path} is not valid YAML: {yaml_problem(e)}") from None
    if data is None:  # an empty file is a mistake (a wrong path, an unsaved editor), never "all defaults"
        raise ModelError(f"{path} is empty: give at least one setting")
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
