"""Compression techniques, one module each; models.variants composes them into named variants."""

from __future__ import annotations

from models.compress.base import Technique
from models.compress.distill import Distilled
from models.compress.embedding import EmbeddingQuant
from models.compress.lowrank import LowRank
from models.compress.precision import BF16, FP16
from models.compress.prune import MagnitudePrune
from models.compress.prune_struct import StructuredPrune
from models.compress.quant_dynamic import Int8Dynamic
from models.compress.quant_static import Int8Static

TECHNIQUES: dict[str, Technique] = {t.name: t for t in (
    FP16(), BF16(), Int8Dynamic(), Int8Static(), EmbeddingQuant(8), EmbeddingQuant(4), MagnitudePrune(50),
    MagnitudePrune(90), StructuredPrune(), Distilled(), LowRank(),
)}
STAGES = ("model", "module", "artifact")  # the order steps compose in
