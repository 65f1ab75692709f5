"""Minitaur (Ghost Robotics): 8 direct-drive motors, two per leg, five-bar legs.

Facts from shared/ROBOTS.md (paper section 7.2, pybullet's minitaur). This module is the
single source of motor order, limits and the leg model; the URDF, the MJCF, the
simulator, the task and the drivers all read it.

Conventions (used by every file of the project):

* Motor angle ``m`` (rad) is the angle of the motor's upper leg measured from the
  upward vertical, each motor of a leg turning the other way, so that both motors at
  ``m = E`` splay the leg's two upper legs symmetrically. The URDF/MJCF joint position of
  a motor *is* its motor angle; the mounting sign lives in the joint axis (see
  :func:`joint_axis_sign`). ``MOTOR_DIRECTIONS`` is the sign between a raw motor
  encoder reading and the motor angle, for hardware drivers.
* Leg model: swing ``S`` (rad, positive = foot forward) and extension ``E`` (rad, the
  mean motor angle of the leg; larger = longer leg). For leg ``i`` with side sign
  ``s_i`` (+1 left, -1 right): ``motor[2i] = E_i - s_i*S_i``, ``motor[2i+1] = E_i + s_i*S_i``.
* Leg plane geometry (hip at the origin, x forward, z up): the upper legs point along
  ``u(psi) = (-sin psi, -cos psi)`` with ``psi = (-S) -/+ (pi - E)``; the two lower legs
  meet at the foot, ``(l1 cos a + sqrt(l2^2 - l1^2 sin^2 a)) * u(-S)``, ``a = pi - E``.
* Actions are normalized to [-1, 1], laid out as (swing_0..swing_3, extension_0..
  extension_3), legs in LEG_NAMES order; 0 is the standing pose (S = 0, E = 2.0).
"""

from __future__ import annotations

import math

import numpy as np

from sac_ros.robots.limits import JointLimits, finite_vector

LEG_NAMES: tuple[str, ...] = ("front_left", "back_left", "front_right", "back_right")
NUM_LEGS = len(LEG_NAMES)
# Motor order of ROBOTS.md: front_leftL, front_leftR, back_leftL, back_leftR, front_rightL...
MOTOR_NAMES: tuple[str, ...] = tuple(f"{leg}{side}" for leg in LEG_NAMES for side in "LR")
JOINT_NAMES: tuple[str, ...] = tuple(f"motor_{name}_joint" for name in MOTOR_NAMES)
# Passive knees: the lower leg hinged to each upper leg (the five-bar's inner joints).
KNEE_JOINT_NAMES: tuple[str, ...] = tuple(f"knee_{name}_joint" for name in MOTOR_NAMES)
NUM_MOTORS = len(MOTOR_NAMES)
IMU_FRAME = "imu_link"  # URDF frame of the IMU readings
MOTOR_DIRECTIONS = np.array((-1, -1, -1, -1, 1, 1, 1, 1), dtype=np.float64)
SIDE_SIGNS = np.array((1.0, 1.0, -1.0, -1.0))  # s_i per leg: +1 left, -1 right
FRONT_LEGS = (0, 2)

# Geometry and masses (pybullet minitaur.urdf, ROBOTS.md).
UPPER_LEG_LENGTH = 0.11  # m
LOWER_LEG_LENGTH = 0.20  # m
CHASSIS_SIZE = (0.33, 0.10, 0.07)  # m, full extents x, y, z
CHASSIS_MASS = 3.0  # kg
MOTOR_MASS = 0.25  # kg
LEG_LINK_MASS = 0.05  # kg, each upper and lower leg
# Hip (motor axis) positions relative to the chassis centre, per leg, in the body frame.
HIP_X = 0.16
HIP_Y = 0.11
HIP_POSITIONS = np.array(
    [(HIP_X, HIP_Y, 0.0), (-HIP_X, HIP_Y, 0.0), (HIP_X, -HIP_Y, 0.0), (-HIP_X, -HIP_Y, 0.0)]
)
FOOT_RADIUS = 0.01

# Motor drive (ROBOTS.md: 16 V, 0.186 ohm, Kt 0.0954 N m/A, PD kp 1.0, kd 0.015 on PWM).
VOLTAGE = 16.0
RESISTANCE = 0.186
TORQUE_CONSTANT = 0.0954
TORQUE_LIMIT = 5.7  # N m
_STALL_GAIN = TORQUE_CONSTANT * VOLTAGE / RESISTANCE  # N m per unit PWM
KP = 1.0 * _STALL_GAIN  # N m / rad, about 8.2
KD = 0.015 * _STALL_GAIN + TORQUE_CONSTANT**2 / RESISTANCE  # N m s / rad (PD + back EMF)

# Leg model ranges and the standing pose.
STANDING_SWING = 0.0
STANDING_EXTENSION = 2.0
SWING_RANGE = (-0.5, 0.5)  # rad
EXTENSION_RANGE = (1.4, 2.6)  # rad; centred on the standing extension
MAX_VELOCITY = 20.0  # rad/s, a conservative limit for the direct-drive motors

# Motor angles stay in (0.5, 3.1): below pi the two upper legs of a leg never cross,
# so the five-bar keeps its shape; the action ranges above map into (0.9, 3.1).
LIMITS = JointLimits(
    names=JOINT_NAMES,
    lower=np.full(NUM_MOTORS, 0.5),
    upper=np.full(NUM_MOTORS, 3.1),
    max_velocity=np.full(NUM_MOTORS, MAX_VELOCITY),
)


def _as_vector(values: np.ndarray, size: int, what: str) -> np.ndarray:
    return finite_vector(values, size, what)


