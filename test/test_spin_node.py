"""spin_node, the loop every node process runs: a bug in a callback stops the process
with a failed status and its traceback, but after the node's close() (a learner's final
checkpoint, a driver's torque off), as SIGINT would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

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


BUSY = textwrap.dedent(
    """
    from rclpy.node import Node
    from sac_ros.nodes.common import spin_node

    class Busy(Node):
        def __init__(self):
            super().__init__("busy")
            self.create_timer(0.001, lambda: sum(range(2000)))

        def close(self):
            print("closed", flush=True)

    print("ready", flush=True)
    spin_node(Busy, ["busy"])
    """
)


def test_a_burst_of_signals_stops_the_node_and_never_hangs_it():
    # A launcher and a dying parent (PR_SET_PDEATHSIG) can both signal a node, and a
    # user may press Ctrl-C repeatedly: a handler that interrupts another handler must not
    # deadlock. (With threading.Event.set as the handler, 4 of 6 such bursts hung.)
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    for _ in range(5):
        node = subprocess.Popen([sys.executable, "-c", BUSY], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        assert node.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # spinning
        for _ in range(20000):
            try:
                os.kill(node.pid, signal.SIGINT)
            except ProcessLookupError:
                break
        try:
            out, _ = node.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            node.communicate()
            pytest.fail("the node hung on a burst of SIGINTs")
        assert node.returncode == 0 and "closed" in out
