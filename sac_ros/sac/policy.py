"""The robot-side policy: the actor alone, built from policy bytes, fast at batch 1.

The fully connected layers run as plain numpy matmuls (at batch 1 about 20 us against 45 us
for the eager torch actor; bench/learner_throughput.py prints both); the image encoder of a
pixel policy runs in torch under ``torch.inference_mode`` on the CPU (its convolutions).
"""

from __future__ import annotations

import numpy as np
import torch

from sac_ros.sac.networks import LOG_STD_MAX, LOG_STD_MIN, PixelEncoder
from sac_ros.sac.policy_format import PolicyData, decode_policy
from sac_ros.sac.spec import IMAGE_KEY, PROPRIO_KEY, ObsSpec, RawObs


class Policy:
    """act(obs, deterministic, latent) -> action in [-1, 1] (float32).

    ``deterministic`` gives tanh(mean), the evaluation action. Otherwise the action is
    tanh(mean + std * latent), with ``latent`` the caller's standard-normal sample (the
    smoothed exploration noise) or, if None, a draw from this policy's own generator.
    """

    def __init__(self, data: PolicyData, seed: int | None = None) -> None:
        self.spec: ObsSpec = data.spec
        self.action_dim: int = data.action_dim
        self.version: int = data.version
        self.hidden: tuple[int, ...] = data.hidden
        self._rng = np.random.default_rng(seed)
        self._encoder: PixelEncoder | None = None
        if self.spec.image_shape is not None:
            encoder = PixelEncoder(self.spec.image_shape, members=1)
            prefix = "encoder."
            encoder.load_state_dict(
                {
                    k[len(prefix) :]: torch.from_numpy(v.copy())
                    for k, v in data.tensors.items()
                    if k.startswith(prefix)
                }  # fmt: skip
            )
            self._encoder = encoder.eval().requires_grad_(False)
        self._layers: list[tuple[np.ndarray, np.ndarray]] = []
        for name in [f"layers.{i}" for i in range(len(self.hidden))] + ["head"]:
            weight = np.ascontiguousarray(data.tensors[f"{name}.weight"].T, dtype=np.float32)
            bias = np.array(data.tensors[f"{name}.bias"], dtype=np.float32)
            self._layers.append((weight, bias))

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        expected_spec: ObsSpec | None = None,
        expected_action_dim: int | None = None,
        seed: int | None = None,
    ) -> Policy:
        """Decode and check policy bytes (PolicyFormatError when unusable)."""
        return cls(decode_policy(data, expected_spec, expected_action_dim), seed)

    def act(
        self, obs: RawObs, deterministic: bool = False, latent: np.ndarray | None = None
    ) -> np.ndarray:
        batched, single = self.spec.prepare(obs)
        mean, log_std = self._mean_log_std(batched)
        if deterministic:
            action = np.tanh(mean)
        else:
            if latent is None:
                noise = self._rng.standard_normal(mean.shape).astype(np.float32)
            else:
                noise = _check_latent(latent, mean.shape, single)
            action = np.tanh(mean + np.exp(log_std) * noise)
        return action[0] if single else action

    def _mean_log_std(self, obs: RawObs) -> tuple[np.ndarray, np.ndarray]:
        if self._encoder is not None:
            assert isinstance(obs, dict)
            # torch.from_numpy refuses negative strides (an image turned BGR -> RGB with
            # [..., ::-1], or flipped) and warns on read-only arrays: a copy then (3 KB).
            image = np.require(obs[IMAGE_KEY], requirements=("C", "W"))
            with torch.inference_mode():
                features = self._encoder(torch.from_numpy(image))[0].numpy()
            x = np.concatenate([features, obs[PROPRIO_KEY]], axis=1)
        else:
            assert isinstance(obs, np.ndarray)
            x = obs
        for weight, bias in self._layers[:-1]:
            x = x @ weight
            x += bias
            np.maximum(x, 0.0, out=x)
        weight, bias = self._layers[-1]
        out = x @ weight
        out += bias
        mean, log_std = out[:, : self.action_dim], out[:, self.action_dim :]
        return mean, np.minimum(np.maximum(log_std, LOG_STD_MIN), LOG_STD_MAX)


def _check_latent(latent: np.ndarray, shape: tuple[int, ...], single: bool) -> np.ndarray:
    noise = np.asarray(latent, dtype=np.float32)
    if single and noise.shape == shape[1:]:
        noise = noise[None]
    if noise.shape != shape:
        expected = shape[1:] if single else shape
        raise ValueError(f"latent has shape {np.shape(latent)}, expected {expected}")
    if not np.isfinite(noise).all():
        raise ValueError("latent contains NaN or infinite values")
    return noise
