"""A few thousand steps of sac_ros's SAC on SacRos/DClawValve-v0 bring the valve closer.

The yardstick is the error before learning: the mean final |valve error| of the same
evaluation episodes (fixed start angles) under uniformly random actions and under the
untrained agent's mean action, whichever is smaller. After training, the agent's mean
action must beat it by a clear margin at one of the last evaluations (learning curves
at this budget are noisy: a single evaluation can land on a dip). The full learning
curve is bench/dclaw_learning.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch

import sac_ros.sim  # noqa: F401  (registers the environments)
from sac_ros.sac import ObsSpec, ReplayBuffer, SACAgent, SACConfig
from sac_ros.sac.trainer import train

STEPS = 5000
WARMUP = 1000
CHECKPOINTS = (3000, 4000, 5000)
EVAL_EPISODES = 30
EVAL_SEED = 2000
MARGIN = 0.8  # the trained error must be below 80% of the error before learning


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Single-threaded torch: reproducible on any machine, and fair to the other tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mean_final_error(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray]) -> float:
    errors = []
    for episode in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + episode)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            done = terminated or truncated
        errors.append(abs(info["angle_error"]))
    return float(np.mean(errors))


@pytest.mark.slow
def test_sac_reduces_the_valve_error(one_thread):
    env = gym.make("SacRos/DClawValve-v0")
    eval_env = gym.make("SacRos/DClawValve-v0")
    spec = ObsSpec.from_space(env.observation_space)
    agent = SACAgent(spec, 9, SACConfig(seed=0, warmup_steps=WARMUP, device="cpu"))
    buffer = ReplayBuffer(spec, 9, STEPS + 1, seed=0)

    rng = np.random.default_rng(0)
    random_error = mean_final_error(eval_env, lambda _: rng.uniform(-1, 1, 9).astype(np.float32))
    untrained_error = mean_final_error(eval_env, lambda obs: agent.act(obs, True))
    before = min(random_error, untrained_error)
    assert before > 0.7, "the evaluation episodes must start far from the target"

    after: dict[int, float] = {}

    def on_eval(row: dict[str, float]) -> None:
        step = int(row["step"])
        if step in CHECKPOINTS:
            after[step] = mean_final_error(eval_env, lambda obs: agent.act(obs, True))

    train(
        env, agent, buffer, STEPS, eval_env=eval_env, eval_every=1000, eval_episodes=1,
        seed=0, on_eval=on_eval,
    )  # fmt: skip
    assert set(after) == set(CHECKPOINTS)
    best = min(after.values())
    report = f"before {before:.3f} (random {random_error:.3f}), after {after}"
    assert best < MARGIN * before, report
