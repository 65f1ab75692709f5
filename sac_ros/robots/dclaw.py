"""D'Claw (ROBEL): 3 fingers x 3 joints of Dynamixel X-series servos, plus a valve motor.

Facts from ROBEL (google-research/robel); see shared/ROBOTS.md. This module is the single
source of joint order, IDs, limits and unit conversions: the URDF, the MJCF, the driver
and the tasks all read it (test/test_robot_descriptions.py checks the files agree).
"""

from __future__ import annotations

import math

import numpy as np

from sac_ros.robots.limits import JointLimits

JOINT_NAMES: tuple[str, ...] = (
    "FFJ10", "FFJ11", "FFJ12",
    "MFJ20", "MFJ21", "MFJ22",
    "THJ30", "THJ31", "THJ32",
)  # fmt: skip
MOTOR_IDS: tuple[int, ...] = (10, 11, 12, 20, 21, 22, 30, 31, 32)
VALVE_JOINT = "valve_OBJRx"
CAMERA_FRAME = "camera_optical_frame"  # URDF frame of the camera images (optical axes)
VALVE_MOTOR_ID = 50
NUM_JOINTS = len(JOINT_NAMES)

# Per finger: top (base, abduction), middle, bottom.
_FINGER_LOWER = (-0.48, -math.pi / 3, -math.pi / 2)
_FINGER_UPPER = (0.48, math.pi / 3, math.pi / 2)
MAX_VELOCITY = 2 * math.pi / 3  # rad/s, ROBEL's action rate limit

LIMITS = JointLimits(
    names=JOINT_NAMES,
    lower=np.array(_FINGER_LOWER * 3),
    upper=np.array(_FINGER_UPPER * 3),
    max_velocity=np.full(NUM_JOINTS, MAX_VELOCITY),
)
# The pose ROBEL's turn reward pulls the fingers towards, and where each episode starts
# (the policy node brings the claw there between episodes: dclaw_valve.ClawHoming).
NOMINAL_POSE = np.array((0.0, -math.pi / 3, math.pi / 3) * 3)

CONTROL_RATE_HZ = 10.0

# --- Dynamixel X series (protocol 2.0) units -----------------------------------------
BAUD_RATE = 1_000_000
TICKS_PER_REV = 4096
RAD_PER_TICK = 2 * math.pi / TICKS_PER_REV
RPM_PER_TICK = 0.229
RAD_S_PER_TICK = RPM_PER_TICK * 2 * math.pi / 60
MA_PER_TICK = 1.34


def position_offset(motor_id: int) -> float:
    """Radians at raw position 0: -pi/2 for the top joints (10, 20, 30), else -pi."""
    return -math.pi / 2 if motor_id in (10, 20, 30) else -math.pi


def raw_to_rad(raw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64) * RAD_PER_TICK + offsets


def rad_to_raw(rad: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Nearest integer encoder position (0..4095 for angles inside one turn)."""
    return np.rint((np.asarray(rad, dtype=np.float64) - offsets) / RAD_PER_TICK).astype(np.int64)


DEFAULT_OFFSETS = np.array([position_offset(i) for i in MOTOR_IDS])
VALVE_OFFSET = position_offset(VALVE_MOTOR_ID)
