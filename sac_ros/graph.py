"""Which nodes a robot and a simulator choice need, with their parameters.

One description feeds both the launch files (launch/*.launch.py turn each NodeSpec into a
launch_ros Node) and the ``sac-ros`` command (which starts each NodeSpec as a process
with ``python -m``), so the two cannot drift apart. No rclpy here.

``sim`` is one of:

- ``mujoco``: embedded MuJoCo in lockstep (the default of ``sac-ros``);
- ``gazebo``: gz sim with gz_ros2_control; the Gazebo processes come from ros_gz
  packages and are started by the launch files only (see launch/_sac_ros_gazebo.py);
- ``none``: real hardware: the project's drivers on the robot's ports;
- ``emulated``: the real D'Claw driver against the Dynamixel emulator with MuJoCo
  behind it (hardware-in-the-loop without the robot).

``ENDPOINTS`` says which topics each node kind publishes and subscribes and which
services it serves and calls; :func:`endpoints` resolves them for one NodeSpec (its
namespace, remappings and parameters), so ``sac-ros graph`` lists them. The test suite
starts the nodes and compares what they create with this table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sac_ros.paths import share_path

ROBOTS = ("dclaw", "minitaur")
SIMS = ("mujoco", "gazebo", "none", "emulated")
OBS = ("state", "pixels")


@dataclass
class NodeSpec:
    """One process of the graph."""

    name: str  # ROS node name
    executable: str  # console script (launch) ...
    module: str  # ... and the module the sac-ros command runs with python -m
    namespace: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    params_files: list[str] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    role: str = "robot"  # "robot" side or "learner" side (two-computer setups)
    package: str = "sac_ros"
    # Added to the process's nice value (0-19): a node off the control loop's critical
    # path yields the CPU to the nodes on it when they compete for the cores.
    nice: int = 0

    def ros_args(self) -> list[str]:
        """Command-line --ros-args for this node (used by the sac-ros command)."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        for f in self.params_files:
            args += ["--params-file", f]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={_param_text(value)}"]
        return args


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    if isinstance(value, str):
        # rcl reads a -p value as YAML: a string it would read as something else (a
        # number, a bool, '', a date...: run_dir 2024) goes single-quoted.
        return value if _reads_as(value) else "'" + value.replace("'", "''") + "'"
    return repr(value)


def _reads_as(text: str) -> bool:
    """True when YAML reads ``text`` back as this very string (and no number: rcl also
    reads 1e-3 as a float)."""
    try:
        float(text)
        return False
    except ValueError:
        pass
    try:
        return yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def config_file(robot: str) -> str:
    return str(share_path("config", f"{robot}.yaml"))


def _float_parameters(files: list[str]) -> set[tuple[str, str]]:
    """(node, parameter) of every float-valued parameter in these parameter files and
    config/learner.yaml: an override written as a whole number (``utd_ratio=2``) must
    reach such a parameter as a float, or rclpy refuses it and the node stops."""
    found: set[tuple[str, str]] = set()
    for path in [*files, str(share_path("config", "learner.yaml"))]:
        data = yaml.safe_load(Path(path).read_text()) or {}
        for key, section in data.items():
            values = (section or {}).get("ros__parameters", {}) or {}
            node = str(key).rsplit("/", 1)[-1]
            found |= {(node, k) for k, v in values.items() if isinstance(v, float)}
    return found


def _ns(namespace: str) -> str:
    ns = namespace.strip("/")
    return f"/{ns}" if ns else ""


def robot_namespaces(robot: str, count: int, namespace: str | None = None) -> list[str]:
    """``/dclaw`` for one robot, ``/dclaw_0``, ``/dclaw_1``... for several."""
    base = _ns(namespace if namespace is not None else robot)
    if count == 1:
        return [base]
    return [f"{base}_{i}" for i in range(count)]


