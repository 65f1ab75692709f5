"""Health of every sac_ros node in rqt_robot_monitor: diagnostic_aggregator's
aggregator_node with config/diagnostic_aggregator.yaml (/diagnostics -> /diagnostics_agg,
grouped as sac_ros / Policy, Learner, Reward, Simulation, Drivers, Camera).

    ros2 launch sac_ros monitor.launch.py                 # the aggregator alone
    ros2 launch sac_ros monitor.launch.py rqt:=true       # and rqt_robot_monitor
    ros2 launch sac_ros monitor.launch.py analyzers:=my_analyzers.yaml

Start it beside any robot or learner launch (same ROS_DOMAIN_ID). Needs
ros-$ROS_DISTRO-diagnostic-aggregator (and ros-$ROS_DISTRO-rqt-robot-monitor for rqt).
"""

import sys
from pathlib import Path

from launch import LaunchDescription

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sac_ros_launch import monitor_launch_description


def generate_launch_description() -> LaunchDescription:
    return monitor_launch_description()
