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
from sac_ros.robots.models import model_path
from sac_ros.sim.rendering import LazyRenderer

CONTROL_RATE_HZ = 50.0
CAMERA = "track"
BASE_JOINT = "base"


class MinitaurSim:
    """The Minitaur model: 8 motor angle targets in; motors, base pose and IMU out."""

    def __init__(
        self, model_file: str | Path | None = None, control_rate_hz: float = CONTROL_RATE_HZ
    ) -> None:
        if not math.isfinite(control_rate_hz) or control_rate_hz <= 0:
            raise ValueError(f"control rate must be positive, got {control_rate_hz}")
        path = Path(model_file) if model_file is not None else model_path("minitaur", "mjcf")
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        self.substeps = max(1, round(1.0 / control_rate_hz / self.model.opt.timestep))
        self.dt = self.substeps * self.model.opt.timestep  # one control period, s

        joint = mujoco.mjtObj.mjOBJ_JOINT
        motors = [self._id(joint, n) for n in minitaur.JOINT_NAMES]
        knees = [self._id(joint, n) for n in minitaur.KNEE_JOINT_NAMES]
        self._motor_qpos = np.array([self.model.jnt_qposadr[j] for j in motors])
        self._motor_qvel = np.array([self.model.jnt_dofadr[j] for j in motors])
        self._knee_qpos = np.array([self.model.jnt_qposadr[j] for j in knees])
        self._act = np.array(
            [self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, f"motor_{n}") for n in minitaur.MOTOR_NAMES]
        )
        base = self._id(joint, BASE_JOINT)
        self._base_qpos = int(self.model.jnt_qposadr[base])
        self._base_qvel = int(self.model.jnt_dofadr[base])
        self._sensor = {
            name: self._sensor_slice(name)
            for name in ("imu_orientation", "imu_gyro", "imu_accelerometer")
        }
        self._renderer: LazyRenderer | None = None
        self.reset()

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(self.model, kind, name)
        if index < 0:
            raise ValueError(f"the Minitaur model has no {kind.name} named {name!r}")
        return int(index)

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

    def step(self) -> None:
        """Advance one control period."""
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)

    # --- state ---------------------------------------------------------------------------

    @property
    def time(self) -> float:
        return float(self.data.time)

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
        if self._renderer is None:
            self._renderer = LazyRenderer(self.model, CAMERA)
        return self._renderer.render(self.data, width, height)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    @staticmethod
    def _check_motors(values: np.ndarray, what: str) -> np.ndarray:
        return finite_vector(values, minitaur.NUM_MOTORS, what)
