"""The budgets file: rules that select jobs by record fields and set limits on their metrics."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from bench.config.validation import unknown
from bench.errors import UserError
from bench.gate.metrics import Metric, get_metric, parse_quantity
from models.fileio import load_yaml

OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_LIMIT = re.compile(r"^\s*(<=|>=|<|>)\s*(.+)$")
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Limit:
    """`metric op value`, with value in the metric's stored unit; `unit` is how the user wrote it."""

    metric: Metric
    op: str
    value: float
    unit: str
    text: str

    def holds(self, measured: float) -> bool:
        return OPERATORS[self.op](measured, self.value)

    @property
    def upper(self) -> bool:
        """True for a ceiling (<, <=), False for a floor."""
        return self.op.startswith("<")

    @classmethod
    def parse(cls, path: str, text: Any) -> Limit:
        metric = get_metric(path)
        m = _LIMIT.match(str(text)) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"limit {path}: {text!r} is not '<op> <value> [unit]' with op one of "
                             f"{', '.join(OPERATORS)} (e.g. \"<= 5 ms\")")
        try:
            value, unit = parse_quantity(m.group(2), metric)
        except ValueError as e:
            raise ValueError(f"limit {path}: {e}") from None
        return cls(metric, m.group(1), value, unit, f"{m.group(1)} {m.group(2).strip()}")


class Rule(BaseModel):
    """One rule: which jobs (record fields, glob patterns allowed) and the limits they must meet."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    name: str | None = None
    optional: bool = False  # selecting no job is fine
    fail_skipped: bool = False  # a selected job skipped by design (e.g. bf16 where the CPU has none) fails the rule
    select: dict[str, Scalar | list[Scalar]]
    limits: dict[str, Limit]

    @field_validator("select")
    @classmethod
    def _non_empty_select(cls, v: dict) -> dict:
        if not v:
            raise ValueError("select is empty; name at least one record field (model, variant, backend, batch_size, "
                             "...) so the rule cannot match everything by accident")
        return v

    @field_validator("limits", mode="before")
    @classmethod
    def _parse_limits(cls, v: Any) -> dict[str, Limit]:
        if not isinstance(v, dict) or not v:
            raise ValueError("limits must be a non-empty mapping of metric: \"<op> <value> [unit]\"")
        return {str(path): Limit.parse(str(path), text) for path, text in v.items()}


class Budgets(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]

    @field_validator("rules")
    @classmethod
    def _non_empty_rules(cls, v: list[Rule]) -> list[Rule]:
        if not v:
            raise ValueError("no rules")
        return v


def rule_label(rule: Rule, index: int) -> str:
    return rule.name or f"rule{index + 1}"


def _describe(err: ValidationError, raw: dict) -> str:
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key explains the rest
    loc, msg = first["loc"], first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        loc, msg = loc[:-1], unknown("key", loc[-1], Rule.model_fields if len(loc) == 3 else Budgets.model_fields)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule = raw["rules"][loc[1]]  # pydantic's location: it exists
        label = (rule.get("name") if isinstance(rule, dict) else None) or f"rule{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:])
        if first["type"] == "missing":
            msg = "needs 'select' (record fields to match) and 'limits'" if field in ("select", "limits") else msg
        return f"rule '{label}' (#{loc[1] + 1}): {field + ': ' if field and field != 'limits' else ''}{msg}"
    return f"{'.'.join(str(p) for p in loc) or 'file'}: {msg}"


def load_budgets(path: Path) -> Budgets:
    """Read and validate a whole budgets file; any problem is one UserError line naming the rule."""
    raw = load_yaml(Path(path))
    try:
        return Budgets(**raw)
    except ValidationError as e:
        raise UserError(f"budgets {path}: {_describe(e, raw)}") from None
