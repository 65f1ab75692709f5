"""The training graph as separate processes over real DDS on loopback, in lockstep MuJoCo.

What must hold (issue 4): every transition a policy node published is in the learner's
buffer exactly once; several policy versions reached the robot and were used; episodes
ended and were reset through sac/reset; SIGINT stops every process with a final
checkpoint; a learner killed with SIGKILL resumes from its checkpoint while the robot
keeps acting; two robots in two namespaces feed one learner.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
from graph_harness import GraphRun

pytestmark = [pytest.mark.ros, pytest.mark.slow]

STEPS = 1000


def _check_clean_run(run: GraphRun, codes: dict[str, int]) -> None:
    assert all(code == 0 for code in codes.values()), codes
    ckpt = run.learner_checkpoint()["learner"]
    for ns in run.namespaces:
        stats = run.policy_stats(ns)
        published = stats["transitions_published"]
        assert published >= STEPS
        # Exactly once: the final checkpoint holds every transition, no more.
        assert ckpt["received"][ns] == published, (ckpt["received"], stats)
        assert stats["transitions_dropped"] == 0
        assert stats["delivered_on_shutdown"]
        assert len([v for v in stats["versions_used"] if v >= 0]) >= 2, stats["versions_used"]
        assert stats["episodes"] >= 2  # so at least one reset went through sac/reset
        assert stats["rejected_inputs"] == 0, stats["last_rejection"]
        assert stats["transitions_discarded"] == 0
    assert ckpt["updates"] > 0


@pytest.mark.parametrize(
    ("robot", "obs"), [("dclaw", "state"), ("dclaw", "pixels"), ("minitaur", "state")]
)
def test_full_graph_runs_and_loses_nothing(tmp_path, robot, obs):
    with GraphRun(tmp_path, robot, obs) as run:
        ns = run.namespaces[0]
        run.spin_until(lambda: run.published(ns) >= STEPS, 240, f"{STEPS} steps")
        assert run.value(f"{ns}/reward", "resets_done") >= 1
        codes = run.stop()
    _check_clean_run(run, codes)


def test_two_robots_feed_one_learner(tmp_path):
    with GraphRun(tmp_path, "dclaw", "state", robots=2) as run:
        run.spin_until(
            lambda: all(run.published(ns) >= STEPS for ns in run.namespaces), 240, "both robots"
        )
        codes = run.stop()
    assert run.namespaces == ["/dclaw_0", "/dclaw_1"]
    _check_clean_run(run, codes)


def test_learner_killed_and_resumed_while_the_robot_keeps_acting(tmp_path):
    with GraphRun(tmp_path, "dclaw", "state", learner={"checkpoint_every": 2.0}) as run:
        ns = run.namespaces[0]
        run.spin_until(lambda: run.value("/learner", "checkpoints") >= 2, 120, "checkpoints")
        run.spin_until(lambda: run.value("/learner", "updates") >= 300, 120, "updates")
        learner = run.graph.find("learner")
        before = run.learner_checkpoint()["learner"]
        run.graph.kill(learner, signal.SIGKILL)
        # The robot goes on without its learner, retaining what it produces.
        at_kill = run.published(ns)
        run.spin_until(lambda: run.published(ns) >= at_kill + 200, 60, "acting alone")
        assert run.value(f"{ns}/policy", "transitions_dropped") == 0
        resumed = replace(learner.spec, parameters={**learner.spec.parameters, "resume": True})
        run.graph.start_node(resumed)
        run.spin_until(
            lambda: run.value("/learner", "updates") > before["updates"]
            and run.value("/learner", "env_steps") >= run.published(ns) - 50,
            120,
            "the resumed learner to catch up",
        )
        after = dict(run.diag["/learner"])
        codes = run.stop()
    assert all(code == 0 for code in codes.values()), codes
    stats = run.policy_stats(run.namespaces[0])
    ckpt = run.learner_checkpoint()["learner"]
    assert ckpt["received"][ns] == stats["transitions_published"]
    assert stats["transitions_resent"] > 0  # what the dead learner had not checkpointed
    assert float(after["updates"]) >= before["updates"]
    assert ckpt["updates"] >= before["updates"]


@pytest.mark.parametrize("executor", ["events", "single"])
def test_sigint_stops_everything_within_seconds(tmp_path, monkeypatch, executor):
    # Nodes spin rclpy's EventsExecutor by default; the SingleThreadedExecutor stays a
    # working fallback (SAC_ROS_EXECUTOR=single).
    monkeypatch.setenv("SAC_ROS_EXECUTOR", executor)
    with GraphRun(tmp_path, "dclaw", "state") as run:
        ns = run.namespaces[0]
        run.spin_until(lambda: run.published(ns) >= 300, 120, "300 steps")
        # The reward node, off the lockstep critical path, runs at a lower priority, all
        # its threads (DDS's too); the others at the priority they were started with.
        for node in run.graph.running:
            want = 10 if node.spec.name == "reward" else 0
            assert node.spec.nice == want
            expected = min(19, os.nice(0) + want)  # the kernel caps nice values at 19
            assert _thread_nice_values(node.process.pid) == {expected}, node.spec.name
        start = time.monotonic()
        codes = run.stop()
        took = time.monotonic() - start
    assert all(code == 0 for code in codes.values()), codes
    assert took < 30, took
    expected = {"events": "EventsExecutor", "single": "SingleThreadedExecutor"}[executor]
    for log in (tmp_path / "logs").glob("*.log"):
        assert f"spinning on {expected}" in log.read_text(), log.name
    assert (run.run_dir / "checkpoint" / "manifest.json").exists()


def _thread_nice_values(pid: int) -> set[int]:
    """The nice value of every thread of a process (field 19 of /proc/<pid>/task/*/stat)."""
    values = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)"
        values.add(int(fields[16]))
    return values
