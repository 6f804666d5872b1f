"""emb-int8 / emb-int4: row-wise quantized embedding tables (fp16 scale and offset per row).

Two levels, one quantizer: the torch module swaps nn.Embedding for RowwiseQuantEmbedding; the ONNX graph
(any model's) swaps every Gather from a big float initializer for Gather(codes) + dequantize.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.compress.base import Technique, size_breakdown
from models.compress.embedding_graph import graph_tables, quantize_graph_tables

MIN_ROWS = 64  # smaller tables (positions, flags) stay fp32: nothing to gain
MIN_WIDTH = 4  # narrower rows (e.g. DeepFM's first-order weights) would grow: 4 bytes of scale/offset per row


def rowwise(weight: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 codes (two 4-bit codes per byte for int4), fp16 scale and offset per row."""
    levels = 2**bits - 1
    w = weight.astype(np.float32)
    lo, hi = w.min(axis=1), w.max(axis=1)
    scale = ((hi - lo) / levels).astype(np.float16)
    scale[scale == 0] = 1  # constant rows (e.g. a zero padding row): any scale reproduces them; 0 would divide by 0
    offset = lo.astype(np.float16)
    codes = np.clip(np.round((w - offset.astype(np.float32)[:, None]) / scale.astype(np.float32)[:, None]), 0, levels)
    codes = codes.astype(np.uint8)
    if bits == 4:
        codes = codes[:, 0::2] * 16 + codes[:, 1::2]
    return codes, scale, offset


class RowwiseQuantEmbedding(nn.Module):
    """An embedding table stored as uint8 codes, dequantized after the Gather."""

    def __init__(self, weight: torch.Tensor, bits: int):
        super().__init__()
        rows, dim = weight.shape
        self.bits, self.quantized_weights = bits, rows * dim
        codes, scale, offset = rowwise(weight.detach().float().numpy(), bits)
        self.register_buffer("codes", torch.from_numpy(codes))
        self.register_buffer("scale", torch.from_numpy(scale))
        self.register_buffer("offset", torch.from_numpy(offset))

    def dequantize(self, codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        codes = codes.float()
        if self.bits == 4:  # float arithmetic, not bit ops: exports to ops every runtime has
            high = torch.floor(codes / 16)
            codes = torch.stack([high, codes - 16 * high], dim=-1).flatten(-2)
        return codes * scale.float().unsqueeze(-1) + offset.float().unsqueeze(-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.dequantize(self.codes[ids], self.scale[ids], self.offset[ids])

    @property
    def weight(self) -> torch.Tensor:
        """The whole table dequantized, for models that also read it directly (SASRec scores the catalog with it)."""
        return self.dequantize(self.codes, self.scale, self.offset)


def fits(table: nn.Embedding | tuple[int, int], bits: int) -> bool:
    rows, dim = table.weight.shape if isinstance(table, nn.Embedding) else table
    return rows >= MIN_ROWS and dim >= MIN_WIDTH and (bits == 8 or dim % 2 == 0)


class EmbeddingQuant(Technique):
    stage = "module"
    graph_first = True  # on ONNX always the graph rewrite: it handles tables shared with other ops, as any BYO file

    def __init__(self, bits: int):
        self.bits = bits
        self.name = f"emb-int{bits}"
        self.summary = (f"row-wise int{bits} embedding tables (>= {MIN_ROWS} x {MIN_WIDTH}), fp16 scale/offset per row "
                        f"(Gather + dequantize)")

    def applies(self, ws, fmt):
        module = ws.skeleton()
        if module is not None:
            found = any(fits(m, self.bits) for m in module.modules() if isinstance(m, nn.Embedding))
        else:
            found = any(fits(shape, self.bits) for shape in graph_tables(ws.base_onnx()).values())
        if found:
            return None
        even = "" if self.bits == 8 else " and an even width (two int4 codes per byte)"
        return (f"{self.name}: no embedding table with >= {MIN_ROWS} rows of >= {MIN_WIDTH} values{even} "
                f"(nn.Embedding or Gather of an initializer)")

    def transform(self, ws, module):
        for parent in module.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.Embedding) and fits(child, self.bits):
                    setattr(parent, child_name, RowwiseQuantEmbedding(child.weight, self.bits))
        return module

    def rewrite(self, ws, src, dst):
        return quantize_graph_tables(src, dst, lambda w: rowwise(w, self.bits) if fits(w.shape, self.bits) else None,
                                     self.bits)

    def notes(self, ws, module):
        out = {"embedding_bits": self.bits}
        if module is not None:
            baseline = size_breakdown(ws.skeleton())["embedding_bytes"]
            mine = size_breakdown(module)["embedding_bytes"]
            out["embedding_ratio_vs_fp32"] = baseline / mine if mine else None
        return out
