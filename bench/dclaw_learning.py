"""D'Claw valve learning: sac_ros's SAC against stable-baselines3's SAC, same seeds and budget.

Both learn SacRos/DClawValve-v0 (state observation) with the paper's hyperparameters
(Table 1) and the same warm-up. Every ``--eval-every`` steps each agent runs
``--eval-episodes`` deterministic (mean-action) episodes from fixed start angles; the
numbers are the success rate (final |error| < 0.1 rad) and the median final |error|.
Writes a learning-curve PNG in the style of the paper's Figure 4a (median distance to
the target against environment steps) and prints one JSON line last, with the curves and
the first budget at which each implementation reaches 80% success (mean over seeds).

    python bench/dclaw_learning.py                       # 3 seeds x 50k steps (hours)
    python bench/dclaw_learning.py --seeds 0 --steps 4000 --eval-every 2000   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch

import sac_ros.sim  # noqa: F401  (registers the environments)
from sac_ros.sac import ObsSpec, ReplayBuffer, SACAgent, SACConfig
from sac_ros.sac.trainer import train

ENV_ID = "SacRos/DClawValve-v0"
EVAL_SEED = 1_000_000  # evaluation start angles: seeds EVAL_SEED + episode
SUCCESS_GOAL = 0.8
IMPLEMENTATIONS = ("sac_ros", "sb3")

Policy = Callable[[np.ndarray], np.ndarray]


def evaluate(env: gym.Env, policy: Policy, episodes: int) -> dict[str, float]:
    """Success rate and median final |error| of ``episodes`` deterministic episodes."""
    errors = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + episode)
        done = False
        info: dict = {}
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            done = terminated or truncated
        errors.append(abs(info["angle_error"]))
    errors_array = np.array(errors)
    return {
        "success": float(np.mean(errors_array < 0.1)),
        "median_error": float(np.median(errors_array)),
    }


def run_sac_ros(seed: int, args: argparse.Namespace) -> list[dict[str, float]]:
    env = gym.make(ENV_ID, episode_steps=args.episode_steps)
    eval_env = gym.make(ENV_ID, episode_steps=args.episode_steps)
    spec = ObsSpec.from_space(env.observation_space)
    action_dim = int(env.action_space.shape[0])
    config = SACConfig(seed=seed, warmup_steps=args.warmup, device="cpu")
    agent = SACAgent(spec, action_dim, config)
    buffer = ReplayBuffer(spec, action_dim, min(config.buffer_size, args.steps + 1), seed=seed)
    rows = [{"step": 0.0, **evaluate(eval_env, lambda o: agent.act(o, True), args.eval_episodes)}]
    started = time.perf_counter()

    def on_eval(row: dict[str, float]) -> None:
        result = evaluate(eval_env, lambda o: agent.act(o, True), args.eval_episodes)
        rows.append({"step": row["step"], **result, "wall_s": time.perf_counter() - started})
        print(f"  sac_ros seed {seed} step {int(row['step'])}: {result}", flush=True)

    train(
        env, agent, buffer, args.steps, eval_env=eval_env, eval_every=args.eval_every,
        eval_episodes=1, seed=seed, on_eval=on_eval,
    )  # fmt: skip
    return rows


def run_sb3(seed: int, args: argparse.Namespace) -> list[dict[str, float]]:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    env = gym.make(ENV_ID, episode_steps=args.episode_steps)
    eval_env = gym.make(ENV_ID, episode_steps=args.episode_steps)
    model = SAC(
        "MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, batch_size=256,
        tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto",
        learning_starts=args.warmup, policy_kwargs={"net_arch": [256, 256]}, seed=seed,
        device="cpu", verbose=0,
    )  # fmt: skip

    def policy(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    rows = [{"step": 0.0, **evaluate(eval_env, policy, args.eval_episodes)}]
    started = time.perf_counter()

    class EvalCallback(BaseCallback):
        def _on_step(self) -> bool:
            step = self.num_timesteps
            if step % args.eval_every == 0 or step == args.steps:
                result = evaluate(eval_env, policy, args.eval_episodes)
                elapsed = time.perf_counter() - started
                rows.append({"step": float(step), **result, "wall_s": elapsed})
                print(f"  sb3     seed {seed} step {step}: {result}", flush=True)
            return True

    model.learn(total_timesteps=args.steps, callback=EvalCallback())
    return rows


def first_budget(curve: list[dict[str, float]]) -> float | None:
    for point in curve:
        if point["success"] >= SUCCESS_GOAL:
            return point["step"]
    return None


def aggregate(runs: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Per evaluation step: mean/min/max over seeds of success and median error."""
    curve = []
    for points in zip(*runs, strict=True):
        success = [p["success"] for p in points]
        error = [p["median_error"] for p in points]
        curve.append({
            "step": points[0]["step"],
            "success": float(np.mean(success)),
            "success_min": float(np.min(success)),
            "success_max": float(np.max(success)),
            "median_error": float(np.mean(error)),
            "median_error_min": float(np.min(error)),
            "median_error_max": float(np.max(error)),
        })  # fmt: skip
    return curve


def plot(curves: dict[str, list[dict[str, float]]], path: Path, seeds: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"sac_ros": "tab:blue", "sb3": "tab:orange"}
    for name, curve in curves.items():
        steps = np.array([p["step"] for p in curve]) / 1000.0
        for ax, key in zip(axes, ("median_error", "success"), strict=True):
            mean = [p[key] for p in curve]
            ax.plot(steps, mean, color=colors[name], label=name)
            low = [p[f"{key}_min"] for p in curve]
            high = [p[f"{key}_max"] for p in curve]
            ax.fill_between(steps, low, high, color=colors[name], alpha=0.2)
    axes[0].set_ylabel("median distance to target (rad)")
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylabel("success rate (|error| < 0.1 rad)")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].axhline(SUCCESS_GOAL, color="grey", linestyle=":", linewidth=1)
    for ax in axes:
        ax.set_xlabel("environment steps (thousands)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"D'Claw valve (state), SAC, seeds {seeds}: mean and range over seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per run")
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--episode-steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=1000, help="uniform-random steps first")
    parser.add_argument("--impl", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/dclaw_learning.png"))
    args = parser.parse_args()
    if args.steps < 1 or args.eval_every < 1 or args.eval_episodes < 1:
        parser.error("--steps, --eval-every and --eval-episodes must be positive")
    torch.set_num_threads(args.threads)

    runners = {"sac_ros": run_sac_ros, "sb3": run_sb3}
    runs: dict[str, list[list[dict[str, float]]]] = {name: [] for name in args.impl}
    wall: dict[str, list[float]] = {name: [] for name in args.impl}
    for seed in args.seeds:  # interleaved per seed, so both see the same machine load
        for name in args.impl:
            print(f"{name} seed {seed}", flush=True)
            started = time.perf_counter()
            runs[name].append(runners[name](seed, args))
            wall[name].append(time.perf_counter() - started)

    curves = {name: aggregate(r) for name, r in runs.items()}
    plot(curves, args.out, args.seeds)
    record = {
        "benchmark": "dclaw_learning",
        "env": ENV_ID,
        "seeds": args.seeds,
        "steps": args.steps,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "plot": str(args.out),
    }
    for name, curve in curves.items():
        final = curve[-1]
        record[name] = {
            "first_step_at_80pct_success": first_budget(curve),
            "final_success": final["success"],
            "final_median_error": final["median_error"],
            "steps_per_s": round(args.steps / float(np.mean(wall[name])), 1),
            "curve": [
                {k: (round(v, 4) if math.isfinite(v) else None) for k, v in p.items()}
                for p in curve
            ],
        }
    print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