def build_graph(
    robot: str,
    sim: str = "mujoco",
    obs: str = "state",
    *,
    namespaces: list[str] | None = None,
    learner: bool = True,
    robot_side: bool = True,
    resume: bool = False,
    run_dir: str = "runs/latest",
    port: str = "/dev/ttyUSB0",
    seed: int = 0,
    params_file: str | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> list[NodeSpec]:
    """The nodes for ``robot`` with ``sim``; ``extra`` adds parameters per node name."""
    if robot not in ROBOTS:
        raise ValueError(f"robot must be one of {ROBOTS}, got {robot!r}")
    if sim not in SIMS:
        raise ValueError(f"sim must be one of {SIMS}, got {sim!r}")
    if obs not in OBS:
        raise ValueError(f"obs must be one of {OBS}, got {obs!r}")
    if robot == "minitaur" and obs == "pixels":
        raise ValueError("the Minitaur task has no pixel variant")
    if sim == "emulated" and robot != "dclaw":
        raise ValueError("sim=emulated emulates the D'Claw's Dynamixel bus only")
    namespaces = namespaces if namespaces is not None else robot_namespaces(robot, 1)
    user_files = [params_file] if params_file else []
    files = [config_file(robot), *user_files]
    lockstep = sim == "mujoco"
    # Lockstep (MuJoCo) nodes read simulation time from the readings' stamps, so no node
    # wakes up for every /clock message (the sim still publishes /clock for tools such as
    # rqt_plot). Gazebo runs freely and stamps its readings in simulation time: there the
    # nodes' clocks must follow /clock for the readings' age to make sense.
    common = {"robot": robot, "use_sim_time": sim == "gazebo"}
    nodes: list[NodeSpec] = []
    extra = extra or {}
    floats = _float_parameters(files) if extra else set()

    def node(
        name: str,
        module: str,
        ns: str,
        role: str = "robot",
        nice: int = 0,
        defaults: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        """``params`` follow from the graph's arguments; ``defaults`` are its choice for
        this sim, which a params_file may change."""
        defaults = defaults or {}
        # Each simulated robot keeps its own clock: several lockstep simulators must not
        # share /clock, or one robot's time would jump with another's.
        remap = [("/clock", f"{ns}/clock")] if lockstep and role == "robot" and ns else []
        # A whole number for a float parameter (of the files, or one the graph sets as a
        # float) goes as a float: rclpy refuses an INTEGER for a DOUBLE and the node stops.
        mine = {
            k: float(v)
            if type(v) is int
            and ((name, k) in floats or float in (type(params.get(k)), type(defaults.get(k))))
            else v
            for k, v in extra.get(name, {}).items()
        }  # fmt: skip
        spec = NodeSpec(
            name=name,
            executable=module,
            module=f"sac_ros.nodes.{module}",
            namespace=ns,
            parameters={**common, **params, **mine},
            params_files=files,
            remappings=remap,
            role=role,
            nice=nice,
        )
        # A -p rule outranks every params file whatever their order (rclpy applies a
        # file's sections in the order their keys first appeared: config/<robot>.yaml's
        # /**/<node> comes before -p's /**). So a default the user's file sets is left
        # out, and the file's value applies; a fixed value it contradicts is an error.
        given = _matching_values(spec, user_files)
        _refuse_clashes(spec, {k: v for k, v in given.items() if k not in mine})
        spec.parameters.update({k: v for k, v in defaults.items() if k not in given | mine})
        nodes.append(spec)

    if robot_side:
        for i, ns in enumerate(namespaces):
            s = seed + 1000 * i
            if sim == "mujoco":
                node("mujoco_sim", "mujoco_sim_node", ns, mode="lockstep", seed=s,
                     camera=obs == "pixels")  # fmt: skip
            elif sim == "gazebo":
                # Serves the reset interfaces (valve motor, place upright) from Gazebo.
                node("gazebo_adapter", "gazebo_adapter_node", ns)
            elif sim in ("none", "emulated") and robot == "dclaw":
                bus = port
                if sim == "emulated":
                    if obs == "pixels":
                        raise ValueError("sim=emulated has no camera: use obs=state")
                    # The emulated servos (MuJoCo behind them) on a pty, linked under the
                    # run directory; the real driver opens that link. The driver keeps
                    # reconnecting until the emulator has created it.
                    bus = str(Path(run_dir).absolute() / f"ttyDXL{i}")
                    node("dxl_emulator", "dxl_emulator_node", ns, link=bus, backend="mujoco")
                node("dclaw_driver", "dclaw_driver_node", ns, port=bus)
                if obs == "pixels":
                    node("camera", "camera_node", ns)
            elif sim == "none" and robot == "minitaur":
                node("minitaur_driver", "minitaur_driver_node", ns)
            # Lockstep simulation paces itself to the learner (hardware cannot wait).
            backlog = 50.0 if lockstep and learner else 0.0
            node("policy", "policy_node", ns, obs=obs, seed=s,
                 tick="lockstep" if lockstep else "timer",
                 defaults={"max_learner_backlog": backlog})  # fmt: skip
            # D'Claw in lockstep: the policy acts without waiting for the reward (it cannot
            # end an episode), so the reward node is off the critical path sim -> policy
            # -> sim; at a lower priority it takes the CPU when that chain does not need it.
            sync = {"sync": "latest"} if sim in ("none", "emulated") else {}
            node("reward", "reward_node", ns, seed=s,
                 nice=10 if lockstep and robot == "dclaw" else 0,
                 defaults={"auto_confirm": sim != "none", "reliable_readings": lockstep,
                           **sync})  # fmt: skip
    if learner:
        node("learner", "learner_node", "", role="learner", obs=obs, seed=seed,
             robot_namespaces=list(namespaces) if namespaces != [""] else [""],
             run_dir=str(Path(run_dir)), resume=resume,
             defaults={"ack_rate_hz": 20.0 if lockstep else 5.0})  # fmt: skip
    return nodes


def _refuse_clashes(spec: NodeSpec, given: dict[str, Any]) -> None:
    """A user's file must not contradict what the graph's arguments fix (the robot, the
    sim's tick and mode, the seed...): that node would run against the rest of the graph
    or against the argument given."""
    clashes = {k: v for k, v in given.items() if k in spec.parameters and v != spec.parameters[k]}
    if clashes:
        said = ", ".join(
            f"{k}: {v!r} (the graph's arguments make it {spec.parameters[k]!r})"
            for k, v in sorted(clashes.items())
        )
        raise ValueError(
            f"{', '.join(spec.params_files[1:])} sets {spec.namespace}/{spec.name} {said}; "
            "these follow from the launch arguments (robot, sim, obs, namespace, seed, "
            "run_dir, resume, port): change those instead"
        )


# --- topics and services ------------------------------------------------------------
PUBLISHES, SUBSCRIBES, SERVES, CALLS = "publishes", "subscribes", "serves", "calls"
ROLES = (PUBLISHES, SUBSCRIBES, SERVES, CALLS)
Params = Mapping[str, Any]

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
IMU = "sensor_msgs/msg/Imu"
POSE = "geometry_msgs/msg/PoseStamped"
REWARD = "geometry_msgs/msg/Vector3Stamped"
FLOATS = "std_msgs/msg/Float64MultiArray"
BYTES = "std_msgs/msg/UInt8MultiArray"
TEXT = "std_msgs/msg/String"
BOOL = "std_msgs/msg/Bool"
CLOCK = "rosgraph_msgs/msg/Clock"
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"
TRIGGER = "std_srvs/srv/Trigger"
SET_BOOL = "std_srvs/srv/SetBool"
SWITCH_CONTROLLER = "controller_manager_msgs/srv/SwitchController"
SET_ENTITY_POSE = "ros_gz_interfaces/srv/SetEntityPose"


def _always(_params: Params) -> bool:
    return True


def _when(**wanted: Any) -> Callable[[Params], bool]:
    """True when every named parameter has the wanted value."""
    return lambda params: all(params.get(k) == v for k, v in wanted.items())


def _given(key: str) -> Callable[[Params], bool]:
    """True when the parameter is set (a non-empty name)."""
    return lambda params: bool(params.get(key))


@dataclass(frozen=True)
class Endpoint:
    """A topic a node publishes or subscribes, or a service it serves or calls."""

    role: str  # PUBLISHES, SUBSCRIBES, SERVES or CALLS
    name: str  # as the node creates it; "{param}" stands for a parameter's value
    type: str  # ROS interface type, e.g. sensor_msgs/msg/JointState
    when: Callable[[Params], bool] = _always  # on the node's parameters
    per_robot: bool = False  # the learner's: once under each of its robot_namespaces


# Per node kind (executable): the parameters the table below depends on, with the
# node's own defaults (a params file or the NodeSpec overrides them).
DEFAULTS: dict[str, dict[str, Any]] = {
    "policy_node": {"obs": "state"},
    "mujoco_sim_node": {"camera": False},
    "dclaw_driver_node": {"use_valve": True},
    "minitaur_driver_node": {
        "command_interface": "position",
        "controller_topic": "forward_position_controller/commands",
        "effort_controller_topic": "forward_effort_controller/commands",
        "state_topic": "joint_state_broadcaster/joint_states",
        "imu_topic": "imu",
        "power_service": "",
    },
    "gazebo_adapter_node": {"set_pose_service": "/world/sac_ros_arena/set_pose"},
    "learner_node": {"robot_namespaces": [""]},
}
_DCLAW, _MINITAUR = _when(robot="dclaw"), _when(robot="minitaur")
_ESTOP = (
    Endpoint(SUBSCRIBES, "estop", BOOL),
    Endpoint(SERVES, "estop", TRIGGER),
    Endpoint(SERVES, "release_estop", TRIGGER),
)
# What each node kind creates besides /diagnostics (every node) and /clock (every node
# with use_sim_time). rclpy's own (/rosout, /parameter_events, the parameter services,
# a lifecycle node's state services and events) are left out.
ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "policy_node": (
        Endpoint(PUBLISHES, "joint_position_controller/commands", FLOATS),
        Endpoint(PUBLISHES, "sac/transitions", BYTES),
        Endpoint(PUBLISHES, "sac/episode", FLOATS),
        Endpoint(SUBSCRIBES, "joint_states", JOINT_STATE),
        Endpoint(SUBSCRIBES, "valve/joint_states", JOINT_STATE, _when(robot="dclaw", obs="state")),
        Endpoint(SUBSCRIBES, "camera/image_32x32", IMAGE, _when(robot="dclaw", obs="pixels")),
        Endpoint(SUBSCRIBES, "imu", IMU, _MINITAUR),
        Endpoint(SUBSCRIBES, "sac/reward", REWARD),
        Endpoint(SUBSCRIBES, "sac/policy", BYTES),
        Endpoint(SUBSCRIBES, "sac/transitions_ack", TEXT),
        Endpoint(CALLS, "sac/reset", TRIGGER),
    ),
    "reward_node": (
        Endpoint(PUBLISHES, "sac/reward", REWARD),
        Endpoint(SERVES, "sac/reset", TRIGGER),
        Endpoint(SUBSCRIBES, "joint_states", JOINT_STATE, _DCLAW),
        Endpoint(SUBSCRIBES, "valve/joint_states", JOINT_STATE, _DCLAW),
        Endpoint(PUBLISHES, "valve/position_controller/commands", FLOATS, _DCLAW),
        Endpoint(CALLS, "valve/torque_enable", SET_BOOL, _DCLAW),
        Endpoint(SUBSCRIBES, "mocap/pose", POSE, _MINITAUR),
        Endpoint(SUBSCRIBES, "joint_position_controller/commands", FLOATS, _MINITAUR),
        Endpoint(SERVES, "sac/reset_done", TRIGGER, _MINITAUR),
        Endpoint(CALLS, "sim/place_upright", TRIGGER, _MINITAUR),
    ),
    "learner_node": (
        Endpoint(SUBSCRIBES, "sac/transitions", BYTES, per_robot=True),
        Endpoint(PUBLISHES, "sac/policy", BYTES, per_robot=True),
        Endpoint(PUBLISHES, "sac/transitions_ack", TEXT, per_robot=True),
        Endpoint(PUBLISHES, "sac/learner_stats", FLOATS),
    ),
    "mujoco_sim_node": (
        Endpoint(PUBLISHES, "joint_states", JOINT_STATE),
        Endpoint(PUBLISHES, "/clock", CLOCK),
        Endpoint(SUBSCRIBES, "joint_position_controller/commands", FLOATS),
        Endpoint(PUBLISHES, "valve/joint_states", JOINT_STATE, _DCLAW),
        Endpoint(SUBSCRIBES, "valve/position_controller/commands", FLOATS, _DCLAW),
        Endpoint(SERVES, "valve/torque_enable", SET_BOOL, _DCLAW),
        Endpoint(PUBLISHES, "camera/image_32x32", IMAGE, _when(camera=True)),
        Endpoint(PUBLISHES, "imu", IMU, _MINITAUR),
        Endpoint(PUBLISHES, "mocap/pose", POSE, _MINITAUR),
        Endpoint(SERVES, "sim/place_upright", TRIGGER, _MINITAUR),
    ),
    "dclaw_driver_node": (
        Endpoint(PUBLISHES, "joint_states", JOINT_STATE),
        Endpoint(SUBSCRIBES, "joint_position_controller/commands", FLOATS),
        Endpoint(PUBLISHES, "valve/joint_states", JOINT_STATE, _when(use_valve=True)),
        Endpoint(SUBSCRIBES, "valve/position_controller/commands", FLOATS, _when(use_valve=True)),
        Endpoint(SERVES, "valve/torque_enable", SET_BOOL, _when(use_valve=True)),
        *_ESTOP,
        Endpoint(SERVES, "reboot", TRIGGER),
        Endpoint(SERVES, "enable", SET_BOOL),
    ),
    "minitaur_driver_node": (
        Endpoint(PUBLISHES, "joint_states", JOINT_STATE),
        Endpoint(PUBLISHES, "{controller_topic}", FLOATS, _when(command_interface="position")),
        Endpoint(PUBLISHES, "{effort_controller_topic}", FLOATS, _when(command_interface="effort")),
        Endpoint(SUBSCRIBES, "{state_topic}", JOINT_STATE),
        Endpoint(SUBSCRIBES, "{imu_topic}", IMU),
        Endpoint(SUBSCRIBES, "joint_position_controller/commands", FLOATS),
        *_ESTOP,
        Endpoint(SERVES, "reset_fall", TRIGGER),
        Endpoint(CALLS, "{power_service}", SET_BOOL, _given("power_service")),
    ),
    "camera_node": (Endpoint(PUBLISHES, "camera/image_32x32", IMAGE),),
    "dxl_emulator_node": (),
    "gazebo_adapter_node": (
        Endpoint(SERVES, "valve/torque_enable", SET_BOOL, _DCLAW),
        Endpoint(CALLS, "controller_manager/switch_controller", SWITCH_CONTROLLER, _DCLAW),
        Endpoint(SERVES, "sim/place_upright", TRIGGER, _MINITAUR),
        Endpoint(CALLS, "{set_pose_service}", SET_ENTITY_POSE, _MINITAUR),
    ),
}
_EVERY_NODE = (
    Endpoint(PUBLISHES, "/diagnostics", DIAGNOSTICS),
    Endpoint(SUBSCRIBES, "/clock", CLOCK, _when(use_sim_time=True)),
)


def combinations() -> list[tuple[str, str, str]]:
    """Every (robot, sim, obs) that :func:`build_graph` accepts."""
    out = []
    for robot in ROBOTS:
        for sim in SIMS:
            for obs in OBS:
                try:
                    build_graph(robot, sim, obs)
                except ValueError:
                    continue
                out.append((robot, sim, obs))
    return out


def expand_name(name: str, namespace: str, node: str) -> str:
    """A topic or service name as ROS resolves it in ``namespace`` for ``node``."""
    if name.startswith("/"):
        return name
    if name.startswith("~"):
        return f"{namespace}/{node}{name[1:]}"
    return f"{namespace}/{name}"


def resolve_name(spec: NodeSpec, name: str) -> str:
    """``name`` as ``spec``'s node sees it: expanded, then remapped."""
    full = expand_name(name, spec.namespace, spec.name)
    for src, dst in spec.remappings:
        if expand_name(src, spec.namespace, spec.name) == full:
            return expand_name(dst, spec.namespace, spec.name)
    return full


def _fqn_pattern(key: str) -> re.Pattern[str]:
    """A params file's node key (``/**/policy``, ``/dclaw/*``...) as a regex on names."""
    parts = []
    for token in key.strip("/").split("/"):
        if token == "**":
            parts.append("(?:/[^/]+)*")
        elif token == "*":
            parts.append("/[^/]+")
        else:
            parts.append("/" + re.escape(token))
    return re.compile("".join(parts))


def _sections(data: Any, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(node key, parameters) of a params file, nested namespace keys joined with /."""
    if not isinstance(data, dict):
        return []
    if "ros__parameters" in data:
        return [(prefix, _flatten(data["ros__parameters"] or {}))]
    out = []
    for key, value in data.items():
        out += _sections(value, f"{prefix}/{str(key).strip('/')}")
    return out


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def file_parameters(spec: NodeSpec) -> dict[str, Any]:
    """The values ``spec``'s params files give its node (later files win)."""
    return _matching_values(spec, spec.params_files)


def _matching_values(spec: NodeSpec, files: list[str]) -> dict[str, Any]:
    """The values these params files give ``spec``'s node (later files win)."""
    fqn = f"{spec.namespace}/{spec.name}"
    values: dict[str, Any] = {}
    for path in files:
        for key, params in _sections(yaml.safe_load(Path(path).read_text())):
            if _fqn_pattern(key).fullmatch(fqn):
                values.update(params)
    return values


def effective_parameters(spec: NodeSpec) -> dict[str, Any]:
    """The node's defaults for what ENDPOINTS depends on, then its files, then ``-p``."""
    defaults = {"robot": "dclaw", "use_sim_time": False, **DEFAULTS.get(spec.executable, {})}
    return {**defaults, **file_parameters(spec), **spec.parameters}


def _robot_topic(robot_ns: str, name: str) -> str:
    """The learner's name for ``name`` of the robot in ``robot_ns`` ("" = its own)."""
    robot_ns = str(robot_ns).rstrip("/")
    return f"{robot_ns}/{name}" if robot_ns else name


def _names(e: Endpoint, params: Params) -> list[str]:
    """The names the node creates for ``e``: parameters filled in, once per robot."""
    name = e.name.format(**params)
    if not e.per_robot:
        return [name]
    return [_robot_topic(ns, name) for ns in params["robot_namespaces"]]


def endpoints(spec: NodeSpec) -> list[tuple[str, str, str]]:
    """(role, fully resolved name, type) of every topic and service of ``spec``'s node,
    in the order of ROLES, then by name."""
    if spec.executable not in ENDPOINTS:
        raise ValueError(f"no endpoints listed for {spec.executable!r} (sac_ros.graph)")
    params = effective_parameters(spec)
    found = set()
    for e in ENDPOINTS[spec.executable] + _EVERY_NODE:
        if not e.when(params):
            continue
        found |= {(e.role, resolve_name(spec, n), e.type) for n in _names(e, params)}
    return sorted(found, key=lambda x: (ROLES.index(x[0]), x[1]))


def describe(nodes: list[NodeSpec]) -> str:
    """Human-readable listing for ``sac-ros graph``: per node its parameters,
    remappings, params files, topics and services (resolved)."""
    lines = []
    for n in nodes:
        lines.append(f"{n.namespace or ''}/{n.name}  ({n.package} {n.executable}, {n.role})")
        for k, v in sorted(n.parameters.items()):
            lines.append(f"    {k} = {_param_text(v)}")
        for src, dst in n.remappings:
            lines.append(f"    remap {src} -> {dst}")
        for f in n.params_files:
            lines.append(f"    params file: {f}")
        for role, name, kind in endpoints(n):
            lines.append(f"    {role:<10} {name}  [{kind}]")
    return "\n".join(lines)
