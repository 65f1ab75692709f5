"""Dynamixel Protocol 2.0 framing: CRC-16, byte stuffing, packet building and parsing.

Wire format (both directions)::

    FF FF FD 00 | ID | LEN_L LEN_H | INST | [ERR] PARAMS... | CRC_L CRC_H

``LEN`` counts everything after itself (instruction, error, parameters, CRC). Inside the
instruction/error/parameter body, every ``FF FF FD`` is followed by an extra ``FD`` so a
body can never look like a header ("byte stuffing"); ``LEN`` counts the stuffed bytes and
the CRC covers the stuffed packet from the first header byte. The CRC is CRC-16 with
polynomial 0x8005, initial value 0, no reflection and no final XOR (the catalogue's
CRC-16/UMTS, also called BUYPASS). Status packets use instruction 0x55 followed by one
error byte.

Used by the servo emulator (parsing instructions, building status packets); the bus itself
goes through the real dynamixel-sdk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 252
MAX_PACKET_LENGTH = 1024  # bytes after the length field, as the SDK's buffers allow

# Instructions
PING = 0x01
READ = 0x02
WRITE = 0x03
REG_WRITE = 0x04
ACTION = 0x05
FACTORY_RESET = 0x06
REBOOT = 0x08
CLEAR = 0x10
CONTROL_TABLE_BACKUP = 0x20
STATUS = 0x55
SYNC_READ = 0x82
SYNC_WRITE = 0x83
FAST_SYNC_READ = 0x8A
BULK_READ = 0x92
BULK_WRITE = 0x93
FAST_BULK_READ = 0x9A

# Status packet error byte: bits 0-6 a result code, bit 7 the hardware-error alert.
ERR_NONE = 0x00
ERR_RESULT_FAIL = 0x01
ERR_INSTRUCTION = 0x02
ERR_CRC = 0x03
ERR_DATA_RANGE = 0x04
ERR_DATA_LENGTH = 0x05
ERR_DATA_LIMIT = 0x06
ERR_ACCESS = 0x07
ERR_ALERT = 0x80

RESULT_NAMES = {
    ERR_RESULT_FAIL: "result fail",
    ERR_INSTRUCTION: "instruction error",
    ERR_CRC: "CRC error",
    ERR_DATA_RANGE: "data range error",
    ERR_DATA_LENGTH: "data length error",
    ERR_DATA_LIMIT: "data limit error",
    ERR_ACCESS: "access error",
}

# Hardware Error Status (X series, address 70) bits.
HW_INPUT_VOLTAGE = 0x01
HW_OVERHEATING = 0x04
HW_MOTOR_ENCODER = 0x08
HW_ELECTRICAL_SHOCK = 0x10
HW_OVERLOAD = 0x20

HARDWARE_ERROR_NAMES = {
    HW_INPUT_VOLTAGE: "input voltage error",
    HW_OVERHEATING: "overheating",
    HW_MOTOR_ENCODER: "motor encoder error",
    HW_ELECTRICAL_SHOCK: "electrical shock",
    HW_OVERLOAD: "overload",
}


def describe_hardware_error(bits: int) -> list[str]:
    """Names of the set Hardware Error Status bits (unknown bits named by value)."""
    if not 0 <= bits <= 0xFF:
        raise ValueError(f"hardware error status is one byte, got {bits}")
    names = [name for bit, name in HARDWARE_ERROR_NAMES.items() if bits & bit]
    unknown = bits & ~sum(HARDWARE_ERROR_NAMES)
    if unknown:
        names.append(f"unknown bits 0x{unknown:02x}")
    return names


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-16 of ``data`` (polynomial 0x8005, MSB first, initial value ``crc``)."""
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def stuff(body: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` in ``body``."""
    out = bytearray()
    for byte in body:
        out.append(byte)
        if byte == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Inverse of :func:`stuff`: drop the ``FD`` that follows every ``FF FF FD``.

    Raises ValueError when a ``FF FF FD`` is not followed by the stuffing byte, which a
    stuffed body can never contain.
    """
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        byte = body[i]
        out.append(byte)
        i += 1
        if byte == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            if i >= n or body[i] != 0xFD:
                raise ValueError(f"unstuffed FF FF FD at offset {i - 3} of a stuffed body")
            i += 1  # the stuffing byte
            # The stuffed FD starts no new pattern: the emitted FD already did.
    return bytes(out)


def _frame(packet_id: int, body: bytes) -> bytes:
    if not 0 <= packet_id <= 0xFE:
        raise ValueError(f"packet ID must be 0..254, got {packet_id}")
    stuffed = stuff(body)
    length = len(stuffed) + 2
    if length > MAX_PACKET_LENGTH:
        raise ValueError(f"packet too long: {length} bytes after the length field")
    packet = HEADER + bytes((packet_id, length & 0xFF, length >> 8)) + stuffed
    crc = crc16(packet)
    return packet + bytes((crc & 0xFF, crc >> 8))


def instruction_packet(packet_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete instruction packet (header, stuffed body, CRC)."""
    if not 0 <= instruction <= 0xFF or instruction == STATUS:
        raise ValueError(f"not an instruction: {instruction}")
    return _frame(packet_id, bytes((instruction,)) + bytes(params))


def status_packet(packet_id: int, error: int, params: bytes = b"") -> bytes:
    """A complete status packet (instruction 0x55, error byte, parameters)."""
    if not 0 <= packet_id <= MAX_ID:
        raise ValueError(f"a status packet comes from ID 0..{MAX_ID}, got {packet_id}")
    if not 0 <= error <= 0xFF:
        raise ValueError(f"error is one byte, got {error}")
    return _frame(packet_id, bytes((STATUS, error)) + bytes(params))


@dataclass(frozen=True)
class Packet:
    """A received packet, unstuffed. ``error`` is set for status packets only."""

    packet_id: int
    instruction: int
    params: bytes
    error: int | None = None


class PacketParser:
    """Incremental parser: feed bytes, get whole packets with a valid CRC.

    Packets with a bad CRC or a malformed body are dropped and counted (real servos
    ignore them); bytes before a header are skipped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_crc = 0
        self.malformed = 0

    def clear(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> Iterator[Packet]:
        self._buf += data
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # Keep a possible partial header at the end.
                keep = 0
                for k in (3, 2, 1):
                    if self._buf.endswith(HEADER[:k]):
                        keep = k
                        break
                del self._buf[: len(self._buf) - keep]
                return
            if start:
                del self._buf[:start]
            if len(self._buf) < 7:
                return
            length = self._buf[5] | (self._buf[6] << 8)
            if length < 3 or length > MAX_PACKET_LENGTH:
                self.malformed += 1
                del self._buf[:3]
                continue
            total = 7 + length
            if len(self._buf) < total:
                return
            raw = bytes(self._buf[:total])
            if crc16(raw[:-2]) != (raw[-2] | (raw[-1] << 8)):
                self.bad_crc += 1
                del self._buf[:3]  # resynchronise on the next header
                continue
            del self._buf[:total]
            try:
                body = unstuff(raw[7:-2])
            except ValueError:
                self.malformed += 1
                continue
            if not body:
                self.malformed += 1
                continue
            instruction = body[0]
            if instruction == STATUS:
                if len(body) < 2:
                    self.malformed += 1
                    continue
                yield Packet(raw[4], instruction, body[2:], body[1])
            else:
                yield Packet(raw[4], instruction, body[1:])


def u16(value: int) -> bytes:
    return int(value & 0xFFFF).to_bytes(2, "little")


def le_int(data: bytes, signed: bool = False) -> int:
    return int.from_bytes(data, "little", signed=signed)
