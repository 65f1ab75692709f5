"""Minitaur walking: the robot's nodes and (by default) the learner.

    ros2 launch sac_ros minitaur.launch.py                   # real robot
    ros2 launch sac_ros minitaur.launch.py sim:=mujoco
    ros2 launch sac_ros minitaur.launch.py sim:=gazebo   # untested: see _sac_ros_gazebo.py

Arguments: sim:=none|mujoco|gazebo, obs:=state, namespace, port, learner, resume,
run_dir, params_file, seed, gui (``ros2 launch sac_ros minitaur.launch.py -s`` lists
them). The nodes come from sac_ros.graph.build_graph (see _sac_ros_launch.py).
"""

import sys
from pathlib import Path

from launch import LaunchDescription

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sac_ros_launch import robot_launch_description


def generate_launch_description() -> LaunchDescription:
    return robot_launch_description("minitaur", learner=True)
