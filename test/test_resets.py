"""The scripted valve reset against the MuJoCo D'Claw, in simulated time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_ros.runtime.resets import ValveReset, wrapped_distance
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
