"""The fleet: the fleet file's named targets (the Ray resource that marks each target's nodes, its profile and
backends), and the Ray cluster as the head sees it (connecting, the live nodes, what each offers, whether busy)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


# Ray's own resources; every other one a node declares names a kind of device (a fleet target's resource)
RAY_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory", "accelerator_type:")


@contextmanager
def connect(address: str) -> Iterator[object]:
    """Join the cluster at `address` (`auto`: the one started on this machine or $RAY_ADDRESS) as a driver."""
    try:
        import ray
    except ImportError:
        raise UserError("--fleet/--cluster need Ray: pip install 'recbench[fleet]'") from None
    if ray.is_initialized():  # the caller (a test, a notebook) is already connected: use that connection
        yield ray
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level="warning", configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UserError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass
class Node:
    node_id: str
    address: str
    devices: dict[str, float]  # device resources declared when the node joined, e.g. {"device:edge-x86": 1}
    free: dict[str, float]  # how much of each is not held by a running job

    @property
    def busy(self) -> bool:
        return any(self.free.get(r, 0) < n for r, n in self.devices.items())


def _is_device(resource: str) -> bool:
    return not resource.startswith(("node:", *RAY_RESOURCES))


def live_nodes(ray) -> list[Node]:
    """The alive nodes with their device resources and how much of each is free right now."""
    # per-node availability has no public API (ray.util.state needs the dashboard); this one is what `ray status` uses
    from ray._private.state import available_resources_per_node

    free = available_resources_per_node()
    return [Node(n["NodeID"], n["NodeManagerAddress"],
                 {r: v for r, v in n["Resources"].items() if _is_device(r)},
                 {r: v for r, v in free.get(n["NodeID"], {}).items() if _is_device(r)})
            for n in ray.nodes() if n["Alive"]]


def offering(nodes: list[Node], resource: str) -> list[Node]:
    return [n for n in nodes if n.devices.get(resource, 0) > 0]
