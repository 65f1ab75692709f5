"""Gazebo stand-in for the reset interfaces the reward node uses (sim:=gazebo).

UNTESTED HERE: the build machines have neither Gazebo nor the controller_manager and
ros_gz interface packages; the test suite only checks that graph.py lists this node for
Gazebo and that the module compiles. Written against ROS 2 Jazzy/Kilted interfaces.

- ``valve/torque_enable`` (std_srvs/SetBool), D'Claw: activates (True) or deactivates
  (False) the ``valve_position_controller`` through ``controller_manager/switch_controller``
  (controller_manager_msgs/SwitchController), so the valve turns freely during episodes
  exactly as with the hardware driver's torque off. The controller itself listens on
  ``valve/position_controller/commands``.
- ``sim/place_upright`` (std_srvs/Trigger), Minitaur: sets the model's pose upright at
  ``standing_height`` through ``set_pose_service`` (ros_gz_interfaces/SetEntityPose,
  bridged from gz's ``/world/<world>/set_pose`` by config/gazebo/minitaur_bridge.yaml).
"""

from __future__ import annotations

import threading

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from sac_ros.nodes.common import declare, spin_node


class GazeboAdapterNode(Node):
    def __init__(self) -> None:
        super().__init__("gazebo_adapter")
        robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        self.controller = declare(
            self, "valve_controller", "valve_position_controller", "The valve's controller"
        )
        self.entity = declare(self, "entity", robot, "Name of the robot's model in Gazebo")
        self.height = declare(
            self, "standing_height", 0.2, "Base height when placed upright (m)", lo=0.0, hi=2.0
        )
        group = ReentrantCallbackGroup()
        if robot == "dclaw":
            from controller_manager_msgs.srv import SwitchController

            self._switch_type = SwitchController
            self.switch = self.create_client(
                SwitchController, "controller_manager/switch_controller", callback_group=group
            )
            self.create_service(
                SetBool, "valve/torque_enable", self._on_torque, callback_group=group
            )
        else:
            from ros_gz_interfaces.srv import SetEntityPose

            self._pose_type = SetEntityPose
            name = declare(self, "set_pose_service", "/world/sac_ros_arena/set_pose",
                           "Bridged gz set_pose service")  # fmt: skip
            self.set_pose = self.create_client(SetEntityPose, name, callback_group=group)
            self.create_service(
                Trigger, "sim/place_upright", self._on_place, callback_group=group
            )

    def _call(self, client: object, request: object, timeout: float = 5.0) -> object | None:
        if not client.wait_for_service(timeout_sec=timeout):  # type: ignore[attr-defined]
            return None
        done = threading.Event()
        future = client.call_async(request)  # type: ignore[attr-defined]
        future.add_done_callback(lambda _f: done.set())
        return future.result() if done.wait(timeout) else None

    def _on_torque(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        switch = self._switch_type.Request()
        names = [self.controller]
        switch.activate_controllers = names if req.data else []
        switch.deactivate_controllers = [] if req.data else names
        switch.strictness = self._switch_type.Request.STRICT
        result = self._call(self.switch, switch)
        res.success = bool(result is not None and result.ok)
        res.message = f"{self.controller} {'activated' if req.data else 'deactivated'}"
        if not res.success:
            res.message = f"switching {self.controller} failed"
        return res

    def _on_place(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        request = self._pose_type.Request()
        request.entity.name = self.entity
        request.pose.position.z = float(self.height)
        request.pose.orientation.w = 1.0
        result = self._call(self.set_pose, request)
        res.success = bool(result is not None and result.success)
        res.message = "placed upright" if res.success else "set_pose failed"
        return res


def main(args: list[str] | None = None) -> None:
    spin_node(GazeboAdapterNode, args, threads=2)


if __name__ == "__main__":
    main()
