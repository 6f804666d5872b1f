"""Typed backend options: every key is the backend's or the harness's, checked for the whole sweep before a job."""

import pytest

from backends import registry
from bench.config.harness_options import check_options, split_options
from bench.config.sweep import SweepConfig
from bench.config.validation import describe, unknown
from bench.errors import UserError
from bench.run.sweep import Sweep
from tests.conftest import recbench


def test_a_typo_names_the_backend_the_key_the_valid_keys_and_the_closest():
    with pytest.raises(UserError) as err:
        check_options("onnxruntime", registry.get("onnxruntime"), {"allow_spining": False})
    assert str(err.value) == ("backend_options.onnxruntime: unknown option 'allow_spining' (did you mean "
                              "'allow_spinning'?); valid: streams, allow_spinning, inject_delay_ms, timeout_s")


@pytest.mark.parametrize("backend", registry.CPU_BACKENDS)
def test_harness_options_pass_every_backend_and_never_reach_it(backend):
    harness = check_options(backend, registry.get(backend), {"inject_delay_ms": 2, "timeout_s": 30})
    assert (harness.inject_delay_ms, harness.timeout_s) == (2, 30)
    assert split_options({"inject_delay_ms": 2, "hint": "LATENCY"})[1] == {"hint": "LATENCY"}


def test_bad_values_read_without_pydantic_prefixes():
    with pytest.raises(UserError, match=r"^backend_options.openvino: precision: Input should be 'f32', 'bf16' or "
                                        r"'f16'$"):
        check_options("openvino", registry.get("openvino"), {"precision": "fp8"})
    with pytest.raises(UserError, match="inject_delay_ms: Input should be greater than or equal to 0"):
        check_options("torch-cpu", registry.get("torch-cpu"), {"inject_delay_ms": -1})
    assert unknown("model", "dlmr", ["dlrm", "dcn"]) == "unknown model 'dlmr' (did you mean 'dlrm'?); valid: dlrm, dcn"
    try:
        SweepConfig(batch_sizes=[0])
    except ValueError as e:
        assert describe(e) == "batch_sizes: batch sizes must be positive integers, got [0]"


def test_the_sweep_checks_every_job_s_options_and_backend_names_up_front():
    with pytest.raises(UserError, match="backend_options.openvino: unknown option 'hnt' .did you mean 'hint'"):
        Sweep(SweepConfig(preset="tiny", backends=["openvino"], backend_options={"openvino": {"hnt": "LATENCY"}}))
    with pytest.raises(UserError, match="unknown backend 'onnxruntim' .did you mean 'onnxruntime'"):
        Sweep(SweepConfig(preset="tiny", backends=["openvino"], backend_options={"onnxruntim": {}}))


def test_cli_typo_exits_2_before_any_job_and_writes_no_run(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("backends: [onnxruntime]\nbackend_options:\n  onnxruntime: {allow_spining: false}\n")
    r = recbench("run", "--quick", "--preset", "tiny", "--config", str(config), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "did you mean 'allow_spinning'" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--config", "--profile"])
def test_an_empty_config_or_profile_file_is_bad_input(tmp_path, flag):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    r = recbench("run", flag, str(empty), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and f"{empty} is empty" in r.stderr and not (tmp_path / "out").exists()
