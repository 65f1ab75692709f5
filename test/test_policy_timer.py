"""The policy node in timer mode (hardware), in this process: its ticks are called by
hand on readings and rewards set up by the test, so each case is exact in time.

What a real robot needs of it: a robot whose reward node is gone is held, not driven; a
reward from before an action never completes it; joint readings that stop are an error,
not a wait; and a reset is asked for again when the reward node comes (back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.task import Future
from std_srvs.srv import Trigger

from sac_ros.nodes import messages
from sac_ros.nodes.common import ERROR
from sac_ros.nodes.policy_node import PolicyNode
from sac_ros.robots import dclaw
from sac_ros.runtime.policy_runner import Phase

pytestmark = [pytest.mark.ros]
Q = dclaw.NOMINAL_POSE.copy()


@pytest.fixture
def node() -> Iterator[PolicyNode]:
    params = {"tick": "timer", "robot": "dclaw", "rate_hz": 10.0, "max_sensor_age": 0.25,
              "episode_steps": 1000}  # fmt: skip
    args = ["--ros-args"] + [x for k, v in params.items() for x in ("-p", f"{k}:={v}")]
    rclpy.init(args=args)
    n = PolicyNode()
    try:
        yield n
    finally:
        n.destroy_node()
        rclpy.shutdown()


def now(n: PolicyNode) -> float:
    return n.get_clock().now().nanoseconds * 1e-9


def stamp(t: float) -> object:
    s = messages.joint_state([], [], []).header.stamp
    s.sec, s.nanosec = int(t), int(round((t % 1) * 1e9))
    return s


def readings(n: PolicyNode, t: float) -> None:
    """The joint and valve readings of time ``t``, as their callbacks would store them."""
    js = messages.joint_state(dclaw.JOINT_NAMES, Q, np.zeros(9))
    js.header.stamp = stamp(t)
    valve = messages.joint_state([dclaw.VALVE_JOINT], [0.3], [0.0])
    valve.header.stamp = stamp(t)
    n._latest["valve/joint_states"] = (t, valve)
    n._latest["joint_states"] = (t, js)


def reward(n: PolicyNode, t: float, value: float = -1.0) -> None:
    n._on_reward(messages.reward_msg(stamp(t), value, False, False))


def tick(n: PolicyNode, with_readings: bool = True) -> np.ndarray:
    if with_readings:
        readings(n, now(n) - 0.005)
    n._try_step()
    return np.array(n._last_command.data)


def test_without_rewards_the_robot_is_held_not_driven(node):
    """The reward ends an episode (a fall, the time limit counts rewarded steps): without
    one the policy used to act every other tick for as long as the reward node was gone."""
    acted = tick(node)
    assert node.runner.phase is Phase.RUNNING and node.runner.has_pending
    commands = [tick(node) for _ in range(30)]  # no reward ever comes
    assert all(np.allclose(c, acted) for c in commands)  # held where it was sent
    assert node.runner.outbox.next_seq == 0 and "holding" in node.waiting
    reward(node, now(node))  # the reward node is back
    resumed = tick(node)
    assert not np.allclose(resumed, acted) and node.runner.has_pending


def test_a_reward_from_before_the_action_does_not_complete_it(node):
    t = now(node)
    readings(node, t - 0.04)
    node._try_step()  # acts on readings 40 ms old
    assert node.runner.has_pending
    reward(node, t - 0.02, -123.0)  # of a reading taken before the action went out
    time.sleep(0.01)
    tick(node)
    assert node.runner.outbox.next_seq == 0  # not paired; the step was skipped
    reward(node, now(node))  # rewards come again (this one of a reading before any action)
    tick(node)
    assert node.runner.has_pending
    time.sleep(0.01)
    reward(node, now(node), -7.0)  # of a reading after the action
    tick(node)
    assert [t.reward for _, t in node.outbox.take(10)] == [-7.0]


def test_joint_readings_that_stop_are_an_error_and_end_the_open_step(node):
    tick(node)
    assert node.runner.has_pending
    rejected = node.rejected_inputs
    time.sleep(0.3)  # longer than max_sensor_age, no new reading
    held = tick(node, with_readings=False)
    assert node.rejected_inputs == rejected + 1 and "joint_states" in node.last_rejection
    assert not node.runner.has_pending  # no transition spanning the gap
    assert dclaw.LIMITS.contains(held)


def test_a_reset_that_failed_without_a_reason_is_a_failure(node):
    node.runner.phase = Phase.RESETTING
    future = Future()
    future.set_result(Trigger.Response(success=False, message=""))
    node._on_reset_done(future)
    assert node.runner.phase is Phase.RESETTING  # not taken for done
    assert node._reset_retry and "no reason given" in node.last_rejection


def test_a_reset_asked_before_its_server_exists_is_asked_again_when_it_comes(node):
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node._request_reset()  # no reward node yet: this request reaches nobody
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    calls: list[float] = []

    def on_reset(_req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        calls.append(time.monotonic())
        res.success, res.message = True, "valve at its start"
        return res

    server = rclpy.create_node("reward_stand_in")
    server.create_service(Trigger, "/sac/reset", on_reset)
    executor.add_node(server)
    try:
        deadline = time.monotonic() + 10
        while not (calls and node._reset_future is not None and node._reset_future.done()):
            assert time.monotonic() < deadline, "the reset was never asked again"
            executor.spin_once(timeout_sec=0.05)
        assert len(calls) == 1
    finally:
        executor.shutdown()
        server.destroy_node()


def test_a_reset_never_answered_is_reported_and_asked_again(node):
    """A reset server that took the request and never answers (a reply lost, a stuck
    reset): the robot stays held, so that is an ERROR on /diagnostics, and after
    reset_patience the reset is asked again; the second answer ends the reset."""
    import threading

    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor

    release = threading.Event()
    calls: list[float] = []

    def on_reset(_req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            release.wait(30)  # the first request: no answer while the test runs
        res.success, res.message = True, "valve at its start"
        return res

    server = rclpy.create_node("stuck_reward_stand_in")
    server.create_service(Trigger, "/sac/reset", on_reset,
                          callback_group=ReentrantCallbackGroup())  # fmt: skip
    server_executor = MultiThreadedExecutor(4)
    server_executor.add_node(server)
    thread = threading.Thread(target=server_executor.spin, daemon=True)
    thread.start()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.reset_patience = 1.5
    node.runner.phase = Phase.RESETTING
    try:
        deadline = time.monotonic() + 10
        while not node.reset_client.service_is_ready():
            assert time.monotonic() < deadline
            executor.spin_once(timeout_sec=0.05)
        node._request_reset()
        deadline = time.monotonic() + 15
        reported = []
        while node.runner.phase is Phase.RESETTING:
            assert time.monotonic() < deadline, f"the reset was not asked again: {calls}"
            executor.spin_once(timeout_sec=0.05)
            if "reset" in node.diag._problems:
                reported.append(node.diag._problems["reset"][:2])
        assert reported and reported[0][0] == ERROR and "has not answered" in reported[0][1]
        assert len(calls) == 2 and calls[1] - calls[0] >= 1.5
        assert "reset" not in node.diag._problems  # answered: the problem is cleared
    finally:
        release.set()
        server_executor.shutdown()
        thread.join(timeout=5)
        server.destroy_node()
        executor.shutdown()


def test_transitions_let_go_before_a_checkpoint_held_them_are_reported(node):
    """The outbox keeps what the learner has not checkpointed, up to outbox_capacity;
    what it lets go earlier is lost if the learner dies: that is said, not kept quiet."""
    from sac_ros.runtime.delivery import Ack

    outbox = node.outbox
    for i in range(outbox.capacity):
        outbox.add(i)
    outbox.on_ack(Ack("L", outbox.session, outbox.capacity - 1, -1, 0.0), time.monotonic())
    node._flush()
    assert "transitions" not in node.diag._problems
    outbox.add(outbox.capacity)  # the oldest goes: received, not yet checkpointed
    node._flush()
    level, message, _ = node.diag._problems["transitions"]
    assert "1 transitions let go before a learner checkpoint" in message
    assert node._diag_values()["transitions_unconfirmed_evicted"] == 1
