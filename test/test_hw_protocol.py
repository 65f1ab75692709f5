"""Dynamixel Protocol 2.0 framing: CRC, byte stuffing, packet build and parse."""

from __future__ import annotations

import dynamixel_sdk as sdk
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sac_ros.hardware import dxl_protocol as proto

# Packet examples printed in the ROBOTIS Protocol 2.0 e-manual (ping, its status reply
# from a model 1030 with firmware 38, write of goal position 512 at 116, read of present
# position at 132, reboot).
EMANUAL_PACKETS = [
    "FF FF FD 00 01 03 00 01 19 4E",
    "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D",
    "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
    "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15",
    "FF FF FD 00 01 03 00 08 2F 4E",
]


def _bitwise_crc(data: bytes) -> int:
    """CRC-16 poly 0x8005, init 0, MSB first: the textbook bit-at-a-time definition."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


@pytest.mark.parametrize("text", EMANUAL_PACKETS)
def test_crc_matches_emanual_examples(text: str) -> None:
    packet = bytes.fromhex(text)
    assert proto.crc16(packet[:-2]) == packet[-2] | (packet[-1] << 8)


def test_crc_catalogue_check_value() -> None:
    # CRC-16/UMTS (BUYPASS) check value of "123456789" in the CRC catalogue.
    assert proto.crc16(b"123456789") == 0xFEE8


@given(st.binary(max_size=300))
def test_crc_agrees_with_bitwise_and_sdk(data: bytes) -> None:
    expected = _bitwise_crc(data)
    assert proto.crc16(data) == expected
    assert sdk.PacketHandler(2.0).updateCRC(0, list(data), len(data)) == expected


def test_build_reproduces_emanual_packets() -> None:
    ping, status, write, read, reboot = (bytes.fromhex(t) for t in EMANUAL_PACKETS)
    assert proto.instruction_packet(1, proto.PING) == ping
    assert proto.status_packet(1, 0, bytes((0x06, 0x04, 0x26))) == status
    assert proto.instruction_packet(1, proto.WRITE, bytes((116, 0, 0, 2, 0, 0))) == write
    assert proto.instruction_packet(1, proto.READ, bytes((132, 0, 4, 0))) == read
    assert proto.instruction_packet(1, proto.REBOOT) == reboot


def test_stuffing_examples() -> None:
    assert proto.stuff(b"\xff\xff\xfd") == b"\xff\xff\xfd\xfd"
    assert proto.stuff(b"\x01\xff\xff\xfd\x02") == b"\x01\xff\xff\xfd\xfd\x02"
    assert proto.stuff(b"\xff\xff\xfd\xfd") == b"\xff\xff\xfd\xfd\xfd"
    assert proto.stuff(b"\xff\xfd\xff\xff") == b"\xff\xfd\xff\xff"
    with pytest.raises(ValueError, match="FF FF FD"):
        proto.unstuff(b"\xff\xff\xfd\x01")


_patterned = st.lists(
    st.one_of(st.sampled_from([b"\xff", b"\xfd", b"\xff\xff\xfd", b"\xff\xff\xfd\xfd"]),
              st.binary(max_size=3)),
    max_size=40,
).map(b"".join)  # fmt: skip


@given(_patterned)
def test_stuffing_round_trip(body: bytes) -> None:
    stuffed = proto.stuff(body)
    assert proto.unstuff(stuffed) == body
    # A stuffed body never holds a header: every FF FF FD is followed by FD.
    for k in range(len(stuffed) - 2):
        if stuffed[k : k + 3] == b"\xff\xff\xfd":
            assert stuffed[k + 3 : k + 4] == b"\xfd"


@given(_patterned, st.integers(0, 252))
def test_status_packet_parsed_by_sdk(params: bytes, motor_id: int) -> None:
    """The SDK's own unstuffing and CRC accept what the emulator sends."""
    packet = proto.status_packet(motor_id, 0x80, params)
    # dynamixel-sdk 4.1.0's removeStuffing works in place and re-reads bytes it already
    # shifted: after one stuffed FD, a later "FF FD FD" loses its FD (e.g. parameters
    # FF FF FD FF FD FD come back as FF FF FD FF FD). A spec-conforming packet, an SDK
    # defect; such payloads are left out here.
    first = packet.find(b"\xff\xff\xfd\xfd", 7)
    assume(first < 0 or b"\xfd\xfd" not in packet[first + 4 : -2])
    handler = sdk.PacketHandler(2.0)
    length = packet[5] | (packet[6] << 8)
    assert length == len(packet) - 7
    assert handler.updateCRC(0, list(packet), len(packet) - 2) == packet[-2] | (packet[-1] << 8)
    unstuffed = handler.removeStuffing(list(packet))
    n = unstuffed[5] | (unstuffed[6] << 8)
    assert bytes(unstuffed[9 : 7 + n - 2]) == params
    assert unstuffed[4] == motor_id and unstuffed[8] == 0x80


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.integers(0, 253), st.integers(1, 0x54), _patterned), max_size=5),
    st.lists(st.integers(1, 20), max_size=10),
    st.binary(max_size=8),
)
def test_parser_handles_any_chunking(packets, cuts, noise) -> None:
    stream = noise.replace(b"\xff", b"")
    for pid, inst, params in packets:
        stream += proto.instruction_packet(pid, inst, params)
    parser = proto.PacketParser()
    got = []
    pos = 0
    for cut in cuts:
        got += list(parser.feed(stream[pos : pos + cut]))
        pos += cut
    got += list(parser.feed(stream[pos:]))
    assert [(p.packet_id, p.instruction, p.params) for p in got] == packets


def test_parser_drops_bad_crc_and_resynchronises() -> None:
    good = proto.instruction_packet(1, proto.PING)
    bad = bytearray(proto.instruction_packet(2, proto.READ, bytes((132, 0, 4, 0))))
    bad[-1] ^= 0xFF
    parser = proto.PacketParser()
    got = list(parser.feed(bytes(bad) + good))
    assert [(p.packet_id, p.instruction) for p in got] == [(1, proto.PING)]
    assert parser.bad_crc == 1


def test_status_packet_round_trip_through_parser() -> None:
    packet = proto.status_packet(7, proto.ERR_ACCESS | proto.ERR_ALERT, b"\xff\xff\xfd\x01")
    (parsed,) = proto.PacketParser().feed(packet)
    assert parsed.instruction == proto.STATUS
    assert parsed.error == proto.ERR_ACCESS | proto.ERR_ALERT
    assert parsed.params == b"\xff\xff\xfd\x01"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="packet ID"):
        proto.instruction_packet(300, proto.PING)
    with pytest.raises(ValueError, match="not an instruction"):
        proto.instruction_packet(1, proto.STATUS)
    with pytest.raises(ValueError, match="too long"):
        proto.instruction_packet(1, proto.WRITE, bytes(2000))
    with pytest.raises(ValueError, match="one byte"):
        proto.describe_hardware_error(256)
    assert proto.describe_hardware_error(proto.HW_OVERLOAD | proto.HW_OVERHEATING) == [
        "overheating",
        "overload",
    ]
