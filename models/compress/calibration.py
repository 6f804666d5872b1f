"""Calibration inputs from the user's file (.npz or .parquet, one array or column per model input), checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ModelError

IGNORED = {"labels"}  # a labelled-data file may double as calibration data


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".parquet":
            import pandas as pd

            frame = pd.read_parquet(path)
            return {c: np.stack([np.asarray(v) for v in frame[c]]) for c in frame.columns}
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except ImportError as e:
        raise ModelError(f"calibration data {path}: reading .parquet needs pyarrow: pip install recbench[parquet] "
                         f"({e})") from None
    except Exception as e:  # noqa: BLE001 - a missing or unreadable file is bad input
        raise ModelError(f"calibration data {path}: cannot read it as .npz / .parquet ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]})") from None


def read_calibration(path: Path, example: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The file's arrays for the model's inputs (`example`: a batch of them), with names, per-sample shapes and
    number kinds (integer IDs / floats) checked; cast to the model's dtypes."""
    arrays = read_arrays(path)
    where = f"calibration data {path}"
    missing = [k for k in example if k not in arrays]
    unknown = sorted(set(arrays) - set(example) - IGNORED)
    if missing or unknown:
        raise ModelError(f"{where}: names {', '.join(sorted(arrays)) or 'nothing'}, the model takes "
                        f"{', '.join(example)}" + (f" (missing {', '.join(missing)})" if missing else ""))
    out = {}
    for name, want in example.items():
        got = arrays[name]
        if got.ndim == want.ndim - 1 and want.shape[1:] == (1,):
            got = got.reshape(-1, 1)
        if got.shape[1:] != want.shape[1:] or got.dtype.kind not in ("iu" if want.dtype.kind in "iu" else "f"):
            raise ModelError(f"{where}: {name} is {got.dtype} {list(got.shape)}, the model takes {want.dtype} "
                            f"[n, {', '.join(map(str, want.shape[1:]))}]")
        out[name] = got.astype(want.dtype)
    counts = {len(v) for v in out.values()}
    if len(counts) != 1 or 0 in counts:
        raise ModelError(f"{where}: every input needs the same number of samples (> 0), got {sorted(counts)}")
    return out
