"""In-process SAC training on a gymnasium environment (Algorithm 1 of the paper).

Each environment step: act (uniform-random during warm-up, then the stochastic policy
with the smoothed exploration latent), step the environment, store the transition, and
take gradient steps at the configured update-to-data ratio. Every ``eval_every`` steps the
deterministic policy (mean action) is evaluated and a row of numbers is recorded.

The agent acts in [-1, 1]^A; actions are rescaled to the environment's Box bounds, and the
replay buffer stores the agent's [-1, 1] action.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from sac_ros.sac.agent import SACAgent
from sac_ros.sac.noise import SmoothedNoise
from sac_ros.sac.replay import ReplayBuffer
from sac_ros.sac.spec import ObsSpec


class ActionScaler:
    """Maps [-1, 1]^A to a gymnasium Box with finite bounds."""

    def __init__(self, space: Any, action_dim: int) -> None:
        low = np.asarray(getattr(space, "low", None), dtype=np.float64)
        high = np.asarray(getattr(space, "high", None), dtype=np.float64)
        if low.shape != (action_dim,) or high.shape != (action_dim,):
            raise ValueError(f"action space {space} does not have shape ({action_dim},)")
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
            raise ValueError(f"action space {space} needs finite bounds with high > low")
        self._center = (high + low) / 2.0
        self._half = (high - low) / 2.0
        self._dtype = getattr(space, "dtype", np.float32)

    def __call__(self, action: np.ndarray) -> np.ndarray:
        return (self._center + self._half * np.clip(action, -1.0, 1.0)).astype(self._dtype)


def evaluate(env: Any, agent: SACAgent, episodes: int, seed: int | None = None) -> list[float]:
    """Returns of ``episodes`` episodes with the deterministic (mean) action."""
    scale = ActionScaler(env.action_space, agent.action_dim)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(scale(agent.act(obs, True)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def train(
    env: Any,
    agent: SACAgent,
    buffer: ReplayBuffer,
    total_steps: int,
    *,
    eval_env: Any | None = None,
    eval_every: int | None = 5000,
    eval_episodes: int = 5,
    warmup_steps: int | None = None,
    updates_per_step: float | None = None,
    seed: int | None = None,
    stream: int = 0,
    stats_every: int = 100,
    on_eval: Callable[[dict[str, float]], bool | None] | None = None,
    eval_seed: int | None = None,
) -> list[dict[str, float]]:
    """Train ``agent`` for ``total_steps`` environment steps; return the evaluation rows.

    Each row: step, episodes, updates, eval_return (mean), eval_return_std,
    train_return (mean of the last 10 training episodes), wall_s and the latest update
    statistics (critic_loss, actor_loss, alpha, alpha_loss, entropy, q_mean). Without an
    ``eval_env`` the training environment is used and its episode restarts afterwards
    (the replay buffer completes the interrupted step with its true next observation).
    ``warmup_steps`` and ``updates_per_step`` default to the agent's config. ``on_eval``
    sees each row as it is made; returning True from it stops training there.
    ``eval_seed`` seeds the evaluation episodes (episode i uses eval_seed + i).
    """
    config = agent.config
    spec = ObsSpec.from_space(env.observation_space)
    if spec != agent.spec or spec != buffer.spec:
        raise ValueError(f"environment observations {spec} do not match the agent/buffer spec")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup = config.warmup_steps if warmup_steps is None else int(warmup_steps)
    ratio = config.updates_per_step if updates_per_step is None else float(updates_per_step)
    if ratio <= 0 or warmup < 0:
        raise ValueError(f"need updates_per_step > 0 and warmup_steps >= 0, got {ratio}, {warmup}")
    scale = ActionScaler(env.action_space, agent.action_dim)
    noise = SmoothedNoise(agent.action_dim, config.smoothing, agent.np_rng)
    started = time.perf_counter()
    rows: list[dict[str, float]] = []
    recent: deque[float] = deque(maxlen=10)
    stats: dict[str, float] = {}
    episodes, episode_return, update_debt = 0, 0.0, 0.0

    obs, _ = env.reset(seed=seed)
    noise.reset()
    for step in range(1, total_steps + 1):
        if step <= warmup:
            action = agent.random_action()
        else:
            latent = noise.sample() if config.smoothing > 0 else None
            action = agent.act(obs, deterministic=False, latent=latent)
        next_obs, reward, terminated, truncated, _ = env.step(scale(action))
        buffer.add(obs, action, float(reward), next_obs, terminated, truncated, stream=stream)
        episode_return += float(reward)
        if terminated or truncated:
            episodes += 1
            recent.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
            noise.reset()
        else:
            obs = next_obs

        if step > warmup and len(buffer) >= config.batch_size:
            update_debt += ratio
            while update_debt >= 1.0:
                update_debt -= 1.0
                want = (agent.num_updates + 1) % stats_every == 0 or not stats
                result = agent.update(buffer.sample(config.batch_size, agent.device), want)
                stats = result or stats

        if eval_every and (step % eval_every == 0 or step == total_steps):
            eval_on = eval_env if eval_env is not None else env
            returns = evaluate(eval_on, agent, eval_episodes, eval_seed)
            if eval_env is None:
                obs, _ = env.reset()
                noise.reset()
                episode_return = 0.0
            row = {
                "step": float(step),
                "episodes": float(episodes),
                "updates": float(agent.num_updates),
                "eval_return": float(np.mean(returns)),
                "eval_return_std": float(np.std(returns)),
                "train_return": float(np.mean(recent)) if recent else math.nan,
                "wall_s": time.perf_counter() - started,
                **stats,
            }
            rows.append(row)
            if on_eval is not None and on_eval(row):
                break
    return rows
