"""The X-series (XM430/XH430, protocol 2.0) control table as the emulator keeps it.

Addresses, sizes, access and defaults follow the ROBOTIS e-manual for the X series (the
D'Claw's XH430 and the XM430 share this layout). The EEPROM area (addresses below 64) is
writable only while torque is off, as on a real servo. Addresses the table does not name
read as zero and refuse writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sac_ros.hardware import dxl_protocol as proto


@dataclass(frozen=True)
class Field:
    name: str
    address: int
    size: int
    writable: bool
    default: int = 0
    signed: bool = False

    @property
    def eeprom(self) -> bool:
        return self.address < RAM_START

    @property
    def end(self) -> int:
        return self.address + self.size


RAM_START = 64
TABLE_SIZE = 256  # covers every named field; indirect addressing is not emulated

FIELDS: tuple[Field, ...] = (
    # EEPROM
    Field("model_number", 0, 2, False, 1000),
    Field("model_information", 2, 4, False),
    Field("firmware_version", 6, 1, False, 45),
    Field("id", 7, 1, True, 1),
    Field("baud_rate", 8, 1, True, 1),
    Field("return_delay_time", 9, 1, True, 250),
    Field("drive_mode", 10, 1, True, 0),
    Field("operating_mode", 11, 1, True, 3),
    Field("secondary_id", 12, 1, True, 255),
    Field("protocol_type", 13, 1, True, 2),
    Field("homing_offset", 20, 4, True, 0, signed=True),
    Field("moving_threshold", 24, 4, True, 10),
    Field("temperature_limit", 31, 1, True, 80),
    Field("max_voltage_limit", 32, 2, True, 160),
    Field("min_voltage_limit", 34, 2, True, 95),
    Field("pwm_limit", 36, 2, True, 885),
    Field("current_limit", 38, 2, True, 1193),
    Field("velocity_limit", 44, 4, True, 200),
    Field("max_position_limit", 48, 4, True, 4095),
    Field("min_position_limit", 52, 4, True, 0),
    Field("shutdown", 63, 1, True, 52),
    # RAM
    Field("torque_enable", 64, 1, True, 0),
    Field("led", 65, 1, True, 0),
    Field("status_return_level", 68, 1, True, 2),
    Field("registered_instruction", 69, 1, False, 0),
    Field("hardware_error_status", 70, 1, False, 0),
    Field("velocity_i_gain", 76, 2, True, 1920),
    Field("velocity_p_gain", 78, 2, True, 100),
    Field("position_d_gain", 80, 2, True, 0),
    Field("position_i_gain", 82, 2, True, 0),
    Field("position_p_gain", 84, 2, True, 800),
    Field("feedforward_2nd_gain", 88, 2, True, 0),
    Field("feedforward_1st_gain", 90, 2, True, 0),
    Field("bus_watchdog", 98, 1, True, 0),
    Field("goal_pwm", 100, 2, True, 885, signed=True),
    Field("goal_current", 102, 2, True, 1193, signed=True),
    Field("goal_velocity", 104, 4, True, 0, signed=True),
    Field("profile_acceleration", 108, 4, True, 0),
    Field("profile_velocity", 112, 4, True, 0),
    Field("goal_position", 116, 4, True, 0, signed=True),
    Field("realtime_tick", 120, 2, False, 0),
    Field("moving", 122, 1, False, 0),
    Field("moving_status", 123, 1, False, 0),
    Field("present_pwm", 124, 2, False, 0, signed=True),
    Field("present_current", 126, 2, False, 0, signed=True),
    Field("present_velocity", 128, 4, False, 0, signed=True),
    Field("present_position", 132, 4, False, 0, signed=True),
    Field("velocity_trajectory", 136, 4, False, 0, signed=True),
    Field("position_trajectory", 140, 4, False, 0, signed=True),
    Field("present_input_voltage", 144, 2, False, 120),
    Field("present_temperature", 146, 1, False, 30),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_ADDRESS: dict[int, Field] = {f.address: f for f in FIELDS}

# Addresses the bus and the driver use (ROBOTS.md).
ADDR_TORQUE_ENABLE = BY_NAME["torque_enable"].address  # 64
ADDR_HARDWARE_ERROR = BY_NAME["hardware_error_status"].address  # 70
ADDR_GOAL_POSITION = BY_NAME["goal_position"].address  # 116
ADDR_PRESENT_CURRENT = BY_NAME["present_current"].address  # 126
ADDR_PRESENT_VELOCITY = BY_NAME["present_velocity"].address  # 128
ADDR_PRESENT_POSITION = BY_NAME["present_position"].address  # 132
ADDR_PRESENT_TEMPERATURE = BY_NAME["present_temperature"].address  # 146
STATE_BLOCK_LENGTH = 10  # current (2) + velocity (4) + position (4), from 126

# Baud Rate register values (X series).
BAUD_RATES = {0: 9600, 1: 57600, 2: 115200, 3: 1_000_000, 4: 2_000_000, 5: 3_000_000,
              6: 4_000_000, 7: 4_500_000}  # fmt: skip
OPERATING_MODES = {0: "current", 1: "velocity", 3: "position", 4: "extended position",
                   5: "current-based position", 16: "pwm"}  # fmt: skip


def baud_index(baud: int) -> int:
    for index, rate in BAUD_RATES.items():
        if rate == baud:
            return index
    raise ValueError(f"an X-series servo has no baud rate {baud}; choose from {BAUD_RATES}")


class StatusError(Exception):
    """An instruction the servo refuses; ``code`` is the status packet's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{proto.RESULT_NAMES.get(code, code)}: {message}")
        self.code = code


