"""Gymnasium environment for Minitaur walking, built on sac_ros.tasks.minitaur_walk.

The observation is the task's history state (112,); the action (8,) in [-1, 1] is swing
and extension per leg, turned into motor targets by the leg model. info at every step:
"is_success" (False until fallen-free to the time limit, then True: the episode ended
upright), "distance" (m along +x since reset) and the reward terms.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sac_ros.robots import minitaur
from sac_ros.sim.minitaur_sim import MinitaurSim
from sac_ros.tasks import minitaur_walk as task


class MinitaurWalkEnv(gym.Env):
    """Walk forward (+x) without falling, for at most ``max_steps`` steps."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(task.CONTROL_RATE_HZ)}

    def __init__(
        self,
        max_steps: int = task.MAX_STEPS,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
        reset_noise: float = task.RESET_NOISE,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.reset_noise = float(reset_noise)
        self.sim = MinitaurSim(control_rate_hz=task.CONTROL_RATE_HZ)
        self.history = task.History()
        self.action_space = spaces.Box(-1.0, 1.0, (task.ACTION_DIM,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (task.STATE_DIM,), np.float32)
        self._recent_actions = np.zeros((3, task.ACTION_DIM))
        self._steps = 0
        self._start_x = 0.0
        self._position = np.zeros(3)
        self._time = 0.0

    def _observation(self) -> np.ndarray:
        quaternion, gyro, _ = self.sim.imu()
        return task.imu_observation(self.sim.motor_angles(), quaternion, gyro)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """options: "motor_angles" (default: task.sample_reset_pose)."""
        super().reset(seed=seed)
        options = options or {}
        motors = options.get("motor_angles")
        if motors is None:
            motors = task.sample_reset_pose(self.np_random, self.reset_noise)
        self.sim.reset(np.asarray(motors, dtype=np.float64))
        self._steps = 0
        self._recent_actions[:] = 0.0
        self._position, _ = self.sim.base_pose()
        self._time = self.sim.time
        self._start_x = float(self._position[0])
        state = self.history.reset(self._observation())
        return state.astype(np.float32), {"is_success": False, "distance": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (task.ACTION_DIM,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {task.ACTION_DIM} finite values, got {a}")
        a = np.clip(a, -1.0, 1.0)
        # Rate limited from the measured angles, as the policy node sends them to the robot.
        targets = task.action_to_targets(a, self.sim.motor_angles(), self.sim.dt)
        self.sim.set_targets(targets)
        self.sim.step()
        self._steps += 1
        self._recent_actions = np.roll(self._recent_actions, -1, axis=0)
        # The smoothness and front-leg costs judge what the motors were sent, as the
        # reward node does from the commands it hears.
        self._recent_actions[-1] = minitaur.motors_to_action(targets)

        position, quaternion = self.sim.base_pose()
        roll, pitch = task.roll_pitch(quaternion)
        value, terms = task.reward(
            self._position, position, self._time, self.sim.time, self._recent_actions, pitch
        )
        self._position, self._time = position, self.sim.time
        state = self.history.push(a, self._observation())
        terminated = task.is_terminated(quaternion)
        truncated = not terminated and self._steps >= self.max_steps
        info: dict[str, Any] = {
            "is_success": truncated,
            "distance": float(position[0] - self._start_x),
            "roll": roll,
            "pitch": pitch,
        }
        info.update(terms)
        return state.astype(np.float32), value, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.sim.render(*self.render_size)

    def close(self) -> None:
        self.sim.close()
