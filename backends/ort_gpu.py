"""ONNX Runtime on an NVIDIA GPU through its CUDA or TensorRT execution provider (package onnxruntime-gpu).
Available by itself once onnxruntime-gpu, the CUDA/cuDNN (and for TensorRT, libnvinfer) libraries and a GPU
are present; a session that silently falls back to the CPU is refused, never measured."""

from __future__ import annotations

import ctypes
import importlib.metadata
from typing import Any, Literal

import numpy as np
from pydantic import Field

from backends.base import BackendOptions
from backends.gpu import device_index, device_reason, nvml_gpus
from backends.ort import OnnxRuntime, OrtOptions

ORT_GPU_HINT = "pip uninstall -y onnxruntime && pip install 'onnxruntime-gpu[cuda,cudnn]'"
NVINFER = ("libnvinfer.so.10", "libnvinfer.so.11")


def ort_distribution() -> str:
    for dist in ("onnxruntime-gpu", "onnxruntime"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "onnxruntime (unknown distribution)"


def ort_gpu_reason(distribution: str, built_in: list[str], provider: str, gpus: list[str] | None,
                   nvml_error: str | None, missing_libs: list[str]) -> str | None:
    """Why ONNX Runtime cannot use `provider` here, in one line; None when it can."""
    if provider not in built_in:
        return f"{distribution} has no {provider} (it has {', '.join(built_in)}): {ORT_GPU_HINT}"
    if gpus is None:
        return f"{provider} is built in, but no NVIDIA driver answers (NVML: {nvml_error})"
    if not gpus:
        return f"{provider} is built in, but the NVIDIA driver reports no GPU"
    if missing_libs:
        return f"{provider} needs {' or '.join(missing_libs)} on the library path (the TensorRT libraries): " \
               "pip install tensorrt-cu12-libs (from NVIDIA's package index)"
    return None


class OrtCudaOptions(OrtOptions):
    """ONNX Runtime CUDA EP options."""

    inputs: Literal["device", "host"] = "device"  # host: bind host arrays (copies inside every timed call)


class OrtTensorRTOptions(OrtCudaOptions):
    """ONNX Runtime TensorRT EP options."""

    max_batch: int = Field(1024, ge=1)  # top of the TensorRT profile
    precision: Literal["fp32", "fp16"] = "fp32"


def loadable(names: tuple[str, ...]) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


class OnnxRuntimeCUDA(OnnxRuntime):
    name = "onnxruntime-cuda"
    devices = ("cuda",)
    provider = "CUDAExecutionProvider"
    libraries: tuple[str, ...] = ()
    install_hint = ORT_GPU_HINT
    option_model = OrtCudaOptions

    @classmethod
    def _gpus(cls) -> tuple[list[str] | None, str | None]:
        gpus, err = nvml_gpus()
        return (None, err) if err else ([g["name"] for g in gpus], None)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        import onnxruntime

        gpus, err = cls._gpus()
        missing = list(cls.libraries) if cls.libraries and not loadable(cls.libraries) else []
        why = ort_gpu_reason(ort_distribution(), onnxruntime.get_available_providers(), cls.provider, gpus, err,
                             missing)
        return (False, why) if why else (True, f"available: {cls.provider} on {', '.join(gpus)}")

    @classmethod
    def available_on(cls, device: str) -> tuple[bool, str]:
        ok, why = cls.available()
        if ok:
            gpus, _ = cls._gpus()
            bad = device_reason(device, gpus or [])
            return (False, bad) if bad else (ok, why)
        return ok, why

    def provider_options(self, artifact: str, options: BackendOptions) -> dict:
        return {"device_id": str(self.device_id)}

    def providers(self, artifact: str, options: BackendOptions) -> list:
        self.device_id = device_index(options.device)
        self.host_inputs = self.parse_options(options.extra).inputs == "host"
        return [(self.provider, self.provider_options(artifact, options)), "CPUExecutionProvider"]

    def load(self, artifact: str, options: BackendOptions) -> None:
        super().load(artifact, options)
        used = self.session.get_providers()
        if used[0] != self.provider:
            raise RuntimeError(f"ONNX Runtime fell back to {used[0]}: {self.provider} failed to initialise "
                               f"(CUDA/cuDNN libraries missing or mismatched? see the job log)")

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        """Device mode: inputs and output live on the GPU; host mode: ORT copies them in and out each run."""
        import onnxruntime as ort

        binding = self.session.io_binding()
        if self.host_inputs:
            for name in self.input_names:
                binding.bind_cpu_input(name, np.ascontiguousarray(batch[name]))
            binding.bind_output(self.output_name, "cpu")
            return binding, []
        values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch[n]), "cuda", self.device_id)
                  for n in self.input_names]
        for name, value in zip(self.input_names, values, strict=True):
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output_name, "cuda", self.device_id)
        return binding, values  # the OrtValues must outlive the binding

    def infer(self, handle: Any) -> None:
        self.session.run_with_iobinding(handle[0])

    def outputs(self, handle: Any) -> np.ndarray:
        return super().outputs(handle[0])

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """None: ONNX Runtime's node events on a GPU provider time the host-side launches, not the GPU work."""
        return None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device_id": self.device_id,
                "inputs": "host" if self.host_inputs else "device",
                "provider_options": self.session.get_provider_options().get(self.provider, {})}


class OnnxRuntimeTensorRT(OnnxRuntimeCUDA):
    """TensorRT EP first, CUDA EP for what TensorRT does not take; engines and timing cache kept on disk."""

    name = "onnxruntime-trt"
    provider = "TensorrtExecutionProvider"
    libraries = NVINFER
    option_model = OrtTensorRTOptions

    def providers(self, artifact: str, options: BackendOptions) -> list:
        first = super().providers(artifact, options)[0]
        return [first, ("CUDAExecutionProvider", {"device_id": str(self.device_id)}), "CPUExecutionProvider"]

    def provider_options(self, artifact: str, options: BackendOptions) -> dict:
        from backends.trt_plan import onnx_traits, profile_shapes

        opts = self.parse_options(options.extra)
        traits = onnx_traits(artifact)
        max_batch = opts.max_batch
        profile = profile_shapes(traits.inputs, options.batch_size or max_batch, max_batch)
        cache = options.cache_path("ort-tensorrt")

        def shapes(i: int) -> str:
            return ",".join(f"{name}:{'x'.join(map(str, s[i]))}" for name, s in profile.items())

        return {"device_id": str(self.device_id), "trt_fp16_enable": "1" if opts.precision == "fp16" else "0",
                "trt_engine_cache_enable": "1", "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": "1", "trt_timing_cache_path": str(cache),
                "trt_profile_min_shapes": shapes(0), "trt_profile_opt_shapes": shapes(1),
                "trt_profile_max_shapes": shapes(2)}
