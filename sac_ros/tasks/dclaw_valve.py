"""D'Claw valve turning (paper section 7.3, ROBEL's turn task): pure numpy functions.

The valve starts at a uniformly random angle; the target is the colored peg facing
right (valve angle TARGET_ANGLE = 0: the peg points along +x, right in the camera
image). Used by the gymnasium environments and by the ROS reward node, so everything
takes plain arrays.

Observations:
  state:  joint positions (9) | joint velocities (9) | cos(valve), sin(valve)  -> (20,)
  pixels: {"image": (32, 32, 3) uint8, "proprio": joint positions (9) | velocities (9)}
          -- never the valve angle.
Actions: 9 values in [-1, 1] -> absolute joint targets inside the joint limits, then
rate limited (ROBEL) by dclaw.LIMITS.safe_targets over one control period.
"""

from __future__ import annotations

import math

import numpy as np

from sac_ros.robots import dclaw
from sac_ros.robots.limits import clip, finite_vector

TARGET_ANGLE = 0.0  # rad: peg facing right
CONTROL_RATE_HZ = dclaw.CONTROL_RATE_HZ
CONTROL_PERIOD = 1.0 / CONTROL_RATE_HZ
EPISODE_STEPS = 80
SUCCESS_THRESHOLD = 0.1  # rad
ACTION_DIM = dclaw.NUM_JOINTS
STATE_DIM = 2 * dclaw.NUM_JOINTS + 2
PROPRIO_DIM = 2 * dclaw.NUM_JOINTS
IMAGE_SHAPE = (32, 32, 3)
NOMINAL_POSE = dclaw.NOMINAL_POSE

# ROBEL's turn reward weights.
W_ERROR = 5.0
W_POSE = 1.0
W_VELOCITY = 1.0
VELOCITY_THRESHOLD = 0.5  # rad/s
BONUS_NEAR = 10.0  # |err| < 0.25
NEAR_THRESHOLD = 0.25
BONUS_SUCCESS = 50.0  # |err| < 0.1


