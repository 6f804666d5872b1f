"""The backend contract: the only calls the timing loop makes into a runtime."""

from __future__ import annotations

import importlib.util
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class BackendOptions:
    """What a job tells a backend: where to run, how many threads, and backend-specific extras."""

    device: str = "cpu"
    threads: int = 1
    inputs: tuple[str, ...] = ()  # model input names in call order (for runtimes that take positional args)
    batch_size: int | None = None  # the job's benchmark batch, for runtimes that specialise ahead of time
    extra: dict[str, Any] = field(default_factory=dict)
    mode: str = "latency"  # "throughput": configure for infer_parallel (offline scenario)


Clock = Callable[[], int]


def run_threads(target: Callable[[int], None], count: int) -> None:
    """Run target(0..count-1) on `count` threads (inline when 1) and re-raise the first exception any raised."""
    errors: list[BaseException] = []

    def guarded(j: int) -> None:
        try:
            target(j)
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(e)

    if count == 1:
        guarded(0)
    else:
        threads = [threading.Thread(target=guarded, args=(j,), daemon=True) for j in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def run_closed_loop(call: Callable[[Any], None], handles: list[Any], clients: int, clock: Clock,
                    min_requests: int, min_ns: int = 0, max_ns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`clients` threads issue requests back to back, each on its own share of `handles`, until both
    `min_requests` and `min_ns` (or `max_ns`) are reached; returns every request's start and end time (ns)."""
    if clients > len(handles):
        raise ValueError(f"{clients} clients need at least {clients} prepared handles, got {len(handles)}")
    lock = threading.Lock()
    starts: list[int] = []
    ends: list[int] = []
    issued = [0]
    begin = clock()

    def client(j: int) -> None:
        own, n = handles[j::clients], 0
        while True:
            with lock:
                elapsed = clock() - begin
                if (issued[0] >= min_requests and elapsed >= min_ns) or (max_ns is not None and elapsed >= max_ns):
                    return
                issued[0] += 1
            t0 = clock()
            call(own[n % len(own)])
            t1 = clock()
            n += 1
            with lock:
                starts.append(t0)
                ends.append(t1)

    run_threads(client, clients)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


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
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Run `count` requests over `handles` as fast as the runtime's own parallelism allows (offline scenario);
        returns each request's start and end time (clock ns). Default: one request at a time, in order."""
        return run_closed_loop(self.infer_sync, handles, 1, clock, count)

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

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """prepare + infer + synchronize + outputs: for quality evaluation, never timed."""
        handle = self.prepare(batch)
        self.infer(handle)
        self.synchronize()
        return self.outputs(handle)
