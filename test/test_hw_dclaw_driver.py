"""DClawDriverCore over the real dynamixel-sdk and the emulated D'Claw on a pty."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sac_ros.hardware import dxl_protocol as proto
from sac_ros.hardware.dclaw_driver import DClawDriverConfig, DClawDriverCore, Mode
from sac_ros.hardware.dxl_emulator import DynamixelEmulator
from sac_ros.hardware.dynamixel_bus import BusError
from sac_ros.hardware.mujoco_backend import MujocoDClawBackend
from sac_ros.runtime.resets import ValveReset

pytestmark = pytest.mark.timeout(120)

TICK = 2 * math.pi / 4096
JOINT_IDS = (10, 11, 12, 20, 21, 22, 30, 31, 32)
VALVE = 50
# ROBOTS.md facts, written out here so the test does not read them from the code under test.
LOWER = np.array([-0.48, -math.pi / 3, -math.pi / 2] * 3)
UPPER = np.array([0.48, math.pi / 3, math.pi / 2] * 3)
MAX_VEL = 2 * math.pi / 3
OFFSETS = {i: (-math.pi / 2 if i in (10, 20, 30) else -math.pi) for i in (*JOINT_IDS, VALVE)}
START = dict(zip(JOINT_IDS, [0.0, -0.8, 0.9] * 3, strict=True)) | {VALVE: 0.5}
MODEL = Path(__file__).resolve().parents[1] / "urdf" / "dclaw" / "dclaw.xml"


def goal_rad(emu: DynamixelEmulator, motor_id: int) -> float:
    return emu.register(motor_id, "goal_position") * TICK + OFFSETS[motor_id]


def config(port: str, **overrides) -> DClawDriverConfig:
    values = dict(
        port=port,
        control_period_s=0.1,
        watchdog_timeout_s=0.4,
        health_period_s=0.1,
        comm_tolerance_s=0.3,
        reconnect_period_s=0.05,
        max_temperature_c=70.0,
    )
    values.update(overrides)
    return DClawDriverConfig(**values)


@pytest.fixture
def emu():
    with DynamixelEmulator(initial_positions=START) as e:
        yield e


@pytest.fixture
def core(emu):
    c = DClawDriverCore(config(emu.port_name))
    c.connect()
    yield c
    c.close()


def run_cycles(core: DClawDriverCore, seconds: float, period: float = 0.02, targets=None):
    states = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if targets is not None:
            core.command(targets)
        states.append(core.cycle())
        time.sleep(period)
    return states


def torque(emu, ids) -> list[int]:
    return [emu.register(i, "torque_enable") for i in ids]


def test_connect_reads_the_hand_and_valve(emu, core):
    state = core.cycle()
    assert state.fresh and state.connected and state.mode is Mode.IDLE
    expected = np.array([START[i] for i in JOINT_IDS])
    assert np.all(np.abs(state.position - expected) <= TICK / 2 + 1e-12)
    assert abs(state.valve_angle - 0.5) <= TICK
    assert state.goals is None
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10


def test_commands_are_clipped_and_rate_limited(emu, core):
    core.enable()
    assert torque(emu, JOINT_IDS) == [1] * 9 and torque(emu, [VALVE]) == [0]
    wanted = np.array([0.3, 5.0, -0.2, -0.3, -9.0, 1.0, 0.0, 0.5, -1e9])
    assert core.command(wanted)
    first = core.cycle()
    assert np.all(np.abs(first.goals - first.position) <= MAX_VEL * 0.1 + 1e-9)
    final = np.clip(wanted, LOWER, UPPER)
    states = []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:  # at the 10 Hz control rate, until the hand is there
        states += run_cycles(core, 0.5, period=0.1, targets=wanted)
        if np.all(np.abs(states[-1].position - final) < 0.01):
            break
    for s in states:
        if s.goals is not None:
            assert np.all(s.goals >= LOWER - 1e-12) and np.all(s.goals <= UPPER + 1e-12)
            assert np.all(np.abs(s.goals - s.position) <= MAX_VEL * 0.1 + 1e-9)
    got = np.array([goal_rad(emu, i) for i in JOINT_IDS])
    assert np.all(np.abs(got - final) <= TICK)
    assert np.all(np.abs(states[-1].position - final) < 0.01)


def test_bad_commands_raise_and_change_nothing(emu, core):
    core.enable()
    core.command(np.zeros(9))
    before = core.diagnostics()["commands"]
    with pytest.raises(ValueError, match="expected 9"):
        core.command(np.zeros(8))
    with pytest.raises(ValueError, match="non-finite.*FFJ11"):
        core.command([0, math.nan, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="non-finite.*THJ32"):
        core.command([0, 0, 0, 0, 0, 0, 0, 0, math.inf])
    with pytest.raises(ValueError, match="numbers"):
        core.command(["a"] * 9)
    assert core.diagnostics()["commands"] == before


_value = st.one_of(
    st.floats(-3, 3),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300]),
)
# Between two commands: back to back, the node's 50 Hz bus cycle, a slow policy.
_pause = st.sampled_from([0.0, 0.02, 0.06])
PERIOD = 0.1  # the configured control_period_s
REACH = MAX_VEL * PERIOD  # how far a goal may lie from the measured position


def flush(core: DClawDriverCore) -> None:
    """A round trip on the bus: the emulator has handled every packet sent before it (a
    sync write gets no reply, so its goals may still be on their way)."""
    core.bus.read_state(JOINT_IDS)


def check_ramp(prev, cur) -> None:
    """The driver's rule between two cycles that wrote goals (JointLimits.ramp).

    ``here``: the position measured in ``cur``'s cycle, clipped into the box. The goal lies
    within REACH of ``here``. When the previous goal was written at most PERIOD earlier
    (read stamps ``ds`` apart), the goal moved from it by at most MAX_VEL * ds, unless the
    previous goal lies out of that reach of ``here`` (a joint pushed or blocked away from
    its goal): then the goal is pulled to the edge of ``here``'s reach, on that side.
    """
    here = np.clip(cur.position, LOWER, UPPER)
    assert np.all(np.abs(cur.goals - here) <= REACH + 1e-9), (cur.goals, here)
    ds = cur.stamp - prev.stamp
    assert ds > 0
    if ds > PERIOD:
        return  # the ramp starts again from the measured position
    step = MAX_VEL * ds
    pulled = np.abs(prev.goals - here) > REACH + step
    moved = np.abs(cur.goals - prev.goals)
    assert np.all(moved[~pulled] <= step + 1e-9), (moved, step)
    edge = np.clip(here + np.sign(prev.goals - here) * REACH, LOWER, UPPER)
    assert np.allclose(cur.goals[pulled], edge[pulled], atol=1e-9)


def check_wire(writes, states) -> None:
    """What the emulated servos received: the driver's goals (one tick of rounding), inside
    the limits, and consecutive goals of a motor (at most PERIOD apart) within
    MAX_VEL * PERIOD of each other (+ one tick: both are rounded to ticks)."""
    for k, motor_id in enumerate(JOINT_IDS):
        mine = [(t, raw * TICK + OFFSETS[motor_id]) for t, i, raw in writes if i == motor_id]
        rad = np.array([r for _, r in mine])
        assert len(rad) == len(states)
        assert np.all(np.abs(rad - [s.goals[k] for s in states]) <= TICK / 2 + 1e-9)
        assert np.all(rad >= LOWER[k] - TICK / 2) and np.all(rad <= UPPER[k] + TICK / 2)
        for (t0, r0), (t1, r1) in zip(mine, mine[1:], strict=False):
            if t1 - t0 <= PERIOD:
                assert abs(r1 - r0) <= REACH + TICK, (motor_id, r0, r1, t1 - t0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.lists(_value, min_size=8, max_size=10), _pause), min_size=1, max_size=6)
)
def test_whatever_arrives_goals_stay_safe(emu, core, steps):
    if core.mode is not Mode.RUNNING:
        core.enable()
    flush(core)
    first = len(emu.goal_writes)
    states = [core.cycle()]  # the goal the first command ramps from
    for proposed, pause in steps:
        time.sleep(pause)
        try:
            core.command(proposed)
        except ValueError:
            assert len(proposed) != 9 or not all(math.isfinite(x) for x in proposed)
        states.append(core.cycle())
    flush(core)
    assert all(s.fresh and s.goals is not None for s in states)
    for prev, cur in zip(states, states[1:], strict=False):
        check_ramp(prev, cur)
    check_wire(list(emu.goal_writes)[first:], states)


def test_a_pushed_joint_pulls_its_goal_along(emu, core):
    """The exception in check_ramp: a joint pushed far from its goal (by a hand, an
    object) takes its goal along to REACH from it; the goal is never wound up."""
    core.enable()
    core.command(np.array([START[i] for i in JOINT_IDS]))
    before = core.cycle()
    emu.backend.set_position(11, -0.8 + 0.6)  # FFJ11, 0.6 rad > 2 * REACH away
    after = core.cycle()
    check_ramp(before, after)
    # Read where it was pushed, less what the servo moved back toward its goal before the
    # read (5 rad/s: 0.15 rad is 30 ms of a busy host), still more than 2 REACH away.
    assert -0.2 - 0.15 <= after.position[1] <= -0.2 + 1e-9
    assert abs(after.position[1] - before.goals[1]) > 2 * REACH
    assert after.goals[1] == pytest.approx(after.position[1] - REACH, abs=1e-9)
    assert abs(after.goals[1] - before.goals[1]) > REACH  # the one jump the rule allows


def test_hardware_error_safe_stop_names_the_motor(emu, core):
    core.enable()
    core.cycle()
    emu.set_hardware_error(21, proto.HW_OVERLOAD)
    state = core.cycle()
    assert state.mode is Mode.SAFE_STOP
    assert "motor 21 (MFJ21)" in state.fault and "overload" in state.fault
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
    assert not core.command(np.zeros(9))
    with pytest.raises(RuntimeError, match="MFJ21"):
        core.enable()
    assert core.clear_fault() == [21]
    assert core.mode is Mode.IDLE and core.fault is None
    core.enable()
    assert core.cycle().mode is Mode.RUNNING


def test_overheating_safe_stop(emu, core):
    core.enable()
    emu.set_temperature(31, 75.0)  # below the servo's own 80 C limit, above ours
    states = run_cycles(core, 0.3)
    assert states[-1].mode is Mode.SAFE_STOP
    assert "motor 31 (THJ31): temperature 75 C above the 70 C limit" in states[-1].fault
    assert torque(emu, JOINT_IDS) == [0] * 9
    with pytest.raises(RuntimeError, match="temperature"):
        core.clear_fault()
    emu.set_temperature(31, 40.0)
    core.clear_fault()
    assert core.diagnostics()["temperatures_c"]["THJ31"] == 40


def test_hot_motors_are_named_before_the_safe_stop(emu, core):
    core.enable()
    assert core.hot_motors() == {}
    emu.set_temperature(31, 66.0)  # above warn_temperature_c (65), below the 70 C stop
    states = run_cycles(core, 0.3)
    assert states[-1].mode is Mode.RUNNING and core.hot_motors() == {"THJ31": 66}
    emu.set_temperature(31, 40.0)
    run_cycles(core, 0.3)
    assert core.hot_motors() == {}
    with pytest.raises(ValueError, match="warn_temperature_c"):
        DClawDriverConfig(warn_temperature_c=float("nan"))


def test_servo_overheat_shutdown_is_a_hardware_error(emu, core):
    core.enable()
    emu.set_temperature(12, 85.0)  # above the servo's 80 C: it shuts down by itself
    state = core.cycle()
    assert state.mode is Mode.SAFE_STOP and "overheating" in state.fault
    assert "motor 12 (FFJ12)" in state.fault


@pytest.mark.parametrize("motor", [12, VALVE])
def test_a_servo_that_lost_power_for_a_moment_is_noticed(emu, core, motor):
    """A servo whose power drops and returns within the comm tolerance boots limp: torque
    off, no error bit. The driver must not go on as if the finger (or valve) held."""
    core.enable()
    if motor == VALVE:
        core.set_valve_torque(True)
    run_cycles(core, 0.15, targets=np.array([0.0, -0.8, 0.9] * 3))
    assert core.mode is Mode.RUNNING
    emu.power_cycle(motor)
    states = run_cycles(core, 0.5, targets=np.array([0.0, -0.8, 0.9] * 3))
    assert states[-1].mode is Mode.SAFE_STOP
    assert f"motor {motor} " in states[-1].fault and "torque is off" in states[-1].fault
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10  # the rest let go as well
    assert core.clear_fault() == []  # nothing to reboot; torque off is expected now
    core.enable()
    assert run_cycles(core, 0.3)[-1].mode is Mode.RUNNING


def test_silent_motor_safe_stop_after_tolerance(emu, core):
    core.enable()
    core.cycle()
    emu.set_silent(12)
    t0 = time.monotonic()
    first = core.cycle()
    assert not first.fresh and first.mode is Mode.RUNNING  # tolerated for now
    states = run_cycles(core, 0.6)
    stopped = [s for s in states if s.mode is Mode.SAFE_STOP]
    assert stopped, "no safe stop after the tolerance"
    assert "communication lost" in stopped[0].fault and "motor 12" in stopped[0].fault
    assert time.monotonic() - t0 >= 0.3
    others = [i for i in (*JOINT_IDS, VALVE) if i != 12]
    assert torque(emu, others) == [0] * 9
    assert torque(emu, [12]) == [1]  # could not hear the torque off
    assert core.diagnostics()["torque_off_pending"] == [12]
    emu.set_silent(12, False)
    run_cycles(core, 0.2)
    assert torque(emu, [12]) == [0]
    assert core.diagnostics()["torque_off_pending"] == []


def test_corrupted_reply_is_tolerated(emu, core):
    core.enable()
    emu.corrupt_next_reply(22)
    state = core.cycle()
    assert state.fresh and state.mode is Mode.RUNNING
    assert core.diagnostics()["bus"]["recovered_reads"] == 1


def test_unplug_within_tolerance_carries_on(emu, core):
    core.enable()
    core.command(np.zeros(9))
    core.cycle()
    emu.unplug()
    state = core.cycle()
    assert not state.fresh and not state.connected and state.mode is Mode.RUNNING
    emu.replug()
    states = run_cycles(core, 0.15, targets=np.zeros(9))
    assert states[-1].connected and states[-1].fresh and states[-1].mode is Mode.RUNNING
    assert core.diagnostics()["reconnects"] == 1
    assert torque(emu, JOINT_IDS) == [1] * 9


def test_unplug_beyond_tolerance_safe_stop_then_torque_off(emu, core):
    core.enable()
    core.cycle()
    emu.unplug()
    states = run_cycles(core, 0.5)
    assert states[-1].mode is Mode.SAFE_STOP and "communication lost" in states[-1].fault
    assert torque(emu, JOINT_IDS) == [1] * 9  # nothing could reach them
    emu.replug()
    run_cycles(core, 0.15)
    assert core.connected
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10


def test_closing_within_the_tolerance_after_an_unplug_does_not_claim_torque_off(emu, core):
    """The port is gone before the safe stop: the servos still hold torque, and close()
    says so (torque_off_pending) instead of reporting the hand limp."""
    core.enable()
    core.cycle()
    emu.unplug()
    assert not core.cycle().connected
    core.close()
    assert core.torque_off_pending == list(JOINT_IDS)
    assert torque(emu, JOINT_IDS) == [1] * 9


def test_close_reopens_a_port_that_came_back_to_turn_torque_off(emu, core):
    core.enable()
    core.cycle()
    emu.unplug()
    assert not core.cycle().connected
    emu.replug()  # back before the next reconnect attempt was due
    core.close()
    assert core.torque_off_pending == []
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10


def test_reconnects_when_the_port_appears_later(emu):
    emu.unplug()
    core = DClawDriverCore(config(emu.port_name))
    with pytest.raises(BusError, match="cannot open"):
        core.connect()
    assert not core.cycle().connected
    emu.replug()
    states = run_cycles(core, 0.15)
    assert states[-1].connected and states[-1].fresh and states[-1].mode is Mode.IDLE
    core.close()


def test_watchdog_hold(emu, core):
    core.enable()
    core.command(np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    states = run_cycles(core, 0.7)
    assert states[-1].mode is Mode.HOLDING
    assert core.diagnostics()["watchdog_trips"] == 1
    held = np.array([goal_rad(emu, i) for i in JOINT_IDS])
    time.sleep(0.1)
    core.cycle()
    assert np.allclose([goal_rad(emu, i) for i in JOINT_IDS], held, atol=TICK)
    assert torque(emu, JOINT_IDS) == [1] * 9
    assert core.command(np.zeros(9)) and core.cycle().mode is Mode.RUNNING


def test_watchdog_torque_off(emu):
    core = DClawDriverCore(config(emu.port_name, watchdog_action="torque_off"))
    core.connect()
    core.enable()
    states = run_cycles(core, 0.6)
    assert states[-1].mode is Mode.IDLE
    assert torque(emu, JOINT_IDS) == [0] * 9
    assert not core.command(np.zeros(9))
    core.close()


def test_estop(emu, core):
    core.enable()
    core.cycle()
    core.estop("operator")
    assert core.mode is Mode.ESTOP and core.fault == "operator"
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
    assert not core.command(np.zeros(9))
    assert core.cycle().goals is None
    with pytest.raises(RuntimeError, match="estop"):
        core.enable()
    core.release_estop()
    assert core.mode is Mode.IDLE
    core.enable()


def test_valve_motor_interface(emu, core):
    before = goal_rad(emu, VALVE)
    assert not core.command_valve(-2.0)  # torque off: nothing written
    flush(core)
    assert goal_rad(emu, VALVE) == before
    core.set_valve_torque(True)
    assert core.valve_torque and torque(emu, [VALVE]) == [1]
    assert core.command_valve(-2.0)
    flush(core)
    assert abs(goal_rad(emu, VALVE) + 2.0) <= TICK / 2 + 1e-9
    deadline = time.monotonic() + 3.0
    while abs(core.cycle().valve_angle + 2.0) > 0.01:
        assert time.monotonic() < deadline, core.cycle().valve_angle
        time.sleep(0.02)
    assert core.command_valve(3 * math.pi / 2)  # across the +-pi seam: wraps
    flush(core)
    assert abs(goal_rad(emu, VALVE) + math.pi / 2) <= TICK / 2 + 1e-9
    with pytest.raises(ValueError, match="finite"):
        core.command_valve(math.nan)
    core.set_valve_torque(False)
    assert not core.valve_torque and torque(emu, [VALVE]) == [0]
    assert not core.command_valve(0.0)
    core.set_valve_torque(True)
    core.disable(valve=True)  # what the node's deactivate does: everything limp
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10 and not core.valve_torque
    core.estop("operator")
    with pytest.raises(RuntimeError, match="estop"):
        core.set_valve_torque(True)
    assert torque(emu, [VALVE]) == [0]


def test_episode_reset_through_the_valve_interface_turns_the_simulated_valve():
    """The one valve reset there is (ValveReset, as the reward node runs it) against the
    MuJoCo D'Claw behind the emulated bus: torque on, drive, settle, torque off."""
    backend = MujocoDClawBackend(model_file=MODEL)
    try:
        with DynamixelEmulator(backend=backend) as emu:
            core = DClawDriverCore(DClawDriverConfig(port=emu.port_name))
            core.connect()
            reset = ValveReset(valve_switch(core), core.command_valve, tolerance=0.1,
                               settle=0.3, timeout=8.0, wall_timeout=20.0)  # fmt: skip
            stop = threading.Event()

            def feed() -> None:  # the driver node's cycle, the reward node's observe
                while not stop.is_set():
                    state = core.cycle()
                    if state.fresh:
                        reset.observe(state.stamp, state.valve_angle)
                    time.sleep(0.02)

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            try:
                reached, why = reset.run(-1.2)
            finally:
                stop.set()
                feeder.join(timeout=5)
            assert reached, why
            assert abs(backend.sim.valve_angle() + 1.2) < 0.15
            assert not backend.sim.valve_motor_enabled and torque(emu, [VALVE]) == [0]
            assert abs(core.cycle().valve_angle - backend.sim.valve_angle()) < TICK + 0.01
            core.close()
    finally:
        backend.sim.close()