def _finite_scalar(value: float, what: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {value}")
    return x


def _joint_vector(values: np.ndarray, what: str) -> np.ndarray:
    return finite_vector(values, dclaw.NUM_JOINTS, what)


def wrap_angle(angle: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return float((_finite_scalar(angle, "angle") + math.pi) % (2 * math.pi) - math.pi)


def angle_error(valve_angle: float, target: float = TARGET_ANGLE) -> float:
    """target - valve angle, wrapped to [-pi, pi)."""
    return wrap_angle(_finite_scalar(target, "target") - _finite_scalar(valve_angle, "valve angle"))


def is_success(valve_angle: float, target: float = TARGET_ANGLE) -> bool:
    return abs(angle_error(valve_angle, target)) < SUCCESS_THRESHOLD


def reward(
    valve_angle: float,
    joint_positions: np.ndarray,
    joint_velocities: np.ndarray,
    target: float = TARGET_ANGLE,
) -> tuple[float, dict[str, float]]:
    """ROBEL's turn reward and its terms (they sum to the reward)."""
    q = _joint_vector(joint_positions, "joint positions")
    qd = _joint_vector(joint_velocities, "joint velocities")
    err = abs(angle_error(valve_angle, target))
    fast = qd[np.abs(qd) >= VELOCITY_THRESHOLD]
    terms = {
        "target_dist_cost": -W_ERROR * err,
        "pose_diff_cost": -W_POSE * float(np.linalg.norm(q - NOMINAL_POSE)),
        "joint_vel_cost": -W_VELOCITY * float(np.linalg.norm(fast)),
        "bonus_small": BONUS_NEAR * float(err < NEAR_THRESHOLD),
        "bonus_big": BONUS_SUCCESS * float(err < SUCCESS_THRESHOLD),
    }
    return float(sum(terms.values())), terms


# An episode starts with the fingers at rest at the nominal pose, as the environment's
# reset places them (a position-controlled finger rests about 0.03 rad off its target).
START_POSE_TOLERANCE = 0.1  # rad, every joint
START_SPEED = 0.5  # rad/s, every joint


# Bringing the claw home. A fingertip left pressed onto a valve spoke near the hub cannot
# lift straight: the middle joint's lift drives the tip into the spoke and friction holds
# it (in MuJoCo, after episodes of the demo's trained policy, a third of the claws were
# still not home after 40 steps). A finger whose middle joint stalls off the start pose
# first swings sideways at its height, off the spoke, then lifts and swings back; the side
# alternates if it stays caught. Measured on the MuJoCo claw after 40 episodes of that
# policy: home within 20 steps 95% of the time (45% lifting straight), never stuck after
# 40 (35%), median 12 steps (34).
STALL_SPEED = 0.2  # rad/s: a middle joint off the pose and slower than this has stalled
STALL_STEPS = 2  # consecutive stalled steps before the sideways move
UNHOOK_ABDUCTION = 0.3  # rad: how far the stalled finger swings sideways
UNHOOK_STEPS = 6  # 3 swinging at its height, 1 lifting while out, 2 going home


class ClawHoming:
    """Targets (before the rate limit) that bring the claw to its start pose, freeing a
    finger caught on a valve spoke. One per robot; :meth:`reset` when an episode starts."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._stalled = np.zeros(3, dtype=int)  # consecutive stalled steps, per finger
        self._unhook = np.full(3, -1)  # step within a sideways move, -1: none
        self.unhooks = np.zeros(3, dtype=int)  # sideways moves made, per finger

    def goal(self, joint_positions: np.ndarray, joint_velocities: np.ndarray) -> np.ndarray:
        q = _joint_vector(joint_positions, "joint positions")
        qd = _joint_vector(joint_velocities, "joint velocities")
        goal = NOMINAL_POSE.copy()
        for f in range(3):
            base, middle, tip = 3 * f, 3 * f + 1, 3 * f + 2
            if self._unhook[f] < 0:
                off = abs(q[middle] - NOMINAL_POSE[middle]) > START_POSE_TOLERANCE
                stalled = off and abs(qd[middle]) < STALL_SPEED
                self._stalled[f] = self._stalled[f] + 1 if stalled else 0
                if self._stalled[f] >= STALL_STEPS:
                    self._stalled[f], self._unhook[f] = 0, 0
            step = self._unhook[f]
            if step < 0:
                continue
            side = UNHOOK_ABDUCTION if self.unhooks[f] % 2 == 0 else -UNHOOK_ABDUCTION
            if step < 3:  # off the spoke, at the height it is
                goal[base], goal[middle], goal[tip] = side, q[middle], q[tip]
            elif step < UNHOOK_STEPS - 2:  # clear of it: lift
                goal[base] = side
            self._unhook[f] += 1
            if self._unhook[f] >= UNHOOK_STEPS:
                self._unhook[f] = -1
                self.unhooks[f] += 1
        return goal


def claw_at_start(joint_positions: np.ndarray, joint_velocities: np.ndarray) -> bool:
    """The fingers rest at the start pose (within the tolerances above)."""
    return not claw_start_gap(joint_positions, joint_velocities)


def claw_start_gap(joint_positions: np.ndarray, joint_velocities: np.ndarray) -> list[str]:
    """What keeps the claw from its start pose, a phrase per joint (none: it is there)."""
    q = _joint_vector(joint_positions, "joint positions")
    qd = _joint_vector(joint_velocities, "joint velocities")
    off = q - NOMINAL_POSE
    gaps = []
    for name, error, speed in zip(dclaw.JOINT_NAMES, off, qd, strict=True):
        if abs(error) > START_POSE_TOLERANCE:
            gaps.append(f"{name} {error:+.2f} rad off")
        elif abs(speed) > START_SPEED:
            gaps.append(f"{name} moving {speed:+.2f} rad/s")
    return gaps


def sample_initial_angle(rng: np.random.Generator) -> float:
    """Initial valve angle, uniform in [-pi, pi)."""
    return float(rng.uniform(-math.pi, math.pi))


def state_observation(
    joint_positions: np.ndarray, joint_velocities: np.ndarray, valve_angle: float
) -> np.ndarray:
    q = _joint_vector(joint_positions, "joint positions")
    qd = _joint_vector(joint_velocities, "joint velocities")
    angle = _finite_scalar(valve_angle, "valve angle")
    return np.concatenate([q, qd, [math.cos(angle), math.sin(angle)]]).astype(np.float32)


def proprio_observation(joint_positions: np.ndarray, joint_velocities: np.ndarray) -> np.ndarray:
    q = _joint_vector(joint_positions, "joint positions")
    qd = _joint_vector(joint_velocities, "joint velocities")
    return np.concatenate([q, qd]).astype(np.float32)


def pixel_observation(
    image: np.ndarray, joint_positions: np.ndarray, joint_velocities: np.ndarray
) -> dict[str, np.ndarray]:
    img = np.asarray(image)
    if img.shape != IMAGE_SHAPE or img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 {IMAGE_SHAPE}, got {img.dtype} {img.shape}")
    return {
        "image": np.ascontiguousarray(img),
        "proprio": proprio_observation(joint_positions, joint_velocities),
    }


def action_to_targets(
    action: np.ndarray, current_positions: np.ndarray, dt: float = CONTROL_PERIOD
) -> np.ndarray:
    """Normalized action (9,) -> joint targets: absolute positions in the limits,
    rate limited from the current positions (ROBEL). Values outside [-1, 1] are clipped;
    non-finite entries hold the current position (JointLimits.safe_targets)."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (ACTION_DIM,):
        raise ValueError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
    limits = dclaw.LIMITS
    half = 0.5 * (limits.upper - limits.lower)
    proposed = limits.center + half * clip(a, -1.0, 1.0)
    return limits.safe_targets(proposed, np.asarray(current_positions, dtype=np.float64), dt)
