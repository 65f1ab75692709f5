"""learner_node as a real process over DDS on loopback, fed by two simulated robots.

Each robot side is what the policy node does: an Outbox numbering transitions, publishing
them, reacting to the learner's acks. The learner is killed with SIGKILL mid-run and
resumed; at the end its final checkpoint must hold every transition exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray, String, UInt8MultiArray

from sac_ros.nodes.common import EVENT_QOS, POLICY_QOS, TRANSITION_QOS
from sac_ros.nodes.learner_node import STATS_FIELDS
from sac_ros.runtime.checkpoint import CheckpointStore
from sac_ros.runtime.delivery import Ack, Outbox
from sac_ros.runtime.wire import TransitionBatch, encode_transitions
from sac_ros.sac import ObsSpec, ReplayBuffer
from sac_ros.sac.policy_format import decode_policy
from sac_ros.sac.replay import NO_NEXT

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SPEC = ObsSpec.vector(20)  # the D'Claw state task
ACT = 9
EPISODE = 20
BUFFER = 5000


class RobotSide:
    """One robot's sender: transitions with reward = offset + seq, episodes of 20 steps."""

    def __init__(self, node: rclpy.node.Node, prefix: str, session: str, offset: int) -> None:
        self.outbox = Outbox(session, capacity=100_000, resend_after=1.0)
        self.offset = offset
        self.pub = node.create_publisher(
            UInt8MultiArray, f"{prefix}/sac/transitions", TRANSITION_QOS
        )
        node.create_subscription(String, f"{prefix}/sac/transitions_ack", self._on_ack, EVENT_QOS)
        node.create_subscription(
            UInt8MultiArray, f"{prefix}/sac/policy", self._on_policy, POLICY_QOS
        )
        self.ack: Ack | None = None
        self.policy_versions: list[int] = []

    def produce(self, n: int) -> None:
        for _ in range(n):
            self.outbox.add(self.outbox.next_seq)

    def pump(self) -> None:
        items = self.outbox.take(25)
        if items:
            seqs = np.array([s for s, _ in items])
            msg = UInt8MultiArray()
            msg.data = encode_transitions(self._batch(seqs))
            self.pub.publish(msg)

    def _batch(self, seq: np.ndarray) -> TransitionBatch:
        n = len(seq)
        episode, step = seq // EPISODE, seq % EPISODE
        obs = np.zeros((n, SPEC.vector_dim), np.float32)
        obs[:, 0], obs[:, 1], obs[:, 2] = self.offset, episode, step
        nxt = obs.copy()
        nxt[:, 2] += 1
        return TransitionBatch(
            session=self.outbox.session,
            layout=SPEC.to_json(),
            first_retained=self.outbox.first_retained,
            obs=obs,
            action=np.tile(np.linspace(-1, 1, ACT, dtype=np.float32), (n, 1)),
            reward=(self.offset + seq).astype(np.float32),
            next_obs=nxt,
            terminated=np.zeros(n, np.uint8),
            truncated=(step == EPISODE - 1).astype(np.uint8),
            seq=seq,
            episode=episode,
            step=step,
        )

    def _on_ack(self, msg: String) -> None:
        ack = Ack.from_json(msg.data)
        if ack.sender == self.outbox.session:
            self.ack = ack
            self.outbox.on_ack(ack, time.monotonic())

    def _on_policy(self, msg: UInt8MultiArray) -> None:
        policy = decode_policy(bytes(msg.data), expected_spec=SPEC, expected_action_dim=ACT)
        self.policy_versions.append(policy.version)


class Harness:
    def __init__(self, ns: str, run_dir: Path, log: Path) -> None:
        self.ns, self.run_dir, self.log = ns, run_dir, log
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("learner_test", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.robots = [
            RobotSide(self.node, f"{ns}/r1", "robot-one", 0),
            RobotSide(self.node, f"{ns}/r2", "robot-two", 10_000),
        ]
        self.stats: dict[str, float] = {}
        self.diagnostics: list[DiagnosticStatus] = []
        self.node.create_subscription(Float64MultiArray, f"{ns}/sac/learner_stats",
                                      self._on_stats, 10)  # fmt: skip
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.params = self.node.create_client(SetParameters, f"{ns}/learner/set_parameters")
        self.proc: subprocess.Popen | None = None

    def _on_stats(self, msg: Float64MultiArray) -> None:
        names = msg.layout.dim[0].label.split(",")
        self.stats = dict(zip(names, msg.data, strict=True))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        self.diagnostics += [s for s in msg.status if self.ns in s.name]

    def start_learner(self, resume: bool, checkpoint_every: float) -> None:
        args = {
            "hidden": "[32,32]",
            "batch_size": "16",
            "warmup": "20",
            "utd_ratio": "0.5",
            "buffer_size": str(BUFFER),
            "publish_every": "10",
            "log_every": "20",
            "torch_threads": "1",
            "robot_namespaces": "[r1,r2]",
            "run_dir": str(self.run_dir),
            "resume": "true" if resume else "false",
            "checkpoint_every": str(checkpoint_every),
            "use_sim_time": "true",  # as in the MuJoCo graph; no /clock here: acks still flow
        }
        cmd = [sys.executable, "-m", "sac_ros.nodes.learner_node", "--ros-args",
               "-r", f"__ns:={self.ns}"]  # fmt: skip
        for key, value in args.items():
            cmd += ["-p", f"{key}:={value}"]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log.read_text()}")
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"learner exited ({self.proc.returncode}) while waiting "
                                     f"for {what}\n{self.log.read_text()}")  # fmt: skip
            for robot in self.robots:
                robot.pump()
            self.executor.spin_once(timeout_sec=0.01)

    def acked(self, received: int, durable: int | None = None) -> bool:
        return all(
            r.ack is not None
            and r.ack.received == received
            and (durable is None or r.ack.durable == durable)
            for r in self.robots
        )

    def set_param(self, name: str, value: float) -> None:
        assert self.params.wait_for_service(timeout_sec=10.0)
        p = ParameterMsg(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))  # fmt: skip
        future = self.params.call_async(SetParameters.Request(parameters=[p]))
        self.executor.spin_until_future_complete(future, timeout_sec=10.0)
        assert future.result() is not None and future.result().results[0].successful

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def read_checkpoint(run_dir: Path) -> dict:
    for _ in range(50):  # a checkpoint may be in progress while we look
        try:
            loaded = CheckpointStore(run_dir / "checkpoint").load()
            assert loaded is not None
            return loaded.state
        except ValueError:
            time.sleep(0.1)
    raise AssertionError("no readable checkpoint")


