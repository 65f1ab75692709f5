"""spin_node, the loop every node process runs: a bug in a callback stops the process
with a failed status and its traceback, but after the node's close() (a learner's final
checkpoint, a driver's torque off), as SIGINT would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

SCRIPT = textwrap.dedent(
    """
    import sys
    from rclpy.node import Node
    from sac_ros.nodes.common import spin_node

    class Buggy(Node):
        def __init__(self):
            super().__init__("buggy")
            self.ticks = 0
            self.create_timer(0.05, self.tick)

        def tick(self):
            self.ticks += 1
            if self.ticks == 3:
                raise KeyError("a bug in a callback")

        def close(self):
            print(f"closed after {self.ticks} ticks", flush=True)

    spin_node(Buggy, ["buggy"])
    """
)


def test_a_callback_error_closes_the_node_then_fails_the_process():
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "closed after 3 ticks" in done.stdout, done.stdout + done.stderr
    assert "stopping on an unexpected error: KeyError('a bug in a callback')" in done.stderr
    assert "Traceback" in done.stderr and "KeyError" in done.stderr.splitlines()[-1]
