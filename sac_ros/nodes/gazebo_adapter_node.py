"""Gazebo stand-in for the reset interfaces the reward node uses (sim:=gazebo).

NOT RUN AGAINST GAZEBO HERE: the build machines have neither Gazebo nor the
controller_manager_msgs and ros_gz_interfaces packages. The tests start this node without
them (its services then answer with the missing package's name, and /diagnostics reports
it) and, where those packages are installed, against stand-ins of controller_manager and
gz's set_pose. Written against ROS 2 Jazzy/Kilted interfaces.

- ``valve/torque_enable`` (std_srvs/SetBool), D'Claw: activates (True) or deactivates
  (False) the ``valve_position_controller`` through ``controller_manager/switch_controller``
  (controller_manager_msgs/SwitchController), so the valve turns freely during episodes
  exactly as with the hardware driver's torque off. The controller itself listens on
  ``valve/position_controller/commands``.
- ``sim/place_upright`` (std_srvs/Trigger), Minitaur: sets the model's pose upright at
  ``standing_height`` through ``set_pose_service`` (ros_gz_interfaces/SetEntityPose,
  bridged from gz's ``/world/<world>/set_pose`` by config/gazebo/minitaur_bridge.yaml).

/diagnostics (``sac_ros: gazebo_adapter (<node>)``, hardware_id ``gazebo:<entity>``):
requests served and failed, calls to Gazebo's side and their latency, controller switches
or placements, whether that side's service is up, the last error.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.client import Client
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from sac_ros.nodes.common import ERROR, WARN, Diagnostics, declare, spin_node

# Base height (m) of a Minitaur placed upright: the launch file's spawn height, a little
# above the 0.229 m it stands at in the standing pose the policy holds during a reset.
STANDING_HEIGHT = 0.25


def interface(module: str, name: str) -> Any | None:
    """A ROS interface type, or None where its package is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


