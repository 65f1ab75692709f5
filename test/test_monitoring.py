"""What `sac-ros graph` lists is what the nodes create, and every node is monitored.

sac_ros.graph.ENDPOINTS is the one table of each node kind's topics and services; the
nodes create theirs on their own. So the real nodes are started, every robot-side graph
in one process each (plus a learner fed by two robots) and the D'Claw lockstep MuJoCo
graph as processes, and the graph API's answer (publishers, subscribers, services and
clients per node, rclpy's own left out) must equal ``endpoints(spec)``. The same runs
check /diagnostics: every node publishes a status with a hardware_id and key/values,
whose name exactly one analyzer of config/diagnostic_aggregator.yaml matches.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from graph_harness import GraphRun
from inprocess_graph import in_process
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from sac_ros.graph import (
    CALLS,
    ENDPOINTS,
    PUBLISHES,
    SERVES,
    SUBSCRIBES,
    NodeSpec,
    build_graph,
    combinations,
    describe,
    endpoints,
)

ROOT = Path(__file__).resolve().parents[1]
AGGREGATOR = ROOT / "config" / "diagnostic_aggregator.yaml"
RCLPY_TOPICS = {"/rosout", "/parameter_events"}
RCLPY_PACKAGES = {"rcl_interfaces", "type_description_interfaces", "lifecycle_msgs"}
Endpoints = set[tuple[str, str, str]]


# --- the analyzers --------------------------------------------------------------------
def analyzers() -> dict[str, dict[str, Any]]:
    params = yaml.safe_load(AGGREGATOR.read_text())["analyzers"]["ros__parameters"]
    return {k: v for k, v in params.items() if isinstance(v, dict)}


def _listed(analyzer: dict[str, Any], key: str) -> list[str]:
    value = analyzer.get(key, [])
    return [value] if isinstance(value, str) else list(value)


def matches(analyzer: dict[str, Any], name: str) -> bool:
    """diagnostic_aggregator's GenericAnalyzer::match on a status name."""
    return (
        name in _listed(analyzer, "name") + _listed(analyzer, "expected")
        or any(name.startswith(p) for p in _listed(analyzer, "startswith"))
        or any(c in name for c in _listed(analyzer, "contains"))
        or any(re.fullmatch(r, name) for r in _listed(analyzer, "regex"))
    )


def analyzer_paths(name: str) -> list[str]:
    return [a["path"] for a in analyzers().values() if matches(a, name)]


def test_aggregator_config_is_generic_analyzers_with_a_path_and_a_rule():
    found = analyzers()
    assert {a["path"] for a in found.values()} == {
        "Policy", "Learner", "Reward", "Simulation", "Drivers", "Camera",
    }  # fmt: skip
    for key, a in found.items():
        assert a["type"] == "diagnostic_aggregator/GenericAnalyzer", key
        rules = ("name", "expected", "startswith", "contains", "regex")
        assert any(_listed(a, r) for r in rules), key


def test_the_matcher_tells_node_kinds_apart():
    assert analyzer_paths("sac_ros: policy (/dclaw_1/policy)") == ["Policy"]
    assert analyzer_paths("sac_ros: minitaur_driver (/minitaur/minitaur_driver)") == ["Drivers"]
    assert analyzer_paths("sac_ros: policy_x (/dclaw/policy_x)") == []
    assert analyzer_paths("other: policy (/dclaw/policy)") == []


# --- what the graph API says a node created -------------------------------------------
def _rclpy_own(name: str, interface_type: str, node_fqn: str) -> bool:
    """/rosout, /parameter_events, and what rclpy gives every node (parameter and type
    description services) or every lifecycle node (its state services and events)."""
    return name in RCLPY_TOPICS or (
        name.startswith(f"{node_fqn}/") and interface_type.split("/")[0] in RCLPY_PACKAGES
    )


