"""MinitaurSim: standing, five-bar closure, motor tracking (position servos and torque
motors), IMU, mocap pose, a trot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_ros.hardware.minitaur_pd import PDGains, pd_torques
from sac_ros.robots import minitaur
from sac_ros.sim import MinitaurSim
from sac_ros.tasks import minitaur_walk


@pytest.fixture(scope="module")
def sim() -> MinitaurSim:
    return MinitaurSim()


def _feet_gap(sim: MinitaurSim) -> float:
    gaps = [
        np.linalg.norm(sim.data.site(f"foot_{leg}L").xpos - sim.data.site(f"foot_{leg}R").xpos)
        for leg in minitaur.LEG_NAMES
    ]
    return float(max(gaps))


def test_reset_stands_on_the_floor_with_closed_legs(sim):
    sim.reset()
    assert sim.time == 0.0
    np.testing.assert_allclose(sim.motor_angles(), 2.0)
    position, quaternion = sim.base_pose()
    expected_height = minitaur.leg_length(2.0) + minitaur.FOOT_RADIUS
    assert position[2] == pytest.approx(expected_height)
    np.testing.assert_allclose(quaternion, [1, 0, 0, 0])
    assert _feet_gap(sim) < 1e-6
    np.testing.assert_allclose(sim.knee_angles(), minitaur.knee_angles(sim.motor_angles()))


def test_standing_is_stable_and_the_imu_reads_gravity(sim):
    sim.reset()
    assert sim.dt == pytest.approx(0.02)
    for _ in range(50):  # 1 s
        sim.step()
    assert sim.time == pytest.approx(1.0)
    position, quaternion = sim.base_pose()
    assert 0.15 < position[2] < 0.25
    assert not minitaur_walk.is_terminated(quaternion)
    assert _feet_gap(sim) < 2e-3  # the connect constraints hold the five-bars closed
    imu_quat, gyro, accel = sim.imu()
    np.testing.assert_allclose(imu_quat, quaternion, atol=1e-6)
    np.testing.assert_allclose(gyro, 0.0, atol=0.05)
    np.testing.assert_allclose(accel, [0, 0, 9.81], atol=0.2)
    np.testing.assert_allclose(sim.motor_angles(), 2.0, atol=0.15)  # sags a little


def test_motors_track_targets_and_targets_are_clipped(sim):
    sim.reset()
    for _ in range(25):
        sim.step()
    height = sim.base_pose()[0][2]
    # A taller, wider stance: front feet forward, hind feet back, longer legs.
    goal = minitaur.leg_to_motors(np.array([0.15, -0.15, 0.15, -0.15]), np.full(4, 2.3))
    sim.set_targets(goal)
    for _ in range(25):
        sim.step()
    np.testing.assert_allclose(sim.motor_angles(), goal, atol=0.2)  # PD sag under load
    swing, _ = minitaur.motors_to_leg(sim.motor_angles())
    assert np.all(np.sign(swing) == [1, -1, 1, -1])
    assert sim.base_pose()[0][2] > height + 0.02
    sim.set_targets(np.full(8, 9.0))
    np.testing.assert_allclose(sim.data.ctrl, minitaur.LIMITS.upper)
    assert np.all(np.abs(sim.motor_torques()) <= minitaur.TORQUE_LIMIT + 1e-9)
    with pytest.raises(ValueError, match="shape"):
        sim.set_targets(np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        sim.set_targets(np.full(8, np.nan))


def _settle_with_pd(sim: MinitaurSim, target: np.ndarray, steps: int) -> float:
    """The driver's PD law on the torque motors, one control period late as over DDS (the
    torque computed from a reading acts during the step after it); the largest |torque|."""
    gains, largest = PDGains(), 0.0
    reading = (sim.motor_angles(), sim.motor_velocities())
    for _ in range(steps):
        tau = pd_torques(gains, target, *reading)
        reading = (sim.motor_angles(), sim.motor_velocities())
        sim.set_torques(tau)
        sim.step()
        np.testing.assert_allclose(sim.motor_torques(), tau)  # the motors apply them as sent
        largest = max(largest, float(np.max(np.abs(tau))))
    return largest


def test_torque_motors_with_the_drivers_pd_track_a_target():
    sim = MinitaurSim(control_rate_hz=250.0)  # the PD needs a short loop: 4 ms
    sim.use("effort")
    sim.reset()
    assert sim.command_interface == "effort"
    np.testing.assert_array_equal(sim.data.ctrl, 0.0)  # a reset starts from zero torque
    crouch = minitaur.leg_to_motors(np.zeros(4), np.full(4, 1.4))
    for target, sag in ((crouch, 0.1), (minitaur.standing_motor_angles(), 0.13)):
        largest = _settle_with_pd(sim, target, steps=250)  # 1 s
        # The same sag under the body's weight as the position servos (same kp).
        np.testing.assert_allclose(sim.motor_angles(), target, atol=sag)
        np.testing.assert_allclose(sim.motor_velocities(), 0.0, atol=0.2)  # no ringing
        assert largest <= minitaur.TORQUE_LIMIT
    assert sim.base_pose()[0][2] > 0.2  # it stood up from the crouch on its own torques
    assert not minitaur_walk.is_terminated(sim.base_pose()[1])


def test_torque_commands_are_clipped_and_the_interfaces_do_not_mix():
    sim = MinitaurSim()
    sim.use("effort", max_torque=2.0)
    sim.set_torques(np.array([5.0, -5.0, 1.0, 0, 0, 0, 0, 0]))
    np.testing.assert_allclose(sim.data.ctrl[:3], [2.0, -2.0, 1.0])
    sim.step()
    np.testing.assert_allclose(sim.motor_torques()[:3], [2.0, -2.0, 1.0])
    with pytest.raises(ValueError, match="position interface"):
        sim.set_targets(np.full(8, 2.0))
    with pytest.raises(ValueError, match="finite"):
        sim.set_torques(np.full(8, np.nan))
    sim.use("position")  # back to the servos, holding where the legs are
    np.testing.assert_allclose(sim.data.ctrl, minitaur.LIMITS.clip(sim.motor_angles()))
    sim.reset()
    sim.set_targets(np.full(8, 2.3))
    for _ in range(25):
        sim.step()
    np.testing.assert_allclose(sim.motor_angles(), 2.3, atol=0.2)
    with pytest.raises(ValueError, match="effort interface"):
        sim.set_torques(np.zeros(8))
    with pytest.raises(ValueError, match="interface must be"):
        sim.use("velocity")


def test_reset_with_pose_and_yaw(sim):
    motors = minitaur.leg_to_motors(np.array([0.1, -0.1, 0.0, 0.05]), np.full(4, 1.8))
    sim.reset(motors, position=(1.0, -2.0), yaw=math.pi / 2)
    position, quaternion = sim.base_pose()
    np.testing.assert_allclose(position[:2], [1.0, -2.0])
    np.testing.assert_allclose(quaternion, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(sim.motor_angles(), motors)
    assert _feet_gap(sim) < 1e-6


def test_an_open_loop_trot_walks_forward(sim):
    """The model can walk: a hand-written trot (diagonal legs in phase) moves it along +x."""
    sim.reset()
    phases = np.array([0.0, math.pi, math.pi, 0.0])  # FL+BR, BL+FR
    for _ in range(100):  # 2 s at 3 Hz
        phase = 2 * math.pi * 3.0 * sim.time + phases
        swing = 0.4 * np.sin(phase)
        extension = 2.1 - 0.4 * np.maximum(0.0, np.cos(phase))  # lift while swinging ahead
        sim.set_targets(minitaur.leg_to_motors(swing, extension))
        sim.step()
    position, quaternion = sim.base_pose()
    assert position[0] > 0.5
    assert not minitaur_walk.is_terminated(quaternion)


def test_render(sim):
    sim.reset()
    image = sim.render(160, 120)
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert image.std() > 5


def test_the_imu_reads_the_same_instant_as_the_base_pose_while_moving(sim):
    sim.reset()
    sim.set_targets(np.array([2.6, 1.4] * 4))  # kick the legs: the body rocks
    for _ in range(10):
        sim.step()
        _, quaternion = sim.base_pose()
        imu_quat, _, _ = sim.imu()
        sign = 1.0 if float(np.dot(imu_quat, quaternion)) >= 0 else -1.0
        np.testing.assert_allclose(sign * imu_quat, quaternion, atol=1e-9)
