"""Intel OpenVINO on the CPU: reads ONNX (or IR), one infer request per pooled batch, inputs set up front."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from backends.base import Backend, BackendOptions, Clock, Options


class OpenVINOOptions(Options):
    """OpenVINO options."""

    hint: Literal["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"] | None = None  # None: from the scenario
    precision: Literal["f32", "bf16", "f16"] = "f32"  # INFERENCE_PRECISION_HINT (a bf16 variant sets bf16)


def port_name(port: Any, wanted: tuple[str, ...]) -> str:
    """The name among the port's names that the job feeds (the ONNX input name), else the port's own."""
    return next((n for n in wanted if n in port.get_names()), port.get_any_name())


class OpenVINO(Backend):
    name = "openvino"
    formats = ("openvino", "onnx")
    requires = ("openvino",)
    install_hint = "pip install recbench[openvino]"
    option_model = OpenVINOOptions

    @classmethod
    def versions(cls) -> dict[str, str]:
        import openvino

        return {"openvino": openvino.get_version()}

    def load(self, artifact: str, options: BackendOptions) -> None:
        import openvino as ov

        self.ov = ov
        opts = self.parse_options(options.extra)
        core = ov.Core()
        model = core.read_model(artifact)
        config = {
            "PERFORMANCE_HINT": opts.hint or ("THROUGHPUT" if options.mode == "throughput" else "LATENCY"),
            "INFERENCE_NUM_THREADS": options.threads,
            # OpenVINO silently runs fp32 models in bf16 on CPUs with AVX512-BF16/AMX: keep fp32 unless asked.
            "INFERENCE_PRECISION_HINT": opts.precision,
        }
        self.compiled = core.compile_model(model, options.device.upper().replace("CPU:", "CPU"), config)
        # a port carries every name of its tensor; get_any_name() may pick an internal one (a folded Cast's output)
        self.ports = {port_name(p, options.inputs): p for p in self.compiled.inputs}
        self.n_streams = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        request = self.compiled.create_infer_request()
        for name, port in self.ports.items():
            request.set_tensor(port, self.ov.Tensor(np.ascontiguousarray(batch[name]), shared_memory=True))
        return request

    def infer(self, handle: Any) -> None:
        handle.infer()

    def outputs(self, handle: Any) -> np.ndarray:
        return np.array(handle.get_output_tensor(0).data, dtype=np.float32).reshape(-1)

    def streams(self) -> int:
        return self.n_streams

    def infer_parallel(self, handles: list[Any], count: int, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
        """An AsyncInferQueue of OPTIMAL_NUMBER_OF_INFER_REQUESTS requests, refilled as each one completes."""
        inputs = [{port: h.get_tensor(port) for port in self.ports.values()} for h in handles]
        starts = np.zeros(count, dtype=np.int64)
        ends = np.zeros(count, dtype=np.int64)
        queue = self.ov.AsyncInferQueue(self.compiled, self.n_streams)

        def done(request, i: int) -> None:
            ends[i] = clock()

        queue.set_callback(done)
        for i in range(count):
            queue.get_idle_request_id()  # blocks until a request is free, so the start stamp is the real start
            starts[i] = clock()
            queue.start_async(inputs[i % len(inputs)], i)
        queue.wait_all()
        return starts, ends

    def describe(self) -> dict[str, Any]:
        props = ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "INFERENCE_PRECISION_HINT",
                 "OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        return {p.lower(): str(self.compiled.get_property(p)) for p in props}
