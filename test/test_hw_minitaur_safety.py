"""Minitaur safety core: limits, rate limit, fall detection, watchdog, e-stop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_ros.hardware.minitaur_pd import MotorPD, PDGains
from sac_ros.hardware.minitaur_safety import (
    MinitaurSafety,
    MinitaurSafetyConfig,
    SafetyMode,
    default_config,
    roll_pitch,
)
from sac_ros.robots import minitaur

DT = 0.01
UPRIGHT = np.array([0.0, 0.0, 0.0, 1.0])
STAND = np.full(8, 2.0)


def quat_about(axis: str, angle: float) -> np.ndarray:
    q = np.zeros(4)
    q["xyz".index(axis)] = math.sin(angle / 2)
    q[3] = math.cos(angle / 2)
    return q


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (x, y, z, w) quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])  # fmt: skip


def matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@settings(max_examples=60)
@given(st.floats(-1.4, 1.4), st.floats(-1.4, 1.4), st.floats(-3, 3))
def test_roll_pitch_from_quaternion(roll, pitch, yaw):
    q = multiply(quat_about("z", yaw), multiply(quat_about("y", pitch), quat_about("x", roll)))
    r = matrix(q)  # independent: Euler angles read off the rotation matrix
    got_roll, got_pitch = roll_pitch(q)
    assert got_roll == pytest.approx(math.atan2(r[2, 1], r[2, 2]), abs=1e-9)
    assert got_pitch == pytest.approx(-math.asin(r[2, 0]), abs=1e-9)
    assert got_roll == pytest.approx(roll, abs=1e-9)
    assert got_pitch == pytest.approx(pitch, abs=1e-9)


def make(**overrides) -> MinitaurSafety:
    return MinitaurSafety(default_config(control_period_s=DT, **overrides))


def test_targets_clipped_and_rate_limited():
    safety = make()
    assert safety.command(np.array([9.0, -9.0, 2.5, 1.0, 3.0, 0.0, 2.0, 2.0]), now=0.0)
    out = safety.update(STAND, UPRIGHT, now=0.001)
    assert out.mode is SafetyMode.RUNNING
    step = minitaur.MAX_VELOCITY * DT
    assert np.all(np.abs(out.targets - STAND) <= step + 1e-12)
    measured = STAND.copy()
    for k in range(200):
        out = safety.update(measured, UPRIGHT, now=0.001 * (k + 2))
        assert np.all(out.targets >= 0.5) and np.all(out.targets <= 3.1)
        assert np.all(np.abs(out.targets - measured) <= step + 1e-12)
        measured = out.targets
    expected = np.clip([9.0, -9.0, 2.5, 1.0, 3.0, 0.0, 2.0, 2.0], 0.5, 3.1)
    assert np.allclose(measured, expected)


def test_bad_commands_raise():
    safety = make()
    with pytest.raises(ValueError, match="8 motor targets"):
        safety.command(np.zeros(7), now=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        safety.command(np.array([math.nan] + [2.0] * 7), now=0.0)
    with pytest.raises(ValueError, match="8 measured"):
        safety.update(np.zeros(3), UPRIGHT, now=0.0)
    with pytest.raises(ValueError, match="4 components"):
        roll_pitch(np.zeros(3))
    with pytest.raises(ValueError, match="crouch_pose"):
        MinitaurSafetyConfig(limits=minitaur.LIMITS, crouch_pose=np.zeros(8))
    with pytest.raises(ValueError, match="watchdog_action"):
        default_config(watchdog_action="shrug")


def test_fall_latches_crouch_with_slow_ramp():
    safety = make(fall_threshold_rad=0.5, crouch_velocity=0.5)
    safety.command(STAND, now=0.0)
    tilted = quat_about("x", 0.7)
    out = safety.update(STAND, tilted, now=0.005)
    assert out.mode is SafetyMode.FALLEN and "roll 0.70" in out.reason
    assert out.roll == pytest.approx(0.7)
    crouch = np.full(8, minitaur.EXTENSION_RANGE[0])
    # The crouch ramps from the last goal at the crouch speed (over the time since it),
    # and never leads the measured angles by more than one period at the velocity limit.
    measured, previous, t_prev = STAND.copy(), out.targets, 0.005
    for k in range(300):
        now = 0.01 + k * DT
        out = safety.update(measured, UPRIGHT, now=now)  # upright again: still fallen
        assert out.mode is SafetyMode.FALLEN
        assert np.all(np.abs(out.targets - previous) <= 0.5 * (now - t_prev) + 1e-12)
        lead = minitaur.LIMITS.max_velocity * safety.config.control_period_s
        assert np.all(np.abs(out.targets - measured) <= lead + 1e-12)
        measured, previous, t_prev = out.targets, out.targets, now
    assert np.allclose(measured, crouch)
    assert not safety.command(STAND, now=4.0)
    with pytest.raises(ValueError, match="still tilted"):
        safety.reset_fall(quat_about("y", 0.9))
    safety.reset_fall(UPRIGHT)
    assert safety.mode is SafetyMode.IDLE
    assert safety.command(STAND, now=4.1)


def test_a_late_tick_with_lagging_readings_never_steps_a_crouch_back_up():
    safety = make(fall_threshold_rad=0.5, crouch_velocity=0.5)
    safety.command(STAND, now=0.0)
    goals, readings, now = [], [STAND.copy()], 0.0
    safety.update(STAND, quat_about("x", 0.7), now=now)
    for k in range(60):
        now += DT * (2.5 if k % 7 == 3 else 1.0)  # a loaded computer: some ticks late
        lagging = readings[max(0, len(readings) - 3)]  # readings two goals behind
        out = safety.update(lagging, UPRIGHT, now=now)
        goals.append(out.targets)
        readings.append(out.targets)
    steps = np.diff(np.array(goals), axis=0)
    assert np.all(steps <= 1e-12)  # the crouch only goes down
    # After a real pause (nothing sent for many periods) the ramp starts from the readings.
    out = safety.update(STAND, UPRIGHT, now=now + 10 * DT)
    assert np.all(np.abs(out.targets - STAND) <= 0.5 * DT + 1e-12)


def test_pitch_fall_and_invalid_imu():
    safety = make(fall_threshold_rad=0.5)
    safety.command(STAND, now=0.0)
    assert safety.update(STAND, quat_about("y", -0.6), now=0.001).mode is SafetyMode.FALLEN
    other = make()
    other.command(STAND, now=0.0)
    out = other.update(STAND, np.array([math.nan, 0, 0, 1]), now=0.001)
    assert out.mode is SafetyMode.FALLEN and "invalid IMU" in out.reason
    assert out.targets is not None


@pytest.mark.parametrize(
    ("action", "mode"),
    [("hold", SafetyMode.HOLDING), ("crouch", SafetyMode.CROUCHING),
     ("disable", SafetyMode.DISABLED)],
)  # fmt: skip
def test_watchdog(action, mode):
    safety = make(watchdog_timeout_s=0.1, watchdog_action=action)
    safety.command(np.full(8, 2.4), now=0.0)
    assert safety.update(STAND, UPRIGHT, now=0.05).mode is SafetyMode.RUNNING
    out = safety.update(STAND, UPRIGHT, now=0.2)
    assert out.mode is mode and "no command" in out.reason
    if action == "hold":
        assert np.allclose(out.targets, STAND)
    elif action == "crouch":
        assert np.all(out.targets < STAND)
    else:
        assert out.targets is None
    assert safety.command(STAND, now=0.3)
    assert safety.update(STAND, UPRIGHT, now=0.31).mode is SafetyMode.RUNNING


def test_estop_turns_motors_off_until_released():
    safety = make()
    safety.command(STAND, now=0.0)
    safety.estop("button")
    out = safety.update(STAND, quat_about("x", 1.0), now=0.001)
    assert out.targets is None and out.mode is SafetyMode.ESTOP and out.reason == "button"
    assert not safety.command(STAND, now=0.002)
    safety.release_estop()
    out = safety.update(STAND, UPRIGHT, now=0.003)
    assert out.mode is SafetyMode.IDLE and np.allclose(out.targets, STAND)
    assert safety.diagnostics()["mode"] == "idle"


@pytest.mark.parametrize(
    "orientation",
    [quat_about("x", 0.8), np.full(4, np.nan)],  # a fall; an IMU gone quiet (the driver's NaN)
    ids=["tilted", "no-imu"],
)
def test_motors_switched_off_by_the_watchdog_stay_off_through_a_fall(orientation):
    safety = make(watchdog_timeout_s=0.1, watchdog_action="disable")
    safety.command(STAND, now=0.0)
    assert safety.update(STAND, UPRIGHT, now=0.2).targets is None  # disabled
    out = safety.update(STAND, orientation, now=0.21)  # the limp robot slumps over
    assert out.mode is SafetyMode.FALLEN and out.targets is None
    assert not safety.command(STAND, now=0.22)  # latched: commands still ignored
    assert safety.update(STAND, orientation, now=0.23).targets is None
    safety.reset_fall(UPRIGHT)  # a person stood it up: idle holds where it stands
    out = safety.update(STAND, UPRIGHT, now=0.3)
    assert out.mode is SafetyMode.IDLE and np.allclose(out.targets, STAND)


def test_idle_holds_the_pose_it_began_with_while_a_leg_sags():
    safety = make()
    safety.command(STAND, now=0.0)
    safety.estop("button")
    safety.release_estop()
    sag = STAND.copy()
    for k in range(15):  # from where idle began, one leg sinks 0.01 rad per tick (less
        # than the goal's lead bound, 0.2 rad)
        sag[0] = STAND[0] - 0.01 * k
        out = safety.update(sag, UPRIGHT, now=0.01 * k)
        assert out.mode is SafetyMode.IDLE
        assert out.targets[0] == pytest.approx(STAND[0])  # the goal does not follow it
        assert np.allclose(out.targets[1:], STAND[1:])


def hold_against_a_load(safety: MinitaurSafety, t0: float, seconds: float = 2.0) -> np.ndarray:
    """The motor angles after ``seconds`` of the safety core's targets through the
    effort-mode PD of the Minitaur driver, closing the loop at 1 kHz on legs that carry a
    constant load (part of the body's weight), the safety ticking at its own period."""
    load, inertia = -1.0, 0.01  # N m pulling each motor angle down; kg m^2
    pd = MotorPD(PDGains(), max_age=0.05)
    q, qd, targets = STAND.copy(), np.zeros(8), None
    tick = round(safety.config.control_period_s / 0.001)
    for k in range(int(seconds / 0.001)):
        t = t0 + k * 0.001
        pd.reading(q, qd, t)
        if k % tick == 0:
            targets = safety.update(q, UPRIGHT, t).targets
        qd = qd + (pd.torques(targets, t) + load) / inertia * 0.001
        q = np.clip(q + qd * 0.001, 0.0, 3.5)
    return q


def test_idle_against_a_load_holds_like_the_watchdog_hold():
    watchdog = make(watchdog_timeout_s=0.05, watchdog_action="hold")
    watchdog.command(STAND, now=0.0)
    watchdog.update(STAND, UPRIGHT, now=0.1)
    assert watchdog.mode is SafetyMode.HOLDING
    idle = make()
    assert idle.mode is SafetyMode.IDLE  # before any command
    sag_hold = STAND[0] - hold_against_a_load(watchdog, 0.1)[0]
    sag_idle = STAND[0] - hold_against_a_load(idle, 0.0)[0]
    assert sag_idle == pytest.approx(sag_hold, abs=0.02)  # kp's static error, the same
    assert sag_idle < 0.3


@pytest.mark.parametrize("rate_hz", [100, 500, 1000])
def test_a_faster_safety_tick_holds_a_load_as_firmly(rate_hz):
    """The goal's lead over the measured angle is what the PD pushes with; one tick's
    travel at the velocity limit shrinks with the tick, min_lead_rad does not."""
    config = default_config(
        control_period_s=1.0 / rate_hz, watchdog_timeout_s=0.05, watchdog_action="hold"
    )
    safety = MinitaurSafety(config)
    safety.command(STAND, now=0.0)
    safety.update(STAND, UPRIGHT, now=0.1)
    assert safety.mode is SafetyMode.HOLDING
    sag = STAND - hold_against_a_load(safety, 0.1)
    assert np.all(sag < 0.2), sag  # the static error of kp = 8.2 N m/rad under 1 N m: 0.12
