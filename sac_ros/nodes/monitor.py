"""The ``sac-ros train`` command's window into the graph: episodes and learner statistics.

Subscribes ``{ns}/sac/episode`` of every robot and ``sac/learner_stats``; keeps the
latest values for the progress bar and hands finished episodes to a RunRecord.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from sac_ros.nodes.common import EPISODE_QOS


def labeled_values(msg: Float64MultiArray) -> dict[str, float]:
    """A Float64MultiArray whose single dimension's label names the values."""
    if not msg.layout.dim:
        return {}
    names = msg.layout.dim[0].label.split(",")
    return dict(zip(names, msg.data, strict=False))


class Monitor(Node):
    def __init__(
        self,
        namespaces: list[str],
        on_episode: Callable[[str, list[float], float], None],
    ) -> None:
        super().__init__("sac_ros_monitor")
        self.learner: dict[str, float] = {}
        self.learner_seen = 0.0
        for ns in namespaces:
            self.create_subscription(
                Float64MultiArray,
                f"{ns}/sac/episode",
                lambda m, ns=ns: on_episode(ns, list(m.data), time.monotonic()),
                EPISODE_QOS,
            )
        self.create_subscription(Float64MultiArray, "/sac/learner_stats", self._on_stats, 10)

    def _on_stats(self, msg: Float64MultiArray) -> None:
        self.learner = labeled_values(msg)
        self.learner_seen = time.monotonic()
