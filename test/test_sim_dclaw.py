"""DClawSim: the MuJoCo D'Claw behind the gym environments, the sim node and the emulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_ros.robots import dclaw
from sac_ros.sim import DClawSim
from sac_ros.tasks import dclaw_valve


@pytest.fixture(scope="module")
def sim() -> DClawSim:
    return DClawSim()


def test_reset_places_valve_and_fingers_at_rest(sim):
    pose = dclaw.NOMINAL_POSE + 0.1
    sim.reset(1.0, pose)
    assert sim.time == 0.0
    assert sim.valve_angle() == pytest.approx(1.0)
    np.testing.assert_allclose(sim.joint_positions(), pose)
    np.testing.assert_allclose(sim.joint_velocities(), 0.0)
    np.testing.assert_allclose(sim.joint_targets(), pose)
    assert not sim.valve_motor_enabled
    sim.reset(4.0)  # wrapped to [-pi, pi); default pose: nominal
    assert sim.valve_angle() == pytest.approx(4.0 - 2 * math.pi)
    np.testing.assert_allclose(sim.joint_positions(), dclaw.NOMINAL_POSE)


def test_step_is_one_control_period_and_tracks_targets(sim):
    sim.reset(0.0)
    assert sim.dt == pytest.approx(0.1)
    target = dclaw.NOMINAL_POSE.copy()
    target[[0, 3, 6]] = 0.3  # sweep the three top joints sideways, in free air
    sim.set_targets(target)
    for _ in range(10):
        sim.step()
    assert sim.time == pytest.approx(1.0)
    np.testing.assert_allclose(sim.joint_positions()[[0, 3, 6]], 0.3, atol=0.05)


def test_targets_are_clipped_to_the_limits_and_bad_targets_rejected(sim):
    sim.reset(0.0)
    sim.set_targets(np.full(9, 10.0))
    np.testing.assert_allclose(sim.joint_targets(), dclaw.LIMITS.upper)
    with pytest.raises(ValueError, match="shape"):
        sim.set_targets(np.zeros(8))
    with pytest.raises(ValueError, match="finite"):
        sim.set_targets(np.full(9, np.nan))
    with pytest.raises(ValueError, match="finite"):
        sim.reset(float("nan"))


def test_currents_stand_in_for_effort(sim):
    sim.reset(0.0)
    sim.step()
    resting = np.abs(sim.joint_currents()).max()
    sim.set_targets(dclaw.NOMINAL_POSE + 0.2)
    sim.step()
    moving = sim.joint_currents()
    assert moving.shape == (9,)
    assert np.abs(moving).max() > resting


def test_valve_motor_drives_the_valve_then_lets_it_turn_freely(sim):
    sim.reset(0.0)
    sim.set_valve_motor(True, 2.5)
    assert sim.valve_motor_enabled
    for _ in range(30):
        sim.step()
    assert sim.valve_angle() == pytest.approx(2.5, abs=0.05)
    # The short way round: from 2.5 to -2.5 crosses pi, not zero.
    sim.set_valve_motor(True, -2.5)
    crossed_zero = False
    for _ in range(30):
        sim.step()
        crossed_zero |= abs(sim.valve_angle()) < 1.0
    assert sim.valve_angle() == pytest.approx(-2.5, abs=0.05) and not crossed_zero
    # Stiff like a servo's position loop: a quarter turn in two control periods, then
    # held to a few milliradians against the valve's friction.
    sim.set_valve_motor(True, math.pi / 2)
    for _ in range(2):
        sim.step()
    assert sim.valve_angle() == pytest.approx(math.pi / 2, abs=0.05)
    for _ in range(3):
        sim.step()
    assert sim.valve_angle() == pytest.approx(math.pi / 2, abs=2e-3)
    # Off: a spun valve coasts and stays where it stops, with no pull back.
    sim.set_valve_motor(False)
    sim.data.joint(dclaw.VALVE_JOINT).qvel[:] = 3.0
    before = sim.valve_angle()
    for _ in range(10):
        sim.step()
    moved = abs(math.remainder(sim.valve_angle() - before, 2 * math.pi))
    assert moved > 0.05
    assert abs(sim.valve_velocity()) < 0.05
    with pytest.raises(ValueError, match="finite"):
        sim.set_valve_motor(True, float("inf"))


def _sweep(sim: DClawSim, direction: float) -> float:
    """Lift the tips clear, move them to one side, lower them between the fins and sweep
    to the other side; return the valve's rotation."""

    def pose(side: float, mid: float, bottom: float) -> np.ndarray:
        return np.array([side, mid, bottom] * 3)

    start = sim.valve_angle()
    plan = [pose(-0.48 * direction, -1.0, 1.0)] * 6 + [pose(-0.48 * direction, 0.0, 0.0)] * 6
    plan += [pose(0.48 * direction, 0.0, 0.0)] * 6
    for target in plan:
        sim.set_targets(dclaw.LIMITS.safe_targets(target, sim.joint_positions(), sim.dt))
        sim.step()
    return math.remainder(sim.valve_angle() - start, 2 * math.pi)


