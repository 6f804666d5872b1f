"""Reading op profiles back (ops/<job>.json) and which op types changed most between two of them."""

from __future__ import annotations

import json
from pathlib import Path


def load(run_dir: Path, record: dict) -> dict | None:
    """A job's op table, or None where it was not profiled (or the file is gone)."""
    rel = (record.get("op_profile") or {}).get("file")
    if not rel:
        return None
    try:
        return json.loads((Path(run_dir) / rel).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def changes(a: dict, b: dict, top: int = 5) -> list[dict]:
    """Op types whose time per iteration moved most from table a to table b (by absolute ms), with the ratio b/a."""
    ta = {t["op_type"]: t["ms_per_iter"] for t in a["op_types"]}
    tb = {t["op_type"]: t["ms_per_iter"] for t in b["op_types"]}
    rows = [{"op_type": k, "a_ms": ta.get(k, 0.0), "b_ms": tb.get(k, 0.0), "delta_ms": tb.get(k, 0.0) - ta.get(k, 0.0),
             "ratio": tb[k] / ta[k] if ta.get(k) and k in tb else None} for k in ta.keys() | tb.keys()]
    return sorted(rows, key=lambda r: -abs(r["delta_ms"]))[:top]
