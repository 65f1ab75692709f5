"""The safety clamp every motor path goes through."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_ros.robots import dclaw
from sac_ros.robots.limits import JointLimits

LIM = dclaw.LIMITS
DT = 1.0 / dclaw.CONTROL_RATE_HZ

hostile = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e300, 1e300),
    st.sampled_from([0.0, -0.0, 1e-300, np.pi, -np.pi]),
)


@settings(max_examples=300, deadline=None)
@given(
    proposed=st.lists(hostile, min_size=9, max_size=9),
    current=st.lists(st.floats(-4, 4), min_size=9, max_size=9),
)
def test_targets_stay_in_limits_and_rate(proposed, current):
    out = LIM.safe_targets(np.array(proposed), np.array(current), DT)
    assert np.all(np.isfinite(out))
    assert np.all(out >= LIM.lower) and np.all(out <= LIM.upper)
    here = LIM.clip(np.array(current))
    assert np.all(np.abs(out - here) <= LIM.max_velocity * DT + 1e-12)


def test_nan_holds_position():
    current = dclaw.NOMINAL_POSE.copy()
    proposed = np.full(9, np.nan)
    np.testing.assert_allclose(LIM.safe_targets(proposed, current, DT), current)


def test_reachable_target_is_unchanged():
    current = dclaw.NOMINAL_POSE.copy()
    proposed = current + 0.01
    np.testing.assert_allclose(LIM.safe_targets(proposed, current, DT), proposed)


def test_wrong_size_is_an_error():
    with pytest.raises(ValueError, match="expected 9 targets"):
        LIM.safe_targets(np.zeros(8), np.zeros(9), DT)


def test_bad_limits_rejected():
    with pytest.raises(ValueError):
        JointLimits(names=("a",), lower=np.array([1.0]), upper=np.array([0.0]), max_velocity=1.0)


def test_dclaw_units_roundtrip():
    raw = np.arange(0, 4096, 455)[:9]
    rad = dclaw.raw_to_rad(raw, dclaw.DEFAULT_OFFSETS)
    np.testing.assert_array_equal(dclaw.rad_to_raw(rad, dclaw.DEFAULT_OFFSETS), raw)
    # Raw 2048 is the middle of the turn: 0 rad for the top joints, 0 rad = pi - pi others.
    mid = dclaw.raw_to_rad(np.full(9, 2048), dclaw.DEFAULT_OFFSETS)
    np.testing.assert_allclose(mid[[1, 2, 4, 5, 7, 8]], 0.0, atol=1e-12)
    np.testing.assert_allclose(mid[[0, 3, 6]], np.pi / 2, atol=1e-12)


def test_normalized_actions_map_onto_the_box():
    np.testing.assert_allclose(LIM.denormalize(-np.ones(9)), LIM.lower)
    np.testing.assert_allclose(LIM.denormalize(np.ones(9)), LIM.upper)
    np.testing.assert_allclose(LIM.denormalize(np.full(9, 7.0)), LIM.upper)  # clipped
    q = LIM.denormalize(np.linspace(-1, 1, 9))
    np.testing.assert_allclose(LIM.normalize(q), np.linspace(-1, 1, 9))


def test_ramp_follows_the_previous_goal_not_the_lagging_servo():
    period = 0.02
    lagging = dclaw.NOMINAL_POSE.copy()  # the servo has not moved yet
    goal, previous = None, None
    for _ in range(5):
        goal = LIM.ramp(lagging + 1.0, previous, lagging, period, period)
        previous = goal
    # Five periods at the velocity limit (not one period's step, which measuring against
    # the lagging servo would allow)...
    step = LIM.max_velocity * period
    assert np.all(goal - dclaw.NOMINAL_POSE <= step * 5 + 1e-12)
    # ...but never farther than one period's travel from where the joint really is.
    assert np.all(np.abs(goal - lagging) <= step + 1e-12)
    moving = dclaw.NOMINAL_POSE + 0.5 * step
    goal = LIM.ramp(moving + 1.0, moving, moving, period, period, speed=0.1)
    np.testing.assert_allclose(goal, LIM.clip(moving + 0.1 * period))
    # min_lead: a fast loop may still lead the joint by that much, never more.
    fast = LIM.ramp(lagging + 1.0, None, lagging, 0.001, 0.001, min_lead=0.05)
    np.testing.assert_allclose(fast, LIM.clip(lagging + 0.001 * LIM.max_velocity))
    for _ in range(100):
        fast = LIM.ramp(lagging + 1.0, fast, lagging, 0.001, 0.001, min_lead=0.05)
    np.testing.assert_allclose(fast, LIM.clip(lagging + 0.05))
    # A NaN reading holds the previous goal as the anchor.
    nan = moving.copy()
    nan[0] = np.nan
    assert np.all(np.isfinite(LIM.ramp(moving, moving, nan, period, period)))
