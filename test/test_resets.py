"""The scripted valve reset against the MuJoCo D'Claw, in simulated time."""

from __future__ import annotations

import math
import threading
import time

import mujoco
import numpy as np
import pytest

from sac_ros.runtime.resets import ValveReset, ValveSettle, wrapped_distance
from sac_ros.sim import DClawSim


class ValveRig:
    """The MuJoCo D'Claw behind a valve motor: a feeder thread steps the simulation and
    hands every valve reading to the reset, as the reward node's subscription does."""

    def __init__(self, sim: DClawSim, velocity: bool = True, **kw) -> None:
        self.sim, self.torque, self.lock = sim, False, threading.Lock()
        self.velocity = velocity  # whether the readings carry the valve's velocity
        self.on_acks = True  # False: torque on is applied, but its reply is lost
        self.off_failures = 0  # torque-off requests still to be lost (not applied)
        self.requests: list[bool] = []  # every set_torque, in order
        self.on_at: float | None = None  # simulated time the motor was switched on
        self.verdict_at: float | None = None  # stamp of the reading that decided the reset
        self.reset = ValveReset(self.set_torque, self.command, poll=0.005, **kw)
        self.stop = threading.Event()
        self.feeder = threading.Thread(target=self._feed, daemon=True)

    def set_torque(self, on: bool) -> bool:
        with self.lock:
            self.requests.append(on)
            if not on and self.off_failures > 0:
                self.off_failures -= 1
                return False  # lost on the way: the motor stays on
            self.torque = on
            self.sim.set_valve_motor(on, None)
            if on:
                self.on_at = self.sim.time
        return self.on_acks or not on

    def command(self, angle: float) -> None:
        if self.torque:  # called from the feeder thread, inside observe
            self.sim.set_valve_motor(True, angle)

    def _feed(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                self.sim.step()
                t, angle = self.sim.time, self.sim.valve_angle()
                speed = self.sim.valve_velocity() if self.velocity else None
                judging = self.reset.active
                self.reset.observe(t, angle, speed)
                if judging and not self.reset.active and self.verdict_at is None:
                    self.verdict_at = t
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


def test_a_valve_reading_with_its_velocity_settles_in_fewer_readings():
    # The same random starts, judged with and without the valve's velocity: a valve
    # inside the tolerance and nearly still has arrived, so the reset need not wait out
    # the 0.3 s settle time (three control periods) that guards readings without one.
    rng = np.random.default_rng(3)
    periods: dict[bool, list[float]] = {True: [], False: []}
    for target in rng.uniform(-math.pi, math.pi, 4):
        for velocity in (True, False):
            sim = DClawSim()
            sim.reset(valve_angle=0.0)
            rig = ValveRig(sim, velocity=velocity)
            ok, message = rig.run(float(target))
            assert ok, message
            assert ("still" in message) == velocity
            assert rig.verdict_at is not None and rig.on_at is not None
            periods[velocity].append((rig.verdict_at - rig.on_at) / sim.dt)
    assert max(periods[True]) < 3.5  # vs about 5 by the settle time
    assert np.mean(periods[False]) - np.mean(periods[True]) >= 1.5


def test_a_valve_judged_still_stays_within_tolerance_under_the_motor():
    # What the velocity test relies on: once the motor has the valve inside the tolerance
    # and slower than still_speed, it keeps it there (the settle time's whole point).
    rng = np.random.default_rng(4)
    for target in rng.uniform(-math.pi, math.pi, 8):
        sim = DClawSim()
        sim.reset(valve_angle=float(rng.uniform(-math.pi, math.pi)))
        sim.set_valve_motor(True, float(target))
        judge = ValveSettle(float(target))  # the defaults the reward node uses
        verdict = None
        while verdict is None:
            sim.step()
            verdict = judge.observe(sim.time, sim.valve_angle(), sim.valve_velocity())
        assert verdict[0] and "still" in verdict[1], verdict
        for _ in range(400):  # a second under the motor, judged at every physics step
            mujoco.mj_step(sim.model, sim.data)
            assert wrapped_distance(sim.valve_angle(), float(target)) < judge.tolerance


def test_a_torque_off_lost_is_sent_again_and_the_reset_succeeds():
    sim = DClawSim()
    sim.reset(valve_angle=0.0)
    rig = ValveRig(sim)
    rig.off_failures = 2  # then the third try gets through
    ok, message = rig.run(1.0)
    assert ok, message
    assert rig.requests == [True, False, False, False]
    assert not sim.valve_motor_enabled


def test_a_valve_motor_that_stays_on_fails_the_reset():
    # The valve reached its start, but the motor never switched off: it would hold the
    # valve through the episode. A failed reset, so that the policy node asks again.
    sim = DClawSim()
    sim.reset(valve_angle=0.0)
    rig = ValveRig(sim)
    rig.off_failures = 10
    ok, message = rig.run(1.0)
    assert not ok and message.startswith("valve motor did not switch off: valve at")
    assert rig.requests == [True, False, False, False]  # three tries (the default)
    assert sim.valve_motor_enabled  # what the failure reports


def test_a_torque_on_without_a_reply_is_switched_off_again():
    # A reply that timed out: the motor may have switched on all the same.
    sim = DClawSim()
    sim.reset(valve_angle=0.0)
    rig = ValveRig(sim)
    rig.on_acks = False
    assert rig.run(1.0) == (False, "valve motor did not accept torque on")
    assert rig.requests == [True, False]
    assert not sim.valve_motor_enabled and not rig.torque


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


def test_inside_and_still_settles_at_once_else_the_settle_time_decides():
    judge = ValveSettle(target=0.0, tolerance=0.05, settle=0.3, still_speed=0.1)
    assert judge.observe(0.0, 0.5, 0.0) is None  # still, but not there
    assert judge.observe(0.1, 0.02, 0.8) is None  # there, but passing through
    ok, message = judge.observe(0.2, 0.01, -0.05)  # there and still
    assert ok and "still" in message
    # No velocity in the readings, or still_speed 0: only time inside counts.
    for speed, still_speed in ((None, 0.1), (0.0, 0.0)):
        judge = ValveSettle(target=0.0, settle=0.3, still_speed=still_speed)
        assert [judge.observe(0.1 * i, 0.0, speed) for i in range(3)] == [None] * 3
        ok, message = judge.observe(0.3, 0.0, speed)
        assert ok and "still" not in message


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
