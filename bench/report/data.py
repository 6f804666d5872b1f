"""A recorded run as reports see it: its records, environment and raw latencies (never re-run anything)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.records.rundir import RECORDS, RunDir
from bench.records.schema import value_at

# scenarios that drive load into the backend (their records carry achieved throughput under load)
LOAD_SCENARIOS = ("server", "concurrency", "max-qps")
BASELINE_VARIANT = "fp32"


def varying(records: list[dict], fields: tuple[str, ...]) -> list[str]:
    """The fields (in the given order) that take more than one value across the records."""
    return [f for f in fields if len({str(r.get(f)) for r in records}) > 1]


def is_load(record: dict) -> bool:
    """A record measured under load (server / concurrency / max-qps), not back to back."""
    return record.get("scenario") in LOAD_SCENARIOS or record.get("achieved_qps") is not None


@dataclass
class Run:
    """One run folder loaded for reporting: every record, the ok ones, env and config."""

    path: Path
    records: list[dict]
    env: dict
    config: dict = field(default_factory=dict)
    interruption: str = ""  # why the run is incomplete (RunDir.interruption), '' when it finished
    _raw: dict = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return self.path.name

    @cached_property
    def ok(self) -> list[dict]:
        return [r for r in self.records if r.get("status") == "ok"]

    def raw_ms(self, record: dict) -> np.ndarray | None:
        """The job's per-iteration latencies in milliseconds, or None where the raw file is missing or torn."""
        job = record.get("job_id")
        if job not in self._raw:
            try:
                self._raw[job] = RunDir(self.path).latencies(record)
            except (OSError, ValueError):
                self._raw[job] = None
        return self._raw[job]


def read_run(path: Path, require_ok: bool = True) -> Run:
    """Read a run folder; bad input (not a run, newer schema, no ok record unless not required) is a UserError."""
    path = Path(path)
    if not (path / RECORDS).is_file():
        below = sorted(str(p.parent.relative_to(path)) for p in path.glob(f"*/{RECORDS}"))[:3] if path.is_dir() else []
        hint = f"; run folders inside it: {', '.join(below)}" if below else ""
        raise UserError(f"{path} is not a recbench run folder (no {RECORDS}){hint}")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        config = {}
    rd = RunDir(path)
    records = rd.records()
    run = Run(path, records, rd.env(), config, rd.interruption())
    if require_ok and not run.ok:
        counts = ", ".join(f"{sum(r.get('status') == s for r in records)} {s}" for s in ("failed", "skipped"))
        first = next((r.get("reason") for r in records if r.get("reason")), None)
        why = f"; first reason: {first}" if first else ""
        stopped = f"; {run.interruption}" if run.interruption else ""
        raise UserError(f"{path} has no ok records to report ({len(records)} records: {counts}){why}{stopped}")
    return run


def env_summary(env: dict) -> list[tuple[str, str]]:
    """The environment a run was measured in, as (label, value) lines for the top of a report."""
    if not env:
        return [("environment", "not recorded (env.json missing)")]
    cores = f"{env.get('usable_cores', '?')} usable of {env.get('logical_cores', '?')} logical " \
            f"({env.get('physical_cores', '?')} physical)"
    ram = env.get("ram_bytes")
    gpu = "; ".join(f"{g.get('name')} ({g.get('memory_bytes', 0) / 2**30:.0f} GiB, driver {g.get('driver')})"
                    for g in env.get("gpus") or []) or "none"
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    flags = " ".join(env.get("cpu_flags") or []) or "-"
    return [("CPU", str(env.get("cpu", "?"))), ("cores", cores), ("CPU features", flags),
            ("RAM", f"{ram / 2**30:.1f} GiB" if ram else "?"), ("GPU", gpu), ("OS", str(env.get("os", "?"))),
            ("Python", str(env.get("python", "?"))), ("versions", versions or "-"),
            ("git revision", str(env.get("git_revision") or "-"))]


def run_summary(run: Run) -> list[tuple[str, str]]:
    """What was run: model, preset, profile, timing, job counts."""
    first = run.records[0] if run.records else {}
    timing = first.get("timing") or run.config.get("timing") or {}
    counts = ", ".join(f"{sum(r.get('status') == s for r in run.records)} {s}" for s in ("ok", "failed", "skipped"))
    window = (f"min {timing.get('min_iters')} iterations and {timing.get('min_duration_s')} s per job, extended until "
              f"{timing.get('resolve') or 'nothing'} is resolvable, at most {timing.get('max_duration_s')} s"
              if timing else "?")
    started = min((r.get("started_at") for r in run.records if r.get("started_at")), default="?")
    return [("run", run.run_id), ("model", f"{first.get('model', '?')} (preset {first.get('preset', '?')})"),
            ("profile", str(first.get("profile", "?"))), ("threads", str(first.get("threads", "?"))),
            ("measurement", window), ("jobs", counts + (f" — INCOMPLETE: {run.interruption}" if run.interruption
                                                        else "")), ("started", str(started))]


def _load_point(record: dict, point: dict) -> dict:
    batch = record.get("batch_size") or 1
    achieved = point.get("achieved_qps")
    samples = point.get("throughput_sps") or (achieved * batch if achieved is not None else None)
    if point.get("concurrency") is not None:
        setting = f"{point['concurrency']} client{'s' if point['concurrency'] != 1 else ''}"
    elif point.get("target_qps") is not None:
        setting = f"{point['target_qps']:,.1f} QPS offered"
    else:
        setting = str(record.get("scenario"))
    ci = point.get("latency_ci_ms") or {}
    offered = point.get("target_qps") or point.get("concurrency") or samples or 0
    return {"setting": setting, "offered": offered, "clients": point.get("concurrency"),
            "target_qps": point.get("target_qps"), "achieved_qps": achieved, "samples_per_s": samples,
            "p50": value_at(point, "latency_ms.p50"), "p99": value_at(point, "latency_ms.p99"),
            "p50_ci": ci.get("p50"), "p99_ci": ci.get("p99"), "passed": point.get("passed")}


def load_points(record: dict) -> list[dict]:
    """The (achieved throughput, latency) points a load scenario measured: its curve, else the record itself."""
    if not is_load(record):
        return []
    curve = [p for p in record.get("curve") or [] if isinstance(p, dict)]
    points = [_load_point(record, p) for p in curve] or [_load_point(record, record)]
    return [p for p in points if p["samples_per_s"] is not None and p["p99"] is not None]
