"""minitaur_driver_node as a real process over DDS on loopback.

The probe plays everything around the driver: ros2_control (joint_state_broadcaster
publishing on ``joint_state_broadcaster/joint_states`` in its own joint order, a forward
position controller that tracks every target perfectly, or in effort mode a forward
effort controller whose motors do not move), the IMU, and the policy.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]

# ROBOTS.md / sac_ros.robots.minitaur conventions, written out here.
NAMES = tuple(f"motor_{leg}{side}_joint" for leg in ("front_left", "back_left", "front_right",
                                                     "back_right") for side in "LR")  # fmt: skip
LOWER, UPPER, MAX_VEL = 0.5, 3.1, 20.0
STANDING = np.full(8, 2.0)
CROUCH = np.full(8, 1.4)  # zero swing, shortest extension of the action range
RATE = 100.0
CROUCH_VEL = 1.0
DRIVER = {
    "rate_hz": RATE,
    "watchdog_timeout": 0.3,
    "crouch_velocity": CROUCH_VEL,
    "fall_reset_delay": 0.4,
    "max_state_age": 0.5,  # generous: the probe shares two loaded cores
    "max_imu_age": 0.5,
    "diagnostics_period": 0.1,
}
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def quaternion(roll: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation about the body's x axis."""
    return (math.sin(roll / 2), 0.0, 0.0, math.cos(roll / 2))


class Rig:
    def __init__(
        self,
        ns: str,
        log: Path,
        params: dict[str, object] | None = None,
        motor_topic: str = "forward_position_controller/commands",
        imu_topic: str = "imu",
    ) -> None:
        self.ns, self.log = ns, log
        self.tracks = motor_topic == "forward_position_controller/commands"
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        n = self.node = rclpy.create_node("minitaur_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.measured = STANDING.copy()  # the "hardware": tracks each target at once
        self.velocity = 0.0
        self.targets: list[tuple[float, np.ndarray]] = []
        self.republished: JointState | None = None
        self.status: DiagnosticStatus | None = None
        self.values: dict[str, str] = {}
        self.roll = 0.0
        self.imu_on = True
        self.imu_has_orientation = True  # False: orientation_covariance[0] = -1
        self.velocities_on = True
        self.states_on = True
        self.policy: np.ndarray | None = None
        self.pub_states = n.create_publisher(
            JointState, f"{ns}/joint_state_broadcaster/joint_states", qos_profile_sensor_data
        )
        self.pub_imu = n.create_publisher(Imu, f"{ns}/{imu_topic}", qos_profile_sensor_data)
        self.pub_policy = n.create_publisher(
            Float64MultiArray, f"{ns}/joint_position_controller/commands", COMMAND_QOS
        )
        self.pub_estop = n.create_publisher(Bool, f"{ns}/estop", 10)
        n.create_subscription(Float64MultiArray, f"{ns}/{motor_topic}", self._on_target, 100)
        n.create_subscription(
            JointState,
            f"{ns}/joint_states",
            lambda m: setattr(self, "republished", m),
            qos_profile_sensor_data,
        )
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.clients = {name: n.create_client(Trigger, f"{ns}/{name}")
                        for name in ("estop", "release_estop", "reset_fall")}  # fmt: skip
        cmd = [sys.executable, "-m", "sac_ros.nodes.minitaur_driver_node", "--ros-args",
               "-r", f"__ns:={ns}"]  # fmt: skip
        for key, value in {**DRIVER, **(params or {})}.items():
            cmd += ["-p", f"{key}:={value}"]
        with open(log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def _on_target(self, msg: Float64MultiArray) -> None:
        target = np.array(msg.data)
        self.targets.append((time.monotonic(), target))
        if self.tracks:
            self.measured = target.copy()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if f"{self.ns}/minitaur_driver" in s.name:
                self.status = s
                self.values = {kv.key: kv.value for kv in s.values}

    def _publish_world(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        if self.states_on:
            js = JointState(name=list(reversed(NAMES)),  # ros2_control picks its own order
                            position=[float(v) for v in reversed(self.measured)],
                            velocity=[self.velocity] * 8 if self.velocities_on else [],
                            effort=[0.5] * 8)  # fmt: skip
            js.header.stamp = stamp
            self.pub_states.publish(js)
        if self.imu_on:
            imu = Imu()
            imu.header.stamp = stamp
            o = imu.orientation
            o.x, o.y, o.z, o.w = quaternion(self.roll)
            if not self.imu_has_orientation:  # a gyro-only IMU: identity, marked unknown
                o.x, o.y, o.z, o.w = 0.0, 0.0, 0.0, 1.0
                imu.orientation_covariance[0] = -1.0
            self.pub_imu.publish(imu)
        if self.policy is not None:
            self.pub_policy.publish(Float64MultiArray(data=[float(v) for v in self.policy]))

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        next_world = 0.0
        while not condition():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.describe()}\n"
                                     f"{self.log.read_text()[-3000:]}")  # fmt: skip
            if self.proc.poll() is not None:
                raise AssertionError(f"driver exited: {self.log.read_text()[-3000:]}")
            if now >= next_world:
                self._publish_world()
                next_world = now + 0.01
            self.executor.spin_once(timeout_sec=0.005)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() > end, seconds + 5, "time")

    def call(self, name: str) -> Trigger.Response:
        client = self.clients[name]
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        self.spin_until(future.done, 10.0, f"the answer of {name}")
        return future.result()

    def describe(self) -> str:
        if self.status is None:
            return "no diagnostics"
        return f"level {self.status.level!r} '{self.status.message}' {self.values}"

    def mode(self) -> str | None:
        return self.values.get("mode")

    def diag_has(self, level: bytes, text: str) -> bool:
        s = self.status
        return s is not None and s.level == level and text in s.message

    def running(self, command: np.ndarray) -> None:
        self.roll, self.imu_on, self.states_on = 0.0, True, True
        self.call("release_estop")
        self.spin_until(lambda: self.mode() not in ("fallen", "estop", None), 5, "upright")
        self.policy = command
        self.spin_until(lambda: self.mode() == "running", 5, "mode running")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    log = tmp_path_factory.mktemp("minitaur_driver") / "driver.log"
    r = Rig(f"/hw_minitaur_{os.getpid()}", log)
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        yield r
    finally:
        r.close()


