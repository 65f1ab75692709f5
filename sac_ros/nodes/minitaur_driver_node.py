"""Minitaur driver node: MinitaurSafety in front of ros2_control's forward command controllers.

The Minitaur's motors are reached through ros2_control (the vendor's hardware interface,
gz_ros2_control, or the MuJoCo sim node standing in for them). Topic layout, one
namespace per robot (``/minitaur``):

* the controller_manager runs in the robot's namespace with a ``joint_state_broadcaster``
  with ``use_local_topics: true``, so the raw readings appear on
  ``joint_state_broadcaster/joint_states`` (parameter ``state_topic``) and not on
  ``joint_states``, an ``imu_sensor_broadcaster`` whose ``~/imu`` is remapped to ``imu``
  (parameter ``imu_topic``; the policy reads ``imu`` too), and one forward command
  controller for the 8 motors (below);
* the policy keeps publishing ``joint_position_controller/commands`` (8 motor targets,
  ``minitaur.JOINT_NAMES`` order) and reading ``joint_states`` and ``imu``;
* this node republishes each message of ``state_topic`` as ``joint_states``, reordered to
  the URDF's motor order, same stamp, and is the only writer of the motor controller. A
  policy can therefore never drive a motor around the safety layer, and the graph's other
  nodes see the same topics as with the MuJoCo simulator.

Every tick (``rate_hz``, steady clock; the rate limit's dt is one tick) MinitaurSafety
turns the latest policy command into motor targets (limits, rate limit, fall -> slow
crouch, watchdog). ``command_interface`` says how they reach the motors:

* ``position`` (default): the targets go to a ``forward_position_controller``
  (forward_command_controller on position interfaces, topic ``controller_topic``). The
  motor controllers' own servo loop tracks them: its gains belong to the hardware
  interface, this node cannot change them (``kp``/``kd`` are reported as n/a).
* ``effort``: the node closes the loop itself with the PD law of
  ``sac_ros.hardware.minitaur_pd``, ``tau = clip(kp (target - q) - kd qdot,
  +-max_torque)``, and sends the 8 torques to a ``forward_effort_controller``
  (forward_command_controller on effort interfaces, topic ``effort_controller_topic``).
  The law runs on every joint reading (positions and velocities required), against the
  targets of the last tick: the loop's delay, not the tick rate, decides whether it is
  stable. With the default gains the MuJoCo Minitaur needs readings at 200 Hz or more
  (tested at 250 Hz, a torque acting up to two readings late); at 50 Hz it shakes and
  falls. ``max_torque`` is at most the motors' 5.7 N m. A fall crouches the same way:
  the PD tracks the crouch targets.

Inputs that are too old stop the output: no joint reading for ``max_state_age`` -> no
targets (position: the forward controller keeps its last one; effort: zero torque) and
ERROR on /diagnostics; no IMU message for ``max_imu_age`` counts as an invalid
orientation, i.e. a fall (crouch).

Motors off (e-stop, or watchdog action ``disable``): a forward position controller cannot
turn torque off, so in position mode the node stops sending targets (the controller holds
the last one). In effort mode motors off is a real torque off: the node sends zero torques
every tick for as long as the motors are off (a forward effort controller would keep
applying the last torque it got, and a repeated zero survives a lost message or a
restarted controller), and once more when it shuts down. In both modes, when
``power_service`` names a std_srvs/SetBool service of the hardware interface, it is called
with false (and with true when targets resume, and at start: a driver restarted after its
own shutdown switched the power off must not take it for on). An e-stop switches it off at
once, whether or not joint readings are coming. At shutdown the node waits (2 s at most)
for the answer and logs what happened: off, refused, no answer, or no service to ask.
/diagnostics ``power``: on, off, switching on/off, unknown, or n/a without a service.

Operation: ``estop`` (std_msgs/Bool, True = stop) and the services ``estop``,
``release_estop``, ``reset_fall`` (std_srvs/Trigger; refused while the body is tilted).
With ``auto_reset_fall`` the fall latch also clears after the body has been upright for
``fall_reset_delay`` seconds (a person stood the robot up). /diagnostics: mode, reason,
roll, pitch, input ages, command interface, gains, counters.
"""

from __future__ import annotations

import math
import time

import numpy as np
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.hardware.minitaur_pd import ZERO_TORQUE, MotorPD, PDGains
from sac_ros.hardware.minitaur_safety import (
    WATCHDOG_ACTIONS,
    MinitaurSafety,
    SafetyMode,
    SafetyOutput,
    default_config,
    roll_pitch,
)
from sac_ros.nodes import messages
from sac_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    SENSOR_QOS,
    WARN,
    Diagnostics,
    declare,
    offer_estop,
    spin_node,
    spin_until,
    steady_timer,
)
from sac_ros.robots import minitaur

