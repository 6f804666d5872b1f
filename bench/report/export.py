"""A run's numbers as CI tools ingest them: Bencher Metric Format (BMF) and github-action-benchmark's custom JSON
(`gab`: customSmallerIsBetter latencies, `gab-bigger`: customBiggerIsBetter throughputs)."""

from __future__ import annotations

from bench.records.jobkey import JobKey
from bench.records.schema import value_at

FORMATS = ("bmf", "gab", "gab-bigger")
# measure -> (record metric, its CI's record path, unit)
MEASURES = {"latency-p50-ms": ("latency_ms.p50", "latency_ci_ms.p50", "ms"),
            "latency-p99-ms": ("latency_ms.p99", "latency_ci_ms.p99", "ms"),
            "throughput-sps": ("throughput_sps", "throughput_ci_sps", "samples/s")}


def benchmark_name(record: dict) -> str:
    """The job identity as one stable name: model/preset/variant/backend/device/profile/scenario/b<batch>/shapes."""
    key = JobKey.of(record).as_dict() | {"batch_size": f"b{record.get('batch_size')}"}
    return "/".join(str(v) for v in key.values() if v is not None)


def bmf(records: list[dict]) -> dict:
    """{benchmark: {measure: {value, lower_value, upper_value}}}, the bounds from each metric's CI where it has one."""
    out: dict[str, dict] = {}
    for rec in (r for r in records if r.get("status") == "ok"):
        for measure, (metric, ci_path, _) in MEASURES.items():
            ci = value_at(rec, ci_path) or []
            if (value := value_at(rec, metric)) is not None:
                bounds = {"lower_value": ci[0], "upper_value": ci[1]} if len(ci) == 2 else {}
                out.setdefault(benchmark_name(rec), {})[measure] = {"value": value, **bounds}
    return out


def gab(records: list[dict], bigger: bool = False) -> list[dict]:
    """[{name, unit, value, range?, extra?}]: the latencies (smaller is better) or the throughputs (bigger is)."""
    return [{"name": f"{name} {measure}", "unit": MEASURES[measure][2], "value": m["value"],
             **({"range": f"± {(m['upper_value'] - m['lower_value']) / 2:.4g}",
                 "extra": f"95% CI [{m['lower_value']:.4g}, {m['upper_value']:.4g}]"} if "lower_value" in m else {})}
            for name, measures in bmf(records).items() for measure, m in measures.items()
            if measure.startswith("throughput") == bigger]
