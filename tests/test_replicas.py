"""Replicas, interleaved re-runs, noise metadata, inconclusive verdicts and `recbench doctor`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from backends.base import file_sha256
from bench.config.sweep import SweepConfig, TimingConfig
from bench.errors import UserError
from bench.gate.output import write_junit
from bench.gate.regression import evaluate_regression
from bench.gate.result import FAIL, INCONCLUSIVE, PASS, Check, GateResult
from bench.measure import noise
from bench.measure.jobspec import Artifacts, Job
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir, replica_raws
from bench.run import ab, interleave, sweep
from bench.run.sweep import Sweep
from bench.stats import hboot
from tests.conftest import recbench
from tests.runs import latencies, make_run

QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=50, min_duration_s=0.05, quality_samples=2048)


def _rounds(rng, n: int, shift: float, drift: np.ndarray) -> list[np.ndarray]:
    return [rng.lognormal(np.log(shift * d), 0.05, 300) for d in drift[:n]]


def test_paired_replicas_cancel_what_slowed_both_of_a_pair():
    """Each round's machine state slows A and B alike: pairing sees through it, unpaired replicas cannot."""
    rng = np.random.default_rng(0)
    drift = rng.lognormal(0, 0.4, 5)  # round-to-round machine noise, shared by the pair
    a, b = _rounds(rng, 5, 1.0, drift), _rounds(rng, 5, 1.3, drift)
    paired, unpaired = hboot.ratio(a, b, "p50", paired=True), hboot.ratio(a, b, "p50", paired=False)
    assert paired.ci[0] > 1.2 and paired.ci[1] < 1.4 and paired.mde < 0.1
    assert unpaired.ci[1] - unpaired.ci[0] > 5 * (paired.ci[1] - paired.ci[0]) and unpaired.mde > 0.3
    one = hboot.pooled([a[0]], "p50")  # one replica: only the iterations' spread
    many = hboot.pooled(a, "p50")
    assert many.ci[1] - many.ci[0] > 3 * (one.ci[1] - one.ci[0])


def test_busy_reasons_from_the_noise_fields():
    assert noise.busy_reasons({"others_cpu_share": 0.05, "steal_share": 0.0}) == []
    assert noise.busy_reasons({"others_cpu_share": 0.5, "steal_share": 0.2}) == [
        "other processes took 50% of the cores' time", "the hypervisor stole 20% of the cores' time"]
    before = noise.Snapshot.take([0])
    fields = noise.between(before, noise.Snapshot.take([0]), [0], threads=1)
    assert {"loadavg_before", "others_cpu_share", "steal_share", "cores_available", "threads_running", "governor",
            "busy", "busy_reasons"} <= set(fields)


def test_inconclusive_is_named_in_junit_and_fails_only_under_strict(tmp_path):
    checks = [Check("regression", "job", "latency_ms.p50", "worse by <= 5%", "x1.1", "-5%", INCONCLUSIVE, "MDE 30%"),
              Check("regression", "job", "latency_ms.p99", "worse by <= 5%", "x1.0", "+5%", PASS)]
    for strict, failures, skipped in ((False, "0", "1"), (True, "1", "0")):
        res = GateResult("regression", "base", checks, strict=strict)
        assert res.passed is not strict
        write_junit([res], tmp_path / "j.xml", "run")
        suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
        assert (suite.get("failures"), suite.get("skipped")) == (failures, skipped)
        node = suite.find("testcase/failure" if strict else "testcase/skipped")
        assert "inconclusive" in (node.get("type", "") + node.get("message"))


@pytest.fixture(scope="module")
def replicated_run(tmp_path_factory):
    """Two jobs (batch 1 and 8) of the tiny model on ONNX Runtime, two replicas each."""
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[1, 8], timing=QUICK, repeat=2,
                      out=tmp_path_factory.mktemp("replicas"))
    return Sweep(cfg, log=lambda s: None).run()


