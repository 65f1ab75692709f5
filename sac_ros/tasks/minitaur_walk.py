"""Minitaur walking (paper section 7.2): pure numpy functions and a small history class.

Used by the gymnasium environment and by the ROS policy and reward nodes, so everything
takes plain arrays (motor angles, IMU quaternion and rates, motion-capture positions
with their timestamps).

Control: 50 Hz (CONTROL_RATE_HZ); at most 500 steps (10 s) per episode.
Observation (12,): 8 motor angles | roll | pitch | roll rate | pitch rate
    (rates are the IMU gyro's body x and y components; yaw is left out: it drifts).
State (112,) = History layout:
    [o_t, o_{t-1}, ..., o_{t-5}]      6 x 12 = 72   current and past five observations
    [a_{t-1}, a_{t-2}, ..., a_{t-5}]  5 x 8  = 40   past five actions (normalized)
Action (8,) in [-1, 1]: (swing_0..3, extension_0..3), see sac_ros.robots.minitaur.
Reward = forward velocity (m/s along the arena's +x, from successive motion-capture
    positions and timestamps)
    - W_ACCELERATION * mean |angular acceleration| of the motor targets of the last
      three actions (second finite difference over the control period, rad/s^2)
    - W_PITCH * pitch^2
    - W_FRONT * sum over the front legs of how far (m) the foot is behind its hip
      (front legs extended under the body), from the commanded swing and extension.
Termination: |roll| > 0.3 or |pitch| > 0.3 rad, or body up-vector z < 0.85.
Reset: standing pose (S = 0, E = 2.0) with uniform noise on every swing and extension.
"""

from __future__ import annotations

import math

import numpy as np

from sac_ros.robots import minitaur
from sac_ros.robots.limits import finite_vector

CONTROL_RATE_HZ = 50.0
CONTROL_PERIOD = 1.0 / CONTROL_RATE_HZ
MAX_STEPS = 500
NUM_MOTORS = minitaur.NUM_MOTORS
OBS_DIM = NUM_MOTORS + 4
ACTION_DIM = 2 * minitaur.NUM_LEGS
HISTORY_LENGTH = 5
STATE_DIM = (HISTORY_LENGTH + 1) * OBS_DIM + HISTORY_LENGTH * ACTION_DIM

ROLL_LIMIT = 0.3  # rad
PITCH_LIMIT = 0.3  # rad
UP_Z_LIMIT = 0.85

W_ACCELERATION = 1e-4  # per rad/s^2
W_PITCH = 2.0  # per rad^2
W_FRONT = 2.0  # per m
RESET_NOISE = 0.05  # rad, half-width of the uniform noise on swing and extension


def _vector(values: np.ndarray, size: int, what: str) -> np.ndarray:
    return finite_vector(values, size, what)


