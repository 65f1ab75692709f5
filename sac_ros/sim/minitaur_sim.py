"""MuJoCo physics of the Minitaur, with no task or gymnasium logic.

Used by the gymnasium environment and the ROS MuJoCo sim node. One
:meth:`MinitaurSim.step` is one control period (20 ms at 50 Hz). Motor angles follow
the conventions of sac_ros.robots.minitaur (joint position = motor angle).

Two command interfaces, as ros2_control would offer them (:meth:`MinitaurSim.use`):

* ``position`` (the default): the MJCF's position actuators, i.e. the motors' own PD
  servo (``minitaur.KP``/``KD``) tracks the angles of :meth:`MinitaurSim.set_targets`;
* ``effort``: the same actuators become plain torque motors (gain 1, no bias: MuJoCo's
  ``motor`` actuator) and :meth:`MinitaurSim.set_torques` gives the torque of each motor
  (N m, clipped to the ``max_torque`` chosen, and to the MJCF's force range). Switching the
  actuators rather than writing ``qfrc_applied`` keeps ``actuator_force`` (the motor
  torques the sim reports) and MuJoCo's own control clamp working in both modes.
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
COMMAND_INTERFACES = ("position", "effort")
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
        m, act = self.model, self._act
        self._servo = (m.actuator_gainprm[act].copy(), m.actuator_biasprm[act].copy(),
                       m.actuator_ctrlrange[act].copy())  # fmt: skip
        self._interface = "position"
        self.max_torque = minitaur.TORQUE_LIMIT
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

    @property
    def command_interface(self) -> str:
        return self._interface

    def use(self, interface: str, max_torque: float = minitaur.TORQUE_LIMIT) -> None:
        """Switch the motors to ``position`` (servo) or ``effort`` (torque) commands.

        ``max_torque`` (N m) bounds the torques in effort mode. The motors start from
        zero torque (effort) or from holding their present angles (position).
        """
        if interface not in COMMAND_INTERFACES:
            raise ValueError(f"interface must be one of {COMMAND_INTERFACES}, got {interface!r}")
        if not (math.isfinite(max_torque) and max_torque > 0):
            raise ValueError(f"max_torque must be positive and finite, got {max_torque}")
        m, act = self.model, self._act
        gain, bias, ctrlrange = self._servo
        if interface == "position":
            m.actuator_gainprm[act], m.actuator_biasprm[act] = gain, bias
            m.actuator_ctrlrange[act] = ctrlrange
        else:
            m.actuator_gainprm[act] = 0.0
            m.actuator_gainprm[act, 0] = 1.0  # force = ctrl
            m.actuator_biasprm[act] = 0.0
            m.actuator_ctrlrange[act] = (-max_torque, max_torque)
        self._interface, self.max_torque = interface, float(max_torque)
        self.data.ctrl[act] = self._resting_ctrl(self.motor_angles())

    def _resting_ctrl(self, motor_angles: np.ndarray) -> np.ndarray:
        """The control of a motor at rest: its angle (position), zero torque (effort)."""
        if self._interface == "effort":
            return np.zeros(minitaur.NUM_MOTORS)
        return minitaur.LIMITS.clip(motor_angles)

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
        self.data.ctrl[self._act] = self._resting_ctrl(m)
        mujoco.mj_forward(self.model, self.data)

    def set_targets(self, motor_angles: np.ndarray) -> None:
        """Motor angle targets (8,), clipped to the joint limits (position interface)."""
        self._require("position", "set_targets")
        m = self._check_motors(motor_angles, "motor targets")
        self.data.ctrl[self._act] = minitaur.LIMITS.clip(m)

    def set_torques(self, torques: np.ndarray) -> None:
        """Motor torques (8,) in N m, clipped to +-max_torque (effort interface)."""
        self._require("effort", "set_torques")
        tau = self._check_motors(torques, "motor torques")
        self.data.ctrl[self._act] = np.clip(tau, -self.max_torque, self.max_torque)

    def _require(self, interface: str, what: str) -> None:
        if self._interface != interface:
            raise ValueError(
                f"{what} needs the {interface} interface; the motors take {self._interface} "
                "commands (MinitaurSim.use)"
            )

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
