"""A minibatch of transitions as tensors on the learner's device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sac_ros.sac.networks import Obs
from sac_ros.sac.spec import IMAGE_KEY, PROPRIO_KEY, ObsSpec, RawObs


@dataclass(frozen=True)
class Batch:
    """obs/next_obs: (B, D) float32 or {"image": uint8 (B, H, W, C), "proprio": (B, P)};
    action (B, A); reward, terminated, truncated (B,) float32 (flags as 0.0/1.0).

    ``terminated`` stops bootstrapping; ``truncated`` (a time limit) does not: it is kept
    only so that statistics and checks can tell the two apart.
    """

    obs: Obs
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: Obs
    terminated: torch.Tensor
    truncated: torch.Tensor

    def __len__(self) -> int:
        return int(self.action.shape[0])

    @classmethod
    def from_numpy(
        cls,
        spec: ObsSpec,
        obs: RawObs,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: RawObs,
        terminated: np.ndarray,
        truncated: np.ndarray,
        device: torch.device | str = "cpu",
    ) -> Batch:
        """Build a batch from batched numpy arrays (checked like any observation)."""
        obs_np, _ = spec.prepare(obs)
        next_np, _ = spec.prepare(next_obs)
        size = len(np.asarray(action))
        arrays = {
            "action": np.asarray(action, dtype=np.float32),
            "reward": np.asarray(reward, dtype=np.float32),
            "terminated": np.asarray(terminated, dtype=np.float32),
            "truncated": np.asarray(truncated, dtype=np.float32),
        }
        if arrays["action"].ndim != 2:
            raise ValueError(f"action must be (batch, dim), got {arrays['action'].shape}")
        for name in ("reward", "terminated", "truncated"):
            if arrays[name].shape != (size,):
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected ({size},)")
        return cls(
            obs=obs_to_tensor(obs_np, device),
            action=torch.from_numpy(arrays["action"]).to(device),
            reward=torch.from_numpy(arrays["reward"]).to(device),
            next_obs=obs_to_tensor(next_np, device),
            terminated=torch.from_numpy(arrays["terminated"]).to(device),
            truncated=torch.from_numpy(arrays["truncated"]).to(device),
        )


def obs_to_tensor(obs: RawObs, device: torch.device | str) -> Obs:
    """Batched numpy observation (already checked) -> tensors on ``device``."""
    if isinstance(obs, dict):
        return {
            IMAGE_KEY: torch.from_numpy(np.ascontiguousarray(obs[IMAGE_KEY])).to(device),
            PROPRIO_KEY: torch.from_numpy(np.ascontiguousarray(obs[PROPRIO_KEY])).to(device),
        }
    return torch.from_numpy(np.ascontiguousarray(obs)).to(device)