def test_targets_pass_the_safety_layer_and_states_are_republished(rig):
    rig.running(STANDING)
    goal = np.array([2.4, 1.8, 9.0, -4.0, 2.2, 2.0, 3.0, 1.0])  # two outside the limits
    first = len(rig.targets)
    rig.policy = goal
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], np.clip(goal, LOWER, UPPER)), 5,
                   "the clipped goal on the controller topic")  # fmt: skip
    sent = [t for _, t in rig.targets[first:]]
    assert all(np.all(t >= LOWER) and np.all(t <= UPPER) for t in sent)
    for before, after in zip(sent, sent[1:], strict=False):  # measured == previous target
        assert np.all(np.abs(after - before) <= MAX_VEL / RATE + 1e-9)
    rig.spin_for(0.3)  # the legs stand still at the goal: the latest reading is of it
    js = rig.republished
    assert tuple(js.name) == NAMES  # the URDF's order, whatever the broadcaster's
    assert np.allclose(js.position, np.clip(goal, LOWER, UPPER)) and list(js.effort) == [0.5] * 8

    rig.pub_policy.publish(Float64MultiArray(data=[2.0] * 7 + [math.nan]))
    rig.policy = None
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.WARN, "rejected command"), 3, "WARN")
    assert int(rig.values["rejected_commands"]) >= 1
    assert np.allclose(rig.targets[-1][1], np.clip(goal, LOWER, UPPER))


def test_a_fall_crouches_and_the_latch_clears_once_upright(rig):
    rig.running(STANDING + 0.3)
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], STANDING + 0.3), 5, "the pose")
    rig.roll = 1.0  # beyond the 0.6 rad threshold
    rig.spin_until(lambda: rig.mode() == "fallen", 3, "the fall")
    first = len(rig.targets)
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], CROUCH, atol=1e-6), 5, "the crouch")
    assert rig.diag_has(DiagnosticStatus.WARN, "fall: roll 1.00"), rig.describe()
    sent = [t for _, t in rig.targets[first - 1 :]]
    for before, after in zip(sent, sent[1:], strict=False):  # the slow crouch, policy ignored
        assert np.all(after <= before + 1e-9)
        assert np.all(before - after <= CROUCH_VEL / RATE + 1e-9)
    assert len(sent) >= (2.3 - 1.4) / (CROUCH_VEL / RATE) * 0.9
    assert int(rig.values["ignored_commands"]) > 0
    assert not rig.call("reset_fall").success  # still tilted
    rig.roll = 0.0
    rig.spin_until(lambda: rig.mode() == "running", 5, "the policy in charge again")
    assert int(rig.values["falls"]) >= 1


