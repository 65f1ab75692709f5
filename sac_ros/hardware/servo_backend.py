"""What moves behind the emulated servos: the ServoBackend interface and a simple model.

The emulator speaks the protocol; a backend decides how the joints respond. Units are
SI at this boundary (rad, rad/s, mA); the emulator converts to and from encoder ticks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ServoBackend(Protocol):
    """Physics behind a set of position-controlled servos, addressed by motor ID."""

    def set_goal(self, ids: Sequence[int], rad: Sequence[float]) -> None:
        """New goal positions (only called for motors whose torque is on)."""

    def set_torque(self, motor_id: int, on: bool) -> None:
        """Torque on holds/moves to the goal; off leaves the joint free."""

    def advance(self, dt: float) -> None:
        """Move time forward by ``dt`` seconds."""

    def state(self, motor_id: int) -> tuple[float, float, float]:
        """(position rad, velocity rad/s, current mA)."""


class FirstOrderServos:
    """Each motor approaches its goal like a first-order lag with a speed cap.

    With torque on, velocity = clip((goal - position) / time_constant, +-max_speed), solved
    exactly over any ``dt`` (a linear phase at the speed cap, then an exponential one).
    The current is proportional to the position error (a stiff P controller), clipped.
    With torque off the joint stays where it is unless something moves it:
    :meth:`set_position` stands for a hand or an object pushing it.
    """

    def __init__(
        self,
        ids: Iterable[int],
        initial: dict[int, float] | None = None,
        *,
        max_speed: float = 5.0,
        time_constant: float = 0.05,
        ma_per_rad: float = 1500.0,
        max_current: float = 1500.0,
    ) -> None:
        self.ids = tuple(int(i) for i in ids)
        if len(set(self.ids)) != len(self.ids) or not self.ids:
            raise ValueError(f"motor IDs must be unique and non-empty, got {self.ids}")
        if max_speed <= 0 or time_constant <= 0:
            raise ValueError("max_speed and time_constant must be positive")
        self._index = {motor_id: k for k, motor_id in enumerate(self.ids)}
        n = len(self.ids)
        self.position = np.zeros(n)
        for motor_id, rad in (initial or {}).items():
            self.position[self._slot(motor_id)] = float(rad)
        self.velocity = np.zeros(n)
        self.goal = self.position.copy()
        self.torque = np.zeros(n, dtype=bool)
        self.max_speed = float(max_speed)
        self.time_constant = float(time_constant)
        self.ma_per_rad = float(ma_per_rad)
        self.max_current = float(max_current)

    def _slot(self, motor_id: int) -> int:
        try:
            return self._index[int(motor_id)]
        except KeyError:
            raise ValueError(f"motor {motor_id} is not in this backend {self.ids}") from None

    def set_goal(self, ids: Sequence[int], rad: Sequence[float]) -> None:
        if len(ids) != len(rad):
            raise ValueError(f"{len(ids)} IDs but {len(rad)} goals")
        for motor_id, value in zip(ids, rad, strict=True):
            if not math.isfinite(value):
                raise ValueError(f"goal for motor {motor_id} is not finite: {value}")
            self.goal[self._slot(motor_id)] = float(value)

    def set_torque(self, motor_id: int, on: bool) -> None:
        k = self._slot(motor_id)
        self.torque[k] = bool(on)
        if not on:
            self.velocity[k] = 0.0

    def set_position(self, motor_id: int, rad: float) -> None:
        """Move a joint from outside (a hand turning the valve), goal untouched."""
        self.position[self._slot(motor_id)] = float(rad)

    def advance(self, dt: float) -> None:
        if not math.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be finite and >= 0, got {dt}")
        if dt == 0:
            return
        on = self.torque
        error = self.goal - self.position
        distance = np.abs(error)
        sign = np.sign(error)
        knee = self.max_speed * self.time_constant  # error below which the lag is linear
        # Linear phase at the speed cap until |error| reaches the knee.
        t_linear = np.maximum(distance - knee, 0.0) / self.max_speed
        in_linear = dt <= t_linear
        linear_pos = self.position + sign * self.max_speed * dt
        after_linear = np.maximum(dt - t_linear, 0.0)  # only used where dt > t_linear
        remaining = np.minimum(distance, knee) * np.exp(-after_linear / self.time_constant)
        exp_pos = self.goal - sign * remaining
        new_pos = np.where(in_linear, linear_pos, exp_pos)
        new_vel = np.where(in_linear, sign * self.max_speed, sign * remaining / self.time_constant)
        self.position = np.where(on, new_pos, self.position)
        self.velocity = np.where(on, new_vel, 0.0)

    def state(self, motor_id: int) -> tuple[float, float, float]:
        k = self._slot(motor_id)
        current = 0.0
        if self.torque[k]:
            current = float(
                np.clip(self.ma_per_rad * (self.goal[k] - self.position[k]),
                        -self.max_current, self.max_current)
            )  # fmt: skip
        return float(self.position[k]), float(self.velocity[k]), current
