"""The fleet file: named targets, the Ray resource that marks each target's nodes, its profile and backends."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backends import registry
from bench.config.profiles import BUILTIN
from bench.config.validation import describe, unknown
from bench.errors import UserError
from models.fileio import load_yaml

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # becomes part of job ids and file names


class Target(BaseModel):
    """One kind of device: every node that joined with `--resources '{"<resource>": 1}'` is one of them."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    resource: str = Field(min_length=1)
    profile: str = "default"  # edge, datacenter, default or a profile YAML (relative to the fleet file)
    backends: list[str] = Field(min_length=1)


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Fleet:
        names = [t.name for t in self.targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"target names must be unique: {', '.join(twice)} appear more than once")
        return self

    def target_of(self, resources: dict) -> list[Target]:
        """The targets a node with these Ray resources serves."""
        return [t for t in self.targets if resources.get(t.resource, 0) > 0]


def load_fleet(path: Path) -> Fleet:
    """Read and validate a fleet file; every problem is one UserError line."""
    data = load_yaml(Path(path))
    try:
        fleet = Fleet(**data)
    except ValidationError as e:
        raise UserError(f"fleet {path}: {describe(e, Fleet)}") from None
    for t in fleet.targets:
        for b in t.backends:
            if b not in registry.BACKENDS:
                raise UserError(f"fleet {path}: target {t.name}: {unknown('backend', b, registry.BACKENDS)}")
        if t.profile not in BUILTIN:
            t.profile = str((Path(path).parent / t.profile).resolve())
    return fleet
