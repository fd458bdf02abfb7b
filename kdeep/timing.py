"""The one timing loop: untimed warm-up calls, then timed calls (batch-1 LiteRT latency, Keras throughput)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from kdeep.errors import ConfigError


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds of each timed call."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return float(np.median(self.seconds))

    @property
    def p90(self) -> float:
        """90th-percentile seconds per call."""
        return float(np.percentile(self.seconds, 90))

    @property
    def runs(self) -> int:
        """Number of timed calls."""
        return len(self.seconds)

    @property
    def total(self) -> float:
        """Seconds of all timed calls together."""
        return float(sum(self.seconds))


def time_calls(call: Callable[[], Any], *, runs: int, warmup: int = 0, max_seconds: float | None = None,
               min_runs: int = 1) -> Timings:
    """Calls `call` `warmup` times untimed (tracing, allocation, caches), then up to `runs` times, each timed.

    With `max_seconds`, timing stops early once the timed calls have taken that long together and at least
    `min_runs` were made (as TFLite's benchmark_model caps a run with --max_secs): a slow call is timed fewer
    times instead of for minutes.

    Raises:
        ConfigError: `runs` or `min_runs` < 1, `warmup` < 0, or `max_seconds` <= 0.
    """
    for what, value, low in (("timed runs", runs, 1), ("minimum timed runs", min_runs, 1),
                             ("warm-up runs", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"the timing budget must be > 0 seconds, got {max_seconds!r}")
    for _ in range(warmup):
        call()
    seconds: list[float] = []
    budget_ns = None if max_seconds is None else max_seconds * 1e9
    spent_ns = 0
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        elapsed = time.perf_counter_ns() - start
        seconds.append(elapsed / 1e9)
        spent_ns += elapsed
        if budget_ns is not None and spent_ns >= budget_ns and len(seconds) >= min_runs:
            break
    return Timings(tuple(seconds))