def valve_switch(core: DClawDriverCore):
    """The valve/torque_enable service as a callable: True when the motor acknowledged."""

    def switch(on: bool) -> bool:
        try:
            core.set_valve_torque(on)
        except RuntimeError:
            return False
        return True

    return switch


def test_diagnostics_summary(emu, core):
    core.enable()
    run_cycles(core, 0.25, targets=np.zeros(9))
    diag = core.diagnostics()
    assert diag["mode"] == "running" and diag["connected"] and diag["fault"] is None
    assert diag["cycles"] >= 5 and diag["commands"] >= 5
    assert set(diag["temperatures_c"]) == {*("FFJ10 FFJ11 FFJ12 MFJ20 MFJ21 MFJ22".split()),
                                           "THJ30", "THJ31", "THJ32", "valve"}  # fmt: skip
    assert set(diag["currents_ma"]) == set(diag["temperatures_c"])  # mA, as measured
    assert 0 < diag["cycle_time_max_s"] < 0.5
    assert diag["hardware_errors"] == {}


def test_bad_configuration():
    with pytest.raises(ValueError, match="watchdog_action"):
        DClawDriverConfig(watchdog_action="panic")
    with pytest.raises(ValueError, match="comm_tolerance_s"):
        DClawDriverConfig(comm_tolerance_s=0)
    with pytest.raises(ValueError, match="joint IDs"):
        DClawDriverConfig(joint_ids=(10, 11))
    # A calibration offset that puts part of a joint's range outside the encoder's
    # 0..4095 would fail on the first goal write, with torque already on.
    offsets = list(DClawDriverConfig().joint_offsets)
    offsets[2] = 2.0
    with pytest.raises(ValueError, match="FFJ12.*outside 0..4095"):
        DClawDriverConfig(joint_offsets=tuple(offsets))