def joint_axis_sign(motor_index: int) -> float:
    """Sign of motor ``motor_index``'s joint axis along the body y axis (left).

    The motors of a leg face each other (L: +1, R: -1 before mirroring) and the right
    side is the mirror image of the left (MOTOR_DIRECTIONS), so the axis is
    ``-direction * (+1 for L, -1 for R)``.
    """
    if not 0 <= motor_index < NUM_MOTORS:
        raise ValueError(f"motor index must be in [0, {NUM_MOTORS}), got {motor_index}")
    lr = 1.0 if motor_index % 2 == 0 else -1.0
    return float(-MOTOR_DIRECTIONS[motor_index] * lr)


def leg_to_motors(swing: np.ndarray, extension: np.ndarray) -> np.ndarray:
    """Swing and extension of the 4 legs -> 8 motor angles (ROBOTS.md formula)."""
    s = _as_vector(swing, NUM_LEGS, "swing")
    e = _as_vector(extension, NUM_LEGS, "extension")
    motors = np.empty(NUM_MOTORS)
    motors[0::2] = e - SIDE_SIGNS * s
    motors[1::2] = e + SIDE_SIGNS * s
    return motors


def motors_to_leg(motor_angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8 motor angles -> (swing, extension) of the 4 legs; inverse of leg_to_motors."""
    m = _as_vector(motor_angles, NUM_MOTORS, "motor angles")
    extension = 0.5 * (m[0::2] + m[1::2])
    swing = 0.5 * SIDE_SIGNS * (m[1::2] - m[0::2])
    return swing, extension


def action_to_leg(action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalized action (8,) in [-1, 1] -> (swing, extension); values outside are clipped."""
    a = np.clip(_as_vector(action, 2 * NUM_LEGS, "action"), -1.0, 1.0)
    swing = _scale(a[:NUM_LEGS], SWING_RANGE)
    extension = _scale(a[NUM_LEGS:], EXTENSION_RANGE)
    return swing, extension


def leg_to_action(swing: np.ndarray, extension: np.ndarray) -> np.ndarray:
    """(swing, extension) -> normalized action; inverse of action_to_leg inside the ranges."""
    s = _as_vector(swing, NUM_LEGS, "swing")
    e = _as_vector(extension, NUM_LEGS, "extension")
    return np.concatenate([_unscale(s, SWING_RANGE), _unscale(e, EXTENSION_RANGE)])


def action_to_motors(action: np.ndarray) -> np.ndarray:
    """Normalized action -> 8 motor angle targets, clipped to LIMITS."""
    return LIMITS.clip(leg_to_motors(*action_to_leg(action)))


def motors_to_action(motor_angles: np.ndarray) -> np.ndarray:
    """8 motor angle targets -> the normalized action they carry out (the inverse of
    action_to_motors inside the action ranges)."""
    return leg_to_action(*motors_to_leg(motor_angles))


def standing_motor_angles() -> np.ndarray:
    return leg_to_motors(np.full(NUM_LEGS, STANDING_SWING), np.full(NUM_LEGS, STANDING_EXTENSION))


def _scale(a: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    low, high = bounds
    return 0.5 * (low + high) + 0.5 * (high - low) * a


def _unscale(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    low, high = bounds
    return (x - 0.5 * (low + high)) / (0.5 * (high - low))


# --- five-bar kinematics (in the leg plane: x forward, z up, hip at the origin) ---------


def upper_leg_angles(motor_angles: np.ndarray) -> np.ndarray:
    """Angle psi of each upper leg about the body y axis from straight down (8,)."""
    m = _as_vector(motor_angles, NUM_MOTORS, "motor angles")
    signs = np.array([joint_axis_sign(k) for k in range(NUM_MOTORS)])
    return math.pi + signs * m


def _direction(psi: np.ndarray) -> np.ndarray:
    return np.stack([-np.sin(psi), -np.cos(psi)], axis=-1)


def leg_length(extension: np.ndarray) -> np.ndarray:
    """Hip-to-foot distance (m) for a leg extension (rad)."""
    a = math.pi - np.asarray(extension, dtype=np.float64)
    l1, l2 = UPPER_LEG_LENGTH, LOWER_LEG_LENGTH
    return l1 * np.cos(a) + np.sqrt(l2**2 - (l1 * np.sin(a)) ** 2)


def foot_positions(motor_angles: np.ndarray) -> np.ndarray:
    """Foot (x, z) of each leg relative to its hip, in the leg plane (4, 2)."""
    swing, extension = motors_to_leg(motor_angles)
    return leg_length(extension)[:, None] * _direction(-swing)


def knee_angles(motor_angles: np.ndarray) -> np.ndarray:
    """Passive knee angles (8,) that close every leg's five-bar at its foot.

    The knee angle is the lower leg's rotation about the body y axis relative to its
    upper leg (0 = straight on), the convention of the URDF and MJCF knee joints.
    """
    psi = upper_leg_angles(motor_angles)
    knees = _direction(psi) * UPPER_LEG_LENGTH  # (8, 2)
    feet = np.repeat(foot_positions(motor_angles), 2, axis=0)
    v = feet - knees
    psi_lower = np.arctan2(-v[:, 0], -v[:, 1])
    return np.angle(np.exp(1j * (psi_lower - psi)))


def forward_swing_foot_x(swing: np.ndarray, extension: np.ndarray) -> np.ndarray:
    """Foot x relative to its hip (m, forward positive) for each leg's swing/extension."""
    s = _as_vector(swing, NUM_LEGS, "swing")
    e = _as_vector(extension, NUM_LEGS, "extension")
    return leg_length(e) * np.sin(s)
