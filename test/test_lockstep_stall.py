"""Lockstep MuJoCo, D'Claw: one physics step per action, whatever the stall path does.

The simulator republishes its readings when no command came for ``stall_timeout``, and
the policy node resends its last command when it sees the instant it acted on again (the
command was lost). When the stall timer fires while the command is already on its way
(rclpy's executor runs a ready timer before a ready subscription), the republished
instant must not make the policy send that command a second time: the simulator would
step twice for one action, and every command after would act on a state one step later
than the reading it was computed from.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from inprocess_graph import in_process
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray

from sac_ros.graph import build_graph

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(120)]


class _Recorder:
    """The policy's command publisher, noting the reading each command answers."""

    def __init__(self, real: Any, policy: Any, sent: list[float]) -> None:
        self._real, self._policy, self._sent = real, policy, sent

    def publish(self, msg: Float64MultiArray) -> None:
        self._sent.append(self._policy._done_stamp)
        self._real.publish(msg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def _graph(tmp_path: Path) -> Iterator[tuple[list[Any], list[Any], Any, Any, Any]]:
    """The D'Claw lockstep graph (stall_timeout 0.1 s) in this process: its specs and
    nodes, the sim, the policy, and the sim's subscription to the joint commands."""
    extra = {"mujoco_sim": {"stall_timeout": 0.1}}
    specs = build_graph(
        "dclaw", "mujoco", learner=False, run_dir=str(tmp_path / "run"), extra=extra
    )
    with in_process(specs, tmp_path) as (_probe, nodes):
        by_name = {s.name: n for s, n in zip(specs, nodes, strict=True)}
        sim = by_name["mujoco_sim"]
        (sub,) = [s for s in sim.subscriptions if s.topic_name.endswith("commands")
                  and "valve" not in s.topic_name]  # fmt: skip
        yield specs, nodes, sim, by_name["policy"], sub


def _run(tmp_path: Path, lose_fifth: bool) -> tuple[Any, list[float], list[float]]:
    """Run the graph for 30 steps; the fifth command races a stall republish, or is lost.
    Returns the policy node, the stamps its commands were computed from, and the times
    the simulation stepped from."""
    with _graph(tmp_path) as (_specs, nodes, sim, policy, sub):
        sent: list[float] = []  # per command the policy sent: the stamp it was computed from
        applied: list[float] = []  # per command the sim stepped on: the time it stepped from
        policy.pub_cmd = _Recorder(policy.pub_cmd, policy, sent)
        on_command = sub.callback

        lost: list[Float64MultiArray] = []

        def command(msg: Float64MultiArray) -> None:
            if lose_fifth and len(applied) == 5 and not lost:
                lost.append(msg)  # never reaches the simulation
                return
            if not lose_fifth and len(applied) == 5:
                # The stall timer was ready in the same wait as this command: it ran first.
                sim._last_publish = -1e9
                sim._on_stall_check()
            applied.append(sim.sim.time)
            on_command(msg)

        sub.callback = command
        executor = SingleThreadedExecutor()
        for n in nodes:
            executor.add_node(n)
        deadline = time.monotonic() + 30.0
        while sim.steps < 30 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(40):  # let whatever is in flight land
            executor.spin_once(timeout_sec=0.01)
        executor.shutdown()
        assert sim.steps >= 30
        return policy, sent, applied


def test_a_stall_republish_racing_the_command_does_not_step_twice(tmp_path: Path) -> None:
    policy, sent, applied = _run(tmp_path, lose_fifth=False)
    assert policy.commands_resent == 0
    # Each step applies the command computed from the reading of the state it starts from.
    assert sent[: len(applied)] == pytest.approx(applied), (sent, applied)


def test_a_lost_command_is_sent_again_once(tmp_path: Path) -> None:
    policy, sent, applied = _run(tmp_path, lose_fifth=True)
    assert policy.commands_resent == 1
    del sent[5]  # the lost one
    assert sent[: len(applied)] == pytest.approx(applied), (sent, applied)


def test_a_policy_that_pauses_through_republishes_still_acts_on_each_instant_once(
    tmp_path: Path,
) -> None:
    """The policy's process is busy (a weight swap, a collection, a loaded core) while the
    simulator republishes the instant it is about to act on, more than once. It acts on
    the first copy, then finds the queued copies and resends: the simulator, which has
    stepped from that instant already, drops the resend (it names its instant). Before,
    it stepped twice for one action, and every later command acted one step late."""
    from sac_ros.nodes import messages

    with _graph(tmp_path) as (specs, nodes, sim, policy, sub):
        on_command = sub.callback
        stepped: list[tuple[int, int | None]] = []  # per step: its instant, the command's

        def command(msg: Float64MultiArray) -> None:
            before, steps = int(round(sim.sim.time * 1e9)), sim.steps
            on_command(msg)
            if sim.steps > steps:
                stepped.append((before, messages.command_instant(msg)))

        sub.callback = command
        others, alone = SingleThreadedExecutor(), SingleThreadedExecutor()
        for spec, n in zip(specs, nodes, strict=True):
            (alone if spec.name == "policy" else others).add_node(n)
        deadline = time.monotonic() + 30.0
        paused = False
        while sim.steps < 30 and time.monotonic() < deadline:
            if sim.steps == 8 and not paused:
                paused = True
                end = time.monotonic() + 0.8  # the policy does not run; the sim does
                while time.monotonic() < end:
                    others.spin_once(timeout_sec=0.01)
            others.spin_once(timeout_sec=0.005)
            alone.spin_once(timeout_sec=0.005)
        for _ in range(40):
            others.spin_once(timeout_sec=0.005)
            alone.spin_once(timeout_sec=0.005)
        others.shutdown()
        alone.shutdown()
        assert sim.steps >= 30
        # Every step applied the command computed from the reading of its own instant.
        assert all(at == instant for at, instant in stepped), stepped
        assert policy.commands_resent >= 1 and getattr(sim, "commands_stale", 0) >= 1
