"""Files a job needs on its node: put once into Ray's object store on the head, written once per node."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from models.artifacts import cache_root

# Artifact formats whose files only the library that wrote them reads reliably (a pickled torch module, an
# OpenVINO IR): a node with another version of that library builds the variant itself. ONNX is versioned by
# its opset, which every runtime checks, and engines are built on the node by their backend anyway.
FORMAT_LIBRARY = {"torch": "torch", "openvino": "openvino"}


@dataclass(frozen=True)
class Shipped:
    name: str
    sha256: str
    ref: object  # a Ray ObjectRef holding the file's bytes


class Shipper:
    """Head side: each file goes into the object store once, however many jobs use it."""

    def __init__(self, ray):
        self.ray = ray
        self.sent: dict[Path, Shipped] = {}

    def put(self, *paths: str | Path | None) -> list[Shipped]:
        """The files named (None and "" name none)."""
        keys = [Path(p).absolute() for p in paths if p]
        for key in keys:
            if key not in self.sent:
                data = key.read_bytes()
                self.sent[key] = Shipped(key.name, hashlib.sha256(data).hexdigest(), self.ray.put(data))
        return [self.sent[key] for key in keys]


def receive(ray, files: list[Shipped]) -> str | None:
    """Node side: write the files into this node's cache (once per content) and return the first one's path."""
    if not files:
        return None
    folder = cache_root() / "fleet" / files[0].sha256
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        path = folder / f.name
        if not path.exists():
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(ray.get(f.ref))
            os.replace(tmp, path)
    return str(folder / files[0].name)


def where_to_build(fmt: str, builtin: bool, head: dict, node: dict) -> tuple[str, str | None]:
    """("head", None) to use the head's file, or ("node", why) when the node must build the artifact itself."""
    lib = FORMAT_LIBRARY.get(fmt)
    if lib is None or head.get(lib) == node.get(lib):
        return "head", None
    why = f"{lib} {node.get(lib)} on the node, {head.get(lib)} on the head"
    if not builtin:
        return "head", f"{why}; a bring-your-own model is only built on the head"
    return "node", why
