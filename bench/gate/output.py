"""A gate's verdicts as a terminal table, JUnit XML (one test case per rule x job) and Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby
from operator import attrgetter
from pathlib import Path

from rich.table import Table as RichTable

from bench.gate.result import FAIL, INCONCLUSIVE, PASS, SKIP, Check, GateResult
from bench.report.tables import Table

COLUMNS = ("rule", "job", "metric", "limit", "measured", "margin", "verdict")
NUMBERS = {3, 4, 5}  # limit, measured, margin: never wrapped nor cut (bench.report.tables.print_table)
_STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow", INCONCLUSIVE: "magenta"}
ICONS = {PASS: "✅", FAIL: "❌", SKIP: "⏭️", INCONCLUSIVE: "❔"}  # Markdown


def _cells(c: Check) -> list[str]:
    return [c.rule, c.job, c.metric, c.limit, c.measured, c.margin, c.verdict + (f" ({c.note})" if c.note else "")]


def table(results: list[GateResult], title: str = "") -> RichTable:
    """Every check; its cells are text, not markup: rule names, jobs and notes are printed as written."""
    rows = [[*cells[:-1], (cells[-1], _STYLE[c.verdict])] for r in results for c in r.checks for cells in [_cells(c)]]
    return Table(title, list(COLUMNS), rows, numeric=NUMBERS).to_rich()


def _headline(results: list[GateResult]) -> tuple[str, str]:
    """The verdict in words and its Markdown icon: FAILED, passed, or neither when nothing was decided."""
    checks = [c for r in results for c in r.checks]
    n = {v: sum(c.verdict == v for c in checks) for v in (PASS, FAIL, SKIP, INCONCLUSIVE)}
    strict = any(r.strict for r in results) and n[INCONCLUSIVE]
    inc = f", {n[INCONCLUSIVE]} inconclusive{' (--strict: inconclusive fails)' if strict else ''}" \
        if n[INCONCLUSIVE] else ""
    counts = f"{n[PASS]} passed, {n[FAIL]} failed{inc}, {n[SKIP]} skipped"
    if n[FAIL] or strict:
        return f"gate FAILED: {counts}", ICONS[FAIL]
    if n[INCONCLUSIVE]:  # exit 0 by default, yet nothing inconclusive was shown to be fine: no "passed"
        return (f"gate: no regression found ({n[INCONCLUSIVE]} inconclusive: too noisy to tell; --strict fails "
                f"them): {counts}"), ICONS[INCONCLUSIVE]
    if not n[PASS]:
        return f"gate: nothing judged: {counts}", ICONS[SKIP]
    return f"gate passed: {counts}", ICONS[PASS]


def summary(results: list[GateResult]) -> str:
    return _headline(results)[0]


def _state(res: GateResult, group: list[Check]) -> str:
    """A test case fails on any failure (inconclusive too under --strict); inconclusive or all-skip: skipped."""
    if any(c in res.failures for c in group):
        return "failure"
    if any(c.verdict == INCONCLUSIVE for c in group) or all(c.verdict == SKIP for c in group):
        return "skipped"
    return "pass"


def write_junit(results: list[GateResult], path: Path, run_name: str) -> None:
    """One test case per (rule, job): it fails if any of its metric checks failed."""
    suites = ET.Element("testsuites", name=f"recbench gate {run_name}")
    by_case = attrgetter("rule", "job")
    for res in results:
        cases = [(case, list(group)) for case, group in groupby(sorted(res.checks, key=by_case), key=by_case)]
        states = [_state(res, group) for _, group in cases]
        suite = ET.SubElement(suites, "testsuite", name=f"{res.kind}: {res.source}", tests=str(len(cases)),
                              failures=str(states.count("failure")), skipped=str(states.count("skipped")), errors="0")
        for ((rule, job), group), state in zip(cases, states, strict=True):
            case = ET.SubElement(suite, "testcase", classname=f"{res.kind}.{rule}", name=job)
            failed = [c for c in group if c in res.failures]
            inconclusive = [c for c in group if c.verdict == INCONCLUSIVE]
            lines = [" | ".join(_cells(c)) for c in group]
            if state == "failure":
                msg = "; ".join(c.note if c.metric == "-" else f"{c.metric}{' inconclusive' * (c.verdict != FAIL)}"
                                f" {c.measured} (limit {c.limit})" for c in failed)
                kind = "inconclusive" if all(c.verdict == INCONCLUSIVE for c in failed) else \
                    "budget" if res.kind == "budgets" else "regression"
                ET.SubElement(case, "failure", message=msg, type=kind).text = "\n".join(lines)
            elif state == "skipped":  # inconclusive: neither a pass nor a failure by default, named inconclusive
                ET.SubElement(case, "skipped", message="; ".join(
                    [f"inconclusive: {c.metric}: {c.note}" for c in inconclusive] or [c.note for c in group]))
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suites)
    Path(path).write_text(ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


MARKDOWN_LIMIT = 60_000  # a pull-request comment takes at most 65,536 characters


def _grouped(checks: list[Check], verdict: str) -> list[str]:
    """One line per rule: how many of its checks had `verdict`, over how many jobs."""
    lines = []
    for rule, group in groupby(sorted((c for c in checks if c.verdict == verdict), key=lambda c: c.rule),
                               key=lambda c: c.rule):
        group = list(group)
        notes = sorted({c.note for c in group if c.note and verdict in (SKIP, INCONCLUSIVE)})
        lines.append(f"- `{_md_escape(rule)}`: {len(group)} checks over {len({c.job for c in group})} jobs"
                     + (f" ({_md_escape('; '.join(notes)[:300])})" if notes else ""))
    return lines


def write_markdown(results: list[GateResult], path: Path, run_name: str, limit: int = MARKDOWN_LIMIT) -> None:
    """A pull-request comment under `limit` characters: the verdict, every failure that fits, passes and skips
    grouped by rule (the JUnit XML has every check)."""
    checks = [c for r in results for c in r.checks]
    words, mark = _headline(results)
    head = [f"### {mark} recbench {words}", "",
            f"Run `{run_name}`; " + "; ".join(f"{r.kind}: `{r.source}`" for r in results), ""]
    tail = ["", "**Passed** by rule:", *(_grouped(checks, PASS) or ["- none"]),
            "", "**Skipped** by rule:", *(_grouped(checks, SKIP) or ["- none"])]
    if any(c.verdict == INCONCLUSIVE for c in checks):
        tail += ["", "**Inconclusive** by rule:", *_grouped(checks, INCONCLUSIVE)]
    failures = [c for c in checks if c.verdict == FAIL]
    body = ["**Failures**:", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)] if failures else []
    room = limit - len("\n".join(head + body + tail)) - 200
    for i, c in enumerate(failures):
        *cells, verdict = _cells(c)
        row = "| " + " | ".join(_md_escape(x) for x in [*cells, f"{ICONS[c.verdict]} {verdict}"]) + " |"
        if len(row) + 1 > room:
            body.append(f"\n... and {len(failures) - i} more failures: see the JUnit XML (`--junit`)")
            break
        body.append(row)
        room -= len(row) + 1
    Path(path).write_text("\n".join(head + body + tail) + "\n")
