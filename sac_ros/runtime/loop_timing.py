"""How well a control loop keeps its rate: periods between cycles and time spent in each.

A driver's bus cycle or a policy's control step records its start (``begin``) and its end
(``end``); ``values`` gives the median and 99th percentile of both in milliseconds for
/diagnostics. ``interrupt`` drops the link to the previous cycle, so a pause the loop
meant to take (a reset between episodes) is not counted as a late period.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np


class LoopTiming:
    def __init__(self, window: int = 2000, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.periods: deque[float] = deque(maxlen=window)
        self.durations: deque[float] = deque(maxlen=window)
        self._last_start: float | None = None
        self._start: float | None = None

    def begin(self) -> None:
        start = self._clock()
        if self._last_start is not None:
            self.periods.append(start - self._last_start)
        self._last_start = self._start = start

    def end(self) -> None:
        if self._start is not None:
            self.durations.append(self._clock() - self._start)
            self._start = None

    def interrupt(self) -> None:
        """The next cycle starts a new run: no period is measured across the gap."""
        self._last_start = self._start = None

    def late_fraction(self, period: float, slack: float = 1.5) -> float:
        """Share of periods longer than ``slack`` times the nominal ``period``."""
        if not self.periods:
            return 0.0
        return float(np.mean(np.asarray(self.periods) > slack * period))

    def values(self, busy: str, period: str) -> dict[str, float | None]:
        """``<busy>_ms_p50/p99`` (time in a cycle) and ``<period>_ms_p50/p99``."""
        out: dict[str, float | None] = {}
        for name, samples in ((busy, self.durations), (period, self.periods)):
            p50, p99 = percentiles_ms(samples) or (None, None)
            out[f"{name}_ms_p50"], out[f"{name}_ms_p99"] = p50, p99
        return out


def percentiles_ms(samples: deque[float]) -> tuple[float, float] | None:
    if not samples:
        return None
    p50, p99 = np.percentile(np.asarray(samples), [50, 99])
    return round(float(p50) * 1e3, 3), round(float(p99) * 1e3, 3)
