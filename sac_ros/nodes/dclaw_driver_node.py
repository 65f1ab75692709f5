"""D'Claw hardware driver node: DClawDriverCore on the Dynamixel bus, as ROS topics.

It offers exactly what the MuJoCo stand-in (mujoco_sim_node) offers, so the rest of the
graph cannot tell them apart (relative names, one namespace per robot):

* subscribes ``joint_position_controller/commands`` (std_msgs/Float64MultiArray, 9 targets
  in ``joint_names`` order = the URDF's, rad); every command goes through the core's
  limits and rate limit; a wrong size or NaN is rejected whole and reported;
* publishes ``joint_states`` (position rad, velocity rad/s; no effort: the servos'
  currents, mA, are on /diagnostics as ``currents_ma``) and ``valve/joint_states``
  (``dclaw.VALVE_JOINT``, wrapped angle) once per cycle, sensor QoS, stamped with the
  time of the bus read; a failed read publishes nothing (readers' age checks notice);
* valve motor: ``valve/torque_enable`` (std_srvs/SetBool) and
  ``valve/position_controller/commands`` (one angle, rad; ignored while torque is off).

A managed (lifecycle) node; ``ros2 lifecycle set <ns>/dclaw_driver <transition>``, or the
``<ns>/dclaw_driver/change_state`` and ``get_state`` services (lifecycle_msgs):

* unconfigured: port closed, nothing published but /diagnostics;
* configure: opens the port, pings every motor and turns torque off everywhere; a missing
  port or a silent motor fails the transition (logged: which port or motor, and why);
* inactive: torque off, commands ignored (valve torque on refused), but the bus is read
  every cycle: ``joint_states`` and ``valve/joint_states`` keep coming, so the hand can be
  watched, or moved by hand, while limp; a lost port is reopened as when active;
* activate: finger torque on, holding the present pose (refused in an e-stop or a safe
  stop); active: commands are followed;
* deactivate: torque off on every motor, the valve's included (the hand goes limp, holds
  nothing); cleanup: closes the port; shutdown (also on SIGINT/SIGTERM, through
  spin_node): torque off and the port closed, from any state.

``autostart`` (default true): the node configures and activates itself at start, so a
graph needs no lifecycle manager; while the port is missing it retries the configure every
``reconnect_period`` (a driver may start before its adapter is plugged in). An e-stop or a
safe stop before it got there, a transition asked for by someone else, or a call to
``enable`` ends the autostart: from then on a person decides.

Safety and operation:

* ``estop`` (std_msgs/Bool, reliable; True = stop, False is ignored) and the ``estop``
  service (std_srvs/Trigger): torque off everywhere until ``release_estop``; the lifecycle
  state stays as it is;
* ``reboot`` (std_srvs/Trigger): leaves a safe stop (reboots motors in hardware error,
  checks temperatures again); ``enable`` (std_srvs/SetBool): finger torque on/off while
  active (after an e-stop, a safe stop or a watchdog torque off, torque stays off until
  ``enable`` or a deactivate/activate);
* watchdog, hardware errors, temperature, communication loss: see
  sac_ros.hardware.dclaw_driver. /diagnostics: lifecycle state (WARN while not active),
  mode (WARN while active with torque off: commands ignored until ``enable``), fault
  (which motor and why; ERROR while a motor has not acknowledged a torque off),
  temperatures, error bits, cycle time and period p50/p99, comm errors, reconnects,
  commands ignored while not active.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rclpy.context import Context
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sac_ros.hardware.dclaw_driver import (
    WATCHDOG_ACTIONS,
    DClawDriverConfig,
    DClawDriverCore,
    DClawState,
    Mode,
)
from sac_ros.hardware.dynamixel_bus import SUPPORTED_BAUDS, BusError
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
    steady_timer,
)
from sac_ros.robots import dclaw
from sac_ros.robots.limits import JointLimits
from sac_ros.runtime.loop_timing import LoopTiming

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
ACTIVATE_RETRY_S = 1.0  # autostart: between tries to activate a configured driver
# /diagnostics (WARN) while the node is not active, by lifecycle state.
NOT_ACTIVE = {"inactive": "torque off, commands ignored", "unconfigured": "port closed, torque off"}

# Float parameters: (parameter, DClawDriverConfig field, description, lowest, highest).
NUMERIC_PARAMETERS: tuple[tuple[str, str, str, float, float], ...] = (
    ("control_period", "control_period_s",
     "Rate limit: the most time (s) one goal step may cover", 0.001, 1.0),
    ("watchdog_timeout", "watchdog_timeout_s",
     "No command for this long (s) trips the watchdog", 0.01, 60.0),
    ("health_period", "health_period_s",
     "Seconds between hardware error / temperature reads", 0.01, 60.0),
    ("max_temperature", "max_temperature_c",
     "Safe stop above this motor temperature (C)", 20.0, 100.0),
    ("warn_temperature", "warn_temperature_c",
     "WARN on /diagnostics from this motor temperature (C) up to the safe stop", 20.0, 100.0),
    ("comm_tolerance", "comm_tolerance_s",
     "Communication errors tolerated this long (s) while torque is on", 0.01, 60.0),
    ("reconnect_period", "reconnect_period_s",
     "Seconds between attempts to reopen a lost port", 0.01, 60.0),
    ("latency_timer_ms", "latency_timer_ms",
     "USB adapter latency timer (ms): sets the reply timeout", 0.1, 255.0),
    ("valve_offset", "valve_offset", "Valve angle (rad) at encoder 0", -2 * math.pi, 2 * math.pi),
)  # fmt: skip


def limits_for(names: list[str]) -> JointLimits:
    """The D'Claw's joint limits in the order of ``names`` (each a D'Claw joint, once)."""
    if len(set(names)) != len(names):
        raise ValueError(f"joint_names has duplicates: {names}")
    unknown = [n for n in names if n not in dclaw.JOINT_NAMES]
    if unknown:
        raise ValueError(f"joint_names {unknown} are not D'Claw joints {dclaw.JOINT_NAMES}")
    if len(names) != dclaw.NUM_JOINTS:
        raise ValueError(f"joint_names must name all {dclaw.NUM_JOINTS} joints, got {names}")
    order = [dclaw.JOINT_NAMES.index(n) for n in names]
    lim = dclaw.LIMITS
    return JointLimits(tuple(names), lim.lower[order], lim.upper[order], lim.max_velocity[order])


def ros_stamp(node: Node, monotonic_t: float) -> object:
    """The node-clock stamp of an instant measured with time.monotonic()."""
    age_ns = int((time.monotonic() - monotonic_t) * 1e9)
    return Time(nanoseconds=node.get_clock().now().nanoseconds - age_ns).to_msg()


class DClawDriverNode(LifecycleNode):
    def __init__(self, context: Context | None = None) -> None:
        super().__init__("dclaw_driver", context=context)
        self.config = self._read_config()
        self.rate_hz = declare(self, "rate_hz", 50.0, "Bus cycles per second", lo=1.0, hi=1000.0)
        self.autostart = declare(
            self, "autostart", True,
            "Configure and activate at start (lifecycle), retrying until the port opens",
        )  # fmt: skip
        diag_period = declare(
            self, "diagnostics_period", 1.0, "Seconds between /diagnostics", lo=0.05, hi=60.0
        )
        self.joint_names = list(self.config.limits.names)
        self.core = DClawDriverCore(self.config)
        # Lifecycle state as this node sees it: unconfigured, inactive, active, finalized.
        self.lifecycle = "unconfigured"
        self._auto_configure = self._auto_activate = bool(self.autostart)
        self._in_auto_transition = False
        self._last_configure_try = self._last_activate_try = -math.inf
        self._configure_error: str | None = None
        self._mode = Mode.IDLE
        self._connected = self._ever_connected = False
        self._closed = False
        self.timing = LoopTiming()
        self.rejected_commands = 0
        self.inactive_commands = 0
        self.published = 0

        self.pub_joints = self.create_publisher(JointState, "joint_states", SENSOR_QOS)
        self.pub_valve = None
        if self.config.use_valve:
            self.pub_valve = self.create_publisher(JointState, "valve/joint_states", SENSOR_QOS)
            self.create_subscription(
                Float64MultiArray, "valve/position_controller/commands", self._on_valve, 10
            )
            self.create_service(SetBool, "valve/torque_enable", self._on_valve_torque)
        self.create_subscription(
            Float64MultiArray, "joint_position_controller/commands", self._on_command, COMMAND_QOS
        )
        offer_estop(self, self._estop, self._release_estop, "e-stop: torque off")
        self.create_service(Trigger, "reboot", self._on_reboot)
        self.create_service(SetBool, "enable", self._on_enable)
        self.diag = Diagnostics(
            self, "dclaw_driver", hardware_id=f"dynamixel:{self.config.port}", period=diag_period
        )
        self.diag.values_from(self._diag_values)
        # Autostart runs in the cycle: torque goes on only once the node is spinning.
        steady_timer(self, 1.0 / self.rate_hz, self._on_cycle)

    # --- configuration --------------------------------------------------------------
    def _read_config(self) -> DClawDriverConfig:
        d = DClawDriverConfig()
        port = declare(self, "port", d.port, "Serial port of the Dynamixel adapter")
        baud = declare(self, "baud", d.baud, "Bus baud rate", lo=9600, hi=4_000_000)
        if baud not in SUPPORTED_BAUDS:
            raise ValueError(f"baud must be one of {SUPPORTED_BAUDS}, got {baud}")
        ids = declare(self, "motor_ids", list(d.joint_ids), "Dynamixel IDs, joint_names order")
        names = declare(self, "joint_names", list(dclaw.JOINT_NAMES), "Joint names (URDF order)")
        offsets = declare(
            self, "offsets", [float(x) for x in d.joint_offsets],
            "Calibration: joint angle (rad) at encoder 0, joint_names order",
        )  # fmt: skip
        action = declare(
            self, "watchdog_action", d.watchdog_action,
            "Watchdog: hold (freeze at the measured pose) or torque_off",
        )  # fmt: skip
        if action not in WATCHDOG_ACTIONS:
            raise ValueError(f"watchdog_action must be one of {WATCHDOG_ACTIONS}, got {action!r}")
        use_valve = declare(self, "use_valve", d.use_valve, "A valve motor is on the bus")
        valve_id = declare(self, "valve_id", d.valve_id, "Valve motor ID", lo=0, hi=252)
        retries = declare(
            self, "retries", d.retries, "Asks again before a motor counts as silent", lo=0, hi=10
        )
        numbers = {
            field: declare(self, name, getattr(d, field), text, lo=lo, hi=hi)
            for name, field, text, lo, hi in NUMERIC_PARAMETERS
        }
        return DClawDriverConfig(
            port=port,
            baud=baud,
            watchdog_action=action,
            retries=retries,
            use_valve=use_valve,
            valve_id=valve_id,
            limits=limits_for(list(names)),
            joint_ids=tuple(int(i) for i in ids),
            joint_offsets=tuple(float(x) for x in offsets),
            **numbers,
        )

    # --- lifecycle --------------------------------------------------------------------
    def _by_hand(self) -> None:
        """A transition someone else asked for: from now on a person decides."""
        if not self._in_auto_transition:
            self._auto_configure = self._auto_activate = False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._by_hand()
        try:
            self.core.connect()
        except BusError as exc:
            self._configure_error = str(exc)
            text = f"configure failed: cannot reach the D'Claw on {self.config.port}: {exc}"
            if self._in_auto_transition:
                self.get_logger().error(
                    f"{text}; retrying every {self.config.reconnect_period_s:g} s",
                    throttle_duration_sec=30.0,
                )
            else:
                self.get_logger().error(text)
            return FAILURE
        self._configure_error = None
        self._connected = self._ever_connected = True
        self.lifecycle = "inactive"
        self.get_logger().info(f"configured: connected to {self.config.port}, torque off")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._by_hand()
        try:
            self.core.enable()
        except RuntimeError as exc:  # an e-stop, a safe stop, no port; BusError included
            if self._in_auto_transition:
                self.get_logger().warning(f"autostart: activate failed: {exc}; retrying",
                                          throttle_duration_sec=30.0)  # fmt: skip
            else:
                self.get_logger().error(f"activate failed: {exc}")
            return FAILURE
        self.lifecycle = "active"
        self.get_logger().info("active: finger torque on, following commands")
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._by_hand()
        self.lifecycle = "inactive"  # commands are ignored from here on
        try:
            self.core.disable(valve=True)
        except RuntimeError as exc:
            self.get_logger().error(f"deactivate: {exc}; torque off retried every cycle")
        self._mode = self.core.mode  # logged here, not as a mode change
        self.get_logger().info("inactive: torque off on every motor, commands ignored")
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._by_hand()
        self._close_port()
        self.lifecycle = "unconfigured"
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.lifecycle = "finalized"
        self._close_port()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"a transition from {state.label} raised: torque off, port closed")
        self._close_port()
        self.lifecycle = "unconfigured"
        return SUCCESS

    def _close_port(self) -> None:
        self.core.close()
        self._connected, self._mode = False, self.core.mode
        pending = self.core.diagnostics()["torque_off_pending"]
        if pending:
            self.get_logger().error(
                f"torque off not acknowledged by motors {pending}: they may still hold "
                "torque; switch the servo power off"
            )
        else:
            self.get_logger().info("torque off; port closed")

    def _auto(self, trigger: Callable[[], TransitionCallbackReturn]) -> bool:
        self._in_auto_transition = True
        try:
            return trigger() == SUCCESS
        finally:
            self._in_auto_transition = False

    def _autostart(self) -> None:
        """Configure (retrying while the port is missing), then activate."""
        now = time.monotonic()
        if self.lifecycle == "unconfigured" and self._auto_configure:
            if now - self._last_configure_try < self.config.reconnect_period_s:
                return
            self._last_configure_try = now
            self._auto(self.trigger_configure)
        if self.lifecycle != "inactive":
            return
        self._auto_configure = False
        if not self._auto_activate:
            return
        if self.core.mode in (Mode.SAFE_STOP, Mode.ESTOP):
            self._auto_activate = False
            self.get_logger().warning(
                f"autostart: not activating after {self.core.mode.value} ({self.core.fault}); "
                "activate by hand once it is cleared"
            )
            return
        if self.core.connected and now - self._last_activate_try >= ACTIVATE_RETRY_S:
            self._last_activate_try = now
            if self._auto(self.trigger_activate):
                self._auto_activate = False
                self.get_logger().info("autostart: configured and active")

    # --- the cycle ------------------------------------------------------------------
    def _on_cycle(self) -> None:
        if self._closed:
            return
        if self._auto_configure or self._auto_activate:
            self._autostart()
        if self.lifecycle in ("inactive", "active"):
            self._cycle()
        self._report()

    def _cycle(self) -> None:
        self.timing.begin()
        try:
            state = self.core.cycle()
        except Exception as exc:  # a bug or a bad calibration: never leave torque on
            self.get_logger().error(f"driver cycle failed, e-stop: {exc!r}")
            self._estop(f"driver error: {exc!r}")
            return
        if state.fresh:
            self._publish(state)
        self.timing.end()
        self._log_changes(state)
        if not state.fresh and state.connected:
            self.diag.problem("comm", WARN, "communication errors", hold=2.0)

    def _publish(self, state: DClawState) -> None:
        stamp = ros_stamp(self, state.stamp)
        if self.pub_valve is not None and state.valve_angle is not None:
            valve = messages.joint_state(
                [dclaw.VALVE_JOINT], [state.valve_angle], [state.valve_velocity or 0.0]
            )
            valve.header.stamp = stamp
            self.pub_valve.publish(valve)
        # No effort: JointState's is N m, the servos measure current (mA, in /diagnostics).
        js = messages.joint_state(self.joint_names, state.position, state.velocity)
        js.header.stamp = stamp
        # Joint states last, as the simulator does: "this instant's readings are in".
        self.pub_joints.publish(js)
        self.published += 1

    def _log_changes(self, state: DClawState) -> None:
        """Log mode and link changes."""
        log = self.get_logger()
        if state.mode is not self._mode:
            text = f"mode {self._mode.value} -> {state.mode.value}"
            if state.mode in (Mode.SAFE_STOP, Mode.ESTOP):
                log.error(f"{text}: {state.fault}")
            elif state.mode is Mode.HOLDING:
                log.warning(f"{text}: watchdog (no command for {self.config.watchdog_timeout_s} s)")
            else:
                log.info(text)
            self._mode = state.mode
        if state.connected != self._connected:
            if state.connected:
                again = "re" if self._ever_connected else ""
                log.info(f"{again}connected to {self.config.port}")
                self._ever_connected = True
            else:
                log.error(f"lost {self.config.port}: {self.core.diagnostics()['last_comm_error']}")
            self._connected = state.connected

    def _report(self) -> None:
        """Keep the diagnostics' problems current: mode, link, lifecycle state."""
        mode, fault = self.core.mode, self.core.fault
        if mode is Mode.SAFE_STOP:
            self.diag.problem("mode", ERROR, f"safe stop: {fault}", hold=1.0)
        elif mode is Mode.ESTOP:
            self.diag.problem("mode", ERROR, f"e-stop: {fault}", hold=1.0)
        elif mode is Mode.HOLDING:
            self.diag.problem("mode", WARN, "watchdog: holding (no recent command)", hold=1.0)
        elif mode is Mode.IDLE and self.lifecycle == "active":
            # After release_estop, reboot, a watchdog torque off or enable false: limp,
            # the policy's commands ignored until someone calls enable.
            self.diag.problem("mode", WARN, "torque off, commands ignored: call enable", 1.0)
        else:
            self.diag.clear("mode")
        hot = self.core.hot_motors()
        if hot:  # before the safe stop: time to rest the hand
            names = ", ".join(f"{name} {t:g} C" for name, t in hot.items())
            limit = self.config.max_temperature_c
            text = f"hot: {names}; safe stop above {limit:g} C"
            self.diag.problem("temperature", WARN, text, hold=1.0)
        else:
            self.diag.clear("temperature")
        pending = self.core.torque_off_pending
        if pending:  # a motor that did not hear it keeps the torque it had
            names = ", ".join(f"{i} ({self.core.name(i)})" for i in pending)
            text = f"torque off not acknowledged by motors {names}"
            self.diag.problem("torque", ERROR, text, hold=1.0)
        else:
            self.diag.clear("torque")
        configured = self.lifecycle in ("inactive", "active")
        error = self._configure_error if not configured else None
        if configured and not self.core.connected:
            error = self.core.diagnostics()["last_comm_error"]
        if error is not None:
            self.diag.problem("link", ERROR, f"not connected to {self.config.port}: {error}", 1.0)
        else:
            self.diag.clear("link")
        if self.lifecycle == "active":
            self.diag.clear("lifecycle")
        else:
            what = NOT_ACTIVE.get(self.lifecycle, "port closed")
            self.diag.problem("lifecycle", WARN, f"{self.lifecycle}: {what}", hold=1.0)

    # --- inputs ---------------------------------------------------------------------
    def _reject(self, key: str, exc: Exception) -> None:
        self.diag.problem(key, WARN, f"rejected {key}: {exc}", hold=5.0)
        self.get_logger().warning(f"rejected {key}: {exc}", throttle_duration_sec=2.0)

    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            targets = messages.read_array(msg, len(self.joint_names), "joint command")
            if self.lifecycle != "active":
                self.inactive_commands += 1
                return
            self.core.command(targets)
        except ValueError as exc:
            self.rejected_commands += 1
            self._reject("command", exc)

    def _on_valve(self, msg: Float64MultiArray) -> None:
        try:
            angle = float(messages.read_array(msg, 1, "valve command")[0])
            self.core.command_valve(angle)
        except ValueError as exc:
            self._reject("valve command", exc)
        except BusError as exc:
            self.get_logger().warning(f"valve command failed: {exc}", throttle_duration_sec=2.0)

    def _refuse_unless_active(self, res: SetBool.Response, what: str) -> bool:
        """True (and ``res`` filled in) when torque may not go on: the node is not active."""
        if self.lifecycle == "active":
            return False
        res.success = False
        res.message = f"{what} refused: the node is {self.lifecycle}; activate it first"
        return True

    def _on_valve_torque(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        if req.data and self._refuse_unless_active(res, "valve torque on"):
            return res
        return self._respond(res, lambda: self.core.set_valve_torque(bool(req.data)),
                             f"valve torque {'on' if req.data else 'off'}")  # fmt: skip

    def _on_enable(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        # An operator decided, whatever the outcome: a refused or unheard call (the port
        # still missing) must not leave the autostart to turn torque on later.
        self._auto_configure = self._auto_activate = False
        if req.data and self._refuse_unless_active(res, "finger torque on"):
            return res
        action = self.core.enable if req.data else self.core.disable
        return self._respond(res, action, f"finger torque {'on' if req.data else 'off'}")

    def _estop(self, reason: str) -> None:
        self._auto_activate = False  # after an e-stop a person turns torque on again
        self.core.estop(reason)

    def _release_estop(self) -> tuple[bool, str]:
        self.core.release_estop()
        released = self.core.mode is not Mode.ESTOP
        then = "call enable" if self.lifecycle == "active" else "activate the node"
        return released, f"mode {self.core.mode.value}; {then} to turn torque on"

    def _on_reboot(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        if self.core.mode is Mode.ESTOP:
            res.success, res.message = False, "e-stopped: call release_estop first"
            return res
        try:
            rebooted = self.core.clear_fault()
        except RuntimeError as exc:  # a remaining fault, or a BusError
            res.success, res.message = False, str(exc)
            return res
        res.success = True
        res.message = f"rebooted motors {rebooted}; mode {self.core.mode.value}"
        return res

    def _respond(
        self, res: SetBool.Response, action: Callable[[], None], done: str
    ) -> SetBool.Response:
        try:
            action()
        except RuntimeError as exc:  # BusError is a RuntimeError too
            res.success, res.message = False, str(exc)
            self.get_logger().warning(f"{done} failed: {exc}")
            return res
        res.success, res.message = True, done
        return res

    # --- diagnostics and shutdown ---------------------------------------------------
    def _diag_values(self) -> dict[str, object]:
        values: dict[str, object] = {"lifecycle": self.lifecycle}
        values.update(self.core.diagnostics())
        values.update(self.timing.values("cycle", "period"))
        values["rate_hz"] = self.rate_hz
        values["joint_states_published"] = self.published
        values["rejected_commands"] = self.rejected_commands
        values["inactive_commands"] = self.inactive_commands
        values["autostart_pending"] = self._auto_configure or self._auto_activate
        return values

    def close(self) -> None:
        """SIGINT/SIGTERM: the shutdown transition (torque off everywhere, port closed)."""
        self._closed = True
        if self.lifecycle == "finalized":
            return
        try:
            self.trigger_shutdown()
        except Exception as exc:  # the port is closed below whatever happened
            self.get_logger().error(f"shutdown transition failed: {exc!r}")
        if self.lifecycle != "finalized":
            self.lifecycle = "finalized"
            self._close_port()

    def destroy_node(self) -> None:
        # rclpy's LifecycleNode leaves its state machine, which holds the node's handle,
        # alive: the destroyed node would stay in the ROS graph until the process ends.
        super().destroy_node()
        self._state_machine.destroy_when_not_in_use()


def main(args: list[str] | None = None) -> None:
    spin_node(DClawDriverNode, args)


if __name__ == "__main__":
    main()
