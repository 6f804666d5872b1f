"""Judge a run's records against a budgets file."""

from __future__ import annotations

from fnmatch import fnmatchcase

from bench.errors import UserError
from bench.gate.budgets import Budgets, Limit, Rule, rule_label
from bench.gate.metrics import confidence_interval, in_unit
from bench.gate.result import FAIL, PASS, SKIP, Check, GateResult
from bench.records.schema import value_at
from bench.stats.latency import unresolved
from bench.stats.percentiles import DEFAULT_RESOLVE, PERCENTILES


def fmt_number(x: float) -> str:
    """A measured or limit value as the gate prints it; a value that rounds to zero has no sign."""
    text = f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"
    return text.lstrip("-") if float(text.replace(",", "")) == 0 else text


def _matches(value, pattern) -> bool:
    if isinstance(pattern, list):
        return any(_matches(value, p) for p in pattern)
    if isinstance(pattern, str):
        return value is not None and fnmatchcase(str(value), pattern)
    return value == pattern and isinstance(value, bool) == isinstance(pattern, bool)


def matches(record: dict, select: dict) -> bool:
    """Every selector key matches: globs for strings, equality for numbers, any-of for lists."""
    return all(_matches(value_at(record, key), pattern) for key, pattern in select.items())


def unit_text(x: float, limit: Limit) -> str:
    """A stored value in the unit the limit was written in."""
    return f"{fmt_number(in_unit(x, limit.metric, limit.unit))}{' ' + limit.unit if limit.unit else ''}"


def unresolved_in(record: dict, name: str, iterations: int | None = None) -> str | None:
    """Why a job's percentile `name` is not resolvable (None: it is), with the flags that would measure enough at
    the job's rate. iterations: those judged, when not the record's own (a regression compares two sides)."""
    count, seconds = record.get("iterations"), record.get("duration_s")
    resolving = (record.get("timing") or {}).get("resolve", DEFAULT_RESOLVE)
    return unresolved(name, count or 0 if iterations is None else iterations,
                      seconds / count if count and seconds else None, resolving)


def judge(label: str, record: dict, limit: Limit, strict: bool) -> Check:
    """One limit on one job: measured (or, with strict, the pessimistic CI end) against the limit."""
    path, job = limit.metric.path, record["job_id"]
    value = value_at(record, path)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        name = path.removeprefix("latency_ms.")
        why = unresolved_in(record, name) if name in PERCENTILES else None
        return Check(label, job, path, limit.text, "-", "-", FAIL,
                     f"{name} not resolvable: {why}" if why else f"{path} not measured in this job")
    ci = confidence_interval(record, path)
    judged, note = float(value), ""
    if strict and ci:
        judged, note = (ci[1] if limit.upper else ci[0]), "strict: judged the pessimistic CI end"
    elif strict:
        note = "strict: no CI recorded, judged the measured value"
    measured = unit_text(value, limit) + (f" [{unit_text(ci[0], limit)}, {unit_text(ci[1], limit)}]" if ci else "")
    headroom = (limit.value - judged) if limit.upper else (judged - limit.value)
    relative = headroom / abs(limit.value) if limit.value else float("inf")
    margin = unit_text(headroom, limit) + (f" ({relative:+.0%})" if abs(relative) < 10 else "")
    return Check(label, job, path, limit.text, measured, margin, PASS if limit.holds(judged) else FAIL, note)


def evaluate_rule(rule: Rule, label: str, records: list[dict], strict: bool) -> list[Check]:
    selected = [r for r in records if matches(r, rule.select)]
    if not selected:
        return [Check(label, "-", "-", "-", "-", "-", SKIP if rule.optional else FAIL,
                      f"no job matches select {rule.select}")]
    checks = []
    for rec in selected:
        if rec.get("status") != "ok":  # skipped by design is no failure unless the rule asks for it
            verdict = SKIP if rec.get("status") == "skipped" and not rule.fail_skipped else FAIL
            checks.append(Check(label, rec["job_id"], "-", "-", "-", "-", verdict,
                                f"job {rec.get('status')}: {rec.get('reason') or ''}".strip()))
            continue
        checks += [judge(label, rec, limit, strict) for limit in rule.limits.values()]
    return checks


def evaluate_budgets(budgets: Budgets, records: list[dict], source: str, strict: bool = False) -> GateResult:
    """Every rule's checks; a selector key no record has is a typo, not an empty selection."""
    result = GateResult("budgets", source)
    for i, rule in enumerate(budgets.rules):
        for key in (k for k in rule.select if records and all(value_at(r, k) is None for r in records)):
            fields = sorted(k for k, v in records[0].items() if isinstance(v, (str, int, float)))
            raise UserError(f"budgets {source}: rule '{rule_label(rule, i)}' (#{i + 1}): select key '{key}' is "
                            f"not a field of any record; fields: {', '.join(fields)}")
        result.checks += evaluate_rule(rule, rule_label(rule, i), records, strict)
    return result
