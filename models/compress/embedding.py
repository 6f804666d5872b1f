"""emb-int8 / emb-int4: row-wise quantized embedding tables (fp16 scale and offset per row)."""

from __future__ import annotations

import torch
from torch import nn

from models.compress.base import Technique, size_breakdown


class RowwiseQuantEmbedding(nn.Module):
    """An embedding table stored as uint8 codes (two 4-bit codes per byte for int4), dequantized after the Gather."""

    def __init__(self, weight: torch.Tensor, bits: int):
        super().__init__()
        rows, dim = weight.shape
        if bits == 4 and dim % 2:
            raise ValueError(f"int4 rows pack two codes per byte: embedding dim {dim} must be even")
        self.bits, self.quantized_weights = bits, rows * dim
        levels = 2**bits - 1
        w = weight.detach().float()
        lo, hi = w.min(dim=1).values, w.max(dim=1).values
        scale = ((hi - lo) / levels).clamp_min(1e-8).half()
        offset = lo.half()
        codes = torch.round((w - offset.float()[:, None]) / scale.float()[:, None]).clamp(0, levels).to(torch.uint8)
        if bits == 4:
            codes = codes[:, 0::2] * 16 + codes[:, 1::2]
        self.register_buffer("codes", codes)
        self.register_buffer("scale", scale)
        self.register_buffer("offset", offset)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        codes = self.codes[ids].float()
        if self.bits == 4:  # float arithmetic, not bit ops: exports to ops every runtime has
            high = torch.floor(codes / 16)
            codes = torch.stack([high, codes - 16 * high], dim=-1).flatten(-2)
        return codes * self.scale[ids].float().unsqueeze(-1) + self.offset[ids].float().unsqueeze(-1)


class EmbeddingQuant(Technique):
    stage = "module"

    def __init__(self, bits: int):
        self.bits = bits
        self.name = f"emb-int{bits}"
        self.summary = f"row-wise int{bits} embedding tables, fp16 scale/offset per row (Gather + dequantize)"

    def transform(self, ws, module):
        for parent in module.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.Embedding):
                    setattr(parent, child_name, RowwiseQuantEmbedding(child.weight, self.bits))
        return module

    def notes(self, ws, module):
        baseline = size_breakdown(ws.baseline())["embedding_bytes"]
        mine = size_breakdown(module)["embedding_bytes"]
        return {"embedding_bits": self.bits, "embedding_ratio_vs_fp32": baseline / mine if mine else None}