def test_replicas_are_interleaved_appended_each_and_quality_is_scored_once(replicated_run):
    run = replicated_run
    lines = run.lines()  # one line per replica as it ended, round by round, each with its own raw file
    b1, b8 = run.records()
    assert [(ln["job_id"], ln["replica"], ln["repeat"]) for ln in lines] == [
        (b1["job_id"], 0, 2), (b8["job_id"], 0, 2), (b1["job_id"], 1, 2), (b8["job_id"], 1, 2)]
    for rec in (b1, b8):
        assert rec["status"] == "ok" and rec["repeat"] == 2 and [s["replica"] for s in rec["replicas"]] == [0, 1]
        parts = [run.raw(f"{rec['job_id']}.r{k}") for k in (0, 1)]
        assert run.raw(rec["job_id"]) is None  # no pooled raw file: the pooled view is derived when read
        assert len(run.latencies(rec)) == sum(len(p) for p in parts) == rec["iterations"]
        assert set(rec["replica_cv"]) == {"p50", "throughput_sps"} and "others_cpu_share" in rec["noise"]
        lo, hi = rec["latency_ci_ms"]["p50"]
        assert lo <= hi
    # round-robin: replica 0 of every job starts before replica 1 of any
    spec = {p.stem.removesuffix(".job"): p.stat().st_mtime_ns for p in (run.path / "logs").glob("*.job.json")}
    assert spec[f"{b8['job_id']}.r0"] < spec[f"{b1['job_id']}.r1"]
    # quality: scored once, by the first job of the variant x backend; every other line carries that score
    assert b1["quality"] and "quality_from" not in b1
    assert b8["quality"] == b1["quality"] and b8["quality_from"] == b1["job_id"]
    assert all(ln["quality"] == b1["quality"] for ln in lines)
    assert [ln.get("quality_from") for ln in lines] == [None, b1["job_id"], b1["job_id"], b1["job_id"]]


def test_rerun_interleaves_both_runs_and_catches_an_injected_delay(replicated_run, tmp_path, monkeypatch):
    """Every replica of a sequential A/B measures at least PAIR_WINDOW_S (here 0.3 s: the jobs ask for 0.05 s)."""
    monkeypatch.setattr(ab, "PAIR_WINDOW_S", 0.3)
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[1], timing=QUICK, out=tmp_path,
                      backend_options={"onnxruntime": {"inject_delay_ms": 3}})
    slow = Sweep(cfg, log=lambda s: None).run()
    new_a, new_b = ab.rerun(replicated_run, slow, 3, JobKey.of)
    (ra,), (rb,) = new_a.records(), new_b.records()
    assert ra["repeat"] == rb["repeat"] == 3 and new_a.state["state"] == new_b.state["state"] == "complete"
    assert rb["backend_options"]["inject_delay_ms"] == 3 and ra["quality"] is None  # re-runs measure speed only
    assert all(r["duration_s"] >= 0.3 for rec in (ra, rb) for r in rec["replicas"]), (ra["replicas"], rb["replicas"])
    res = evaluate_regression(new_a, new_b, 0.10, ("latency_ms.p50",), paired=True)
    assert [c.verdict for c in res.checks] == [FAIL]  # 3 ms on top of ~0.05 ms


def test_a_paired_worker_times_both_sides_in_one_process_and_their_ratio_is_paired(replicated_run, tmp_path,
                                                                                   monkeypatch):
    """gate --rerun of single-stream jobs: replica k of A and of B come from one process (one log, both specs, the
    same replica index, one ONNX Runtime thread pool); a sequential run stopped once decided says so and does not
    warn of missing replicas."""
    monkeypatch.setattr(ab, "PAIR_WINDOW_S", 0.0)  # the jobs' own 0.05 s windows: what is tested is the pairing
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[8], timing=QUICK, out=tmp_path)
    other = Sweep(cfg, log=lambda s: None).run()
    new_a, new_b = ab.rerun(replicated_run, other, 5, JobKey.of, look=lambda runs, pairs, left, last: True)
    (ra,), (rb,) = new_a.records(), new_b.records()
    assert [s["replica"] for s in ra["replicas"]] == [s["replica"] for s in rb["replicas"]] == [0, 1, 2, 3]
    for k in range(4):
        ida, idb = f"{ra['job_id']}.r{k}", f"{rb['job_id']}.r{k}"
        first = (new_a, ida) if k % 2 == 0 else (new_b, idb)  # ABBA: odd rounds start with B
        log = (first[0].path / "logs" / f"{first[1]}.log").read_text()
        assert f"job {ida}:" in log and f"job {idb}:" in log and log.count("\nok") == 2, log  # one process, both
        assert (new_a.path / "logs" / f"{ida}.job.json").exists() and (new_b.path / "logs" / f"{idb}.job.json").exists()
    for run in (new_a, new_b):
        assert run.state["state"] == "complete" and run.state["done"] == 4
        assert json.loads((run.path / "config.json").read_text())["stopped"] == "decided after 4 pairs"
    assert not any("replicas recorded" in w for w in ra["warnings"] + rb["warnings"])
    # both sessions on the process's one ORT pool (the idle side's own pool would spin beside the timed one)
    assert ra["backend_settings"]["thread_pool"] == rb["backend_settings"]["thread_pool"] == "process (paired worker)"
    assert other.records()[0]["backend_settings"]["thread_pool"] == "session"
    groups = [replica_raws(run, rec) for run, rec in ((new_a, ra), (new_b, rb))]
    paired, unpaired = (hboot.ratio(*groups, "p50", paired=p) for p in (True, False))
    assert paired.replicas == 4 and paired.ci != unpaired.ci  # pairs resampled together


