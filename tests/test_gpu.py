"""GPU backends: the logic that needs no GPU runs everywhere; the rest is marked `gpu` and skips with the reason
this machine gives (a CPU-only torch build, no driver, ...). scripts/gpu-check runs them on a GPU machine."""

import json
import os

import numpy as np
import pytest

from backends import registry
from backends.base import Backend, BackendOptions
from backends.cuda_runner import phase_names, phase_times
from backends.gpu import CudaFacts, device_index, device_reason, torch_cuda_reason
from backends.ort_gpu import ort_gpu_reason
from backends.torch_cuda import TorchCudaOptions
from bench.config.harness_options import check_options
from bench.config.sweep import SweepConfig, TimingConfig
from bench.errors import UserError
from bench.measure.timing import measure
from bench.run.sweep import Sweep
from bench.stats import latency as stats
from tests.conftest import ROOT, recbench
from tests.fakes import ScriptedBackend

CUDA_OK, CUDA_WHY = registry.get("torch-cuda").available()
gpu = pytest.mark.skipif(not CUDA_OK, reason=f"no usable GPU: {CUDA_WHY}")
QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=20, min_duration_s=0.05, quality_samples=4096,
                     resolve=None)


# --- why a GPU backend is unavailable: every branch, from facts ---------------------------------------------

@pytest.mark.parametrize("facts, expect", [
    (CudaFacts(None, None), "torch not installed"),
    (CudaFacts("2.13.0+cpu", None), "CPU-only build"),
    (CudaFacts("2.13.0", "12.6", nvml_gpus=None, nvml_error="NVML Shared Library Not Found"),
     "no NVIDIA driver answers (NVML: NVML Shared Library Not Found)"),
    (CudaFacts("2.13.0", "12.6", nvml_gpus=[], driver="580.1"), "driver 580.1 reports no GPU"),
    (CudaFacts("2.13.0", "12.6", nvml_gpus=["NVIDIA H100"], visible_devices=""),
     "CUDA_VISIBLE_DEVICES='' hides the 1 GPU(s)"),
    (CudaFacts("2.13.0", "13.0", nvml_gpus=["NVIDIA H100"], driver="535.1"), "too old for CUDA 13.0"),
])
def test_torch_cuda_reasons(facts, expect):
    assert expect in torch_cuda_reason(facts)


def test_usable_gpu_has_no_reason():
    assert torch_cuda_reason(CudaFacts("2.13.0", "12.6", torch_gpus=["NVIDIA H100"])) is None


def test_device_indices():
    assert device_index("cuda") == 0 and device_index("cuda:3") == 3
    with pytest.raises(ValueError, match="cuda or cuda:N"):
        device_index("gpu0")
    assert device_reason("cuda:0", ["H100"]) is None
    why = device_reason("cuda:2", ["H100", "H100"])
    assert "cuda:2 does not exist" in why and "2 usable GPU(s)" in why and "cuda:1 = H100" in why


@pytest.mark.parametrize("provider, gpus, err, libs, expect", [
    ("CUDAExecutionProvider", ["H100"], None, [], "has no CUDAExecutionProvider"),
    ("TensorrtExecutionProvider", ["H100"], None, [], "has no TensorrtExecutionProvider"),
])
def test_ort_cpu_package_has_no_gpu_provider(provider, gpus, err, libs, expect):
    why = ort_gpu_reason("onnxruntime 1.31.1", ["CPUExecutionProvider"], provider, gpus, err, libs)
    assert expect in why and "onnxruntime-gpu" in why


def test_ort_gpu_reasons_with_the_provider_built_in():
    built = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert "no NVIDIA driver" in ort_gpu_reason("onnxruntime-gpu 1.23", built, "CUDAExecutionProvider", None,
                                                "NVML Shared Library Not Found", [])
    assert "reports no GPU" in ort_gpu_reason("onnxruntime-gpu 1.23", built, "CUDAExecutionProvider", [], None, [])
    assert "libnvinfer.so.10" in ort_gpu_reason("onnxruntime-gpu 1.23", built, "TensorrtExecutionProvider",
                                                ["H100"], None, ["libnvinfer.so.10"])
    assert ort_gpu_reason("onnxruntime-gpu 1.23", built, "CUDAExecutionProvider", ["H100"], None, []) is None


def test_every_gpu_backend_explains_itself_here():
    for name, entry in registry.BACKENDS.items():
        cls = registry.get(name)
        if "cuda" not in cls.devices:
            continue
        ok, why = cls.available()
        assert why and (ok or len(why.splitlines()) == 1), (name, why)
        assert cls.available_on("cuda:0")[0] == ok, entry


# --- options ------------------------------------------------------------------------------------------------