def created(probe: Node, spec: NodeSpec) -> Endpoints:
    """Endpoints of ``spec``'s node and its helper nodes (``<name>_*``, e.g. the reward
    node's ``reward_reset``), rclpy's own left out."""
    ns = spec.namespace or "/"
    queries: list[tuple[str, Callable[[str, str], list]]] = [
        (PUBLISHES, probe.get_publisher_names_and_types_by_node),
        (SUBSCRIBES, probe.get_subscriber_names_and_types_by_node),
        (SERVES, probe.get_service_names_and_types_by_node),
        (CALLS, probe.get_client_names_and_types_by_node),
    ]
    found: Endpoints = set()
    for node, node_ns in probe.get_node_names_and_namespaces():
        if node_ns != ns or not (node == spec.name or node.startswith(spec.name + "_")):
            continue
        fqn = f"{spec.namespace}/{node}"
        for role, query in queries:
            for name, types in query(node, node_ns):
                found |= {(role, name, t) for t in types if not _rclpy_own(name, t, fqn)}
    return found


def _installed(interface_type: str) -> bool:
    return importlib.util.find_spec(interface_type.split("/")[0]) is not None


def listed(spec: NodeSpec) -> Endpoints:
    """What `sac-ros graph` lists for ``spec``, less the interfaces whose packages are
    not installed here (the Gazebo adapter's controller_manager and gz services)."""
    return {e for e in endpoints(spec) if _installed(e[2])}


def assert_same_endpoints(probe: Node, specs: list[NodeSpec], timeout: float) -> None:
    """Discovery takes a while between processes: wait until the answers agree."""
    deadline = time.monotonic() + timeout
    while True:
        differ = {
            f"{s.namespace}/{s.name}": (sorted(listed(s) - got), sorted(got - listed(s)))
            for s in specs
            if (got := created(probe, s)) != listed(s)
        }
        if not differ or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not differ, "node: (listed, not created), (created, not listed):\n" + "\n".join(
        f"{k}: {v}" for k, v in differ.items()
    )


# --- diagnostics ----------------------------------------------------------------------
class StatusWatch:
    """The latest DiagnosticStatus per node (the full name in parentheses)."""

    def __init__(self, node: Node) -> None:
        self.latest: dict[str, DiagnosticStatus] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            self.latest[s.name.rsplit("(", 1)[-1].rstrip(")")] = s

    def has_all(self, specs: list[NodeSpec]) -> bool:
        return all(f"{s.namespace}/{s.name}" in self.latest for s in specs)


def assert_monitored(watch: StatusWatch, specs: list[NodeSpec]) -> None:
    for s in specs:
        fqn = f"{s.namespace}/{s.name}"
        status = watch.latest[fqn]
        assert status.hardware_id, fqn
        assert status.values and all(kv.key for kv in status.values), fqn
        assert len(analyzer_paths(status.name)) == 1, (status.name, analyzer_paths(status.name))


# --- every graph in one process -------------------------------------------------------
def robot_side(robot: str, sim: str, obs: str, tmp: Path) -> list[NodeSpec]:
    """The robot's nodes (the learner is checked apart: it needs no robot of its own).
    The graph is built with its learner, so a lockstep policy waits for it and idles."""
    nodes = build_graph(
        robot, sim, obs, run_dir=str(tmp / "run"), port=str(tmp / "no_port"),
        extra={"camera": {"source": str(tmp / "no_camera.mp4"), "open_timeout": 0.1}},
    )  # fmt: skip
    return [n for n in nodes if n.role == "robot"]


def learner_of_two_robots(tmp: Path) -> list[NodeSpec]:
    return build_graph(
        "dclaw", "mujoco", namespaces=["/dclaw_0", "/dclaw_1"], robot_side=False,
        run_dir=str(tmp / "run"), extra={"learner": {"hidden": [16, 16], "warmup": 10}},
    )  # fmt: skip


CASES = {
    f"{r}-{s}-{o}": (lambda tmp, c=(r, s, o): robot_side(*c, tmp)) for r, s, o in combinations()
}
CASES["learner-two-robots"] = learner_of_two_robots