def test_an_openvino_pair_times_its_sides_in_two_processes(tmp_path, monkeypatch):
    """OpenVINO times two models in one process unalike (DESIGN.md, paired worker): replica k of A and of B run in a
    process each (a log each, its own job only), in turns, both measured with the same replica index."""
    monkeypatch.setattr(ab, "PAIR_WINDOW_S", 0.0)
    cfg = SweepConfig(preset="tiny", backends=["openvino"], batch_sizes=[8], timing=QUICK, out=tmp_path)
    run = Sweep(cfg, log=lambda s: None).run()
    new_a, new_b = ab.rerun(run, run, 2, JobKey.of)
    (ra,), (rb,) = new_a.records(), new_b.records()
    assert ra["status"] == rb["status"] == "ok", (ra.get("reason"), rb.get("reason"))
    assert [s["replica"] for s in ra["replicas"]] == [s["replica"] for s in rb["replicas"]] == [0, 1]
    for k in range(2):
        for run_, rec in ((new_a, ra), (new_b, rb)):
            log = (run_.path / "logs" / f"{rec['job_id']}.r{k}.log").read_text()
            assert log.startswith(f"job {rec['job_id']}.r{k}:") and log.count("job ") == log.count("\nok") == 1, log


def recorded_run(parent, run_id: str, artifact, scenario: str = "single-stream") -> ab.RunDir:
    """A run whose one job measured `artifact` (its sha256 recorded) and saved its job spec, as the worker does."""
    run = make_run(parent, run_id, {"fp32": latencies(1.0)}, artifact=str(artifact),
                   artifact_sha256=file_sha256(artifact))
    job = Job(job_id=run.records()[0]["job_id"], run_id=run_id, run_dir=str(run.path), model="dlrm", preset="tiny",
              variant="fp32", backend="onnxruntime", backend_entry="backends.ort:OrtBackend", device="cpu",
              profile="default", scenario=scenario, batch_size=1, threads=2, timing=QUICK, timeout_s=60,
              artifacts=Artifacts(str(artifact)))
    (run.path / "logs").mkdir(exist_ok=True)
    job.save(run.path / "logs" / f"{job.job_id}.job.json")
    return run


@pytest.fixture
def launches(monkeypatch):
    """No process: each launch is logged and fails; `then` runs at the first (e.g. a rebuild of the artifact)."""
    calls = []

    def launch(*jobs):  # one launch: one job, or a paired A/B's two
        calls.append([job.job_id for job in jobs])
        if len(calls) == 1 and launch.then:
            launch.then()
        return [job.outcome("failed", "fake launch") for job in jobs]

    launch.then = None
    monkeypatch.setattr(interleave, "launch", launch)
    return calls, launch


def test_rerun_refuses_an_artifact_changed_since_its_run(tmp_path, launches):
    calls, _ = launches
    model = tmp_path / "model.onnx"
    model.write_bytes(b"built for the baseline")
    base = recorded_run(tmp_path / "runs", "base", model)
    model.write_bytes(b"rebuilt since")  # the candidate measured the rebuilt file, the baseline did not
    cand = recorded_run(tmp_path / "runs", "cand", model)
    with pytest.raises(UserError, match=f"^{model} changed since run .*base measured it") as err:
        ab.rerun(base, cand, 3, JobKey.of)
    assert "measure both sides anew" in str(err.value)
    assert calls == [] and not (tmp_path / "runs" / "ab").exists()  # refused before anything ran
    model.unlink()
    with pytest.raises(UserError, match="no longer exists"):
        ab.rerun(base, cand, 3, JobKey.of)
    model.write_bytes(b"built for the baseline")
    res = recbench("gate", "--baseline", str(base.path), str(cand.path), "--rerun")  # the CLI: exit 2, one line
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and str(model) in res.stderr, res.stderr


