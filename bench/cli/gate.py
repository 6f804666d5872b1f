"""`recbench gate`: validate every input, judge the run, print and write the verdicts, store them in the history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.console import Console

from bench.errors import USER_ERRORS, UserError
from bench.gate import output
from bench.gate.budgets import load_budgets
from bench.gate.evaluate import evaluate_budgets
from bench.gate.history import evaluate_history
from bench.gate.regression import evaluate_regression, parse_metrics, parse_threshold
from bench.gate.result import FAIL, INCONCLUSIVE, PASS, SKIP, Check, GateResult
from bench.records.history import REFS, History, default_db
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir
from bench.report.tables import print_table
from bench.run.ab import DEFAULT_PAIRS, MAX_TIME_S
from bench.stats import hboot


def open_run(path: Path, what: str = "run") -> RunDir:
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise UserError(f"{what} folder {path} does not exist")
    if not run.records():
        raise UserError(f"{path} has no records: nothing to gate")
    return run


def resolve_baseline(ref: str, candidate: RunDir, db: Path) -> RunDir | None:
    """A run folder, or a ref (last-pass, last, a run id) looked up in the history; None: no such run yet."""
    if Path(ref).is_dir():
        return open_run(Path(ref), "baseline")
    if not db.exists() and ref not in REFS:
        raise UserError(f"baseline '{ref}' is not a run folder, and there is no history database at {db} to look it "
                        "up in (use --db, or `recbench history --rebuild FOLDER`)")
    if not db.exists():
        return None
    with History(db) as h:
        base = h.resolve(ref, candidate)
    return open_run(base.path, "baseline") if base else None


def judge_sequentially(console: Console, measure, threshold: float, names: tuple[str, ...], strict: bool,
                       key=JobKey.of) -> tuple[tuple[RunDir, RunDir], GateResult]:
    """Run `measure(look)` (bench.run.ab's rerun or run_ab), judging the pairs at each look at the alpha spent since
    the one before (bench.stats.hboot.spent, by the fraction of the time budget spent) and printing one line per
    metric, until every metric is decided; the last look's verdicts. A metric decided at a look keeps that verdict
    (its own sequential test stopped there: a group-sequential boundary once crossed is final), so a regression
    goes on only to decide the metrics still open; a pass takes a later look's pass (its tighter interval may clear
    1: "improved")."""
    from bench.run.progress import look_line

    looks: list[GateResult] = []
    used = [0.0]  # alpha spent by the looks so far
    decided: dict[tuple[str, str], Check] = {}

    def look(runs: tuple[RunDir, RunDir], pairs: int, left_s: float, fraction: float) -> bool:
        alpha = max(hboot.spent(fraction) - used[0], 1e-9)
        used[0] += alpha
        looks.append(evaluate_regression(*runs, threshold, names, paired=True, strict=strict, key=key,
                                         confidence=1 - alpha))
        for i, c in enumerate(looks[-1].checks):  # a metric decided at an earlier look keeps that look's verdict
            old = decided.get((c.job, c.metric))
            if old and not old.verdict == c.verdict == PASS:
                looks[-1].checks[i] = old
            elif c.verdict in (PASS, FAIL):
                decided[(c.job, c.metric)] = c
        console.print(f"look {len(looks)} after {pairs} interleaved pairs (alpha {alpha:.3g}):", highlight=False)
        for c in (c for c in looks[-1].checks if c.ratio):
            label = f"{c.metric.removeprefix('latency_ms.')} {c.job}"
            console.print("  " + look_line(label, c.ratio, c.verdict, threshold, 0 if fraction >= 1 else left_s),
                          highlight=False, soft_wrap=True)
        return INCONCLUSIVE not in {c.verdict for c in looks[-1].checks}

    runs = measure(look)
    return runs, looks[-1] if looks else evaluate_regression(*runs, threshold, names, paired=True, strict=strict,
                                                             key=key)


def rerun_regression(console: Console, base: RunDir, run: RunDir, threshold: float, names: tuple[str, ...],
                     strict: bool, repeat: int, max_time: float = MAX_TIME_S) -> GateResult:
    """Re-measure both runs' shared jobs now, interleaved, until decided, and judge the candidate on those."""
    from bench.run.ab import rerun

    console.print(f"re-running the jobs of {base.path.name} and {run.path.name} interleaved until decided (at most "
                  f"{repeat} pairs, {max_time:.0f} s per pair of jobs)", highlight=False)
    (new_a, new_b), result = judge_sequentially(console, lambda look: rerun(
        base, run, repeat, JobKey.of, lambda plan, k: console.print(f"  {plan.run.run_id} {plan.job.job_id} r{k}",
                                                                    highlight=False), look, max_time),
        threshold, names, strict)
    console.print(f"re-run measurements: {new_a.path} {new_b.path}", soft_wrap=True, highlight=False)
    result.source = f"{base.path} (re-run interleaved with the candidate)"
    return result


