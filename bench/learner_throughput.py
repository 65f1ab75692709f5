"""Gradient updates per second: sac_ros's SAC vs stable-baselines3's SAC, same work.

Both: observation 17, action 6, 2 x 256 ReLU networks, batch 256, twin critics, learned
temperature, target update every step; each update = one critic, one actor and one
temperature step plus replay sampling. They run interleaved, round by round, in one
process with the same torch thread count. sac_ros runs its large products on oneDNN
(sac_ros.sac.gemm); it is also timed with torch's own GEMM (``sac_ros_torch_gemm``), to
show what the kernel choice gives and what the rest of the step gives. Also measured:
sac_ros with the pixel encoder (32x32x3 images + 18 proprio, action 9) and the Policy's
batch-1 latency (numpy vs torch).

Usage: python bench/learner_throughput.py [--rounds N] [--updates N] [--threads N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import emit, interleaved, latency_us, log, median, set_threads

from sac_ros.sac import ObsSpec, Policy, ReplayBuffer, SACAgent, SACConfig, gemm

OBS_DIM, ACTION_DIM, BATCH = 17, 6, 256


def random_buffer(spec: ObsSpec, action_dim: int, size: int, seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer(spec, action_dim, size + 100, seed=seed)

    def obs():
        if spec.is_pixels:
            image = rng.integers(0, 256, spec.image_shape, dtype=np.uint8)
            return {"image": image, "proprio": rng.standard_normal(spec.vector_dim)}
        return rng.standard_normal(spec.vector_dim)

    current = obs()
    for i in range(size):
        nxt = obs()
        end = i % 200 == 199
        buf.add(current, rng.uniform(-1, 1, action_dim), rng.standard_normal(), nxt, False, end)
        current = obs() if end else nxt
    return buf


def sac_ros_runner(spec: ObsSpec, action_dim: int, updates: int, size: int):
    agent = SACAgent(spec, action_dim, SACConfig(batch_size=BATCH, device="cpu"))
    buf = random_buffer(spec, action_dim, size)

    def run() -> int:
        for _ in range(updates):
            agent.update(buf.sample(BATCH), stats=False)
        return updates

    return run, agent


def sb3_runner(updates: int, size: int):
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    class Spaces(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    model = SAC(
        "MlpPolicy",
        Spaces(),
        learning_rate=3e-4,
        buffer_size=size + 100,
        learning_starts=0,
        batch_size=BATCH,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto",
        target_update_interval=1,
        policy_kwargs={"net_arch": [256, 256]},
        device="cpu",
        seed=0,
    )
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    rb = model.replay_buffer
    rb.observations[:size] = rng.standard_normal((size, 1, OBS_DIM))
    rb.next_observations[:size] = rng.standard_normal((size, 1, OBS_DIM))
    rb.actions[:size] = rng.uniform(-1, 1, (size, 1, ACTION_DIM))
    rb.rewards[:size] = rng.standard_normal((size, 1))
    rb.dones[:size] = 0.0
    rb.pos = size

    def run() -> int:
        model.train(gradient_steps=updates, batch_size=BATCH)
        return updates

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--updates", type=int, default=100, help="updates per round")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--buffer", type=int, default=20_000)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    log(f"threads {threads}, {args.rounds} rounds x {args.updates} updates")

    ours, agent = sac_ros_runner(ObsSpec.vector(OBS_DIM), ACTION_DIM, args.updates, args.buffer)
    ours_torch, _ = sac_ros_runner(ObsSpec.vector(OBS_DIM), ACTION_DIM, args.updates, args.buffer)

    def on_torch_gemm() -> int:
        with gemm.torch_only():
            return ours_torch()

    theirs = sb3_runner(args.updates, args.buffer)
    rates = interleaved({"sac_ros": ours, "sac_ros_torch_gemm": on_torch_gemm, "sb3": theirs},
                        rounds=args.rounds)  # fmt: skip
    for name, values in rates.items():
        log(f"{name:18s} per round {[round(r) for r in values]}")
    ratios = [a / b for a, b in zip(rates["sac_ros"], rates["sb3"], strict=True)]
    torch_ratios = [a / b for a, b in zip(rates["sac_ros_torch_gemm"], rates["sb3"], strict=True)]

    pixel_spec = ObsSpec.pixels((32, 32, 3), proprio_dim=18)
    pixel_updates = max(5, args.updates // 5)
    pixels, pixel_agent = sac_ros_runner(pixel_spec, 9, pixel_updates, 2000)
    pixel_rates = interleaved({"pixels": pixels}, rounds=max(2, args.rounds // 2))["pixels"]

    # Batch-1 inference: the robot-side Policy (numpy for vectors) vs the torch actor.
    rng = np.random.default_rng(1)
    obs = rng.standard_normal(OBS_DIM).astype(np.float32)
    latent = rng.standard_normal(ACTION_DIM).astype(np.float32)
    policy = Policy.from_bytes(agent.policy_bytes(0))
    numpy_us = latency_us(lambda: policy.act(obs, latent=latent))
    obs_t = torch.from_numpy(obs)[None]

    def torch_actor() -> np.ndarray:
        with torch.inference_mode():
            mean, log_std = agent.actor(obs_t)
            return torch.tanh(mean + log_std.exp() * torch.from_numpy(latent)).numpy()

    torch_us = latency_us(torch_actor)
    pixel_policy = Policy.from_bytes(pixel_agent.policy_bytes(0))
    pixel_obs = {"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                 "proprio": rng.standard_normal(18)}  # fmt: skip
    pixel_us = latency_us(lambda: pixel_policy.act(pixel_obs, deterministic=True), 500, 50)

    emit(
        {
            "bench": "learner_throughput",
            "threads": threads,
            "rounds": args.rounds,
            "sac_ros_updates_per_s": round(median(rates["sac_ros"]), 1),
            "sb3_updates_per_s": round(median(rates["sb3"]), 1),
            "ratio": round(median(ratios), 2),
            "ratio_min": round(min(ratios), 2),
            "onednn": gemm.onednn_active(),
            "sac_ros_torch_gemm_updates_per_s": round(median(rates["sac_ros_torch_gemm"]), 1),
            "ratio_torch_gemm": round(median(torch_ratios), 2),
            "pixel_encoder_updates_per_s": round(median(pixel_rates), 1),
            "policy_act_us_p50": round(numpy_us["p50"], 1),
            "policy_act_us_p99": round(numpy_us["p99"], 1),
            "torch_actor_us_p50": round(torch_us["p50"], 1),
            "pixel_policy_act_us_p50": round(pixel_us["p50"], 1),
        }
    )


if __name__ == "__main__":
    main()