def test_options_are_validated_with_the_valid_choices():
    cls = registry.get("torch-cuda")
    assert cls.parse_options({"cuda_graphs": True, "precision": "fp16"}).cuda_graphs
    with pytest.raises(UserError, match=r"backend_options.torch-cuda: unknown option 'graphs' \(did you mean "
                                        r"'cuda_graphs'\?\); valid: inputs, cuda_graphs.*inject_delay_ms"):
        check_options("torch-cuda", cls, {"graphs": True})
    with pytest.raises(UserError, match="backend_options.x: inputs: Input should be 'device' or 'host'"):
        check_options("x", cls, {"inputs": "disk"})
    assert check_options("torch-cuda", cls, {"inject_delay_ms": 3}).inject_delay_ms == 3  # a harness option


def test_tf32_switch_reads_back():
    import torch

    from backends.cuda_runner import set_tf32

    try:
        set_tf32(torch, True)
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    finally:
        set_tf32(torch, False)
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


def test_compile_and_graphs_do_not_both_capture():
    with pytest.raises(ValueError, match="reduce-overhead captures its own CUDA graphs"):
        TorchCudaOptions(compile="reduce-overhead", cuda_graphs=True)
    assert TorchCudaOptions(compile=True, cuda_graphs=True).compile is True


def test_preset_names_carry_valid_options():
    for name, opts in registry.PRESET_OPTIONS.items():
        cls = registry.get(name)
        assert cls.parse_options(opts)  # every preset is a valid option set for its class


def test_phase_times():
    assert phase_names("device") == ("compute",)
    assert phase_names("host") == ("h2d", "compute", "d2h")
    t = phase_times([0.0, 0.2, 1.2, 1.5], phase_names("host"))
    assert t == pytest.approx({"h2d": 0.2, "compute": 1.0, "d2h": 0.3, "total": 1.5})
    assert phase_times([0.0, 0.7], ("compute",)) == pytest.approx({"compute": 0.7})


# --- the harness records device time per iteration (fake backend: harness logic only) -------------------------

class DeviceTimedBackend(ScriptedBackend):
    """Reports fixed device times per phase, the way a GPU backend's CUDA events do."""

    name = "device-timed"
    times = {"h2d": 0.25, "compute": 1.0, "d2h": 0.25, "total": 1.5}

    def prepare(self, batch):
        return len(next(iter(batch.values())))

    def infer(self, handle) -> None:
        self.calls.append(handle)
        self.clock.now += 2_000_000

    def device_times_ms(self):
        return dict(self.times)

    def outputs(self, handle) -> np.ndarray:
        return np.linspace(0.01, 0.99, handle, dtype=np.float32)


def test_timing_loop_collects_device_times_outside_host_time():
    backend = DeviceTimedBackend()
    handles = [backend.prepare({"x": np.zeros(4)}) for _ in range(2)]
    timing = TimingConfig(warmup_iters=3, warmup_s=0, min_iters=100, min_duration_s=0, resolve=None)
    m = measure(backend, handles, timing, 4, clock=backend.clock)
    assert len(m.latencies_ns) == 100 and set(m.device_ms) == {"h2d", "compute", "d2h", "total"}
    assert all(len(v) == 100 for v in m.device_ms.values())  # warm-up iterations are not recorded
    s = stats.device_summary(m.device_ms)
    assert s["device_ms"]["compute"]["p50"] == pytest.approx(1.0)
    assert s["device_share"] == pytest.approx({"h2d": 1 / 6, "compute": 2 / 3, "d2h": 1 / 6})


def test_host_only_backends_record_no_device_time():
    backend = ScriptedBackend()
    m = measure(backend, [0], TimingConfig(warmup_iters=0, warmup_s=0, min_iters=5, min_duration_s=0, resolve=None), 1,
                clock=backend.clock)
    assert m.device_ms is None and stats.device_summary(m.device_ms) == {}
    assert Backend.device_times_ms(backend) is None


def test_sweep_writes_device_times_to_record_and_raw(tmp_path):
    registry.register("device-timed", "tests.test_gpu:DeviceTimedBackend")
    try:
        cfg = SweepConfig(preset="tiny", backends=["device-timed"], batch_sizes=[8], timing=QUICK, out=tmp_path)
        run = Sweep(cfg, log=lambda s: None).run()
    finally:
        registry.BACKENDS.pop("device-timed")
    (rec,) = run.records()
    assert rec["status"] == "ok", rec["reason"]
    assert rec["device_ms"]["total"]["mean"] == pytest.approx(1.5)
    assert rec["device_share"]["h2d"] == pytest.approx(1 / 6)
    raw = np.load(run.path / "raw" / f"{rec['job_id']}.device-compute-ms.npy")
    assert len(raw) == rec["iterations"] and np.all(raw == 1.0)
    text = gpu_reference().report(tmp_path)  # the reference report reads any run folder under it
    assert "| device-timed | fp32" in text and "| 1.0000 | 33% |" in text


