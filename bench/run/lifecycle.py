"""The one run lifecycle: a run folder is begun (env.json, config.json, state.json `running`) and finished
(`complete`, `interrupted` or `failed`) by one object, whatever launches its jobs (local processes, Ray tasks,
interleaved re-runs). Every result is appended the moment it ends, so an interruption keeps all of them."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bench.records.rundir import RunDir, write_json_atomic


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run: its folder is marked interrupted and keeps every result written so far."""

    def __init__(self, run: RunDir):
        super().__init__(run.interruption())
        self.run = run


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextmanager
def lifecycle(run: RunDir, environment: dict, config: dict, planned: int) -> Iterator[RunDir]:
    """Begin `run` (env and config written, `planned` results expected: jobs x replicas), yield it, and finish it
    whatever happens: complete, interrupted (raised as RunInterrupted; the CLI exits 130) or failed (re-raised)."""
    write_json_atomic(run.path / "env.json", environment)
    write_json_atomic(run.path / "config.json", config)
    run.mark("running", jobs=planned, done=0)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None  # a cancelled CI job is marked like Ctrl-C
    try:
        yield run
    except (KeyboardInterrupt, RunInterrupted):  # RunInterrupted: a run begun inside this one (A/B's other side)
        run.mark("interrupted", jobs=planned, done=run.recorded())
        raise RunInterrupted(run) from None
    except BaseException as e:  # a run stopped by an error is no complete run either
        run.mark("failed", jobs=planned, done=run.recorded(), error=f"{type(e).__name__}: {e}")
        raise
    else:
        run.mark("complete", jobs=planned, done=run.recorded())
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
