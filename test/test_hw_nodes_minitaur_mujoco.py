"""minitaur_driver_node in front of the MuJoCo sim node, both real processes over DDS.

The sim node stands in for ros2_control: remapped, it takes the driver's forward
controller commands (torques in effort mode, angles in position mode) and publishes
``joint_state_broadcaster/joint_states`` and ``imu``. The probe plays the policy (a
constant target on ``joint_position_controller/commands``) and watches what the driver
sends and the motor angles it republishes on ``joint_states``.
"""

from __future__ import annotations

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
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]

# sac_ros.robots.minitaur, written out: zero swing, extension 1.4 (the driver's crouch)
# and 2.0 (standing), every motor angle equal to the extension.
CROUCH = np.full(8, 1.4)
STANDING = np.full(8, 2.0)
# Measured (README): the motors sag under the body's weight by up to 0.07 rad (crouch)
# and 0.10 rad (standing) with the default kp, in both modes.
TOLERANCE = 0.15  # rad
MAX_TORQUE = 5.0  # N m: below the motors' 5.7, so the driver's clip is what holds it
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
SLOW_MACHINE = {"max_state_age": 0.5, "max_imu_age": 0.5}  # two loaded, shared cores
STATES = ("-r", "joint_states:=joint_state_broadcaster/joint_states")


class Bench:
    """A probe node and the processes under test, in namespace ``ns``."""

    def __init__(self, ns: str, logs: Path) -> None:
        self.ns, self.logs = ns, logs
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("minitaur_bench", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.procs: dict[str, subprocess.Popen] = {}
        self.policy: np.ndarray | None = None
        self.states: list[tuple[float, np.ndarray, np.ndarray]] = []  # (t, angles, efforts)
        self.sent: list[np.ndarray] = []  # what the driver sent to the motor controller
        self.values: dict[str, str] = {}
        self.pub_policy = self.node.create_publisher(
            Float64MultiArray, f"{ns}/joint_position_controller/commands", COMMAND_QOS
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def watch_states(self, topic: str = "joint_states") -> None:
        self.node.create_subscription(
            JointState, f"{self.ns}/{topic}", self._on_state, qos_profile_sensor_data
        )

    def watch_motor_commands(self, topic: str) -> None:
        self.node.create_subscription(
            Float64MultiArray, f"{self.ns}/{topic}", lambda m: self.sent.append(np.array(m.data)),
            100,
        )  # fmt: skip

    def _on_state(self, msg: JointState) -> None:
        self.states.append((time.monotonic(), np.array(msg.position), np.array(msg.effort)))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if f"{self.ns}/minitaur_driver" in s.name:
                self.values = {kv.key: kv.value for kv in s.values}

    def start(self, name: str, module: str, params: dict[str, object], *ros_args: str) -> None:
        cmd = [sys.executable, "-m", f"sac_ros.nodes.{module}", "--ros-args",
               "-r", f"__ns:={self.ns}", *ros_args]  # fmt: skip
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        with open(self.logs / f"{name}.log", "a") as out:
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {name}\n{(self.logs / f'{name}.log').read_text()[-2000:]}" for name in self.procs
        )

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        next_command = 0.0
        while not condition():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.values}\n"
                                     f"{self.logs_tail()}")  # fmt: skip
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited:\n{self.logs_tail()}")
            if self.policy is not None and now >= next_command:  # a policy at 50 Hz
                self.pub_policy.publish(Float64MultiArray(data=[float(v) for v in self.policy]))
                next_command = now + 0.02
            self.executor.spin_once(timeout_sec=0.005)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() > end, seconds + 5, "time")

    def call(self, service: str) -> Trigger.Response:
        client = self.node.create_client(Trigger, f"{self.ns}/{service}")
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        self.spin_until(future.done, 10.0, f"the answer of {service}")
        return future.result()

    def set_double(self, node: str, name: str, value: float) -> bool:
        client = self.node.create_client(SetParameters, f"{self.ns}/{node}/set_parameters")
        assert client.wait_for_service(timeout_sec=10.0)
        value_msg = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        future = client.call_async(
            SetParameters.Request(parameters=[Parameter(name=name, value=value_msg)])
        )
        self.spin_until(future.done, 10.0, f"setting {name}")
        return future.result().results[0].successful

    def worst_error(self, target: np.ndarray, seconds: float) -> float:
        """The largest |angle - target| of any motor in the readings of the last ``seconds``."""
        since = time.monotonic() - seconds
        recent = [q for t, q, _ in self.states if t >= since]
        assert len(recent) > 10, f"only {len(recent)} readings in {seconds} s"
        return float(max(np.max(np.abs(q - target)) for q in recent))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def bench(tmp_path, request):
    b = Bench(f"/minitaur_mj_{os.getpid()}_{request.node.name[-12:].replace('-', '_')}", tmp_path)
    try:
        yield b
    finally:
        b.close()


