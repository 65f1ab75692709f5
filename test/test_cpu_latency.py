"""The PM QoS CPU latency request (sac_ros.runtime.cpu_latency) and its wiring: a node
process started with SAC_ROS_CPU_LATENCY_US holds the request while it spins and gives
it back when it stops; a request the machine refuses is reported, never fatal.

The kernel's own check (the value in force, read back from /dev/cpu_dma_latency) needs
read and write access to the device, which root has; elsewhere those tests skip.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import pytest

from sac_ros.cli import build_parser
from sac_ros.runtime import cpu_latency
from sac_ros.runtime.cpu_latency import CpuLatencyRequest, current_limit, parse_microseconds

DEVICE = cpu_latency.DEVICE
DEVICE_USABLE = DEVICE.exists() and os.access(DEVICE, os.R_OK | os.W_OK)
needs_device = pytest.mark.skipif(
    not DEVICE_USABLE, reason=f"{DEVICE} is not readable and writable here (not root)"
)


def test_parse_accepts_microseconds_and_empty():
    assert parse_microseconds("") is None
    assert parse_microseconds("  ") is None
    assert parse_microseconds("0") == 0
    assert parse_microseconds(" 25 ") == 25


@pytest.mark.parametrize("text", ["-1", "fast", "2.5", str(cpu_latency.MAX_US + 1)])
def test_parse_refuses_other_values_naming_the_source(text):
    with pytest.raises(ValueError, match="launch argument cpu_latency_us"):
        parse_microseconds(text, "launch argument cpu_latency_us")


def test_request_writes_the_limit_as_the_kernel_reads_it(tmp_path):
    # A regular file stands in for the device: what is written is one native int32.
    stand_in = tmp_path / "cpu_dma_latency"
    stand_in.write_bytes(b"")
    request = CpuLatencyRequest(7, stand_in)
    assert not request.held
    assert "held at 7 us" in request.hold()
    assert request.held
    request.hold()  # holding twice writes once
    request.release()
    assert not request.held
    assert struct.unpack("=i", stand_in.read_bytes()) == (7,)


def test_a_device_that_cannot_be_opened_is_reported_not_raised(tmp_path):
    request = CpuLatencyRequest(0, tmp_path / "missing")
    outcome = request.hold()
    assert not request.held
    assert "not limited" in outcome and "missing" in outcome
    request.release()  # nothing to give back, no error


def test_environment_decides_whether_a_request_is_made():
    assert cpu_latency.request_from_environment({}) is None
    assert cpu_latency.request_from_environment({cpu_latency.ENV: ""}) is None
    request = cpu_latency.request_from_environment({cpu_latency.ENV: "0"})
    assert request is not None and request.microseconds == 0
    with pytest.raises(ValueError, match=cpu_latency.ENV):
        cpu_latency.request_from_environment({cpu_latency.ENV: "soon"})


def test_train_takes_the_request_as_an_option():
    parser = build_parser()
    assert parser.parse_args(["train", "dclaw"]).cpu_latency_us is None
    assert parser.parse_args(["train", "dclaw", "--cpu-latency-us", "0"]).cpu_latency_us == 0
    for bad in ("-3", "", "soon", str(cpu_latency.MAX_US + 1)):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "dclaw", "--cpu-latency-us", bad])


@needs_device
def test_a_held_request_is_in_force_until_released():
    before = current_limit()
    with CpuLatencyRequest(0) as request:
        assert request.held
        assert current_limit() == 0
    assert current_limit() == before


NODE = textwrap.dedent(
    """
    from rclpy.node import Node
    from sac_ros.nodes.common import spin_node

    class Idle(Node):
        def __init__(self):
            super().__init__("idle")
            self.create_timer(0.05, lambda: None)

    spin_node(Idle, ["idle"])
    """
)


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.ros
@pytest.mark.timeout(120)
@needs_device
def test_a_node_process_holds_the_request_while_it_spins():
    before = current_limit()
    if before == 0:
        pytest.skip("another process on this machine holds a 0 us request already")
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", cpu_latency.ENV: "0"}
    node = subprocess.Popen([sys.executable, "-c", NODE], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert _wait_for(lambda: current_limit() == 0, 30.0), "the node never held it"
    finally:
        node.send_signal(signal.SIGINT)
        out, _ = node.communicate(timeout=30)
    assert node.returncode == 0, out
    assert "CPU wake-up latency held at 0 us" in out
    assert current_limit() == before
