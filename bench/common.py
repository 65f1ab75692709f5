"""Shared helpers for the benchmarks: JSON-line output, timers, interleaved comparisons.

Every benchmark prints exactly one JSON object as the LAST line of its stdout (``emit``).
Machines here are shared and noisy (timings vary 20-40% between runs), so comparisons run
their contenders interleaved, round by round, in the same process (``interleaved``).

Run as a script, this module prints a calibration line: fp32 matmul GFLOP/s of this CPU.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Benchmarks that start ROS processes keep DDS on this machine.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")


def emit(result: dict[str, Any]) -> None:
    """Print the benchmark's result as one JSON line (the last line of stdout)."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True, default=float), flush=True)


def log(message: str) -> None:
    """Progress for humans goes to stderr, so stdout ends with the JSON line."""
    print(message, file=sys.stderr, flush=True)


def set_threads(threads: int | None = None) -> int:
    """torch threads = the machine's cores (or ``threads``); returns the number used."""
    import torch

    count = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(count)
    return count


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def interleaved(
    contenders: dict[str, Callable[[], int]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each contender once per round, alternating; each call returns how many units
    of work it did. Returns units per second for every timed round, per contender."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for index in range(warmup + rounds):
        order = list(contenders.items())
        if index % 2:  # alternate who goes first, against drifting background load
            order.reverse()
        for name, run in order:
            with timer() as elapsed:
                units = run()
            if index >= warmup:
                rates[name].append(units / elapsed[0])
    return rates


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# One-sided 95% quantiles of Student's t by degrees of freedom (seeds - 1); 1.645 beyond.
_T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860,
        9: 1.833, 10: 1.812, 15: 1.753, 20: 1.725, 30: 1.697}  # fmt: skip


def paired_comparison(
    ours: list[float], theirs: list[float], higher_is_better: bool = True
) -> dict[str, float | bool]:
    """Seed-paired comparison of two implementations at one point of a learning curve.

    ``diff``: mean over seeds of (ours - theirs), signed so that positive means ours is
    better; ``se``: its standard error; ``not_worse``: ours is not significantly worse
    (one-sided 95%: diff + t * se >= 0); ``mean_at_least``: the plain comparison of the
    means (diff >= 0), which with a few seeds flips on seed noise alone.
    """
    if len(ours) != len(theirs) or not ours:
        raise ValueError("paired_comparison needs the same seeds on both sides")
    sign = 1.0 if higher_is_better else -1.0
    diffs = [sign * (a - b) for a, b in zip(ours, theirs, strict=True)]
    n = len(diffs)
    diff = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
    if n == 1:
        t = 0.0
    elif n - 1 > max(_T95):
        t = 1.645
    else:  # the next tabulated degrees of freedom up: a t no larger than the exact one
        t = _T95[min(k for k in _T95 if k >= n - 1)]
    return {
        "diff": round(diff, 4),
        "se": round(se, 4),
        "not_worse": diff + t * se >= 0.0,
        "mean_at_least": diff >= 0.0,
    }


def latency_us(call: Callable[[], Any], repeats: int = 2000, warmup: int = 200) -> dict[str, float]:
    """p50/p99 latency of ``call`` in microseconds."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000.0)
    samples.sort()
    return {"p50": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)]}


def main() -> None:
    import torch

    threads = set_threads()
    a, b, out = torch.randn(256, 256), torch.randn(256, 256), torch.empty(256, 256)

    def matmuls() -> int:
        for _ in range(2000):
            torch.mm(a, b, out=out)
        return 2000

    rates = interleaved({"matmul": matmuls}, rounds=5)
    gflops = median(rates["matmul"]) * 2 * 256**3 / 1e9
    emit({"bench": "calibration", "threads": threads, "matmul_256_gflops": round(gflops, 1)})


if __name__ == "__main__":
    main()
