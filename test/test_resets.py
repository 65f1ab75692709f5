"""The scripted valve reset against the MuJoCo D'Claw, in simulated time."""

from __future__ import annotations

import math
import threading
import time

import pytest

from sac_ros.runtime.resets import ValveReset, ValveSettle, wrapped_distance
from sac_ros.sim import DClawSim


class ValveRig:
    """The MuJoCo D'Claw behind a valve motor: a feeder thread steps the simulation and
    hands every valve reading to the reset, as the reward node's subscription does."""

    def __init__(self, sim: DClawSim, **kw) -> None:
        self.sim, self.torque, self.lock = sim, False, threading.Lock()
        self.acks = True
        self.reset = ValveReset(self.set_torque, self.command, poll=0.005, **kw)
        self.stop = threading.Event()
        self.feeder = threading.Thread(target=self._feed, daemon=True)

    def set_torque(self, on: bool) -> bool:
        with self.lock:
            self.torque = on
            self.sim.set_valve_motor(on, None)
        return self.acks

    def command(self, angle: float) -> None:
        if self.torque:  # called from the feeder thread, inside observe
            self.sim.set_valve_motor(True, angle)

    def _feed(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                self.sim.step()
                t, angle = self.sim.time, self.sim.valve_angle()
                self.reset.observe(t, angle)
            time.sleep(0.0005)

    def run(self, target: float) -> tuple[bool, str]:
        self.feeder.start()
        try:
            return self.reset.run(target)
        finally:
            self.stop.set()
            self.feeder.join(5)


@pytest.mark.parametrize("target", [-2.5, 0.0, 1.2, math.pi - 0.05])
def test_valve_reaches_a_random_start_and_is_freed(target):
    sim = DClawSim()
    sim.reset(valve_angle=0.7)
    rig = ValveRig(sim)
    ok, message = rig.run(target)
    assert ok, message
    assert wrapped_distance(sim.valve_angle(), target) < rig.reset.tolerance
    assert not sim.valve_motor_enabled and not rig.torque and not rig.reset.active


def test_unreachable_target_times_out_in_reading_time_with_the_motor_off():
    sim = DClawSim()
    sim.reset(valve_angle=0.0)
    rig = ValveRig(sim, tolerance=1e-9, timeout=2.0)
    ok, message = rig.run(1.0)
    assert not ok and "did not reach" in message
    assert 2.0 < sim.time < 10.0  # simulated seconds decided it, not the wall clock
    assert not sim.valve_motor_enabled


def test_readings_that_stop_fail_on_the_wall_clock():
    reset = ValveReset(lambda on: True, lambda angle: None, wall_timeout=0.2, poll=0.01)
    start = time.monotonic()
    ok, message = reset.run(1.0)
    assert not ok and "readings stopped" in message
    assert 0.2 <= time.monotonic() - start < 2.0 and not reset.active


def test_abort_refused_torque_and_bad_target():
    torque = []
    aborted = ValveReset(lambda on: torque.append(on) or True, lambda a: None,
                         aborted=lambda: True, poll=0.01)  # fmt: skip
    assert aborted.run(1.0)[1].startswith("reset aborted")
    assert torque == [True, False]  # the motor is off again after an abort
    refused = ValveReset(lambda on: False, lambda a: None)
    assert refused.run(1.0) == (False, "valve motor did not accept torque on")
    ok, message = refused.run(float("nan"))
    assert not ok and "not finite" in message


def test_readings_outside_a_reset_are_ignored():
    commands = []
    reset = ValveReset(lambda on: True, commands.append)
    reset.observe(0.0, 1.0)
    assert commands == [] and not reset.active


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


def test_settle_takes_stamps_summed_from_physics_steps_at_their_word():
    # Simulation time is a running sum of 2.5 ms steps: three control periods of it come
    # to 0.29999999999999 s. Settling for 0.3 s must still take 4 readings at 10 Hz, not 5.
    stamps, t = [], 0.0
    for _ in range(12):
        for _ in range(40):
            t += 0.0025
        stamps.append(t)
    assert any(stamps[i + 3] - stamps[i] < 0.3 for i in range(8))  # the premise
    for first in range(8):
        settle = ValveSettle(target=0.0, tolerance=0.05, settle=0.3, timeout=10.0)
        verdicts = [settle.observe(s, 0.0) for s in stamps[first:]]
        assert verdicts[:3] == [None] * 3 and verdicts[3] is not None and verdicts[3][0]


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
