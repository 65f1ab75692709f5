"""D'Claw valve task: ROBEL's reward terms, wrapped errors, observations, action mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sac_ros.robots import dclaw
from sac_ros.tasks import dclaw_valve as task

angles = st.floats(-20.0, 20.0)


@given(angle=angles, target=angles)
def test_angle_error_is_wrapped_and_consistent(angle, target):
    err = task.angle_error(angle, target)
    assert -math.pi <= err < math.pi
    # target - angle up to whole turns
    turns = (target - angle - err) / (2 * math.pi)
    assert turns == pytest.approx(round(turns), abs=1e-9)


def test_angle_error_known_values():
    assert task.angle_error(0.0) == 0.0
    assert task.angle_error(0.5) == pytest.approx(-0.5)
    assert task.angle_error(2 * math.pi - 0.2) == pytest.approx(0.2)
    assert task.angle_error(-3.0, target=3.0) == pytest.approx(6.0 - 2 * math.pi)


def test_success_threshold():
    assert task.is_success(0.099) and task.is_success(-0.099)
    assert not task.is_success(0.101)
    assert task.is_success(2 * math.pi + 0.05)


def test_reward_terms_follow_robel():
    q = task.NOMINAL_POSE.copy()
    qd = np.zeros(9)
    value, terms = task.reward(0.05, q, qd)
    # |err| = 0.05: -5 * 0.05 + 10 + 50, no pose or velocity cost
    assert value == pytest.approx(-0.25 + 60.0)
    assert value == pytest.approx(sum(terms.values()))

    q2 = q + np.array([0.3, 0, 0, 0, 0.4, 0, 0, 0, 0])
    qd2 = np.array([0.4, -0.6, 0, 0, 0, 0, 0, 0.8, 0])  # 0.4 is under the 0.5 threshold
    value2, terms2 = task.reward(1.0, q2, qd2)
    assert terms2["target_dist_cost"] == pytest.approx(-5.0)
    assert terms2["pose_diff_cost"] == pytest.approx(-0.5)
    assert terms2["joint_vel_cost"] == pytest.approx(-1.0)  # norm of (-0.6, 0.8)
    assert terms2["bonus_small"] == 0 and terms2["bonus_big"] == 0
    assert value2 == pytest.approx(-6.5)
    _, near = task.reward(0.2, q, qd)
    assert near["bonus_small"] == 10 and near["bonus_big"] == 0


def test_reward_decreases_with_error():
    q, qd = task.NOMINAL_POSE, np.zeros(9)
    values = [task.reward(a, q, qd)[0] for a in (0.0, 0.2, 0.5, 1.5, 3.0)]
    assert values == sorted(values, reverse=True)


def test_initial_angles_are_uniform_over_the_circle():
    rng = np.random.default_rng(1)
    samples = np.array([task.sample_initial_angle(rng) for _ in range(4000)])
    assert samples.min() >= -math.pi and samples.max() < math.pi
    counts, _ = np.histogram(samples, bins=8, range=(-math.pi, math.pi))
    assert counts.min() > 400  # 500 expected per bin
    again = np.random.default_rng(1)
    assert task.sample_initial_angle(again) == samples[0]


def test_state_and_pixel_observations():
    q = np.arange(9) * 0.1
    qd = -np.arange(9) * 0.01
    obs = task.state_observation(q, qd, math.pi / 2)
    assert obs.shape == (task.STATE_DIM,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:9], q, rtol=1e-6)
    np.testing.assert_allclose(obs[9:18], qd, rtol=1e-6)
    np.testing.assert_allclose(obs[18:], [0.0, 1.0], atol=1e-7)

    image = np.full(task.IMAGE_SHAPE, 7, np.uint8)
    pix = task.pixel_observation(image, q, qd)
    assert set(pix) == {"image", "proprio"}
    assert pix["proprio"].shape == (task.PROPRIO_DIM,)
    np.testing.assert_array_equal(pix["image"], image)
    with pytest.raises(ValueError, match="uint8"):
        task.pixel_observation(image.astype(np.float32), q, qd)
    with pytest.raises(ValueError, match="uint8"):
        task.pixel_observation(np.zeros((64, 64, 3), np.uint8), q, qd)


def test_action_to_targets_is_absolute_and_rate_limited():
    here = dclaw.NOMINAL_POSE.copy()
    step = dclaw.MAX_VELOCITY * task.CONTROL_PERIOD
    up = task.action_to_targets(np.ones(9), here)
    np.testing.assert_allclose(up, np.minimum(dclaw.LIMITS.upper, here + step))
    # Near the goal the action is an absolute target inside the limits.
    goal = dclaw.LIMITS.center + 0.5 * (dclaw.LIMITS.upper - dclaw.LIMITS.lower) * 0.3
    near = goal - 0.05
    np.testing.assert_allclose(task.action_to_targets(np.full(9, 0.3), near), goal)
    # Out-of-range actions clip; NaN holds the current position.
    clipped = task.action_to_targets(np.full(9, 5.0), near)
    np.testing.assert_allclose(clipped, task.action_to_targets(np.ones(9), near))
    held = task.action_to_targets(np.array([np.nan] + [0.0] * 8), here)
    assert held[0] == here[0]


@pytest.mark.parametrize(
    "call",
    [
        lambda: task.reward(0.0, np.zeros(8), np.zeros(9)),
        lambda: task.reward(float("nan"), np.zeros(9), np.zeros(9)),
        lambda: task.state_observation(np.zeros(9), np.full(9, np.inf), 0.0),
        lambda: task.angle_error(float("inf")),
        lambda: task.action_to_targets(np.zeros(3), np.zeros(9)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_homing_swings_a_stalled_finger_sideways_then_lifts_it_and_alternates_sides():
    homing = task.ClawHoming()
    home = dclaw.NOMINAL_POSE
    moving = home.copy()
    moving[1] += 0.5  # FF's middle joint off the pose...
    fast = np.zeros(9)
    fast[1] = -2.0  # ...but on its way: straight home
    np.testing.assert_array_equal(homing.goal(moving, fast), home)
    still = np.zeros(9)
    goals = [homing.goal(moving, still) for _ in range(task.STALL_STEPS + task.UNHOOK_STEPS)]
    np.testing.assert_array_equal(goals[0], home)  # one stalled step is not yet a stall
    first = goals[task.STALL_STEPS - 1 :]
    for g in first[:3]:  # sideways at the height it is; the other fingers go home
        np.testing.assert_array_equal(g[:3], [task.UNHOOK_ABDUCTION, moving[1], moving[2]])
        np.testing.assert_array_equal(g[3:], home[3:])
    np.testing.assert_array_equal(first[3][:3], [task.UNHOOK_ABDUCTION, home[1], home[2]])
    np.testing.assert_array_equal(first[4], home)  # back
    assert homing.unhooks.tolist() == [1, 0, 0]
    again = [homing.goal(moving, still) for _ in range(task.STALL_STEPS + 1)]
    assert again[-1][0] == -task.UNHOOK_ABDUCTION  # still caught: the other side
    homing.reset()
    assert homing.unhooks.tolist() == [0, 0, 0]
    np.testing.assert_array_equal(homing.goal(home, still), home)  # home: nothing to do
