"""A bring-your-own model's input spec (YAML) and how each input's batches are drawn."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.data import zipf_ids
from models.errors import ModelError
from models.fileio import load_yaml

ZIPF_EXPONENT = 1.1
DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")}


class Draws(BaseModel):
    """How values are drawn: IDs in [0, cardinality) or in `range`, or uniform floats in `range`."""

    model_config = ConfigDict(extra="forbid")
    cardinality: int | None = Field(None, ge=1)  # integer values: IDs in [0, cardinality)
    range: tuple[float, float] | None = None  # [low, high): IDs for integer inputs, uniform values for floats
    distribution: Literal["zipf", "uniform"] = "zipf"  # of IDs
    zipf_a: float = Field(ZIPF_EXPONENT, gt=0)  # the power law's exponent (P(rank k) ~ k^-a)

    @model_validator(mode="after")
    def _exponent(self) -> Draws:
        if self.zipf_a == 1:
            raise ValueError("zipf_a must not be exactly 1 (use 0.99 or 1.01)")
        return self


class Column(Draws):
    """One column of a matrix input: `{cardinality: N}` (IDs) or `{dense: true}` (real values)."""

    dense: bool = False

    @model_validator(mode="after")
    def _one_role(self) -> Column:
        if self.dense == (self.cardinality is not None):
            raise ValueError("a column is either {cardinality: N} (IDs) or {dense: true}")
        return self


class InputSpec(Draws):
    """One model input as the user declares it; everything but the name defaults to the model's signature."""

    name: str
    dtype: str | None = None
    shape: list[int | str] | None = None  # "batch" marks the batch axis
    columns: list[Column] | None = Field(None, min_length=1)  # a [batch, len(columns)] matrix, one role per column

    @model_validator(mode="after")
    def _columns(self) -> InputSpec:
        if self.columns is not None and (self.cardinality is not None or self.range is not None):
            raise ValueError("give each column its own cardinality or range, not the whole input")
        return self


class SpecFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[InputSpec] = []
    as_dict: bool = False  # forward takes one mapping {input name: tensor} (also detected from its annotation)
    labelled: Path | None = None  # .npz with one array per input plus `labels`: enables quality
    calibration: Path | None = None  # .npz / .parquet with one array (column) per input: int8-static calibration


def read_spec(path: Path | None) -> SpecFile:
    if path is None:
        return SpecFile()
    try:
        spec = SpecFile(**load_yaml(path))
    except ValidationError as e:
        first = e.errors()[0]
        where, msg = ".".join(str(p) for p in first["loc"]), first["msg"].removeprefix("Value error, ")
        raise ModelError(f"{path}: {where}: {msg}") from None
    for key in ("labelled", "calibration"):
        given = getattr(spec, key)
        if given is not None and not given.is_absolute():
            setattr(spec, key, path.parent / given)
    return spec


def numpy_dtype(name: str, where: str) -> np.dtype:
    try:
        dtype = np.dtype(name)
    except TypeError:
        dtype = None
    if dtype not in DTYPES:
        raise ModelError(f"{where}: unsupported input type {name}; "
                              f"valid: {', '.join(sorted(str(d) for d in DTYPES))}")
    return dtype


@dataclass
class Draw:
    """Resolved drawing rule of an input or of one matrix column: IDs in [low, high), uniform, normal or bool."""

    ids: bool
    low: float | None = None
    high: float | None = None
    distribution: str = "zipf"
    zipf_a: float = ZIPF_EXPONENT

    def sample(self, rng: np.random.Generator, shape: list[int], dtype: np.dtype) -> np.ndarray:
        if dtype == np.bool_:
            return rng.random(shape) < 0.5
        n = int(np.prod(shape))
        if self.ids:
            span = int(self.high - self.low)
            ids = zipf_ids(rng, n, span, self.zipf_a) if self.distribution == "zipf" else rng.integers(0, span, n)
            return (ids + int(self.low)).reshape(shape).astype(dtype)
        if self.low is not None:
            return rng.uniform(self.low, self.high, shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    def describe(self) -> str:
        return f"IDs in [{self.low:g}, {self.high:g})" if self.ids else "values"


@dataclass
class ModelInput:
    """A fully resolved input: how to draw a batch of it (one Draw, or one per column of a matrix)."""

    name: str
    dtype: np.dtype
    shape: list[int | None]  # None marks the batch axis
    fixed_batch: int | None  # the batch size the model (or the spec) fixes, if any
    draws: list[Draw] = field(default_factory=list)

    def sample(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        shape = [batch if d is None else d for d in self.shape]
        if len(self.draws) == 1:
            return self.draws[0].sample(rng, shape, self.dtype)
        return np.stack([d.sample(rng, shape[:-1], self.dtype) for d in self.draws], axis=-1)

    def id_slots(self) -> list[tuple[str, Draw]]:
        """Every ID-drawing part of this input, named for messages: `cat`, or `x column 7`."""
        if len(self.draws) == 1:
            return [(self.name, self.draws[0])] if self.draws[0].ids else []
        return [(f"{self.name} column {i}", d) for i, d in enumerate(self.draws) if d.ids]

    def pinned(self, values: np.ndarray, top: bool, slot: str | None = None) -> np.ndarray:
        """`values` with every ID slot (or the one named) at its highest (else lowest) ID in every row."""
        out = values.copy()
        for i, d in enumerate(self.draws):
            name = self.name if len(self.draws) == 1 else f"{self.name} column {i}"
            if d.ids and slot in (None, name):
                out[..., slice(None) if len(self.draws) == 1 else i] = d.high - 1 if top else d.low
        return out


def column_draws(columns: list[Column], dtype: np.dtype, where: str) -> list[Draw]:
    out = []
    for c in columns:
        if c.dense:
            low, high = c.range if c.range is not None else (None, None)
            out.append(Draw(False, low, high))
        else:
            out.append(Draw(True, 0, c.cardinality, c.distribution, c.zipf_a))
    if not np.issubdtype(dtype, np.floating) and any(not d.ids for d in out):
        raise ModelError(f"{where}: dense columns need a floating dtype, the input is {dtype}")
    return out


def input_draws(s: InputSpec | None, dtype: np.dtype, table_rows: int | None, where: str) -> list[Draw]:
    """The drawing rule(s) of one input from its spec entry (None: defaults) and the model's table size."""
    if s is not None and s.columns is not None:
        return column_draws(s.columns, dtype, where)
    integer = np.issubdtype(dtype, np.integer)
    dist, a = (s.distribution, s.zipf_a) if s is not None else ("zipf", ZIPF_EXPONENT)
    if s is not None and s.range is not None:
        return [Draw(integer, *s.range, dist, a)]
    if s is not None and s.cardinality is not None:
        return [Draw(True, 0, s.cardinality, dist, a)]
    if integer and table_rows:
        return [Draw(True, 0, table_rows, dist, a)]  # the ID range of the embedding table the input indexes
    if integer:
        raise ModelError(f"{where} is {dtype}: declare its IDs' cardinality or range in --input-spec")
    return [Draw(False)]
