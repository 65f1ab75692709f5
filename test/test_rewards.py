"""The reward node's per-task state, without ROS: the Minitaur's forward velocity is
measured over a control period of motion-capture poses, as the gym environment measures it."""

from __future__ import annotations

import numpy as np
import pytest

from sac_ros.runtime.rewards import VELOCITY_SPAN_FRACTION, MinitaurWalkReward
from sac_ros.tasks import minitaur_walk

UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])
PERIOD = minitaur_walk.CONTROL_PERIOD
STANDING = np.zeros((3, minitaur_walk.ACTION_DIM))  # no command yet: the standing pose


def _at(x: float) -> np.ndarray:
    return np.array([x, 0.0, 0.2])


def test_mocap_noise_is_divided_by_a_control_period_not_a_frame():
    # Standing still, 0.5 mm of noise at 240 Hz: over one frame (4 ms) that is 0.17 m/s
    # of reward noise, over a control period (20 ms) a fifth of it.
    rng = np.random.default_rng(0)
    judge = MinitaurWalkReward()
    rewards = []
    for i in range(1, 2000):
        out = judge.compute(i / 240, _at(rng.normal(0, 5e-4)), UPRIGHT)
        if out is not None:
            rewards.append(out.reward)
    assert len(rewards) > 1900
    assert np.std(rewards) < 0.06


def test_no_reward_until_a_pose_is_a_control_period_older():
    judge = MinitaurWalkReward()
    stamps = [1.0 + i / 240 for i in range(8)]
    out = [judge.compute(t, _at(0.3 * (t - 1.0)), UPRIGHT) for t in stamps]
    first = next(i for i, t in enumerate(stamps) if t - 1.0 >= VELOCITY_SPAN_FRACTION * PERIOD)
    assert out[:first] == [None] * first
    assert all(r is not None and r.reward == pytest.approx(0.3) for r in out[first:])


def test_two_frames_stamped_together_do_not_blow_up_the_velocity():
    # Walking at 0.3 m/s, 120 Hz mocap; one frame is stamped 0.2 ms after the one before
    # (two frames delivered in a burst, stamped on receipt).
    judge = MinitaurWalkReward()
    for i in range(6):
        judge.compute(1.0 + i / 120, _at(0.3 * i / 120), UPRIGHT)
    t = 1.0 + 5 / 120 + 0.0002
    out = judge.compute(t, _at(0.3 * 6 / 120), UPRIGHT)
    assert out is not None and abs(out.reward - 0.3) < 0.1  # not 12.5 over 0.2 ms


def test_a_late_pose_is_ignored_and_does_not_become_the_reference():
    judge = MinitaurWalkReward()
    judge.compute(1.00, _at(0.00), UPRIGHT)
    judge.compute(1.02, _at(0.01), UPRIGHT)  # 0.5 m/s
    assert judge.compute(0.50, _at(-1.0), UPRIGHT) is None  # older than the newest
    assert judge.compute(1.02, _at(5.0), UPRIGHT) is None  # the same stamp again
    out = judge.compute(1.04, _at(0.02), UPRIGHT)
    assert out is not None and out.reward == pytest.approx(0.5)


def test_lockstep_poses_one_period_apart_are_judged_against_the_previous_one():
    # Simulation stamps are sums of physics steps: a period can come out a hair short.
    stamps, t = [], 0.0
    for _ in range(50):
        for _ in range(8):
            t += 0.0025
        stamps.append(t)
    assert any(b - a < PERIOD for a, b in zip(stamps, stamps[1:], strict=False))  # premise
    rng = np.random.default_rng(1)
    xs = np.cumsum(rng.uniform(0.0, 0.01, len(stamps)))
    judge = MinitaurWalkReward()
    assert judge.compute(stamps[0], _at(xs[0]), UPRIGHT) is None
    for i in range(1, len(stamps)):
        out = judge.compute(stamps[i], _at(xs[i]), UPRIGHT)
        expected, _ = minitaur_walk.reward(
            _at(xs[i - 1]), _at(xs[i]), stamps[i - 1], stamps[i], STANDING, 0.0
        )
        assert out is not None and out.reward == pytest.approx(expected, rel=1e-12), i


def test_a_bad_position_is_rejected_and_never_becomes_the_reference():
    judge = MinitaurWalkReward()
    judge.compute(1.00, _at(0.0), UPRIGHT)
    with pytest.raises(ValueError, match="position"):
        judge.compute(1.01, _at(float("nan")), UPRIGHT)
    out = judge.compute(1.02, _at(0.01), UPRIGHT)
    assert out is not None and out.reward == pytest.approx(0.5)