def test_the_fall_latch_needs_upright_time_it_has_seen(tmp_path):
    """Upright time before a gap in the joint readings does not count: the robot may have
    tipped over and back while the driver could not see it."""
    r = Rig(f"/hw_minitaur_latch_{os.getpid()}", tmp_path / "driver.log",
            {"fall_reset_delay": 1.0, "max_state_age": 0.3})  # fmt: skip
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        r.running(STANDING)
        r.roll = 1.0
        r.spin_until(lambda: r.mode() == "fallen", 3, "the fall")
        r.roll = 0.0
        r.spin_for(0.3)  # upright: 0.3 s, and at most 0.3 s more until the states are stale
        r.states_on = False
        r.spin_until(lambda: r.diag_has(DiagnosticStatus.ERROR, "no fresh joint states"), 3,
                     "ERROR on stale states")  # fmt: skip
        r.spin_for(0.6)
        r.states_on = True
        r.spin_until(lambda: float(r.values.get("state_age_s", "1")) < 0.05, 3,
                     "fresh states noted")  # fmt: skip
        assert r.mode() == "fallen", r.describe()
        r.spin_until(lambda: r.mode() != "fallen", 5, "the latch cleared after the delay")
        assert r.values["power"] == "n/a (no power_service)"
    finally:
        r.close()


def test_a_silent_imu_is_a_fall(rig):
    rig.running(STANDING)
    rig.imu_on = False
    # Both, in one status: a status from before the silence may show a fall already (the
    # test's own IMU late under load), but not this reason.
    rig.spin_until(
        lambda: rig.mode() == "fallen" and rig.diag_has(DiagnosticStatus.ERROR, "no fresh IMU"),
        3, "a fall for want of the IMU",
    )  # fmt: skip
    rig.imu_on = True
    rig.spin_until(lambda: "no fresh IMU" not in rig.status.message, 3, "a fresh IMU")
    assert rig.call("reset_fall").success
    rig.spin_until(lambda: rig.mode() != "fallen", 3, "the fall latch cleared")


def test_an_imu_without_orientation_is_not_taken_for_level(rig):
    """sensor_msgs/Imu: orientation_covariance[0] = -1 means no orientation estimate; its
    identity quaternion would read as upright forever, and no fall could be seen."""
    rig.running(STANDING)
    rig.imu_has_orientation = False
    rig.roll = 1.0  # the robot falls; the IMU cannot say so
    try:
        rig.spin_until(lambda: rig.mode() == "fallen", 3, "a fall")
        rig.spin_until(lambda: "no orientation" in rig.status.message, 3, "the reason")
    finally:
        rig.imu_has_orientation, rig.roll = True, 0.0
    rig.spin_until(lambda: "no orientation" not in rig.status.message, 8, "an oriented IMU")
    assert rig.call("reset_fall").success
    rig.spin_until(lambda: rig.mode() != "fallen", 3, "the fall latch cleared")


def test_velocities_not_measured_are_not_republished_as_zeros(rig):
    rig.running(STANDING)
    rig.velocities_on = False
    rig.spin_for(0.3)
    assert list(rig.republished.velocity) == []
    rig.velocities_on = True
    rig.spin_until(lambda: len(rig.republished.velocity) == 8, 3, "velocities again")


def test_watchdog_crouches_when_the_policy_goes_quiet(rig):
    rig.running(STANDING)
    rig.policy = None
    rig.spin_until(lambda: rig.mode() == "crouching", 3, "the watchdog")
    assert rig.diag_has(DiagnosticStatus.WARN, "watchdog (crouching)"), rig.describe()
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], CROUCH, atol=1e-6), 5, "the crouch")
    assert int(rig.values["watchdog_trips"]) >= 1
    rig.policy = STANDING
    rig.spin_until(lambda: rig.mode() == "running", 3, "running again")


def test_estop_and_stale_states_stop_the_targets(rig):
    rig.running(STANDING)
    rig.pub_estop.publish(Bool(data=True))
    rig.spin_until(lambda: rig.mode() == "estop", 3, "the e-stop")
    rig.spin_for(0.1)
    count = len(rig.targets)
    rig.spin_for(0.4)
    assert len(rig.targets) == count  # no targets while e-stopped
    assert rig.diag_has(DiagnosticStatus.ERROR, "e-stop (topic)"), rig.describe()
    assert rig.call("release_estop").success
    rig.spin_until(lambda: len(rig.targets) > count, 3, "targets after the release")

    rig.states_on = False  # joint_state_broadcaster went quiet
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.ERROR, "no fresh joint states"), 3,
                   "ERROR on stale states")  # fmt: skip
    count = len(rig.targets)
    rig.spin_for(0.3)
    assert len(rig.targets) == count
    rig.states_on = True
    rig.spin_until(lambda: len(rig.targets) > count, 3, "targets again")


