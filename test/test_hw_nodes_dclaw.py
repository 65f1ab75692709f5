"""dclaw_driver_node as a real process over DDS on loopback, against the servo emulator.

The emulator (first-order servos) runs in this process, so the test reads the servos'
registers directly: goal positions, torque enable. A probe node plays the rest of the
graph: it commands, e-stops, calls services (the lifecycle ones included) and reads
joint_states and /diagnostics.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.hardware import dxl_protocol as proto
from sac_ros.hardware.dxl_emulator import DynamixelEmulator
from sac_ros.nodes.dclaw_driver_node import DClawDriverNode

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(180)]

TICK = 2 * math.pi / 4096
# ROBOTS.md facts, written out so the test does not read them from the code under test.
NAMES = ("FFJ10", "FFJ11", "FFJ12", "MFJ20", "MFJ21", "MFJ22", "THJ30", "THJ31", "THJ32")
JOINT_IDS = (10, 11, 12, 20, 21, 22, 30, 31, 32)
VALVE = 50
LOWER = np.array([-0.48, -math.pi / 3, -math.pi / 2] * 3)
UPPER = np.array([0.48, math.pi / 3, math.pi / 2] * 3)
MAX_VEL = 2 * math.pi / 3
PERIOD = 0.1  # the driver's control_period (rate limit dt)
OFFSETS = {i: (-math.pi / 2 if i in (10, 20, 30) else -math.pi) for i in (*JOINT_IDS, VALVE)}
START = dict(zip(JOINT_IDS, [0.0, -0.8, 0.9] * 3, strict=True)) | {VALVE: 0.5}
DRIVER = {
    "rate_hz": 50.0,
    "watchdog_timeout": 0.4,
    "comm_tolerance": 1.0,
    "reconnect_period": 0.05,
    "health_period": 0.1,
    "diagnostics_period": 0.1,
    "control_period": PERIOD,
}
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
GOAL_STATE = {
    Transition.TRANSITION_CONFIGURE: "inactive",
    Transition.TRANSITION_ACTIVATE: "active",
    Transition.TRANSITION_DEACTIVATE: "inactive",
    Transition.TRANSITION_CLEANUP: "unconfigured",
    Transition.TRANSITION_ACTIVE_SHUTDOWN: "finalized",
}


def goal_rad(emu: DynamixelEmulator, motor_id: int) -> float:
    return emu.register(motor_id, "goal_position") * TICK + OFFSETS[motor_id]


def torque(emu: DynamixelEmulator, ids) -> list[int]:
    return [emu.register(i, "torque_enable") for i in ids]


def start_driver(ns: str, port: str, log: Path, **params) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sac_ros.nodes.dclaw_driver_node", "--ros-args",
           "-r", f"__ns:={ns}", "-p", f"port:={port}"]  # fmt: skip
    for key, value in {**DRIVER, **params}.items():
        cmd += ["-p", f"{key}:={value}"]
    with open(log, "a") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def driver_on_unplugged_port(
    tmp_path: Path, tag: str, **params: str
) -> Iterator[tuple[DynamixelEmulator, Probe]]:
    """A driver process started while its USB adapter is unplugged (emulated), and the
    probe that watches it; the probe (and the process) closed after."""
    log = tmp_path / "driver.log"
    ns = f"/hw_dclaw_{tag}_{os.getpid()}"
    with DynamixelEmulator(initial_positions=START) as emu:
        emu.unplug()
        probe = Probe(ns, log)
        try:
            probe.proc = start_driver(ns, emu.port_name, log, **params)
            yield emu, probe
        finally:
            probe.close()


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Probe:
    """The rest of the graph, as seen from the driver."""

    def __init__(self, ns: str, log: Path) -> None:
        self.ns, self.log = ns, log
        self.proc: subprocess.Popen | None = None
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("dclaw_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.joints: JointState | None = None
        self.joint_count = 0
        self.valve: JointState | None = None
        self.status: DiagnosticStatus | None = None
        self.values: dict[str, str] = {}
        n = self.node
        n.create_subscription(JointState, f"{ns}/joint_states", self._on_joints,
                              qos_profile_sensor_data)  # fmt: skip
        n.create_subscription(JointState, f"{ns}/valve/joint_states",
                              lambda m: setattr(self, "valve", m), qos_profile_sensor_data)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.pub_cmd = n.create_publisher(
            Float64MultiArray, f"{ns}/joint_position_controller/commands", COMMAND_QOS
        )
        self.pub_valve = n.create_publisher(
            Float64MultiArray, f"{ns}/valve/position_controller/commands", COMMAND_QOS
        )
        self.pub_estop = n.create_publisher(Bool, f"{ns}/estop", 10)
        self.clients = {
            name: n.create_client(kind, f"{ns}/{name}")
            for name, kind in (("estop", Trigger), ("release_estop", Trigger),
                               ("reboot", Trigger), ("enable", SetBool),
                               ("valve/torque_enable", SetBool))
        }  # fmt: skip
        for name, kind in (("change_state", ChangeState), ("get_state", GetState)):
            self.clients[name] = n.create_client(kind, f"{ns}/dclaw_driver/{name}")

    def _on_joints(self, msg: JointState) -> None:
        self.joints = msg
        self.joint_count += 1

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if f"{self.ns}/dclaw_driver" in s.name:
                self.status = s
                self.values = {kv.key: kv.value for kv in s.values}

    def spin_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        command: np.ndarray | list[float] | None = None,
    ) -> None:
        """Spin (publishing ``command`` at 20 Hz) until ``condition()``."""
        deadline = time.monotonic() + timeout
        next_command = 0.0
        while not condition():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out waiting for {what}; diagnostics "
                                     f"{self.describe()}\n{self.tail()}")  # fmt: skip
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"driver exited ({self.proc.returncode}) while waiting "
                                     f"for {what}\n{self.tail()}")  # fmt: skip
            if command is not None and now >= next_command:
                self.command(command)
                next_command = now + 0.05
            self.executor.spin_once(timeout_sec=0.01)

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def spin_for(self, seconds: float, command: np.ndarray | list[float] | None = None) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() > end, seconds + 5, "time", command)

    def command(self, values: np.ndarray | list[float]) -> None:
        self.pub_cmd.publish(Float64MultiArray(data=[float(v) for v in values]))

    def call(self, name: str, request: object) -> object:
        client = self.clients[name]
        assert client.wait_for_service(timeout_sec=10.0), f"no service {name}"
        future = client.call_async(request)
        self.spin_until(future.done, 10.0, f"the answer of {name}")
        return future.result()

    def answer(self, name: str, request: object, timeout: float) -> object | None:
        """The service's answer, or None if none came in time. Right after a process
        starts, DDS may not have matched the client's reply reader yet: the server then
        drops the reply ("failed to send response")."""
        client = self.clients[name]
        assert client.wait_for_service(timeout_sec=10.0), f"no service {name}"
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        if not future.done():
            client.remove_pending_request(future)
            return None
        return future.result()

    def lifecycle(self) -> str:
        """The driver's lifecycle state (asked again if an answer is lost)."""
        for _ in range(5):
            answer = self.answer("get_state", GetState.Request(), 2.0)
            if answer is not None:
                return answer.current_state.label
        raise AssertionError(f"no answer from get_state\n{self.tail()}")

    def transition(self, transition_id: int) -> bool:
        """A lifecycle transition (lifecycle_msgs/Transition id); True if it succeeded.
        A lost answer is judged by the state the driver is in afterwards."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        answer = self.answer("change_state", request, 5.0)
        if answer is not None:
            return answer.success
        return self.lifecycle() == GOAL_STATE[transition_id]

    def describe(self) -> str:
        if self.status is None:
            return "none"
        return f"level {self.status.level!r} '{self.status.message}' {self.values}"

    def diag_has(self, level: bytes, text: str) -> bool:
        s = self.status
        return s is not None and s.level == level and text in s.message

    def mode(self) -> str | None:
        return self.values.get("mode")

    def count(self, key: str) -> int:
        return int(self.values.get(key, "-1"))

    def running(self) -> None:
        """Back to mode running (torque on), whatever the previous test left."""
        self.call("release_estop", Trigger.Request())
        self.call("reboot", Trigger.Request())
        assert self.call("enable", SetBool.Request(data=True)).success, self.describe()
        self.spin_until(lambda: self.mode() == "running", 5, "mode running",
                        command=self.position())  # fmt: skip

    def position(self) -> np.ndarray:
        self.spin_until(lambda: self.joints is not None, 10, "joint_states")
        return np.array(self.joints.position)

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    log = tmp_path_factory.mktemp("dclaw_driver") / "driver.log"
    ns = f"/hw_dclaw_{os.getpid()}"
    with DynamixelEmulator(initial_positions=START) as emu:
        probe = Probe(ns, log)
        probe.emu = emu
        try:
            probe.proc = start_driver(ns, emu.port_name, log)
            probe.spin_until(lambda: probe.mode() in ("running", "holding"), 30, "autostart")
            yield probe
        finally:
            probe.close()


def test_states_match_the_servos_and_commands_become_goals(rig):
    emu = rig.emu
    rig.spin_until(lambda: rig.valve is not None and rig.joint_count > 3, 10, "readings")
    js = rig.joints
    assert tuple(js.name) == NAMES
    assert len(js.velocity) == 9 and len(js.effort) == 0  # currents are not N m
    here = np.array([emu.present_position(i) for i in JOINT_IDS])
    assert np.all(np.abs(np.array(js.position) - here) <= TICK), (js.position, here)
    age = rig.node.get_clock().now().nanoseconds * 1e-9 - (
        js.header.stamp.sec + js.header.stamp.nanosec * 1e-9
    )
    assert 0 <= age < 0.5
    assert tuple(rig.valve.name) == ("valve_OBJRx",)
    assert abs(rig.valve.position[0] - emu.present_position(VALVE)) <= TICK
    assert torque(emu, JOINT_IDS) == [1] * 9 and torque(emu, [VALVE]) == [0]

    target = np.array([0.2, -0.5, 0.6, -0.1, 0.3, -0.4, 0.05, 0.7, -0.9])
    first = len(emu.goal_writes)
    rig.spin_until(
        lambda: all(abs(goal_rad(emu, i) - t) <= TICK for i, t in zip(JOINT_IDS, target,
                                                                     strict=True)),
        10, "the goals at the target", command=target,
    )  # fmt: skip
    rig.spin_until(lambda: np.allclose(rig.joints.position, target, atol=0.01), 5,
                   "the hand at the target", command=target)  # fmt: skip
    writes = list(emu.goal_writes)[first:]
    assert len(writes) > 10
    for _, motor_id, raw in writes:
        k = JOINT_IDS.index(motor_id)
        assert LOWER[k] - TICK <= raw * TICK + OFFSETS[motor_id] <= UPPER[k] + TICK
    assert rig.count("commands") > 10 and rig.count("rejected_commands") == 0
    # Timing is reported, not benchmarked here (the cores are shared): sane values only.
    assert 0.0 < float(rig.values["cycle_ms_p50"]) < 100.0
    assert 15.0 < float(rig.values["period_ms_p50"]) < 40.0  # 50 Hz


def test_hostile_commands_never_move_a_goal_outside_the_limits(rig):
    emu = rig.emu
    rig.running()
    hold = rig.position()
    hostile = [
        [math.nan] + [0.0] * 8,
        [0.0] * 8,
        [0.0] * 10,
        [0.0] * 8 + [math.inf],
    ]
    first = len(emu.goal_writes)
    for k, bad in enumerate(hostile, start=1):
        rig.command(bad)
        rig.spin_until(lambda k=k: rig.count("rejected_commands") == k, 5, f"rejection {k}")
        assert rig.diag_has(DiagnosticStatus.WARN, "rejected command"), rig.describe()
    goals = np.array([goal_rad(emu, i) for i in JOINT_IDS])
    assert np.all(np.abs(goals - np.clip(hold, LOWER, UPPER)) <= 0.02)  # nothing moved
    huge = [1e9, -1e300, 1e300, 50.0, -50.0, 7.0, -1e9, 1e9, 3.0]
    t0 = time.monotonic()
    rig.spin_for(2.0, command=huge)
    t1 = time.monotonic()
    end = np.clip(huge, LOWER, UPPER)
    writes = [w for w in list(emu.goal_writes)[first:] if w[1] in JOINT_IDS]
    assert writes
    last: dict[int, float] = {}
    for _, motor_id, raw in writes:
        k = JOINT_IDS.index(motor_id)
        rad = raw * TICK + OFFSETS[motor_id]
        assert LOWER[k] - TICK <= rad <= UPPER[k] + TICK
        if motor_id in last:  # a constant command: the goals move one way, <= v*dt a step
            assert abs(rad - last[motor_id]) <= MAX_VEL * PERIOD + TICK
        last[motor_id] = rad
    moved = np.abs(np.array([last[i] for i in JOINT_IDS]) - hold)
    assert np.all(moved <= MAX_VEL * (t1 - t0 + PERIOD) + 2 * TICK)
    assert np.all(np.abs(np.array([last[i] for i in JOINT_IDS]) - end) <= 0.25)


def test_estop_topic_and_services(rig):
    emu = rig.emu
    rig.running()
    here = rig.position()
    rig.pub_estop.publish(Bool(data=True))
    rig.spin_until(lambda: rig.mode() == "estop", 5, "e-stop from the topic")
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.ERROR, "e-stop (topic)"), 5, "ERROR")
    writes = len(emu.goal_writes)
    rig.spin_for(0.4, command=here + 0.1)
    rig.pub_estop.publish(Bool(data=False))  # releasing takes the service
    rig.spin_for(0.3)
    assert rig.mode() == "estop" and len(emu.goal_writes) == writes
    answer = rig.call("enable", SetBool.Request(data=True))
    assert not answer.success and "estop" in answer.message
    assert rig.call("release_estop", Trigger.Request()).success
    rig.spin_until(lambda: rig.mode() == "idle", 5, "mode idle")
    assert torque(emu, JOINT_IDS) == [0] * 9  # release alone turns nothing on
    # Active but limp, the policy's commands ignored: not an OK robot.
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.WARN, "torque off"), 3,
                   "WARN while active and limp")  # fmt: skip
    assert rig.call("enable", SetBool.Request(data=True)).success
    assert torque(emu, JOINT_IDS) == [1] * 9
    rig.spin_until(lambda: rig.status.level == DiagnosticStatus.OK, 3, "OK once enabled",
                   command=here)  # fmt: skip

    assert rig.call("estop", Trigger.Request()).success
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.ERROR, "e-stop (service)"), 5, "ERROR")
    rig.running()


def test_valve_motor_as_the_simulator_offers_it(rig):
    emu = rig.emu
    rig.running()
    before = goal_rad(emu, VALVE)
    rig.pub_valve.publish(Float64MultiArray(data=[-2.0]))  # torque off: ignored
    rig.spin_for(0.3, command=rig.position())
    assert goal_rad(emu, VALVE) == before
    assert rig.call("valve/torque_enable", SetBool.Request(data=True)).success
    assert torque(emu, [VALVE]) == [1]
    deadline = time.monotonic() + 5
    while abs(rig.valve.position[0] + 2.0) > 0.02:
        assert time.monotonic() < deadline, f"valve at {rig.valve.position[0]}"
        rig.pub_valve.publish(Float64MultiArray(data=[-2.0]))
        rig.spin_for(0.05, command=rig.joints.position)
    assert abs(goal_rad(emu, VALVE) + 2.0) <= TICK
    rig.pub_valve.publish(Float64MultiArray(data=[4.0]))  # wraps to 4 - 2 pi
    rig.spin_until(lambda: abs(goal_rad(emu, VALVE) - (4.0 - 2 * math.pi)) <= TICK, 5,
                   "the wrapped valve goal")  # fmt: skip
    assert rig.call("valve/torque_enable", SetBool.Request(data=False)).success
    assert torque(emu, [VALVE]) == [0]
    assert rig.call("estop", Trigger.Request()).success
    refused = rig.call("valve/torque_enable", SetBool.Request(data=True))
    assert not refused.success and "estop" in refused.message
    assert torque(emu, [VALVE]) == [0]
    rig.running()


@pytest.mark.parametrize(
    ("inject", "expected", "repair"),
    [
        (lambda emu: emu.set_hardware_error(21, proto.HW_OVERLOAD),
         ["safe stop", "motor 21 (MFJ21): hardware error", "overload"], None),
        (lambda emu: emu.set_temperature(31, 75.0),
         ["safe stop", "motor 31 (THJ31): temperature 75 C above the 70 C limit"],
         lambda emu: emu.set_temperature(31, 40.0)),
        (lambda emu: emu.set_silent(12),
         ["safe stop", "communication lost", "motor 12"],
         lambda emu: emu.set_silent(12, False)),
    ],
    ids=["hardware_error", "overheating", "silent_motor"],
)  # fmt: skip
def test_faults_stop_safely_and_show_on_diagnostics(rig, inject, expected, repair):
    emu = rig.emu
    rig.running()
    inject(emu)
    try:
        rig.spin_until(lambda: rig.mode() == "safe_stop", 5, "a safe stop",
                       command=rig.joints.position)  # fmt: skip
        rig.spin_until(lambda: rig.status.level == DiagnosticStatus.ERROR, 2, "ERROR")
        for text in expected:
            assert text in rig.status.message, rig.describe()
        assert torque(emu, [i for i in (*JOINT_IDS, VALVE) if i != 12]) == [0] * 9
        assert rig.count("safe_stops") >= 1
        if repair is not None:  # the reboot refuses while the cause is still there
            refused = rig.call("reboot", Trigger.Request())
            assert not refused.success and rig.mode() == "safe_stop", refused.message
    finally:
        if repair is not None:
            repair(emu)
    answer = rig.call("reboot", Trigger.Request())
    assert answer.success, answer.message
    rig.spin_until(lambda: rig.mode() == "idle", 5, "mode idle after the reboot")
    if "hardware error" in expected[1]:
        assert "rebooted motors [21]" in answer.message
    rig.running()


def test_a_hot_motor_is_a_warning_before_the_safe_stop(rig):
    """From warn_temperature (65 C) a WARN names the motor while the hand keeps running;
    it goes once the motor cools."""
    emu = rig.emu
    rig.running()
    emu.set_temperature(31, 67.0)
    try:
        rig.spin_until(
            lambda: rig.diag_has(DiagnosticStatus.WARN, "hot: THJ31 67 C; safe stop above 70 C"),
            5, "a WARN naming THJ31", command=rig.position(),
        )  # fmt: skip
        assert rig.mode() == "running"
    finally:
        emu.set_temperature(31, 40.0)
    rig.spin_until(lambda: "hot:" not in rig.status.message, 5, "the WARN gone",
                   command=rig.position())  # fmt: skip
    assert rig.mode() == "running"


def test_reboot_while_e_stopped_says_so(rig):
    rig.running()
    assert rig.call("estop", Trigger.Request()).success
    answer = rig.call("reboot", Trigger.Request())
    assert not answer.success and "release_estop" in answer.message, answer.message
    rig.running()


def test_a_motor_that_did_not_hear_its_torque_off_is_an_error(rig):
    """A silent motor keeps the torque it had: /diagnostics must not say the hand is limp
    with a WARN about communication only."""
    emu = rig.emu
    rig.running()
    emu.set_silent(12)
    try:
        answer = rig.call("enable", SetBool.Request(data=False))
        assert not answer.success and "motor 12" in answer.message, answer.message
        assert torque(emu, [12]) == [1]
        rig.spin_until(
            lambda: rig.diag_has(DiagnosticStatus.ERROR, "not acknowledged by motors 12 "),
            3, "an ERROR naming motor 12",
        )  # fmt: skip
    finally:
        emu.set_silent(12, False)
    rig.spin_until(lambda: torque(emu, [12]) == [0], 3, "the torque off retried")
    rig.spin_until(lambda: "torque off not acknowledged" not in rig.status.message, 3,
                   "the ERROR gone")  # fmt: skip
    rig.running()


def test_watchdog_holds_and_the_next_command_resumes(rig):
    emu = rig.emu
    rig.running()
    here = rig.position()
    rig.spin_until(lambda: rig.mode() == "holding", 3, "the watchdog")  # no commands
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.WARN, "watchdog"), 2, "WARN")
    held = [goal_rad(emu, i) for i in JOINT_IDS]
    rig.spin_for(0.3)
    assert [goal_rad(emu, i) for i in JOINT_IDS] == held
    assert np.allclose(held, np.clip(here, LOWER, UPPER), atol=0.02)
    assert torque(emu, JOINT_IDS) == [1] * 9
    rig.spin_until(lambda: rig.mode() == "running", 3, "running again", command=here)


def test_unplug_and_replug_reconnects(rig):
    emu = rig.emu
    rig.running()
    here = rig.position()
    reconnects = rig.count("reconnects")
    emu.unplug()
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.ERROR, "not connected"), 3,
                   "a lost link on /diagnostics", command=here)  # fmt: skip
    emu.replug()  # within comm_tolerance (1 s): carries on
    rig.spin_until(lambda: rig.count("reconnects") == reconnects + 1, 5, "the reconnect",
                   command=here)  # fmt: skip
    rig.spin_until(lambda: rig.mode() == "running" and rig.status.level == DiagnosticStatus.OK,
                   5, "running again", command=here)  # fmt: skip
    assert torque(emu, JOINT_IDS) == [1] * 9

    emu.unplug()  # beyond the tolerance: safe stop, and torque off after the replug
    rig.spin_until(lambda: rig.mode() == "safe_stop", 5, "a safe stop", command=here)
    assert "communication lost" in rig.status.message
    emu.replug()
    rig.spin_until(lambda: rig.count("reconnects") == reconnects + 2, 5, "the second reconnect")
    rig.spin_until(lambda: torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10, 3, "torque off")
    rig.running()


def test_waits_for_a_late_port_and_sigint_turns_torque_off(tmp_path):
    log = tmp_path / "driver.log"
    ns = f"/hw_dclaw_late_{os.getpid()}"
    with DynamixelEmulator(initial_positions=START) as emu:
        emu.unplug()  # the adapter is not there yet
        probe = Probe(ns, log)
        try:
            probe.proc = start_driver(ns, emu.port_name, log, comm_tolerance=0.2)
            probe.spin_until(lambda: probe.diag_has(DiagnosticStatus.ERROR, "not connected"),
                             30, "a missing port on /diagnostics")  # fmt: skip
            probe.spin_for(0.5)  # longer than comm_tolerance: torque is off, so no fault
            assert probe.mode() == "idle" and probe.count("safe_stops") == 0
            emu.replug()
            probe.spin_until(lambda: probe.mode() == "running", 10, "autostart after the plug")
            assert torque(emu, JOINT_IDS) == [1] * 9
            probe.proc.send_signal(signal.SIGINT)
            assert probe.proc.wait(timeout=15) == 0, log.read_text()
            assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
            assert "torque off; port closed" in log.read_text()
        finally:
            probe.close()


def test_an_enable_call_before_the_port_appears_ends_the_autostart(tmp_path):
    """An operator who asked for torque off while the adapter was missing: plugging it in
    must not turn torque on by itself (the call failed, as nothing could hear it)."""
    with driver_on_unplugged_port(tmp_path, "enable_early") as (emu, probe):
        probe.spin_until(lambda: probe.diag_has(DiagnosticStatus.ERROR, "not connected"),
                         30, "a missing port on /diagnostics")  # fmt: skip
        probe.call("enable", SetBool.Request(data=False))
        emu.replug()
        probe.spin_for(2.0)  # autostart would have configured and activated by now
        assert probe.lifecycle() != "active"
        assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10



def test_a_driver_started_while_a_latching_estop_is_pressed_comes_up_stopped(tmp_path):
    """An e-stop button node that latched True (transient local) before the driver started,
    or restarted: the driver hears it at once, never turns torque on, and says why."""
    from sac_ros.nodes.common import LATCHED_QOS

    log = tmp_path / "driver.log"
    ns = f"/hw_dclaw_latched_{os.getpid()}"
    with DynamixelEmulator(initial_positions=START) as emu:
        probe = Probe(ns, log)
        button = probe.node.create_publisher(Bool, f"{ns}/estop", LATCHED_QOS)
        button.publish(Bool(data=True))  # pressed, once, before any driver exists
        try:
            probe.proc = start_driver(ns, emu.port_name, log)
            probe.spin_until(lambda: probe.diag_has(DiagnosticStatus.ERROR, "e-stop"), 30,
                             "the latched e-stop on /diagnostics")  # fmt: skip
            probe.spin_for(2.0)  # the autostart would have turned torque on by now
            assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
            assert probe.diag_has(DiagnosticStatus.ERROR, "e-stop"), probe.describe()
        finally:
            probe.close()

def test_lifecycle_deactivate_limps_the_hand_and_activate_resumes(rig):
    emu = rig.emu
    rig.running()
    assert rig.lifecycle() == "active"
    assert rig.call("valve/torque_enable", SetBool.Request(data=True)).success
    assert torque(emu, (*JOINT_IDS, VALVE)) == [1] * 10
    here = rig.position()

    assert rig.transition(Transition.TRANSITION_DEACTIVATE)
    assert rig.lifecycle() == "inactive"
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10  # limp: nothing held
    target = np.clip(here + np.array([0.2, -0.2, 0.2] * 3), LOWER, UPPER)
    readings, writes = rig.joint_count, len(emu.goal_writes)
    rig.spin_for(0.6, command=target)  # ignored, but the readings keep coming
    assert len(emu.goal_writes) == writes
    assert rig.joint_count >= readings + 10
    rig.spin_until(lambda: rig.values.get("lifecycle") == "inactive"
                   and rig.count("inactive_commands") > 0
                   and rig.diag_has(DiagnosticStatus.WARN, "inactive: torque off"),
                   3, "inactive on /diagnostics")  # fmt: skip
    for service in ("enable", "valve/torque_enable"):
        refused = rig.call(service, SetBool.Request(data=True))
        assert not refused.success and "inactive" in refused.message, refused.message
    assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10

    assert rig.transition(Transition.TRANSITION_ACTIVATE)
    assert rig.lifecycle() == "active"
    assert torque(emu, JOINT_IDS) == [1] * 9 and torque(emu, [VALVE]) == [0]
    rig.spin_until(
        lambda: all(abs(goal_rad(emu, i) - t) <= TICK for i, t in zip(JOINT_IDS, target,
                                                                     strict=True)),
        10, "the goals at the target once active", command=target,
    )  # fmt: skip
    rig.spin_until(lambda: rig.status.level == DiagnosticStatus.OK, 3, "diagnostics OK")


def test_lifecycle_by_hand_configure_failures_are_clear_and_shutdown_limps(tmp_path):
    with driver_on_unplugged_port(tmp_path, "lifecycle", autostart="false") as (emu, probe):
        assert probe.lifecycle() == "unconfigured"
        probe.spin_until(lambda: probe.diag_has(DiagnosticStatus.WARN, "unconfigured"), 10,
                         "unconfigured on /diagnostics")  # fmt: skip
        assert not probe.transition(Transition.TRANSITION_CONFIGURE)  # no port
        assert probe.lifecycle() == "unconfigured"
        assert f"configure failed: cannot reach the D'Claw on {emu.port_name}" in probe.tail()
        probe.spin_until(lambda: probe.diag_has(DiagnosticStatus.ERROR, "not connected"), 3,
                         "the failed configure on /diagnostics")  # fmt: skip
        emu.replug()
        emu.set_silent(12)
        assert not probe.transition(Transition.TRANSITION_CONFIGURE)  # a silent motor
        assert "ping failed (motor 12" in probe.tail()
        emu.set_silent(12, False)
        probe.spin_for(0.3)  # no autostart: nothing happens by itself
        assert probe.lifecycle() == "unconfigured" and probe.joint_count == 0

        assert probe.transition(Transition.TRANSITION_CONFIGURE)
        assert probe.lifecycle() == "inactive"
        probe.spin_until(lambda: probe.joint_count >= 5, 5, "readings while inactive")
        here = probe.position()
        writes = len(emu.goal_writes)
        probe.spin_for(0.3, command=here + 0.1)
        assert len(emu.goal_writes) == writes
        assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10

        assert probe.transition(Transition.TRANSITION_ACTIVATE)
        assert torque(emu, JOINT_IDS) == [1] * 9
        probe.spin_until(lambda: abs(goal_rad(emu, 10) - here[0] - 0.1) <= TICK, 5,
                         "a goal moved", command=here + 0.1)  # fmt: skip
        assert probe.transition(Transition.TRANSITION_DEACTIVATE)
        assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
        assert probe.transition(Transition.TRANSITION_CLEANUP)
        assert probe.lifecycle() == "unconfigured"
        probe.spin_for(0.1)
        packets, readings = emu.stats["packets"], probe.joint_count
        probe.spin_for(0.3)
        assert emu.stats["packets"] == packets and probe.joint_count == readings  # closed

        assert probe.transition(Transition.TRANSITION_CONFIGURE)
        assert probe.transition(Transition.TRANSITION_ACTIVATE)
        assert torque(emu, JOINT_IDS) == [1] * 9
        assert probe.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert probe.lifecycle() == "finalized"
        assert torque(emu, (*JOINT_IDS, VALVE)) == [0] * 10
        probe.proc.send_signal(signal.SIGINT)
        assert probe.proc.wait(timeout=15) == 0, probe.tail()


def test_a_destroyed_driver_leaves_the_ros_graph(tmp_path):
    """rclpy's LifecycleNode keeps its node alive after destroy_node() (in-process graphs
    would list a stale driver); the driver's destroy_node() ends it too."""
    ns = f"/hw_dclaw_destroyed_{os.getpid()}"
    context = rclpy.Context()
    args = ["--ros-args", "-r", f"__ns:={ns}", "-p", f"port:={tmp_path / 'none'}",
            "-p", "autostart:=false"]  # fmt: skip
    rclpy.init(args=args, context=context)
    try:
        observer = rclpy.create_node("destroy_observer", context=context)
        driver = DClawDriverNode(context=context)

        def listed() -> bool:
            return ("dclaw_driver", ns) in observer.get_node_names_and_namespaces()

        deadline = time.monotonic() + 10
        while not listed():
            assert time.monotonic() < deadline, "the driver never appeared"
            time.sleep(0.05)
        driver.close()
        driver.destroy_node()
        deadline = time.monotonic() + 5
        while listed():
            assert time.monotonic() < deadline, "the destroyed driver is still in the graph"
            time.sleep(0.05)
        observer.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_a_launch_wide_sigint_lets_the_driver_turn_torque_off_through_the_emulator(tmp_path):
    """ros2 launch signals every process at once: the emulator node, stopped first, keeps
    serving until the driver's shutdown (torque off on every motor) is through."""
    ns = f"/hw_dclaw_emu_{os.getpid()}"
    link = tmp_path / "ttyDXL0"
    emu_log, log = tmp_path / "emulator.log", tmp_path / "driver.log"
    with open(emu_log, "a") as out:
        emulator = subprocess.Popen(
            [sys.executable, "-m", "sac_ros.nodes.dxl_emulator_node", "--ros-args",
             "-r", f"__ns:={ns}", "-p", f"link:={link}", "-p", "backend:=mujoco"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    probe = Probe(ns, log)
    try:
        probe.proc = start_driver(ns, str(link), log)
        probe.spin_until(lambda: probe.mode() == "running", 60, "the driver running")
        emulator.send_signal(signal.SIGINT)  # the emulator hears the Ctrl-C first
        time.sleep(0.1)
        probe.proc.send_signal(signal.SIGINT)
        assert probe.proc.wait(timeout=15) == 0, log.read_text()
        assert emulator.wait(timeout=15) == 0, emu_log.read_text()
        text = log.read_text()
        assert "torque off; port closed" in text, text
        assert "not acknowledged" not in text, text
    finally:
        stop_process(emulator)
        probe.close()
