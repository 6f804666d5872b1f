"""Change points of a series across runs: Apache Otava's e-divisive means split with a t-test significance (Hunter)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import UserError

MAX_PVALUE = 0.001  # Otava's default: a change point's two sides differ with p <= this (Student's t-test)
WINDOW = 30  # Otava's sliding window (runs) of the split step


@dataclass(frozen=True)
class ChangePoint:
    index: int  # the first point of the new level
    magnitude: float  # mean after / mean before - 1
    pvalue: float


def change_points(series: Sequence[float], max_pvalue: float = MAX_PVALUE) -> list[ChangePoint]:
    """Every significant change of level in `series` (oldest first)."""
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        raise UserError("change points need Apache Otava: pip install 'recbench[continuous]'") from None
    if len(series) < 3:
        return []
    found, _ = compute_change_points([float(x) for x in series], window_len=WINDOW, max_pvalue=max_pvalue)
    return [ChangePoint(int(c.index), float(c.stats.forward_rel_change()), float(c.stats.pvalue)) for c in found]
