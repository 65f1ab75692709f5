"""Start the nodes of a graph (sac_ros.graph NodeSpecs) in this process, in rclpy's default
context, each with the namespace, remappings and parameters its own process would get.
Shared by test_monitoring.py and test_live_parameters.py."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rclpy
import yaml
from rclpy.node import Node

from sac_ros.graph import NodeSpec


def node_class(spec: NodeSpec) -> type[Node]:
    """The one rclpy Node class the spec's module defines."""
    module = importlib.import_module(spec.module)
    found = [
        c for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, Node) and c.__module__ == module.__name__
    ]  # fmt: skip
    assert len(found) == 1, (spec.module, found)
    return found[0]


def in_process_args(specs: list[NodeSpec], params: Path) -> list[str]:
    """ROS arguments that give each node (names unique) its namespace, remappings and
    parameters, as its own process's command line would (files first, then its own)."""
    own = {f"{s.namespace}/{s.name}": {"ros__parameters": s.parameters} for s in specs}
    params.write_text(yaml.safe_dump(own))
    args = ["--ros-args"]
    for f in dict.fromkeys(f for s in specs for f in s.params_files):
        args += ["--params-file", f]
    args += ["--params-file", str(params)]
    for s in specs:
        if s.namespace:
            args += ["-r", f"{s.name}:__ns:={s.namespace}"]
        args += [x for src, dst in s.remappings for x in ("-r", f"{s.name}:{src}:={dst}")]
    return args


@contextmanager
def in_process(specs: list[NodeSpec], tmp: Path) -> Iterator[tuple[Node, list[Node]]]:
    """(a probe node, the graph's nodes in the order of ``specs``); each node's close()
    (where it has one) runs before it is destroyed."""
    assert len({s.name for s in specs}) == len(specs), "node-specific rules need unique names"
    rclpy.init(args=in_process_args(specs, tmp / "params.yaml"))
    nodes: list[Node] = []
    try:
        for s in specs:
            nodes.append(node_class(s)())
        yield rclpy.create_node("in_process_probe"), nodes
    finally:
        for n in reversed(nodes):
            close = getattr(n, "close", None)
            if callable(close):
                close()
            n.destroy_node()
        rclpy.shutdown()
