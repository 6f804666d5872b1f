"""Options the harness applies to any backend (they sit in backend_options.<backend>, never reach the runtime),
and the check of a whole sweep's backend options before the first job runs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backends.base import Backend
from bench.config.validation import describe
from bench.errors import UserError


class HarnessOptions(BaseModel):
    """Per-backend knobs of the harness itself."""

    model_config = ConfigDict(extra="forbid")
    inject_delay_ms: float = Field(0.0, ge=0)  # busy-wait after every timed infer(): a known slowdown for gates
    timeout_s: float | None = Field(None, gt=0)  # this backend's job timeout (default: the sweep's timeout_s)


def harness_part(options: dict[str, Any]) -> dict[str, Any]:
    """The keys of a job's backend options that are the harness's, as given."""
    return {k: v for k, v in options.items() if k in HarnessOptions.model_fields}


def split_options(options: dict[str, Any]) -> tuple[HarnessOptions, dict[str, Any]]:
    """The harness's options (validated) and the rest, which belong to the backend."""
    own = {k: v for k, v in options.items() if k not in HarnessOptions.model_fields}
    return HarnessOptions(**harness_part(options)), own


def check_options(backend: str, cls: type[Backend], options: dict[str, Any]) -> HarnessOptions:
    """Validate one backend's merged options; bad input is a UserError naming the backend, the key and the valid
    keys (with the closest), so a typo exits 2 before any job runs."""
    try:
        harness, own = split_options(options)
        cls.parse_options(own)
    except ValidationError as e:
        model = HarnessOptions if e.title == HarnessOptions.__name__ else cls.option_model
        extra = cls.option_model.model_fields if model is HarnessOptions else HarnessOptions.model_fields
        raise UserError(f"backend_options.{backend}: {describe(e, model, 'option', extra)}") from None
    return harness
