"""MuJoCo physics of the D'Claw and its valve, with no task or gymnasium logic.

Used by the gymnasium environments, the ROS MuJoCo sim node and the Dynamixel servo
emulator alike. One :meth:`DClawSim.step` is one control period (0.1 s at 10 Hz).
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np

from sac_ros.robots import dclaw
from sac_ros.robots.limits import finite_vector
from sac_ros.sim.mujoco_model import MujocoModel

CAMERA = "camera"
IMAGE_SIZE = 32
VALVE_MOTOR = "valve_motor"
VALVE_MOTOR_GROUP = 3  # actuator group of the valve motor in the MJCF


def wrap_angle(angle: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return float((angle + math.pi) % (2 * math.pi) - math.pi)


class DClawSim(MujocoModel):
    """The D'Claw model: joint position targets in, joint and valve state out."""

    label = "D'Claw"

    def __init__(
        self, model_file: str | Path | None = None, control_rate_hz: float = dclaw.CONTROL_RATE_HZ
    ) -> None:
        super().__init__("dclaw", model_file, control_rate_hz, CAMERA)
        self._qpos, self._qvel = self._joint_addresses(dclaw.JOINT_NAMES)
        self._act = np.array([self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in dclaw.JOINT_NAMES])
        valve = self._id(mujoco.mjtObj.mjOBJ_JOINT, dclaw.VALVE_JOINT)
        self._valve_qpos = int(self.model.jnt_qposadr[valve])
        self._valve_qvel = int(self.model.jnt_dofadr[valve])
        self._valve_act = self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, VALVE_MOTOR)
        self.reset(0.0)

    # --- commands ------------------------------------------------------------------------

    def reset(self, valve_angle: float, joint_positions: np.ndarray | None = None) -> None:
        """Place the valve at ``valve_angle`` and the fingers at ``joint_positions``
        (clipped to the joint limits).

        Everything starts at rest; the finger targets hold the new pose; the valve motor
        is switched off so the valve turns freely. Default pose: dclaw.NOMINAL_POSE.
        """
        if not math.isfinite(valve_angle):
            raise ValueError(f"valve angle must be finite, got {valve_angle}")
        q = dclaw.NOMINAL_POSE if joint_positions is None else joint_positions
        q = self._check_joints(q, "joint positions")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos] = dclaw.LIMITS.clip(q)
        self.data.qpos[self._valve_qpos] = valve_angle
        self.data.ctrl[self._act] = self.data.qpos[self._qpos]
        self.set_valve_motor(False)
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, targets: np.ndarray) -> None:
        """Joint position targets (9,), clipped to the joint limits."""
        q = self._check_joints(targets, "joint targets")
        self.data.ctrl[self._act] = dclaw.LIMITS.clip(q)

    def set_valve_motor(self, enabled: bool, target: float | None = None) -> None:
        """Switch the valve motor on (driving to ``target``, default: hold) or off (free)."""
        if enabled:
            here = float(self.data.qpos[self._valve_qpos])
            if target is None:
                goal = here
            elif math.isfinite(target):
                goal = here + wrap_angle(target - here)  # the short way round
            else:
                raise ValueError(f"valve target must be finite, got {target}")
            self.data.ctrl[self._valve_act] = goal
            self.model.opt.disableactuator &= ~(1 << VALVE_MOTOR_GROUP)
        else:
            self.model.opt.disableactuator |= 1 << VALVE_MOTOR_GROUP

    @property
    def valve_motor_enabled(self) -> bool:
        return not self.model.opt.disableactuator & (1 << VALVE_MOTOR_GROUP)

    # --- state ---------------------------------------------------------------------------

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def joint_targets(self) -> np.ndarray:
        return self.data.ctrl[self._act].copy()

    def joint_currents(self) -> np.ndarray:
        """Actuator torques (N m), the stand-in for the servos' present current."""
        return self.data.actuator_force[self._act].copy()

    def valve_angle(self) -> float:
        """Valve angle wrapped to [-pi, pi); 0 = peg facing right (+x)."""
        return wrap_angle(float(self.data.qpos[self._valve_qpos]))

    def valve_velocity(self) -> float:
        return float(self.data.qvel[self._valve_qvel])

    def render(self, width: int = IMAGE_SIZE, height: int = IMAGE_SIZE) -> np.ndarray:
        """RGB uint8 image (height, width, 3) from the `camera`; the renderer is lazy."""
        return super().render(width, height)

    @staticmethod
    def _check_joints(values: np.ndarray, what: str) -> np.ndarray:
        return finite_vector(values, dclaw.NUM_JOINTS, what)
