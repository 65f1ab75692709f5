"""The gymnasium environments: registration, env_checker, seeding, info, time limits."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sac_ros.sim
from sac_ros.robots import dclaw, minitaur
from sac_ros.runtime.policy_runner import Snapshot
from sac_ros.runtime.rewards import MinitaurWalkReward
from sac_ros.runtime.task_io import MinitaurWalkIO
from sac_ros.tasks import dclaw_valve, minitaur_walk

DCLAW_TERMS = {"target_dist_cost", "pose_diff_cost", "joint_vel_cost", "bonus_small", "bonus_big"}
MINITAUR_TERMS = {"forward_velocity", "acceleration_cost", "pitch_cost", "front_leg_cost"}


def _rollout(env: gym.Env, seed: int, steps: int) -> tuple[list, list]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    observations, rewards = [obs], []
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return observations, rewards


def _flat(observations: list) -> np.ndarray:
    if isinstance(observations[0], dict):
        return np.concatenate([np.r_[o["image"].ravel(), o["proprio"]] for o in observations])
    return np.concatenate(observations)


@pytest.mark.parametrize("env_id", sac_ros.sim.ENV_IDS)
def test_registered_and_passes_the_env_checker(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # unbounded sensor values
        check_env(env.unwrapped, skip_render_check=False)
    assert env.action_space.shape in ((9,), (8,))
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    env.close()


@pytest.mark.parametrize("env_id", sac_ros.sim.ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    env = gym.make(env_id)
    first_obs, first_rewards = _rollout(env, seed=7, steps=12)
    second_obs, second_rewards = _rollout(env, seed=7, steps=12)
    np.testing.assert_array_equal(_flat(first_obs), _flat(second_obs))
    assert first_rewards == second_rewards
    other_obs, _ = _rollout(env, seed=8, steps=12)
    assert not np.array_equal(_flat(first_obs), _flat(other_obs))
    env.close()


def test_dclaw_state_env_info_truncation_and_observation():
    env = gym.make("SacRos/DClawValve-v0", episode_steps=5)
    obs, info = env.reset(seed=0, options={"valve_angle": 0.5})
    assert obs.shape == (dclaw_valve.STATE_DIM,)
    np.testing.assert_allclose(obs[18:], [math.cos(0.5), math.sin(0.5)], atol=1e-6)
    assert info["angle_error"] == pytest.approx(-0.5) and not info["is_success"]
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(np.zeros(9, np.float32))
        assert not terminated
        assert truncated == (t == 4)
    assert DCLAW_TERMS <= set(info)
    assert reward == pytest.approx(sum(info[k] for k in DCLAW_TERMS))
    expected, _ = dclaw_valve.reward(info["valve_angle"], obs[:9], obs[9:18])
    assert reward == pytest.approx(expected, abs=1e-4)  # obs is float32
    _, info = env.reset(options={"valve_angle": 0.05})
    assert info["is_success"]
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(9, np.nan, np.float32))
    env.close()


def test_dclaw_actions_are_rate_limited_absolute_targets():
    env = gym.make("SacRos/DClawValve-v0").unwrapped
    env.reset(seed=0)
    before = env.sim.joint_positions()
    env.step(np.ones(9, np.float32))
    step = dclaw.MAX_VELOCITY * env.sim.dt
    targets = env.sim.joint_targets()
    np.testing.assert_allclose(targets, np.minimum(dclaw.LIMITS.upper, before + step), atol=1e-9)
    env.close()


def test_dclaw_pixels_hide_the_valve_angle_but_show_the_peg():
    env = gym.make("SacRos/DClawValvePixels-v0")
    obs, _ = env.reset(seed=0, options={"valve_angle": 0.0})
    assert set(obs) == {"image", "proprio"}
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (dclaw_valve.PROPRIO_DIM,)
    turned, _ = env.reset(options={"valve_angle": 2.0})
    np.testing.assert_array_equal(obs["proprio"], turned["proprio"])  # the joints cannot tell
    assert np.abs(obs["image"].astype(int) - turned["image"]).sum() > 1000  # the image can
    env.close()


def test_initial_valve_angles_cover_the_circle():
    env = gym.make("SacRos/DClawValve-v0")
    angles = [env.reset(seed=s)[1]["valve_angle"] for s in range(40)]
    assert min(angles) < -2.0 and max(angles) > 2.0
    env.close()


@pytest.mark.parametrize(
    ("env_id", "shape"),
    [("SacRos/DClawValve-v0", (240, 240, 3)), ("SacRos/MinitaurWalk-v0", (240, 320, 3))],
)
def test_rgb_array_rendering(env_id, shape):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == shape and frame.dtype == np.uint8 and frame.std() > 5
    env.close()
    plain = gym.make(env_id)
    plain.reset(seed=0)
    assert plain.render() is None
    plain.close()


def test_minitaur_state_history_reward_terms_and_time_limit():
    env = gym.make("SacRos/MinitaurWalk-v0", max_steps=4)
    state, info = env.reset(seed=0)
    assert state.shape == (minitaur_walk.STATE_DIM,)
    np.testing.assert_array_equal(state[:12], state[12:24])  # history filled at reset
    action = np.full(8, 0.2, np.float32)
    for t in range(4):
        state, reward, terminated, truncated, info = env.step(action)
        assert not terminated and truncated == (t == 3)
    np.testing.assert_allclose(state[72:80], action)  # a_{t-1} right after the observations
    assert MINITAUR_TERMS <= set(info)
    assert reward == pytest.approx(sum(info[k] for k in MINITAUR_TERMS))
    assert info["is_success"]  # reached the time limit upright
    env.close()


def test_minitaur_env_acts_and_is_judged_as_the_policy_and_reward_nodes_do():
    """The gymnasium environment sends what the policy node's task I/O would send from the
    same readings (rate limited from the measured angles), and its reward is the one the
    reward node computes from the commands it hears and the base pose."""
    env = gym.make("SacRos/MinitaurWalk-v0").unwrapped
    env.reset(seed=0)
    io, judge = MinitaurWalkIO(), MinitaurWalkReward(env.sim.dt)
    judge.compute(env.sim.time, *env.sim.base_pose())
    rng = np.random.default_rng(7)
    limited = 0
    for t in range(12):
        action = rng.uniform(-1, 1, 8).astype(np.float32)
        here = env.sim.motor_angles()
        snap = Snapshot(env.sim.time, here, env.sim.motor_velocities())
        command = io.targets(action, snap)  # what the policy node would publish
        limited += not np.allclose(command, minitaur.action_to_motors(action))
        judge.on_command(command)
        _, reward, terminated, _, _ = env.step(action)
        assert np.all(np.abs(command - here) <= minitaur.LIMITS.max_velocity * env.sim.dt + 1e-9)
        expected = judge.compute(env.sim.time, *env.sim.base_pose())
        # From the first step on: before three commands, both count the standing pose.
        assert reward == pytest.approx(expected.reward, rel=1e-9, abs=1e-9), t
        assert terminated == expected.terminated
        if terminated:
            break
    assert limited > 0  # random actions ask for more than one period's travel
    env.close()


def test_minitaur_terminates_when_it_falls():
    env = gym.make("SacRos/MinitaurWalk-v0").unwrapped
    env.reset(seed=0)
    # Tip it over: start the chassis rolled by 0.5 rad.
    env.sim.data.qpos[3:7] = [math.cos(0.25), math.sin(0.25), 0, 0]
    _, _, terminated, truncated, info = env.step(np.zeros(8, np.float32))
    assert terminated and not truncated and not info["is_success"]
    env.close()
