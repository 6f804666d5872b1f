"""Explaining the numbers: machine peaks, roofline fields, energy meters, operator profiles (real runtimes)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.measure import energy, machine, ops, roofline
from bench.records.rundir import RunDir
from bench.report import explain
from tests.conftest import ROOT, recbench

PEAKS = {"threads": 2, "fp32_gemm_gflops": 100.0, "int8_gemm_gops": 400.0, "triad_gbps": 10.0, "gather_gbps": 2.0}


@pytest.fixture
def small_machine(monkeypatch):
    for name, value in (("GEMM_N", 64), ("TRIAD_ELEMS", 1 << 14), ("GATHER_ROWS", 1 << 12), ("GATHER_BATCH", 256),
                        ("WINDOWS", 1), ("WINDOW_S", 0.02)):
        monkeypatch.setattr(machine, name, value)


def test_machine_measures_every_peak_and_caches_it(small_machine, tmp_path, monkeypatch):
    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path))
    env = {"cpu": "test cpu", "cpu_flags": ["avx2"], "usable_cores": 2, "versions": {}}
    assert machine.cached(env) is None
    peaks = machine.measure(env)
    for key in ("fp32_gemm_gflops", "int8_gemm_gops", "triad_gbps", "gather_gbps"):
        assert peaks[key] > 0, key
    assert machine.cached(env) == peaks
    assert machine.cache_path(env).parent == tmp_path / "machine"
    first = machine.describe(peaks)[0]
    assert "GEMM" in first and "GFLOP/s" in first and "int8" not in first


def test_machine_cached_without_a_measurement_is_bad_input(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bench.cli.main import app
    from bench.errors import UserError

    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path))
    res = CliRunner().invoke(app, ["machine", "--cached"])
    assert isinstance(res.exception, UserError) and "run `recbench machine`" in str(res.exception)


def test_roofline_bound_and_peak_choice():
    notes = {"gather_bytes_per_sample": 1000.0, "dense_bytes": 64_000}
    f = roofline.fields(1e6, notes, 64, 50_000, "fp32", 2, PEAKS)
    assert f["bytes_per_sample"] == pytest.approx(2000.0)
    assert f["roofline"]["compute"] == pytest.approx(0.5) and f["bound"] == "compute"
    assert f["roofline"]["gather"] == pytest.approx(1000 * 50_000 / 1e9 / 2.0)
    f8 = roofline.fields(1e6, notes, 64, 50_000, "distilled+int8-static", 1, PEAKS)
    assert f8["peak_used"] == "int8_gemm_gops" and f8["peak_gflops"] == pytest.approx(200.0)  # 1 of 2 threads
    slow = roofline.fields(1e6, notes, 64, 1_000, "fp32", 2, PEAKS)
    assert slow["bound"] == "overhead" and slow["fraction_of_peak"] < roofline.OVERHEAD_BELOW
    gather = roofline.fields(1e3, {"gather_bytes_per_sample": 1e5, "dense_bytes": 0}, 64, 10_000, "fp32", 2, PEAKS)
    assert gather["bound"] == "gather"
    none = roofline.fields(1e6, notes, 64, 50_000, "fp32", 2, None)
    assert none["bound"] is None and "recbench machine" in none["roofline_note"] and none["achieved_gbps"] > 0


def _zone(root: Path, name: str, uj: int, wrap: int = 1_000_000_000) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(str(uj))
    (zone / "max_energy_range_uj").write_text(str(wrap))
    return zone


def test_rapl_meter_reads_a_fake_powercap_tree_across_a_wrap(tmp_path):
    zone = _zone(tmp_path, "intel-rapl:0", 999_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 5)  # a subzone: inside the package, never counted twice
    counters, why = energy.counters_for("cpu", tmp_path)
    assert [c.name for c in counters] == ["rapl package-0 (intel-rapl:0)"] and why == ""
    clock = iter([0.0, 10.0])
    meter = energy.EnergyMeter(counters, interval_s=3600, clock=lambda: next(clock))
    with meter:
        (zone / "energy_uj").write_text(str(49_000_000))  # wrapped: 1 J to the top, then 49 J
    f = meter.fields(samples=20_000, measured_s=5.0)
    assert f["avg_watts"] == pytest.approx(5.0) and f["energy_j"] == pytest.approx(25.0)
    assert f["joules_per_1k_samples"] == pytest.approx(1.25) and "rapl" in f["power_source"]


def test_no_power_source_is_said_not_estimated(tmp_path):
    counters, why = energy.counters_for("cpu", tmp_path / "absent")
    f = energy.EnergyMeter(counters, why).__enter__().fields(100, 1.0)
    assert f == {"power_source": energy.NO_SOURCE, "power_source_reason": why} and "no RAPL zones" in why


def test_nvml_meter_with_a_fake_reader():
    mj = iter([1_000_000, 1_150_000])
    fake = SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
                           nvmlDeviceGetTotalEnergyConsumption=lambda h: 1_000_000 if h == "gpu1" else None)
    counters, why = energy.counters_for("cuda:1", nvml=fake)
    assert why == "" and counters[0].name == "nvml gpu 1"
    fake.nvmlDeviceGetTotalEnergyConsumption = lambda h: next(mj)
    clock = iter([0.0, 2.0])
    meter = energy.EnergyMeter(counters, interval_s=3600, clock=lambda: next(clock))
    with meter:
        pass
    assert meter.fields(1000, 2.0)["avg_watts"] == pytest.approx(75.0)

    def broken():
        raise RuntimeError("NVML Shared Library Not Found")

    counters, why = energy.counters_for("cuda:0", nvml=SimpleNamespace(nvmlInit=broken))
    assert counters == [] and "NVML Shared Library Not Found" in why


RAW = {"profiler": "test", "iterations": 10, "runtime_ms_per_iter": 2.0,
       "rows": [{"op_type": "Gemm", "node": "fc1", "calls": 10, "total_ms": 10.0},
                {"op_type": "Gemm", "node": "fc2", "calls": 10, "total_ms": 5.0},
                {"op_type": "Gather", "node": "emb0", "calls": 10, "total_ms": 3.0}]}


def test_normalize_shares_are_of_the_measured_iteration(tmp_path):
    table = ops.normalize(RAW, measured_mean_ms=2.0)
    assert [t["op_type"] for t in table["op_types"]] == ["Gemm", "Gather"]
    gemm = table["op_types"][0]
    assert gemm["ms_per_iter"] == pytest.approx(1.5) and gemm["share"] == pytest.approx(0.75) and gemm["nodes"] == 2
    assert table["share_sum"] == pytest.approx(0.9) and table["unattributed_ms"] == pytest.approx(0.2)
    assert table["nodes"][0]["node"] == "fc1" and table["nodes"][0]["mean_ms"] == pytest.approx(1.0)
    rel = ops.save(tmp_path, "job", table)
    s = ops.summary(table, rel)
    assert s["top"][0]["op_type"] == "Gemm" and s["top_node"] == "fc1" and s["file"] == "ops/job.json"
    assert RunDir(tmp_path).op_table({"op_profile": s}) == json.loads((tmp_path / rel).read_text())


def test_op_changes_rank_by_absolute_time():
    a = ops.normalize(RAW, 2.0)
    faster = {**RAW, "rows": [{**RAW["rows"][0], "total_ms": 2.0}, RAW["rows"][1], RAW["rows"][2],
                              {"op_type": "DequantizeLinear", "node": "dq", "calls": 10, "total_ms": 1.0}]}
    rows = explain.changes(a, ops.normalize(faster, 1.0))
    assert rows[0]["op_type"] == "Gemm" and rows[0]["ratio"] == pytest.approx(0.7 / 1.5)
    assert next(r for r in rows if r["op_type"] == "DequantizeLinear")["ratio"] is None


def test_parse_ort_profile_keeps_the_last_runs_only():
    from backends.ort import parse_ort_profile

    events = [{"cat": "Session", "name": "model_run", "ts": t, "dur": 90} for t in (0, 100, 200)]
    events += [{"cat": "Node", "name": f"fc_{k}", "ts": t + 1, "dur": 40, "args": {"op_name": "Gemm"}}
               for t in (0, 100, 200) for k in ("kernel_time", "fence_before")]
    raw = parse_ort_profile(events, iterations=2)
    assert raw["iterations"] == 2 and raw["runtime_ms_per_iter"] == pytest.approx(0.09)
    assert raw["rows"] == [{"op_type": "Gemm", "node": "fc", "calls": 2, "total_ms": pytest.approx(0.08)}]


def test_openvino_and_tensorrt_rows_without_their_runtimes():
    from backends.ov import ov_rows
    from backends.trt import layer_profiler, trt_layer_type, trt_rows

    info = lambda node, us, status="Status.EXECUTED": SimpleNamespace(  # noqa: E731
        node_name=node, node_type="FullyConnected", exec_type="brgemm_avx512", real_time=timedelta(microseconds=us),
        status=status)
    rows = ov_rows([info("fc", 100), info("fc", 300), info("c", 0, "Status.NOT_RUN")])
    assert rows == [{"op_type": "FullyConnected", "node": "fc", "calls": 2, "total_ms": pytest.approx(0.4),
                     "exec_type": "brgemm_avx512"}]
    assert [trt_layer_type(n) for n in ("/top/top.0/Gemm + /top/Relu", "node_MatMul_12", "Reformatting CopyNode x",
                                        "PWN(/Relu)")] == ["Gemm", "MatMul", "Reformat", "PointWise"]
    profiler = layer_profiler(SimpleNamespace(IProfiler=object))  # TensorRT calls report_layer_time per layer
    for ms in (0.5, 1.5):
        profiler.report_layer_time("/emb/Gather_3", ms)
    assert profiler.times == {"/emb/Gather_3": [2, 2.0]}
    assert trt_rows({"/emb/Gather_3": [4, 2.0]}) == [{"op_type": "Gather", "node": "/emb/Gather_3", "calls": 4,
                                                      "total_ms": 2.0}]


@pytest.mark.parametrize("name, expect", [("onnxruntime", "Gemm"), ("openvino", "FullyConnected"),
                                          ("torch-cpu", "aten::addmm")])
def test_real_runtime_profilers(tiny_ws, name, expect):
    from backends import registry
    from backends.base import BackendOptions
    from models.variants import resolve_variants

    variant = resolve_variants(["fp32"])[0]
    cls = registry.get(name)
    fmt = cls.pick_format(variant.formats)
    backend = cls()
    backend.load(tiny_ws.prepare(variant, {fmt}).files[fmt], BackendOptions(threads=1, inputs=tiny_ws.names))
    raw = backend.op_profile(tiny_ws.bench_inputs(8, 2), 10)
    assert raw["iterations"] == 10 and raw["runtime_ms_per_iter"] > 0
    types = {r["op_type"] for r in raw["rows"]}
    assert any(expect in t for t in types), types
    table = ops.normalize(raw, raw["runtime_ms_per_iter"])
    assert 0 < table["share_sum"] < 5 and np.isfinite(table["unattributed_ms"])


def test_run_with_op_profile_records_ops_energy_and_roofline(tmp_path):
    res = recbench("run", "--quick", "--op-profile", "--preset", "tiny", "--backends", "onnxruntime",
                   "--batch-sizes", "4", "--out", str(tmp_path), "--no-report")
    assert res.returncode == 0, res.stderr[-2000:]
    run = next(tmp_path.glob("*/records.jsonl")).parent
    rec = json.loads((run / "records.jsonl").read_text().splitlines()[0])
    prof = rec["op_profile"]
    assert prof["profiler"] == "onnxruntime enable_profiling" and prof["top"] and prof["share_sum"] > 0
    assert json.loads((run / prof["file"]).read_text())["nodes"]
    assert rec["bytes_per_sample"] > rec["gather_bytes_per_sample"] > 0 and rec["achieved_gbps"] > 0
    if not list(Path(energy.POWERCAP).glob("intel-rapl:*/energy_uj")):
        assert rec["power_source"] == energy.NO_SOURCE
    env = json.loads((run / "env.json").read_text())
    assert "machine" in env
    (run / "env.json").write_text(json.dumps({**env, "machine": {**PEAKS, "measured_at": "now"}}))
    from bench.compare import compare_runs, op_changes
    from bench.report.build import build_report

    drawn = {c.name: c.skipped for c in build_report(run).charts}
    assert drawn["op-breakdown"] == "" and drawn["roofline"] == ""
    assert "Top nodes per job" in (run / "report" / "report.md").read_text()
    assert op_changes(compare_runs(run, run)).rows


def test_fidelity_pairs_interleave_and_their_ratio_is_the_one_engine():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fidelity", ROOT / "scripts" / "fidelity.py")
    fidelity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fidelity)
    interleaved, paired_ratio = fidelity.interleaved, fidelity.paired_ratio

    order = []
    a, b = interleaved(lambda: order.append("a") or 2.0, lambda: order.append("b") or 1.0, 4)
    assert "".join(order) == "abbaabba" and a == [2.0] * 4 and b == [1.0] * 4
    assert paired_ratio(a, b).value == pytest.approx(2.0) and paired_ratio(a, b).ci == pytest.approx((2.0, 2.0))
    r = paired_ratio([1.1, 1.2, 1.05, 1.15], [1.0, 1.0, 1.0, 1.0])
    assert r.ci[0] <= r.value <= r.ci[1] and 1.0 < r.ci[0] and r.ci[1] < 1.25
    # four pairs: a t interval with 3 degrees of freedom, wider than the percentile bootstrap of four logs was
    assert r.ci[1] / r.ci[0] > 1.15
    one = paired_ratio([2.0], [1.0])  # a single pair shows no between-process noise: it is assumed
    assert one.value == pytest.approx(2.0) and one.ci[0] < 1.3 and one.ci[1] > 3


def test_a_backend_without_a_profiler_or_with_a_failing_one_keeps_the_job(tmp_path):
    from tests.fakes import ScriptedBackend

    assert ops.profile_job(ScriptedBackend(), [{"i": 0}], 1.0, tmp_path, "j") == {
        "error": "scripted has no operator profiler"}

    class Broken(ScriptedBackend):
        def op_profile(self, batches, iterations):
            raise RuntimeError("profiler exploded\nsecond line")

    assert ops.profile_job(Broken(), [{"i": 0}], 1.0, tmp_path, "j") == {"error": "RuntimeError: profiler exploded"}
