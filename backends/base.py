"""The backend contract: the only calls the timing loop makes into a runtime."""

from __future__ import annotations

import hashlib
import importlib.util
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


@dataclass
class BackendOptions:
    """What a job tells a backend: where to run, how many threads, and backend-specific extras."""

    device: str = "cpu"
    threads: int = 1
    inputs: tuple[str, ...] = ()  # model input names in call order (for runtimes that take positional args)
    batch_size: int | None = None  # the job's benchmark batch, for runtimes that specialise ahead of time
    shapes: str = "dynamic"  # "static": compile for batch_size (backends with static_shapes; other batches still run)
    extra: dict[str, Any] = field(default_factory=dict)
    mode: str = "latency"  # "throughput": configure for infer_parallel (offline scenario)
    cache_dir: str | None = None  # where a backend may cache what it compiles (the harness passes recbench's cache)
    # another model in this process is timed in turns with this one (an interleaved A/B): share the runtime's threads
    # with it where the runtime can, so the idle side's threads neither spin beside the timed one nor differ from them
    paired: bool = False

    def cache_path(self, sub: str) -> Path:
        """`<cache_dir>/<sub>`, created; the temp folder's recbench/ when no cache dir was given."""
        path = Path(self.cache_dir or Path(tempfile.gettempdir()) / "recbench") / sub
        path.mkdir(parents=True, exist_ok=True)
        return path


Clock = Callable[[], int]


class Options(BaseModel):
    """A backend's own options (`backend_options.<backend>` in a sweep config); an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")


def file_sha256(path: str | Path) -> str:
    """The file's sha256 (hex)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def artifact_files(path: str | Path) -> list[Path]:
    """The artifact and the files that belong to it (an OpenVINO IR's .bin)."""
    p = Path(path)
    extra = p.with_suffix(".bin") if p.suffix == ".xml" else None
    return [p] + ([extra] if extra and extra.exists() else [])


def artifact_sha256(path: str | Path) -> str:
    """The sha256 of what a backend loads: the file itself, or an IR's .xml and .bin together."""
    files = artifact_files(path)
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()


def missing_modules(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


class NotInEffect(Exception):
    """The runtime would run something other than the variant asks for (bf16 on a CPU without bf16): the worker
    records the job `skipped` with this message instead of measuring the wrong thing under the variant's name."""


class Backend(ABC):
    """One runtime adapter. Subclasses set the class attributes and implement the abstract calls."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # artifact formats it can load, in order of preference
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    requires: ClassVar[tuple[str, ...]] = ()  # import names of the runtime
    install_hint: ClassVar[str] = ""
    option_model: ClassVar[type[Options]] = Options
    static_shapes: ClassVar[bool] = False  # can compile for one batch (BackendOptions.shapes); else always dynamic
    # an interleaved A/B times its two models in turns in one process (BackendOptions.paired); False: the runtime does
    # not time two models in one process alike, so each side gets a process of its own (the same turns, across them)
    pairs_in_one_process: ClassVar[bool] = True

    @classmethod
    def parse_options(cls, extra: dict[str, Any]) -> Options:
        """The typed options (pydantic's ValidationError on a bad one; the harness checks them before a sweep)."""
        return cls.option_model(**extra)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this machine can run the backend at all, and why not."""
        missing = missing_modules(*cls.requires)
        if missing:
            return False, f"{', '.join(missing)} not installed: {cls.install_hint}"
        return True, "available"

    @classmethod
    def available_on(cls, device: str) -> tuple[bool, str]:
        """Whether the backend can run on this particular device (e.g. cuda:1); available() by default."""
        return cls.available()

    @classmethod
    def supports(cls, variant_formats: tuple[str, ...], device: str) -> tuple[bool, str]:
        """Whether a variant with these artifact formats can run on `device`; the reason when not."""
        if device.split(":")[0] not in cls.devices:
            return False, f"{cls.name} runs on {', '.join(cls.devices)}, not {device}"
        if cls.pick_format(variant_formats) is None:
            return False, f"{cls.name} loads {'/'.join(cls.formats)}; variant has {'/'.join(variant_formats)}"
        return True, "supported"

    @classmethod
    def pick_format(cls, variant_formats: tuple[str, ...]) -> str | None:
        return next((f for f in cls.formats if f in variant_formats), None)

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {}

    @abstractmethod
    def load(self, artifact: str, options: BackendOptions) -> None:
        """Read the artifact and make it ready to run (compile, create sessions)."""

    @abstractmethod
    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        """Move/bind one batch outside the timed region; returns a handle for infer()."""

    @abstractmethod
    def infer(self, handle: Any) -> None:
        """Run the model on a prepared batch. Timed."""

    def synchronize(self) -> None:  # noqa: B027 - a no-op for synchronous runtimes, on purpose
        """Wait until the work started by infer() has finished (asynchronous devices)."""

    @abstractmethod
    def outputs(self, handle: Any) -> np.ndarray:
        """The scores of the last infer() on this handle, as a flat float array (not timed)."""

    def streams(self) -> int:
        """How many requests infer_parallel keeps in flight (also how many prepared handles it needs)."""
        return 1

    def infer_parallel(self, handles: list[Any], count: int, clock: Clock = time.perf_counter_ns
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        """A runtime with its own request queue runs `count` requests over `handles` (offline scenario) and returns
        each one's start and end time (clock ns). None (the default): the harness runs `streams()` threads of
        back-to-back infer_sync calls instead."""
        return None

    def infer_sync(self, handle: Any) -> None:
        """infer + synchronize: one complete request (what every scenario times)."""
        self.infer(handle)
        self.synchronize()

    def memory(self) -> dict[str, int | None]:
        """Device memory in bytes where the backend knows it (host RSS is measured by the harness)."""
        return {"gpu_mem_bytes": None}

    def describe(self) -> dict[str, Any]:
        """Settings actually in effect after load(), stored in the record."""
        return {}

    def device_times_ms(self) -> dict[str, float] | None:
        """Device-side time of each phase of the last infer() (e.g. from CUDA events), read after synchronize();
        None for runtimes that only have host time. The timing loop records it per iteration, outside the
        host-timed region."""
        return None

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """Per-operator time from the runtime's own profiler in a pass of its own after the timed phase (never
        inside it): `iterations` calls round-robin over `batches` after a short warm-up. Returns {"profiler",
        "iterations", "rows": [{op_type, node, calls, total_ms}], "runtime_ms_per_iter" (or None)}; None where the
        runtime has no profiler."""
        return None

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """prepare + infer + synchronize + outputs: for quality evaluation, never timed."""
        handle = self.prepare(batch)
        self.infer(handle)
        self.synchronize()
        return self.outputs(handle)
