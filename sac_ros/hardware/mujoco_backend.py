"""A ServoBackend that runs the MuJoCo D'Claw (sac_ros.sim.DClawSim) behind the emulator.

Motor IDs 10..32 are the nine finger joints (dclaw.MOTOR_IDS order), ID 50 the valve
motor. Time advances with the wall clock: each :meth:`advance` steps the physics by the
elapsed time in whole MuJoCo timesteps (the remainder carries over), so a driver talking
to the emulator sees the hand move in real time. At most ``max_catch_up_s`` is simulated
per call; time beyond that is skipped and counted in ``skipped_s``.

Approximations, documented: a finger motor with torque off gets its position target reset
to its own position every timestep (no actuator force: the joint is limp); the present
current is the actuator force times ``ma_per_nm`` (about 1.5 N m/A for an XH430-W350).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sac_ros.robots import dclaw
from sac_ros.sim.dclaw_sim import DClawSim


class MujocoDClawBackend:
    def __init__(
        self,
        sim: DClawSim | None = None,
        *,
        model_file: str | Path | None = None,
        ma_per_nm: float = 1000.0 / 1.5,
        max_catch_up_s: float = 1.0,
    ) -> None:
        # One DClawSim step per MuJoCo timestep: a control rate above 1/timestep.
        self.sim = sim if sim is not None else DClawSim(model_file, control_rate_hz=1e6)
        self.timestep = self.sim.dt
        if not self.timestep > 0:
            raise ValueError(f"the simulator's step must be positive, got {self.timestep}")
        self.ma_per_nm = float(ma_per_nm)
        self.max_catch_up_s = float(max_catch_up_s)
        self._slot = {motor_id: k for k, motor_id in enumerate(dclaw.MOTOR_IDS)}
        self._targets = self.sim.joint_positions()
        self._torque = np.zeros(dclaw.NUM_JOINTS, dtype=bool)
        self._valve_on = False
        self._valve_goal = self.sim.valve_angle()
        self._pending = 0.0
        self.skipped_s = 0.0
        self.steps = 0
        self._apply_targets()

    @property
    def ids(self) -> tuple[int, ...]:
        return (*dclaw.MOTOR_IDS, dclaw.VALVE_MOTOR_ID)

    def _check(self, motor_id: int) -> None:
        if motor_id not in self._slot and motor_id != dclaw.VALVE_MOTOR_ID:
            raise ValueError(f"motor {motor_id} is not a D'Claw motor {self.ids}")

    def _apply_targets(self) -> None:
        here = self.sim.joint_positions()
        self.sim.set_targets(np.where(self._torque, self._targets, here))

    def set_goal(self, ids: Sequence[int], rad: Sequence[float]) -> None:
        if len(ids) != len(rad):
            raise ValueError(f"{len(ids)} IDs but {len(rad)} goals")
        for motor_id, value in zip(ids, rad, strict=True):
            self._check(motor_id)
            if not math.isfinite(value):
                raise ValueError(f"goal for motor {motor_id} is not finite: {value}")
            if motor_id == dclaw.VALVE_MOTOR_ID:
                self._valve_goal = float(value)
                if self._valve_on:
                    self.sim.set_valve_motor(True, self._valve_goal)
            else:
                self._targets[self._slot[motor_id]] = float(value)
        self._apply_targets()

    def set_torque(self, motor_id: int, on: bool) -> None:
        self._check(motor_id)
        if motor_id == dclaw.VALVE_MOTOR_ID:
            self._valve_on = bool(on)
            self.sim.set_valve_motor(self._valve_on, self._valve_goal if on else None)
        else:
            k = self._slot[motor_id]
            self._torque[k] = bool(on)
            if on:
                self._targets[k] = self.sim.joint_positions()[k]
            self._apply_targets()

    def advance(self, dt: float) -> None:
        if not math.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be finite and >= 0, got {dt}")
        self._pending += dt
        if self._pending > self.max_catch_up_s:
            self.skipped_s += self._pending - self.max_catch_up_s
            self._pending = self.max_catch_up_s
        n = int(self._pending / self.timestep)
        self._pending -= n * self.timestep
        limp = not bool(np.all(self._torque))
        for _ in range(n):
            if limp:
                self._apply_targets()
            self.sim.step()
        self.steps += n

    def state(self, motor_id: int) -> tuple[float, float, float]:
        self._check(motor_id)
        if motor_id == dclaw.VALVE_MOTOR_ID:
            return self.sim.valve_angle(), self.sim.valve_velocity(), 0.0
        k = self._slot[motor_id]
        current = float(self.sim.joint_currents()[k]) * self.ma_per_nm if self._torque[k] else 0.0
        return (
            float(self.sim.joint_positions()[k]),
            float(self.sim.joint_velocities()[k]),
            current,
        )