EFFORT = {"command_interface": "effort", "kp": 8.0, "kd": 0.5, "max_torque": 1.0,
          "imu_topic": "imu_sensor_broadcaster/imu", "watchdog_action": "disable"}  # fmt: skip


@pytest.fixture
def effort_rig(tmp_path):
    r = Rig(f"/hw_minitaur_effort_{os.getpid()}", tmp_path / "driver.log", EFFORT,
            motor_topic="forward_effort_controller/commands",
            imu_topic="imu_sensor_broadcaster/imu")  # fmt: skip
    try:
        r.spin_until(lambda: r.targets, 30, "the first torques")
        yield r
    finally:
        r.close()


def test_effort_mode_runs_the_pd_and_motors_off_is_zero_torque(effort_rig):
    rig = effort_rig  # the motors stay at STANDING, turning at 0.1 rad/s
    rig.velocity = 0.1
    rig.running(STANDING + 0.1)  # a fall if the IMU were read from "imu"
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], 8.0 * 0.1 - 0.5 * 0.1), 5, "the PD")
    assert rig.values["command_interface"] == "effort" and float(rig.values["kp"]) == 8.0
    # Far: the targets stay within one tick's travel (0.2 rad) of the motors, and the
    # torque, 8 * 0.2 - 0.05, saturates at max_torque.
    rig.policy = STANDING + 1.0
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], 1.0), 5, "the clipped torque")
    assert all(np.all(np.abs(t) <= 1.0) for _, t in rig.targets)
    rig.spin_until(lambda: int(rig.values["saturated_ticks"]) > 0, 3, "saturation reported")

    rig.policy = None  # watchdog "disable": zero torque, sent every tick
    rig.spin_until(lambda: rig.mode() == "disabled", 3, "the watchdog")
    rig.spin_for(0.1)
    first = len(rig.targets)
    rig.spin_for(0.3)
    off = [t for _, t in rig.targets[first:]]
    assert len(off) >= 10 and all(np.all(t == 0.0) for t in off)

    rig.running(STANDING + 0.1)
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], 0.75), 5, "the PD again")
    rig.call("estop")
    rig.spin_until(lambda: np.all(rig.targets[-1][1] == 0.0), 3, "zero torque on e-stop")
    first = len(rig.targets)
    rig.spin_for(0.3)
    assert len(rig.targets) - first >= 10  # still sent: a zero is a real torque off
    assert all(np.all(t == 0.0) for _, t in rig.targets[first:])

    rig.running(STANDING + 0.1)
    rig.spin_until(lambda: np.allclose(rig.targets[-1][1], 0.75), 5, "the PD after the release")
    rig.states_on = False  # no readings: no PD, zero torque
    rig.spin_until(lambda: np.all(rig.targets[-1][1] == 0.0), 3, "zero torque on stale states")
    rig.spin_until(lambda: rig.diag_has(DiagnosticStatus.ERROR, "no fresh joint states"), 3,
                   "ERROR on stale states")  # fmt: skip
    first = len(rig.targets)
    rig.spin_for(0.3)
    assert len(rig.targets) - first >= 10 and all(np.all(t == 0.0) for _, t in rig.targets[first:])


class PowerSwitch:
    """The hardware interface's motor power service (std_srvs/SetBool), in the probe."""

    def __init__(self, rig: Rig, name: str = "motor_power") -> None:
        from std_srvs.srv import SetBool

        self.calls: list[bool] = []
        self.refuse = {True: 0, False: 0}  # refusals still to give, per direction
        self.service = rig.node.create_service(SetBool, f"{rig.ns}/{name}", self._on_call)

    def _on_call(self, req, res):
        self.calls.append(bool(req.data))
        if self.refuse[bool(req.data)] > 0:
            self.refuse[bool(req.data)] -= 1
            res.success, res.message = False, "board fault"
        else:
            res.success = True
        return res


def power_rig(tmp_path: Path, tag: str, **params: object) -> Rig:
    params = {"power_service": "motor_power", "watchdog_action": "disable", **params}
    return Rig(f"/hw_minitaur_{tag}_{os.getpid()}", tmp_path / "driver.log", params)


