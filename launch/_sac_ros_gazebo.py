"""The Gazebo side of ``sim:=gazebo``: gz sim, the robot in it, ros2_control, the bridge.

UNTESTED ON THE PROJECT'S BUILD MACHINES: they have no Gazebo (and no ROS 2 launch), so
these processes have never run there. Written for ROS 2 Jazzy/Kilted with gz sim
(Harmonic or newer), ros_gz_sim, ros_gz_bridge, gz_ros2_control and ros2_controllers
(apt: ros-$ROS_DISTRO-ros-gz ros-$ROS_DISTRO-gz-ros2-control ros-$ROS_DISTRO-ros2-controllers).
test/test_gazebo_config.py checks what can be checked without Gazebo: the controller and
bridge files name the joints and topics the code and the graph's nodes use.

sac_ros.graph gives the policy, reward and learner nodes for ``sim=gazebo`` (no
simulator node); this module adds, in the robot's namespace:

- gz sim with config/gazebo/sac_ros_arena.sdf (ros_gz_sim's gz_sim.launch.py);
- robot_state_publisher with the robot's URDF (urdf/<robot>/<robot>.urdf, its
  gz_ros2_control plugin pointed at the installed controllers file and the namespace);
- ros_gz_sim create, which spawns the model (entity name = robot name) from
  ``robot_description``;
- after the spawn, one controller_manager spawner per controller of
  config/gazebo/<robot>_controllers.yaml: joint_state_broadcaster (joint_states),
  joint_position_controller (subscribes joint_position_controller/commands, the policy's
  targets), for the D'Claw valve_state_broadcaster (valve/joint_states) and
  valve_position_controller (valve/position_controller/commands, inactive), for the
  Minitaur imu_sensor_broadcaster (imu);
- ros_gz_bridge parameter_bridge with config/gazebo/<robot>_bridge.yaml (/clock; the
  Minitaur's model pose as mocap/pose) and, for obs:=pixels,
  dclaw_camera_bridge.yaml (camera/image_32x32).

One robot per Gazebo world: the gz topic names in the URDF and the bridge files are
fixed (the entity is named after the robot).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sac_ros.paths import share_path
from sac_ros.robots.models import model_path

GZ_ROS2_CONTROL = "gz_ros2_control::GazeboSimROS2ControlPlugin"
WORLD = "sac_ros_arena.sdf"
# Spawn height of the model's root (m): the D'Claw's table just above the floor; the
# Minitaur a little above its standing height (0.229 m, MJCF keyframe "stand").
SPAWN_Z = {"dclaw": 0.01, "minitaur": 0.25}
CAMERA_LINK = "camera_link"  # D'Claw: the <gazebo reference> holding the camera sensor


@dataclass(frozen=True)
class Controller:
    """A controller of <robot>_controllers.yaml, as its spawner starts it."""

    name: str
    # Node-local remappings of the controller (spawner --controller-ros-args): they
    # move its topics onto the names the graph's nodes use.
    remap: tuple[tuple[str, str], ...] = ()
    inactive: bool = False  # loaded and configured, not activated


CONTROLLERS: dict[str, tuple[Controller, ...]] = {
    "dclaw": (
        Controller("joint_state_broadcaster"),
        Controller("joint_position_controller"),
        Controller("valve_state_broadcaster", remap=(("~/joint_states", "valve/joint_states"),)),
        Controller(
            "valve_position_controller",
            remap=(("~/commands", "valve/position_controller/commands"),),
            inactive=True,  # the valve turns freely unless a reset drives it
        ),
    ),
    "minitaur": (
        Controller("joint_state_broadcaster"),
        Controller("joint_position_controller"),
        Controller("imu_sensor_broadcaster", remap=(("~/imu", "imu"),)),
    ),
}


def _robot(robot: str) -> str:
    if robot not in CONTROLLERS:
        raise ValueError(
            f"no Gazebo setup for robot {robot!r}; expected one of {tuple(CONTROLLERS)}"
        )
    return robot


def controllers_file(robot: str) -> Path:
    return share_path("config", "gazebo", f"{_robot(robot)}_controllers.yaml")


def bridge_files(robot: str, obs: str) -> list[Path]:
    files = [share_path("config", "gazebo", f"{_robot(robot)}_bridge.yaml")]
    if obs == "pixels":
        files.append(share_path("config", "gazebo", f"{robot}_camera_bridge.yaml"))
    return files


def world_file() -> Path:
    return share_path("config", "gazebo", WORLD)


def controller_manager(namespace: str) -> str:
    return f"{namespace}/controller_manager"


def gazebo_urdf(robot: str, namespace: str, camera: bool = True) -> str:
    """The robot's URDF for robot_state_publisher and Gazebo.

    The gz_ros2_control plugin gets the installed controllers file and the ROS
    namespace (``''`` = ``/``); ``camera=False`` drops the D'Claw's camera sensor (only
    the pixel task needs it rendered).
    """
    root = ET.parse(model_path(_robot(robot), "urdf")).getroot()
    plugins = [p for p in root.iter("plugin") if p.get("name") == GZ_ROS2_CONTROL]
    if len(plugins) != 1:
        raise ValueError(
            f"{robot}.urdf must hold one <gazebo><plugin name='{GZ_ROS2_CONTROL}'>, "
            f"found {len(plugins)}"
        )
    plugin = plugins[0]
    params = plugin.find("parameters")
    if params is None:
        params = ET.SubElement(plugin, "parameters")
    params.text = str(controllers_file(robot))
    ros = plugin.find("ros")
    if ros is None:
        ros = ET.SubElement(plugin, "ros")
    ns = ros.find("namespace")
    if ns is None:
        ns = ET.SubElement(ros, "namespace")
    ns.text = namespace or "/"
    if not camera:
        for block in root.findall("gazebo"):
            if block.get("reference") == CAMERA_LINK:
                root.remove(block)
    return ET.tostring(root, encoding="unicode")


def spawner_arguments(robot: str, namespace: str, controller: Controller) -> list[str]:
    """Command-line arguments of controller_manager's spawner for one controller."""
    args = [
        controller.name,
        "--controller-manager", controller_manager(namespace),
        "--controller-manager-timeout", "120",
        "--param-file", str(controllers_file(robot)),
    ]  # fmt: skip
    if controller.inactive:
        args.append("--inactive")
    for src, dst in controller.remap:
        # One string holding a space: argparse takes it as the option's value.
        args += ["--controller-ros-args", f"-r {src}:={dst}"]
    return args


