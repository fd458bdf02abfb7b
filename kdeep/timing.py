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
    def total(self) -> float:
        """Seconds of all timed calls together."""
        return float(sum(self.seconds))


def time_calls(call: Callable[[], Any], *, runs: int, warmup: int = 0) -> Timings:
    """Calls `call` `warmup` times untimed (tracing, allocation, caches), then `runs` times, each timed.

    Raises:
        ConfigError: `runs` < 1 or `warmup` < 0.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ConfigError(f"timed runs must be an integer >= 1, got {runs!r}")
    if warmup < 0:
        raise ConfigError(f"warm-up runs must be >= 0, got {warmup!r}")
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        seconds.append((time.perf_counter_ns() - start) / 1e9)
    return Timings(tuple(seconds))
