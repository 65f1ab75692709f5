"""The servo emulator answers the real dynamixel-sdk on a pseudo-terminal."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import dynamixel_sdk as sdk
import pytest
import serial

from sac_ros.hardware import dxl_protocol as proto
from sac_ros.hardware.dxl_emulator import DynamixelEmulator
from sac_ros.hardware.dynamixel_bus import TimedPortHandler

pytestmark = pytest.mark.timeout(60)

IDS = (10, 11, 50)
TICK = 2 * math.pi / 4096


@pytest.fixture
def emu():
    with DynamixelEmulator(IDS, initial_positions={10: 0.2, 11: -0.5, 50: 1.0}) as e:
        yield e


@pytest.fixture
def port(emu):
    # The SDK's handler with a longer status timeout (82 ms instead of 34 ms), so that a
    # loaded test machine does not turn a slow reply into a missing one.
    handler = TimedPortHandler(emu.port_name, latency_timer_ms=40.0)
    assert handler.setBaudRate(1_000_000)
    yield handler
    if handler.ser is not None:
        try:
            handler.closePort()
        except (serial.SerialException, OSError):
            pass


PH = sdk.PacketHandler(2.0)


def _raw(rad: float, offset: float) -> int:
    return round((rad - offset) / TICK)


def test_stock_sdk_port_handler(emu):
    handler = sdk.PortHandler(emu.port_name)
    assert handler.setBaudRate(1_000_000)
    try:
        # The stock handler waits 34 ms for a reply: on a loaded host the emulator's thread
        # can miss that once (seen in a full suite run); it must answer within three tries.
        pings = [PH.ping(handler, 10)[:2] for _ in range(3)]
        assert (1000, sdk.COMM_SUCCESS) in pings, pings
        reads = [PH.read4ByteTxRx(handler, 10, 132)[1] for _ in range(3)]
        assert sdk.COMM_SUCCESS in reads, reads
    finally:
        handler.closePort()


def test_ping_and_model(emu, port):
    for motor_id in IDS:
        model, result, error = PH.ping(port, motor_id)
        assert (result, error, model) == (sdk.COMM_SUCCESS, 0, 1000)
    _, result, _ = PH.ping(port, 99)
    assert result == sdk.COMM_RX_TIMEOUT
    found, result = PH.broadcastPing(port)
    assert result == sdk.COMM_SUCCESS
    assert sorted(found) == list(IDS)


def test_present_position_units(emu, port):
    # ROBOTS.md: rad = raw * 2pi/4096 + offset; -pi/2 for ID 10, -pi for the others.
    for motor_id, rad, offset in (
        (10, 0.2, -math.pi / 2),
        (11, -0.5, -math.pi),
        (50, 1.0, -math.pi),
    ):
        raw, result, error = PH.read4ByteTxRx(port, motor_id, 132)
        assert (result, error) == (sdk.COMM_SUCCESS, 0)
        assert raw == _raw(rad, offset)


def test_goal_moves_motor_only_with_torque(emu, port):
    goal = _raw(0.6, -math.pi / 2)
    assert PH.write4ByteTxRx(port, 10, 116, goal) == (sdk.COMM_SUCCESS, 0)
    time.sleep(0.2)
    assert abs(emu.present_position(10) - 0.2) < 1e-9  # torque off: goal ignored
    assert PH.write1ByteTxRx(port, 10, 64, 1) == (sdk.COMM_SUCCESS, 0)
    # Enabling torque sets the goal to the present position: no jump.
    assert PH.read4ByteTxRx(port, 10, 116)[0] == _raw(0.2, -math.pi / 2)
    assert PH.write4ByteTxRx(port, 10, 116, goal) == (sdk.COMM_SUCCESS, 0)
    deadline = time.monotonic() + 2.0
    while abs(emu.present_position(10) - 0.6) > 1e-3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert abs(emu.present_position(10) - 0.6) < 1e-3
    raw, result, _ = PH.read4ByteTxRx(port, 10, 132)
    assert result == sdk.COMM_SUCCESS and abs(raw - goal) <= 1


def test_access_rules(emu, port):
    assert PH.write4ByteTxRx(port, 10, 132, 5) == (sdk.COMM_SUCCESS, proto.ERR_ACCESS)
    assert PH.write1ByteTxRx(port, 10, 70, 0) == (sdk.COMM_SUCCESS, proto.ERR_ACCESS)
    assert PH.write2ByteTxRx(port, 10, 66, 0) == (sdk.COMM_SUCCESS, proto.ERR_ACCESS)
    assert PH.write2ByteTxRx(port, 10, 116, 0) == (sdk.COMM_SUCCESS, proto.ERR_DATA_LENGTH)
    assert PH.write1ByteTxRx(port, 10, 64, 2) == (sdk.COMM_SUCCESS, proto.ERR_DATA_RANGE)
    assert PH.write4ByteTxRx(port, 10, 116, 5000) == (sdk.COMM_SUCCESS, proto.ERR_DATA_LIMIT)
    # EEPROM (operating mode, 11) is writable with torque off only.
    assert PH.write1ByteTxRx(port, 11, 11, 3) == (sdk.COMM_SUCCESS, 0)
    assert PH.write1ByteTxRx(port, 11, 64, 1) == (sdk.COMM_SUCCESS, 0)
    assert PH.write1ByteTxRx(port, 11, 11, 3) == (sdk.COMM_SUCCESS, proto.ERR_ACCESS)
    data, result, error = PH.readTxRx(port, 10, 250, 10)
    assert (result, error) == (sdk.COMM_SUCCESS, proto.ERR_ACCESS)
    assert PH.factoryReset(port, 10, 0xFF) == (sdk.COMM_SUCCESS, proto.ERR_INSTRUCTION)
    assert PH.regWriteTxRx(port, 10, 116, 4, [0, 8, 0, 0]) == (
        sdk.COMM_SUCCESS,
        proto.ERR_INSTRUCTION,
    )


def test_hardware_error_blocks_torque_until_reboot(emu, port):
    assert PH.write1ByteTxRx(port, 10, 64, 1) == (sdk.COMM_SUCCESS, 0)
    emu.set_hardware_error(10, proto.HW_OVERLOAD)
    value, result, error = PH.read1ByteTxRx(port, 10, 70)
    assert (value, result, error) == (proto.HW_OVERLOAD, sdk.COMM_SUCCESS, proto.ERR_ALERT)
    assert PH.read1ByteTxRx(port, 10, 64)[0] == 0  # shutdown turned torque off
    result, error = PH.write1ByteTxRx(port, 10, 64, 1)
    assert result == sdk.COMM_SUCCESS and error == proto.ERR_ALERT | proto.ERR_RESULT_FAIL
    assert PH.reboot(port, 10) == (sdk.COMM_SUCCESS, proto.ERR_ALERT)
    time.sleep(0.05)
    assert PH.read1ByteTxRx(port, 10, 70) == (0, sdk.COMM_SUCCESS, 0)
    assert PH.write1ByteTxRx(port, 10, 64, 1) == (sdk.COMM_SUCCESS, 0)


def test_temperature_above_limit_is_overheating(emu, port):
    emu.set_temperature(11, 60.0)
    assert PH.read1ByteTxRx(port, 11, 146) == (60, sdk.COMM_SUCCESS, 0)
    emu.set_temperature(11, 85.0)
    assert PH.read1ByteTxRx(port, 11, 70) == (proto.HW_OVERHEATING, sdk.COMM_SUCCESS, 0x80)


def test_sync_and_bulk_read_write(emu, port):
    writer = sdk.GroupSyncWrite(port, PH, 116, 4)
    for motor_id in IDS:
        assert PH.write1ByteTxRx(port, motor_id, 64, 1) == (sdk.COMM_SUCCESS, 0)
    goals = {10: 1500, 11: 1900, 50: 100}
    for motor_id, raw in goals.items():
        writer.addParam(motor_id, list(raw.to_bytes(4, "little")))
    assert writer.txPacket() == sdk.COMM_SUCCESS
    reader = sdk.GroupSyncRead(port, PH, 116, 4)
    for motor_id in IDS:
        reader.addParam(motor_id)
    assert reader.txRxPacket() == sdk.COMM_SUCCESS
    assert {i: reader.getData(i, 116, 4) for i in IDS} == goals
    bulk = sdk.GroupBulkRead(port, PH)
    bulk.addParam(10, 132, 4)
    bulk.addParam(11, 64, 1)
    bulk.addParam(50, 146, 1)
    assert bulk.txRxPacket() == sdk.COMM_SUCCESS
    assert bulk.getData(11, 64, 1) == 1
    assert bulk.getData(50, 146, 1) == 30
    assert abs(bulk.getData(10, 132, 4) - _raw(emu.present_position(10), -math.pi / 2)) <= 60
    bulk_write = sdk.GroupBulkWrite(port, PH)
    bulk_write.addParam(10, 65, 1, [1])  # LED
    bulk_write.addParam(50, 116, 4, list((2000).to_bytes(4, "little")))
    assert bulk_write.txPacket() == sdk.COMM_SUCCESS
    assert PH.read1ByteTxRx(port, 10, 65)[0] == 1
    assert PH.read4ByteTxRx(port, 50, 116)[0] == 2000


def test_signed_fields_and_stuffing_in_replies(emu, port):
    # Raw position 0x00FDFFFF goes out as FF FF FD 00: the reply must be byte-stuffed.
    raw_value = 0x00FDFFFF
    emu.set_position(11, -math.pi + raw_value * TICK)
    assert proto.status_packet(11, 0, raw_value.to_bytes(4, "little")).count(b"\xfd\xfd") == 1
    raw, result, error = PH.read4ByteTxRx(port, 11, 132)
    assert (raw, result, error) == (raw_value, sdk.COMM_SUCCESS, 0)
    emu.set_position(11, -math.pi - 3 * TICK)  # negative raw: two's complement
    raw, result, _ = PH.read4ByteTxRx(port, 11, 132)
    assert result == sdk.COMM_SUCCESS and raw == (1 << 32) - 3


@pytest.mark.parametrize("level", [0, 1, 2])
def test_status_return_level_decides_which_instructions_are_answered(emu, port, level):
    """0: PING only; 1: PING and reads; 2: everything (X-series e-Manual)."""
    ok, timeout = sdk.COMM_SUCCESS, sdk.COMM_RX_TIMEOUT
    PH.write1ByteTxRx(port, 10, 68, level)  # RAM: back to 2 at the reboot below
    assert PH.ping(port, 10)[1] == ok
    assert PH.readTxRx(port, 10, 132, 4)[1] == (ok if level >= 1 else timeout)
    reader = sdk.GroupSyncRead(port, PH, 132, 4)
    reader.addParam(10)
    assert reader.txRxPacket() == (ok if level >= 1 else timeout)
    assert PH.write1ByteTxRx(port, 10, 65, 1)[0] == (ok if level == 2 else timeout)
    assert PH.regWriteTxRx(port, 10, 65, 1, [0])[0] == (ok if level == 2 else timeout)
    assert PH.reboot(port, 10)[0] == (ok if level == 2 else timeout)
    time.sleep(0.1)  # the boot
    assert PH.read1ByteTxRx(port, 10, 68)[:2] == (2, ok)


def test_bad_crc_instruction_is_ignored(emu, port):
    packet = bytearray(proto.instruction_packet(10, proto.PING))
    packet[-1] ^= 0x01
    port.ser.reset_input_buffer()
    port.ser.write(bytes(packet))
    time.sleep(0.1)
    assert port.ser.in_waiting == 0
    assert PH.ping(port, 10)[1] == sdk.COMM_SUCCESS
    assert emu.stats["bad_crc"] == 1


def test_a_length_field_hit_by_noise_is_dropped_while_the_master_keeps_polling(emu):
    """A packet whose LENGTH says ~780 bytes: a servo times a partial packet from its first
    byte and drops it. Timed from the last byte, the emulator waited for a quiet gap that
    the SDK's polling (every 34 ms) never left, and stayed deaf for ~2 s: long enough
    for the driver to call the bus lost and stop the hand."""
    handler = sdk.PortHandler(emu.port_name)  # stock SDK timing: 34 ms per try
    assert handler.openPort() and handler.setBaudRate(1_000_000)
    try:
        assert PH.ping(handler, 10)[1] == sdk.COMM_SUCCESS
        # A READ of motor 10 whose LEN_H became 0x03 (0x0307 bytes to come).
        handler.writePort([0xFF, 0xFF, 0xFD, 0x00, 10, 0x07, 0x03, 0x02, 0x84, 0x00, 0x04,
                           0x00, 0x1D, 0x15])  # fmt: skip
        start, failures = time.monotonic(), 0
        while PH.read4ByteTxRx(handler, 10, 132)[1] != sdk.COMM_SUCCESS:
            failures += 1
            assert time.monotonic() - start < 5.0
        assert time.monotonic() - start < 0.3, f"deaf for {failures} reads"
    finally:
        handler.closePort()


def test_fault_injection_silent_and_corrupt(emu, port):
    emu.set_silent(11)
    assert PH.ping(port, 11)[1] == sdk.COMM_RX_TIMEOUT
    assert PH.ping(port, 10)[1] == sdk.COMM_SUCCESS
    emu.set_silent(11, False)
    assert PH.ping(port, 11)[1] == sdk.COMM_SUCCESS
    emu.corrupt_next_reply(10)
    assert PH.ping(port, 10)[1] == sdk.COMM_RX_CORRUPT
    assert PH.ping(port, 10)[1] == sdk.COMM_SUCCESS


def test_baud_mismatch_is_not_heard(emu):
    handler = sdk.PortHandler(emu.port_name)
    assert handler.setBaudRate(57600)
    try:
        assert PH.ping(handler, 10)[1] == sdk.COMM_RX_TIMEOUT
    finally:
        handler.closePort()


def test_unplug_and_replug_same_path(emu, port):
    path = emu.port_name
    assert PH.ping(port, 10)[1] == sdk.COMM_SUCCESS
    emu.unplug()
    assert not os.path.exists(path)
    with pytest.raises((serial.SerialException, termios.error)):
        PH.ping(port, 10)
    port.is_using = False
    with pytest.raises(serial.SerialException):
        sdk.PortHandler(path).setBaudRate(1_000_000)
    emu.replug()
    assert os.path.exists(path)
    fresh = sdk.PortHandler(path)
    assert fresh.setBaudRate(1_000_000)
    try:
        assert PH.ping(fresh, 10)[1] == sdk.COMM_SUCCESS
    finally:
        fresh.closePort()


def test_close_stops_everything():
    before = {t.name for t in threading.enumerate()}
    emu = DynamixelEmulator([1]).start()
    path = emu.port_name
    assert any(t.name == "dxl-emulator" for t in threading.enumerate())
    emu.close()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    assert {t.name for t in threading.enumerate()} <= before
    with pytest.raises(RuntimeError, match="closed"):
        emu.start()


def test_bad_construction():
    with pytest.raises(ValueError, match="unique"):
        DynamixelEmulator([1, 1])
    with pytest.raises(ValueError, match="0..252"):
        DynamixelEmulator([300])


def test_link_must_not_replace_a_file(tmp_path: Path):
    target = tmp_path / "ttyUSB0"
    target.write_text("a file")
    with pytest.raises(ValueError, match="not a symlink"):
        DynamixelEmulator([1], link=target)


def test_command_line_prints_a_working_port(tmp_path: Path):
    link = tmp_path / "dclaw_port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sac_ros.hardware.dxl_emulator", "--ids", "10", "50",
         "--link", str(link)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline().strip()
        assert line == str(link)
        handler = sdk.PortHandler(line)
        assert handler.setBaudRate(1_000_000)
        assert PH.ping(handler, 50)[:2] == (1000, sdk.COMM_SUCCESS)
        handler.closePort()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not link.exists()
