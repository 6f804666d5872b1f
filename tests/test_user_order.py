"""user_order time (MLPerf DLRMv3): each user's requests issued in time-series order, later ones with longer histories,
users interleaved; bad options are one-line errors; a tiny hstu server run with it gives an ok record."""

import json

import numpy as np
import pytest

from bench.config.profiles import load_profile
from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import build_config
from bench.errors import UserError
from bench.measure.scenarios import server
from bench.measure.serving.request_handles import SizedHandles
from models.data_sequence import history_prefix
from tests.conftest import recbench

USERS, LENGTH = 5, 10


def issued(options: dict, batch_size: int, requests: int) -> list[dict]:
    """The inputs of every request, in the order a one-worker server run issued them (a pool of USERS users whose
    history items are user x 100 + 1, 2, ...)."""
    history = np.arange(1, LENGTH + 1)[None, :] + 100 * np.arange(USERS)[:, None]
    pool = {"history": history, "candidates": np.arange(USERS * 4).reshape(USERS, 4) + 10_000}
    traffic = server.Traffic(ScenarioOptions(**options), SizedHandles(dict, pool, batch_size, "candidates"))
    calls = []
    rows = traffic.rows(requests)
    handle_for = traffic.timeline or traffic.sized  # the request's own handle in time order, else one per row count
    server.serve(calls.append, [], np.zeros(requests, np.int64), 1, 1e6, rows=rows, handle_for=handle_for)
    return calls


@pytest.mark.parametrize("options, batch_size", [
    ({"candidates": {"distribution": "uniform", "low": 1, "high": 8}}, 1),  # one user + N candidates per request
    ({}, 2),  # fixed batches of two users, each with the pool's candidates
])
def test_each_users_requests_are_issued_in_time_order(options, batch_size):
    calls = issued({**options, "user_order": "time"}, batch_size, 40)
    assert len(calls) == 40
    seen = [(int(h[h > 0][0]) // 100, int((h > 0).sum())) for call in calls for h in call["history"]]
    users = [u for u, _ in seen]
    for u in set(users):
        lengths = [n for v, n in seen if v == u]
        assert lengths == sorted(lengths) and lengths[-1] > lengths[0], (u, lengths)  # a later request: more history
    assert sum(a != b for a, b in zip(users, users[1:], strict=False)) > len(set(users))  # users interleave
    for call in calls:  # each history is its user's first items, left-padded
        h = call["history"][0]
        real = h[h > 0]
        assert (h[: LENGTH - len(real)] == 0).all() and (real == real[0] + np.arange(len(real))).all()
        assert real[0] % 100 == 1
    want = [(1, n) for n in ScenarioOptions(**options).candidates.draw(40)] if options else [(2, 4)] * 40
    assert [c["candidates"].shape for c in calls] == want  # the drawn candidates, or each user's own


def test_a_history_as_it_stood_earlier_is_its_first_items_left_padded():
    history = np.array([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5], [0, 0, 0, 0, 9]])
    assert history_prefix(history, np.array([0.5, 0.2, 0.1])).tolist() == [[0, 0, 0, 5, 6], [0, 0, 0, 0, 1],
                                                                           [0, 0, 0, 0, 9]]  # at least one item
    assert (history_prefix(history, np.ones(3)) == history).all()


def test_without_time_order_users_are_drawn_in_no_order():
    calls = issued({"candidates": {"distribution": "fixed", "n": 3}}, 1, 20)
    assert {int((c["history"] > 0).sum()) for c in calls} == {LENGTH}  # whole histories, as before


@pytest.mark.parametrize("options, expect", [
    ({"user_order": "sometimes"}, "user_order"),
    ({"user_order": "time", "batching": {"max_batch": 8}}, "batching"),
])
def test_bad_user_order_is_a_one_line_user_error(options, expect):
    with pytest.raises(UserError, match=expect) as err:
        build_config({"scenario_options": options}, {})
    assert "\n" not in str(err.value)


def test_the_mlperf_profile_issues_users_in_time_order():
    assert load_profile("mlperf-dlrmv3").scenario_options.user_order == "time"


@pytest.mark.slow
def test_a_tiny_hstu_server_run_in_time_order(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("scenario_options:\n  user_order: time\n  candidates: {distribution: fixed, n: 8}\n")
    res = recbench("run", "--config", str(config), "--model", "hstu", "--preset", "tiny", "--quick", "--scenario",
                   "server", "--backends", "onnxruntime", "--variants", "fp32", "--batch-sizes", "1",
                   "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    (records,) = (tmp_path / "out").glob("*/records.jsonl")
    (rec,) = [json.loads(line) for line in records.read_text().splitlines()]
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["scenario_options"]["user_order"] == "time"
    order = rec["user_order"]
    assert order["order"] == "time" and order["users_per_request"] == 1 and order["requests_per_user"]["max"] >= 2
    assert order["users"] * order["requests_per_user"]["mean"] == pytest.approx(rec["requests"])


def test_time_order_on_a_model_without_histories_exits_2_with_one_line(tmp_path):
    res = recbench("run", "--model", "dlrm", "--preset", "tiny", "--profile", "mlperf-dlrmv3", "--scenario", "server",
                   "--out", str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert "user_order" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
