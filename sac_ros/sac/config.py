"""SAC hyperparameters (defaults: Table 1 of Haarnoja et al. 2018) and device choice."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import torch

from sac_ros.sac.untrusted import loads


@dataclass(frozen=True)
class SACConfig:
    """Everything that shapes learning. ``target_entropy=None`` means -dim(A).

    ``warmup_steps`` uniform-random actions come before the policy acts and before the
    first gradient step (softlearning used 10 x the episode length; set it per task).
    ``updates_per_step`` is the update-to-data ratio (gradient steps per environment step,
    fractions allowed). ``smoothing`` is the AR(1) coefficient of the exploration latent
    (0 = plain SAC, see :class:`sac_ros.sac.noise.SmoothedNoise`).
    """

    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 1_000_000
    target_entropy: float | None = None
    init_alpha: float = 1.0
    warmup_steps: int = 1000
    updates_per_step: float = 1.0
    smoothing: float = 0.0
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)
        _check(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        _check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        _check(0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.buffer_size >= 2, f"buffer_size must be >= 2, got {self.buffer_size}")
        _check(
            self.target_entropy is None or math.isfinite(self.target_entropy),
            f"target_entropy must be finite or None, got {self.target_entropy}",
        )
        _check(
            self.init_alpha > 0 and math.isfinite(self.init_alpha),
            f"init_alpha must be > 0, got {self.init_alpha}",
        )
        _check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(
            self.updates_per_step > 0 and math.isfinite(self.updates_per_step),
            f"updates_per_step must be > 0, got {self.updates_per_step}",
        )
        _check(0.0 <= self.smoothing < 1.0, f"smoothing must be in [0, 1), got {self.smoothing}")
        resolve_device(self.device)  # raises ValueError on a malformed device string

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SACConfig:
        data = loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise ValueError(f"unknown SACConfig fields: {sorted(set(data) - names)}")
        if "hidden" in data:
            data["hidden"] = tuple(data["hidden"])
        return cls(**data)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; anything else as torch understands it."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: {err}") from err


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
