"""Row-wise quantized embedding tables on any ONNX graph: Gather(codes) + dequantize instead of Gather(fp32 table)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def gathered(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> dict[str, list[int]]:
    """2-D float initializers that some Gather (axis 0) reads rows of, with the indexes of those Gather nodes."""
    inits = {i.name: i for i in graph.initializer}
    out: dict[str, list[int]] = {}
    for k, n in enumerate(nodes):
        axis = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 0)
        init = inits.get(n.input[0]) if n.op_type == "Gather" else None
        if init is not None and axis == 0 and len(init.dims) == 2 and init.data_type == TensorProto.FLOAT:
            out.setdefault(init.name, []).append(k)
    return out


def graph_tables(path: Path) -> dict[str, tuple[int, int]]:
    """Name -> (rows, width) of every embedding table in the file."""
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = {i.name: tuple(i.dims) for i in graph.initializer}
    return {name: dims[name] for name in gathered(graph, list(graph.node))}


class Builder:
    """Appends nodes with unique names under one prefix."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.count = prefix, [], 0

    def __call__(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        self.count += 1
        out = out or f"{self.prefix}/{op}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{self.prefix}/{op}_{self.count}", **attrs))
        return out


def dequantize(b: Builder, codes: str, scale: str, offset: str, ids_shape: str | None, width: int, bits: int,
               out: str) -> str:
    """codes (uint8, rows x packed width) -> float rows; scale/offset are (rows x 1) fp16."""
    x = b("Cast", [codes], to=TensorProto.FLOAT)
    if bits == 4:
        high = b("Floor", [b("Div", [x, b.prefix + "/sixteen"])])
        low = b("Sub", [x, b("Mul", [high, b.prefix + "/sixteen"])])
        pairs = b("Concat", [b("Unsqueeze", [high, b.prefix + "/last"]), b("Unsqueeze", [low, b.prefix + "/last"])],
                  axis=-1)
        whole = ids_shape is None
        shape = b.prefix + "/table_shape" if whole else b("Concat", [ids_shape, b.prefix + "/width"], axis=0)
        x = b("Reshape", [pairs, shape])
    scaled = b("Mul", [x, b("Cast", [scale], to=TensorProto.FLOAT)])
    return b("Add", [scaled, b("Cast", [offset], to=TensorProto.FLOAT)], out=out)


def quantize_graph_tables(src: Path, dst: Path, quantize: Callable[[np.ndarray], tuple | None], bits: int) -> Path:
    """Every table `quantize` accepts becomes codes + per-row scale/offset; a table other ops also read (e.g. tied
    output scoring) is dequantized whole once per call for them, so the fp32 copy is gone from the file."""
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    old = list(graph.node)
    outputs = {o.name for o in graph.output}
    replaced: dict[int, list[onnx.NodeProto]] = {}  # index of an old Gather -> its replacement
    head, extra, drop = [], [], set()  # head: whole-table dequantization for the table's other readers
    for name, gathers in gathered(graph, old).items():
        q = quantize(numpy_helper.to_array(inits[name]))
        if q is None:
            continue
        codes, scale, offset = q
        width = int(inits[name].dims[1])
        b = Builder(f"{name}/rowwise_int{bits}")
        consts = [numpy_helper.from_array(codes, b.prefix + "/codes"),
                  numpy_helper.from_array(scale.reshape(-1, 1), b.prefix + "/scale"),
                  numpy_helper.from_array(offset.reshape(-1, 1), b.prefix + "/offset"),
                  numpy_helper.from_array(np.array(16, np.float32), b.prefix + "/sixteen"),
                  numpy_helper.from_array(np.array([-1], np.int64), b.prefix + "/last"),
                  numpy_helper.from_array(np.array([width], np.int64), b.prefix + "/width"),
                  numpy_helper.from_array(np.array([-1, width], np.int64), b.prefix + "/table_shape")]
        extra += consts
        drop.add(name)
        for k in gathers:
            g = old[k]
            ids = g.input[1]
            start = len(b.nodes)
            picked = [b("Gather", [c.name, ids]) for c in consts[:3]]
            shape = b("Shape", [ids]) if bits == 4 else None
            dequantize(b, picked[0], picked[1], picked[2], shape, width, bits, out=g.output[0])
            replaced[k] = b.nodes[start:]
        table = numpy_helper.to_array(inits[name])
        copies = [i.name for i in graph.initializer if tuple(i.dims) == table.shape[::-1]  # the exporter's folded
                  and i.data_type == TensorProto.FLOAT and np.array_equal(numpy_helper.to_array(i), table.T)]  # .T
        readers = any(name in n.input for k, n in enumerate(old) if k not in gathers) or name in outputs
        if readers or copies:
            start = len(b.nodes)
            whole = dequantize(b, consts[0].name, consts[1].name, consts[2].name, None, width, bits,
                               out=name if readers else f"{b.prefix}/table")
            for copy in copies:  # e.g. SASRec scores the catalog against items.weight.T
                b("Transpose", [whole], out=copy, perm=[1, 0])
                drop.add(copy)
            head.extend(b.nodes[start:])
    if not drop:
        raise ValueError("no embedding table to quantize")
    nodes = list(head)
    for k, n in enumerate(old):
        nodes.extend(replaced.get(k, [n]))
    graph.ClearField("node")
    graph.node.extend(nodes)
    keep = [i for i in graph.initializer if i.name not in drop] + extra
    used = {i for n in graph.node for i in n.input}
    graph.ClearField("initializer")
    graph.initializer.extend(i for i in keep if i.name in used)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst
