"""End to end: SAC (trainer + agent + replay) learns Pendulum-v1 within 10,000 steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from sac_ros.sac import ObsSpec, ReplayBuffer, SACAgent, SACConfig, train
from sac_ros.sac.trainer import evaluate


@pytest.fixture
def one_thread():
    # On a shared 2-core machine, two torch threads stall each other under load (each
    # waits for the other at every parallel op); one thread is steady.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sac_reaches_minus_250_on_pendulum_within_10k_steps(one_thread):
    env, eval_env = gym.make("Pendulum-v1"), gym.make("Pendulum-v1")
    spec = ObsSpec.from_space(env.observation_space)
    agent = SACAgent(spec, 1, SACConfig(seed=0, warmup_steps=1000, device="cpu"))
    buffer = ReplayBuffer(spec, 1, 10_000, seed=0)
    random_returns = evaluate(eval_env, agent, 3, seed=500)  # the untrained mean action
    rows = train(
        env, agent, buffer, 10_000, eval_env=eval_env, eval_every=1000, eval_episodes=10,
        seed=0, eval_seed=1000, on_eval=lambda row: row["eval_return"] >= -250,
    )  # fmt: skip
    history = [(int(r["step"]), round(r["eval_return"])) for r in rows]
    assert rows[-1]["eval_return"] >= -250, history
    assert rows[-1]["step"] <= 10_000
    assert np.mean(random_returns) < -700  # the task is not solved without learning
    assert agent.num_updates >= rows[-1]["step"] - 1000 - 256
    assert agent.alpha < 1.0  # the temperature adapted (entropy above -dim(A) at start)


class TinyPixelEnv(gym.Env):
    """A Dict-observation environment: the image shows the position, reward is -|x|."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
                "proprio": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.actions: list[float] = []

    def _obs(self) -> dict:
        image = np.zeros((8, 8, 3), np.uint8)
        image[:, int(np.clip(self.x + 4, 0, 7)), 0] = 255
        return {"image": image, "proprio": np.array([self.x, self.t], np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-3, 3)), 0
        return self._obs(), {}

    def step(self, action):
        self.actions.append(float(action[0]))
        self.x = float(np.clip(self.x + 0.5 * action[0], -4, 4))
        self.t += 1
        return self._obs(), -abs(self.x), False, self.t >= 10, {}


def test_train_runs_with_dict_observations_and_rescales_actions(one_thread):
    env = TinyPixelEnv()
    spec = ObsSpec.from_space(env.observation_space)
    config = SACConfig(hidden=(32, 32), batch_size=16, warmup_steps=40, smoothing=0.8)
    agent = SACAgent(spec, 1, config)
    buffer = ReplayBuffer(spec, 1, 500)
    seen: list[dict] = []
    rows = train(env, agent, buffer, 120, eval_every=60, eval_episodes=2, on_eval=seen.append)
    assert [r["step"] for r in rows] == [60.0, 120.0] and seen == rows
    assert agent.num_updates == 120 - 40
    assert buffer.num_added == 120 and len(buffer) == 120  # every episode ended (truncated)
    acted = np.array(env.actions)
    assert np.abs(acted).max() <= 2.0 and np.abs(acted).max() > 1.0  # rescaled to the Box
    assert np.isfinite([rows[-1][k] for k in ("eval_return", "critic_loss", "alpha")]).all()
    with pytest.raises(ValueError, match="do not match"):
        train(env, SACAgent(ObsSpec.vector(3), 1, config), buffer, 10)
