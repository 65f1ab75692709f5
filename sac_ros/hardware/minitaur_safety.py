"""Minitaur safety core (no ROS, no transport): what the 8 motors may be asked to do.

The Minitaur driver passes every policy command through :meth:`MinitaurSafety.command`
and, each control tick, the measured motor angles and the IMU orientation through
:meth:`MinitaurSafety.update`, which returns the targets to send (or None: motors off).

* Targets are clipped to the joint limits and ramp from the last targets sent at the
  velocity limit, never farther than one period's travel (at least ``min_lead_rad``) from
  the measured angles (``JointLimits.ramp``); wrong sizes or non-finite values raise
  ValueError.
* Fall detection: ``|roll|`` or ``|pitch|`` beyond ``fall_threshold_rad`` (from the IMU
  quaternion, x y z w as in sensor_msgs/Imu), or an orientation that is not a valid
  quaternion, latches mode ``fallen``: the legs ramp to ``crouch_pose`` at
  ``crouch_velocity`` rad/s (motors that were off stay off), commands are ignored until
  :meth:`reset_fall` (which requires the body upright again).
* Watchdog: no command for ``watchdog_timeout_s`` -> ``hold`` (freeze at the measured
  angles), ``crouch`` (ramp to the crouch pose) or ``disable`` (motors off).
* E-stop: motors off until :meth:`release_estop`.
* Idle (before the first command, after an e-stop or a fall): hold the angles measured
  when idle began.

The joint limits and the crouch pose are parameters; :func:`default_config` takes the
Minitaur's limits from ``sac_ros.robots.minitaur`` and crouches at the shortest leg
extension of the action range with zero swing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from sac_ros.robots import minitaur
from sac_ros.robots.limits import JointLimits

WATCHDOG_ACTIONS = ("hold", "crouch", "disable")
LATE_TICKS = 3  # a gap of up to this many control periods is a late tick, not a pause


class SafetyMode(str, Enum):
    IDLE = "idle"  # no command yet: hold the pose measured when idle began
    RUNNING = "running"
    HOLDING = "holding"  # watchdog: frozen
    CROUCHING = "crouching"  # watchdog: ramping to the crouch pose
    FALLEN = "fallen"  # latched until reset_fall()
    DISABLED = "disabled"  # watchdog with action "disable": motors off until a command
    ESTOP = "estop"


@dataclass(frozen=True)
class MinitaurSafetyConfig:
    limits: JointLimits
    crouch_pose: np.ndarray
    control_period_s: float = 0.01
    fall_threshold_rad: float = 0.6
    crouch_velocity: float = 0.5  # rad/s, the slow ramp after a fall
    watchdog_timeout_s: float = 0.25
    watchdog_action: str = "crouch"
    # A goal may always lead the measured angle by this much, however fast the ticks come
    # (above it, one tick's travel at the velocity limit): with the driver's PD the lead is
    # the torque a loaded leg is held with, kp x 0.2 rad = 1.6 N m.
    min_lead_rad: float = 0.2
    _crouch_limits: JointLimits = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.limits.size != 8:
            raise ValueError(f"the Minitaur has 8 motors, limits name {self.limits.size}")
        pose = np.asarray(self.crouch_pose, dtype=np.float64)
        if pose.shape != (8,) or not self.limits.contains(pose):
            raise ValueError(f"crouch_pose must be 8 angles inside the limits, got {pose}")
        pose.setflags(write=False)
        object.__setattr__(self, "crouch_pose", pose)
        for name in (
            "control_period_s",
            "fall_threshold_rad",
            "crouch_velocity",
            "watchdog_timeout_s",
            "min_lead_rad",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if self.watchdog_action not in WATCHDOG_ACTIONS:
            raise ValueError(
                f"watchdog_action must be one of {WATCHDOG_ACTIONS}, got {self.watchdog_action!r}"
            )
        slow = np.minimum(self.limits.max_velocity, self.crouch_velocity)
        object.__setattr__(
            self,
            "_crouch_limits",
            JointLimits(self.limits.names, self.limits.lower, self.limits.upper, slow),
        )

    @property
    def crouch_limits(self) -> JointLimits:
        """The joint limits with the slow crouch velocity."""
        return self._crouch_limits


def default_config(**overrides: object) -> MinitaurSafetyConfig:
    """The Minitaur's limits and a crouch at the shortest extension; ``overrides`` replace
    any other field."""
    crouch = minitaur.leg_to_motors(
        np.zeros(minitaur.NUM_LEGS), np.full(minitaur.NUM_LEGS, minitaur.EXTENSION_RANGE[0])
    )
    values: dict[str, object] = {"limits": minitaur.LIMITS, "crouch_pose": crouch}
    values.update(overrides)
    return MinitaurSafetyConfig(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SafetyOutput:
    targets: np.ndarray | None  # None: turn the motors off
    mode: SafetyMode
    roll: float
    pitch: float
    reason: str | None


def roll_pitch(quaternion_xyzw: np.ndarray) -> tuple[float, float]:
    """Roll and pitch (rad) of a unit quaternion given as (x, y, z, w).

    Raises ValueError for a wrong shape, non-finite values or a norm far from 1.
    """
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(f"a quaternion has 4 components (x, y, z, w), got shape {q.shape}")
    norm = float(np.linalg.norm(q))
    if not np.all(np.isfinite(q)) or not 0.9 < norm < 1.1:
        raise ValueError(f"not a unit quaternion: {q}")
    x, y, z, w = q / norm
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    return roll, pitch


class MinitaurSafety:
    def __init__(self, config: MinitaurSafetyConfig) -> None:
        self.config = config
        self._mode = SafetyMode.IDLE
        self._desired: np.ndarray | None = None
        self._hold: np.ndarray | None = None  # holding, idle: the pose to keep
        self._limp = False  # fallen while the motors were off: they stay off
        self._last_command = -math.inf
        self._goal: np.ndarray | None = None  # the last targets sent, and when
        self._goal_time = -math.inf
        self._reason: str | None = None
        self.counts = {"commands": 0, "ignored_commands": 0, "falls": 0, "watchdog_trips": 0}
        self._last_roll_pitch = (math.nan, math.nan)

    @property
    def mode(self) -> SafetyMode:
        return self._mode

    @property
    def reason(self) -> str | None:
        """Why the motors are held, crouched or off (None while running or idle)."""
        return self._reason

    def command(self, targets: np.ndarray | list[float], now: float) -> bool:
        """New motor targets; True if they will be followed, False if ignored (fallen or
        e-stopped)."""
        proposed = np.asarray(targets, dtype=np.float64)
        if proposed.shape != (8,):
            raise ValueError(f"expected 8 motor targets, got shape {proposed.shape}")
        if not np.all(np.isfinite(proposed)):
            raise ValueError(f"non-finite motor targets: {proposed}")
        if self._mode in (SafetyMode.FALLEN, SafetyMode.ESTOP):
            self.counts["ignored_commands"] += 1
            return False
        self._desired = proposed.copy()
        self._last_command = now
        self._mode = SafetyMode.RUNNING
        self._reason = None
        self.counts["commands"] += 1
        return True

    def estop(self, reason: str = "e-stop") -> None:
        self._mode = SafetyMode.ESTOP
        self._reason = reason
        self._desired = None

    def release_estop(self) -> None:
        if self._mode is SafetyMode.ESTOP:
            self._idle()

    def reset_fall(self, quaternion_xyzw: np.ndarray) -> None:
        """Leave ``fallen`` once the body is upright again (ValueError otherwise)."""
        if self._mode is not SafetyMode.FALLEN:
            return
        roll, pitch = roll_pitch(quaternion_xyzw)
        limit = self.config.fall_threshold_rad
        if abs(roll) > limit or abs(pitch) > limit:
            raise ValueError(f"still tilted: roll {roll:.2f}, pitch {pitch:.2f} rad")
        self._idle()

    def _idle(self) -> None:
        """Idle: no command to follow; the first update freezes the pose to hold."""
        self._mode = SafetyMode.IDLE
        self._reason = None
        self._desired = None
        self._hold = None
        self._limp = False

    def update(self, measured: np.ndarray, quaternion_xyzw: np.ndarray, now: float) -> SafetyOutput:
        """The targets to send this tick, given measured angles and the IMU orientation."""
        cfg = self.config
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (8,):
            raise ValueError(f"expected 8 measured angles, got shape {measured.shape}")
        try:
            roll, pitch = roll_pitch(quaternion_xyzw)
        except ValueError as exc:
            roll = pitch = math.nan
            self._fall(f"invalid IMU orientation: {exc}")
        else:
            if abs(roll) > cfg.fall_threshold_rad or abs(pitch) > cfg.fall_threshold_rad:
                self._fall(
                    f"fall: roll {roll:.2f} rad, pitch {pitch:.2f} rad "
                    f"(threshold {cfg.fall_threshold_rad:g})"
                )
        self._last_roll_pitch = (roll, pitch)

        if self._mode is SafetyMode.RUNNING and now - self._last_command > cfg.watchdog_timeout_s:
            self.counts["watchdog_trips"] += 1
            self._reason = f"no command for {now - self._last_command:.2f} s"
            self._mode = {"hold": SafetyMode.HOLDING, "crouch": SafetyMode.CROUCHING,
                          "disable": SafetyMode.DISABLED}[cfg.watchdog_action]  # fmt: skip
            self._hold = self._pose_here(measured)

        mode = self._mode
        speed = None
        if mode in (SafetyMode.ESTOP, SafetyMode.DISABLED) or self._limp:
            desired = None
        elif mode in (SafetyMode.FALLEN, SafetyMode.CROUCHING):
            desired, speed = cfg.crouch_pose, cfg.crouch_velocity
        elif mode is SafetyMode.RUNNING and self._desired is not None:
            desired = self._desired
        else:  # holding, idle: keep the pose frozen when the mode began (a goal that
            # followed the measured angles would let a loaded leg sink)
            if self._hold is None:
                self._hold = self._pose_here(measured)
            desired = self._hold
        targets = None if desired is None else self._ramp(desired, measured, now, speed)
        return SafetyOutput(targets, mode, roll, pitch, self._reason)

    def _pose_here(self, measured: np.ndarray) -> np.ndarray:
        """The measured angles inside the limits; where a reading is missing, the last
        goal sent (or the crouch pose)."""
        fallback = self._goal if self._goal is not None else self.config.crouch_pose
        return self.config.limits.clip(np.where(np.isfinite(measured), measured, fallback))

    def _ramp(
        self, desired: np.ndarray, measured: np.ndarray, now: float, speed: float | None
    ) -> np.ndarray:
        """Goals ramp from the last goal sent (JointLimits.ramp): the motors lag their
        goals, so rate limiting against the measured angles alone would stall a loaded
        leg halfway through a crouch. A tick that comes late (a loaded computer) still
        continues from that goal: restarting from readings that lag the goals would step
        a crouch back up. Only after a real pause (no goals sent) does the ramp start
        again from the measured angles."""
        period = self.config.control_period_s
        since = now - self._goal_time
        recent = self._goal is not None and 0.0 <= since <= LATE_TICKS * period
        dt = min(max(since, 1e-6), period) if recent else period
        previous = self._goal if recent else None
        goals = self.config.limits.ramp(
            desired, previous, measured, dt, period, speed, self.config.min_lead_rad
        )
        self._goal, self._goal_time = goals, now
        return goals

    def _fall(self, reason: str) -> None:
        if self._mode in (SafetyMode.FALLEN, SafetyMode.ESTOP):
            return
        self.counts["falls"] += 1
        self._limp = self._mode is SafetyMode.DISABLED
        self._mode = SafetyMode.FALLEN
        self._reason = reason
        self._desired = None

    def diagnostics(self) -> dict[str, object]:
        roll, pitch = self._last_roll_pitch
        return {"mode": self._mode.value, "reason": self._reason, "roll": roll,
                "pitch": pitch, **self.counts}  # fmt: skip
