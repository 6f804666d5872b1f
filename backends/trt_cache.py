"""On-disk cache of serialized TensorRT engines (with a JSON sidecar saying what built them) and timing caches."""

from __future__ import annotations

import json
import os
from pathlib import Path

from backends.trt_plan import GpuId, engine_mismatch, timing_cache_key


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_meta(engine: Path) -> dict | None:
    sidecar = engine.with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else None


class EngineCache:
    """root/<key>.engine + root/<key>.json, and root/timing-<version+gpu>.cache; writes are atomic."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def engine_path(self, key: str) -> Path:
        return self.root / f"{key}.engine"

    def lookup(self, key: str, version: str, gpu: GpuId) -> tuple[bytes | None, str | None]:
        """(engine bytes, None) on a valid hit; (None, why) when the entry is missing or was built elsewhere."""
        path = self.engine_path(key)
        meta = read_meta(path)
        if not path.exists() or meta is None:
            return None, "not cached"
        why = engine_mismatch(meta, path, version, gpu)
        if why:
            return None, why
        return path.read_bytes(), None

    def store(self, key: str, blob: bytes, meta: dict) -> Path:
        path = self.engine_path(key)
        _write_atomic(path, blob)
        _write_atomic(path.with_suffix(".json"), json.dumps(meta, indent=1, default=str).encode())
        return path

    def timing_path(self, version: str, gpu: GpuId) -> Path:
        return self.root / f"timing-{timing_cache_key(version, gpu)}.cache"

    def timing_cache(self, version: str, gpu: GpuId) -> bytes:
        path = self.timing_path(version, gpu)
        return path.read_bytes() if path.exists() else b""

    def save_timing_cache(self, version: str, gpu: GpuId, data: bytes) -> None:
        _write_atomic(self.timing_path(version, gpu), data)
