"""One formatter for bad input: pydantic errors as one line, unknown names with the valid ones and a did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from bench.errors import UserError

T = TypeVar("T")


def unknown(kind: str, name: str, valid: Iterable[str]) -> str:
    """"unknown <kind> 'name' (did you mean 'x'?); valid: a, b, c"."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}"


def lookup(kind: str, name: str, table: Mapping[str, T]) -> T:
    """table[name], or a UserError naming the valid names and the closest one."""
    if name not in table:
        raise UserError(unknown(kind, name, table))
    return table[name]


def _fields_at(model: type[BaseModel] | None, path: list[Any]) -> list[str]:
    """The field names of the (nested) model at `path` (list indices skipped); [] when not a model."""
    for part in path:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        models = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = models[0] if models else None  # a part that may be None (`Noise | None`) is still that model
    return list(model.model_fields) if model else []


def describe(err: ValidationError, model: type[BaseModel] | None = None, noun: str = "key",
             extra_valid: Iterable[str] = ()) -> str:
    """The first problem (a misspelt key first: it explains the rest) as 'where: what', without pydantic's
    'Value error,' prefix; an unknown key names the valid ones and the closest."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc, extra = list(first["loc"]), first["type"] == "extra_forbidden"
    where = ".".join(str(p) for p in (loc[:-1] if extra else loc))
    what = (unknown(noun, loc[-1], [*_fields_at(model, loc[:-1]), *extra_valid]) if extra
            else first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "))
    return f"{where}: {what}" if where else what