def test_a_refused_power_switch_is_reported_and_asked_again(tmp_path):
    """The hardware's motor power service may refuse (a driver board fault). Motors off
    that did not happen must not be taken as done: reported, and asked again."""
    r = power_rig(tmp_path, "power")
    power = PowerSwitch(r)
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        # At start the power state is unknown (a driver restarted after its own shutdown
        # switched it off): it is switched on with the first targets.
        r.spin_until(lambda: power.calls == [True], 3, "power on at start")
        r.spin_until(lambda: r.values.get("power") == "on", 3, "power on reported")
        r.running(STANDING)
        power.refuse = {True: 2, False: 2}
        r.policy = None  # the watchdog switches the motors off
        r.spin_until(lambda: r.mode() == "disabled", 3, "the watchdog")
        r.spin_until(lambda: power.calls.count(False) >= 3, 5, "power off, asked until accepted")
        r.spin_until(lambda: r.diag_has(DiagnosticStatus.ERROR, "refused motors off"), 3,
                     "the refusal reported")  # fmt: skip
        r.spin_for(0.3)
        assert power.calls.count(False) == 3  # accepted: not asked again
        assert r.values["power"] == "off"
        r.running(STANDING)  # and back on, through the same refusals
        r.spin_until(lambda: power.calls.count(True) >= 4, 5, "power on, asked until accepted")
        r.spin_for(0.3)
        assert power.calls.count(True) == 4 and power.calls[-1] is True
    finally:
        r.close()


def test_an_estop_cuts_the_power_while_joint_states_are_stale(tmp_path):
    """A lost link to the joint readings is when an e-stop matters most: the power goes
    off, and the log says so, without waiting for a fresh reading."""
    r = power_rig(tmp_path, "estop_stale")
    power = PowerSwitch(r)
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        r.running(STANDING)
        r.states_on = False
        r.spin_until(lambda: r.diag_has(DiagnosticStatus.ERROR, "no fresh joint states"), 3,
                     "ERROR on stale states")  # fmt: skip
        assert power.calls[-1] is True
        r.pub_estop.publish(Bool(data=True))
        r.spin_until(lambda: power.calls[-1] is False, 3, "power off on the e-stop")
        r.spin_until(lambda: "-> estop: e-stop (topic)" in r.log.read_text(), 3,
                     "the e-stop in the log")  # fmt: skip
        r.spin_until(lambda: r.values.get("power") == "off", 3, "power off reported")
    finally:
        r.close()


@pytest.mark.parametrize("service", ["accepts", "refuses", "absent"])
def test_shutdown_says_whether_the_motor_power_went_off(tmp_path, service):
    r = power_rig(tmp_path, f"shutdown_{service}")
    power = PowerSwitch(r, "motor_power" if service != "absent" else "elsewhere")
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        r.running(STANDING)
        if service == "refuses":
            power.refuse[False] = 100
        r.proc.send_signal(signal.SIGINT)
        r.spin_until(lambda: r.proc.poll() is not None, 15, "the driver's exit")
        text = r.log.read_text()
        expected = {
            "accepts": "stopped; motor power off",
            "refuses": "motor power NOT switched off: power_service refused: board fault",
            "absent": "motor power NOT switched off: power_service is not available",
        }[service]
        assert expected in text, text
        if service != "absent":
            assert power.calls[-1] is False
    finally:
        r.close()


@pytest.mark.parametrize(
    "params",
    [{"rate_hz": 10.0},  # a goal could lead the measured angle by 2 rad
     {"command_interface": "effort", "kp": 0.0}],  # "running" with no torque: a collapse
)  # fmt: skip
def test_unsafe_settings_are_refused_at_start(tmp_path, params):
    cmd = [sys.executable, "-m", "sac_ros.nodes.minitaur_driver_node", "--ros-args"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    name = next(k for k in params if k != "command_interface")
    assert name in out.stderr + out.stdout, out.stderr[-2000:]


def test_a_power_service_that_never_answers_is_reported_and_asked_again(tmp_path):
    r = power_rig(tmp_path, "power_silent")
    # Served by a node nobody spins: the requests arrive and are never answered.
    silent = rclpy.create_node("hung_power_board", context=r.context)
    from std_srvs.srv import SetBool

    silent.create_service(SetBool, f"{r.ns}/motor_power", lambda req, res: res)
    try:
        r.spin_until(lambda: r.targets, 30, "the first targets")
        r.spin_until(lambda: r.values.get("power") == "switching on", 5, "power on asked")
        r.spin_until(
            lambda: r.diag_has(DiagnosticStatus.ERROR, "did not answer motors on"), 6,
            "no answer reported",
        )  # fmt: skip
        r.spin_until(lambda: r.values.get("power") == "switching on", 3, "asked again")
    finally:
        silent.destroy_node()
        r.close()
