"""The Minitaur's joint PD law, for a driver that commands motor torques (no ROS).

Effort mode of the Minitaur driver: ros2_control takes torques (a forward command
controller on the motors' effort interfaces) and the driver closes the position loop
itself, every tick, from the latest joint reading::

    tau = clip(kp * (q_target - q) - kd * qdot, -max_torque, max_torque)

Torque off is zero torque, never "no command": a forward command controller keeps
applying the last torque it was sent, so :meth:`MotorPD.torques` always returns 8
torques, zeros where it cannot compute the law:

* motors off (no targets: e-stop, watchdog ``disable``) -> all zero;
* no joint reading yet, or one older than ``max_age`` -> all zero;
* a motor whose reading (position or velocity) or target is not finite -> zero for
  that motor, the others keep their PD.

The defaults are pybullet's motor model in N m (``sac_ros.robots.minitaur.KP``/``KD``, the
MJCF's position actuators) and its torque limit ``TORQUE_LIMIT``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sac_ros.robots import minitaur

ZERO_TORQUE = np.zeros(minitaur.NUM_MOTORS)
ZERO_TORQUE.setflags(write=False)


@dataclass(frozen=True)
class PDGains:
    kp: float = minitaur.KP  # N m / rad
    kd: float = minitaur.KD  # N m s / rad
    max_torque: float = minitaur.TORQUE_LIMIT  # N m, per motor

    def __post_init__(self) -> None:
        for name in ("kp", "kd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(self.max_torque) and self.max_torque > 0):
            raise ValueError(f"max_torque must be positive and finite, got {self.max_torque}")


def pd_torques(
    gains: PDGains, targets: np.ndarray, position: np.ndarray, velocity: np.ndarray
) -> np.ndarray:
    """``clip(kp (targets - position) - kd velocity, +-max_torque)``, zero for every motor
    with a non-finite input (or inputs so large that the law is undefined). The three
    vectors must have the same shape."""
    targets, position, velocity = (
        np.asarray(v, dtype=np.float64) for v in (targets, position, velocity)
    )
    if not targets.shape == position.shape == velocity.shape:
        raise ValueError(
            f"targets {targets.shape}, positions {position.shape} and velocities "
            f"{velocity.shape} must have the same shape"
        )
    with np.errstate(invalid="ignore", over="ignore"):
        tau = gains.kp * (targets - position) - gains.kd * velocity
    valid = np.isfinite(targets) & np.isfinite(position) & np.isfinite(velocity)
    valid &= ~np.isnan(tau)  # inf - inf from absurd (finite) readings: no torque either
    return np.where(valid, np.clip(tau, -gains.max_torque, gains.max_torque), 0.0)


class MotorPD:
    """The PD law fed the latest joint reading; :meth:`torques` each control tick."""

    def __init__(self, gains: PDGains, max_age: float) -> None:
        if not (math.isfinite(max_age) and max_age > 0):
            raise ValueError(f"max_age must be positive and finite, got {max_age}")
        self.gains = gains
        self.max_age = max_age
        self._position = np.full(minitaur.NUM_MOTORS, np.nan)
        self._velocity = np.full(minitaur.NUM_MOTORS, np.nan)
        self._read_at = -math.inf
        self.counts = {"pd_ticks": 0, "torque_off_ticks": 0, "saturated_ticks": 0}

    def reading(self, position: np.ndarray, velocity: np.ndarray, now: float) -> None:
        """The latest measured motor angles and velocities (8 each), taken at ``now``."""
        position = np.asarray(position, dtype=np.float64)
        velocity = np.asarray(velocity, dtype=np.float64)
        if position.shape != (minitaur.NUM_MOTORS,) or velocity.shape != position.shape:
            raise ValueError(
                f"expected 8 positions and 8 velocities, got {position.shape}, {velocity.shape}"
            )
        self._position, self._velocity, self._read_at = position.copy(), velocity.copy(), now

    def fresh(self, now: float) -> bool:
        return 0.0 <= now - self._read_at <= self.max_age

    def torques(self, targets: np.ndarray | None, now: float) -> np.ndarray:
        """The torques to send: the PD law towards ``targets``; zeros for ``None`` (motors
        off) or without a fresh reading."""
        if targets is None or not self.fresh(now):
            self.counts["torque_off_ticks"] += 1
            return ZERO_TORQUE.copy()
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (minitaur.NUM_MOTORS,):
            raise ValueError(f"expected 8 motor targets, got shape {targets.shape}")
        tau = pd_torques(self.gains, targets, self._position, self._velocity)
        self.counts["pd_ticks"] += 1
        if np.any(np.abs(tau) >= self.gains.max_torque):
            self.counts["saturated_ticks"] += 1
        return tau