def gpu_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_reference", ROOT / "scripts" / "gpu_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(CUDA_OK, reason="this machine has a usable GPU")
def test_gpu_check_refuses_to_pass_without_a_gpu():
    import subprocess
    import sys

    res = subprocess.run([str(ROOT / "scripts" / "gpu-check")], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHON": sys.executable})
    assert res.returncode == 2 and res.stderr.startswith("gpu-check: cannot run here: ") and not res.stdout


# --- CLI and env.json -------------------------------------------------------------------------------------------

@pytest.mark.skipif(CUDA_OK, reason="this machine has a usable GPU")
@pytest.mark.parametrize("backends, hint", [("torch-cuda", "pip install torch"), ("tensorrt", "recbench[tensorrt]"),
                                            ("onnxruntime-cuda", "onnxruntime-gpu[cuda,cudnn]")])
def test_gpu_backend_without_gpu_exits_2_with_one_line(backends, hint, tmp_path):
    res = recbench("run", "--quick", "--backends", backends, "--out", str(tmp_path))
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and f"backend {backends} is not available" in res.stderr
    assert hint in res.stderr  # the install hint survives the console (brackets are not markup)


def test_env_records_gpu_facts_or_why_not(tmp_path):
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "torch-cpu", "--batch-sizes", "2",
                   "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    (env_path,) = tmp_path.glob("*/env.json")
    env = json.loads(env_path.read_text())
    assert "torch_cuda" in env and "nvidia-ml-py" in env["versions"]
    if env["gpus"]:
        g = env["gpus"][0]
        assert g["name"] and g["driver"] and g["driver_cuda_version"] and g["sm_clock_mhz"] is not None
    else:
        assert env["gpu_error"] or env["torch_gpus"] == []


# --- on a GPU -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fp32(tiny_ws):
    from models.variants import get_variant

    return tiny_ws.prepare(get_variant("fp32"), {"torch", "onnx"})


def cuda_backend(tiny_ws, fp32, **extra):
    backend = registry.get("torch-cuda")()
    backend.load(fp32.files["torch"], BackendOptions(device="cuda:0", inputs=tiny_ws.names, extra=extra))
    return backend


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("extra", [{}, {"cuda_graphs": True}, {"inputs": "host"},
                                   {"inputs": "host", "cuda_graphs": True}])
def test_torch_cuda_matches_pytorch(tiny_ws, fp32, extra):
    from models.train import predict

    backend = cuda_backend(tiny_ws, fp32, **extra)
    batch = tiny_ws.data.features(64, 123)
    expected = predict(tiny_ws.baseline(), batch, tiny_ws.names)
    handle = backend.prepare(batch)
    for _ in range(2):  # replaying a graph twice gives the same answer
        backend.infer(handle)
        backend.synchronize()
        np.testing.assert_allclose(backend.outputs(handle), expected, atol=1e-5)
    times = backend.device_times_ms()
    assert times["compute"] > 0
    if extra.get("inputs") == "host":
        assert times["h2d"] > 0 and times["d2h"] > 0
        assert times["total"] == pytest.approx(times["h2d"] + times["compute"] + times["d2h"], rel=1e-3)
    mem = backend.memory()
    assert mem["gpu_mem_bytes"] > 0
    assert backend.describe()["cuda_graphs"] == bool(extra.get("cuda_graphs"))


@gpu
@pytest.mark.gpu
def test_torch_cuda_fp16_ranks_like_fp32(tiny_ws, fp32):
    from models.quality import auc

    x, y = tiny_ws.data.labelled(4096, 77)
    scores = {p: cuda_backend(tiny_ws, fp32, precision=p).run(x) for p in ("fp32", "fp16")}
    assert abs(auc(y, scores["fp16"]) - auc(y, scores["fp32"])) < 0.005
    assert 0 < np.abs(scores["fp16"] - scores["fp32"]).max() < 0.05  # really computed in half precision


@gpu
@pytest.mark.gpu
def test_event_time_is_within_host_time(tiny_ws, fp32):
    import time

    backend = cuda_backend(tiny_ws, fp32, cuda_graphs=True)
    handle = backend.prepare(tiny_ws.data.features(512, 5))
    for _ in range(20):
        t0 = time.perf_counter()
        backend.infer(handle)
        backend.synchronize()
        host_ms = (time.perf_counter() - t0) * 1e3
        assert 0 < backend.device_times_ms()["compute"] <= host_ms * 1.01


@gpu
@pytest.mark.gpu
def test_wrong_device_index_exits_2(tmp_path):
    res = recbench("run", "--quick", "--backends", "torch-cuda", "--device", "cuda:97", "--out", str(tmp_path))
    assert res.returncode == 2 and "cuda:97 does not exist" in res.stderr and "Traceback" not in res.stderr


@gpu
@pytest.mark.gpu
def test_quick_gpu_sweep_records_device_time_and_memory(tmp_path):
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "torch-cuda,torch-cuda-graphs,torch-cuda-host",
                   "--batch-sizes", "1,256", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    recs = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs), [r["reason"] for r in recs]
    for r in recs:
        assert r["device_ms"]["compute"]["mean"] > 0 and r["gpu_mem_bytes"] > 0
        assert abs(r["quality"]["auc_delta"]) < 1e-4
        assert ("device_share" in r) == (r["backend"] == "torch-cuda-host")
    assert json.loads((run / "env.json").read_text())["gpus"][0]["sm_clock_mhz"] > 0
