"""Minitaur leg model: the ROBOTS.md formula, its inverse, the action range, kinematics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sac_ros.robots import minitaur as mt

legs4 = arrays(np.float64, 4, elements=st.floats(-1.0, 1.0))
actions8 = arrays(np.float64, 8, elements=st.floats(-1.0, 1.0))


def test_motor_order_and_directions_follow_robots_md():
    assert mt.MOTOR_NAMES == (
        "front_leftL", "front_leftR", "back_leftL", "back_leftR",
        "front_rightL", "front_rightR", "back_rightL", "back_rightR",
    )  # fmt: skip
    assert mt.JOINT_NAMES[0] == "motor_front_leftL_joint"
    assert mt.MOTOR_DIRECTIONS.tolist() == [-1, -1, -1, -1, 1, 1, 1, 1]
    assert mt.LIMITS.names == mt.JOINT_NAMES


def test_known_values_of_the_formula():
    swing = np.array([0.1, 0.2, 0.3, 0.4])
    extension = np.array([2.0, 1.5, 2.5, 1.8])
    m = mt.leg_to_motors(swing, extension)
    # Left legs (s = +1): E - S, E + S. Right legs (s = -1): E + S, E - S.
    np.testing.assert_allclose(m, [1.9, 2.1, 1.3, 1.7, 2.8, 2.2, 2.2, 1.4])


def test_standing_pose_is_all_motors_at_two():
    np.testing.assert_allclose(mt.standing_motor_angles(), np.full(8, 2.0))
    np.testing.assert_allclose(mt.action_to_motors(np.zeros(8)), np.full(8, 2.0))


@given(swing=legs4, extension=legs4)
def test_leg_model_round_trip(swing, extension):
    s, e = swing * 0.5, 2.0 + 0.6 * extension
    back_s, back_e = mt.motors_to_leg(mt.leg_to_motors(s, e))
    np.testing.assert_allclose(back_s, s, atol=1e-12)
    np.testing.assert_allclose(back_e, e, atol=1e-12)


@given(action=actions8)
def test_action_round_trip_and_limits(action):
    swing, extension = mt.action_to_leg(action)
    assert np.all(swing >= mt.SWING_RANGE[0] - 1e-12) and np.all(swing <= mt.SWING_RANGE[1] + 1e-12)
    np.testing.assert_allclose(mt.leg_to_action(swing, extension), action, atol=1e-12)
    assert mt.LIMITS.contains(mt.action_to_motors(action))


def test_action_extremes_map_to_range_ends_and_outside_values_clip():
    s, e = mt.action_to_leg(np.array([1, -1, 1, -1, 1, -1, 1, -1], dtype=float))
    np.testing.assert_allclose(s, [0.5, -0.5, 0.5, -0.5])
    np.testing.assert_allclose(e, [2.6, 1.4, 2.6, 1.4])
    s2, _ = mt.action_to_leg(np.full(8, 7.0))
    np.testing.assert_allclose(s2, np.full(4, 0.5))


def test_swing_moves_the_foot_forward_on_both_sides():
    """The side sign s_i makes a positive swing mean 'forward' for left and right legs."""
    m = mt.leg_to_motors(np.full(4, 0.3), np.full(4, 2.0))
    feet = mt.foot_positions(m)
    assert np.all(feet[:, 0] > 0.05), feet
    np.testing.assert_allclose(feet[:, 0], feet[0, 0])  # same for all four legs
    # Swapping the two motors of a leg reverses the swing, whatever the side.
    swapped = m.reshape(4, 2)[:, ::-1].ravel()
    assert np.all(mt.foot_positions(swapped)[:, 0] < -0.05)


def test_extension_lengthens_the_leg():
    short = mt.foot_positions(mt.leg_to_motors(np.zeros(4), np.full(4, 1.5)))
    long = mt.foot_positions(mt.leg_to_motors(np.zeros(4), np.full(4, 2.5)))
    assert np.all(long[:, 1] < short[:, 1] - 0.05)  # further below the hip
    np.testing.assert_allclose(mt.leg_length(math.pi), 0.31)  # straight leg: l1 + l2
    np.testing.assert_allclose(short[:, 0], 0.0, atol=1e-12)


@given(swing=legs4, extension=legs4)
def test_knee_angles_close_every_five_bar(swing, extension):
    m = mt.leg_to_motors(0.5 * swing, 2.0 + 0.6 * extension)
    psi = mt.upper_leg_angles(m)
    psi_lower = psi + mt.knee_angles(m)

    def direction(a):
        return np.stack([-np.sin(a), -np.cos(a)], axis=-1)

    feet = mt.UPPER_LEG_LENGTH * direction(psi) + mt.LOWER_LEG_LENGTH * direction(psi_lower)
    feet = feet.reshape(4, 2, 2)
    np.testing.assert_allclose(feet[:, 0], feet[:, 1], atol=1e-9)  # the loop closes
    np.testing.assert_allclose(feet[:, 0], mt.foot_positions(m), atol=1e-9)


def test_joint_axis_signs_mirror_between_motors_and_sides():
    signs = [mt.joint_axis_sign(k) for k in range(8)]
    assert signs == [1, -1, 1, -1, -1, 1, -1, 1]
    with pytest.raises(ValueError, match="motor index"):
        mt.joint_axis_sign(8)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="shape"):
        mt.leg_to_motors(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        mt.motors_to_leg(np.array([np.nan] + [2.0] * 7))
    with pytest.raises(ValueError, match="action"):
        mt.action_to_leg(np.zeros(9))
