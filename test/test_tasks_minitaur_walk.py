"""Minitaur walking task: orientation, history layout, reward terms, termination, resets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sac_ros.robots import minitaur
from sac_ros.tasks import minitaur_walk as task


def quat_about(axis: str, angle: float) -> np.ndarray:
    q = np.zeros(4)
    q[0] = math.cos(angle / 2)
    q["xyz".index(axis) + 1] = math.sin(angle / 2)
    return q


def test_dimensions():
    assert task.OBS_DIM == 12 and task.ACTION_DIM == 8
    assert task.STATE_DIM == 6 * 12 + 5 * 8 == 112


@pytest.mark.parametrize("angle", [-0.4, -0.1, 0.0, 0.25])
def test_roll_pitch_and_up_vector(angle):
    roll, pitch = task.roll_pitch(quat_about("x", angle))
    assert roll == pytest.approx(angle) and pitch == pytest.approx(0.0, abs=1e-12)
    roll, pitch = task.roll_pitch(quat_about("y", angle))
    assert pitch == pytest.approx(angle) and roll == pytest.approx(0.0, abs=1e-12)
    assert task.up_z(quat_about("x", angle)) == pytest.approx(math.cos(angle))
    # Yaw changes neither roll, pitch nor the up vector.
    assert task.roll_pitch(quat_about("z", 1.2)) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert task.up_z(quat_about("z", 1.2)) == pytest.approx(1.0)


def test_termination():
    assert not task.is_terminated(np.array([1.0, 0, 0, 0]))
    assert not task.is_terminated(quat_about("x", 0.29))
    assert task.is_terminated(quat_about("x", 0.31))
    assert task.is_terminated(quat_about("y", -0.31))
    assert task.is_terminated(quat_about("x", math.pi))  # upside down


def test_history_layout_newest_first():
    history = task.History()
    obs0 = np.full(12, 1.0)
    state = history.reset(obs0)
    assert state.shape == (task.STATE_DIM,)
    np.testing.assert_array_equal(state[:72], np.tile(obs0, 6))
    np.testing.assert_array_equal(state[72:], np.zeros(40))
    for t in range(1, 8):
        state = history.push(np.full(8, 0.1 * t), np.full(12, float(t + 1)))
    obs = state[:72].reshape(6, 12)
    acts = state[72:].reshape(5, 8)
    np.testing.assert_array_equal(obs[:, 0], [8, 7, 6, 5, 4, 3])  # o_t, o_{t-1}, ...
    np.testing.assert_allclose(acts[:, 0], [0.7, 0.6, 0.5, 0.4, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(history.state(), state)
    with pytest.raises(ValueError, match="observation"):
        history.push(np.zeros(8), np.zeros(11))


def test_imu_observation_layout():
    m = minitaur.standing_motor_angles()
    obs = task.imu_observation(m, quat_about("y", 0.1), np.array([0.3, -0.2, 5.0]))
    np.testing.assert_allclose(obs[:8], m)
    np.testing.assert_allclose(obs[8:], [0.0, 0.1, 0.3, -0.2], atol=1e-6)


def test_forward_velocity_from_timestamped_positions():
    v = task.forward_velocity([0, 0, 0.2], [0.01, 0.5, 0.2], 1.00, 1.02)
    assert v == pytest.approx(0.5)
    with pytest.raises(ValueError, match="timestamps"):
        task.forward_velocity([0, 0, 0], [0.1, 0, 0], 1.0, 1.0)


def test_acceleration_penalty_from_the_last_three_actions():
    still = np.zeros((3, 8))
    assert task.target_acceleration(still) == 0.0
    ramp = np.stack([np.full(8, 0.0), np.full(8, 0.1), np.full(8, 0.2)])
    ramp[:, :4] = 0.0  # extensions ramp linearly: constant velocity, no acceleration
    assert task.target_acceleration(ramp) == pytest.approx(0.0, abs=1e-6)
    kick = np.zeros((3, 8))
    kick[1, 4:] = 1.0  # extension up and back: second difference -2 * 0.6 rad
    expected = 2 * 0.6 / task.CONTROL_PERIOD**2
    assert task.target_acceleration(kick) == pytest.approx(expected)


def test_front_leg_penalty_only_for_front_feet_behind_the_hip():
    forward = np.zeros(8)
    forward[:4] = 1.0
    assert task.front_feet_under_body(forward) == 0.0
    back = np.zeros(8)
    back[[1, 3]] = -1.0  # hind legs swung back: no penalty
    assert task.front_feet_under_body(back) == 0.0
    front_back = np.zeros(8)
    front_back[[0, 2]] = -1.0
    expected = 2 * minitaur.leg_length(2.0) * math.sin(0.5)
    assert task.front_feet_under_body(front_back) == pytest.approx(expected)


def test_reward_sums_its_terms():
    actions = np.zeros((3, 8))
    actions[2, [0, 2]] = -1.0
    value, terms = task.reward([0, 0, 0.2], [0.01, 0, 0.2], 0.0, 0.02, actions, pitch=0.2)
    assert terms["forward_velocity"] == pytest.approx(0.5)
    assert terms["pitch_cost"] == pytest.approx(-task.W_PITCH * 0.04)
    assert terms["front_leg_cost"] < 0 and terms["acceleration_cost"] < 0
    assert value == pytest.approx(sum(terms.values()))
    smooth, _ = task.reward([0, 0, 0.2], [0.01, 0, 0.2], 0.0, 0.02, np.zeros((3, 8)), pitch=0.0)
    assert smooth == pytest.approx(0.5)


def test_reset_distribution_is_near_standing():
    rng = np.random.default_rng(0)
    poses = np.array([task.sample_reset_pose(rng) for _ in range(200)])
    swing, extension = zip(*(minitaur.motors_to_leg(p) for p in poses), strict=True)
    assert np.max(np.abs(swing)) <= task.RESET_NOISE + 1e-12
    assert np.max(np.abs(np.array(extension) - 2.0)) <= task.RESET_NOISE + 1e-12
    assert np.std(poses) > 0.01  # it is random
    np.testing.assert_array_equal(
        task.sample_reset_pose(np.random.default_rng(3)),
        task.sample_reset_pose(np.random.default_rng(3)),
    )
    np.testing.assert_allclose(task.sample_reset_pose(rng, noise=0.0), np.full(8, 2.0))
