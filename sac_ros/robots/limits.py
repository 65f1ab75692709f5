"""Joint limits and the one function that makes any proposed target safe to send.

Every path to a motor (policy node, drivers, simulators) goes through
:meth:`JointLimits.safe_targets`, so a target can never leave the robot's limits or move
faster than its velocity limit, whatever the policy, a message or a bug proposes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np


def clip(values: np.ndarray, lower: np.ndarray | float, upper: np.ndarray | float) -> np.ndarray:
    """``np.clip`` as two ufuncs: on the control path, where np.clip's Python wrapper costs
    more than the work on a few numbers."""
    return np.minimum(np.maximum(values, lower), upper)


def finite_vector(values: np.ndarray, size: int, what: str) -> np.ndarray:
    """``values`` as a float64 vector of ``size`` finite numbers, or a ValueError naming
    ``what`` and the problem."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{what} must have shape ({size},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite, got {array}")
    return array


@dataclass(frozen=True)
class JointLimits:
    """Position box and velocity limit for an ordered set of joints."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray  # rad/s, per joint

    def __post_init__(self) -> None:
        n = len(self.names)
        for field in ("lower", "upper", "max_velocity"):
            value = np.asarray(getattr(self, field), dtype=np.float64)
            if value.ndim == 0:
                value = np.full(n, float(value))
            if value.shape != (n,):
                raise ValueError(f"{field} has shape {value.shape}, expected ({n},)")
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        if not np.all(np.isfinite(self.lower)) or not np.all(np.isfinite(self.upper)):
            raise ValueError("joint limits must be finite")
        if np.any(self.lower >= self.upper):
            raise ValueError("every lower limit must be below its upper limit")
        if np.any(self.max_velocity <= 0):
            raise ValueError("velocity limits must be positive")

    @property
    def size(self) -> int:
        return len(self.names)

    @cached_property
    def center(self) -> np.ndarray:
        center = 0.5 * (self.lower + self.upper)
        center.setflags(write=False)  # shared, like the limits themselves
        return center

    def denormalize(self, action: np.ndarray) -> np.ndarray:
        """Map a policy action in [-1, 1] (clipped first) to positions in the box."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        return self.lower + 0.5 * (a + 1.0) * (self.upper - self.lower)

    def normalize(self, positions: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`denormalize` for positions inside the box."""
        p = np.asarray(positions, dtype=np.float64)
        return 2.0 * (p - self.lower) / (self.upper - self.lower) - 1.0

    def clip(self, positions: np.ndarray) -> np.ndarray:
        return clip(positions, self.lower, self.upper)

    def contains(self, positions: np.ndarray, tolerance: float = 0.0) -> bool:
        p = np.asarray(positions, dtype=np.float64)
        return bool(
            np.all(np.isfinite(p))
            and np.all(p >= self.lower - tolerance)
            and np.all(p <= self.upper + tolerance)
        )

    def safe_targets(
        self, proposed: np.ndarray, current: np.ndarray, dt: float
    ) -> np.ndarray:
        """Targets that stay inside the box and within ``max_velocity * dt`` of ``current``.

        Non-finite proposals hold the current position (clipped into the box); a wrong
        size raises ValueError, since no sensible target can be guessed from it.
        """
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be positive and finite, got {dt}")
        return self._within(proposed, current, self.max_velocity * dt)

    def _within(self, proposed: np.ndarray, current: np.ndarray, step: np.ndarray) -> np.ndarray:
        """``proposed`` inside the box and within ``step`` of ``current``."""
        proposed = np.asarray(proposed, dtype=np.float64)
        current = np.asarray(current, dtype=np.float64)
        if proposed.shape != (self.size,):
            raise ValueError(f"expected {self.size} targets, got shape {proposed.shape}")
        if current.shape != (self.size,):
            raise ValueError(f"expected {self.size} positions, got shape {current.shape}")
        # A measured position may lie slightly outside the box; start from its clip.
        here = self.clip(np.where(np.isfinite(current), current, self.center))
        wanted = np.where(np.isfinite(proposed), proposed, here)
        return self.clip(clip(wanted, here - step, here + step))

    def ramp(
        self,
        desired: np.ndarray,
        previous_goal: np.ndarray | None,
        measured: np.ndarray,
        dt: float,
        period: float,
        speed: float | None = None,
        min_lead: float = 0.0,
    ) -> np.ndarray:
        """Goals for a position-controlled joint that lags its goal (drivers).

        The goal moves from the previous goal at most ``max_velocity * dt`` (or ``speed``
        when slower: a slow crouch), and never lies farther than ``max_velocity * period``
        (or ``min_lead``, if larger) from the measured position, so a blocked joint cannot
        be wound up. (``min_lead`` keeps a fast loop from starving a torque-controlled
        joint, where the lead is what the PD law pushes with.) Rate limiting against the
        measured position alone would slow the joint to a crawl, as the servo's own lag
        eats the allowed step every cycle. Without a previous goal the ramp starts at the
        measured position; a non-finite measurement is replaced by the previous goal.
        """
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (self.size,):
            raise ValueError(f"expected {self.size} positions, got shape {measured.shape}")
        if not (np.isfinite(period) and period > 0 and np.isfinite(min_lead)):
            raise ValueError(f"period must be positive and min_lead finite: {period}, {min_lead}")
        start = measured if previous_goal is None else np.asarray(previous_goal, np.float64)
        anchor = np.where(np.isfinite(measured), measured, start)
        step = self
        if speed is not None:
            step = replace(self, max_velocity=np.minimum(self.max_velocity, speed))
        goals = step.safe_targets(desired, start, dt)
        return self._within(goals, anchor, np.maximum(self.max_velocity * period, min_lead))
