"""The Minitaur reward node in this process: which commands a step's reward is judged on."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped, Vector3Stamped
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray

from sac_ros.nodes.common import COMMAND_QOS, LOCKSTEP_SENSOR_QOS, REWARD_QOS
from sac_ros.nodes.reward_node import RewardNode
from sac_ros.robots import minitaur
from sac_ros.tasks import minitaur_walk

pytestmark = [pytest.mark.ros]


def _pose(t: float) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round(t % 1 * 1e9))
    msg.pose.orientation.w = 1.0
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
