"""The Minitaur driver's PD law (effort mode): sign, clipping, bad and stale readings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sac_ros.hardware.minitaur_pd import MotorPD, PDGains, pd_torques
from sac_ros.robots import minitaur

GAINS = PDGains(kp=8.0, kd=0.2, max_torque=3.0)
STAND = np.full(8, 2.0)
STILL = np.zeros(8)


def test_defaults_are_the_motor_model_in_newton_metres():
    gains = PDGains()
    assert gains.kp == pytest.approx(minitaur.KP) and 8.0 < gains.kp < 8.5
    assert gains.kd == pytest.approx(minitaur.KD) and 0.1 < gains.kd < 0.2
    assert gains.max_torque == minitaur.TORQUE_LIMIT == 5.7


def test_the_torque_pushes_towards_the_target_and_damps_the_motion():
    target = STAND + np.array([0.1, -0.1, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0])
    velocity = np.array([0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    tau = pd_torques(GAINS, target, STAND, velocity)
    np.testing.assert_allclose(tau, [0.8, -0.8, -0.2, 0.2, 0.4, 0.0, 0.0, 0.0])


def test_torques_are_clipped_per_motor():
    target = STAND + np.array([1.0, -1.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0])
    velocity = np.array([0.0, 0.0, 0.0, 100.0, -100.0, 0.0, 0.0, 0.0])
    tau = pd_torques(GAINS, target, STAND, velocity)
    np.testing.assert_allclose(tau, [3.0, -3.0, 2.4, -3.0, 3.0, 0.0, 0.0, 0.0])


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=24, max_size=24))
def test_any_input_gives_bounded_finite_torques(values):
    target, position, velocity = np.reshape(values, (3, 8))
    tau = pd_torques(GAINS, target, position, velocity)
    assert np.all(np.isfinite(tau)) and np.all(np.abs(tau) <= GAINS.max_torque)
    bad = ~(np.isfinite(target) & np.isfinite(position) & np.isfinite(velocity))
    assert np.all(tau[bad] == 0.0)


def test_a_motor_with_a_nan_reading_gets_zero_torque_the_others_keep_their_pd():
    position = STAND.copy()
    position[3] = math.nan
    velocity = STILL.copy()
    velocity[5] = math.inf
    tau = pd_torques(GAINS, STAND + 0.1, position, velocity)
    expected = np.full(8, 0.8)
    expected[[3, 5]] = 0.0
    np.testing.assert_allclose(tau, expected)


def test_motor_pd_needs_a_fresh_reading():
    pd = MotorPD(GAINS, max_age=0.05)
    np.testing.assert_array_equal(pd.torques(STAND + 0.1, now=1.0), 0.0)  # no reading yet
    pd.reading(STAND, STILL, now=1.0)
    np.testing.assert_allclose(pd.torques(STAND + 0.1, now=1.04), 0.8)
    np.testing.assert_array_equal(pd.torques(STAND + 0.1, now=1.06), 0.0)  # stale
    np.testing.assert_array_equal(pd.torques(STAND + 0.1, now=0.9), 0.0)  # from the future
    assert pd.counts == {"pd_ticks": 1, "torque_off_ticks": 3, "saturated_ticks": 0}


def test_motors_off_is_zero_torque_and_saturation_is_counted():
    pd = MotorPD(GAINS, max_age=0.05)
    pd.reading(STAND, STILL, now=0.0)
    np.testing.assert_array_equal(pd.torques(None, now=0.0), 0.0)
    pd.torques(STAND + 1.0, now=0.0)
    assert pd.counts == {"pd_ticks": 1, "torque_off_ticks": 1, "saturated_ticks": 1}


def test_bad_gains_readings_and_targets_are_refused():
    with pytest.raises(ValueError, match="kp"):
        PDGains(kp=-1.0)
    with pytest.raises(ValueError, match="kd"):
        PDGains(kd=math.nan)
    with pytest.raises(ValueError, match="max_torque"):
        PDGains(max_torque=0.0)
    with pytest.raises(ValueError, match="max_age"):
        MotorPD(GAINS, max_age=0.0)
    pd = MotorPD(GAINS, max_age=0.05)
    with pytest.raises(ValueError, match="8 positions"):
        pd.reading(np.zeros(7), np.zeros(7), now=0.0)
    pd.reading(STAND, STILL, now=0.0)
    with pytest.raises(ValueError, match="8 motor targets"):
        pd.torques(np.zeros(4), now=0.0)
    with pytest.raises(ValueError, match="same shape"):
        pd_torques(GAINS, np.zeros(4), STAND, STILL)