@pytest.mark.parametrize("start", [-2.5, -1.0, 0.0, 1.5])
def test_fingers_can_turn_the_valve_both_ways(sim, start):
    sim.reset(start)
    assert _sweep(sim, +1.0) > 0.5  # positive top joints turn the valve counter-clockwise
    sim.reset(start)
    assert _sweep(sim, -1.0) < -0.5


def test_render_shows_the_peg_where_the_valve_points(sim):
    images = {}
    for angle in (0.0, math.pi):
        sim.reset(angle)
        image = sim.render()
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
        assert red.sum() >= 2, "the red peg is visible"
        images[angle] = np.argwhere(red)[:, 1].mean()  # mean column of the peg
    assert images[0.0] > 16 > images[math.pi]  # angle 0: the peg faces right
    big = sim.render(240, 240)
    assert big.shape == (240, 240, 3)


def test_a_divergence_mujoco_resets_by_itself_is_caught_and_the_clock_runs_on(
    tmp_path, monkeypatch
):
    """MuJoCo answers a blown-up state by resetting the data (its clock included) and
    stepping on: the sim node's robot must report it, and stamps must never go back."""
    from sac_ros.sim.robots import DClawSimRobot

    monkeypatch.chdir(tmp_path)  # MuJoCo writes its warning to MUJOCO_LOG.TXT here
    robot = DClawSimRobot(seed=0)
    for _ in range(3):
        robot.step()
    before = robot.time
    robot.sim.data.qvel[:] = 1e200
    with pytest.raises(FloatingPointError):
        robot.step()
    robot.recover()
    assert robot.time >= before + robot.dt - 1e-9
    robot.step()
    assert robot.time >= before + 2 * robot.dt - 1e-9


def _home(sim: DClawSim, goal_of, steps: int = 20) -> int | None:
    """Steps until the claw rests at its start pose, steered by ``goal_of(q, qd)`` through
    the rate limit as the policy node does; None if not within ``steps``."""
    for k in range(steps):
        q, qd = sim.joint_positions(), sim.joint_velocities()
        if dclaw_valve.claw_at_start(q, qd):
            return k
        sim.set_targets(dclaw.LIMITS.safe_targets(goal_of(q, qd), q, dclaw_valve.CONTROL_PERIOD))
        sim.step()
    return None


@pytest.mark.parametrize("valve", [math.pi / 2, math.pi / 2 + math.pi / 3])
def test_a_finger_caught_on_a_spoke_is_brought_home_sideways(sim, valve):
    """FF's tip left pressed onto the valve near the hub. With a spoke under it, lifting
    straight drives the tip into the spoke and it stays; ClawHoming swings it off first.
    With no spoke under it, lifting straight works too."""
    caught = dclaw.NOMINAL_POSE.copy()
    caught[1:3] = (-0.5, 1.2)
    spoke_under = valve == math.pi / 2
    sim.reset(valve, caught)
    straight = _home(sim, lambda q, qd: dclaw.NOMINAL_POSE)
    assert (straight is None) == spoke_under, straight
    sim.reset(valve, caught)
    homing = dclaw_valve.ClawHoming()
    steps = _home(sim, homing.goal)
    assert steps is not None and steps <= 12, steps
    if spoke_under:
        assert homing.unhooks[0] >= 1
