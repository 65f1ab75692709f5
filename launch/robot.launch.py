"""The robot side alone (no learner), for a robot computer that trains on a workstation.

    ros2 launch sac_ros robot.launch.py robot:=dclaw port:=/dev/ttyUSB0
    ros2 launch sac_ros robot.launch.py robot:=minitaur namespace:=minitaur_1

On the workstation: ros2 launch sac_ros learner.launch.py robot:=... robot_namespaces:=...
Both machines need the same ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET.
Arguments: robot, sim, obs, namespace, port, params_file, seed, gui. The nodes come from
sac_ros.graph.build_graph with learner=False (see _sac_ros_launch.py).
"""

import sys
from pathlib import Path

from launch import LaunchDescription

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sac_ros_launch import robot_launch_description


def generate_launch_description() -> LaunchDescription:
    return robot_launch_description(None, learner=False)
