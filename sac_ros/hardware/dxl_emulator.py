"""A chain of Dynamixel X-series servos (protocol 2.0) behind a pseudo-terminal.

The real dynamixel-sdk opens :attr:`DynamixelEmulator.port_name` as if it were a USB
serial adapter (pyserial accepts a pty and its baud settings). A background thread parses
instruction packets from the pty's master side and answers with status packets:
PING, READ, WRITE, SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE and REBOOT are served;
REG_WRITE, ACTION, FACTORY_RESET, CLEAR and the fast reads are refused with an
instruction error. Packets with a bad CRC are ignored, as real servos do.

Servo behaviour that the driver relies on, emulated as the X series does it:

* writes to read-only fields, to unnamed addresses, or to the EEPROM area while torque is
  on, are refused with an access error (partial writes of a field with a data length
  error; out-of-range values with a data range or data limit error);
* a goal position written while torque is off is stored but has no effect, and enabling
  torque sets the goal to the present position (the joint does not jump);
* Hardware Error Status bits (overload, overheating, electrical shock, ...) set the alert
  bit (0x80) of every status packet; the bits listed in the Shutdown register turn the
  torque off, and torque cannot be enabled again (result fail) until a REBOOT;
* a temperature above the Temperature Limit raises the overheating bit;
* a servo only hears packets sent at its Baud Rate register's speed (the pty's termios
  speed, as pyserial set it).

Unplugging: a pty cannot vanish while someone holds it, so the emulator publishes a stable
symlink (``port_name``, by default inside a private temp dir) to the current
``/dev/pts/N``. :meth:`unplug` closes the master side (the client's reads and writes fail
as with a pulled USB adapter) and removes the symlink; :meth:`replug` opens a fresh pty and
points the same symlink at it, so a client reopening ``port_name`` finds it again. The
servos keep their state across an unplug (only the adapter went away).

Command line, for hardware-in-the-loop runs::

    python -m sac_ros.hardware.dxl_emulator --link /tmp/dclaw_port

prints the port path and serves until interrupted.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import select
import shutil
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sac_ros.hardware import dxl_protocol as proto
from sac_ros.hardware.dxl_control_table import BAUD_RATES, ControlTable, StatusError
from sac_ros.hardware.servo_backend import FirstOrderServos, ServoBackend
from sac_ros.robots import dclaw
from sac_ros.stop_signal import stop_on_signals

_STALE_INPUT_S = 0.05  # a partial packet older than this is dropped (servo packet timeout)


@dataclass
class _Motor:
    table: ControlTable
    offset: float
    temperature: float
    silent: bool = False
    corrupt_replies: int = 0
    refuse_reads: int = 0  # status error answering every read (no data), 0: none
    booting_until: float = 0.0

    @property
    def motor_id(self) -> int:
        return self.table.get("id")


def _answers(motor: _Motor, read: bool) -> bool:
    """Status Return Level: 0 answers PING only, 1 PING and reads, 2 everything."""
    return motor.table.get("status_return_level") >= (1 if read else 2)


def _clamp(value: int, lo: int, hi: int) -> int:
    return lo if value < lo else hi if value > hi else value


def dclaw_motor_ids() -> tuple[int, ...]:
    """The D'Claw's nine joint motors and the valve motor."""
    return (*dclaw.MOTOR_IDS, dclaw.VALVE_MOTOR_ID)


class DynamixelEmulator:
    """Emulated servos on a pty; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        ids: Iterable[int] | None = None,
        *,
        backend: ServoBackend | None = None,
        offsets: Mapping[int, float] | None = None,
        initial_positions: Mapping[int, float] | None = None,
        link: str | os.PathLike[str] | None = None,
        model_number: int = 1000,  # XH430-W350
        baud: int = dclaw.BAUD_RATE,
        ambient_temperature: float = 30.0,
        reboot_time_s: float = 0.02,
        check_baud: bool = True,
    ) -> None:
        ids = tuple(int(i) for i in (dclaw_motor_ids() if ids is None else ids))
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"motor IDs must be unique and non-empty, got {ids}")
        for motor_id in ids:
            if not 0 <= motor_id <= proto.MAX_ID:
                raise ValueError(f"motor ID must be 0..{proto.MAX_ID}, got {motor_id}")
        offsets = dict(offsets) if offsets is not None else {}
        self._motors: dict[int, _Motor] = {}
        for motor_id in ids:
            offset = float(offsets.get(motor_id, dclaw.position_offset(motor_id)))
            table = ControlTable(motor_id, model_number=model_number, baud=baud)
            self._motors[motor_id] = _Motor(table, offset, float(ambient_temperature))
        initial = {i: float((initial_positions or {}).get(i, 0.0)) for i in ids}
        self.backend: ServoBackend = backend or FirstOrderServos(ids, initial)
        self._backend_ids = {i: i for i in ids}  # emulated ID -> backend ID (IDs can change)
        self.reboot_time_s = float(reboot_time_s)
        self.check_baud = bool(check_baud)

        self._own_dir: str | None = None
        if link is None:
            self._own_dir = tempfile.mkdtemp(prefix="dxl_emu_")
            self._link = Path(self._own_dir) / "ttyDXL0"
        else:
            self._link = Path(link)
            if self._link.exists() and not self._link.is_symlink():
                raise ValueError(f"{self._link} exists and is not a symlink; refusing to replace")
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave: int | None = None
        self._device_path: str | None = None
        self._thread: threading.Thread | None = None
        self._stop_w: int | None = None
        self._last_advance = time.monotonic()
        self._closed = False
        self._goal_batch: list[tuple[int, float]] = []
        self.goal_writes: collections.deque[tuple[float, int, int]] = collections.deque(
            maxlen=100_000
        )  # (monotonic time, motor ID, raw goal) of every accepted goal position write
        self.stats = collections.Counter()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DynamixelEmulator:
        if self._closed:
            raise RuntimeError("this emulator is closed")
        if self._thread is None:
            self._plug()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._unplug()
        self._closed = True
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def __enter__(self) -> DynamixelEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port_name(self) -> str:
        """Stable path to open (a symlink to the current pty)."""
        return str(self._link)

    @property
    def device_path(self) -> str | None:
        """The current ``/dev/pts/N``, None while unplugged."""
        return self._device_path

    @property
    def plugged(self) -> bool:
        return self._thread is not None

    @property
    def ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._motors))

    def unplug(self) -> None:
        """The adapter goes away: clients' I/O fails and ``port_name`` disappears."""
        self._unplug()

    def replug(self) -> None:
        """A fresh pty appears at the same ``port_name``."""
        if self._closed:
            raise RuntimeError("this emulator is closed")
        if self._thread is None:
            self._plug()

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._device_path = os.ttyname(slave)
        tmp = self._link.with_name(self._link.name + ".new")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self._device_path, tmp)
        os.replace(tmp, self._link)
        stop_r, stop_w = os.pipe()
        self._stop_w = stop_w
        self._thread = threading.Thread(
            target=self._serve, args=(master, stop_r), name="dxl-emulator", daemon=True
        )
        self._thread.start()

    def _unplug(self) -> None:
        thread = self._thread
        if thread is None:
            return
        assert self._stop_w is not None
        os.write(self._stop_w, b"x")
        thread.join(timeout=5.0)
        if thread.is_alive():  # pragma: no cover - the loop wakes on the pipe
            raise RuntimeError("emulator thread did not stop")
        os.close(self._stop_w)
        self._thread = None
        self._stop_w = None
        if self._link.is_symlink():
            self._link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._device_path = None

    # ------------------------------------------------------------------ fault injection
    def _motor(self, motor_id: int) -> _Motor:
        try:
            return self._motors[int(motor_id)]
        except KeyError:
            raise ValueError(f"no emulated motor with ID {motor_id}") from None

    def set_hardware_error(self, motor_id: int, bits: int) -> None:
        """Raise Hardware Error Status bits (see dxl_protocol.HW_*); 0 changes nothing."""
        if not 0 <= bits <= 0xFF:
            raise ValueError(f"hardware error bits are one byte, got {bits}")
        with self._lock:
            self._advance()
            self._raise_error(self._motor(motor_id), bits)

    def set_temperature(self, motor_id: int, celsius: float) -> None:
        """Present temperature; above the Temperature Limit the servo flags overheating."""
        if not math.isfinite(celsius):
            raise ValueError(f"temperature must be finite, got {celsius}")
        with self._lock:
            self._advance()
            motor = self._motor(motor_id)
            motor.temperature = float(celsius)
            self._check_temperature(motor)

    def set_silent(self, motor_id: int, silent: bool = True) -> None:
        """A silent motor hears nothing and answers nothing (a cut cable)."""
        with self._lock:
            self._motor(motor_id).silent = bool(silent)

    def power_cycle(self, motor_id: int) -> None:
        """The motor's power drops for a moment and comes back (a loose daisy-chain
        cable): it boots as after a reboot, torque off and RAM reset, no error bits."""
        with self._lock:
            self._advance()
            self._reboot(self._motor(motor_id), time.monotonic())

    def refuse_reads(self, motor_id: int, error: int = proto.ERR_DATA_LENGTH) -> None:
        """Answer every read with this status error and no data (a servo whose control
        table is not the one expected); 0 answers normally again."""
        if not 0 <= error <= 0x7F:
            raise ValueError(f"a status error is 0..0x7f, got {error}")
        with self._lock:
            self._motor(motor_id).refuse_reads = int(error)

    def corrupt_next_reply(self, motor_id: int, count: int = 1) -> None:
        """The next ``count`` status packets of this motor go out with a wrong CRC."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._motor(motor_id).corrupt_replies = int(count)

    def set_position(self, motor_id: int, rad: float) -> None:
        """Move a joint from outside (a hand turning the valve); the backend must have
        ``set_position`` (FirstOrderServos does)."""
        if not math.isfinite(rad):
            raise ValueError(f"position must be finite, got {rad}")
        mover = getattr(self.backend, "set_position", None)
        if mover is None:
            raise TypeError(f"{type(self.backend).__name__} cannot be moved from outside")
        with self._lock:
            self._advance()
            mover(self._backend_ids[self._motor(motor_id).motor_id], float(rad))

    # ------------------------------------------------------------------ inspection
    def register(self, motor_id: int, name: str) -> int:
        """A control table value (present values refreshed first)."""
        with self._lock:
            self._advance()
            motor = self._motor(motor_id)
            self._refresh_present(motor)
            return motor.table.get(name)

    def goal_position(self, motor_id: int) -> float:
        """The Goal Position register in radians."""
        with self._lock:
            motor = self._motor(motor_id)
            raw = motor.table.get("goal_position")
            return float(dclaw.raw_to_rad(raw, motor.offset))

    def present_position(self, motor_id: int) -> float:
        """The backend's joint position in radians (exact, not quantised)."""
        with self._lock:
            self._advance()
            return self.backend.state(self._backend_ids[motor_id])[0]

    def offset(self, motor_id: int) -> float:
        return self._motor(motor_id).offset

    # ------------------------------------------------------------------ servo behaviour
    def _advance(self) -> None:
        now = time.monotonic()
        dt = now - self._last_advance
        self._last_advance = now
        if dt > 0:
            self.backend.advance(dt)

    def _raise_error(self, motor: _Motor, bits: int) -> None:
        table = motor.table
        table.set("hardware_error_status", table.get("hardware_error_status") | bits)
        if bits & table.get("shutdown") and table.get("torque_enable"):
            table.set("torque_enable", 0)
            self.backend.set_torque(self._backend_ids[motor.motor_id], False)

    def _check_temperature(self, motor: _Motor) -> None:
        if motor.temperature > motor.table.get("temperature_limit"):
            self._raise_error(motor, proto.HW_OVERHEATING)

    def _refresh_present(self, motor: _Motor) -> None:
        table = motor.table
        pos, vel, cur = self.backend.state(self._backend_ids[motor.motor_id])
        raw_pos = int(dclaw.rad_to_raw(np.float64(pos), motor.offset))
        raw_vel = round(vel / dclaw.RAD_S_PER_TICK)
        raw_cur = round(cur / dclaw.MA_PER_TICK)
        table.set("present_position", _clamp(raw_pos, -(2**31), 2**31 - 1))
        table.set("present_velocity", _clamp(raw_vel, -(2**31), 2**31 - 1))
        table.set("present_current", _clamp(raw_cur, -(2**15), 2**15 - 1))
        table.set("present_temperature", _clamp(round(motor.temperature), 0, 255))
        table.set("moving", int(abs(raw_vel) > table.get("moving_threshold")))
        table.set("realtime_tick", int(time.monotonic() * 1000) % 32768)
        self._check_temperature(motor)

    def _hears(self, motor: _Motor, now: float) -> bool:
        if motor.silent or now < motor.booting_until:
            return False
        if self.check_baud and self._slave is not None:
            wanted = getattr(termios, f"B{BAUD_RATES[motor.table.get('baud_rate')]}", None)
            if wanted is not None:
                try:
                    speed = termios.tcgetattr(self._slave)[5]
                except termios.error:
                    return True
                if speed != wanted:
                    return False
        return True

    def _status(self, motor: _Motor, error: int, params: bytes = b"") -> bytes:
        if motor.table.get("hardware_error_status"):
            error |= proto.ERR_ALERT
        packet = proto.status_packet(motor.motor_id, error, params)
        if motor.corrupt_replies > 0:
            motor.corrupt_replies -= 1
            self.stats["corrupted_replies"] += 1
            packet = packet[:-1] + bytes(((packet[-1] ^ 0x5A) & 0xFF,))
        return packet

    def _read(self, motor: _Motor, address: int, length: int) -> bytes:
        """A status packet answering a read (data, or the error code)."""
        self._refresh_present(motor)
        if motor.refuse_reads:
            return self._status(motor, motor.refuse_reads)
        try:
            return self._status(motor, 0, motor.table.read(address, length))
        except StatusError as exc:
            return self._status(motor, exc.code)

    def _write(self, motor: _Motor, address: int, data: bytes) -> None:
        """Validate and apply a write; raises StatusError as the servo would answer."""
        table = motor.table
        changes = table.fields_in(address, data)
        for f, value in changes:
            if f.name == "torque_enable":
                if value not in (0, 1):
                    raise StatusError(proto.ERR_DATA_RANGE, f"torque enable {value}")
                if value == 1 and table.get("hardware_error_status"):
                    raise StatusError(proto.ERR_RESULT_FAIL, "torque refused: hardware error")
            elif f.name == "goal_position":
                lo, hi = table.get("min_position_limit"), table.get("max_position_limit")
                if not lo <= value <= hi:
                    raise StatusError(proto.ERR_DATA_LIMIT, f"goal {value} outside {lo}..{hi}")
            elif f.name == "baud_rate" and value not in BAUD_RATES:
                raise StatusError(proto.ERR_DATA_RANGE, f"baud rate index {value}")
            elif f.name == "operating_mode" and value not in (0, 1, 3, 4, 5, 16):
                raise StatusError(proto.ERR_DATA_RANGE, f"operating mode {value}")
            elif f.name == "status_return_level" and value > 2:
                raise StatusError(proto.ERR_DATA_RANGE, f"status return level {value}")
            elif f.name == "id" and (
                value > proto.MAX_ID or (value in self._motors and value != motor.motor_id)
            ):
                raise StatusError(proto.ERR_DATA_RANGE, f"ID {value} invalid or taken")
        for f, value in changes:
            old = table.get(f.name)
            if f.name == "id":
                self._rekey(motor, old, value)
                continue
            table.set(f.name, value)
            backend_id = self._backend_ids[motor.motor_id]
            if f.name == "torque_enable" and value != old:
                if value:
                    self._refresh_present(motor)
                    table.set("goal_position", table.get("present_position"))
                    self.backend.set_torque(backend_id, True)
                    self._goal_batch.append((backend_id, self._goal_rad(motor)))
                else:
                    self.backend.set_torque(backend_id, False)
            elif f.name == "goal_position":
                self.goal_writes.append((time.monotonic(), motor.motor_id, value))
                if table.get("torque_enable"):
                    self._goal_batch.append((backend_id, self._goal_rad(motor)))

    def _rekey(self, motor: _Motor, old: int, new: int) -> None:
        if old == new:
            return
        motor.table.set("id", new)
        self._motors[new] = self._motors.pop(old)
        self._backend_ids[new] = self._backend_ids.pop(old)

    @staticmethod
    def _goal_rad(motor: _Motor) -> float:
        return float(dclaw.raw_to_rad(motor.table.get("goal_position"), motor.offset))

    def _flush_goals(self) -> None:
        if self._goal_batch:
            ids, rads = zip(*self._goal_batch, strict=True)
            self._goal_batch.clear()
            self.backend.set_goal(list(ids), list(rads))

    def _reboot(self, motor: _Motor, now: float) -> None:
        table = motor.table
        self.backend.set_torque(self._backend_ids[motor.motor_id], False)
        table.reset_ram()
        self._refresh_present(motor)
        table.set("goal_position", table.get("present_position"))
        motor.booting_until = now + self.reboot_time_s
        self.stats["reboots"] += 1

    # ------------------------------------------------------------------ protocol
    def handle(self, packet: proto.Packet) -> bytes:
        """Answer one instruction packet: the status bytes to send (maybe empty)."""
        with self._lock:
            self._advance()
            self.stats["packets"] += 1
            try:
                return self._dispatch(packet, time.monotonic())
            finally:
                self._flush_goals()

    def _targets(self, packet_id: int, now: float) -> list[_Motor]:
        if packet_id == proto.BROADCAST_ID:
            candidates = [self._motors[i] for i in sorted(self._motors)]
        else:
            candidates = [self._motors[packet_id]] if packet_id in self._motors else []
        heard = [m for m in candidates if self._hears(m, now)]
        self.stats["unheard"] += len(candidates) - len(heard)
        return heard

    def _dispatch(self, packet: proto.Packet, now: float) -> bytes:
        inst, pid, params = packet.instruction, packet.packet_id, packet.params
        broadcast = pid == proto.BROADCAST_ID
        out = bytearray()
        if inst == proto.PING:
            for motor in self._targets(pid, now):
                table = motor.table
                info = proto.u16(table.get("model_number")) + bytes(
                    (table.get("firmware_version"),)
                )
                out += self._status(motor, 0, info)
        elif inst == proto.READ:
            if broadcast:
                return b""
            for motor in self._targets(pid, now):
                if not _answers(motor, read=True):
                    continue
                if len(params) != 4:
                    out += self._status(motor, proto.ERR_DATA_LENGTH)
                    continue
                out += self._read(motor, proto.le_int(params[:2]), proto.le_int(params[2:]))
        elif inst == proto.WRITE:
            for motor in self._targets(pid, now):
                error = 0
                if len(params) < 3:
                    error = proto.ERR_DATA_LENGTH
                else:
                    try:
                        self._write(motor, proto.le_int(params[:2]), params[2:])
                    except StatusError as exc:
                        error = exc.code
                        self.stats["rejected_writes"] += 1
                if not broadcast and _answers(motor, read=False):
                    out += self._status(motor, error)
        elif inst == proto.SYNC_WRITE:
            self._sync_write(params, now)
        elif inst == proto.BULK_WRITE:
            self._bulk_write(params, now)
        elif inst == proto.SYNC_READ:
            if broadcast and len(params) >= 4:
                address, length = proto.le_int(params[:2]), proto.le_int(params[2:4])
                for motor_id in params[4:]:
                    for motor in self._targets(motor_id, now):
                        if _answers(motor, read=True):
                            out += self._read(motor, address, length)
        elif inst == proto.BULK_READ:
            if broadcast and len(params) % 5 == 0:
                for k in range(0, len(params), 5):
                    address = proto.le_int(params[k + 1 : k + 3])
                    length = proto.le_int(params[k + 3 : k + 5])
                    for motor in self._targets(params[k], now):
                        if _answers(motor, read=True):
                            out += self._read(motor, address, length)
        elif inst == proto.REBOOT:
            for motor in self._targets(pid, now):
                if not broadcast and _answers(motor, read=False):
                    out += self._status(motor, 0)
                self._reboot(motor, now)
        else:
            self.stats["refused_instructions"] += 1
            if not broadcast:
                for motor in self._targets(pid, now):
                    if _answers(motor, read=False):
                        out += self._status(motor, proto.ERR_INSTRUCTION)
        return bytes(out)

    def _sync_write(self, params: bytes, now: float) -> None:
        if len(params) < 4:
            return
        address, length = proto.le_int(params[:2]), proto.le_int(params[2:4])
        step = 1 + length
        body = params[4:]
        if length == 0 or len(body) % step:
            self.stats["malformed"] += 1
            return
        for k in range(0, len(body), step):
            self._write_quietly(body[k], address, body[k + 1 : k + step], now)

    def _bulk_write(self, params: bytes, now: float) -> None:
        k = 0
        while k + 5 <= len(params):
            motor_id = params[k]
            address = proto.le_int(params[k + 1 : k + 3])
            length = proto.le_int(params[k + 3 : k + 5])
            data = params[k + 5 : k + 5 + length]
            if len(data) != length:
                self.stats["malformed"] += 1
                return
            self._write_quietly(motor_id, address, data, now)
            k += 5 + length

    def _write_quietly(self, motor_id: int, address: int, data: bytes, now: float) -> None:
        for motor in self._targets(motor_id, now):
            try:
                self._write(motor, address, data)
            except StatusError:
                self.stats["rejected_writes"] += 1

    # ------------------------------------------------------------------ I/O thread
    def _serve(self, master: int, stop_r: int) -> None:
        parser = proto.PacketParser()
        pending_since = 0.0  # when the partial packet in the parser began
        try:
            while True:
                ready, _, _ = select.select([master, stop_r], [], [], 1.0)
                if stop_r in ready:
                    return
                if master not in ready:
                    continue
                try:
                    data = os.read(master, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # no slave open: nothing to serve until one is
                    time.sleep(0.01)
                    continue
                now = time.monotonic()
                # A partial packet is timed from its first byte, as a servo does: a length
                # field hit by noise must not hold the parser while the master keeps
                # polling (every poll would feed it, and a quiet gap never comes).
                if parser.pending and now - pending_since > _STALE_INPUT_S:
                    parser.clear()
                had_pending = bool(parser.pending)
                bad_before = parser.bad_crc
                packets = 0
                for packet in parser.feed(data):
                    packets += 1
                    reply = self.handle(packet)
                    if reply:
                        self._send(master, reply)
                if parser.pending and (packets or not had_pending):
                    pending_since = now  # a packet begun in this read
                self.stats["bad_crc"] += parser.bad_crc - bad_before
        finally:
            os.close(stop_r)

    def _send(self, master: int, data: bytes) -> None:
        """Write replies; bytes nobody can take (a full buffer) are lost, as on a bus."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(master, view)
            except BlockingIOError:
                self.stats["dropped_reply_bytes"] += len(view)
                return
            except OSError:
                return
            view = view[sent:]
        self.stats["replies"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sac_ros.hardware.dxl_emulator",
        description="Emulated Dynamixel X-series servos on a pseudo-terminal.",
    )
    parser.add_argument(
        "--ids",
        type=int,
        nargs="+",
        default=list(dclaw_motor_ids()),
        help="motor IDs (default: the D'Claw's nine joints and valve 50)",
    )
    parser.add_argument(
        "--link", default=None, help="stable symlink to the pty (default: a temp path, printed)"
    )
    parser.add_argument("--baud", type=int, default=dclaw.BAUD_RATE)
    parser.add_argument("--model-number", type=int, default=1000)
    parser.add_argument(
        "--backend",
        choices=("first_order", "mujoco"),
        default="first_order",
        help="physics behind the motors: a first-order servo model, or the MuJoCo D'Claw "
        "(then --ids must be the D'Claw's)",
    )
    args = parser.parse_args(argv)

    backend: ServoBackend | None = None
    if args.backend == "mujoco":
        from sac_ros.hardware.mujoco_backend import MujocoDClawBackend  # needs mujoco

        backend = MujocoDClawBackend()
        missing = set(args.ids) - set(backend.ids)
        if missing:
            parser.error(f"the MuJoCo D'Claw has no motors {sorted(missing)}")

    stop = stop_on_signals()
    with DynamixelEmulator(
        args.ids,
        backend=backend,
        link=args.link,
        baud=args.baud,
        model_number=args.model_number,
    ) as emulator:
        print(emulator.port_name, flush=True)
        while not stop.requested:
            time.sleep(0.1)
    stop.ignore_further()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
