"""The D'Claw driver without ROS: limits, watchdog, e-stop, health checks, reconnects.

:class:`DClawDriverCore` owns a :class:`DynamixelBus` with the nine finger motors and the
valve motor. The ROS driver node calls :meth:`~DClawDriverCore.cycle` on a timer and
publishes what it returns; commands, enable/disable, e-stop and the valve motor come
from topics and services. Every method is thread-safe (one lock around bus transactions).

Safety rules, in the order :meth:`cycle` applies them:

1. Goals always go through ``JointLimits.ramp`` (``safe_targets`` twice): every goal lies
   inside the joint limits and within ``max_velocity * control_period_s`` of the
   position measured in the same cycle (clipped into the limits: a blocked joint cannot
   be wound up); and it moved from the last goal written at most ``max_velocity * dt``
   (dt = the time between the two cycles' bus reads, when at most ``control_period_s``;
   with no write that recent the ramp starts from the measured position). When the two
   conflict (the joint was pushed or blocked farther than ``max_velocity * (dt +
   control_period_s)`` from its last goal), the first wins: the goal is pulled towards
   the joint, to the edge of its reach. So two goals written at most
   ``control_period_s`` apart differ by at most ``max_velocity * control_period_s``
   whenever the joint stays within twice that of its goal, the goals move no faster
   than the velocity limit however often :meth:`cycle` runs, and a fast cycle does not
   slow the hand down by rate-limiting against a servo that lags its goal. A command
   with the wrong size or a non-finite value raises ValueError and changes nothing.
2. A motor reporting a hardware error (alert bit in any status, or the periodic read of
   Hardware Error Status) or a temperature above ``max_temperature_c`` -> safe stop:
   torque off on every motor, mode ``safe_stop`` with a fault naming the motor and why.
   Only :meth:`clear_fault` (which reboots motors in error) leaves it.
3. Communication failures are tolerated for ``comm_tolerance_s`` (the motors keep their
   last goal); longer, while any motor should have torque on (running, holding, or the
   valve motor on) -> the same safe stop. With torque off everywhere a lost link is only
   reported, so a driver started before its adapter is plugged in connects when it
   appears. A lost port is reopened every ``reconnect_period_s``; within the tolerance
   the driver carries on where it was, after a safe stop the reconnect turns torque off
   first.
4. Watchdog: no command for ``watchdog_timeout_s`` while running -> ``hold`` (goals
   frozen at the measured position, mode ``holding``, the next command resumes) or
   ``torque_off`` (mode ``idle``, :meth:`enable` needed), by configuration.
5. E-stop: torque off at once, mode ``estop`` until :meth:`release_estop`.

The valve motor has the interface the ROS node offers (and the MuJoCo sim mirrors):
:meth:`set_valve_torque` and :meth:`command_valve` (a goal is ignored while the valve's
torque is off, as a servo ignores it). An episode reset is scripted elsewhere, through
that interface (sac_ros.runtime.resets.ValveReset in the reward node). Every safe stop,
e-stop, connect and close turns the valve's torque off too, and so can :meth:`disable`.

When torque may be on at all (a ROS lifecycle) is the node's business: the core only
turns it on in :meth:`enable` and :meth:`set_valve_torque`.

Torque-off requests that a motor does not acknowledge are retried every cycle.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from sac_ros.hardware.dynamixel_bus import (
    RAW_MAX,
    RAW_MIN,
    BusError,
    DynamixelBus,
    MotorHealth,
    MotorState,
)
from sac_ros.robots import dclaw
from sac_ros.robots.limits import JointLimits

WATCHDOG_ACTIONS = ("hold", "torque_off")


class Mode(str, Enum):
    IDLE = "idle"  # connected or not, torque off
    RUNNING = "running"  # torque on, following commands
    HOLDING = "holding"  # torque on, watchdog froze the goals
    SAFE_STOP = "safe_stop"  # a fault turned torque off; clear_fault() to leave
    ESTOP = "estop"  # emergency stop; release_estop() to leave


@dataclass(frozen=True)
class DClawDriverConfig:
    port: str = "/dev/ttyUSB0"
    baud: int = dclaw.BAUD_RATE
    control_period_s: float = 1.0 / dclaw.CONTROL_RATE_HZ  # dt of the rate limit
    watchdog_timeout_s: float = 0.5
    watchdog_action: str = "hold"
    health_period_s: float = 1.0
    max_temperature_c: float = 70.0
    warn_temperature_c: float = 65.0  # /diagnostics WARN from here up to the safe stop
    comm_tolerance_s: float = 0.5
    reconnect_period_s: float = 0.5
    latency_timer_ms: float = 16.0  # the USB adapter's; sets the status packet timeout
    retries: int = 1  # asks again before a motor counts as not answering
    use_valve: bool = True
    limits: JointLimits = field(default_factory=lambda: dclaw.LIMITS)
    joint_ids: tuple[int, ...] = dclaw.MOTOR_IDS
    joint_offsets: tuple[float, ...] = tuple(float(x) for x in dclaw.DEFAULT_OFFSETS)
    valve_id: int = dclaw.VALVE_MOTOR_ID
    valve_offset: float = dclaw.VALVE_OFFSET

    def __post_init__(self) -> None:
        for name in (
            "control_period_s",
            "watchdog_timeout_s",
            "health_period_s",
            "comm_tolerance_s",
            "reconnect_period_s",
            "latency_timer_ms",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.watchdog_action not in WATCHDOG_ACTIONS:
            raise ValueError(
                f"watchdog_action must be one of {WATCHDOG_ACTIONS}, got {self.watchdog_action!r}"
            )
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {self.retries!r}")
        if not math.isfinite(self.max_temperature_c):
            raise ValueError("max_temperature_c must be finite")
        if not math.isfinite(self.warn_temperature_c):
            raise ValueError("warn_temperature_c must be finite")
        if len(self.joint_ids) != self.limits.size or len(self.joint_offsets) != self.limits.size:
            raise ValueError(
                f"{len(self.joint_ids)} joint IDs and {len(self.joint_offsets)} offsets "
                f"for {self.limits.size} joint limits"
            )
        if self.use_valve and self.valve_id in self.joint_ids:
            raise ValueError(f"valve ID {self.valve_id} is also a joint ID")
        limits = self.limits
        for name, lo, hi, offset in zip(
            limits.names, limits.lower, limits.upper, self.joint_offsets, strict=True
        ):
            # Every target inside the limits must be a goal the servo accepts.
            ticks = dclaw.rad_to_raw(np.array([lo, hi]), np.float64(offset))
            if ticks.min() < RAW_MIN or ticks.max() > RAW_MAX:
                raise ValueError(
                    f"{name}: limits [{lo:.3f}, {hi:.3f}] rad with offset {offset:.3f} rad are "
                    f"encoder ticks {ticks.min()}..{ticks.max()}, outside {RAW_MIN}..{RAW_MAX}"
                )


@dataclass(frozen=True)
class DClawState:
    """What one cycle saw. ``fresh`` is False when the read failed (values are the last
    known ones, NaN before the first read)."""

    stamp: float  # time.monotonic() of the read
    fresh: bool
    position: np.ndarray  # rad, joint order of dclaw.JOINT_NAMES
    velocity: np.ndarray  # rad/s
    current: np.ndarray  # mA
    valve_angle: float | None  # rad, wrapped to [-pi, pi)
    valve_velocity: float | None
    goals: np.ndarray | None  # what this cycle wrote, None if nothing
    mode: Mode
    connected: bool
    fault: str | None


def wrap_angle(rad: float) -> float:
    """Wrap to [-pi, pi)."""
    return (rad + math.pi) % (2 * math.pi) - math.pi


class DClawDriverCore:
    def __init__(
        self,
        config: DClawDriverConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or DClawDriverConfig()
        cfg = self.config
        self._joint_ids = tuple(cfg.joint_ids)
        self._valve_ids = (cfg.valve_id,) if cfg.use_valve else ()
        self._all_ids = self._joint_ids + self._valve_ids
        offsets = dict(zip(self._joint_ids, cfg.joint_offsets, strict=True))
        if cfg.use_valve:
            offsets[cfg.valve_id] = cfg.valve_offset
        self.bus = DynamixelBus(offsets, retries=cfg.retries, latency_timer_ms=cfg.latency_timer_ms)
        self._names = dict(zip(self._joint_ids, cfg.limits.names, strict=True))
        self._names[cfg.valve_id] = "valve"
        self._clock = clock
        self._lock = threading.RLock()
        n = len(self._joint_ids)
        self._mode = Mode.IDLE
        self._connected = False
        self._fault: str | None = None
        self._faults: deque[tuple[float, str]] = deque(maxlen=20)
        self._desired: np.ndarray | None = None
        self._last_command = -math.inf
        self._last_write = -math.inf
        self._last_goals: np.ndarray | None = None
        self._last_state: MotorState | None = None
        self._nan = np.full(n, np.nan)
        self._comm_fail_since: float | None = None
        self._last_comm_error: str | None = None
        self._last_reconnect_try = -math.inf
        self._last_health = -math.inf
        self._health: dict[int, MotorHealth] = {}
        self._torque_off_pending: set[int] = set()
        self._last_torque_retry = -math.inf
        self._valve_on = False
        self._counts = {"cycles": 0, "commands": 0, "ignored_commands": 0, "comm_errors": 0,
                        "reconnects": 0, "watchdog_trips": 0, "safe_stops": 0}  # fmt: skip
        self._cycle_last = 0.0
        self._cycle_max = 0.0

    # ------------------------------------------------------------------ properties
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def fault(self) -> str | None:
        return self._fault

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def torque_off_pending(self) -> list[int]:
        """Motors that have not acknowledged a torque off (they may still hold torque)."""
        return sorted(self._torque_off_pending)

    def name(self, motor_id: int) -> str:
        return self._names.get(motor_id, str(motor_id))

    # ------------------------------------------------------------------ lifecycle
    def connect(self) -> None:
        """Open the port, ping every motor and turn torque off everywhere (mode idle).

        Raises BusError when the port or a motor is missing; :meth:`cycle` keeps trying
        to reconnect after that.
        """
        with self._lock:
            self._last_reconnect_try = self._clock()
            try:
                self.bus.open(self.config.port, self.config.baud)
                self.bus.ping(self._all_ids)
                self.bus.torque(self._all_ids, False)
            except BusError as exc:
                self.bus.close()
                self._connected = False
                self._last_comm_error = str(exc)
                raise
            self._connected = True
            self._torque_off_pending.clear()
            self._valve_on = False
            if self._mode in (Mode.RUNNING, Mode.HOLDING):
                self._mode = Mode.IDLE
            self._desired = None

    def close(self) -> None:
        """Torque off (best effort) and close the port. A port lost while motors were
        on (within the comm tolerance, before the safe stop) is reopened once to switch
        them off; where that fails they stay in ``torque_off_pending``: servos keep their
        torque when their host goes away, so the hand may still be stiff."""
        with self._lock:
            if not self._connected:
                self._torque_off_pending |= self._torqued()
                if self._torque_off_pending:
                    self._last_reconnect_try = -math.inf  # now, whatever the last try
                    self._try_reconnect(self._clock())  # torques off the pending ones
            if self._connected:
                self._torque_off(self._all_ids)
            if self._mode in (Mode.RUNNING, Mode.HOLDING):
                self._mode = Mode.IDLE
            self.bus.close()
            self._connected = False

    def enable(self) -> None:
        """Torque on the finger motors, holding the present position (mode running)."""
        with self._lock:
            if self._mode in (Mode.SAFE_STOP, Mode.ESTOP):
                raise RuntimeError(f"cannot enable in {self._mode.value}: {self._fault}")
            if not self._connected:
                raise RuntimeError("cannot enable: not connected")
            now = self._clock()
            self._check_health(now)
            if self._mode is Mode.SAFE_STOP:
                raise RuntimeError(f"cannot enable: {self._fault}")
            try:
                state = self.bus.read_state(self._joint_ids)
                hold = self.config.limits.safe_targets(
                    state.position, state.position, self.config.control_period_s
                )
                self.bus.torque(self._joint_ids, True)
                # Acknowledged on: a torque off they missed earlier must not follow later.
                self._torque_off_pending -= set(self._joint_ids)
                self.bus.write_goals(self._joint_ids, hold)
            except BaseException:
                self._torque_off(self._joint_ids)  # no motor left half enabled
                raise
            self._last_write = state.stamp
            self._last_goals = hold
            self._desired = hold
            self._last_command = now
            self._mode = Mode.RUNNING

    def disable(self, valve: bool = False) -> None:
        """Torque off the finger motors, and the valve motor too with ``valve`` (mode
        idle); raises BusError if a motor does not acknowledge (it is retried every
        cycle)."""
        with self._lock:
            if self._mode in (Mode.RUNNING, Mode.HOLDING):
                self._mode = Mode.IDLE
            self._desired = None
            failed = self._torque_off(self._joint_ids + (self._valve_ids if valve else ()))
            if failed:
                raise BusError("torque off not acknowledged", {i: "no ack" for i in failed})

    def estop(self, reason: str = "e-stop") -> None:
        """Torque off everything now; never raises (unacknowledged motors are retried)."""
        with self._lock:
            self._mode = Mode.ESTOP
            self._set_fault(reason)
            self._desired = None
            self._torque_off(self._all_ids)

    def release_estop(self) -> None:
        with self._lock:
            if self._mode is Mode.ESTOP:
                self._mode = Mode.IDLE
                self._fault = None

    def clear_fault(self) -> list[int]:
        """Leave a safe stop: reboot motors in hardware error, check temperatures again.

        Returns the rebooted motor IDs; raises RuntimeError if a fault remains.
        """
        with self._lock:
            if self._mode is not Mode.SAFE_STOP:
                return []
            if not self._connected:
                raise RuntimeError("cannot clear the fault: not connected")
            rebooted = self.bus.clear_errors(self._all_ids)
            health = self.bus.read_errors(self._all_ids)
            self._health = health
            problems = self._problems(health)
            if problems:
                raise RuntimeError("fault remains: " + "; ".join(problems))
            self._torque_off(self._all_ids)
            self._mode = Mode.IDLE
            self._fault = None
            self._comm_fail_since = None
            return rebooted

    # ------------------------------------------------------------------ commands
    def command(self, targets: np.ndarray | list[float]) -> bool:
        """New joint targets (rad, joint order). True if they will be applied (mode
        running or holding), False if ignored in the present mode."""
        try:
            proposed = np.asarray(targets, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"joint targets must be numbers: {exc}") from exc
        n = len(self._joint_ids)
        if proposed.shape != (n,):
            raise ValueError(f"expected {n} joint targets, got shape {proposed.shape}")
        bad = np.flatnonzero(~np.isfinite(proposed))
        if bad.size:
            names = [self.name(self._joint_ids[k]) for k in bad]
            raise ValueError(f"non-finite joint targets for {names}")
        with self._lock:
            if self._mode not in (Mode.RUNNING, Mode.HOLDING):
                self._counts["ignored_commands"] += 1
                return False
            self._desired = proposed.copy()
            self._last_command = self._clock()
            self._mode = Mode.RUNNING
            self._counts["commands"] += 1
            return True

    # ------------------------------------------------------------------ the cycle
    def cycle(self) -> DClawState:
        """One read and (when running) one goal write; returns what it saw."""
        with self._lock:
            start = self._clock()
            try:
                return self._cycle(start)
            finally:
                self._counts["cycles"] += 1
                self._cycle_last = self._clock() - start
                self._cycle_max = max(self._cycle_max, self._cycle_last)

    def _cycle(self, now: float) -> DClawState:
        if not self._connected:
            self._try_reconnect(now)
            if not self._connected:
                self._check_comm_tolerance(now)
                return self._record(now, fresh=False)
        try:
            state = self.bus.read_state(self._all_ids)
        except BusError as exc:
            self._comm_error(exc, now)
            return self._record(now, fresh=False)
        self._comm_fail_since = None
        self._last_state = state
        goals = None
        try:
            if self._torque_off_pending:
                self._retry_torque_off(now)
            alert = bool(state.alert) and self._mode is not Mode.SAFE_STOP
            if alert or now - self._last_health >= self.config.health_period_s:
                self._check_health(now)
            measured = state.position[: len(self._joint_ids)]
            self._watchdog(now, measured)
            if self._mode in (Mode.RUNNING, Mode.HOLDING) and self._desired is not None:
                goals = self._next_goals(state.stamp, measured)
                self.bus.write_goals(self._joint_ids, goals)
                self._last_write = state.stamp
                self._last_goals = goals
        except BusError as exc:
            self._comm_error(exc, now)
            goals = None
        return self._record(state.stamp, fresh=True, goals=goals)

    def _next_goals(self, stamp: float, measured: np.ndarray) -> np.ndarray:
        """Safe goals towards the desired targets (rule 1 of the module docstring)."""
        assert self._desired is not None
        limits, period = self.config.limits, self.config.control_period_s
        since = stamp - self._last_write
        dt = min(max(since, 1e-6), period)
        recent = self._last_goals is not None and since <= period
        previous = self._last_goals if recent else None
        return limits.ramp(self._desired, previous, measured, dt, period)

    def _record(self, stamp: float, fresh: bool, goals: np.ndarray | None = None) -> DClawState:
        n = len(self._joint_ids)
        state = self._last_state
        if state is None:
            pos = vel = cur = self._nan.copy()
            valve_angle = valve_velocity = None
        else:
            pos, vel, cur = state.position[:n], state.velocity[:n], state.current[:n]
            valve_angle = valve_velocity = None
            if self._valve_ids:
                valve_angle = wrap_angle(float(state.position[n]))
                valve_velocity = float(state.velocity[n])
            if not fresh:
                stamp = state.stamp
        return DClawState(
            stamp=stamp, fresh=fresh, position=pos.copy(), velocity=vel.copy(),
            current=cur.copy(), valve_angle=valve_angle, valve_velocity=valve_velocity,
            goals=None if goals is None else goals.copy(), mode=self._mode,
            connected=self._connected, fault=self._fault,
        )  # fmt: skip

    def _watchdog(self, now: float, measured: np.ndarray) -> None:
        if self._mode is not Mode.RUNNING:
            return
        if now - self._last_command <= self.config.watchdog_timeout_s:
            return
        self._counts["watchdog_trips"] += 1
        if self.config.watchdog_action == "hold":
            self._desired = self.config.limits.clip(measured)
            self._mode = Mode.HOLDING
        else:
            self._desired = None
            self._mode = Mode.IDLE
            self._torque_off(self._joint_ids)

    # ------------------------------------------------------------------ faults
    def _set_fault(self, reason: str) -> None:
        self._fault = reason
        self._faults.append((self._clock(), reason))

    def _safe_stop(self, reason: str) -> None:
        if self._mode in (Mode.SAFE_STOP, Mode.ESTOP):
            return
        self._counts["safe_stops"] += 1
        self._mode = Mode.SAFE_STOP
        self._set_fault(reason)
        self._desired = None
        self._torque_off(self._all_ids)

    def _torque_off(self, ids: tuple[int, ...]) -> set[int]:
        """Torque off, best effort; the motors that did not acknowledge (kept pending)."""
        if self.config.use_valve and self.config.valve_id in ids:
            self._valve_on = False
        if not self._connected:
            self._torque_off_pending |= set(ids)
            return set(ids)
        return self._send_torque_off(ids)

    def _send_torque_off(self, ids: tuple[int, ...]) -> set[int]:
        """Torque off on the bus; the motors that did not acknowledge stay pending."""
        try:
            self.bus.torque(ids, False)
            failed: set[int] = set()
        except BusError as exc:
            failed = set(exc.failures) or set(ids)
            if exc.port_lost:
                self._lose_port(exc)
        self._torque_off_pending = (self._torque_off_pending - set(ids)) | failed
        return failed

    def _retry_torque_off(self, now: float) -> None:
        if now - self._last_torque_retry < self.config.reconnect_period_s:
            return
        self._last_torque_retry = now
        self._torque_off(tuple(sorted(self._torque_off_pending)))

    def _problems(self, health: dict[int, MotorHealth]) -> list[str]:
        problems = []
        for motor_id, h in sorted(health.items()):
            who = f"motor {motor_id} ({self.name(motor_id)})"
            if h.hardware_error:
                problems.append(f"{who}: hardware error: {', '.join(h.errors)}")
            if h.temperature_c > self.config.max_temperature_c:
                problems.append(
                    f"{who}: temperature {h.temperature_c} C above the "
                    f"{self.config.max_temperature_c:g} C limit"
                )
            if motor_id in self._torqued() and not h.torque_enabled:
                # A servo whose power dropped for a moment boots with torque off and no
                # error bit; the others would go on pushing against a limp finger.
                problems.append(f"{who}: torque is off though it was on (lost power?)")
        return problems

    def hot_motors(self) -> dict[str, float]:
        """Motors at or above ``warn_temperature_c`` (by name, C, from the last health
        read): still running, but the safe stop at ``max_temperature_c`` is near."""
        with self._lock:
            return {
                self.name(i): h.temperature_c
                for i, h in sorted(self._health.items())
                if h.temperature_c >= self.config.warn_temperature_c
            }

    def _torqued(self) -> set[int]:
        """The motors this driver has switched on and not off since."""
        on = set(self._joint_ids) if self._mode in (Mode.RUNNING, Mode.HOLDING) else set()
        if self._valve_on:
            on.add(self.config.valve_id)
        return on

    def _check_health(self, now: float) -> None:
        self._last_health = now
        self._health = self.bus.read_errors(self._all_ids)
        problems = self._problems(self._health)
        if problems:
            self._safe_stop("; ".join(problems))

    def _lose_port(self, exc: BusError) -> None:
        self._connected = False
        self.bus.close()
        self._last_comm_error = str(exc)

    def _comm_error(self, exc: BusError, now: float) -> None:
        self._counts["comm_errors"] += 1
        self._last_comm_error = str(exc)
        if self._comm_fail_since is None:
            self._comm_fail_since = now
        if exc.port_lost:
            self._lose_port(exc)
        self._check_comm_tolerance(now)

    def _check_comm_tolerance(self, now: float) -> None:
        if self._comm_fail_since is None:
            self._comm_fail_since = now
        if not self._torqued():
            return  # nothing is powered: a lost link is reported, not a fault
        lost_for = now - self._comm_fail_since
        if lost_for > self.config.comm_tolerance_s:
            self._safe_stop(f"communication lost for {lost_for:.2f} s: {self._last_comm_error}")

    def _try_reconnect(self, now: float) -> None:
        if now - self._last_reconnect_try < self.config.reconnect_period_s:
            return
        self._last_reconnect_try = now
        try:
            self.bus.open(self.config.port, self.config.baud)
            self.bus.ping(self._all_ids)
        except BusError as exc:
            owed = self._owed_torque_off()
            if owed and not exc.port_lost:
                # The port is back but a motor is silent (not reconnected): the motors
                # that answer get their torque off now, not once the silent one is back.
                self._send_torque_off(tuple(sorted(owed)))
            self.bus.close()
            self._last_comm_error = str(exc)
            return
        self._connected = True
        self._counts["reconnects"] += 1
        self._torque_off_pending = self._owed_torque_off()
        if self._torque_off_pending:
            self._last_torque_retry = -math.inf
            self._retry_torque_off(now)

    def _owed_torque_off(self) -> set[int]:
        """What a port that comes back must switch off: the motors still pending, and all
        of them while the hand is meant to be off."""
        stopped = self._mode in (Mode.SAFE_STOP, Mode.ESTOP, Mode.IDLE)
        return self._torque_off_pending | (set(self._all_ids) if stopped else set())

    # ------------------------------------------------------------------ valve
    def valve_target(self, angle: float) -> float:
        """The angle the valve motor can hold nearest to ``angle`` (wrapped, one tick)."""
        if not math.isfinite(angle):
            raise ValueError(f"valve angle must be finite, got {angle}")
        offset = self.config.valve_offset
        raw = int(round((wrap_angle(angle) - offset) / dclaw.RAD_PER_TICK)) % dclaw.TICKS_PER_REV
        return raw * dclaw.RAD_PER_TICK + offset

    @property
    def valve_torque(self) -> bool:
        return self._valve_on

    def set_valve_torque(self, on: bool) -> None:
        """Valve motor torque on (holding its present angle) or off (the valve turns freely).

        Torque on raises RuntimeError in a safe stop or e-stop, or when not connected;
        BusError when the motor does not acknowledge (an unacknowledged torque off is
        retried every cycle).
        """
        if not self.config.use_valve:
            raise RuntimeError("this driver has no valve motor")
        valve = self.config.valve_id
        with self._lock:
            if not on:
                if self._torque_off((valve,)):
                    raise BusError("valve torque off not acknowledged", {valve: "no ack"})
                return
            if self._mode in (Mode.SAFE_STOP, Mode.ESTOP):
                raise RuntimeError(f"cannot turn the valve on in {self._mode.value}: {self._fault}")
            if not self._connected:
                raise RuntimeError("cannot turn the valve on: not connected")
            try:
                self.bus.torque([valve], True)
            except BusError:
                self._torque_off((valve,))
                raise
            self._torque_off_pending.discard(valve)  # acknowledged on: no late torque off
            self._valve_on = True

    def command_valve(self, angle: float) -> bool:
        """Valve goal angle (rad, wrapped); False (nothing written) while its torque is off.
        ValueError for a non-finite angle; BusError if the write fails."""
        target = self.valve_target(angle)
        with self._lock:
            if not self._valve_on or not self._connected:
                return False
            try:
                self.bus.write_goals([self.config.valve_id], [target])
            except BusError as exc:
                if exc.port_lost:
                    self._lose_port(exc)
                raise
            return True

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, object]:
        """A summary for /diagnostics (plain Python values)."""
        with self._lock:
            now = self._clock()
            return {
                "mode": self._mode.value,
                "connected": self._connected,
                "port": self.config.port,
                "fault": self._fault,
                "recent_faults": [reason for _, reason in self._faults],
                **self._counts,
                "cycle_time_last_s": self._cycle_last,
                "cycle_time_max_s": self._cycle_max,
                "last_command_age_s": (now - self._last_command
                                       if math.isfinite(self._last_command) else None),
                "last_comm_error": self._last_comm_error,
                "torque_off_pending": sorted(self._torque_off_pending),
                "valve_torque": self._valve_on,
                "temperatures_c": {self.name(i): h.temperature_c
                                   for i, h in sorted(self._health.items())},
                "currents_ma": ({self.name(i): round(float(c), 1) for i, c in
                                 zip(self._last_state.ids, self._last_state.current, strict=True)}
                                if self._last_state is not None else {}),
                "hardware_errors": {self.name(i): h.errors
                                    for i, h in sorted(self._health.items()) if h.hardware_error},
                "bus": dict(self.bus.stats),
            }  # fmt: skip
