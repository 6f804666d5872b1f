"""Test doubles for the harness's own logic (never in place of a real runtime)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from backends.base import Backend, BackendOptions, NotInEffect
from backends.ort import OnnxRuntime


class FakeClock:
    """A nanosecond clock that only moves when a fake backend 'works'."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now


class ScriptedBackend(Backend):
    """infer() advances a fake clock by the next delay of a script: latencies are known exactly."""

    name = "scripted"
    formats = ("torch", "onnx")

    def __init__(self, delays_ns: list[int] | None = None, clock: FakeClock | None = None):
        self.delays = delays_ns or [1_000_000]
        self.clock = clock or FakeClock()
        self.calls: list[int] = []

    def load(self, artifact: str, options: BackendOptions) -> None:
        pass

    def prepare(self, batch):
        return int(batch["i"])

    def infer(self, handle) -> None:
        self.clock.now += self.delays[len(self.calls) % len(self.delays)]
        self.calls.append(handle)

    def outputs(self, handle) -> np.ndarray:
        return np.zeros(1, np.float32)


class CrashingBackend(ScriptedBackend):
    """Dies the way a broken runtime does: the process aborts during load."""

    name = "crashing"

    def load(self, artifact: str, options: BackendOptions) -> None:
        os.abort()


class HangingBackend(ScriptedBackend):
    """Never returns from load."""

    name = "hanging"

    def load(self, artifact: str, options: BackendOptions) -> None:
        time.sleep(3600)


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("formatting this error fails too")


class UnreportableBackend(ScriptedBackend):
    """load() raises an error whose message cannot be formatted: the job's own error handling fails as well."""

    name = "unreportable"

    def load(self, artifact: str, options: BackendOptions) -> None:
        raise _UnprintableError()


class ModulesOnnxRuntime(OnnxRuntime):
    """The real ONNX Runtime backend; describe() also says which runtimes its job process has imported."""

    def describe(self) -> dict:
        runtimes = ("torch", "onnxruntime", "openvino", "tensorrt")
        return {**super().describe(), "runtimes_imported": [m for m in runtimes if m in sys.modules]}


class ElsewhereBackend(ScriptedBackend):
    """A backend for a device this machine may lack (cuda): chosen and available, it records itself skipped."""

    name = "elsewhere"
    devices = ("cuda",)

    @classmethod
    def available_on(cls, device: str) -> tuple[bool, str]:
        return True, "available"

    def load(self, artifact: str, options: BackendOptions) -> None:
        raise NotInEffect(f"a test double: nothing to measure on {options.device}")
