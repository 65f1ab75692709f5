"""What every simulated robot here shares: a MuJoCo model stepped one control period at a
time, names looked up once, a lazy offscreen camera."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np

from sac_ros.robots.models import model_path
from sac_ros.sim.rendering import LazyRenderer


class MujocoModel:
    """``robot``'s MJCF (or ``model_file``), with ``substeps`` physics steps per control
    period at ``control_rate_hz``; :meth:`render` looks through the camera ``camera``."""

    label = "robot"  # for error messages ("the D'Claw model has no joint named ...")

    def __init__(
        self, robot: str, model_file: str | Path | None, control_rate_hz: float, camera: str
    ) -> None:
        if not math.isfinite(control_rate_hz) or control_rate_hz <= 0:
            raise ValueError(f"control rate must be positive, got {control_rate_hz}")
        path = Path(model_file) if model_file is not None else model_path(robot, "mjcf")
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        self.substeps = max(1, round(1.0 / control_rate_hz / self.model.opt.timestep))
        self.dt = self.substeps * self.model.opt.timestep  # one control period, s
        self._camera = camera
        self._renderer: LazyRenderer | None = None

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(self.model, kind, name)
        if index < 0:
            raise ValueError(f"the {self.label} model has no {kind.name} named {name!r}")
        return int(index)

    def _joint_addresses(self, names: list[str] | tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """(qpos, qvel) indices of the named hinge joints, in that order."""
        ids = [self._id(mujoco.mjtObj.mjOBJ_JOINT, n) for n in names]
        return (
            np.array([self.model.jnt_qposadr[j] for j in ids]),
            np.array([self.model.jnt_dofadr[j] for j in ids]),
        )

    def step(self) -> None:
        """Advance one control period."""
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        # mj_step leaves sensors, body poses and forces computed for the state before its
        # last substep: bring them to the state reached, so that the IMU, the camera and
        # the joint readings all describe the same instant.
        mujoco.mj_forward(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def render(self, width: int, height: int) -> np.ndarray:
        """RGB uint8 image (height, width, 3) from the robot's camera; the renderer is lazy."""
        if self._renderer is None:
            self._renderer = LazyRenderer(self.model, self._camera)
        return self._renderer.render(self.data, width, height)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
