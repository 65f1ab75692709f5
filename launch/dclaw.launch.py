"""D'Claw valve turning: the robot's nodes and (by default) the learner.

    ros2 launch sac_ros dclaw.launch.py                      # real robot, /dev/ttyUSB0
    ros2 launch sac_ros dclaw.launch.py sim:=mujoco obs:=pixels
    ros2 launch sac_ros dclaw.launch.py sim:=gazebo gui:=false   # untested: see _sac_ros_gazebo.py
    ros2 launch sac_ros dclaw.launch.py port:=/dev/ttyUSB1 run_dir:=runs/claw resume:=true

Arguments: sim:=none|mujoco|gazebo|emulated, obs:=state|pixels, namespace, port, learner,
resume, run_dir, params_file, seed, gui (``ros2 launch sac_ros dclaw.launch.py -s``
lists them). The nodes come from sac_ros.graph.build_graph (see _sac_ros_launch.py).
"""

import sys
from pathlib import Path

from launch import LaunchDescription

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sac_ros_launch import robot_launch_description


def generate_launch_description() -> LaunchDescription:
    return robot_launch_description("dclaw", learner=True)