NO_ORIENTATION = np.full(4, np.nan)
COMMAND_INTERFACES = ("position", "effort")
POWER_ANSWER_S = 2.0  # how long to wait for the power service's answer (shutdown: to appear)


class MinitaurDriverNode(Node):
    def __init__(self) -> None:
        super().__init__("minitaur_driver")
        # At least the policy's 50 Hz: a goal may lead the measured angle by one tick's
        # travel at the velocity limit (20 rad/s), 0.4 rad at 50 Hz, 20 rad at 1 Hz.
        self.rate_hz = declare(
            self, "rate_hz", 100.0, "Safety ticks per second", lo=50.0, hi=2000.0
        )
        self.interface = declare(
            self, "command_interface", "position",
            "position: targets to controller_topic (the motors' own servo loop); effort: "
            "the PD law here, torques to effort_controller_topic",
        )  # fmt: skip
        if self.interface not in COMMAND_INTERFACES:
            raise ValueError(
                f"command_interface must be one of {COMMAND_INTERFACES}, got {self.interface!r}"
            )
        controller_topic = declare(
            self, "controller_topic", "forward_position_controller/commands",
            "The ros2_control forward position controller's commands topic",
        )  # fmt: skip
        effort_topic = declare(
            self, "effort_controller_topic", "forward_effort_controller/commands",
            "Effort mode: the forward command controller (effort interfaces) of the motors",
        )  # fmt: skip
        state_topic = declare(
            self, "state_topic", "joint_state_broadcaster/joint_states",
            "Where joint_state_broadcaster publishes (use_local_topics: true)",
        )  # fmt: skip
        imu_topic = declare(
            self, "imu_topic", "imu", "sensor_msgs/Imu of the body (imu_sensor_broadcaster)"
        )
        gains = PDGains(
            # A zero kp would be "running" with no torque towards the targets: a collapse.
            kp=declare(self, "kp", minitaur.KP, "Effort mode: N m per rad", lo=0.1, hi=100.0),
            kd=declare(self, "kd", minitaur.KD, "Effort mode: N m s per rad", lo=0.0, hi=5.0),
            max_torque=declare(
                self, "max_torque", minitaur.TORQUE_LIMIT, "Effort mode: N m, per motor",
                lo=0.01, hi=minitaur.TORQUE_LIMIT,
            ),
        )  # fmt: skip
        self.max_state_age = declare(
            self, "max_state_age", 0.05, "Oldest joint reading used (s)", lo=0.001, hi=5.0
        )
        self.max_imu_age = declare(
            self, "max_imu_age", 0.05, "Older IMU readings count as a fall (s)", lo=0.001, hi=5.0
        )
        action = declare(
            self, "watchdog_action", "crouch", "No command: hold, crouch or disable (motors off)"
        )
        if action not in WATCHDOG_ACTIONS:
            raise ValueError(f"watchdog_action must be one of {WATCHDOG_ACTIONS}, got {action!r}")
        threshold = declare(
            self, "fall_threshold", 0.6, "A fall: |roll| or |pitch| above (rad)", lo=0.05, hi=1.5
        )
        crouch = declare(
            self, "crouch_velocity", 0.5, "Crouch speed after a fall (rad/s)", lo=0.01, hi=20.0
        )
        watchdog = declare(
            self, "watchdog_timeout", 0.25, "No command this long (s): watchdog", lo=0.01, hi=60.0
        )
        self.auto_reset = declare(
            self, "auto_reset_fall", True, "Clear the fall latch once upright for a while"
        )
        self.reset_delay = declare(
            self, "fall_reset_delay", 2.0, "Upright this long (s) clears the latch", lo=0, hi=600.0
        )
        power_service = declare(
            self, "power_service", "", "Optional std_srvs/SetBool of the hardware: motor power"
        )
        diag_period = declare(
            self, "diagnostics_period", 1.0, "Seconds between /diagnostics", lo=0.05, hi=60.0
        )
        config = default_config(
            control_period_s=1.0 / self.rate_hz,
            fall_threshold_rad=threshold,
            crouch_velocity=crouch,
            watchdog_timeout_s=watchdog,
            watchdog_action=action,
        )
        self.safety = MinitaurSafety(config)
        self.pd = MotorPD(gains, self.max_state_age) if self.interface == "effort" else None
        self.names = minitaur.JOINT_NAMES
        self._targets: np.ndarray | None = None  # the last tick's targets (None: motors off)
        self._torques = ZERO_TORQUE
        self._measured: np.ndarray | None = None
        self._measured_at = -math.inf
        self._imu = NO_ORIENTATION
        self._imu_at = -math.inf
        self._upright_since: float | None = None
        self._mode = SafetyMode.IDLE
        self._power_on: bool | None = None  # as last switched; None: unknown (at start)
        self._power_future: Future | None = None  # the last switch asked (of _power_on)
        self._power_asked_at = -math.inf
        self._closed = False
        self.counts = {"ticks": 0, "targets_sent": 0, "torques_sent": 0,
                       "states_republished": 0, "rejected_commands": 0, "rejected_states": 0,
                       "rejected_imu": 0, "stale_ticks": 0}  # fmt: skip

        motor_topic = effort_topic if self.pd is not None else controller_topic
        self.pub_controller = self.create_publisher(Float64MultiArray, motor_topic, COMMAND_QOS)
        self.pub_joints = self.create_publisher(JointState, "joint_states", SENSOR_QOS)
        self.create_subscription(JointState, state_topic, self._on_state, SENSOR_QOS)
        self.create_subscription(Imu, imu_topic, self._on_imu, SENSOR_QOS)
        self.create_subscription(
            Float64MultiArray, "joint_position_controller/commands", self._on_command, COMMAND_QOS
        )
        offer_estop(self, self._estop, self._release_estop, "e-stop: no more targets")
        self.create_service(Trigger, "reset_fall", self._on_reset_fall)
        self.power = self.create_client(SetBool, power_service) if power_service else None
        self.diag = Diagnostics(
            self, "minitaur_driver", hardware_id="ros2_control", period=diag_period
        )
        self.diag.values_from(self._diag_values)
        self.get_logger().info(
            f"safety in front of {motor_topic} ({self.interface}), states from {state_topic}, "
            f"IMU from {imu_topic}"
        )
        steady_timer(self, 1.0 / self.rate_hz, self._on_tick)

    # --- inputs ---------------------------------------------------------------------
    def _reject(self, key: str, counter: str, exc: Exception) -> None:
        self.counts[counter] += 1
        self.diag.problem(key, WARN, f"rejected {key}: {exc}", hold=5.0)
        self.get_logger().warning(f"rejected {key}: {exc}", throttle_duration_sec=2.0)

    def _on_state(self, msg: JointState) -> None:
        # Effort mode needs the velocities for the PD's damping term.
        with_velocity = self.pd is not None or len(msg.velocity) == len(msg.name) > 0
        try:
            pos, vel = messages.read_joint_state(msg, self.names, need_velocity=with_velocity)
        except ValueError as exc:
            self._reject("joint states", "rejected_states", exc)
            return
        self._measured, self._measured_at = pos, time.monotonic()
        if self.pd is not None:
            self.pd.reading(pos, vel, self._measured_at)
            if self._targets is not None:  # the PD on the newest reading: the least delay
                self._send_torques(self.pd.torques(self._targets, self._measured_at))
        effort = None
        if len(msg.effort) == len(msg.name):
            index = {n: i for i, n in enumerate(msg.name)}
            effort = np.array([msg.effort[index[n]] for n in self.names])
        # Velocities only where they were measured (zeros would pass for a reading).
        out = messages.joint_state(self.names, pos, vel if with_velocity else None, effort)
        out.header = msg.header
        self.pub_joints.publish(out)
        self.counts["states_republished"] += 1

    def _on_imu(self, msg: Imu) -> None:
        o = msg.orientation
        quat = np.array([o.x, o.y, o.z, o.w], dtype=np.float64)
        if msg.orientation_covariance[0] == -1.0:
            # sensor_msgs/Imu: this IMU has no orientation estimate. Its (identity)
            # quaternion would read as level forever: without one no fall can be seen.
            self._reject("imu orientation", "rejected_imu", ValueError(
                "the IMU gives no orientation (orientation_covariance[0] = -1): fall "
                "detection needs one"))  # fmt: skip
            quat = np.full(4, np.nan)
        elif not np.all(np.isfinite(quat)):
            self._reject("imu orientation", "rejected_imu", ValueError("orientation holds NaN"))
        self._imu, self._imu_at = quat, time.monotonic()  # an invalid one means a fall

    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            targets = messages.read_array(msg, minitaur.NUM_MOTORS, "motor command")
            self.safety.command(targets, time.monotonic())
        except ValueError as exc:
            self._reject("command", "rejected_commands", exc)

    def _estop(self, why: str) -> None:
        self.safety.estop(why)
        self._set_power(False)  # at once, whether or not joint readings are coming
        self._on_tick()

    def _release_estop(self) -> tuple[bool, str]:
        self.safety.release_estop()
        return self.safety.mode is not SafetyMode.ESTOP, f"mode {self.safety.mode.value}"

    def _on_reset_fall(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        try:
            self.safety.reset_fall(self._orientation(time.monotonic()))
        except ValueError as exc:
            res.success, res.message = False, str(exc)
            return res
        res.success, res.message = True, f"mode {self.safety.mode.value}"
        return res

    # --- the tick -------------------------------------------------------------------
    def _orientation(self, now: float) -> np.ndarray:
        return self._imu if now - self._imu_at <= self.max_imu_age else NO_ORIENTATION

    def _on_tick(self) -> None:
        if self._closed:
            return
        now = time.monotonic()
        self.counts["ticks"] += 1
        if self._measured is None or now - self._measured_at > self.max_state_age:
            self.counts["stale_ticks"] += 1
            age = "none yet" if self._measured is None else f"{now - self._measured_at:.3f} s old"
            self.diag.problem("states", ERROR, f"no fresh joint states ({age}): no targets", 1.0)
            self._targets = None
            self._upright_since = None  # the fall latch needs upright time it has seen
            self._follow_mode(self.safety.mode, self.safety.reason)
            if self.safety.mode in (SafetyMode.ESTOP, SafetyMode.DISABLED):
                self._set_power(False)
            if self.pd is not None:
                self._send_torques(self.pd.torques(None, now))
            return
        self.diag.clear("states")
        if now - self._imu_at > self.max_imu_age:
            self.diag.problem("imu", ERROR, "no fresh IMU reading: treated as a fall", 1.0)
        else:
            self.diag.clear("imu")
        out = self.safety.update(self._measured, self._orientation(now), now)
        self._follow(out)
        self._auto_reset(now)
        self._targets = out.targets
        if out.targets is None:
            self._set_power(False)
        if self.pd is not None:
            if out.targets is None:  # torque off, every tick; the PD runs on the readings
                self._send_torques(self.pd.torques(None, now))
        elif out.targets is not None:
            self.pub_controller.publish(messages.float_array(out.targets))
            self.counts["targets_sent"] += 1
        if out.targets is not None:
            # After the new targets went out: powered, the motors must not first chase the
            # stale target the controller held since before the motors went off.
            self._set_power(True)

    def _send_torques(self, torques: np.ndarray) -> None:
        self.pub_controller.publish(messages.float_array(torques))
        self._torques = torques
        self.counts["torques_sent"] += 1

    def _follow(self, out: SafetyOutput) -> None:
        self._follow_mode(out.mode, out.reason)

    def _follow_mode(self, mode: SafetyMode, reason: str | None) -> None:
        """Log a mode change; the mode's problem on /diagnostics."""
        if mode is not self._mode:
            text = f"mode {self._mode.value} -> {mode.value}"
            if mode in (SafetyMode.FALLEN, SafetyMode.ESTOP):
                self.get_logger().error(f"{text}: {reason}")
            elif mode in (SafetyMode.IDLE, SafetyMode.RUNNING):
                self.get_logger().info(text)
            else:
                self.get_logger().warning(f"{text}: {reason}")
            self._mode = mode
        if mode is SafetyMode.ESTOP:
            self.diag.problem("mode", ERROR, f"e-stop: {reason}", hold=1.0)
        elif mode is SafetyMode.FALLEN:
            self.diag.problem("mode", WARN, f"crouching after a {reason}", hold=1.0)
        elif mode in (SafetyMode.HOLDING, SafetyMode.CROUCHING, SafetyMode.DISABLED):
            self.diag.problem("mode", WARN, f"watchdog ({mode.value}): {reason}", 1.0)
        else:
            self.diag.clear("mode")

    def _auto_reset(self, now: float) -> None:
        if not self.auto_reset or self.safety.mode is not SafetyMode.FALLEN:
            self._upright_since = None
            return
        try:
            roll, pitch = roll_pitch(self._orientation(now))
        except ValueError:
            self._upright_since = None
            return
        limit = self.safety.config.fall_threshold_rad
        if abs(roll) > limit or abs(pitch) > limit:
            self._upright_since = None
            return
        if self._upright_since is None:
            self._upright_since = now
        if now - self._upright_since >= self.reset_delay:
            self.safety.reset_fall(self._orientation(now))
            self.get_logger().info(f"upright for {self.reset_delay:g} s: fall latch cleared")

    def _set_power(self, on: bool) -> None:
        """Switch the motor power (where a power_service exists); a switch that could not be
        asked, or was refused, or not answered within POWER_ANSWER_S, is asked again."""
        if self._power_switching():
            if time.monotonic() - self._power_asked_at > POWER_ANSWER_S:
                self.power.remove_pending_request(self._power_future)  # type: ignore[union-attr]
                word = "on" if self._power_on else "off"
                text = f"power_service did not answer motors {word} in {POWER_ANSWER_S:g} s"
                self.diag.problem("power", ERROR, f"{text}; asked again", hold=5.0)
                self.get_logger().error(text, throttle_duration_sec=2.0)
                self._power_future = self._power_on = None
        if on == self._power_on:
            return
        if self.power is None:
            if not on and self.pd is None and self._power_on is not None:
                self.get_logger().warning(
                    "motors off requested; no power_service: the forward controller holds "
                    "the last target"
                )
            self._power_on = on
            return
        if not self.power.service_is_ready():
            self.diag.problem("power", ERROR, "power_service is not available", hold=5.0)
            return
        self._power_on = on
        future = self.power.call_async(SetBool.Request(data=on))
        self._power_future, self._power_asked_at = future, time.monotonic()
        future.add_done_callback(lambda f, on=on: self._power_answered(f, on))

    def _power_answered(self, future: object, on: bool) -> None:
        ok, why = self._power_result(future)
        if ok or self._closed:  # close() reports its own switch
            return
        word = "on" if on else "off"
        self.diag.problem("power", ERROR, f"power_service refused motors {word}: {why}", hold=5.0)
        self.get_logger().error(f"power_service refused motors {word}: {why}",
                                throttle_duration_sec=2.0)  # fmt: skip
        if self._power_on == on:
            self._power_on = None  # unknown: asked again on the next tick

    def _power_switching(self) -> bool:
        """A switch was asked (to _power_on) and is not answered yet."""
        return self._power_future is not None and not self._power_future.done()

    @staticmethod
    def _power_result(future: object) -> tuple[bool, str]:
        try:
            res = future.result()  # type: ignore[attr-defined]
        except Exception as exc:  # a service gone away mid-call
            return False, str(exc)
        return bool(res.success), res.message

    def _power_value(self) -> str:
        if self.power is None:
            return "n/a (no power_service)"
        if self._power_switching():
            return f"switching {'on' if self._power_on else 'off'}"
        return {None: "unknown", True: "on", False: "off"}[self._power_on]

    # --- diagnostics and shutdown ---------------------------------------------------
    def _diag_values(self) -> dict[str, object]:
        now = time.monotonic()
        values: dict[str, object] = dict(self.safety.diagnostics())
        values.update(self.counts)
        values["state_age_s"] = round(now - self._measured_at, 4)
        values["imu_age_s"] = round(now - self._imu_at, 4)
        values["power"] = self._power_value()
        values["rate_hz"] = self.rate_hz
        values["command_interface"] = self.interface
        values.update(self._gain_values())
        return values

    def _gain_values(self) -> dict[str, object]:
        if self.pd is None:
            servo = "n/a (the motor controllers' servo loop)"
            return {"kp": servo, "kd": servo, "max_torque": "n/a"}
        g = self.pd.gains
        return {"kp": g.kp, "kd": g.kd, "max_torque": g.max_torque,
                "max_abs_torque_sent": round(float(np.max(np.abs(self._torques))), 3),
                **self.pd.counts}  # fmt: skip

    def close(self) -> None:
        """Shutdown: stop sending targets and switch the motors off where possible (effort
        mode: one last zero torque); the log says whether the power really went off."""
        self._closed = True
        self._targets = None
        if self.pd is not None:
            self._send_torques(ZERO_TORQUE)
        log = self.get_logger()
        if self.power is None:
            if self.pd is None:
                log.warning("stopped; no power_service: the forward controller holds the "
                            "last target with the motors powered")  # fmt: skip
            return
        if not self.power.wait_for_service(timeout_sec=POWER_ANSWER_S):
            log.error("motor power NOT switched off: power_service is not available")
            return
        future = self.power.call_async(SetBool.Request(data=False))
        if not spin_until(self, future.done, POWER_ANSWER_S):
            log.error(f"motor power off: no answer from power_service in {POWER_ANSWER_S} s")
            return
        ok, why = self._power_result(future)
        if ok:
            log.info("stopped; motor power off")
        else:
            log.error(f"motor power NOT switched off: power_service refused: {why}")


def main(args: list[str] | None = None) -> None:
    spin_node(MinitaurDriverNode, args)


if __name__ == "__main__":
    main()
