"""What a search measured: the candidates (deployable configurations), each trial's record, the result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Candidate:
    """One deployable configuration."""

    variant: str
    backend: str
    batch_size: int
    threads: int

    def label(self) -> str:
        return f"{self.variant} on {self.backend}, batch {self.batch_size}, {self.threads} thread" + \
            ("s" if self.threads > 1 else "")


@dataclass
class Trial:
    candidate: Candidate
    stage: str  # "screen", "round 1", ..., "final"
    record: dict


@dataclass
class SearchResult:
    trials: list[Trial] = field(default_factory=list)
    rejected: dict[tuple[str, str], str] = field(default_factory=dict)  # (variant, backend) -> why never timed
    quality: dict[tuple[str, str], dict] = field(default_factory=dict)  # screened quality per (variant, backend)
    elapsed_s: float = 0.0
    rounds: list[str] = field(default_factory=list)

    def latest(self) -> dict[Candidate, Trial]:
        return {t.candidate: t for t in self.trials}
