"""rqt_reconfigure's view of the policy, reward and learner nodes, over the real parameter
services (rcl_interfaces ListParameters, DescribeParameters, SetParameters).

The live parameters, and only they, are writable, described, and ranged where numeric;
setting one changes what the node acts on; a read-only one or a value out of its range
is refused and changes nothing. The nodes are the D'Claw lockstep graph's, started in
this process with the graph's own parameters.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess_graph import in_process
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from sac_ros.graph import build_graph
from sac_ros.nodes.common import COMMAND_QOS, EVENT_QOS, LOCKSTEP_SENSOR_QOS
from sac_ros.robots import dclaw
from sac_ros.runtime.delivery import Ack

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]

# node -> live parameter -> (a new value, where the node keeps what it acts on)
LIVE: dict[str, dict[str, tuple[Any, Callable[[Any], Any]]]] = {
    "policy": {
        "deterministic": (True, lambda n: n.runner.deterministic),
        "smoothing": (0.5, lambda n: n.runner.noise.coefficient),
        "max_sensor_age": (0.5, lambda n: n.max_age),
        "send_batch": (7, lambda n: n.send_batch),
        "max_learner_backlog": (3.0, lambda n: n.max_backlog),
    },
    "reward": {"max_sensor_age": (0.5, lambda n: n.max_age)},
    "learner": {
        "utd_ratio": (2.0, lambda n: n.core.utd_ratio),
        "paused": (True, lambda n: n.core.paused),
        "checkpoint_every": (42.0, lambda n: n.core.checkpoint_every),
        "publish_every": (13, lambda n: n.core.publish_every),
    },
}
# rclpy's own: use_sim_time stays writable (rclpy switches the clock live).
RCLPY_OWN = {"use_sim_time", "start_type_description_service"}
NUMERIC = (ParameterType.PARAMETER_INTEGER, ParameterType.PARAMETER_DOUBLE)
# node -> (a read-only parameter, a value), (a live parameter, a value out of its range)
REFUSED = {
    "policy": (("episode_steps", 5), ("smoothing", 1.5)),
    "reward": (("target_angle", 1.0), ("max_sensor_age", 0.0)),
    "learner": (("lr", 0.1), ("utd_ratio", 0.0)),
}


class Graph:
    """The nodes, a client node asking their parameter services, and one executor."""

    def __init__(self, probe: Node, nodes: list[Node]) -> None:
        self.probe = probe
        self.nodes = {n.get_name(): n for n in nodes}
        self.executor = SingleThreadedExecutor()
        for n in [probe, *nodes]:
            self.executor.add_node(n)
        self.clients = {
            name: AsyncParameterClient(probe, n.get_fully_qualified_name())
            for name, n in self.nodes.items()
        }

    def wait(self, future: Future) -> Any:
        self.executor.spin_until_future_complete(future, timeout_sec=10.0)
        assert future.done(), "no answer from the parameter service"
        return future.result()

    def spin_until(self, done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def descriptors(self, node: str) -> dict[str, ParameterDescriptor]:
        client = self.clients[node]
        names = list(self.wait(client.list_parameters()).result.names)
        return {d.name: d for d in self.wait(client.describe_parameters(names)).descriptors}

    def set(self, node: str, name: str, value: Any) -> bool:
        result = self.wait(self.clients[node].set_parameters([Parameter(name, value=value)]))
        return result.results[0].successful


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graph]:
    tmp: Path = tmp_path_factory.mktemp("live")
    specs = build_graph(
        "dclaw", "mujoco", run_dir=str(tmp / "run"),
        extra={"learner": {"hidden": [16, 16], "warmup": 10}},
    )  # fmt: skip
    specs = [s for s in specs if s.name in LIVE]
    with in_process(specs, tmp) as (probe, nodes):
        g = Graph(probe, nodes)
        yield g
        g.executor.shutdown()


def _in_range(d: ParameterDescriptor, value: float) -> bool:
    ranges = list(d.floating_point_range) + list(d.integer_range)
    return len(ranges) == 1 and ranges[0].from_value <= value <= ranges[0].to_value


@pytest.mark.parametrize("node", sorted(LIVE))
def test_live_parameters_are_writable_described_and_ranged_the_rest_read_only(graph, node):
    descriptors = graph.descriptors(node)
    writable = {name for name, d in descriptors.items() if not d.read_only}
    assert writable - RCLPY_OWN == set(LIVE[node])
    for name, d in descriptors.items():
        if name in RCLPY_OWN:
            continue
        assert d.description, f"{node}.{name} has no description"
        value = graph.nodes[node].get_parameter(name).value
        if d.type in NUMERIC:
            assert _in_range(d, value), f"{node}.{name}: no range around {value}"
        else:
            assert not d.floating_point_range and not d.integer_range, f"{node}.{name}"


@pytest.mark.parametrize("node", sorted(LIVE))
def test_setting_a_live_parameter_changes_what_the_node_acts_on(graph, node):
    for name, (value, applied) in LIVE[node].items():
        assert applied(graph.nodes[node]) != value, f"{node}.{name} already {value}"
        assert graph.set(node, name, value), f"{node}.{name}:={value} refused"
        assert applied(graph.nodes[node]) == value, f"{node}.{name}:={value} not applied"
        assert graph.nodes[node].get_parameter(name).value == value


@pytest.mark.parametrize("node", sorted(REFUSED))
def test_read_only_and_out_of_range_values_are_refused(graph, node):
    n = graph.nodes[node]
    (read_only, value), (live, out_of_range) = REFUSED[node]
    before = n.get_parameter(read_only).value
    assert not graph.set(node, read_only, value)
    assert n.get_parameter(read_only).value == before
    applied = LIVE[node][live][1]
    before = applied(n)
    assert not graph.set(node, live, out_of_range)
    assert applied(n) == before and n.get_parameter(live).value == before


def test_raising_max_learner_backlog_releases_a_lockstep_step_that_waits(graph):
    """The policy waits for a learner that owes 100 updates (max 50); raising the limit
    live lets the waiting step go at once, without another reading or ack."""
    policy, probe = graph.nodes["policy"], graph.probe
    assert graph.set("policy", "max_learner_backlog", 50.0)
    commands: list[Float64MultiArray] = []
    probe.create_subscription(Float64MultiArray, "/dclaw/joint_position_controller/commands",
                              commands.append, COMMAND_QOS)  # fmt: skip
    acks = probe.create_publisher(String, "/dclaw/sac/transitions_ack", EVENT_QOS)
    readings = {
        topic: (probe.create_publisher(JointState, f"/dclaw/{topic}", LOCKSTEP_SENSOR_QOS), names)
        for topic, names in (("joint_states", dclaw.JOINT_NAMES),
                             ("valve/joint_states", [dclaw.VALVE_JOINT]))
    }  # fmt: skip
    owing = Ack("a-learner", policy.session, received=-1, durable=-1, backlog=100.0).to_json()

    def send_ack() -> bool:
        acks.publish(String(data=owing))
        return policy.outbox.learner_backlog == 100.0

    def send_readings() -> bool:
        for pub, names in readings.values():
            msg = JointState(name=list(names), position=[0.0] * len(names),
                             velocity=[0.0] * len(names))  # fmt: skip
            msg.header.stamp.sec = 1
            pub.publish(msg)
        return policy.waiting == "the learner (update backlog)"

    graph.spin_until(send_ack, "the ack")
    graph.spin_until(send_readings, "the policy to wait for the learner")
    graph.spin_for(0.5)
    assert not commands  # it still waits
    assert graph.set("policy", "max_learner_backlog", 1000.0)
    graph.spin_until(lambda: bool(commands), "the released step's command", timeout=5.0)
    assert policy.waiting == ""


@pytest.mark.parametrize(
    ("module", "parameter", "value", "refusal"),
    [
        ("reward_node", "sync", "lastest", "sync must be exact or latest"),
        ("policy_node", "tick", "fast", "tick must be lockstep or timer"),
        ("mujoco_sim_node", "mode", "turbo", "mode must be lockstep or realtime"),
        # 2.5 ms physics steps: 700 Hz would have run at 400 Hz, unsaid.
        ("mujoco_sim_node", "control_rate_hz", "700.0", "the simulation keeps: 400"),
        ("mujoco_sim_node", "control_rate_hz", "30.0", "the simulation keeps: 28.57, 30.77"),
    ],
)
def test_a_misspelt_mode_is_refused_at_start(module, parameter, value, refusal):
    """A mode parameter with a value the node does not know stops it at start, naming the
    parameter: a typo must not run the node in some third, unchecked way."""
    cmd = [sys.executable, "-m", f"sac_ros.nodes.{module}",
           "--ros-args", "-p", f"{parameter}:={value}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and refusal in out.stdout + out.stderr, out


def test_whole_numbers_reach_float_parameters_as_floats(tmp_path):
    """``-p max_sensor_age:=1`` or ``1`` in a params file: rclpy would refuse an INTEGER for
    a DOUBLE and the node would stop at start. They arrive as floats; an integer parameter
    stays an integer, and a float parameter given a text is still refused. A whole number
    for a text parameter (the camera's ``source:=0``) arrives as its digits."""
    import rclpy
    from rclpy.context import Context
    from rclpy.exceptions import InvalidParameterTypeException

    from sac_ros.nodes.common import declare

    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    control_rate_hz: 20\n    from_file: 3\n")
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(params),
                                      "-p", "stall_timeout:=1", "-p", "from_cli:=2",
                                      "-p", "count:=7", "-p", "text:=abc",
                                      "-p", "source:=0"])  # fmt: skip
    try:
        node = Node("probe_params", context=context)
        for name, expected in (("from_cli", 2.0), ("from_file", 3.0)):
            value = declare(node, name, 0.5, "a float", lo=0.0, hi=10.0)
            assert value == expected and type(value) is float, (name, value)
        assert declare(node, "count", 1, "an int", lo=0, hi=10) == 7
        with pytest.raises(InvalidParameterTypeException):
            declare(node, "text", 0.5, "a float")
        assert declare(node, "source", "/dev/video2", "a text") == "0"  # a device index
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    # A real node process given whole numbers for two float parameters runs.
    cmd = [sys.executable, "-m", "sac_ros.nodes.mujoco_sim_node", "--ros-args",
           "-r", f"__ns:=/whole_numbers_{os.getpid()}", "-p", "stall_timeout:=1",
           "-p", "control_rate_hz:=20"]  # fmt: skip
    log = tmp_path / "sim.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "spinning on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_robots_nodes_draw_from_independent_streams(graph):
    """The graph gives a robot's simulator, policy and reward nodes one seed: their random
    streams must still differ (the simulator's first valve angle was the reward node's first
    reset angle, and the policy's first warm-up action drew the same numbers)."""
    import numpy as np

    from sac_ros.tasks import dclaw_valve

    policy, reward = graph.nodes["policy"], graph.nodes["reward"]
    seed = policy.get_parameter("seed").value
    assert reward.get_parameter("seed").value == seed
    fresh = [np.random.default_rng(seed)]  # the simulator's (sac_ros.sim.robots)
    for rng in (policy.runner.rng, reward.rng):
        fresh.append(np.random.default_rng(rng.bit_generator.seed_seq))
    firsts = [dclaw_valve.sample_initial_angle(g) for g in fresh]
    assert len({round(a, 9) for a in firsts}) == 3, firsts
