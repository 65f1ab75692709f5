"""Simulation speed: environment steps per second for each sac_ros environment.

D'Claw pixels is measured three ways: the whole env step, the physics alone (one
control period of DClawSim) and the 32x32 render alone. Prints a table, then one JSON
line (the last line of stdout).

    python bench/sim_speed.py [--steps 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym

import sac_ros.sim  # noqa: F401  (registers the environments)
from sac_ros.sim import DClawSim, MinitaurSim


def rate(step: Callable[[], None], count: int) -> float:
    """Calls per second of ``step`` over ``count`` calls (after a short warm-up)."""
    for _ in range(min(10, count)):
        step()
    start = time.perf_counter()
    for _ in range(count):
        step()
    return count / (time.perf_counter() - start)


def env_rate(env_id: str, count: int, seed: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    value = rate(step, count)
    env.close()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per measurement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.steps
    pixel_n = max(50, n // 5)

    results: dict[str, float] = {}
    results["dclaw_state_env_steps_per_s"] = env_rate("SacRos/DClawValve-v0", n, args.seed)
    results["dclaw_pixels_env_steps_per_s"] = env_rate(
        "SacRos/DClawValvePixels-v0", pixel_n, args.seed
    )
    results["minitaur_env_steps_per_s"] = env_rate("SacRos/MinitaurWalk-v0", n, args.seed)

    dclaw = DClawSim()
    dclaw.reset(0.5)
    results["dclaw_physics_steps_per_s"] = rate(dclaw.step, n)
    results["dclaw_render_32_per_s"] = rate(lambda: dclaw.render(), pixel_n)
    results["dclaw_render_240_per_s"] = rate(lambda: dclaw.render(240, 240), max(20, n // 20))
    minitaur = MinitaurSim()
    minitaur.reset()
    results["minitaur_physics_steps_per_s"] = rate(minitaur.step, n)

    control_hz = {"dclaw": 10.0, "minitaur": 50.0}
    for key, value in results.items():
        robot = key.split("_")[0]
        print(f"{key:34s} {value:10.1f}   ({value / control_hz[robot]:7.1f}x real time)")
    record = {k: round(v, 1) for k, v in results.items()}
    record.update(
        benchmark="sim_speed",
        steps=n,
        dclaw_render_32_ms=round(1000.0 / results["dclaw_render_32_per_s"], 2),
        cpu_count=os.cpu_count(),
        mujoco_gl=os.environ.get("MUJOCO_GL"),
    )
    print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
