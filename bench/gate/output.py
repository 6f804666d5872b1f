"""A gate's verdicts as a terminal table, JUnit XML (one test case per rule x job) and Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby
from pathlib import Path

from rich.table import Table

from bench.gate.result import FAIL, INCONCLUSIVE, PASS, SKIP, Check, GateResult

COLUMNS = ("rule", "job", "metric", "limit", "measured", "margin", "verdict")
_STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow", INCONCLUSIVE: "magenta"}


def _cells(c: Check) -> list[str]:
    return [c.rule, c.job, c.metric, c.limit, c.measured, c.margin, c.verdict + (f" ({c.note})" if c.note else "")]


def table(results: list[GateResult], title: str = "") -> Table:
    t = Table(title=title or None, header_style="bold")
    for col in COLUMNS:
        t.add_column(col, overflow="fold")
    for res in results:
        for c in res.checks:
            *cells, verdict = _cells(c)
            t.add_row(*cells, f"[{_STYLE[c.verdict]}]{verdict}")
    return t


def summary(results: list[GateResult]) -> str:
    checks = [c for r in results for c in r.checks]
    n_fail = sum(c.verdict == FAIL for c in checks)
    n_skip = sum(c.verdict == SKIP for c in checks)
    n_inc = sum(c.verdict == INCONCLUSIVE for c in checks)
    strict = any(r.strict for r in results) and n_inc
    word = "FAILED" if n_fail or strict else "passed"
    inc = f", {n_inc} inconclusive{' (--strict: inconclusive fails)' if strict else ''}" if n_inc else ""
    return f"gate {word}: {len(checks) - n_fail - n_skip - n_inc} passed, {n_fail} failed{inc}, {n_skip} skipped"


def _testcases(checks: list[Check]):
    """One test case per (rule, job): it fails if any of its metric checks failed."""
    key = lambda c: (c.rule, c.job)  # noqa: E731
    for (rule, job), group in groupby(sorted(checks, key=key), key=key):
        yield rule, job, list(group)


def _state(res: GateResult, group: list[Check]) -> str:
    """A test case fails on any failure (inconclusive too under --strict); inconclusive or all-skip: skipped."""
    if any(c in res.failures for c in group):
        return "failure"
    if any(c.verdict == INCONCLUSIVE for c in group) or all(c.verdict == SKIP for c in group):
        return "skipped"
    return "pass"


def write_junit(results: list[GateResult], path: Path, run_name: str) -> None:
    suites = ET.Element("testsuites", name=f"recbench gate {run_name}")
    for res in results:
        cases = list(_testcases(res.checks))
        suite = ET.SubElement(suites, "testsuite", name=f"{res.kind}: {res.source}", tests=str(len(cases)),
                              failures=str(sum(_state(res, g) == "failure" for *_, g in cases)),
                              skipped=str(sum(_state(res, g) == "skipped" for *_, g in cases)), errors="0")
        for rule, job, group in cases:
            case = ET.SubElement(suite, "testcase", classname=f"{res.kind}.{rule}", name=job)
            failed = [c for c in group if c in res.failures]
            inconclusive = [c for c in group if c.verdict == INCONCLUSIVE]
            lines = [" | ".join(_cells(c)) for c in group]
            if _state(res, group) == "failure":
                msg = "; ".join(c.note if c.metric == "-" else f"{c.metric}{' inconclusive' * (c.verdict != FAIL)}"
                                f" {c.measured} (limit {c.limit})" for c in failed)
                kind = "inconclusive" if all(c.verdict == INCONCLUSIVE for c in failed) else \
                    "budget" if res.kind == "budgets" else "regression"
                ET.SubElement(case, "failure", message=msg, type=kind).text = "\n".join(lines)
            elif inconclusive:  # neither a pass nor a failure by default: reported as skipped, named inconclusive
                ET.SubElement(case, "skipped", message="; ".join(f"inconclusive: {c.metric}: {c.note}"
                                                                 for c in inconclusive))
            elif all(c.verdict == SKIP for c in group):
                ET.SubElement(case, "skipped", message="; ".join(c.note for c in group))
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    ET.indent(suites)
    Path(path).write_text(ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def write_markdown(results: list[GateResult], path: Path, run_name: str) -> None:
    """A pull-request comment: verdict first, failures first, then every check."""
    icon = {PASS: "✅", FAIL: "❌", SKIP: "⏭️", INCONCLUSIVE: "❔"}
    ok = all(r.passed for r in results)
    lines = [f"### {icon[PASS] if ok else icon[FAIL]} recbench {summary(results)}", "",
             f"Run `{run_name}`; " + "; ".join(f"{r.kind}: `{r.source}`" for r in results), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    checks = sorted((c for r in results for c in r.checks), key=lambda c: c.verdict != FAIL)
    for c in checks:
        *cells, verdict = _cells(c)
        lines.append("| " + " | ".join(_md_escape(x) for x in [*cells, f"{icon[c.verdict]} {verdict}"]) + " |")
    Path(path).write_text("\n".join(lines) + "\n")
