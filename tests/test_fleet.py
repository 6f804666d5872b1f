"""Fleet sweeps through a real local Ray cluster: simulated nodes with distinct device resources on this machine."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from bench.cli import main as cli_main
from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import SweepConfig, TimingConfig
from bench.errors import UserError
from bench.gate.budgets import load_budgets
from bench.gate.evaluate import evaluate_budgets
from bench.measure.jobspec import Artifacts, Job
from bench.records.rundir import RunDir
from bench.report.tables import targets_table
from bench.run.fleet.node import Shipped, build_here, node_env, place_files, where_to_build
from bench.run.fleet.runner import FleetRun, plan
from bench.run.fleet.spec import live_nodes, load_fleet, offering
from models.fileio import cache_root
from tests.conftest import ROOT, recbench, sigint_default

QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=10, min_duration_s=0.05, quality_samples=4096)


def fleet_file(tmp_path, text: str):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def test_fleet_file_is_validated(tmp_path):
    good = load_fleet(fleet_file(tmp_path, "targets:\n  - {name: a, resource: 'device:a', profile: edge, "
                                            "backends: [onnxruntime]}\n"))
    assert good.target_of({"device:a": 1.0, "CPU": 2.0}) == good.targets
    for text, says in [
        ("targets: []", "targets"),
        ("targets:\n  - {name: a, resource: r, backends: [nope]}", "unknown backend 'nope'"),
        ("targets:\n  - {name: a, resource: r, backends: [onnxruntime]}\n  - {name: a, resource: s, "
         "backends: [openvino]}", "unique"),
        ("targets:\n  - {name: a, resource: r, backends: [onnxruntime], colour: red}", "colour"),
    ]:
        with pytest.raises(UserError, match=says):
            load_fleet(fleet_file(tmp_path, text))


def test_artifact_built_on_the_node_only_when_its_library_differs():
    same, newer = {"openvino": "2025.1", "torch": "2.13.0"}, {"openvino": "2025.3", "torch": "2.13.0"}
    assert where_to_build("openvino", True, same, same) == ("head", None)
    assert where_to_build("onnx", True, same, newer) == ("head", None)  # versioned by opset, read by any runtime
    source, why = where_to_build("openvino", True, same, newer)
    assert source == "node" and "2025.3 on the node" in why
    assert where_to_build("openvino", False, same, newer)[0] == "head"  # a bring-your-own file cannot be rebuilt


def test_a_node_builds_the_artifact_itself_where_its_library_differs():
    job = Job(job_id="j", run_id="r", run_dir="", model="dlrm", preset="tiny", variant="fp32", backend="onnxruntime",
              backend_entry="", device="cpu", profile="default", scenario="single-stream", batch_size=1, threads=1,
              timing=QUICK, timeout_s=60, artifacts=Artifacts(format="onnx", reference="eval.npz on the head"))
    built = build_here(job).artifacts
    assert built.path.endswith(".onnx") and Path(built.path).is_file() and Path(built.reference).is_file()


def test_a_node_points_the_job_at_its_own_copies_of_every_file(tmp_path):
    """The input pool, the row pool, the arrival trace and the candidate counts come from the node's cache; the head's
    job is unchanged."""
    files = {}
    for name in ("b4.npz", "rows16.npz", "gaps.txt", "counts.txt", "model.onnx"):
        (tmp_path / name).write_text("100\n")
        files[name] = [Shipped(name, name, (tmp_path / name).read_bytes())]  # the fake object store holds the bytes
    head = replace(Job(job_id="j", run_id="r", run_dir="", model="dlrm", preset="tiny", variant="fp32",
                       backend="onnxruntime", backend_entry="", device="cpu", profile="default", scenario="server",
                       batch_size=4, threads=1, timing=QUICK, timeout_s=60,
                       scenario_options=ScenarioOptions(arrivals={"file": str(tmp_path / "gaps.txt")}, candidates={
                           "distribution": "file", "file": str(tmp_path / "counts.txt")})),
                   artifacts=Artifacts(str(tmp_path / "model.onnx"), "onnx", input_pool=str(tmp_path / "b4.npz"),
                                       row_pool=str(tmp_path / "rows16.npz")))
    ray = SimpleNamespace(get=lambda ref: ref)
    shipped = {"artifact": files["model.onnx"], "inputs": files["b4.npz"], "rows": files["rows16.npz"],
               "arrivals": files["gaps.txt"], "candidates": files["counts.txt"]}
    job, source = place_files(ray, head, shipped, node_env()["versions"])
    opts = job.scenario_options
    local = [job.artifacts.path, job.artifacts.input_pool, job.artifacts.row_pool, opts.arrivals.file,
             opts.candidates.file]
    assert [Path(p).name for p in local] == ["model.onnx", "b4.npz", "rows16.npz", "gaps.txt", "counts.txt"]
    assert all(Path(p).parent.parent == cache_root() / "fleet" for p in local) and source["artifact_source"] == "head"
    assert head.artifacts.row_pool == str(tmp_path / "rows16.npz")  # the head's job is untouched


def test_fleet_flags_are_checked_and_ray_stays_unimported_without_them():
    code = ("import sys\nfrom bench import compare\nfrom bench.cli import gate, main as cli\n"
            "from bench.run import sweep\n"
            "sys.argv = ['recbench', 'run', '--cluster', 'auto']\n"
            "try:\n    cli.main()\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'ray' not in sys.modules, 'ray imported'\nsys.exit(code)")
    bad = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--fleet" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


@pytest.fixture(scope="module")
def cluster():
    """A head offering `device:edge-a` and a node offering `device:edge-b` (one CPU each)."""
    ray = pytest.importorskip("ray", reason="the fleet extra (pip install 'recbench[fleet]') is not installed")
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)  # the nodes' workers import bench
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                      "resources": {"device:edge-a": 1}})
    try:
        edge_b = c.add_node(num_cpus=1, resources={"device:edge-b": 1})
        ray.init(address=c.address, log_to_driver=False, configure_logging=False)
        yield ray, c, {"edge-a": c.head_node.node_id, "edge-b": edge_b.node_id}
    finally:
        ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def fleet_run(ray, tmp_path, text: str, timing: TimingConfig = QUICK, **config) -> RunDir:
    fleet = load_fleet(fleet_file(tmp_path, text))
    cfg = SweepConfig(**{"preset": "tiny", "batch_sizes": [8], "scenario": "single-stream", "timing": timing,
                         "out": tmp_path, **config})
    return FleetRun(ray, plan(cfg, fleet, log=lambda s: None), "test").run(fleet)


def test_a_trace_file_replays_on_a_node_from_its_own_copy(tmp_path, cluster):
    ray, _, _ = cluster
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("4000\n" * 300)
    fleet = load_fleet(fleet_file(tmp_path, "targets:\n  - {name: edge-b, resource: 'device:edge-b', profile: edge, "
                                            "backends: [onnxruntime]}\n"))
    cfg = SweepConfig(preset="tiny", batch_sizes=[1], scenario="server", timing=QUICK, out=tmp_path,
                      scenario_options={"arrivals": {"file": str(gaps)}})
    (rec,) = FleetRun(ray, plan(cfg, fleet, log=lambda s: None), "test").run(fleet).records()
    assert rec["status"] == "ok", rec["reason"]
    shipped = Path(rec["scenario_options"]["arrivals"]["file"])  # the node's copy, in its cache by content hash
    assert shipped != gaps and shipped.name == "gaps.txt" and shipped.parent.parent.name == "fleet"
    assert rec["achieved_qps"] == pytest.approx(250, rel=0.25)


def test_a_node_that_cannot_see_the_heads_disk_runs_a_batched_traced_server_job(tmp_path, cluster):
    """The node joins from a private mount namespace where the head's folder (run folder, trace, candidate counts)
    and the artifact cache are empty: everything a job reads reaches it through Ray, everything it writes (record,
    raw samples and request times, log, op profile) comes back."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("hiding the head's disk from a node needs unshare as root")
    ray, c, _ = cluster
    head = tmp_path / "head"
    head.mkdir()
    (head / "gaps.txt").write_text("2000\n" * 150)
    (head / "counts.txt").write_text("4\n8\n16\n")
    cache_root().mkdir(parents=True, exist_ok=True)
    hide = " && ".join(f"mount -t tmpfs none '{p}'" for p in (tmp_path, cache_root()))
    join = f"exec '{Path(sys.executable).parent / 'ray'}' start --address {c.address} --num-cpus 1 --block " \
           "--resources '{\"device:hidden\": 1}'"
    node = subprocess.Popen(["unshare", "-m", "sh", "-c", f"{hide} && {join}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not offering(live_nodes(ray), "device:hidden") and time.monotonic() < deadline:
            time.sleep(0.5)
        opts = {"arrivals": {"file": str(head / "gaps.txt")}, "batching": {"max_batch": 32, "max_delay_ms": 2},
                "candidates": {"distribution": "file", "file": str(head / "counts.txt")}}
        run = fleet_run(ray, head, "targets:\n  - {name: hidden, resource: 'device:hidden', backends: [onnxruntime]}",
                        batch_sizes=[1], scenario="server", op_profile=True, scenario_options=opts)
    finally:
        node.terminate()
        node.wait(60)
    (rec,) = run.records()
    assert rec["status"] == "ok", rec["reason"]
    assert rec["requests"] == 150 and rec["dispatch_lateness_ms"] and rec["batch_sizes_formed"]
    assert (run.path / rec["op_profile"]["file"]).is_file()
    assert {p.name for p in (run.path / "raw").iterdir()} == {f"{rec['job_id']}.npy", f"{rec['job_id']}.requests.npz"}
    assert any((run.path / "logs").glob(f"{rec['job_id']}*"))


def test_every_record_names_its_target_and_node(tmp_path, cluster, monkeypatch):
    ray, _, node_of = cluster
    run = fleet_run(ray, tmp_path, """targets:
  - {name: edge-a, resource: "device:edge-a", profile: edge, backends: [onnxruntime]}
  - {name: edge-b, resource: "device:edge-b", profile: edge, backends: [onnxruntime]}
  - {name: ghost, resource: "device:ghost", backends: [onnxruntime]}
""")
    recs = run.records()
    ok = [r for r in recs if r["status"] == "ok"]
    assert sorted(r["target"] for r in ok) == ["edge-a", "edge-b"], [r["reason"] for r in recs]
    for r in ok:
        assert r["node"] == node_of[r["target"]] and r["job_id"].endswith(r["target"])
        assert r["artifact_source"] == "head" and r["node_env"]["versions"]["onnxruntime"]
        assert r["threads"] == 2 and r["attempt"] == 1 and len(run.raw(r["job_id"])) == r["iterations"]
    ghost = [r for r in recs if r["target"] == "ghost"]
    assert ghost and all(r["status"] == "skipped" and r["reason"] == "no node offers device:ghost" for r in ghost)
    assert set(run.env()["nodes"]) == set(node_of.values())
    # the report compares the targets; a gate selects on one
    table = targets_table(recs)
    assert table.columns[-4:] == ["edge-a samples/s", "edge-a p99 ms", "edge-b samples/s", "edge-b p99 ms"]
    assert len(table.rows) == 1 and "-" not in (table.rows[0][4], table.rows[0][6])  # samples/s on both
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("rules:\n  - select: {target: edge-b, backend: onnxruntime}\n"
                       "    limits: {throughput_sps: '>= 1'}\n")
    result = evaluate_budgets(load_budgets(budgets), recs, str(budgets))
    assert result.passed and len(result.checks) == 1
    # `recbench fleet`: every node with its target and backends, and the target nobody offers
    console = Console(record=True, width=200)
    monkeypatch.setattr(cli_main, "console", console)
    cli_main.list_fleet("auto", tmp_path / "fleet.yaml")
    listing = console.export_text()
    for text in ("device:edge-a: 1", "edge-b", "onnxruntime", "idle", "no node offers device:ghost"):
        assert text in listing, listing


def job_nodes() -> list[str]:
    """The node of every fleet job whose process has started on this machine (its spec lies beside its log)."""
    nodes = []
    for spec in glob.glob(f"{tempfile.gettempdir()}/recbench-fleet-*/*/logs/*.job.json"):
        try:
            nodes.append(json.loads(Path(spec).read_text()).get("node"))
        except (OSError, ValueError):  # being written or already removed
            pass
    return nodes


def test_a_node_dying_mid_job_fails_that_attempt_and_the_job_is_retried_on_another(tmp_path, cluster):
    ray, c, _ = cluster
    nodes = {n.node_id: n for n in (c.add_node(num_cpus=1, resources={"device:flaky": 1}) for _ in range(2))}
    killed = []

    def kill_the_busy_node():
        deadline = time.monotonic() + 120
        while not (busy := set(nodes) & set(job_nodes())):
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)  # until the job's own process has started on one of the nodes
        killed.append(busy.pop())
        c.remove_node(nodes[killed[0]])

    chaos = threading.Thread(target=kill_the_busy_node, daemon=True)
    chaos.start()
    slow = QUICK.model_copy(update={"min_duration_s": 4.0})  # long enough to be caught mid-measurement
    flaky = "targets:\n  - {name: flaky, resource: 'device:flaky', backends: [onnxruntime]}\n"
    try:
        run = fleet_run(ray, tmp_path, flaky, slow)
    finally:
        chaos.join(5)
        for node_id, node in nodes.items():
            if node_id not in killed:
                c.remove_node(node)
    failed, ok = run.records()
    assert failed["status"] == "failed" and failed["attempt"] == 1 and failed["node"] == killed[0]
    assert "died mid-job" in failed["reason"] and "retried on another node" in failed["reason"]
    assert failed["job_id"] == ok["job_id"] + "-attempt1"
    assert ok["status"] == "ok" and ok["attempt"] == 2 and ok["node"] in set(nodes) - set(killed), ok["reason"]


EDGE_B = "targets:\n  - {name: edge-b, resource: 'device:edge-b', profile: edge, backends: [onnxruntime]}\n"


def test_repeat_runs_every_job_in_rounds_of_replicas_each_recorded_as_it_arrives(tmp_path, cluster):
    ray, _, _ = cluster
    run = fleet_run(ray, tmp_path, EDGE_B, batch_sizes=[1, 8], repeat=2)
    lines = run.lines()  # one line per replica, in the order they arrived
    assert len(lines) == 4 and all(r["status"] == "ok" for r in lines), [r["reason"] for r in lines]
    first, second = lines[:2], lines[2:]  # replica 0 of both jobs before replica 1 of either; quality scored once
    assert {r["job_id"] for r in first} == {r["job_id"] for r in second}
    assert [r["replica"] for r in lines] == [0, 0, 1, 1]
    assert all(r["quality"] for r in first) and not any(r.get("quality") for r in second)
    assert [r["repeat"] for r in run.records()] == [2, 2]  # each job pooled from its two replicas when read
    assert max(r["finished_at"] for r in first) <= min(r["started_at"] for r in second)
    assert len(list((run.path / "raw").glob("*.npy"))) == 4  # each replica's raw latencies, under its own name
    assert run.state == {"state": "complete", "jobs": 4, "done": 4}
    assert run.env()["nodes"] and json.loads((run.path / "config.json").read_text())["repeat"] == 2


def test_a_fleet_run_stopped_by_ctrl_c_is_marked_interrupted_and_never_a_baseline(tmp_path, cluster):
    _, c, _ = cluster
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--fleet", str(fleet_file(tmp_path, EDGE_B)),
                             "--cluster", c.address, "--quick", "--preset", "tiny", "--batch-sizes", "1,2,4,8,16,32",
                             "--scenario", "single-stream", "--no-report", "--out", str(out)],
                            cwd=ROOT, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(p.read_text()
                                                                     for p in out.glob("*/records.jsonl")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C once the first result is in
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr and "interrupted" in stderr, stderr[-2000:]
    assert "[1/6] " in stdout  # piped: one line per result
    run = RunDir(next(p for p in out.iterdir() if p.is_dir()))
    assert run.state["state"] == "interrupted" and run.state["jobs"] == 6 and 1 <= run.state["done"] < 6
    assert [r["status"] for r in run.records()][:1] == ["ok"] and run.raw(run.records()[0]["job_id"]) is not None
    res = recbench("gate", "--baseline", str(run.path), str(run.path), "--max-regression", "50%")
    assert res.returncode == 2 and "was interrupted" in res.stderr and "--allow-interrupted" in res.stderr
    res = recbench("gate", "--baseline", str(run.path), str(run.path), "--max-regression", "50%", "--allow-interrupted")
    assert res.returncode == 0, res.stdout + res.stderr