def test_a_torque_off_a_motor_missed_does_not_follow_a_later_torque_on():
    """A motor that missed a torque off stays 'pending' so the driver keeps asking; once a
    later torque on is acknowledged that request is stale. Sent anyway, it switched the
    motor off behind the driver's back (a finger went limp, then a misleading safe stop
    'torque is off though it was on'; the valve quietly ignored its reset goals)."""
    pose = [0.0, -0.8, 0.9] * 3
    with DynamixelEmulator(initial_positions=START) as emu:
        core = DClawDriverCore(config(emu.port_name))
        core.connect()
        core.enable()
        run_cycles(core, 0.2, targets=pose)
        emu.set_silent(21, True)
        with pytest.raises(BusError):
            core.disable()
        emu.set_silent(21, False)
        assert 21 in core.torque_off_pending
        core.enable()
        run_cycles(core, 0.5, targets=pose)
        assert core.mode is Mode.RUNNING, core.fault
        assert emu.register(21, "torque_enable") == 1 and not core.torque_off_pending
        emu.set_silent(VALVE, True)
        with pytest.raises(BusError):
            core.set_valve_torque(False)
        emu.set_silent(VALVE, False)
        core.set_valve_torque(True)
        run_cycles(core, 0.2, targets=pose)
        assert emu.register(VALVE, "torque_enable") == 1
        assert core.command_valve(1.0)
        core.close()


def test_a_port_back_with_one_motor_silent_still_switches_off_those_that_hear():
    """The port is lost while the hand runs (the driver stops it: safe stop) and comes back
    with one servo silent. Reconnecting needs every motor, so it waits; the eight that
    answer must not keep holding torque meanwhile, nor after close()."""
    pose = [0.0, -0.8, 0.9] * 3
    with DynamixelEmulator(initial_positions=START) as emu:
        core = DClawDriverCore(config(emu.port_name))
        core.connect()
        core.enable()
        run_cycles(core, 0.1, targets=pose)
        emu.unplug()
        emu.set_silent(32, True)
        emu.replug()
        state = run_cycles(core, 3.0)[-1]
        assert state.mode is Mode.SAFE_STOP and not state.connected
        hearing = [i for i in JOINT_IDS if i != 32]
        assert torque(emu, hearing) == [0] * len(hearing)
        assert core.torque_off_pending == [32]  # the silent one is still owed its torque off
        core.close()
