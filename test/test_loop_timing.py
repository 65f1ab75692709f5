"""LoopTiming: periods and busy times of a control loop, with resets left out."""

from __future__ import annotations

import pytest

from sac_ros.runtime.loop_timing import LoopTiming


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def run_cycles(timing: LoopTiming, clock: FakeClock, periods: list[float], busy: float) -> None:
    for period in periods:
        timing.begin()
        clock.t += busy
        timing.end()
        clock.t += period - busy


def test_periods_and_busy_times_in_milliseconds():
    clock = FakeClock()
    timing = LoopTiming(clock=clock)
    run_cycles(timing, clock, [0.05] * 99 + [0.25], busy=0.002)
    timing.begin()  # closes the last period
    values = timing.values("step", "step_period")
    assert values["step_ms_p50"] == pytest.approx(2.0)
    assert values["step_period_ms_p50"] == pytest.approx(50.0)
    assert values["step_period_ms_p99"] > 50.0  # the one late period shows in the tail
    assert timing.late_fraction(0.05) == pytest.approx(0.01)


def test_an_interrupt_leaves_the_pause_out():
    clock = FakeClock()
    timing = LoopTiming(clock=clock)
    run_cycles(timing, clock, [0.05] * 10, busy=0.001)
    timing.interrupt()
    clock.t += 3.0  # a reset between episodes
    run_cycles(timing, clock, [0.05] * 10, busy=0.001)
    assert max(timing.periods) == pytest.approx(0.05)
    assert len(timing.periods) == 18 and timing.late_fraction(0.05) == 0.0


def test_no_samples_no_numbers_and_an_unfinished_cycle_is_not_timed():
    clock = FakeClock()
    timing = LoopTiming(clock=clock)
    assert timing.values("cycle", "period") == {
        "cycle_ms_p50": None, "cycle_ms_p99": None, "period_ms_p50": None, "period_ms_p99": None
    }  # fmt: skip
    assert timing.late_fraction(0.02) == 0.0
    timing.begin()
    timing.interrupt()  # e.g. the cycle raised and the loop was stopped
    timing.end()
    assert not timing.durations and not timing.periods
