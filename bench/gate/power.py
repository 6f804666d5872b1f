"""A regression verdict that knows its power: fail, pass, or inconclusive when the noise hides the threshold."""

from __future__ import annotations

from bench.gate.result import FAIL, INCONCLUSIVE, PASS

BUSIER = 0.10  # of the cores' time: how much more other processes must take during the candidate to call it busier


def busier_candidate(base: dict, cand: dict) -> bool:
    """The candidate's record says its host was busy (noise.busy), and other processes took a larger share of its
    cores than during the baseline, by more than BUSIER: contention alone could make it look slower."""
    share = [(r.get("noise") or {}).get("others_cpu_share") or 0.0 for r in (base, cand)]
    return bool((cand.get("noise") or {}).get("busy")) and share[1] - share[0] > BUSIER


def decide(surely_worse: float, mde: float, threshold: float, paired: bool, busier: bool, reps: str) -> tuple[str, str]:
    """(verdict, note). Fail when the whole CI lies beyond the threshold (`surely_worse`: how much worse B is at the
    CI's optimistic end); inconclusive when the minimum detectable effect exceeds the threshold (or, comparing runs
    made at different times, when the candidate's host was busier and the CI says fail: that cannot be told from a
    regression); pass otherwise."""
    if surely_worse > threshold and busier and not paired:
        return INCONCLUSIVE, ("host busier during the candidate run: a sequential comparison cannot tell that from a "
                              "regression; use --rerun")
    if surely_worse > threshold:
        return FAIL, f"worse beyond the threshold across the whole CI ({reps})"
    if mde > threshold:
        return INCONCLUSIVE, (f"noise too high: MDE {mde:.0%} > {threshold:.0%} ({reps}); more replicas (--repeat) "
                              "or --rerun")
    return PASS, f"MDE {mde:.1%} ({reps})"
