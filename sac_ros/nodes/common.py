"""What every node shares: QoS profiles, parameter declaration, diagnostics, entry point."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from sac_ros.runtime.cpu_latency import request_from_environment
from sac_ros.stop_signal import stop_on_signals

try:  # rclpy's C++ EventsExecutor (Kilted and later; absent from older rclpy)
    from rclpy.experimental import EventsExecutor
except ImportError:  # pragma: no cover - depends on the ROS install
    EventsExecutor = None

# --- QoS (README.md, "Topics") ---------------------------------------------------------
SENSOR_QOS = qos_profile_sensor_data
# Lockstep simulation publishes its readings reliably: a reading lost there would cost
# the reward of its step (best-effort subscribers, like the policy's, still match).
LOCKSTEP_SENSOR_QOS = QoSProfile(
    depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
COMMAND_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
EVENT_QOS = QoSProfile(
    depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
# Transitions: reliable with a deep history; lossless delivery across learner restarts is
# the job of sequence numbers and acks (sac_ros.runtime.delivery), not of DDS alone.
TRANSITION_QOS = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
# Episode reports: a monitor that starts late still gets the recent history.
# Rewards: a policy node that joins late (discovery still matching) gets the recent ones.
REWARD_QOS = QoSProfile(
    depth=50,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
EPISODE_QOS = QoSProfile(
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
# The last message waits for late joiners: the latest weights (a restarted policy node),
# a latching e-stop button's state (a restarted driver).
LATCHED_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
POLICY_QOS = LATCHED_QOS

OK, WARN, ERROR, STALE = (
    DiagnosticStatus.OK,
    DiagnosticStatus.WARN,
    DiagnosticStatus.ERROR,
    DiagnosticStatus.STALE,
)


def steady_timer(node: Node, period: float, callback: Callable[[], None]) -> object:
    """A wall-clock timer, also under use_sim_time (simulation time may stand still)."""
    return node.create_timer(period, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    step: float = 0.0,
    read_only: bool = True,
) -> Any:
    """Declare a parameter with a descriptor (range for rqt_reconfigure) and return it.

    Parameters are read-only unless they are safe to change while running.
    """
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            raise ValueError(f"parameter {name}: a bool has no range")
        if isinstance(default, int):
            desc.integer_range = [
                IntegerRange(from_value=int(lo), to_value=int(hi), step=int(step))
            ]
        else:
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(lo), to_value=float(hi), step=float(step))
            ]
    _retype_override(node, name, default)
    return node.declare_parameter(name, default, desc).value


def _retype_override(node: Node, name: str, default: Any) -> None:
    """A whole number given for a float parameter (``-p max_sensor_age:=1``, ``1`` in a
    params file, ``ros2 launch ... x:=1``) is that float, and a whole number given for a
    text parameter (the camera's ``source:=0``, a device index) is its digits. rclpy types
    a parameter from its default and YAML types the value from its look, so it refuses
    both, which stops the node at start; ROS users write them that way all the time."""
    overrides = node._parameter_overrides  # rclpy's -p / --params-file values, by name
    given = overrides.get(name)
    if given is None or given.type_ is not Parameter.Type.INTEGER:
        return
    if type(default) is float:
        overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(given.value))
    elif type(default) is str:
        overrides[name] = Parameter(name, Parameter.Type.STRING, str(given.value))


class Diagnostics:
    """One node's DiagnosticStatus on /diagnostics, published at a fixed rate."""

    def __init__(self, node: Node, name: str, hardware_id: str = "", period: float = 1.0):
        self._node = node
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._status = DiagnosticStatus(
            name=f"sac_ros: {name} ({node.get_fully_qualified_name()})",
            hardware_id=hardware_id,
            level=OK,
            message="starting",
        )
        self._problems: dict[str, tuple[bytes, str, float]] = {}
        self._lock = threading.Lock()  # problems come from other threads too (capture, services)
        self._values: Callable[[], dict[str, Any]] = dict
        self._timer = steady_timer(node, period, self.publish)

    def values_from(self, fn: Callable[[], dict[str, Any]]) -> None:
        """Where the key/value pairs come from (called at each publish)."""
        self._values = fn

    def problem(self, key: str, level: bytes, message: str, hold: float = 5.0) -> None:
        """Report a problem; it stays in the status for ``hold`` seconds after the last report."""
        with self._lock:
            self._problems[key] = (level, message, time.monotonic() + hold)

    def clear(self, key: str) -> None:
        with self._lock:
            self._problems.pop(key, None)

    def publish(self) -> None:
        # The values first: gathering them may report a problem, which this status says.
        values = [KeyValue(key=k, value=str(v)) for k, v in self._values().items()]
        now = time.monotonic()
        with self._lock:
            self._problems = {k: v for k, v in self._problems.items() if v[2] > now}
            problems = list(self._problems.values())
        if problems:
            level = max(v[0] for v in problems)
            message = "; ".join(v[1] for v in problems)
        else:
            level, message = OK, "ok"
        self._status.level = level
        self._status.message = message
        self._status.values = values
        arr = DiagnosticArray(status=[self._status])
        arr.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(arr)


def offer_estop(
    node: Node,
    stop: Callable[[str], None],
    release: Callable[[], tuple[bool, str]],
    stopped: str,
) -> None:
    """The e-stop every driver offers: the ``estop`` topic (std_msgs/Bool, reliable; True
    stops, False is ignored) and the ``estop`` / ``release_estop`` services
    (std_srvs/Trigger). ``stop(why)`` stops; ``release()`` returns (released, message);
    ``stopped`` is the estop service's answer.

    The topic is read twice over: a volatile reader hears every publisher, and a
    transient-local one also gets the last message a latching publisher holds (an e-stop
    button that sent True once and is still pressed): a driver that starts or restarts
    while it is pressed comes up stopped. (A transient-local reader alone would not match
    volatile publishers.) A True heard by both stops twice, which changes nothing."""

    def on_topic(msg: Bool) -> None:
        if msg.data:
            stop("e-stop (topic)")

    def on_stop(_req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        stop("e-stop (service)")
        res.success, res.message = True, stopped
        return res

    def on_release(_req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = release()
        return res

    node.create_subscription(Bool, "estop", on_topic, EVENT_QOS)
    node.create_subscription(Bool, "estop", on_topic, LATCHED_QOS)
    node.create_service(Trigger, "estop", on_stop)
    node.create_service(Trigger, "release_estop", on_release)


def stamp_seconds(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_ns(stamp: Any) -> int:
    """A header stamp in whole nanoseconds (exact, where seconds as a float are not)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ensure_localhost_discovery() -> None:
    """Keep DDS discovery on this machine unless the user chose otherwise."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def spin_node(
    factory: Callable[[], Node], args: Iterable[str] | None = None, threads: int = 1
) -> None:
    """Run one node until SIGINT/SIGTERM, then let it finish its work cleanly.

    The signals are handled here rather than by rclpy, so the context is still alive
    when ``node.close()`` runs: a policy node can send its last transitions and wait for
    the learner's acks, a learner can write its final checkpoint. ``threads`` > 1 uses a
    MultiThreadedExecutor, for nodes whose service callbacks wait on their own
    subscriptions (in a reentrant callback group).
    """
    ensure_localhost_discovery()
    latency = request_from_environment()  # SAC_ROS_CPU_LATENCY_US: fast wake-ups
    rclpy.init(
        args=list(args) if args is not None else None,
        signal_handler_options=SignalHandlerOptions.NO,
    )
    stop = stop_on_signals()  # a flag: handlers may interrupt each other
    node = factory()
    executor = MultiThreadedExecutor(threads) if threads > 1 else make_executor()
    executor.add_node(node)
    node.get_logger().info(f"spinning on {type(executor).__name__}")
    if latency is not None:
        outcome = latency.hold()
        if latency.held:
            node.get_logger().info(outcome)
        else:
            node.get_logger().warning(outcome)
    crash: Exception | None = None
    try:
        try:
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            return
        except Exception as exc:  # a callback's bug: the node stops, but cleanly
            crash = exc
            node.get_logger().fatal(f"stopping on an unexpected error: {exc!r}")
        # Also after such an error: a learner writes its final checkpoint, a policy node
        # sends what it holds, a driver lets go of the motors.
        close = getattr(node, "close", None)
        if callable(close):
            close()
    finally:
        if latency is not None:
            latency.release()
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        if rclpy.ok():  # rclpy installed no handlers: it must not "restore" the default ones
            rclpy.shutdown(uninstall_handlers=False)
        stop.ignore_further()  # the node is down: nothing is left to stop
    if crash is not None:
        raise crash  # the traceback, and a failed exit status for launch and sac-ros


def make_executor(context: Context | None = None) -> Executor:
    """The executor a node's process spins: rclpy's EventsExecutor (C++, event-driven) or
    its SingleThreadedExecutor (rebuilds a wait set in Python on every spin), chosen with
    SAC_ROS_EXECUTOR=events|single (default: events where this rclpy has it)."""
    kind = os.environ.get("SAC_ROS_EXECUTOR", "events" if EventsExecutor else "single")
    if kind == "events":
        if EventsExecutor is None:
            raise ValueError("SAC_ROS_EXECUTOR=events, but this rclpy has no EventsExecutor")
        return EventsExecutor(context=context)
    if kind == "single":
        return SingleThreadedExecutor(context=context)
    raise ValueError(f"SAC_ROS_EXECUTOR must be events or single, got {kind!r}")


def spin_until(node: Node, done: Callable[[], bool], timeout: float) -> bool:
    """Keep serving ``node``'s callbacks until ``done()`` or ``timeout`` (for close())."""
    deadline = time.monotonic() + timeout
    executor = node.executor
    while not done():
        if time.monotonic() > deadline or executor is None:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True