def test_the_cases_start_every_node_kind(tmp_path):
    kinds = {s.executable for make in CASES.values() for s in make(tmp_path)}
    assert kinds == set(ENDPOINTS)


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(CASES))
def test_nodes_create_what_the_graph_lists_and_are_monitored(case, tmp_path):
    specs = CASES[case](tmp_path)
    with in_process(specs, tmp_path) as (probe, nodes):
        watch = StatusWatch(probe)
        executor = SingleThreadedExecutor()
        for n in [probe, *nodes]:
            executor.add_node(n)
        try:
            assert_same_endpoints(probe, specs, timeout=2.0)
            deadline = time.monotonic() + 15
            while not watch.has_all(specs) and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        finally:
            executor.shutdown()
        assert watch.has_all(specs), sorted(watch.latest)
        assert_monitored(watch, specs)


# --- the D'Claw lockstep graph as processes --------------------------------------------
@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_process_graph_creates_what_sac_ros_graph_lists_and_is_monitored(tmp_path):
    with GraphRun(tmp_path, "dclaw", "state") as run:
        watch = StatusWatch(run.node)
        run.spin_until(lambda: watch.has_all(run.nodes), 90, "every node's /diagnostics")
        assert_monitored(watch, run.nodes)
        assert_same_endpoints(run.node, run.nodes, timeout=30.0)
        run.stop()


def test_sac_ros_graph_lists_each_nodes_topics_and_services_under_it():
    nodes = build_graph("minitaur", "gazebo", namespaces=["/m_1"])
    text = describe(nodes)
    for spec in nodes:
        block = text.split(f"{spec.namespace}/{spec.name}  (", 1)[1].split("\n/", 1)[0]
        for role, name, kind in endpoints(spec):
            assert f"{role:<10} {name}  [{kind}]" in block, (spec.name, name)
    assert "subscribes /clock  [rosgraph_msgs/msg/Clock]" in text  # use_sim_time in Gazebo
    assert "calls      /world/sac_ros_arena/set_pose  [ros_gz_interfaces/srv/SetEntityPose]" \
        in text  # fmt: skip


def test_topic_parameters_come_from_the_params_files_the_node_gets(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "/**/minitaur_driver:\n  ros__parameters:\n    controller_topic: hw/cmd\n"
        "minitaur_1:\n  minitaur_driver:\n    ros__parameters:\n      power_service: /hw/power\n"
        "/other/minitaur_driver:\n  ros__parameters:\n    imu_topic: not/mine\n"
    )
    nodes = build_graph("minitaur", "none", namespaces=["/minitaur_1"], params_file=str(mine))
    (driver,) = [n for n in nodes if n.name == "minitaur_driver"]
    listed = endpoints(driver)
    assert (PUBLISHES, "/minitaur_1/hw/cmd", "std_msgs/msg/Float64MultiArray") in listed
    assert (CALLS, "/hw/power", "std_srvs/srv/SetBool") in listed
    assert (SUBSCRIBES, "/minitaur_1/imu", "sensor_msgs/msg/Imu") in listed


def test_a_problem_found_while_gathering_the_values_is_in_that_same_status():
    """A node reports some problems from its values callback (the learner: training
    stopped, a checkpoint failed): the status published then must already say so, not
    the one after."""
    import rclpy

    from sac_ros.nodes.common import ERROR, Diagnostics

    rclpy.init()
    node = rclpy.create_node("diag_order")
    try:
        diag = Diagnostics(node, "learner")

        def values() -> dict[str, int]:
            diag.problem("training", ERROR, "training stopped at update 5")
            return {"updates": 5}

        diag.values_from(values)
        diag.publish()
        assert diag._status.level == ERROR and "training stopped" in diag._status.message
    finally:
        node.destroy_node()
        rclpy.shutdown()


def test_a_learner_topic_for_the_root_namespace_is_absolute():
    from sac_ros.nodes.learner_node import topic

    assert topic("/", "sac/transitions") == "/sac/transitions"
    assert topic("/r1", "sac/transitions") == "/r1/sac/transitions"
    assert topic("/r1/", "sac/transitions") == "/r1/sac/transitions"
    assert topic("", "sac/transitions") == "sac/transitions"  # the node's own namespace