def _scalar(value: float, what: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {value}")
    return x


# --- orientation -------------------------------------------------------------------------


def _unit_quaternion(quaternion: np.ndarray) -> np.ndarray:
    q = _vector(quaternion, 4, "quaternion (w, x, y, z)")
    norm = float(np.linalg.norm(q))
    if norm < 1e-9:
        raise ValueError("quaternion must not be zero")
    return q / norm


def roll_pitch(quaternion: np.ndarray) -> tuple[float, float]:
    """Roll (about x) and pitch (about y) of a wxyz quaternion, z-y-x Euler convention."""
    w, x, y, z = _unit_quaternion(quaternion)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    return roll, pitch


def up_z(quaternion: np.ndarray) -> float:
    """World z component of the body's up axis."""
    _, x, y, _ = _unit_quaternion(quaternion)
    return float(1 - 2 * (x * x + y * y))


# --- observation and state ---------------------------------------------------------------


def observation(
    motor_angles: np.ndarray, roll: float, pitch: float, roll_rate: float, pitch_rate: float
) -> np.ndarray:
    m = _vector(motor_angles, NUM_MOTORS, "motor angles")
    values = {"roll": roll, "pitch": pitch, "roll rate": roll_rate, "pitch rate": pitch_rate}
    rest = [_scalar(value, name) for name, value in values.items()]
    return np.concatenate([m, rest]).astype(np.float32)


def imu_observation(
    motor_angles: np.ndarray, quaternion: np.ndarray, angular_velocity: np.ndarray
) -> np.ndarray:
    """Observation from motor angles, the IMU quaternion and its body-frame gyro."""
    roll, pitch = roll_pitch(quaternion)
    gyro = _vector(angular_velocity, 3, "angular velocity")
    return observation(motor_angles, roll, pitch, gyro[0], gyro[1])


class History:
    """The policy's state: current and past observations, past actions (module docstring)."""

    def __init__(self, length: int = HISTORY_LENGTH) -> None:
        if length < 0:
            raise ValueError(f"history length must be non-negative, got {length}")
        self.length = length
        self._observations = np.zeros((length + 1, OBS_DIM), dtype=np.float32)
        self._actions = np.zeros((length, ACTION_DIM), dtype=np.float32)

    @property
    def state_dim(self) -> int:
        return self._observations.size + self._actions.size

    def reset(self, first_observation: np.ndarray, action: np.ndarray | None = None) -> np.ndarray:
        """Fill every observation slot with ``first_observation`` and every action slot
        with ``action`` (default 0: the standing pose); return the state."""
        obs = _vector(first_observation, OBS_DIM, "observation")
        act = np.zeros(ACTION_DIM) if action is None else _vector(action, ACTION_DIM, "action")
        self._observations[:] = obs
        self._actions[:] = act
        return self.state()

    def push(self, action: np.ndarray, next_observation: np.ndarray) -> np.ndarray:
        """Record the action just taken and the observation that followed; return the state."""
        act = _vector(action, ACTION_DIM, "action")
        obs = _vector(next_observation, OBS_DIM, "observation")
        if self.length:
            self._actions[1:] = self._actions[:-1]
            self._actions[0] = act
        self._observations[1:] = self._observations[:-1]
        self._observations[0] = obs
        return self.state()

    def state(self) -> np.ndarray:
        return np.concatenate([self._observations.ravel(), self._actions.ravel()])


# --- reward, termination, reset -----------------------------------------------------------


def forward_velocity(
    previous_position: np.ndarray, position: np.ndarray, previous_time: float, time: float
) -> float:
    """Velocity (m/s) along +x between two timestamped positions (motion capture)."""
    p0 = _vector(previous_position, 3, "previous position")
    p1 = _vector(position, 3, "position")
    dt = _scalar(time, "time") - _scalar(previous_time, "previous time")
    if dt <= 0:
        raise ValueError(f"timestamps must increase, got a step of {dt} s")
    return float((p1[0] - p0[0]) / dt)


def action_to_targets(
    action: np.ndarray, motor_angles: np.ndarray, dt: float = CONTROL_PERIOD
) -> np.ndarray:
    """Normalized action (8,) -> motor targets: the leg model's angles, rate limited from
    the measured motor angles (JointLimits.safe_targets). What the robot is sent, in the
    gymnasium environment and from the policy node alike. Values outside [-1, 1] are
    clipped; a wrong size or a non-finite value raises ValueError."""
    proposed = minitaur.action_to_motors(action)
    return minitaur.LIMITS.safe_targets(proposed, motor_angles, dt)


def target_acceleration(recent_actions: np.ndarray, dt: float = CONTROL_PERIOD) -> float:
    """Mean |second difference| / dt^2 of the motor targets of the last three actions
    (rows oldest first), in rad/s^2."""
    actions = np.asarray(recent_actions, dtype=np.float64)
    if actions.shape != (3, ACTION_DIM):
        raise ValueError(f"recent actions must have shape (3, {ACTION_DIM}), got {actions.shape}")
    if _scalar(dt, "dt") <= 0:
        raise ValueError(f"dt must be positive, got {dt}")
    targets = np.stack([minitaur.action_to_motors(a) for a in actions])
    second = targets[2] - 2 * targets[1] + targets[0]
    return float(np.mean(np.abs(second)) / dt**2)


def front_feet_under_body(action: np.ndarray) -> float:
    """Sum over the front legs of how far (m) the commanded foot lies behind its hip."""
    swing, extension = minitaur.action_to_leg(action)
    foot_x = minitaur.forward_swing_foot_x(swing, extension)
    return float(sum(max(0.0, -foot_x[i]) for i in minitaur.FRONT_LEGS))


def reward(
    previous_position: np.ndarray,
    position: np.ndarray,
    previous_time: float,
    time: float,
    recent_actions: np.ndarray,
    pitch: float,
    dt: float = CONTROL_PERIOD,
) -> tuple[float, dict[str, float]]:
    """Reward of one step and its terms (they sum to the reward); see the module docstring.

    ``recent_actions``: the last three normalized actions, oldest first (the newest is
    the action of this step).
    """
    actions = np.asarray(recent_actions, dtype=np.float64)
    terms = {
        "forward_velocity": forward_velocity(previous_position, position, previous_time, time),
        "acceleration_cost": -W_ACCELERATION * target_acceleration(actions, dt),
        "pitch_cost": -W_PITCH * _scalar(pitch, "pitch") ** 2,
        "front_leg_cost": -W_FRONT * front_feet_under_body(actions[-1]),
    }
    return float(sum(terms.values())), terms


def is_terminated(quaternion: np.ndarray) -> bool:
    """Fallen: |roll| or |pitch| over 0.3 rad, or up-vector z under 0.85."""
    roll, pitch = roll_pitch(quaternion)
    return abs(roll) > ROLL_LIMIT or abs(pitch) > PITCH_LIMIT or up_z(quaternion) < UP_Z_LIMIT


def sample_reset_pose(rng: np.random.Generator, noise: float = RESET_NOISE) -> np.ndarray:
    """Motor angles (8,) of the standing pose with uniform noise on swing and extension."""
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    legs = minitaur.NUM_LEGS
    swing = minitaur.STANDING_SWING + rng.uniform(-noise, noise, legs)
    extension = minitaur.STANDING_EXTENSION + rng.uniform(-noise, noise, legs)
    return minitaur.leg_to_motors(swing, extension)
