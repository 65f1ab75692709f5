"""The Minitaur reward node in this process: which commands a step's reward is judged on,
and which pose confirms a reset."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, Vector3Stamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_ros.nodes.common import COMMAND_QOS, LOCKSTEP_SENSOR_QOS, REWARD_QOS
from sac_ros.nodes.reward_node import RewardNode
from sac_ros.robots import minitaur
from sac_ros.tasks import minitaur_walk

pytestmark = [pytest.mark.ros]


def _pose(t: float, roll: float = 0.0) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round(t % 1 * 1e9))
    msg.pose.orientation.w = math.cos(roll / 2)
    msg.pose.orientation.x = math.sin(roll / 2)
    return msg


def _command(action: np.ndarray) -> Float64MultiArray:
    return Float64MultiArray(data=minitaur.action_to_motors(action).tolist())


def test_a_steps_command_counts_even_when_its_pose_came_in_with_it():
    """Lockstep: the policy's command and the pose the simulator publishes after it can
    both be waiting when the reward node wakes up; the reward is still that command's.
    (rclpy's SingleThreadedExecutor, the default where rclpy has no EventsExecutor, runs
    the ready callbacks of one wait in subscription order, not arrival order.)"""
    rclpy.init(args=["--ros-args", "-p", "robot:=minitaur", "-p", "reliable_readings:=true"])
    node = RewardNode()
    world = rclpy.create_node("world")
    try:
        commands = world.create_publisher(
            Float64MultiArray, "joint_position_controller/commands", COMMAND_QOS
        )
        poses = world.create_publisher(PoseStamped, "mocap/pose", LOCKSTEP_SENSOR_QOS)
        rewards: list[float] = []
        world.create_subscription(
            Vector3Stamped, "sac/reward", lambda m: rewards.append(m.vector.x), REWARD_QOS
        )
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(world)

        def spin(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.01)

        deadline = time.monotonic() + 10.0
        while (
            commands.get_subscription_count() == 0 or poses.get_subscription_count() == 0
        ) and time.monotonic() < deadline:
            spin(0.05)
        standing, step = np.zeros(8), np.r_[np.ones(4), np.zeros(4)]
        for _ in range(2):
            commands.publish(_command(standing))
            spin(0.2)
        poses.publish(_pose(1.0))
        spin(0.3)
        assert rewards == []  # the first pose has no previous one
        commands.publish(_command(step))
        poses.publish(_pose(1.02))
        time.sleep(0.3)  # both are queued before the node takes either
        end = time.monotonic() + 5.0
        while not rewards and time.monotonic() < end:
            spin(0.05)
        expected, _ = minitaur_walk.reward(
            np.zeros(3), np.zeros(3), 1.0, 1.02, np.stack([standing, standing, step]), 0.0
        )
        assert expected < -0.05  # the step's command moves the legs: it costs
        assert rewards == [pytest.approx(expected)]
    finally:
        node.close()
        node.destroy_node()
        world.destroy_node()
        rclpy.shutdown()


class ResetRig:
    """The reward node and a world node (the motion capture, the person's sac/reset_done,
    the simulator's sim/place_upright) on one executor spun by the test."""

    def __init__(self, world: Node, executor: SingleThreadedExecutor) -> None:
        self.world, self.executor = world, executor
        self.poses = world.create_publisher(PoseStamped, "mocap/pose", LOCKSTEP_SENSOR_QOS)
        self.reset = world.create_client(Trigger, "sac/reset")
        self.done = world.create_client(Trigger, "sac/reset_done")
        self.stamp = 100.0

    def spin_until(self, ready: Callable[[], bool], seconds: float) -> None:
        end = time.monotonic() + seconds
        while not ready() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def pose(self, roll: float = 0.0) -> None:
        """The motion capture's next frame: upright, or rolled by ``roll`` rad."""
        self.stamp += 0.02
        self.poses.publish(_pose(self.stamp, roll))

    def call(self, client: object, seconds: float = 10.0) -> Trigger.Response:
        future = client.call_async(Trigger.Request())  # type: ignore[attr-defined]
        self.spin_until(future.done, seconds)
        assert future.done()
        return future.result()


@contextmanager
def _reset_rig(*params: str) -> Iterator[ResetRig]:
    args = ["--ros-args", "-p", "robot:=minitaur", "-p", "reliable_readings:=true"]
    rclpy.init(args=args + [a for p in params for a in ("-p", p)])
    node = RewardNode()
    world = rclpy.create_node("world")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(world)
    rig = ResetRig(world, executor)
    try:
        rig.spin_until(
            lambda: (
                rig.poses.get_subscription_count() > 0
                and rig.reset.service_is_ready()
                and rig.done.service_is_ready()
            ),
            10.0,
        )
        yield rig
    finally:
        node.close()
        node.destroy_node()
        world.destroy_node()
        rclpy.shutdown()


def test_a_reset_is_confirmed_only_by_a_pose_received_after_the_person_confirmed():
    with _reset_rig("reset_timeout:=1.5") as rig:
        rig.pose()  # the last pose the motion capture saw: upright, before the fall
        rig.spin_until(lambda: False, 0.2)
        reset = rig.reset.call_async(Trigger.Request())
        rig.spin_until(lambda: False, 0.3)
        rig.pose()  # still before the confirmation: the person may not be done
        rig.spin_until(lambda: False, 0.2)
        assert rig.call(rig.done).success
        rig.spin_until(reset.done, 5.0)
        result = reset.result()
        assert not result.success
        assert result.message == "no fresh mocap pose within 1.5 s of the confirmation"

        reset = rig.reset.call_async(Trigger.Request())
        rig.spin_until(lambda: False, 0.2)
        assert rig.call(rig.done).success
        rig.pose(roll=0.5)  # fresh, but on its side
        rig.spin_until(reset.done, 5.0)
        assert reset.result().message == "robot is not upright"

        reset = rig.reset.call_async(Trigger.Request())
        rig.spin_until(lambda: False, 0.2)
        assert rig.call(rig.done).success
        rig.pose(roll=0.5)
        rig.spin_until(lambda: False, 0.2)
        assert not reset.done()  # waits for the robot to come upright...
        rig.pose()
        rig.spin_until(reset.done, 5.0)
        result = reset.result()
        assert result.success and result.message == "robot upright"  # ...and it did


def test_auto_confirm_takes_the_pose_the_simulator_sends_with_the_placement():
    with _reset_rig("auto_confirm:=true", "reset_timeout:=1.0") as rig:
        sends_pose = [True]

        def place_upright(_req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
            if sends_pose[0]:  # as the MuJoCo node does: the placed pose, then the reply
                rig.pose()
            res.success = True
            return res

        rig.world.create_service(Trigger, "sim/place_upright", place_upright)
        rig.pose(roll=0.5)  # fallen
        rig.spin_until(lambda: False, 0.2)
        assert rig.call(rig.reset).message == "robot upright"
        sends_pose[0] = False  # a placement whose pose never came
        result = rig.call(rig.reset)
        assert not result.success and result.message.startswith("no fresh mocap pose")
