"""Run a real process graph (sac_ros.graph + sac_ros.launcher) and watch it from a probe
node over DDS on loopback. Shared by the end-to-end tests and the graph benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from sac_ros.graph import NodeSpec, build_graph, robot_namespaces
from sac_ros.launcher import GraphProcesses
from sac_ros.nodes.common import COMMAND_QOS, SENSOR_QOS

# Small networks so a learner keeps up on two shared cores.
TINY_LEARNER = {
    "hidden": [64, 64],
    "batch_size": 64,
    "warmup": 200,
    "publish_every": 100,
    "checkpoint_every": 5.0,
    "torch_threads": 1,
}


class GraphRun:
    def __init__(
        self,
        tmp: Path,
        robot: str = "dclaw",
        obs: str = "state",
        robots: int = 1,
        learner: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        watch_commands: bool = False,
    ) -> None:
        self.tmp = tmp
        self.run_dir = tmp / "run"
        self.namespaces = robot_namespaces(robot, robots)
        self.nodes: list[NodeSpec] = build_graph(
            robot, "mujoco", obs,
            namespaces=self.namespaces,
            run_dir=str(self.run_dir),
            extra={
                "learner": {**TINY_LEARNER, **(learner or {})},
                "policy": {"drain_timeout": 20.0, **(policy or {})},
            },
        )  # fmt: skip
        for spec in self.nodes:
            if spec.name == "policy":
                spec.parameters["stats_file"] = str(self.stats_path(spec.namespace))
        self.graph = GraphProcesses(self.nodes, log_dir=tmp / "logs")
        self.diag: dict[str, dict[str, str]] = {}
        self.commands: list[tuple[float, np.ndarray]] = []
        self.positions: list[tuple[float, np.ndarray]] = []
        self.watch_commands = watch_commands

    def stats_path(self, ns: str) -> Path:
        return self.tmp / f"policy{ns.replace('/', '_')}.json"

    def __enter__(self) -> GraphRun:
        rclpy.init()
        self.node = rclpy.create_node("e2e_probe")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        if self.watch_commands:
            ns = self.namespaces[0]
            self.node.create_subscription(
                Float64MultiArray, f"{ns}/joint_position_controller/commands",
                lambda m: self.commands.append((time.monotonic(), np.array(m.data))),
                COMMAND_QOS,
            )  # fmt: skip
            self.node.create_subscription(
                JointState, f"{ns}/joint_states",
                lambda m: self.positions.append((time.monotonic(), np.array(m.position))),
                SENSOR_QOS,
            )  # fmt: skip
        self.graph.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.graph.running:
            self.graph.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            # "sac_ros: policy (/dclaw/policy)" -> "/dclaw/policy"
            key = s.name.rsplit("(", 1)[-1].rstrip(")")
            self.diag[key] = {kv.key: kv.value for kv in s.values}

    def value(self, node: str, key: str, default: float = 0.0) -> float:
        try:
            return float(self.diag.get(node, {}).get(key, default))
        except ValueError:
            return default

    def spin_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            dead = self.graph.poll_dead()
            if dead:
                r, code = dead[0]
                raise AssertionError(f"{r.label} died ({code}):\n{self.graph.log_tail(r)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; diagnostics: {self.diag}")
            self.executor.spin_once(timeout_sec=0.05)

    def published(self, ns: str) -> float:
        return self.value(f"{ns}/policy", "transitions_published")

    def stop(self) -> dict[str, int]:
        return self.graph.stop()

    def policy_stats(self, ns: str) -> dict[str, Any]:
        return json.loads(self.stats_path(ns).read_text())

    def learner_checkpoint(self) -> dict[str, Any]:
        ckpt = self.run_dir / "checkpoint"
        folder = json.loads((ckpt / "manifest.json").read_text())["folder"]
        return json.loads((ckpt / folder / "learner.json").read_text())
