"""Small ONNX graph helpers for the quantizers."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper, numpy_helper


def weight_nodes(model: onnx.ModelProto, op_types: tuple[str, ...]) -> list[str]:
    """Names of the nodes of these types whose second input is a constant weight (not the interaction MatMul)."""
    consts = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in consts]


def gemm_to_matmul(src: Path, dst: Path) -> Path:
    """Rewrite Gemm(A, W, b, transB=1) as MatMul(A, W^T) + b: ORT's dynamic quantizer handles MatMul only."""
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in inits:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        w = w.T if attrs.get("transB", 0) else w
        wt = numpy_helper.from_array(w.copy(), node.input[1] + "_kn")
        graph.initializer.append(wt)
        mm_out = node.output[0] + ("_mm" if len(node.input) > 2 else "")
        nodes.append(helper.make_node("MatMul", [node.input[0], wt.name], [mm_out], name=node.name + "_matmul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_add"))
    graph.ClearField("node")
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(keep)
    onnx.save(model, str(dst))
    return dst


def named_nodes(src: Path, dst: Path) -> Path:
    """A copy of the graph in which every node has a unique name (the quantizers select nodes by name)."""
    model = onnx.load(str(src))
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = next(f"{node.op_type}_{i}_{k}" for k in range(len(taken) + 1)
                             if f"{node.op_type}_{i}_{k}" not in taken)
            taken.add(node.name)
    onnx.save(model, str(dst))
    return dst
