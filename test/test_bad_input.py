"""Bad input over DDS never reaches the motors and never stops a node.

The test plays the world around a real policy node process (pixel variant, so images are
checked too): it publishes the readings and rewards of each step, and hostile ones in
between, and watches every joint command on the wire.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Vector3Stamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, UInt8MultiArray

from sac_ros.graph import build_graph
from sac_ros.launcher import GraphProcesses
from sac_ros.nodes import messages
from sac_ros.nodes.common import COMMAND_QOS, POLICY_QOS, REWARD_QOS, SENSOR_QOS
from sac_ros.robots import dclaw
from sac_ros.sac import ObsSpec, SACAgent, SACConfig
from sac_ros.tasks import dclaw_valve

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NS = "/dclaw"
LIM = dclaw.LIMITS


class World:
    def __init__(self, node: rclpy.node.Node) -> None:
        self.node = node
        self.joints = node.create_publisher(JointState, f"{NS}/joint_states", SENSOR_QOS)
        self.image = node.create_publisher(Image, f"{NS}/camera/image_32x32", SENSOR_QOS)
        self.reward = node.create_publisher(Vector3Stamped, f"{NS}/sac/reward", REWARD_QOS)
        self.policy = node.create_publisher(UInt8MultiArray, f"{NS}/sac/policy", POLICY_QOS)
        self.commands: list[np.ndarray] = []
        self.sent_positions: list[np.ndarray] = []
        self.diag: dict[str, str] = {}
        self.warned = False
        node.create_subscription(
            Float64MultiArray, f"{NS}/joint_position_controller/commands",
            lambda m: self.commands.append(np.array(m.data)), COMMAND_QOS,
        )  # fmt: skip
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.q = dclaw.NOMINAL_POSE.copy()

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.endswith(f"({NS}/policy)"):
                self.diag = {kv.key: kv.value for kv in s.values}
                self.warned |= s.level[0] >= 1 if isinstance(s.level, bytes) else s.level >= 1

    def stamp(self, age: float = 0.0) -> object:
        t = self.node.get_clock().now().nanoseconds * 1e-9 - age
        stamp = JointState().header.stamp
        stamp.sec, stamp.nanosec = int(t), int((t % 1) * 1e9)
        return stamp

    def publish_step(self, *, names=None, q=None, image=None, encoding="rgb8", age=0.0) -> None:
        stamp = self.stamp(age)
        q = self.q if q is None else q
        img = messages.image(np.zeros((32, 32, 3), np.uint8) if image is None else image)
        img.encoding = encoding
        img.header.stamp = stamp
        self.image.publish(img)
        self.reward.publish(messages.reward_msg(stamp, -1.0, False, False))
        js = messages.joint_state(names or dclaw.JOINT_NAMES, q, np.zeros(len(q)))
        js.header.stamp = stamp
        self.sent_positions.append(np.array(q, dtype=float))
        self.joints.publish(js)

    def send_policy(self, data: bytes) -> None:
        self.policy.publish(messages.byte_array(data))


def policy_in_a_world(
    tmp_path, **params: object
) -> tuple[GraphProcesses, SingleThreadedExecutor, rclpy.node.Node, World]:
    """The pixel policy node as a process with ``params``, and this process as its world."""
    spec = next(
        n for n in build_graph("dclaw", "mujoco", "pixels", learner=False) if n.name == "policy"
    )
    spec.parameters.update(use_sim_time=False, episode_steps=1000, **params)
    graph = GraphProcesses([spec], log_dir=tmp_path)
    rclpy.init()
    node = rclpy.create_node("world")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    return graph, ex, node, World(node)


def spin_for(ex: SingleThreadedExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.01)


@pytest.mark.parametrize("tick", ["lockstep", "timer"])
def test_hostile_input_is_rejected_and_targets_stay_safe(tmp_path, tick):
    """Lockstep (simulation: the readings' stamps are the clock) and timer (hardware: the
    readings must be fresh by the node's clock)."""
    graph, ex, node, world = policy_in_a_world(
        tmp_path, max_sensor_age=0.5, tick=tick, rate_hz=20.0
    )

    def spin(seconds: float) -> None:
        spin_for(ex, seconds)

    graph.start()
    try:
        deadline = time.monotonic() + 60
        while not world.commands:  # wait for the node to come up and act
            assert time.monotonic() < deadline, graph.log_tail(graph.running[0])
            world.publish_step()
            spin(0.1)
        good = SACAgent(
            ObsSpec.pixels((32, 32, 3), dclaw_valve.PROPRIO_DIM), 9,
            SACConfig(hidden=(32, 32), device="cpu"),
        ).policy_bytes(7)  # fmt: skip
        other = SACAgent(ObsSpec.vector(20), 9, SACConfig(hidden=(32, 32), device="cpu"))
        hostile = [
            lambda: world.publish_step(q=np.full(9, np.nan)),
            lambda: world.publish_step(q=np.full(9, np.inf)),
            lambda: world.publish_step(names=list(dclaw.JOINT_NAMES[:8]), q=np.zeros(8)),
            lambda: world.publish_step(image=np.zeros((64, 64, 3), np.uint8)),
            lambda: world.publish_step(encoding="mono8"),
            lambda: world.publish_step(age=5.0),  # readings older than max_sensor_age
            lambda: world.send_policy(good[: len(good) // 2]),  # truncated weights
            lambda: world.send_policy(b"\x00" * 5),  # malformed weights
            lambda: world.send_policy(other.policy_bytes(3)),  # another observation layout
        ]
        if tick == "timer":  # a skewed clock (lockstep takes the simulator's stamps as time)
            hostile.append(lambda: world.publish_step(age=-5.0))
        rng = np.random.default_rng(0)
        for k in range(60):
            hostile[k % len(hostile)]()
            spin(0.05)
            # Good steps in between, at random (finite, in-range) positions.
            world.q = LIM.clip(world.q + rng.normal(0, 0.05, 9))
            world.publish_step()
            spin(0.05)
        world.send_policy(good)
        for _ in range(10):
            world.publish_step()
            spin(0.1)
        spin(1.5)  # one more diagnostics period
        assert graph.poll_dead() == [], graph.log_tail(graph.running[0])
    finally:
        graph.stop()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    assert world.warned
    assert int(world.diag["rejected_inputs"]) >= 30, world.diag
    assert int(world.diag["policies_rejected"]) >= 15, world.diag
    assert int(world.diag["policies_received"]) == 1 and world.diag["policy_version"] == "7"
    assert len(world.commands) > 40
    for cmd in world.commands:
        assert cmd.shape == (9,) and np.all(np.isfinite(cmd))
        assert np.all(cmd >= LIM.lower) and np.all(cmd <= LIM.upper)
    # Each command moves at most one rate-limit step from some reading the node was sent.
    step = LIM.max_velocity * dclaw_valve.CONTROL_PERIOD + 1e-9
    sent = np.array([p for p in world.sent_positions if p.shape == (9,) and np.all(np.isfinite(p))])
    for cmd in world.commands:
        assert np.any(np.all(np.abs(cmd - LIM.clip(sent)) <= step, axis=1))


def test_timer_mode_never_pairs_a_step_with_a_reward_from_before_its_action(tmp_path):
    """On hardware (tick timer) the reward node may miss a cycle. A reward computed from
    readings taken before an action went out must not complete that action's transition,
    however fresh it still is: the step is skipped instead (and the robot held until
    rewards come again), and each reward completes one step at most."""
    from sac_ros.nodes.common import TRANSITION_QOS
    from sac_ros.runtime.wire import decode_transitions

    graph, ex, node, world = policy_in_a_world(
        tmp_path, max_sensor_age=2.0, tick="timer", rate_hz=5.0
    )
    rewards: list[float] = []
    node.create_subscription(
        UInt8MultiArray, f"{NS}/sac/transitions",
        lambda m: rewards.extend(decode_transitions(messages.read_bytes(m)).reward.tolist()),
        TRANSITION_QOS,
    )  # fmt: skip

    def readings_for(seconds: float) -> None:  # fresh readings every 50 ms, no rewards
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamp = world.stamp()
            img = messages.image(np.zeros((32, 32, 3), np.uint8))
            img.header.stamp = stamp
            world.image.publish(img)
            js = messages.joint_state(dclaw.JOINT_NAMES, world.q, np.zeros(9))
            js.header.stamp = stamp
            world.joints.publish(js)
            spin_for(ex, 0.05)

    graph.start()
    try:
        deadline = time.monotonic() + 60
        while not world.commands:  # up, acting on random actions (no policy yet)
            assert time.monotonic() < deadline, graph.log_tail(graph.running[0])
            readings_for(0.2)
        # Without rewards the robot is held where its one action sent it (the step that
        # found no reward is skipped, and nothing more is done until rewards come again).
        readings_for(1.0)
        held = world.commands[-1]
        assert len(world.commands) >= 4 and all(np.allclose(c, held) for c in world.commands)
        world.reward.publish(messages.reward_msg(world.stamp(), -1.0, False, False))
        acted = len(world.commands)
        while np.allclose(world.commands[-1], held) or len(world.commands) == acted:
            assert time.monotonic() < deadline  # rewards are back: it acts again
            readings_for(0.02)
        # Right after that action, the reward of a reading taken after it (the one above,
        # from before the action, completes nothing):
        world.reward.publish(messages.reward_msg(world.stamp(), -3.0, False, False))
        readings_for(2.5)  # ~12 ticks, and no reward behind them
        assert graph.poll_dead() == [], graph.log_tail(graph.running[0])
    finally:
        graph.stop()
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    assert rewards == [-3.0], rewards  # one step completed by it; the others skipped
    assert int(world.diag["rejected_inputs"]) >= 2, world.diag  # each missing reward
    assert world.diag["waiting_for"].endswith("holding"), world.diag
