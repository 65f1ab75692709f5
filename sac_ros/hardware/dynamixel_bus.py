"""A chain of Dynamixel X-series servos over dynamixel-sdk (protocol 2.0), without ROS.

One :class:`DynamixelBus` owns one serial port. Positions cross this boundary in radians
(``rad = raw * 2pi/4096 + offset`` per motor), velocities in rad/s, currents in mA.
Goal positions go out as one GroupSyncWrite; the state comes back from one sync read of
the 10 bytes at 126 (current, velocity, position). Every failure raises :class:`BusError`
naming the motors that failed and why; nothing is returned that was not read.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import dynamixel_sdk as sdk
import numpy as np
import serial

from sac_ros.hardware import dxl_control_table as ct
from sac_ros.hardware import dxl_protocol as proto
from sac_ros.robots import dclaw

T = TypeVar("T")

SUPPORTED_BAUDS = (9600, 57600, 115200, 1_000_000, 2_000_000, 3_000_000, 4_000_000)
RAW_MIN, RAW_MAX = 0, 4095  # goal position range in position control mode

# What a failing port raises through pyserial: a pulled adapter gives SerialException on
# reads and writes, OSError on open, termios.error on flushes.
PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError)
try:
    import termios

    PORT_ERRORS = (*PORT_ERRORS, termios.error)
except ImportError:  # pragma: no cover - not POSIX
    pass


class BusError(RuntimeError):
    """A communication failure. ``failures`` maps each failed motor ID to the reason;
    ``port_lost`` is True when the serial port itself failed (unplugged adapter)."""

    def __init__(self, message: str, failures: Mapping[int, str], port_lost: bool = False):
        detail = "; ".join(f"motor {i}: {why}" for i, why in sorted(failures.items()))
        super().__init__(f"{message} ({detail})" if detail else message)
        self.failures = dict(failures)
        self.port_lost = port_lost


@dataclass(frozen=True)
class MotorState:
    """One read of the motors in ``ids`` order; ``stamp`` is time.monotonic() when the
    read was sent (the servos sample right after receiving it)."""

    ids: tuple[int, ...]
    position: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    current: np.ndarray  # mA
    stamp: float
    alert: tuple[int, ...] = ()  # motors whose status carried the hardware-error alert

    def of(self, motor_id: int) -> tuple[float, float, float]:
        k = self.ids.index(motor_id)
        return float(self.position[k]), float(self.velocity[k]), float(self.current[k])


@dataclass(frozen=True)
class MotorHealth:
    hardware_error: int  # Hardware Error Status bits
    temperature_c: int
    torque_enabled: bool  # a servo that lost power comes back with torque off

    @property
    def errors(self) -> list[str]:
        return proto.describe_hardware_error(self.hardware_error)


def decode_state_block(data: Sequence[int]) -> tuple[int, int, int]:
    """(current, velocity, position) raw signed values from the 10 bytes at 126."""
    if len(data) != ct.STATE_BLOCK_LENGTH:
        raise ValueError(f"expected {ct.STATE_BLOCK_LENGTH} bytes, got {len(data)}")
    raw = bytes(data)
    return (
        int.from_bytes(raw[0:2], "little", signed=True),
        int.from_bytes(raw[2:6], "little", signed=True),
        int.from_bytes(raw[6:10], "little", signed=True),
    )


def _refusal(error: int, values: Sequence[int], length: int) -> str | None:
    """Why a read reply that arrived intact carries no usable data, or None: a status
    error (the SDK still reports success, and hands back the reply's CRC bytes as data),
    or a wrong length."""
    code = error & ~proto.ERR_ALERT
    if code:
        return f"status error: {proto.RESULT_NAMES.get(code, f'0x{code:02x}')}"
    if len(values) != length:
        return f"reply of {len(values)} bytes, {length} asked for"
    return None


class TimedPortHandler(sdk.PortHandler):
    """The SDK's PortHandler with the status timeout set from the adapter's USB latency
    timer (``latency_timer_ms``) instead of the SDK's fixed 16 ms: the timeout is the
    bytes' wire time + 2 x latency + 2 ms, as in the SDK."""

    def __init__(self, port_name: str, latency_timer_ms: float = 16.0) -> None:
        if not (math.isfinite(latency_timer_ms) and latency_timer_ms > 0):
            raise ValueError(f"latency_timer_ms must be positive, got {latency_timer_ms}")
        super().__init__(port_name)
        self.latency_timer_ms = float(latency_timer_ms)

    def setPacketTimeout(self, packet_length: int) -> None:  # the SDK's method name
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = (
            self.tx_time_per_byte * packet_length + 2.0 * self.latency_timer_ms + 2.0
        )


class DynamixelBus:
    """Servos on one port. ``offsets`` maps every motor ID on the bus to its calibration
    offset in radians (the angle at raw position 0).

    ``retries``: how many more times a motor that did not answer (timeout, corrupted
    reply) is asked again before a BusError names it. ``latency_timer_ms``: the USB
    adapter's latency timer, which sets how long to wait for a status packet.
    """

    def __init__(
        self,
        offsets: Mapping[int, float],
        *,
        retries: int = 1,
        latency_timer_ms: float = 16.0,
        reboot_timeout_s: float = 1.0,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if not (math.isfinite(latency_timer_ms) and latency_timer_ms > 0):
            raise ValueError(f"latency_timer_ms must be positive, got {latency_timer_ms}")
        if not offsets:
            raise ValueError("offsets must name at least one motor")
        for motor_id, offset in offsets.items():
            if not 0 <= int(motor_id) <= proto.MAX_ID:
                raise ValueError(f"motor ID must be 0..{proto.MAX_ID}, got {motor_id}")
            if not math.isfinite(offset):
                raise ValueError(f"offset of motor {motor_id} is not finite")
        self.offsets = {int(k): float(v) for k, v in offsets.items()}
        self.reboot_timeout_s = float(reboot_timeout_s)
        self.retries = int(retries)
        self.latency_timer_ms = float(latency_timer_ms)
        self._packet = sdk.PacketHandler(2.0)
        self._port: sdk.PortHandler | None = None
        self._port_name: str | None = None
        self._baud = dclaw.BAUD_RATE
        self._readers: dict[tuple[int, int, tuple[int, ...]], sdk.GroupSyncRead] = {}
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------ port
    @property
    def is_open(self) -> bool:
        return self._port is not None

    @property
    def port_name(self) -> str | None:
        return self._port_name

    def open(self, port: str, baud: int = dclaw.BAUD_RATE) -> None:
        if baud not in SUPPORTED_BAUDS:
            raise ValueError(f"baud {baud} is not one the SDK supports: {SUPPORTED_BAUDS}")
        self.close()
        handler = TimedPortHandler(port, self.latency_timer_ms)
        try:
            ok = handler.setBaudRate(baud)  # opens the port
        except PORT_ERRORS as exc:
            raise BusError(f"cannot open {port}: {exc}", {}, port_lost=True) from exc
        if not ok:
            raise BusError(f"cannot set {baud} baud on {port}", {}, port_lost=True)
        self._port, self._port_name, self._baud = handler, port, baud
        self._readers.clear()

    def close(self) -> None:
        port, self._port = self._port, None
        self._readers.clear()
        if port is not None and port.ser is not None:
            try:
                port.closePort()
            except PORT_ERRORS:
                pass

    def reconnect(self) -> None:
        """Reopen the last port at the same baud and ping every motor."""
        if self._port_name is None:
            raise RuntimeError("reconnect() before open()")
        self.open(self._port_name, self._baud)
        self.ping()
        self.stats["reconnects"] += 1

    def _require(self, ids: Sequence[int] | None) -> tuple[int, ...]:
        if self._port is None:
            raise BusError("the bus is not open", {}, port_lost=True)
        ids = tuple(self.offsets) if ids is None else tuple(int(i) for i in ids)
        if not ids:
            raise ValueError("no motor IDs given")
        unknown = [i for i in ids if i not in self.offsets]
        if unknown:
            raise ValueError(f"motors {unknown} are not on this bus {sorted(self.offsets)}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate motor IDs in {ids}")
        return ids

    def _guard(self, ids: Sequence[int], what: str, call: Callable[[], T]) -> T:
        """Run an SDK call; a failing port becomes a BusError naming every motor."""
        assert self._port is not None
        try:
            return call()
        except PORT_ERRORS as exc:
            self._port.is_using = False
            self.stats["port_errors"] += 1
            raise BusError(
                f"{what}: port {self._port_name} failed: {exc}",
                {i: "port failed" for i in ids},
                port_lost=True,
            ) from exc

    def _comm_text(self, result: int) -> str:
        return self._packet.getTxRxResult(result).replace("[TxRxResult] ", "")

    def _each(
        self, ids: Sequence[int], what: str, call: Callable[[int], tuple[int | str, T]]
    ) -> tuple[dict[int, T], dict[int, str]]:
        """``call(motor_id) -> (comm result, value)`` for every motor, asking again (up to
        ``retries`` times) those that did not answer; (values, comm failures). A result may
        also be the text of why a motor that answered refused."""
        values: dict[int, T] = {}
        failures: dict[int, str] = {}
        pending = list(ids)
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += len(pending)
            failures = {}
            for motor_id in pending:
                result, value = self._guard(ids, what, lambda m=motor_id: call(m))
                if result == sdk.COMM_SUCCESS:
                    values[motor_id] = value
                else:
                    failures[motor_id] = (
                        result if isinstance(result, str) else self._comm_text(result)
                    )
            pending = list(failures)
            if not pending:
                break
        return values, failures

    # ------------------------------------------------------------------ instructions
    def ping(self, ids: Sequence[int] | None = None) -> dict[int, int]:
        """Model number of every motor; BusError names the ones that did not answer."""
        ids = self._require(ids)
        port, packet = self._port, self._packet

        def ping_one(motor_id: int) -> tuple[int, int]:
            model, result, _ = packet.ping(port, motor_id)
            return result, model

        models, failures = self._each(ids, "ping", ping_one)
        if failures:
            raise BusError("ping failed", failures)
        return models

    def _write_acked(
        self,
        ids: Sequence[int],
        address: int,
        size: int,
        values: Sequence[int],
        what: str,
        alert_ok: bool,
    ) -> None:
        port = self._port
        writer = {1: self._packet.write1ByteTxRx, 2: self._packet.write2ByteTxRx,
                  4: self._packet.write4ByteTxRx}[size]  # fmt: skip
        value_of = dict(zip(ids, values, strict=True))

        def write_one(motor_id: int) -> tuple[int, int]:
            return writer(port, motor_id, address, value_of[motor_id])

        errors, failures = self._each(ids, what, write_one)
        for motor_id, error in errors.items():
            if error & ~proto.ERR_ALERT:
                failures[motor_id] = proto.RESULT_NAMES.get(error & 0x7F, f"error {error}")
                if error & proto.ERR_ALERT:
                    failures[motor_id] += " (hardware error alert)"
            elif error & proto.ERR_ALERT and not alert_ok:
                failures[motor_id] = "hardware error alert"
        if failures:
            raise BusError(what + " failed", failures)

    def torque(self, ids: Sequence[int] | None, on: bool) -> None:
        """Torque on or off, acknowledged by each motor."""
        ids = self._require(ids)
        self._write_acked(
            ids,
            ct.ADDR_TORQUE_ENABLE,
            1,
            [int(bool(on))] * len(ids),
            "torque " + ("on" if on else "off"),
            alert_ok=not on,
        )

    def write_register(
        self, ids: Sequence[int] | None, address: int, size: int, value: int
    ) -> None:
        """Write one (unsigned) value to every motor, acknowledged; for setup only."""
        ids = self._require(ids)
        if size not in (1, 2, 4):
            raise ValueError(f"size must be 1, 2 or 4 bytes, got {size}")
        if not 0 <= value < (1 << (8 * size)):
            raise ValueError(f"value {value} does not fit {size} bytes")
        self._write_acked(
            ids, address, size, [value] * len(ids), f"write at {address}", alert_ok=True
        )

    def to_raw(self, ids: Sequence[int], rad: Sequence[float] | np.ndarray) -> np.ndarray:
        """Encoder ticks for goal angles; ValueError outside the position-mode range."""
        rad = np.asarray(rad, dtype=np.float64)
        if rad.shape != (len(ids),):
            raise ValueError(f"expected {len(ids)} goals, got shape {rad.shape}")
        if not np.all(np.isfinite(rad)):
            raise ValueError(f"goal positions must be finite, got {rad}")
        offsets = np.array([self.offsets[i] for i in ids])
        raw = dclaw.rad_to_raw(rad, offsets)
        bad = (raw < RAW_MIN) | (raw > RAW_MAX)
        if np.any(bad):
            where = {ids[k]: float(rad[k]) for k in np.flatnonzero(bad)}
            raise ValueError(f"goal positions outside the encoder range: {where}")
        return raw

    def write_goals(self, ids: Sequence[int] | None, rad: Sequence[float] | np.ndarray) -> None:
        """Goal positions of ``ids`` in one GroupSyncWrite (no replies to wait for)."""
        ids = self._require(ids)
        raw = self.to_raw(ids, rad)
        writer = sdk.GroupSyncWrite(self._port, self._packet, ct.ADDR_GOAL_POSITION, 4)
        for motor_id, value in zip(ids, raw, strict=True):
            writer.addParam(motor_id, list(int(value).to_bytes(4, "little", signed=True)))
        result = self._guard(ids, "write goals", writer.txPacket)
        if result != sdk.COMM_SUCCESS:
            raise BusError("write goals failed", {i: self._comm_text(result) for i in ids})
        self.stats["goal_writes"] += 1

    def _sync_read(
        self, ids: tuple[int, ...], address: int, length: int, what: str
    ) -> tuple[dict[int, bytes], dict[int, int], float]:
        """One sync read; per-motor data and status error bytes.

        When the sync read fails, each motor is read on its own to tell which motors are
        at fault: a transient failure (a corrupted reply) is recovered that way, a motor
        that stays silent is named in the BusError.
        """
        key = (address, length, ids)
        reader = self._readers.get(key)
        if reader is None:
            reader = sdk.GroupSyncRead(self._port, self._packet, address, length)
            for motor_id in ids:
                reader.addParam(motor_id)
            self._readers[key] = reader
        port, packet = self._port, self._packet
        stamp = time.monotonic()

        def transact() -> tuple[dict[int, bytes], dict[int, int], int | str]:
            result = reader.txPacket()
            if result != sdk.COMM_SUCCESS:
                return {}, {}, result
            data: dict[int, bytes] = {}
            errors: dict[int, int] = {}
            refused: list[str] = []
            for motor_id in ids:  # GroupSyncRead.rxPacket, keeping each status error byte
                values, result, error = packet.readRx(port, motor_id, length)
                if result != sdk.COMM_SUCCESS:
                    return data, errors, result
                why = _refusal(error, values, length)
                if why is not None:
                    refused.append(f"motor {motor_id}: {why}")
                data[motor_id], errors[motor_id] = bytes(values), error
            return data, errors, "; ".join(refused) if refused else result

        data, errors, result = self._guard(ids, what, transact)
        self.stats["sync_reads"] += 1
        if result == sdk.COMM_SUCCESS:
            return data, errors, stamp
        self.stats["sync_read_failures"] += 1
        first_failure = result if isinstance(result, str) else self._comm_text(result)
        stamp = time.monotonic()

        def read_one(motor_id: int) -> tuple[int | str, tuple[bytes, int]]:
            values, result, error = packet.readTxRx(port, motor_id, address, length)
            if result == sdk.COMM_SUCCESS:
                result = _refusal(error, values, length) or result
            return result, (bytes(values), error)

        answers, failures = self._each(ids, what, read_one)
        data = {i: answer[0] for i, answer in answers.items()}
        errors = {i: answer[1] for i, answer in answers.items()}
        if failures:
            raise BusError(f"{what} failed (sync read: {first_failure})", failures)
        self.stats["recovered_reads"] += 1
        return data, errors, stamp

    def read_state(self, ids: Sequence[int] | None = None) -> MotorState:
        """Position (rad), velocity (rad/s) and current (mA) of ``ids`` in one read."""
        ids = self._require(ids)
        data, errors, stamp = self._sync_read(
            ids, ct.ADDR_PRESENT_CURRENT, ct.STATE_BLOCK_LENGTH, "read state"
        )
        raw = np.array([decode_state_block(data[i]) for i in ids], dtype=np.float64)
        offsets = np.array([self.offsets[i] for i in ids])
        return MotorState(
            ids=ids,
            position=dclaw.raw_to_rad(raw[:, 2], offsets),
            velocity=raw[:, 1] * dclaw.RAD_S_PER_TICK,
            current=raw[:, 0] * dclaw.MA_PER_TICK,
            stamp=stamp,
            alert=tuple(i for i in ids if errors[i] & proto.ERR_ALERT),
        )

    def read_errors(self, ids: Sequence[int] | None = None) -> dict[int, MotorHealth]:
        """Hardware Error Status, temperature and Torque Enable of each motor (two sync
        reads: Torque Enable and Hardware Error Status lie in one block, 64-70)."""
        ids = self._require(ids)
        span = ct.ADDR_HARDWARE_ERROR - ct.ADDR_TORQUE_ENABLE + 1
        block, _, _ = self._sync_read(ids, ct.ADDR_TORQUE_ENABLE, span, "read hardware errors")
        temp, _, _ = self._sync_read(ids, ct.ADDR_PRESENT_TEMPERATURE, 1, "read temperature")
        return {i: MotorHealth(block[i][-1], temp[i][0], bool(block[i][0])) for i in ids}

    def reboot(self, motor_id: int) -> None:
        """Reboot one motor (clears its hardware error; torque comes back off) and wait
        until it answers a ping again."""
        (motor_id,) = self._require([motor_id])
        port = self._port
        result, error = self._guard(
            [motor_id], "reboot", lambda: self._packet.reboot(port, motor_id)
        )
        if result != sdk.COMM_SUCCESS:
            raise BusError("reboot failed", {motor_id: self._comm_text(result)})
        deadline = time.monotonic() + self.reboot_timeout_s
        while True:
            time.sleep(0.01)
            _, result, _ = self._guard(
                [motor_id], "ping after reboot", lambda: self._packet.ping(port, motor_id)
            )
            if result == sdk.COMM_SUCCESS:
                self.stats["reboots"] += 1
                return
            if time.monotonic() > deadline:
                raise BusError("no answer after reboot", {motor_id: self._comm_text(result)})

    def clear_errors(self, ids: Sequence[int] | None = None) -> list[int]:
        """Reboot every motor reporting a hardware error; the IDs rebooted."""
        ids = self._require(ids)
        faulty = [i for i, health in self.read_errors(ids).items() if health.hardware_error]
        for motor_id in faulty:
            self.reboot(motor_id)
        return faulty
