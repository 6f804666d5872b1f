"""What makes two records "the same job" in every reader: jobs, history, compare, report tables, charts, gates."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class JobKey:
    """A job's identity. Preset belongs to it: a tiny and an edge DLRM are different models (different tables and
    layers), so comparing or gating one against the other would compare different work."""

    model: str | None
    preset: str | None
    variant: str | None
    backend: str | None
    device: str | None
    profile: str | None
    scenario: str | None
    batch_size: int | None
    shapes: str | None  # static | dynamic input shapes (a fixed batch compiled ahead, or any batch)
    target: str | None = None  # a fleet target's name; None for a local run (and for history rows from before it)

    @classmethod
    def of(cls, record: dict[str, Any]) -> JobKey:
        """The key of a record (or any mapping with these fields; a missing one is None, but shapes: records from
        before the field was measured with dynamic shapes; target, None where empty)."""
        return cls(**{f: record.get(f) for f in FIELDS} | {"shapes": record.get("shapes") or "dynamic",
                                                            "target": record.get("target") or None})

    def across_targets(self) -> JobKey:
        """The key with its target dropped: pairs one target's job with another's (only when asked for)."""
        return replace(self, target=None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(JobKey))
# what tells series / table rows apart: the key without the batch size (charts plot over batch size)
SERIES_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f != "batch_size")