def stand_and_crouch(bench: Bench) -> dict[str, float]:
    """The policy asks for a crouch, then for standing; the worst tracking error of each
    over the last 0.5 s of 2.5 s."""
    bench.policy = CROUCH
    bench.spin_until(lambda: bench.values.get("mode") == "running" and len(bench.states) > 10,
                     40, "the driver running, readings republished")  # fmt: skip
    assert bench.call("sim/place_upright").success  # whatever the start-up did to it
    errors = {}
    for name, target in (("crouch", CROUCH), ("standing", STANDING)):
        bench.policy = target
        bench.spin_for(2.5)
        errors[name] = bench.worst_error(target, 0.5)
        assert bench.values.get("mode") == "running", bench.values
    print(f"worst tracking errors (rad): {errors}")
    return errors


def test_effort_mode_the_drivers_pd_stands_the_mujoco_minitaur(bench):
    bench.watch_states()
    bench.watch_motor_commands("forward_effort_controller/commands")
    bench.start("mujoco_sim", "mujoco_sim_node",
                {"robot": "minitaur", "mode": "realtime", "command_interface": "effort",
                 "control_rate_hz": 250.0},  # 4 ms: the PD's loop needs a short delay
                "-r", "joint_position_controller/commands:=forward_effort_controller/commands",
                *STATES)  # fmt: skip
    bench.start("minitaur_driver", "minitaur_driver_node",
                {"command_interface": "effort", "max_torque": MAX_TORQUE, "rate_hz": 100.0,
                 "diagnostics_period": 0.1, **SLOW_MACHINE})  # fmt: skip
    errors = stand_and_crouch(bench)
    assert errors["crouch"] < TOLERANCE and errors["standing"] < TOLERANCE
    sent = np.array(bench.sent)
    assert len(sent) > 500 and sent.shape[1] == 8
    assert np.max(np.abs(sent)) <= MAX_TORQUE
    assert np.max(np.abs(sent)) > 1.0  # it did carry the body
    applied = np.array([e for _, _, e in bench.states])  # the sim's motor torques
    assert np.max(np.abs(applied)) <= MAX_TORQUE + 1e-9
    assert bench.values["kp"] != "n/a" and float(bench.values["max_torque"]) == MAX_TORQUE
    assert int(bench.values["pd_ticks"]) > 500


def test_position_mode_the_mujoco_servos_track_the_drivers_targets(bench):
    bench.watch_states()
    bench.watch_motor_commands("forward_position_controller/commands")
    bench.start("mujoco_sim", "mujoco_sim_node", {"robot": "minitaur", "mode": "realtime"},
                "-r", "joint_position_controller/commands:=forward_position_controller/commands",
                *STATES)  # fmt: skip
    bench.start("minitaur_driver", "minitaur_driver_node",
                {"rate_hz": 100.0, "diagnostics_period": 0.1, **SLOW_MACHINE})  # fmt: skip
    errors = stand_and_crouch(bench)
    assert errors["crouch"] < TOLERANCE and errors["standing"] < TOLERANCE
    sent = np.array(bench.sent)
    assert np.all(sent >= 0.5) and np.all(sent <= 3.1)  # angles inside the limits
    assert np.allclose(sent[-1], STANDING)
    assert bench.values["kp"].startswith("n/a")


def test_a_live_stall_timeout_change_takes_effect(bench):
    bench.watch_states()  # lockstep and no commands: only the stall republishes
    bench.start("mujoco_sim", "mujoco_sim_node", {"robot": "minitaur", "stall_timeout": 0.5})

    def gaps(seconds: float) -> np.ndarray:
        first = len(bench.states)
        bench.spin_for(seconds)
        times = [t for t, _, _ in bench.states[first:]]
        return np.diff(times)

    bench.spin_until(lambda: len(bench.states) >= 2, 30, "republished readings")
    slow = gaps(2.0)
    assert len(slow) >= 1 and np.min(slow) > 0.4, slow
    assert bench.set_double("mujoco_sim", "stall_timeout", 0.1)
    bench.spin_for(0.3)
    fast = gaps(1.5)
    assert len(fast) >= 6 and np.max(fast) < 0.3, fast
