"""Reward/reset node: each step's reward from the world's state, and episode resets.

Publishes ``sac/reward`` (geometry_msgs/Vector3Stamped: x reward, y terminated, z success,
stamped with the stamp of the reading it was computed from) and serves ``sac/reset``
(std_srvs/Trigger), which returns once the world is ready for the next episode.

D'Claw: subscribes ``joint_states`` and ``valve/joint_states`` (the valve encoder); the
reward is sac_ros.tasks.dclaw_valve.reward. A reset drives the valve motor to a random
start through ``valve/torque_enable`` (std_srvs/SetBool) and
``valve/position_controller/commands`` (what the D'Claw driver and the MuJoCo sim both
offer), then frees the valve.

Minitaur: subscribes ``mocap/pose`` (motion capture) and
``joint_position_controller/commands`` (the executed actions, for the smoothness term);
the reward is sac_ros.tasks.minitaur_walk.reward, its forward velocity measured against
the newest pose at least 0.9 control periods older (sac_ros.runtime.rewards: not over one
motion-capture frame, whose noise would swamp it); no reward until there is one. A reset
waits until a person has put the robot back on its feet and confirmed with
``sac/reset_done`` (std_srvs/Trigger), then for a pose received after the confirmation
that shows the robot upright (within 10 s, or ``reset_timeout`` if shorter); with
``auto_confirm:=true`` (simulation) it calls ``sim/place_upright`` instead of waiting for
a person.

``sync:=exact`` (lockstep simulation) pairs D'Claw readings with equal stamps;
``sync:=latest`` (hardware) uses the latest joint reading if it is no older than
``max_sensor_age``.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.nodes import messages
from sac_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    LOCKSTEP_SENSOR_QOS,
    REWARD_QOS,
    SENSOR_QOS,
    WARN,
    Diagnostics,
    declare,
    spin_node,
    stamp_seconds,
)
from sac_ros.robots import dclaw, minitaur
from sac_ros.runtime.resets import ValveReset
from sac_ros.runtime.rewards import DClawValveReward, MinitaurWalkReward, StepReward
from sac_ros.tasks import dclaw_valve, minitaur_walk

RESET_STREAM = 1  # sub-stream of the node's seed for reset targets
UPRIGHT_WAIT = 10.0  # s after the confirmation for a fresh pose showing the robot upright


class RewardNode(Node):
    def __init__(self) -> None:
        super().__init__("reward")
        self.robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        self.sync = declare(self, "sync", "exact", "exact (lockstep stamps) or latest")
        if self.sync not in ("exact", "latest"):  # anything else would skip the age check
            raise ValueError(f"sync must be exact or latest, got {self.sync!r}")
        self.max_age = declare(
            self,
            "max_sensor_age",
            0.25,
            "D'Claw, sync latest: oldest joint reading paired with a valve reading (s)",
            lo=0.01,
            hi=5.0,
            read_only=False,
        )
        seed = declare(self, "seed", 0, "Seed of the reset distribution", lo=0, hi=2**31 - 1)
        reliable = declare(
            self, "reliable_readings", False,
            "Subscribe to readings reliably (lockstep MuJoCo publishes them so: none lost)",
        )  # fmt: skip
        sensor_qos = LOCKSTEP_SENSOR_QOS if reliable else SENSOR_QOS
        self.reset_timeout = declare(
            self,
            "reset_timeout",
            10.0 if self.robot == "dclaw" else 600.0,
            "Time limit of a reset (s): the valve motor's, or the person's",
            lo=0.5,
            hi=3600.0,
        )
        still_speed = declare(
            self, "reset_still_speed", 0.1,
            "D'Claw reset: a valve inside the tolerance and slower than this (rad/s) has "
            "settled (0: it must stay inside 0.3 s)",
            lo=0.0, hi=5.0,
        )  # fmt: skip
        self.auto_confirm = declare(
            self, "auto_confirm", False, "Minitaur: simulation places the robot upright itself"
        )
        target = declare(
            self,
            "target_angle",
            dclaw_valve.TARGET_ANGLE,
            "D'Claw valve goal (rad)",
            lo=-math.pi,
            hi=math.pi,
        )
        # A stream of its own: the graph gives every node of a robot the same seed, and the
        # simulator's first valve angle must not be this node's first reset angle.
        self.rng = np.random.default_rng([seed, RESET_STREAM])
        self.rewards_published = 0
        self.rejected = 0
        self.resets_done = 0
        self.resets_failed = 0
        self.rewards_resent = 0
        self._last_stamp = -1.0
        self._last_reward: Vector3Stamped | None = None
        self._reset_lock = threading.Lock()
        self._closing = threading.Event()

        self.pub_reward = self.create_publisher(Vector3Stamped, "sac/reward", REWARD_QOS)
        # sac/reset blocks until the world is ready, waiting on readings and replies this
        # node receives; it is served by a second node with its own single-threaded
        # executor thread, so this node's executor never blocks (a multi-threaded
        # executor was measured to slow lockstep from ~200 to ~3 steps/s).
        self.reset_node = rclpy.create_node(
            f"{self.get_name()}_reset",
            namespace=self.get_namespace(),
            context=self.context,
            use_global_arguments=False,
        )
        self.reset_node.create_service(Trigger, "sac/reset", self._on_reset)
        self._reset_executor = SingleThreadedExecutor(context=self.context)
        self._reset_executor.add_node(self.reset_node)
        self._reset_thread = threading.Thread(
            target=self._reset_executor.spin, name="reset", daemon=True
        )
        self._reset_thread.start()
        if self.robot == "dclaw":
            self.valve_task = DClawValveReward(target)
            self._joints: tuple[float, np.ndarray, np.ndarray] | None = None
            self._valve: tuple[float, float, object] | None = None
            self.create_subscription(JointState, "joint_states", self._on_joints, sensor_qos)
            self.create_subscription(
                JointState,
                "valve/joint_states",
                self._on_valve,
                sensor_qos,
            )
            self.pub_valve = self.create_publisher(
                Float64MultiArray, "valve/position_controller/commands", COMMAND_QOS
            )
            self.torque_client = self.create_client(SetBool, "valve/torque_enable")
            self.valve_reset = ValveReset(
                self._set_valve_torque,
                self._command_valve,
                timeout=self.reset_timeout,
                still_speed=still_speed,
                # Wall-clock bound too: simulated time stands still if the simulator dies.
                wall_timeout=self.reset_timeout + (0.0 if self.sync == "latest" else 60.0),
                aborted=self._closing.is_set,
            )
        elif self.robot == "minitaur":
            self.walk_task = MinitaurWalkReward()
            # What the newest pose says, and how many poses came in: the reset thread waits
            # on it for a pose received after the confirmation (the pose before may be from
            # before the robot fell, or the last the motion capture saw).
            self._pose_seen = threading.Condition()
            self._poses_received = 0
            self._upright = False
            self._confirmed = threading.Event()
            self._confirmed_after = 0  # poses received when the person confirmed
            # Commands first: rclpy's executor runs the ready callbacks of one wait in the
            # order their subscriptions were created, so the command of a step is counted
            # before the pose that follows it when both came in at once.
            self.create_subscription(
                Float64MultiArray,
                "joint_position_controller/commands",
                self._on_command,
                COMMAND_QOS,
            )
            self.create_subscription(PoseStamped, "mocap/pose", self._on_pose, sensor_qos)
            self.create_service(Trigger, "sac/reset_done", self._on_reset_done)
            self.place_client = self.create_client(Trigger, "sim/place_upright")
        else:
            raise ValueError(f"robot must be dclaw or minitaur, got {self.robot!r}")
        self.add_on_set_parameters_callback(self._on_params)
        self.diag = Diagnostics(self, "reward", hardware_id=self.robot)
        self.diag.values_from(
            lambda: {
                "rewards_published": self.rewards_published,
                "rewards_resent": self.rewards_resent,
                "rejected_readings": self.rejected,
                "resets_done": self.resets_done,
                "resets_failed": self.resets_failed,
            }
        )

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "max_sensor_age":  # live: the next pairing uses it
                self.max_age = float(p.value)
        return SetParametersResult(successful=True)

    def _reject(self, what: str, exc: Exception) -> None:
        self.rejected += 1
        self.diag.problem(what, WARN, f"{what}: {exc}")
        self.get_logger().warning(f"{what}: {exc}", throttle_duration_sec=2.0)

    def _publish(self, stamp: object, t: float, r: StepReward) -> None:
        self._last_stamp = t
        self._last_reward = messages.reward_msg(stamp, r.reward, r.terminated, r.success)
        self.pub_reward.publish(self._last_reward)
        self.rewards_published += 1

    def _repeat_if_resent(self, t: float) -> bool:
        """The simulator sent an instant again because its loop stalled: whoever waits may
        have missed this instant's reward (sent before discovery had matched), so send it
        again. Returns whether ``t`` was the instant already answered."""
        if t != self._last_stamp or self._last_reward is None:
            return False
        self.rewards_resent += 1
        self.pub_reward.publish(self._last_reward)
        return True

    # --- D'Claw ---------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        try:
            pos, vel = messages.read_joint_state(msg, dclaw.JOINT_NAMES)
        except ValueError as exc:
            self._reject("joint_states", exc)
            return
        self._joints = (stamp_seconds(msg.header.stamp), pos, vel)
        if self.sync == "exact" and not self._repeat_if_resent(self._joints[0]):
            self._compute_valve()

    def _on_valve(self, msg: JointState) -> None:
        try:
            # The velocity is optional: without it a reset judges the settle by time.
            has_speed = len(msg.velocity) == len(msg.name)
            pos, vel = messages.read_joint_state(msg, [dclaw.VALVE_JOINT], has_speed)
        except ValueError as exc:
            self._reject("valve/joint_states", exc)
            return
        self._valve = (stamp_seconds(msg.header.stamp), float(pos[0]), msg.header.stamp)
        speed = float(vel[0]) if has_speed else None
        self.valve_reset.observe(self._valve[0], self._valve[1], speed)  # a reset under way
        self._compute_valve()

    def _compute_valve(self) -> None:
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
        self._publish(stamp, t_valve, self.valve_task.compute(angle, pos, vel))

    def _command_valve(self, angle: float) -> None:
        self.pub_valve.publish(messages.float_array(np.array([angle])))

    def _set_valve_torque(self, on: bool) -> bool:
        return self._call(self.torque_client, SetBool.Request(data=on))

    # --- Minitaur -------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            self.walk_task.on_command(messages.read_array(msg, minitaur.NUM_MOTORS))
        except ValueError as exc:
            self._reject("commands", exc)

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            pos, quat = messages.read_pose(msg)
            t = stamp_seconds(msg.header.stamp)
            self._note_pose(not minitaur_walk.is_terminated(quat))
            if self._repeat_if_resent(t):
                return
            result = self.walk_task.compute(t, pos, quat)
        except ValueError as exc:
            self._reject("mocap/pose", exc)
            return
        if result is not None:
            self._publish(msg.header.stamp, t, result)

    def _note_pose(self, upright: bool) -> None:
        """Every pose received counts for the reset, a resent one too (lockstep: the
        simulator's present state). Counted on receipt, not by stamp: a motion capture
        restarted with its clock behind must still be able to confirm a reset."""
        with self._pose_seen:
            self._upright = upright
            self._poses_received += 1
            self._pose_seen.notify_all()

    def _on_reset_done(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._pose_seen:
            self._confirmed_after = self._poses_received
        self._confirmed.set()
        res.success, res.message = True, "confirmed"
        return res

    def _minitaur_reset(self) -> tuple[bool, str]:
        self._confirmed.clear()
        if self.auto_confirm:
            # Counted before the call: the simulator publishes the placed pose before it
            # replies, so that pose may be taken before the reply is.
            with self._pose_seen:
                after = self._poses_received
            if not self._call(self.place_client, Trigger.Request()):
                return False, "sim/place_upright failed"
        else:
            self.get_logger().info(
                "episode over: put the robot on its feet, then call sac/reset_done"
            )
            deadline = time.monotonic() + self.reset_timeout
            while not self._confirmed.wait(0.1):
                if self._closing.is_set() or time.monotonic() > deadline:
                    return False, f"nobody confirmed the reset within {self.reset_timeout} s"
            after = self._confirmed_after
        return self._wait_upright(after, min(UPRIGHT_WAIT, self.reset_timeout))

    def _wait_upright(self, after: int, wait: float) -> tuple[bool, str]:
        """Waits up to ``wait`` s for the robot upright in a pose received after the
        first ``after`` poses."""
        deadline = time.monotonic() + wait
        with self._pose_seen:
            while not (self._poses_received > after and self._upright):
                if self._closing.is_set() or time.monotonic() > deadline:
                    if self._poses_received == after:
                        return False, f"no fresh mocap pose within {wait:g} s of the confirmation"
                    return False, "robot is not upright"
                self._pose_seen.wait(0.05)  # woken by each pose; wakes for _closing too
        return True, "robot upright"

    def close(self) -> None:
        """Shutdown: a reset in progress gives up (and switches the valve motor off)."""
        self._closing.set()
        self._reset_executor.shutdown(timeout_sec=5.0)
        self._reset_thread.join(timeout=5.0)
        if not self._reset_thread.is_alive():  # never destroy a node still being waited on
            self.reset_node.destroy_node()

    # --- resets ---------------------------------------------------------------------
    def _call(self, client: object, request: object, timeout: float = 5.0) -> bool:
        if not client.wait_for_service(timeout_sec=timeout):  # type: ignore[attr-defined]
            return False
        replied = threading.Event()
        future = client.call_async(request)  # type: ignore[attr-defined]
        future.add_done_callback(lambda _f: replied.set())  # run by this node's executor
        deadline = time.monotonic() + timeout
        while not replied.wait(0.05):  # woken by the reply, not by polling
            if time.monotonic() > deadline or self._closing.is_set():
                return False
        result = future.result()
        return bool(result is not None and result.success)

    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        with self._reset_lock:
            if self.robot == "dclaw":
                ok, message = self.valve_reset.run(dclaw_valve.sample_initial_angle(self.rng))
            else:
                ok, message = self._minitaur_reset()
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
    spin_node(RewardNode, args)


if __name__ == "__main__":
    main()
