"""DynamixelBus over dynamixel-sdk, against the emulator on a pty."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from sac_ros.hardware import dxl_protocol as proto
from sac_ros.hardware.dxl_emulator import DynamixelEmulator
from sac_ros.hardware.dynamixel_bus import BusError, DynamixelBus

pytestmark = pytest.mark.timeout(60)

TICK = 2 * math.pi / 4096
# ROBOTS.md: offset -pi/2 for the top joints (10, 20, 30), -pi for the others.
OFFSETS = {10: -math.pi / 2, 11: -math.pi, 12: -math.pi, 20: -math.pi / 2, 50: -math.pi}
IDS = tuple(OFFSETS)
START = {10: 0.1, 11: -0.4, 12: 0.9, 20: -0.2, 50: 2.0}


@pytest.fixture
def emu():
    with DynamixelEmulator(IDS, initial_positions=START) as e:
        yield e


@pytest.fixture
def bus(emu):
    b = DynamixelBus(OFFSETS)
    b.open(emu.port_name, 1_000_000)
    yield b
    b.close()


def test_ping_names_every_model(bus):
    assert bus.ping() == {i: 1000 for i in IDS}


def test_goal_positions_arrive_in_raw_units(emu, bus):
    bus.torque(IDS, True)
    goals = np.array([0.3, -0.7, 1.2, 0.45, -2.5])
    bus.write_goals(IDS, goals)
    time.sleep(0.05)
    for motor_id, rad in zip(IDS, goals, strict=True):
        expected = round((rad - OFFSETS[motor_id]) / TICK)
        assert emu.register(motor_id, "goal_position") == expected
    assert bus.stats["goal_writes"] == 1


def test_write_goals_subset_leaves_others(emu, bus):
    bus.torque(IDS, True)
    before = emu.register(12, "goal_position")
    bus.write_goals([20, 10], [0.2, -0.1])
    time.sleep(0.05)
    assert emu.register(20, "goal_position") == round((0.2 + math.pi / 2) / TICK)
    assert emu.register(10, "goal_position") == round((-0.1 + math.pi / 2) / TICK)
    assert emu.register(12, "goal_position") == before


def test_read_state_matches_the_motors(emu, bus):
    t0 = time.monotonic()
    state = bus.read_state()
    assert t0 <= state.stamp <= time.monotonic()
    assert state.ids == IDS
    for k, motor_id in enumerate(IDS):
        assert abs(state.position[k] - START[motor_id]) <= TICK / 2 + 1e-12
    assert np.all(state.velocity == 0) and np.all(state.current == 0)
    assert state.alert == ()
    # Moving motors: velocity and current come back signed, in rad/s and mA.
    bus.torque([11], True)
    bus.write_goals([11], [0.6])
    time.sleep(0.03)
    moving = bus.read_state([11, 10])
    pos, vel, cur = moving.of(11)
    assert vel > 1.0 and cur > 0
    assert abs(vel - 5.0) <= 0.229 * 2 * math.pi / 60  # the model's speed cap, one tick
    assert abs(pos - emu.present_position(11)) < 0.05


def test_silent_motor_raises_bus_error_naming_it(emu, bus):
    emu.set_silent(12)
    with pytest.raises(BusError) as info:
        bus.read_state()
    assert set(info.value.failures) == {12}
    assert not info.value.port_lost
    assert "motor 12" in str(info.value)
    emu.set_silent(12, False)
    assert bus.read_state().ids == IDS


def test_a_read_answered_with_a_status_error_is_a_failure_not_data(emu, bus):
    """The SDK reports such a reply as a success and hands back its CRC bytes as data."""
    emu.refuse_reads(20)
    for read in (bus.read_state, bus.read_errors):
        with pytest.raises(BusError) as info:
            read()
        assert set(info.value.failures) == {20} and not info.value.port_lost
        assert "data length error" in info.value.failures[20]
    emu.refuse_reads(20, 0)
    assert bus.read_state().ids == IDS and not bus.read_errors()[20].hardware_error


def test_corrupted_reply_is_recovered(emu, bus):
    emu.corrupt_next_reply(11)
    state = bus.read_state()
    assert abs(state.of(11)[0] - START[11]) <= TICK
    assert bus.stats["recovered_reads"] == 1
    assert emu.stats["corrupted_replies"] == 1


def test_errors_and_temperature_then_clear(emu, bus):
    bus.torque(IDS, True)
    emu.set_hardware_error(20, proto.HW_OVERLOAD | proto.HW_ELECTRICAL_SHOCK)
    emu.set_temperature(12, 67)
    health = bus.read_errors()
    assert health[20].hardware_error == proto.HW_OVERLOAD | proto.HW_ELECTRICAL_SHOCK
    assert health[20].errors == ["electrical shock", "overload"]
    assert health[12].temperature_c == 67 and health[12].hardware_error == 0
    assert all(h.torque_enabled for i, h in health.items() if i != 20)  # 20 shut down
    assert bus.read_state().alert == (20,)
    with pytest.raises(BusError) as info:
        bus.torque([20], True)
    assert set(info.value.failures) == {20} and "result fail" in str(info.value)
    assert bus.clear_errors() == [20]
    health = bus.read_errors()
    assert health[20].hardware_error == 0 and not health[20].torque_enabled  # rebooted
    bus.torque([20], True)
    assert bus.read_errors()[20].torque_enabled


def test_unplug_then_reconnect(emu, bus):
    emu.unplug()
    with pytest.raises(BusError) as info:
        bus.read_state()
    assert info.value.port_lost and set(info.value.failures) == set(IDS)
    with pytest.raises(BusError):
        bus.reconnect()
    emu.replug()
    bus.reconnect()
    assert bus.read_state().ids == IDS
    assert bus.stats["reconnects"] == 1


def test_bad_requests_are_refused(bus, tmp_path):
    with pytest.raises(ValueError, match="not on this bus"):
        bus.read_state([10, 99])
    with pytest.raises(ValueError, match="duplicate"):
        bus.read_state([10, 10])
    with pytest.raises(ValueError, match="expected 2 goals"):
        bus.write_goals([10, 11], [0.0])
    with pytest.raises(ValueError, match="finite"):
        bus.write_goals([10], [math.nan])
    with pytest.raises(ValueError, match="encoder range"):
        bus.write_goals([11], [math.pi + 0.1])
    with pytest.raises(ValueError, match="baud"):
        bus.open(bus.port_name, 123)
    with pytest.raises(BusError, match="cannot open") as info:
        DynamixelBus(OFFSETS).open(str(tmp_path / "nothing"))
    assert info.value.port_lost
    with pytest.raises(BusError, match="not open"):
        DynamixelBus(OFFSETS).read_state()
    with pytest.raises(ValueError, match="finite"):
        DynamixelBus({1: math.nan})


def test_retries_absorb_one_lost_reply(emu):
    strict = DynamixelBus(OFFSETS, retries=0)
    strict.open(emu.port_name)
    emu.corrupt_next_reply(11)
    with pytest.raises(BusError) as info:
        strict.ping([10, 11])
    assert set(info.value.failures) == {11}
    strict.close()
    patient = DynamixelBus(OFFSETS, retries=1)
    patient.open(emu.port_name)
    emu.corrupt_next_reply(11)
    assert patient.ping([10, 11]) == {10: 1000, 11: 1000}
    assert patient.stats["retries"] == 1
    patient.close()


@pytest.mark.parametrize("latency_ms", [5.0, 40.0])
def test_status_timeout_follows_the_latency_timer(emu, latency_ms):
    bus = DynamixelBus(OFFSETS, retries=0, latency_timer_ms=latency_ms)
    bus.open(emu.port_name)
    emu.set_silent(10)
    start = time.monotonic()
    with pytest.raises(BusError):
        bus.ping([10])
    assert time.monotonic() - start >= (2 * latency_ms + 2) / 1000
    bus.close()
    with pytest.raises(ValueError, match="latency"):
        DynamixelBus(OFFSETS, latency_timer_ms=0)
