"""scripts/variants-benchmark: each variant's speedup over its baseline with the 95% CI from the run's interleaved
replicas, read by the one decision rule: "no difference" where that CI lies inside ±5%, "inconclusive" where it reaches
past (driven on a small synthetic run, not a real benchmark)."""

import importlib.machinery
import importlib.util

import pytest

from tests.conftest import ROOT
from tests.runs import latencies, make_run


def _script():
    loader = importlib.machinery.SourceFileLoader("variants_benchmark", str(ROOT / "scripts" / "variants-benchmark"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


@pytest.fixture
def run(tmp_path):
    """fp32, a variant twice as fast, one as fast as fp32 round by round, one whose replicas' noise hides any gap."""
    medians = {"fp32": (2.0, 2.1, 1.9), "int8-dynamic": (1.0, 1.05, 0.95), "prune-50": (2.0, 2.1, 1.9),
               "prune-unstructured": (2.1, 1.9, 2.0)}
    groups = {v: [latencies(m, n=500, seed=10 * i + k) for k, m in enumerate(ms)]
              for i, (v, ms) in enumerate(medians.items())}
    return make_run(tmp_path, "r1", groups).path


def test_table_has_the_speedup_ci_and_no_difference(run):
    script = _script()
    table, _ = script.variant_table(script.median_records(script.load_runs([run])))
    cells = dict(zip(table["variant"], table["speedup [95% CI]"], strict=True))
    assert cells["fp32"] == "-"
    head, ci = cells["int8-dynamic"].split(" [")
    lo, hi = (float(x) for x in ci.rstrip("]").split(", "))
    assert head.endswith("x") and 1 < lo < float(head[:-1]) < hi
    assert cells["prune-50"].startswith("no difference [")
    assert cells["prune-unstructured"].startswith("inconclusive [")


def test_printed_table_has_the_ci_column(run, capsys):
    assert _script().main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "speedup [95% CI]" in out and "no difference [" in out
