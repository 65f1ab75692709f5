"""The scripted valve reset against the MuJoCo D'Claw, in simulated time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_ros.runtime.resets import ValveReset, ValveSettle, wrapped_distance
from sac_ros.sim import DClawSim


def _reset_for(sim: DClawSim, **kw) -> ValveReset:
    state = {"torque": False}

    def set_torque(on: bool) -> bool:
        state["torque"] = on
        sim.set_valve_motor(on, None)
        return True

    def command(angle: float) -> None:
        if state["torque"]:
            sim.set_valve_motor(True, angle)

    reset = ValveReset(
        set_torque=set_torque,
        command=command,
        read_angle=sim.valve_angle,
        clock=lambda: sim.time,
        sleep=lambda _dt: sim.step(),
        **kw,
    )
    reset.state = state  # type: ignore[attr-defined]
    return reset


@pytest.mark.parametrize("target", [-2.5, 0.0, 1.2, math.pi - 0.05])
def test_valve_reaches_a_random_start_and_is_freed(target):
    sim = DClawSim()
    sim.reset(valve_angle=0.7)
    reset = _reset_for(sim)
    ok, message = reset.run(target)
    assert ok, message
    assert wrapped_distance(sim.valve_angle(), target) < reset.tolerance
    assert not sim.valve_motor_enabled and not reset.state["torque"]


def test_unreachable_target_times_out_with_the_motor_off():
    sim = DClawSim()
    sim.reset(valve_angle=0.0)
    reset = _reset_for(sim, tolerance=1e-9, timeout=2.0)
    ok, message = reset.run(1.0)
    assert not ok and "did not reach" in message
    assert not sim.valve_motor_enabled


def test_abort_and_bad_target():
    sim = DClawSim()
    assert _reset_for(sim, aborted=lambda: True).run(1.0)[1].startswith("reset aborted")
    ok, message = _reset_for(sim).run(float("nan"))
    assert not ok and "not finite" in message
    assert np.isfinite(sim.valve_angle())


def test_settle_is_judged_on_every_reading_in_reading_time():
    settle = ValveSettle(target=1.0, tolerance=0.05, settle=0.25, timeout=10.0)
    # The valve arrives just before the deadline: it still gets its settle time.
    for i in range(200):
        t = 0.1 * i
        verdict = settle.observe(t, 1.0 if i >= 99 else 0.0)
        if verdict is not None:
            break
    ok, message = verdict
    assert ok, message
    assert i == 102  # inside from 9.9 s, settled 0.3 s later (past the 10 s deadline)


def test_settle_fails_after_the_timeout_and_resets_the_settle_clock_on_leaving():
    settle = ValveSettle(target=0.0, tolerance=0.05, settle=0.3, timeout=2.0)
    # In, out (settle clock restarts), never long enough, then the deadline passes.
    readings = [(0.0, 0.0), (0.2, 0.0), (0.3, 0.2), (0.4, 0.0), (0.6, 0.3)]
    readings += [(0.6 + 0.1 * i, 0.3) for i in range(1, 20)]
    verdicts = [settle.observe(t, a) for t, a in readings]
    assert all(v is None for v in verdicts[:-5])
    failed = [v for v in verdicts if v is not None]
    assert failed and not failed[0][0] and "did not reach" in failed[0][1]
    assert ValveSettle(target=0.0, timeout=1.0).observe(0.0, None) is None