def run_gate(console: Console, run_dir: Path, budgets: Path | None, baseline: str | None, max_regression: str,
             metrics: str | None, strict: bool, junit: Path | None, markdown: Path | None, db: Path | None,
             rerun: bool = False, repeat: int | None = None, record: bool = False,
             allow_interrupted: bool = False, max_time: float | None = None, history: bool = False, window: int = 20,
             model: str = "t-test", fail_on_change: bool = False) -> bool:
    """Judge RUN_DIR against a budgets file and/or a baseline run; True when every check passed.

    The verdict goes into the history (and so into what `last-pass` means) only with `record`: trying a budgets
    file out must not change the baseline of the next CI build."""
    if budgets is None and baseline is None and not history:
        raise UserError("gate needs --budgets FILE, --baseline RUN_OR_REF and/or --history")
    if rerun and baseline is None:
        raise UserError("--rerun re-measures the baseline and the candidate: it needs --baseline")
    run = open_run(run_dir)
    db = db or default_db(run.path.parent)
    spec = load_budgets(budgets) if budgets else None
    threshold, names = parse_threshold(max_regression), parse_metrics(metrics)
    base = resolve_baseline(baseline, run, db) if baseline else None
    if base:
        base.refuse_interrupted("the baseline", allow_interrupted)
    if run.interrupted:
        console.print(f"[yellow]warning[/]: {run.interruption()}: judging the jobs it recorded", highlight=False)

    results: list[GateResult] = []
    if spec:
        results.append(evaluate_budgets(spec, run.records(), str(budgets), strict))
    if base and rerun:
        results.append(rerun_regression(console, base, run, threshold, names, strict, repeat or DEFAULT_PAIRS,
                                        max_time or MAX_TIME_S))
    elif base:
        results.append(evaluate_regression(base, run, threshold, names, strict=strict))
    elif baseline:  # the first run of a new history has nothing to regress from: say so, do not fail
        note = f"no {baseline} baseline in the history yet: regression not checked"
        results.append(GateResult("regression", baseline, [Check("regression", "-", "-", "-", "-", "-", SKIP, note)]))
    if history:
        if not db.exists():
            raise UserError(f"no history database at {db} (use --db, or `recbench history --rebuild FOLDER`)")
        with History(db) as h:
            results.append(evaluate_history(run, h, threshold, names, model, window, fail_on_change, strict))
    print_table(console, output.table(results, title=f"gate {run.run_id}"), 2)
    ok = all(r.passed for r in results)
    console.print(("[green]" if ok else "[bold red]") + output.summary(results), highlight=False)
    if junit:
        output.write_junit(results, junit, run.run_id)
    if markdown:
        output.write_markdown(results, markdown, run.run_id)
    if record:
        try:
            with History(db) as h:
                for r in results:
                    h.record_gate(run, r.kind, r.source, r.passed, len(r.failures), r.as_dict())
        except (*USER_ERRORS, sqlite3.Error, OSError) as e:
            console.print(f"[yellow]warning[/]: gate verdict not stored in the history database: {e}", highlight=False)
    return ok
