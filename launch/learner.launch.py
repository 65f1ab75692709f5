"""The learner alone, for the training workstation of a two-computer setup.

    ros2 launch sac_ros learner.launch.py robot:=dclaw robot_namespaces:=/dclaw
    ros2 launch sac_ros learner.launch.py robot:=minitaur run_dir:=runs/walk resume:=true
    ros2 launch sac_ros learner.launch.py robot:=dclaw robot_namespaces:=/dclaw_0,/dclaw_1

The robots run robot.launch.py (or dclaw/minitaur.launch.py learner:=false) with the
same robot, obs and sim. Arguments: robot, sim, obs, robot_namespaces, resume, run_dir,
params_file, seed. The node comes from sac_ros.graph.build_graph with robot_side=False
(see _sac_ros_launch.py).
"""

import sys
from pathlib import Path

from launch import LaunchDescription

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sac_ros_launch import learner_launch_description


def generate_launch_description() -> LaunchDescription:
    return learner_launch_description()
