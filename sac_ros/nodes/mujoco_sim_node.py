"""MuJoCo stand-in for the robot hardware: the same topics a driver publishes.

Publishes (relative names): ``joint_states``; D'Claw: ``valve/joint_states`` and, with
``camera:=true``, ``camera/image_32x32`` (rgb8, rendered from the model's camera);
Minitaur: ``imu`` and ``mocap/pose``. Subscribes ``joint_position_controller/commands``
(std_msgs/Float64MultiArray in URDF joint order, clipped to the joint limits by the sim).
D'Claw valve motor, as the hardware driver offers it: ``valve/torque_enable``
(std_srvs/SetBool) and ``valve/position_controller/commands`` (one angle, rad).
Minitaur: ``sim/place_upright`` (std_srvs/Trigger) puts the robot back on its feet,
as the person in the loop would on hardware.

Modes: ``lockstep`` steps one control period when the command for the current step
arrives (then publishes the new readings, stamped with simulation time, and /clock); a
command naming another instant (``messages.command``: a resend for an instant already
stepped from) is dropped and counted (``commands_stale``);
if no command comes for ``stall_timeout`` seconds (live parameter) it publishes the
readings again, so a message lost on the best-effort sensor QoS cannot stall the loop.
``realtime`` steps on a wall-clock timer with the latest command. ``control_rate_hz``
sets one control period (0: the robot's own, Minitaur 50 Hz, D'Claw 10 Hz).

``command_interface`` (Minitaur): ``position`` (default) takes the commands as motor
angle targets, tracked by the model's position servos; ``effort`` takes them as motor
torques (N m, clipped to the motors' torque limit), like a ros2_control forward command
controller on effort interfaces. To stand the sim behind the Minitaur driver in effort
mode, remap ``joint_position_controller/commands:=forward_effort_controller/commands``
and ``joint_states:=joint_state_broadcaster/joint_states``; in position mode the
commands come from ``forward_position_controller/commands``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.nodes import messages
from sac_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    LOCKSTEP_SENSOR_QOS,
    SENSOR_QOS,
    WARN,
    Diagnostics,
    declare,
    spin_node,
    steady_timer,
)
from sac_ros.robots import minitaur
from sac_ros.sim.robots import SimRobot, make_sim_robot


class MujocoSimNode(Node):
    def __init__(self) -> None:
        super().__init__("mujoco_sim")
        robot = declare(self, "robot", "dclaw", "Robot model: dclaw or minitaur")
        self.mode = declare(self, "mode", "lockstep", "lockstep (step per command) or realtime")
        camera = declare(self, "camera", False, "Render and publish camera/image_32x32")
        seed = declare(self, "seed", 0, "Seed of the simulation's randomness", lo=0, hi=2**31 - 1)
        self.stall_timeout = declare(
            self, "stall_timeout", 0.5, "Lockstep: republish readings after this long (s)",
            lo=0.05, hi=10.0, read_only=False,
        )  # fmt: skip
        self.interface = declare(
            self, "command_interface", "position",
            "Commands are motor angles (position) or torques in N m (effort, Minitaur)",
        )  # fmt: skip
        rate = declare(
            self, "control_rate_hz", 0.0, "Control periods per second (0: the robot's own)",
            lo=0.0, hi=1000.0,
        )  # fmt: skip
        if self.mode not in ("lockstep", "realtime"):
            raise ValueError(f"mode must be lockstep or realtime, got {self.mode!r}")
        self.sim: SimRobot = make_sim_robot(
            robot, seed=seed, camera=camera, command_interface=self.interface,
            control_rate_hz=rate if rate > 0 else None,
        )  # fmt: skip
        if rate > 0:
            _check_rate(rate, self.sim.dt, self.sim.sim.model.opt.timestep)
        self.names = self.sim.joint_names
        self.commands_received = 0
        self.commands_rejected = 0
        self.commands_stale = 0  # lockstep: answers to an instant already stepped from
        self.steps = 0
        self._pending: np.ndarray | None = None
        self._valve_torque = False
        self._last_publish = time.monotonic()

        sensor_qos = LOCKSTEP_SENSOR_QOS if self.mode == "lockstep" else SENSOR_QOS
        self.pub_joints = self.create_publisher(JointState, "joint_states", sensor_qos)
        self._joint_msg = JointState(name=list(self.names))
        self.pub_clock = self.create_publisher(Clock, "/clock", 10)
        self.pub_valve = self.pub_image = self.pub_imu = self.pub_pose = None
        if self.sim.has_valve:
            self.pub_valve = self.create_publisher(JointState, "valve/joint_states", sensor_qos)
            self._valve_msg = JointState(name=[self.sim.valve_joint])
            self.create_subscription(
                Float64MultiArray, "valve/position_controller/commands", self._on_valve, 10
            )
            self.create_service(SetBool, "valve/torque_enable", self._on_valve_torque)
        if camera:
            self.pub_image = self.create_publisher(Image, "camera/image_32x32", sensor_qos)
        if self.sim.has_base:
            self.pub_imu = self.create_publisher(Imu, "imu", sensor_qos)
            self.pub_pose = self.create_publisher(PoseStamped, "mocap/pose", sensor_qos)
            self.create_service(Trigger, "sim/place_upright", self._on_place_upright)
        self.create_subscription(
            Float64MultiArray, "joint_position_controller/commands", self._on_command, COMMAND_QOS
        )
        self.diag = Diagnostics(self, "mujoco_sim", hardware_id=f"mujoco/{robot}")
        self.diag.values_from(
            lambda: {
                "mode": self.mode,
                "sim_time": f"{self.sim.time:.3f}",
                "steps": self.steps,
                "commands_received": self.commands_received,
                "commands_rejected": self.commands_rejected,
                "commands_stale": self.commands_stale,
                "command_interface": self.interface,
                "stall_timeout": self.stall_timeout,
                "control_rate_hz": f"{1.0 / self.sim.dt:.4g}",
            }
        )
        self._stall_timer = None
        if self.mode == "lockstep":
            self._stall_timer = steady_timer(self, self.stall_timeout / 2, self._on_stall_check)
        else:
            steady_timer(self, self.sim.dt, self._on_realtime_tick)
        self.add_on_set_parameters_callback(self._on_params)
        self.publish_readings()

    # --- parameters -----------------------------------------------------------------
    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "stall_timeout":
                self.stall_timeout = float(p.value)
                if self._stall_timer is not None:  # checks twice per timeout
                    self._stall_timer.timer_period_ns = int(self.stall_timeout / 2 * 1e9)
        return SetParametersResult(successful=True)

    # --- inputs ---------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            targets = messages.read_array(msg, len(self.names), "joint command")
        except ValueError as exc:
            self.commands_rejected += 1
            self.diag.problem("command", WARN, f"rejected command: {exc}")
            self.get_logger().warning(f"rejected command: {exc}", throttle_duration_sec=2.0)
            return
        self.commands_received += 1
        if self.mode == "lockstep":
            instant = messages.command_instant(msg)
            if instant is not None and instant != self._instant_ns():
                # A resend of a command already stepped on (it crossed a republish of its
                # instant): stepping again would apply every later action a step late.
                self.commands_stale += 1
                return
            self._apply(targets)
            self._step_and_publish()
        else:
            self._pending = targets

    def _apply(self, command: np.ndarray) -> None:
        if self.interface == "effort":
            self.sim.set_efforts(command)
        else:
            self.sim.set_targets(command)

    def _on_valve(self, msg: Float64MultiArray) -> None:
        try:
            angle = float(messages.read_array(msg, 1, "valve command")[0])
        except ValueError as exc:
            self.get_logger().warning(f"rejected valve command: {exc}", throttle_duration_sec=2.0)
            return
        if self._valve_torque:  # like a servo: the goal is ignored while torque is off
            self.sim.set_valve_motor(True, angle)

    def _on_valve_torque(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        self._valve_torque = bool(req.data)
        self.sim.set_valve_motor(self._valve_torque, None)
        res.success, res.message = True, f"valve torque {'on' if req.data else 'off'}"
        return res

    def _on_place_upright(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self.sim.place_upright()
        self.publish_readings()
        res.success, res.message = True, "robot placed upright"
        return res

    # --- stepping -------------------------------------------------------------------
    def _step_and_publish(self) -> None:
        try:
            self.sim.step()
        except Exception as exc:  # a diverged simulation must not take the graph down
            self.diag.problem("physics", ERROR, f"simulation step failed: {exc}")
            self.get_logger().error(f"simulation step failed, resetting: {exc}")
            self.sim.recover()
        self.steps += 1
        self.publish_readings()

    def _on_realtime_tick(self) -> None:
        if self._pending is not None:
            self._apply(self._pending)
        self._step_and_publish()

    def _on_stall_check(self) -> None:
        if time.monotonic() - self._last_publish > self.stall_timeout:
            self.publish_readings()

    def _instant_ns(self) -> int:
        """The simulation's time as the readings are stamped with it (ns)."""
        return int(round(self.sim.time * 1e9))

    def publish_readings(self) -> None:
        stamp = Time(nanoseconds=self._instant_ns()).to_msg()
        if self.pub_clock.get_subscription_count():  # use_sim_time nodes (readings carry it too)
            self.pub_clock.publish(Clock(clock=stamp))
        js = self._joint_msg  # reused: names set once, values and stamp each step
        js.position = self.sim.joint_positions().tolist()
        js.velocity = self.sim.joint_velocities().tolist()
        js.effort = self.sim.joint_efforts().tolist()
        js.header.stamp = stamp
        if self.pub_valve is not None:
            valve = self._valve_msg
            valve.position = [float(self.sim.valve_angle())]
            valve.velocity = [float(self.sim.valve_velocity())]
            valve.header.stamp = stamp
            self.pub_valve.publish(valve)
        if self.pub_image is not None:
            img = messages.image(self.sim.render())
            img.header.stamp = stamp
            self.pub_image.publish(img)
        if self.pub_imu is not None:
            quat, gyro, accel = self.sim.imu()
            imu = Imu()
            imu.header.stamp, imu.header.frame_id = stamp, minitaur.IMU_FRAME
            o = imu.orientation
            o.w, o.x, o.y, o.z = (float(v) for v in quat)
            g = imu.angular_velocity
            g.x, g.y, g.z = (float(v) for v in gyro)
            a = imu.linear_acceleration
            a.x, a.y, a.z = (float(v) for v in accel)
            self.pub_imu.publish(imu)
            pos, q = self.sim.base_pose()
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, "world"
            p = pose.pose.position
            p.x, p.y, p.z = (float(v) for v in pos)
            po = pose.pose.orientation
            po.w, po.x, po.y, po.z = (float(v) for v in q)
            self.pub_pose.publish(pose)
        # Joint states last: the policy node treats them as "this step's readings are in".
        self.pub_joints.publish(js)
        self._last_publish = time.monotonic()


def _check_rate(asked: float, period: float, timestep: float) -> None:
    """A control rate the physics cannot keep (a period is a whole number of physics
    steps) is refused rather than rounded unsaid: a policy tuned at one rate acts
    differently at another."""
    if abs(1.0 / period - asked) > 0.01 * asked:
        steps = 1.0 / asked / timestep
        near = sorted({1.0 / (max(1, k) * timestep) for k in (math.floor(steps), math.ceil(steps))})
        raise ValueError(
            f"control_rate_hz {asked:g} is not a whole number of {timestep * 1e3:g} ms physics "
            f"steps; the nearest rates the simulation keeps: "
            + ", ".join(f"{r:.4g}" for r in near)
        )


def main(args: list[str] | None = None) -> None:
    spin_node(MujocoSimNode, args)


if __name__ == "__main__":
    main()
