"""Reward/reset node: each step's reward from the world's state, and episode resets.

D'Claw: subscribes ``joint_states`` and ``valve/joint_states`` (the valve encoder) and
publishes ``sac/reward`` (geometry_msgs/Vector3Stamped: x reward, y terminated, z success;
stamped with the readings' stamp) from sac_ros.tasks.dclaw_valve.reward. ``sac/reset``
(std_srvs/Trigger) drives the valve motor to a random start angle through
``valve/torque_enable`` (std_srvs/SetBool) and ``valve/position_controller/commands``
(what the D'Claw driver and the MuJoCo sim both offer), then frees the valve.

``sync:=exact`` (lockstep simulation) pairs readings with equal stamps; ``sync:=latest``
(hardware) computes on each valve reading with the latest joint reading if it is no older
than ``max_sensor_age``.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from geometry_msgs.msg import Vector3Stamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.nodes import messages
from sac_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    EVENT_QOS,
    SENSOR_QOS,
    WARN,
    Diagnostics,
    declare,
    spin_node,
    stamp_seconds,
)
from sac_ros.robots import dclaw
from sac_ros.runtime.resets import ValveReset
from sac_ros.tasks import dclaw_valve


class RewardNode(Node):
    def __init__(self) -> None:
        super().__init__("reward")
        robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        if robot != "dclaw":
            raise ValueError(f"no reward node for robot {robot!r} yet")
        self.sync = declare(self, "sync", "exact", "exact (lockstep stamps) or latest")
        self.max_age = declare(
            self, "max_sensor_age", 0.25, "Oldest joint reading used (s)", lo=0.01, hi=5.0,
            read_only=False,
        )
        seed = declare(self, "seed", 0, "Seed of the reset distribution", lo=0, hi=2**31 - 1)
        self.target = declare(
            self, "target_angle", dclaw_valve.TARGET_ANGLE, "Valve goal (rad)",
            lo=-math.pi, hi=math.pi,
        )
        reset_timeout = declare(
            self, "reset_timeout", 10.0, "Valve reset time limit (s)", lo=0.5, hi=120.0
        )
        declare(self, "auto_confirm", True, "Unused for the D'Claw (resets are scripted)")
        self.rng = np.random.default_rng(seed)
        self.rewards_published = 0
        self.rejected = 0
        self.resets_done = 0
        self.resets_failed = 0
        self._joints: tuple[float, np.ndarray, np.ndarray] | None = None
        self._valve: tuple[float, float, object] | None = None
        self._last_stamp = -1.0
        self._lock = threading.Lock()

        sensors = MutuallyExclusiveCallbackGroup()
        self.pub_reward = self.create_publisher(Vector3Stamped, "sac/reward", EVENT_QOS)
        self.create_subscription(
            JointState, "joint_states", self._on_joints, SENSOR_QOS, callback_group=sensors
        )
        self.create_subscription(
            JointState, "valve/joint_states", self._on_valve, SENSOR_QOS, callback_group=sensors
        )
        reset_group = ReentrantCallbackGroup()
        self.pub_valve = self.create_publisher(
            Float64MultiArray, "valve/position_controller/commands", COMMAND_QOS
        )
        self.torque_client = self.create_client(
            SetBool, "valve/torque_enable", callback_group=reset_group
        )
        self.create_service(Trigger, "sac/reset", self._on_reset, callback_group=reset_group)
        self.valve_reset = ValveReset(
            set_torque=self._set_valve_torque,
            command=lambda a: self.pub_valve.publish(messages.float_array(np.array([a]))),
            read_angle=lambda: None if self._valve is None else self._valve[1],
            timeout=reset_timeout,
            # Settle and timeout in the node's time: simulation time in lockstep.
            clock=lambda: self.get_clock().now().nanoseconds * 1e-9,
        )
        self.diag = Diagnostics(self, "reward", hardware_id=robot)
        self.diag.values_from(
            lambda: {
                "rewards_published": self.rewards_published,
                "rejected_readings": self.rejected,
                "resets_done": self.resets_done,
                "resets_failed": self.resets_failed,
            }
        )

    def _reject(self, what: str, exc: Exception) -> None:
        self.rejected += 1
        self.diag.problem(what, WARN, f"{what}: {exc}")
        self.get_logger().warn(f"{what}: {exc}", throttle_duration_sec=2.0)

    def _on_joints(self, msg: JointState) -> None:
        try:
            pos, vel = messages.read_joint_state(msg, dclaw.JOINT_NAMES)
        except ValueError as exc:
            self._reject("joint_states", exc)
            return
        self._joints = (stamp_seconds(msg.header.stamp), pos, vel)
        if self.sync == "exact":
            self._compute()

    def _on_valve(self, msg: JointState) -> None:
        try:
            pos, _ = messages.read_joint_state(msg, [dclaw.VALVE_JOINT], need_velocity=False)
        except ValueError as exc:
            self._reject("valve/joint_states", exc)
            return
        self._valve = (stamp_seconds(msg.header.stamp), float(pos[0]), msg.header.stamp)
        self._compute()

    def _compute(self) -> None:
        if self._joints is None or self._valve is None:
            return
        (t_joints, pos, vel), (t_valve, angle, stamp) = self._joints, self._valve
        if t_valve <= self._last_stamp:
            return
        if self.sync == "exact" and t_joints != t_valve:
            return  # the other reading of this instant is on its way
        if self.sync == "latest" and abs(t_valve - t_joints) > self.max_age:
            self._reject("joint_states", ValueError("joint reading too old for the reward"))
            return
        self._last_stamp = t_valve
        value, _terms = dclaw_valve.reward(angle, pos, vel, self.target)
        success = dclaw_valve.is_success(angle, self.target)
        self.pub_reward.publish(messages.reward_msg(stamp, value, False, success))
        self.rewards_published += 1

    # --- resets ---------------------------------------------------------------------
    def _set_valve_torque(self, on: bool) -> bool:
        if not self.torque_client.wait_for_service(timeout_sec=5.0):
            return False
        done = threading.Event()
        future = self.torque_client.call_async(SetBool.Request(data=on))
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(5.0):
            return False
        result = future.result()
        return bool(result is not None and result.success)

    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._lock:
            start = dclaw_valve.sample_initial_angle(self.rng)
            ok, message = self.valve_reset.run(start)
        if ok:
            self.resets_done += 1
            self.diag.clear("reset")
        else:
            self.resets_failed += 1
            self.diag.problem("reset", ERROR, f"reset failed: {message}", hold=30.0)
            self.get_logger().error(f"reset failed: {message}")
        res.success, res.message = ok, message
        return res


def main(args: list[str] | None = None) -> None:
    spin_node(RewardNode, args, threads=3)


if __name__ == "__main__":
    main()