def stored_rewards(run_dir: Path) -> list[float]:
    buf = ReplayBuffer(SPEC, ACT, BUFFER)
    buf.load(run_dir / "checkpoint" / "replay")
    positions = np.flatnonzero(buf._next[: buf.num_slots_written] != NO_NEXT)
    return sorted(buf.gather(positions).reward.tolist())


@pytest.fixture
def harness(tmp_path):
    h = Harness(f"/learner_test_{os.getpid()}", tmp_path / "run", tmp_path / "learner.log")
    yield h
    h.close()


def test_learner_survives_kill9_and_keeps_every_transition_once(harness):
    h = harness
    h.start_learner(resume=False, checkpoint_every=1.0)
    h.spin_until(lambda: all(r.pub.get_subscription_count() > 0 for r in h.robots), 60,
                 "the learner's transition subscriptions")  # fmt: skip
    for robot in h.robots:
        robot.produce(100)
    h.spin_until(lambda: h.acked(99, durable=99), 60, "durable acks of 0..99")
    h.spin_until(lambda: all(r.policy_versions for r in h.robots), 20, "policies")
    h.spin_until(lambda: h.stats.get("updates", 0) >= 90, 30, "90 updates (utd 0.5)")
    assert list(h.stats) == list(STATS_FIELDS)
    # A bad message is reported, not fatal.
    h.robots[0].pub.publish(UInt8MultiArray(data=b"not a transition batch"))
    h.spin_until(
        lambda: any(
            s.level == DiagnosticStatus.WARN and "bad transitions" in s.message
            for s in h.diagnostics
        ),
        15,
        "a diagnostics warning",
    )
    # Live parameter: no more periodic checkpoints, so the next one is the final one.
    h.set_param("checkpoint_every", 3600.0)
    time.sleep(0.3)
    saved = read_checkpoint(h.run_dir)
    assert saved["env_steps"] >= 200

    for robot in h.robots:
        robot.produce(60)
    h.spin_until(lambda: h.acked(159), 30, "acks of 100..159")
    h.proc.send_signal(signal.SIGKILL)
    h.proc.wait()
    assert read_checkpoint(h.run_dir)["env_steps"] == saved["env_steps"]
    versions_before = [max(r.policy_versions) for r in h.robots]

    h.stats = {}
    h.start_learner(resume=True, checkpoint_every=3600.0)
    # The new learner acks what its checkpoint holds; the robots resend the rest.
    h.spin_until(lambda: h.stats, 60, "stats of the resumed learner")
    assert h.stats["updates"] >= saved["updates"]
    assert h.stats["env_steps"] >= saved["env_steps"]
    for robot in h.robots:
        robot.produce(40)
    h.spin_until(lambda: h.acked(199), 60, "acks of 0..199 after the restart")
    h.spin_until(lambda: h.stats.get("env_steps") == 400, 10, "400 transitions in the stats")
    assert h.stats["rejected"] == 0  # a new process: resent transitions are no errors
    assert all(r.outbox.resent > 0 and r.outbox.dropped == 0 for r in h.robots)

    h.proc.send_signal(signal.SIGINT)
    assert h.proc.wait(timeout=30) == 0, h.log.read_text()
    final = read_checkpoint(h.run_dir)
    assert final["env_steps"] == 400
    assert final["received"] == {"r1": 200, "r2": 200}
    assert final["updates"] >= saved["updates"]
    assert final["policy_version"] >= max(versions_before)
    expected = [float(i) for i in range(200)] + [float(10_000 + i) for i in range(200)]
    assert stored_rewards(h.run_dir) == expected
    assert (h.run_dir / "learner_stats.csv").exists()
    assert any((h.run_dir / "tensorboard").iterdir())


@pytest.mark.parametrize("namespaces", ["[r1,r1/]", "[/r1,r1]"])
def test_two_spellings_of_one_robot_namespace_are_refused(tmp_path, namespaces):
    """They name one topic: two subscriptions would store each transition twice."""
    from sac_ros.nodes.learner_node import LearnerNode

    params = {"hidden": "[16,16]", "device": "cpu", "torch_threads": "1",
              "robot_namespaces": namespaces, "run_dir": str(tmp_path / "run")}  # fmt: skip
    rclpy.init(args=["--ros-args"] + [x for k, v in params.items() for x in ("-p", f"{k}:={v}")])
    try:
        with pytest.raises(ValueError, match="robot_namespaces has duplicates"):
            LearnerNode()
    finally:
        rclpy.shutdown()