def test_interleaved_runs_refuse_an_artifact_rebuilt_between_replicas(tmp_path, launches, monkeypatch):
    """`ab` pins each side's file as built at its start; `gate --rerun` pins the recorded one (checked before each
    launch: here one process per side, as for scenarios that are not timed in a paired worker)."""
    calls, launch = launches
    model = tmp_path / "model.onnx"
    model.write_bytes(b"v1")
    launch.then = lambda: model.write_bytes(b"v2")  # rebuilt by another process while A's first replica ran
    base, cand = (recorded_run(tmp_path / "runs", name, model, "server") for name in ("base", "cand"))
    with pytest.raises(UserError, match=f"^{model} changed since run .*cand measured it"):
        ab.rerun(base, cand, 3, JobKey.of)
    assert len(calls) == 1

    class PlannedSweep:  # recbench ab's sweeps, with the variant "built" into `model`
        def __init__(self, cfg, log):
            self.repeat = 1

        def environment(self):
            return {}

        def grid(self):
            return [()]

        def config_json(self):
            return {}

        def plan(self, run, environment):
            return [interleave.Planned(ab.recorded_job(base, base.records()[0]), run)]

    monkeypatch.setattr(sweep, "Sweep", PlannedSweep)
    model.write_bytes(b"v1")
    calls.clear()
    cfg = SweepConfig(out=tmp_path / "ab-out")
    with pytest.raises(UserError, match=f"^{model} changed since this A/B's build measured it"):
        ab.run_ab(cfg, cfg, 3, lambda _: None)
    assert len(calls) == 1


def test_ctrl_c_during_a_rerun_marks_both_new_runs_interrupted(tmp_path, launches):
    """`gate --rerun` is begun and finished by the run lifecycle too: Ctrl-C keeps what ended and exits 130."""
    from bench.run.lifecycle import RunInterrupted

    _, launch = launches
    model = tmp_path / "model.onnx"
    model.write_bytes(b"built")
    base, cand = (recorded_run(tmp_path / "runs", name, model) for name in ("base", "cand"))
    launch.then = lambda: (_ for _ in ()).throw(KeyboardInterrupt)  # Ctrl-C during the first replica
    with pytest.raises(RunInterrupted):
        ab.rerun(base, cand, 3, JobKey.of)
    assert [RunDir(p).state["state"] for p in sorted((tmp_path / "runs" / "ab").iterdir())] == ["interrupted"] * 2


def test_doctor_answers(tmp_path):
    res = recbench("doctor", "--seconds", "0.3")
    assert res.returncode in (0, 1) and "CPU taken by other processes" in res.stdout
    assert ("quiet enough" in res.stdout) == (res.returncode == 0)


def test_an_ir_rebuilt_with_new_weights_has_another_hash(tmp_path):
    """An OpenVINO IR is its .xml and its .bin: new weights under the same graph are another artifact."""
    from backends.base import artifact_sha256

    xml, bin_ = tmp_path / "m.xml", tmp_path / "m.bin"
    xml.write_text("<net/>")
    bin_.write_bytes(b"\x00" * 8)
    before = artifact_sha256(xml)
    bin_.write_bytes(b"\x01" * 8)
    assert artifact_sha256(xml) != before
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"graph")
    assert artifact_sha256(onnx) == file_sha256(onnx)  # one file: its own sha256, as records before hashed it


def test_rerun_of_a_run_that_hashed_only_an_irs_xml_says_so(tmp_path, launches):
    """Records from before the .bin was hashed hold the .xml's own sha256: not "changed", but unverifiable weights."""
    calls, _ = launches
    xml = tmp_path / "model.xml"
    xml.write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"\x00" * 8)
    base, cand = (recorded_run(tmp_path / "runs", name, xml) for name in ("base", "cand"))  # file_sha256: the old way
    with pytest.raises(UserError, match=f"^{xml}: run .*base hashed only this IR's .xml"):
        ab.rerun(base, cand, 3, JobKey.of)
    assert calls == []


def test_cpu_time_per_inference_is_recorded_pooled_and_gateable(replicated_run):
    """CPU time over the measured phase next to wall time: per infer call and in core-seconds per million samples,
    on every replica's line and pooled (weighted by iterations); the regression gate compares it over replicas."""
    run = replicated_run
    for rec in run.records():
        lines = [ln for ln in run.lines() if ln["job_id"] == rec["job_id"]]
        cpu = [ln["cpu_time"] for ln in lines]
        assert all(c["per_inference_ms"] > 0 for c in cpu)
        assert all(c["core_s_per_million"] == pytest.approx(c["per_inference_ms"] * 1e3 / rec["batch_size"])
                   for c in cpu)
        weights = [ln["iterations"] for ln in lines]
        assert rec["cpu_time"]["per_inference_ms"] == pytest.approx(
            np.average([c["per_inference_ms"] for c in cpu], weights=weights))
        assert [s["cpu_time"] for s in rec["replicas"]] == cpu
    checks = evaluate_regression(run, run, 0.05, ("cpu_time.per_inference_ms",), paired=True).checks
    assert [c.ratio[0] for c in checks] == pytest.approx([1.0, 1.0])  # A/A on itself: exactly no change
