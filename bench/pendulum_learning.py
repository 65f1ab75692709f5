"""Learning on Pendulum-v1: sac_ros vs stable-baselines3's SAC, same budget and settings.

Both: Table 1 hyperparameters (Adam 3e-4, gamma 0.99, tau 0.005, batch 256, 2 x 256,
learned temperature with target -dim(A), one gradient step per environment step),
1,000 uniform-random warm-up steps. Per seed, the deterministic return (mean of 10
evaluation episodes, the same evaluation seeds for both) at 5k, 10k and 15k environment
steps, and the wall time (training plus these evaluations). Runs alternate sac_ros / SB3
seed by seed so that background load hits both alike.

With a few seeds the mean returns near the task's ceiling flip on seed noise alone, so
the summary also compares the seeds pairwise at each point (``paired_<k>k``: mean
difference, its standard error, and whether sac_ros is significantly worse).

Usage: python bench/pendulum_learning.py [--seeds 3] [--first-seed 0] [--steps 15000] [--threads 1]
       python bench/pendulum_learning.py --summarize RESULT.json [MORE.json ...]
       (recompute the summary; several results: their seeds together)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from common import emit, log, paired_comparison, set_threads

from sac_ros.sac import ObsSpec, ReplayBuffer, SACAgent, SACConfig, train

WARMUP, EVAL_EPISODES, EVAL_SEED = 1000, 10, 10_000


def run_sac_ros(seed: int, checkpoints: list[int]) -> tuple[list[float], float]:
    env, eval_env = gym.make("Pendulum-v1"), gym.make("Pendulum-v1")
    spec = ObsSpec.from_space(env.observation_space)
    agent = SACAgent(spec, 1, SACConfig(seed=seed, warmup_steps=WARMUP, device="cpu"))
    buffer = ReplayBuffer(spec, 1, 1_000_000, seed=seed)
    every = int(np.gcd.reduce(checkpoints))
    started = time.perf_counter()
    rows = train(
        env, agent, buffer, max(checkpoints), eval_env=eval_env, eval_every=every,
        eval_episodes=EVAL_EPISODES, seed=seed, eval_seed=EVAL_SEED,
    )  # fmt: skip
    wall = time.perf_counter() - started
    by_step = {int(r["step"]): r["eval_return"] for r in rows}
    return [by_step[c] for c in checkpoints], wall


def run_sb3(seed: int, checkpoints: list[int]) -> tuple[list[float], float]:
    from stable_baselines3 import SAC

    env, eval_env = gym.make("Pendulum-v1"), gym.make("Pendulum-v1")
    model = SAC(
        "MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=WARMUP,
        batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
        ent_coef="auto", target_update_interval=1, policy_kwargs={"net_arch": [256, 256]},
        device="cpu", seed=seed,
    )  # fmt: skip
    returns, done = [], 0
    started = time.perf_counter()
    for checkpoint in checkpoints:
        model.learn(checkpoint - done, reset_num_timesteps=done == 0)
        done = checkpoint
        returns.append(float(np.mean(sb3_evaluate(model, eval_env))))
    return returns, time.perf_counter() - started


def sb3_evaluate(model: object, env: gym.Env) -> list[float]:
    totals = []
    for episode in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)  # type: ignore[attr-defined]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        totals.append(total)
    return totals


def summarize(
    results: dict[str, dict[str, list[float]]], seeds: int, threads: int
) -> dict[str, object]:
    """Per-seed values, their means, and sac_ros against SB3 seed by seed at each point."""
    summary: dict[str, object] = {"bench": "pendulum_learning", "seeds": seeds,
                                  "threads": threads}  # fmt: skip
    for name, entry in results.items():
        for key, values in entry.items():
            summary[f"{name}_{key}"] = [round(v, 1) for v in values]
            summary[f"{name}_{key}_mean"] = round(float(np.mean(values)), 1)
    points = [key for key in results["sac_ros"] if key.startswith("return_")]
    paired = {key: paired_comparison(results["sac_ros"][key], results["sb3"][key])
              for key in points}  # fmt: skip
    for key, comparison in paired.items():
        summary[f"paired_{key.removeprefix('return_')}"] = comparison
    summary["sac_ros_mean_at_least_everywhere"] = all(c["mean_at_least"] for c in paired.values())
    summary["sac_ros_not_worse_everywhere"] = all(c["not_worse"] for c in paired.values())
    return summary


def from_summary(paths: list[Path]) -> tuple[dict[str, dict[str, list[float]]], int, int]:
    """The per-seed values of earlier runs' JSON lines, their seeds one after another
    (runs of other seeds: ``--first-seed``)."""
    results: dict[str, dict[str, list[float]]] = {}
    seeds, threads = 0, set()
    for path in paths:
        data = json.loads(path.read_text().strip().splitlines()[-1])
        seeds += int(data["seeds"])
        threads.add(int(data["threads"]))
        for name in ("sac_ros", "sb3"):
            prefix = f"{name}_"
            entry = results.setdefault(name, {})
            for key, value in data.items():
                if key.startswith(prefix) and isinstance(value, list):
                    entry.setdefault(key.removeprefix(prefix), []).extend(value)
    if len(threads) != 1:
        raise SystemExit(f"the runs used different torch thread counts: {sorted(threads)}")
    return results, seeds, threads.pop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds from this one on")
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--summarize", type=Path, nargs="+", help="recompute the summary (several: seeds pooled)"
    )
    args = parser.parse_args()
    if args.summarize:
        emit(summarize(*from_summary(args.summarize)))
        return
    threads = set_threads(args.threads)
    checkpoints = [c for c in (5000, 10_000, 15_000) if c <= args.steps] or [args.steps]
    results: dict[str, dict[str, list[float]]] = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, run in (("sac_ros", run_sac_ros), ("sb3", run_sb3)):
            returns, wall = run(seed, checkpoints)
            log(f"{name} seed {seed}: returns {[round(r) for r in returns]}, {wall:.0f} s")
            entry = results.setdefault(name, {"wall_s": []})
            entry["wall_s"].append(wall)
            for checkpoint, value in zip(checkpoints, returns, strict=True):
                entry.setdefault(f"return_{checkpoint // 1000}k", []).append(value)
    emit(summarize(results, args.seeds, threads))


if __name__ == "__main__":
    main()
