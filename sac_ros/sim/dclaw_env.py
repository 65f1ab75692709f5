"""Gymnasium environments for the D'Claw valve task: state and 32x32 pixels.

The reward, success test, observation layout and reset distribution all come from
sac_ros.tasks.dclaw_valve; this module only wires them to the physics (DClawSim).
info at every step: "is_success", "angle_error", "valve_angle" and the reward terms.
The episode ends by truncation after ``episode_steps`` (no termination).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sac_ros.robots import dclaw
from sac_ros.sim.dclaw_sim import DClawSim
from sac_ros.tasks import dclaw_valve as task


class DClawValveEnv(gym.Env):
    """Turn the valve until the peg faces right; ``pixels=True`` hides the valve angle."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(task.CONTROL_RATE_HZ)}

    def __init__(
        self,
        pixels: bool = False,
        episode_steps: int = task.EPISODE_STEPS,
        render_mode: str | None = None,
        render_size: int = 240,
        target_angle: float = task.TARGET_ANGLE,
    ) -> None:
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be at least 1, got {episode_steps}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        if not math.isfinite(target_angle):
            raise ValueError(f"target angle must be finite, got {target_angle}")
        self.pixels = pixels
        self.episode_steps = int(episode_steps)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.target_angle = float(target_angle)
        self.sim = DClawSim()
        self.action_space = spaces.Box(-1.0, 1.0, (task.ACTION_DIM,), np.float32)
        if pixels:
            self.observation_space = spaces.Dict(
                {
                    "image": spaces.Box(0, 255, task.IMAGE_SHAPE, np.uint8),
                    "proprio": spaces.Box(-np.inf, np.inf, (task.PROPRIO_DIM,), np.float32),
                }
            )
        else:
            self.observation_space = spaces.Box(-np.inf, np.inf, (task.STATE_DIM,), np.float32)
        self._steps = 0

    def _observation(self) -> np.ndarray | dict[str, np.ndarray]:
        q, qd = self.sim.joint_positions(), self.sim.joint_velocities()
        if self.pixels:
            height, width = task.IMAGE_SHAPE[:2]
            return task.pixel_observation(self.sim.render(width, height), q, qd)
        return task.state_observation(q, qd, self.sim.valve_angle())

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray | dict[str, np.ndarray], dict[str, Any]]:
        """options: "valve_angle" (default: task.sample_initial_angle)."""
        super().reset(seed=seed)
        options = options or {}
        angle = options.get("valve_angle")
        if angle is None:
            angle = task.sample_initial_angle(self.np_random)
        self.sim.reset(float(angle), dclaw.NOMINAL_POSE)
        self._steps = 0
        return self._observation(), self._info()

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray | dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (task.ACTION_DIM,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {task.ACTION_DIM} finite values, got {a}")
        targets = task.action_to_targets(a, self.sim.joint_positions(), self.sim.dt)
        self.sim.set_targets(targets)
        self.sim.step()
        self._steps += 1
        value, terms = task.reward(
            self.sim.valve_angle(),
            self.sim.joint_positions(),
            self.sim.joint_velocities(),
            self.target_angle,
        )
        info = self._info()
        info.update(terms)
        truncated = self._steps >= self.episode_steps
        return self._observation(), value, False, truncated, info

    def _info(self) -> dict[str, Any]:
        angle = self.sim.valve_angle()
        return {
            "is_success": task.is_success(angle, self.target_angle),
            "angle_error": task.angle_error(angle, self.target_angle),
            "valve_angle": angle,
        }

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.sim.render(self.render_size, self.render_size)

    def close(self) -> None:
        self.sim.close()
