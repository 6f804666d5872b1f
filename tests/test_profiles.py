"""Device profiles: built-ins, user files, pinning, and the profile carried into every record."""

import json
import os

import pytest

from bench.config.profiles import BUILTIN, load_profile, usable_cores
from bench.errors import UserError
from tests.conftest import recbench


def test_builtin_profiles_match_their_targets():
    edge, dc = BUILTIN["edge"], BUILTIN["datacenter"]
    assert edge.thread_count() <= 2 and edge.pinned() == usable_cores()[:2]
    assert max(edge.batch_sizes) <= 16 and edge.scenarios == ["single-stream", "server"]
    assert edge.scenario_options.load < BUILTIN["default"].scenario_options.load  # a low-QPS server
    assert dc.pinned() is None and dc.thread_count() == len(usable_cores())
    assert min(dc.batch_sizes) >= 64 and max(dc.batch_sizes) == 4096 and dc.scenarios == ["offline", "server"]


def test_profile_file(tmp_path):
    f = tmp_path / "box.yaml"
    f.write_text("threads: 1\naffinity: [0]\nbatch_sizes: [2]\nscenarios: [server]\nmemory_cap_bytes: 8000000000\n"
                 "scenario_options: {qps: 50, p99_budget_ms: 5}\n")
    p = load_profile(str(f))
    assert (p.name, p.pinned(), p.thread_count(), p.scenario_options.qps) == ("box", [0], 1, 50)


@pytest.mark.parametrize("text, expect", [
    ("affinity: [0, 4096]\n", "affinity names cores [4096]"),
    ("thread: 2\n", "thread"),
    ("scenario_options: {qps: 0}\n", "qps"),
    ("scenario_options: {rate: 5}\n", "rate"),
])
def test_bad_profile_files_exit_2_with_one_line(tmp_path, text, expect):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    res = recbench("run", "--profile", str(f), "--preset", "tiny")
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert expect in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_missing_core_is_a_user_error():
    with pytest.raises(UserError, match="usable cores"):
        load_profile("edge").model_copy(update={"affinity": [max(usable_cores()) + 1]}).pinned()


def test_edge_run_pins_cores_and_records_the_profile(tmp_path):
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "onnxruntime", "--profile", "edge",
                   "--batch-sizes", "4", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = [json.loads(ln) for f in tmp_path.glob("*/records.jsonl") for ln in f.read_text().splitlines()]
    assert sorted(r["scenario"] for r in recs) == ["server", "single-stream"]
    for r in recs:
        assert r["status"] == "ok", r["reason"]
        assert r["profile"] == "edge" and r["threads"] <= 2 and r["affinity"] == sorted(os.sched_getaffinity(0))[:2]
        assert r["profile_detail"]["name"] == "edge" and r["profile_detail"]["batch_sizes"] == [1, 4, 16]
    srv = next(r for r in recs if r["scenario"] == "server")
    assert srv["qps_source"] == "25% of capacity_qps"
    assert srv["target_qps"] == pytest.approx(0.25 * srv["capacity_qps"])