def gz_args(gui: bool) -> str:
    """gz sim's command line: run at once, the arena world, the GUI or headless."""
    return f"-r -v 2 {world_file()}" + ("" if gui else " -s --headless-rendering")


# --- launch actions (launch and launch_ros imported from here on) ---------------------
def gazebo_actions(robot: str, obs: str, namespace: str, gui: bool = True) -> list[Any]:
    """gz sim, robot_state_publisher, spawn, bridge(s), and the controller spawners."""
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue
    from launch_ros.substitutions import FindPackageShare

    ns = namespace or "/"
    sim_time = {"use_sim_time": True}
    gz = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])
        ),
        launch_arguments={"gz_args": gz_args(gui), "on_exit_shutdown": "true"}.items(),
    )
    description = gazebo_urdf(robot, namespace, camera=obs == "pixels")
    state_publisher = Node(
        package="robot_state_publisher",
        executable="robot_state_publisher",
        namespace=ns,
        parameters=[{"robot_description": ParameterValue(description, value_type=str), **sim_time}],
        output="screen",
    )
    spawn = Node(
        package="ros_gz_sim",
        executable="create",
        namespace=ns,
        arguments=[
            "-name",
            robot,
            "-topic",
            f"{namespace}/robot_description",
            "-z",
            str(SPAWN_Z[robot]),
        ],  # fmt: skip
        output="screen",
    )
    bridges = [
        Node(
            package="ros_gz_bridge",
            executable="parameter_bridge",
            name=f"gz_bridge_{i}",
            namespace=ns,
            parameters=[{"config_file": str(path), **sim_time}],
            output="screen",
        )
        for i, path in enumerate(bridge_files(robot, obs))
    ]
    spawners = [
        Node(
            package="controller_manager",
            executable="spawner",
            namespace=ns,
            arguments=spawner_arguments(robot, namespace, c),
            output="screen",
        )
        for c in CONTROLLERS[robot]
    ]
    # Controllers need the model (and its gz_ros2_control plugin) in the world first.
    after_spawn = RegisterEventHandler(OnProcessExit(target_action=spawn, on_exit=spawners))
    return [gz, state_publisher, spawn, *bridges, after_spawn]