class ControlTable:
    """Byte image of one servo's control table with the servo's access rules."""

    def __init__(self, motor_id: int, model_number: int = 1000, baud: int = 1_000_000) -> None:
        if not 0 <= motor_id <= proto.MAX_ID:
            raise ValueError(f"motor ID must be 0..{proto.MAX_ID}, got {motor_id}")
        self._bytes = bytearray(TABLE_SIZE)
        self._owner = [None] * TABLE_SIZE  # address -> Field
        for f in FIELDS:
            for a in range(f.address, f.end):
                self._owner[a] = f
        self.reset_all()
        self.set("model_number", model_number)
        self.set("id", motor_id)
        self.set("baud_rate", baud_index(baud))

    def reset_all(self) -> None:
        for f in FIELDS:
            self.set(f.name, f.default)

    def reset_ram(self) -> None:
        """What a reboot does: RAM back to defaults, EEPROM kept."""
        for f in FIELDS:
            if not f.eeprom:
                self.set(f.name, f.default)

    def get(self, name: str) -> int:
        f = BY_NAME[name]
        return int.from_bytes(self._bytes[f.address : f.end], "little", signed=f.signed)

    def set(self, name: str, value: int) -> None:
        """Store a value, bypassing access rules (the servo's own firmware)."""
        f = BY_NAME[name]
        if f.signed:
            lo, hi = -(1 << (8 * f.size - 1)), (1 << (8 * f.size - 1)) - 1
        else:
            lo, hi = 0, (1 << (8 * f.size)) - 1
        value = int(value)
        if not lo <= value <= hi:
            raise ValueError(f"{name} = {value} does not fit {f.size} bytes")
        self._bytes[f.address : f.end] = value.to_bytes(f.size, "little", signed=f.signed)

    def read(self, address: int, length: int) -> bytes:
        if length <= 0 or address < 0 or address + length > TABLE_SIZE:
            raise StatusError(proto.ERR_ACCESS, f"read of {length} bytes at {address}")
        return bytes(self._bytes[address : address + length])

    def fields_in(self, address: int, data: bytes) -> list[tuple[Field, int]]:
        """Validate a write of ``data`` at ``address``; the fields and values it sets.

        Raises StatusError with the code a servo would answer: access error for read-only
        fields, unnamed addresses or EEPROM while torque is on; data length error for a
        write that covers part of a field.
        """
        end = address + len(data)
        if not data or address < 0 or end > TABLE_SIZE:
            raise StatusError(proto.ERR_ACCESS, f"write of {len(data)} bytes at {address}")
        torque_on = self.get("torque_enable") == 1
        out = []
        a = address
        while a < end:
            f = self._owner[a]
            if f is None:
                raise StatusError(proto.ERR_ACCESS, f"address {a} is not in the table")
            if a != f.address or f.end > end:
                raise StatusError(proto.ERR_DATA_LENGTH, f"write covers part of {f.name}")
            if not f.writable:
                raise StatusError(proto.ERR_ACCESS, f"{f.name} is read-only")
            if f.eeprom and torque_on:
                raise StatusError(proto.ERR_ACCESS, f"{f.name} (EEPROM) while torque is on")
            chunk = data[a - address : f.end - address]
            out.append((f, int.from_bytes(chunk, "little", signed=f.signed)))
            a = f.end
        return out
