"""The reference for bench/control_latency.py: the cheapest possible rclpy node that
answers each trigger reading with a joint command, same message types and QoS as the
policy node. Its round trip is what DDS plus the Python executor cost by themselves."""

from __future__ import annotations

import sys

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from sac_ros.nodes.common import COMMAND_QOS, SENSOR_QOS, spin_node


class Echo(Node):
    def __init__(self) -> None:
        super().__init__("echo")
        self.pub = self.create_publisher(
            Float64MultiArray, "joint_position_controller/commands", COMMAND_QOS
        )
        self.create_subscription(JointState, "joint_states", self._on_joints, SENSOR_QOS)
        # Subscribed like the policy node, so the same traffic reaches this process.
        self.create_subscription(JointState, "valve/joint_states", lambda _m: None, SENSOR_QOS)
        self.create_subscription(Image, "camera/image_32x32", lambda _m: None, SENSOR_QOS)

    def _on_joints(self, msg: JointState) -> None:
        self.pub.publish(Float64MultiArray(data=list(msg.position)))


if __name__ == "__main__":
    spin_node(Echo, sys.argv)
