"""MuJoCo physics of the Minitaur, with no task or gymnasium logic.

Used by the gymnasium environment and the ROS MuJoCo sim node. One
:meth:`MinitaurSim.step` is one control period (20 ms at 50 Hz). Motor angles follow
the conventions of sac_ros.robots.minitaur (joint position = motor angle).
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np

from sac_ros.robots import minitaur
from sac_ros.robots.limits import finite_vector
from sac_ros.sim.mujoco_model import MujocoModel

CONTROL_RATE_HZ = 50.0
CAMERA = "track"
BASE_JOINT = "base"


class MinitaurSim(MujocoModel):
    """The Minitaur model: 8 motor angle targets in; motors, base pose and IMU out."""

    label = "Minitaur"

    def __init__(
        self, model_file: str | Path | None = None, control_rate_hz: float = CONTROL_RATE_HZ
    ) -> None:
        super().__init__("minitaur", model_file, control_rate_hz, CAMERA)
        self._motor_qpos, self._motor_qvel = self._joint_addresses(minitaur.JOINT_NAMES)
        self._knee_qpos, _ = self._joint_addresses(minitaur.KNEE_JOINT_NAMES)
        self._act = np.array(
            [self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, f"motor_{n}") for n in minitaur.MOTOR_NAMES]
        )
        base = self._id(mujoco.mjtObj.mjOBJ_JOINT, BASE_JOINT)
        self._base_qpos = int(self.model.jnt_qposadr[base])
        self._base_qvel = int(self.model.jnt_dofadr[base])
        self._sensor = {
            name: self._sensor_slice(name)
            for name in ("imu_orientation", "imu_gyro", "imu_accelerometer")
        }
        self.reset()

    def _sensor_slice(self, name: str) -> slice:
        index = self._id(mujoco.mjtObj.mjOBJ_SENSOR, name)
        start = int(self.model.sensor_adr[index])
        return slice(start, start + int(self.model.sensor_dim[index]))

    # --- commands ------------------------------------------------------------------------

    def reset(
        self,
        motor_angles: np.ndarray | None = None,
        position: tuple[float, float] = (0.0, 0.0),
        yaw: float = 0.0,
    ) -> None:
        """Stand the robot on the floor at rest, at ``position`` (x, y) facing ``yaw``.

        Motor angles default to the standing pose and are clipped to the limits; the knees
        are solved so every leg's five-bar is closed, and the base height puts the lowest
        foot on the floor.
        """
        m = minitaur.standing_motor_angles() if motor_angles is None else motor_angles
        m = self._check_motors(m, "motor angles")
        m = minitaur.LIMITS.clip(m)
        x, y = (float(v) for v in position)
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise ValueError(f"position and yaw must be finite, got {position}, {yaw}")
        mujoco.mj_resetData(self.model, self.data)
        height = float(np.max(-minitaur.foot_positions(m)[:, 1])) + minitaur.FOOT_RADIUS
        b = self._base_qpos
        self.data.qpos[b : b + 3] = (x, y, height)
        self.data.qpos[b + 3 : b + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qpos[self._motor_qpos] = m
        self.data.qpos[self._knee_qpos] = minitaur.knee_angles(m)
        self.data.ctrl[self._act] = m
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, motor_angles: np.ndarray) -> None:
        """Motor angle targets (8,), clipped to the joint limits."""
        m = self._check_motors(motor_angles, "motor targets")
        self.data.ctrl[self._act] = minitaur.LIMITS.clip(m)

    # --- state ---------------------------------------------------------------------------

    def motor_angles(self) -> np.ndarray:
        return self.data.qpos[self._motor_qpos].copy()

    def motor_velocities(self) -> np.ndarray:
        return self.data.qvel[self._motor_qvel].copy()

    def motor_torques(self) -> np.ndarray:
        return self.data.actuator_force[self._act].copy()

    def knee_angles(self) -> np.ndarray:
        return self.data.qpos[self._knee_qpos].copy()

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position xyz, orientation quaternion wxyz) of the chassis, as mocap sees it."""
        b = self._base_qpos
        return self.data.qpos[b : b + 3].copy(), self.data.qpos[b + 3 : b + 7].copy()

    def base_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(linear velocity, world frame; angular velocity, body frame) of the chassis."""
        b = self._base_qvel
        return self.data.qvel[b : b + 3].copy(), self.data.qvel[b + 3 : b + 6].copy()

    def imu(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(orientation wxyz, angular velocity rad/s, linear acceleration m/s^2), the last
        two in the IMU (body) frame; at rest the accelerometer reads +9.81 along up."""
        s = self.data.sensordata
        return (
            s[self._sensor["imu_orientation"]].copy(),
            s[self._sensor["imu_gyro"]].copy(),
            s[self._sensor["imu_accelerometer"]].copy(),
        )

    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """RGB uint8 image (height, width, 3) from the tracking camera; lazy renderer."""
        return super().render(width, height)

    @staticmethod
    def _check_motors(values: np.ndarray, what: str) -> np.ndarray:
        return finite_vector(values, minitaur.NUM_MOTORS, what)