class GazeboAdapterNode(Node):
    def __init__(self) -> None:
        super().__init__("gazebo_adapter")
        self.robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        self.controller = declare(
            self, "valve_controller", "valve_position_controller", "The valve's controller"
        )
        self.entity = declare(self, "entity", self.robot, "Name of the robot's model in Gazebo")
        self.height = declare(
            self, "standing_height", STANDING_HEIGHT, "Base height when placed upright (m)",
            lo=0.0, hi=2.0,
        )  # fmt: skip
        self.timeout = declare(
            self, "service_timeout", 5.0, "Wait this long for Gazebo's side to answer (s)",
            lo=0.05, hi=60.0,
        )  # fmt: skip
        pose_service = declare(self, "set_pose_service", "/world/sac_ros_arena/set_pose",
                               "Bridged gz set_pose service (Minitaur)")  # fmt: skip
        self.requests = self.requests_failed = 0
        self.calls = self.calls_failed = 0
        self.done = 0  # controller switches (D'Claw) or placements (Minitaur) that worked
        self.call_ms = math.nan
        self.valve_active: bool | None = None
        self.last_error = ""
        self.missing = ""  # the interface package that is not installed, if any
        self.client: Client | None = None
        self.diag = Diagnostics(self, "gazebo_adapter", hardware_id=f"gazebo:{self.entity}")
        self.diag.values_from(self._diag_values)
        group = ReentrantCallbackGroup()
        if self.robot == "dclaw":
            self._serve(group, "controller_manager_msgs.srv", "SwitchController",
                        "controller_manager/switch_controller")  # fmt: skip
            self.create_service(SetBool, "valve/torque_enable", self._on_torque,
                                callback_group=group)  # fmt: skip
        elif self.robot == "minitaur":
            self._serve(group, "ros_gz_interfaces.srv", "SetEntityPose", pose_service)
            self.create_service(Trigger, "sim/place_upright", self._on_place,
                                callback_group=group)  # fmt: skip
        else:
            raise ValueError(f"robot must be dclaw or minitaur, got {self.robot!r}")

    def _serve(self, group: ReentrantCallbackGroup, module: str, name: str, service: str) -> None:
        """The client of Gazebo's side, or a lasting ERROR where its package is missing."""
        self.srv_type = interface(module, name)
        if self.srv_type is None:
            package = module.split(".")[0]
            self.missing = (
                f"{package} is not installed (ros-$ROS_DISTRO-{package.replace('_', '-')}): "
                f"cannot call {service}"
            )
            self.get_logger().error(self.missing)
            self.diag.problem("interfaces", ERROR, self.missing, hold=math.inf)
            return
        self.client = self.create_client(self.srv_type, service, callback_group=group)

    # --- calls to Gazebo's side -------------------------------------------------------
    def _gazebo(self, request: Any, accepted: Callable[[Any], bool], refused: str) -> str:
        """Call Gazebo's side; "" when it did it, else why not."""
        if self.client is None:
            return self.missing
        if not self.client.wait_for_service(timeout_sec=self.timeout):
            return f"{self.client.srv_name} not available"
        self.calls += 1
        start = time.monotonic()
        done = threading.Event()
        future = self.client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        answered = done.wait(self.timeout)
        self.call_ms = (time.monotonic() - start) * 1e3
        if answered and future.result() is not None and accepted(future.result()):
            return ""
        self.calls_failed += 1
        if not answered:
            return f"{self.client.srv_name}: no answer within {self.timeout:g} s"
        return refused

    def _served(self, error: str) -> bool:
        """Count one request to this node and report its failure; True if it worked."""
        self.requests += 1
        if not error:
            self.done += 1
            self.diag.clear("request")
            return True
        self.requests_failed += 1
        self.last_error = error
        if error != self.missing:  # that one is reported for good already
            self.diag.problem("request", WARN, error, hold=30.0)
            self.get_logger().warning(error, throttle_duration_sec=5.0)
        return False

    def _on_torque(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        error = self.missing
        if self.client is not None:
            switch = self.srv_type.Request()
            switch.activate_controllers = [self.controller] if req.data else []
            switch.deactivate_controllers = [] if req.data else [self.controller]
            switch.strictness = self.srv_type.Request.STRICT
            refused = f"controller_manager refused to switch {self.controller}"
            error = self._gazebo(switch, lambda r: bool(r.ok), refused)
        res.success = self._served(error)
        if res.success:
            self.valve_active = bool(req.data)
        action = "activated" if req.data else "deactivated"
        res.message = f"{self.controller} {action}" if res.success else error
        return res

    def _on_place(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        error = self.missing
        if self.client is not None:
            request = self.srv_type.Request()
            request.entity.name = self.entity
            request.pose.position.z = float(self.height)
            request.pose.orientation.w = 1.0
            refused = f"{self.client.srv_name} refused to place {self.entity}"
            error = self._gazebo(request, lambda r: bool(r.success), refused)
        res.success = self._served(error)
        res.message = "placed upright" if res.success else error
        return res

    # --- diagnostics ------------------------------------------------------------------
    def _diag_values(self) -> dict[str, object]:
        ready = self.client is not None and self.client.service_is_ready()
        if self.client is not None and not ready:
            self.diag.problem(
                "gazebo", WARN, f"{self.client.srv_name} not available: is Gazebo running?",
                hold=2.5,
            )  # fmt: skip
        values: dict[str, object] = {
            "gazebo_service": self.client.srv_name if self.client is not None else "",
            "gazebo_service_ready": ready,
            "requests": self.requests,
            "requests_failed": self.requests_failed,
            "gazebo_calls": self.calls,
            "gazebo_calls_failed": self.calls_failed,
            "last_call_ms": round(self.call_ms, 2),
            "last_error": self.last_error,
        }
        if self.robot == "dclaw":
            values["controller_switches"] = self.done
            active = self.valve_active
            values["valve_controller_active"] = "unknown" if active is None else active
        else:
            values["placements"] = self.done
        return values


def main(args: list[str] | None = None) -> None:
    spin_node(GazeboAdapterNode, args, threads=2)


if __name__ == "__main__":
    main()
