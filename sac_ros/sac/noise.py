"""Temporally smoothed exploration latent (softlearning's smoothed latent-space policy).

x_t = a * x_{t-1} + sqrt(1 - a^2) * z_t,  z_t ~ N(0, I),  x_0 ~ N(0, I).

This is softlearning's x_t = a x_{t-1} + (1 - a) z_t rescaled by sqrt(1 - a^2) / (1 - a):
an AR(1) process whose marginal is exactly standard normal at every step (the start is
drawn from the stationary law), with lag-1 autocorrelation a. The actor uses x_t as its
standard-normal sample, so the tanh-Gaussian log-probability stays valid. a = 0 gives
independent draws: plain SAC.
"""

from __future__ import annotations

import numpy as np


class SmoothedNoise:
    """AR(1) latent with unit marginal variance. ``reset()`` at each episode start."""

    def __init__(self, action_dim: int, coefficient: float, rng: np.random.Generator) -> None:
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy Generator, got {type(rng)}")
        self.action_dim = action_dim
        self.coefficient = coefficient
        self._rng = rng
        self._state: np.ndarray | None = None

    @property
    def coefficient(self) -> float:
        return self._coefficient

    @coefficient.setter
    def coefficient(self, value: float) -> None:
        """May change while running (a live parameter): the marginal stays N(0, I)."""
        if not 0.0 <= value < 1.0:
            raise ValueError(f"smoothing coefficient must be in [0, 1), got {value}")
        self._coefficient = float(value)
        self._innovation_scale = float(np.sqrt(1.0 - value**2))

    def reset(self) -> None:
        """Forget the past: the next sample is a fresh stationary draw."""
        self._state = None

    def sample(self) -> np.ndarray:
        """The next latent (action_dim,) float32."""
        z = self._rng.standard_normal(self.action_dim)
        if self._state is None:
            self._state = z
        else:
            self._state = self.coefficient * self._state + self._innovation_scale * z
        return self._state.astype(np.float32)
