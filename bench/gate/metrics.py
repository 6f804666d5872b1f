"""The record metrics a gate can judge, their units, and how to read them (and their CIs) from a record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import get_args

from pydantic import BaseModel

from bench.records.schema import Number, Record, value_at

# Unit name -> factor to the kind's base unit (seconds, bytes, samples per second, 1).
UNITS: dict[str, dict[str, float]] = {
    "time": {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0},
    "bytes": {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
              "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40},
    "rate": {"sps": 1.0, "qps": 1.0, "/s": 1.0},
    "number": {},
}


@dataclass(frozen=True)
class Metric:
    """A numeric record field: its dotted path, its kind and the unit the record stores it in."""

    path: str
    kind: str  # a key of UNITS
    unit: str  # the stored unit ("" for plain numbers)


# A path's unit: from the first of its parts (leaf first) that ends with one of these; otherwise a plain number.
SUFFIXES = (("_ms", "time", "ms"), ("_s", "time", "s"), ("_bytes", "bytes", "B"), ("bytes_per_sample", "bytes", "B"),
            ("_sps", "rate", "sps"), ("_qps", "rate", "qps"))


def _metric(path: str) -> Metric:
    return next((Metric(path, kind, unit) for part in reversed(path.split(".")) for suffix, kind, unit in SUFFIXES
                 if part.endswith(suffix)), Metric(path, "number", ""))


def _numbers(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """The dotted path of every `Number` field of a record model and of its typed parts."""
    for name, info in model.model_fields.items():
        for arg in get_args(info.annotation):
            if arg == Number:
                yield prefix + name
            elif isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _numbers(arg, f"{prefix}{name}.")


# Every measurement the record schema types as a number (bench/records/schema.py) is gateable.
METRICS = {path: _metric(path) for path in _numbers(Record)}


def get_metric(path: str) -> Metric:
    if path not in METRICS:
        raise ValueError(f"unknown metric '{path}'; valid: {', '.join(METRICS)}")
    return METRICS[path]


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def parse_quantity(text: str, metric: Metric) -> tuple[float, str]:
    """'5 ms' -> (5.0 in the metric's stored unit, 'ms'); a plain number is already in the stored unit."""
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(f"cannot read '{text}' as a number with an optional unit")
    value, unit = float(m.group(1)), m.group(2)
    units = UNITS[metric.kind]
    if not unit:
        return value, metric.unit
    if unit not in units:
        valid = ", ".join(units) if units else "none (a plain number)"
        raise ValueError(f"unit '{unit}' does not fit {metric.path}; valid units: {valid}")
    return value * units[unit] / units.get(metric.unit, 1.0), unit


def in_unit(value: float, metric: Metric, unit: str) -> float:
    """A stored value expressed in `unit` (a unit of the metric's kind, or its stored unit)."""
    units = UNITS[metric.kind]
    return value * units.get(metric.unit, 1.0) / units.get(unit, 1.0)


CI_FIELDS = {"latency_ms": "latency_ci_ms", "throughput_sps": "throughput_ci_sps"}  # where a record keeps CIs


def confidence_interval(record: dict, path: str) -> tuple[float, float] | None:
    """The record's 95% CI for a metric where one was computed (latency_ci_ms, throughput_ci_sps)."""
    head, dot, rest = path.partition(".")
    ci = value_at(record, CI_FIELDS[head] + dot + rest) if head in CI_FIELDS else None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return float(ci[0]), float(ci[1])
    return None
