"""The policy node says so when the robot did not reach its start pose before an episode
(the D'Claw lockstep graph's nodes in this process: real MuJoCo, DDS on loopback)."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from inprocess_graph import in_process
from rclpy.executors import SingleThreadedExecutor

from sac_ros.graph import build_graph
from sac_ros.robots import dclaw

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_claw_not_at_its_start_pose_is_a_warning_naming_the_joints(tmp_path):
    # Five random steps move the fingers well off the start pose; no time to return.
    specs = build_graph("dclaw", "mujoco", learner=False,
                        extra={"policy": {"episode_steps": 5, "start_wait_steps": 0}})  # fmt: skip
    with in_process(specs, tmp_path) as (probe, nodes):
        policy = next(n for n in nodes if n.get_name() == "policy")
        warnings: list[str] = []

        def on_diagnostics(msg: DiagnosticArray) -> None:
            warnings.extend(s.message for s in msg.status
                            if "policy" in s.name and s.level == DiagnosticStatus.WARN)  # fmt: skip

        probe.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
        executor = SingleThreadedExecutor()
        for n in [probe, *nodes]:
            executor.add_node(n)
        prefix = "not at the start pose after 0 steps, going on: "
        deadline = time.monotonic() + 60
        while not any(prefix in w for w in warnings):
            assert time.monotonic() < deadline, f"no start-pose WARN in {warnings[-3:]}"
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
    assert policy.runner.start_timeouts >= 1
    said = next(w for w in warnings if prefix in w).split(prefix, 1)[1]
    assert said.startswith(policy.runner.start_miss.split(",")[0].split(" ")[0])
    assert any(f"{name} " in said for name in dclaw.JOINT_NAMES) and "rad" in said
