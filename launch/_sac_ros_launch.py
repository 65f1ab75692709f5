"""Shared by the sac_ros launch files: launch arguments -> sac_ros.graph -> launch_ros Nodes.

The launch files list no nodes of their own. ``sac_ros.graph.build_graph`` (the same
description the ``sac-ros`` command starts as processes) says which nodes a robot and a
simulator need and with which parameters; this module turns its answer into
``launch_ros.actions.Node`` actions, and with ``sim:=gazebo`` adds the Gazebo processes
of ``_sac_ros_gazebo.py``.

What decides (the arguments, their parsing, each Node's keyword arguments) is plain
Python, so the tests check it where ROS 2 launch is not installed; ``launch`` and
``launch_ros`` are imported only where the actions are built.

Used by dclaw.launch.py and minitaur.launch.py (one robot, learner included by default),
robot.launch.py (the robot side alone) and learner.launch.py (the learner alone), the
last two for the paper's setup of a robot computer and a training workstation; and by
monitor.launch.py (diagnostic_aggregator with config/diagnostic_aggregator.yaml, and
rqt_robot_monitor with ``rqt:=true``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sac_ros.graph import OBS, ROBOTS, SIMS, NodeSpec, build_graph, robot_namespaces
from sac_ros.paths import share_path
from sac_ros.runtime import cpu_latency

# Seconds ros2 launch waits after SIGINT before it sends SIGTERM: a policy node waits up
# to its drain_timeout (10 s) for the learner's acks, the learner writes its final
# checkpoint (replay buffer included) before it exits.
SIGTERM_TIMEOUT = {"robot": "30", "learner": "120"}
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class Argument:
    """One launch argument (a DeclareLaunchArgument once launch is imported)."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] | None = None


def _sims(robot: str | None) -> tuple[str, ...]:
    return tuple(s for s in SIMS if s != "emulated") if robot == "minitaur" else SIMS


def _obs(robot: str | None) -> tuple[str, ...]:
    return ("state",) if robot == "minitaur" else OBS


def robot_arguments(robot: str | None, learner: bool) -> list[Argument]:
    """Arguments of a robot launch file.

    ``robot=None`` adds a ``robot`` argument (robot.launch.py); ``learner=True`` adds
    ``learner``, ``resume`` and ``run_dir`` (the learner may run on this machine).
    """
    args = []
    if robot is None:
        args.append(Argument("robot", "dclaw", "Robot: dclaw or minitaur", ROBOTS))
    args += [
        Argument(
            "sim",
            "none",
            "none = the real robot (default); mujoco = embedded MuJoCo; gazebo = gz sim "
            "with gz_ros2_control; emulated = the D'Claw driver on the Dynamixel emulator",
            _sims(robot),
        ),
        Argument(
            "obs",
            "state",
            "Observation: state, or pixels (D'Claw: 32x32 camera image + finger joints)",
            _obs(robot),
        ),
        Argument(
            "namespace",
            robot or "",
            "ROS namespace of the robot's nodes ('' = the robot's name, '/' = none)",
        ),
        Argument("port", "/dev/ttyUSB0", "Serial port of the D'Claw's Dynamixel bus"),
        Argument("params_file", "", "YAML parameters applied after config/<robot>.yaml"),
        Argument("seed", "0", "Random seed (integer >= 0)"),
        Argument(
            "gui",
            "true",
            "sim:=gazebo only: open Gazebo's window (false: server with headless rendering)",
        ),
        Argument(
            "cpu_latency_us",
            "",
            "Keep the CPUs in idle states that wake within this many microseconds while "
            "the nodes run (Linux PM QoS, /dev/cpu_dma_latency; 0: polling idle; '' = "
            "leave them alone). Faster hand-offs, more power; needs write access",
        ),
    ]
    if learner:
        args += [
            Argument("learner", "true", "Also start the learner here (true|false)"),
            Argument("resume", "false", "Continue the run in run_dir from its checkpoint"),
            Argument("run_dir", "", "Checkpoints, TensorBoard, metrics ('' = runs/<robot>_<obs>)"),
        ]
    return args


def learner_arguments() -> list[Argument]:
    """Arguments of learner.launch.py (the learner alone, on the workstation)."""
    return [
        Argument("robot", "dclaw", "Robot: dclaw or minitaur", ROBOTS),
        Argument(
            "sim",
            "none",
            "What the robots run on (none = real robots); sets the learner's parameters as "
            "in the one-machine graph",
            SIMS,
        ),
        Argument("obs", "state", "Observation: state or pixels (D'Claw)", OBS),
        Argument(
            "robot_namespaces",
            "",
            "Namespaces of the robots feeding this learner, comma separated, e.g. "
            "'/dclaw_0,/dclaw_1' ('' = the robot's name, '/' = no namespace)",
        ),
        Argument("resume", "false", "Continue the run in run_dir from its checkpoint"),
        Argument("run_dir", "", "Checkpoints, TensorBoard, metrics ('' = runs/<robot>_<obs>)"),
        Argument("params_file", "", "YAML parameters applied after config/<robot>.yaml"),
        Argument("seed", "0", "Random seed (integer >= 0)"),
    ]


# --- parsing launch argument values (strings) ---------------------------------------
def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def parse_seed(text: str) -> int:
    try:
        seed = int(text.strip())
    except ValueError:
        raise ValueError(f"launch argument seed:={text!r} must be an integer") from None
    if not 0 <= seed < 2**31:
        raise ValueError(f"launch argument seed:={text!r} must be in [0, 2**31)")
    return seed


def parse_choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    value = text.strip()
    if value not in choices:
        raise ValueError(f"launch argument {name}:={text!r} must be one of {choices}")
    return value


def parse_namespace(robot: str, text: str) -> str:
    """``''`` -> ``/<robot>``, ``'/'`` -> ``''`` (no namespace), else ``/a/b`` checked."""
    value = text.strip()
    if not value:
        return robot_namespaces(robot, 1)[0]
    tokens = [t for t in value.split("/") if t]
    if "//" in value.rstrip("/") or any(not _TOKEN.fullmatch(t) for t in tokens):
        raise ValueError(
            f"namespace {text!r} is not a ROS namespace (tokens of letters, digits and _, "
            "not starting with a digit, separated by /)"
        )
    return robot_namespaces(robot, 1, "/".join(tokens))[0]


def parse_namespaces(robot: str, text: str) -> list[str]:
    """A comma or space separated list (brackets allowed), each as in parse_namespace."""
    value = text.strip().strip("[]")
    items = [i.strip().strip("'\"") for i in re.split(r"[,\s]+", value) if i.strip()]
    namespaces = [parse_namespace(robot, i) for i in items] or [parse_namespace(robot, "")]
    if len(set(namespaces)) != len(namespaces):
        raise ValueError(f"robot_namespaces {text!r} names a namespace twice")
    return namespaces


def parse_params_file(text: str, name: str = "params_file") -> str | None:
    value = text.strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"launch argument {name}:={text!r}: no such file")
    return str(path.resolve())


def _run_dir(values: Mapping[str, str], robot: str, obs: str) -> str:
    return values.get("run_dir", "").strip() or f"runs/{robot}_{obs}"


# --- the graph ----------------------------------------------------------------------
def robot_graph(robot: str, values: Mapping[str, str], learner: bool) -> list[NodeSpec]:
    """The nodes of a robot launch file for these argument values.

    ``learner=False`` (robot.launch.py) never starts the learner; otherwise the
    ``learner`` argument decides.
    """
    robot = parse_choice("robot", robot, ROBOTS)
    sim = parse_choice("sim", values["sim"], SIMS)
    obs = parse_choice("obs", values["obs"], OBS)
    with_learner = learner and parse_bool("learner", values.get("learner", "true"))
    return build_graph(
        robot, sim, obs,
        namespaces=[parse_namespace(robot, values["namespace"])],
        learner=with_learner,
        robot_side=True,
        resume=parse_bool("resume", values.get("resume", "false")),
        run_dir=_run_dir(values, robot, obs),
        port=values["port"].strip(),
        seed=parse_seed(values["seed"]),
        params_file=parse_params_file(values["params_file"]),
    )  # fmt: skip


def learner_graph(values: Mapping[str, str]) -> list[NodeSpec]:
    """The learner alone, fed by the robots in ``robot_namespaces``."""
    robot = parse_choice("robot", values["robot"], ROBOTS)
    sim = parse_choice("sim", values["sim"], SIMS)
    obs = parse_choice("obs", values["obs"], OBS)
    return build_graph(
        robot, sim, obs,
        namespaces=parse_namespaces(robot, values["robot_namespaces"]),
        learner=True,
        robot_side=False,
        resume=parse_bool("resume", values["resume"]),
        run_dir=_run_dir(values, robot, obs),
        seed=parse_seed(values["seed"]),
        params_file=parse_params_file(values["params_file"]),
    )  # fmt: skip


def node_environment(values: Mapping[str, str]) -> dict[str, str]:
    """Environment variables for every node: the ``cpu_latency_us`` request (checked)."""
    text = values.get("cpu_latency_us", "")
    return cpu_latency.environment(
        cpu_latency.parse_microseconds(text, "launch argument cpu_latency_us")
    )


def node_arguments(spec: NodeSpec, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``launch_ros.actions.Node`` for one NodeSpec.

    Parameters: the NodeSpec's files in order, then its dictionary, so the dictionary
    wins as ``-p`` does after ``--params-file`` on the sac-ros command line. ``env``:
    variables added to the node's environment.
    """
    for key, value in spec.parameters.items():
        if isinstance(value, (list, tuple)) and not value:
            raise ValueError(
                f"{spec.name}: parameter {key} is an empty list, which launch cannot type"
            )
    return {
        "package": spec.package,
        "executable": spec.executable,
        "name": spec.name,
        "namespace": spec.namespace or "/",
        "parameters": [*spec.params_files, dict(spec.parameters)],
        "remappings": list(spec.remappings),
        "output": "screen",
        "emulate_tty": True,
        "sigterm_timeout": SIGTERM_TIMEOUT.get(spec.role, "30"),
        **({"prefix": f"nice -n {spec.nice}"} if spec.nice else {}),
        **({"additional_env": dict(env)} if env else {}),
    }


# --- monitor.launch.py: diagnostic_aggregator (and rqt_robot_monitor) -----------------
def monitor_arguments() -> list[Argument]:
    """Arguments of monitor.launch.py."""
    return [
        Argument(
            "analyzers",
            "",
            "diagnostic_aggregator analyzers YAML ('' = sac_ros's "
            "config/diagnostic_aggregator.yaml)",
        ),
        Argument("rqt", "false", "Also open rqt_robot_monitor on /diagnostics_agg (true|false)"),
    ]


def monitor_nodes(values: Mapping[str, str]) -> list[dict[str, Any]]:
    """Keyword arguments of the launch_ros Nodes monitor.launch.py starts.

    The aggregator keeps its own node name (``analyzers``), which the YAML's top key
    addresses.
    """
    analyzers = parse_params_file(values["analyzers"], "analyzers") or str(
        share_path("config", "diagnostic_aggregator.yaml")
    )
    nodes = [
        {
            "package": "diagnostic_aggregator",
            "executable": "aggregator_node",
            "parameters": [analyzers],
            "output": "screen",
        }
    ]
    if parse_bool("rqt", values["rqt"]):
        nodes.append(
            {"package": "rqt_robot_monitor", "executable": "rqt_robot_monitor", "output": "screen"}
        )
    return nodes


# --- launch actions (launch and launch_ros imported from here on) ---------------------
def node_action(spec: NodeSpec, env: Mapping[str, str] | None = None) -> Any:
    from launch_ros.actions import Node

    return Node(**node_arguments(spec, env))


def _declare(arguments: list[Argument]) -> list[Any]:
    from launch.actions import DeclareLaunchArgument

    return [
        DeclareLaunchArgument(
            a.name,
            default_value=a.default,
            description=a.description,
            **({"choices": list(a.choices)} if a.choices else {}),
        )  # fmt: skip
        for a in arguments
    ]


def _description(
    arguments: list[Argument], actions_for: Callable[[dict[str, str]], list[Any]]
) -> Any:
    from launch.actions import OpaqueFunction

    from launch import LaunchDescription

    def setup(context: Any) -> list[Any]:
        values = {a.name: context.launch_configurations[a.name] for a in arguments}
        return actions_for(values)

    return LaunchDescription([*_declare(arguments), OpaqueFunction(function=setup)])


def robot_launch_description(robot: str | None, learner: bool) -> Any:
    """dclaw/minitaur.launch.py (``robot`` fixed) and robot.launch.py (``robot=None``,
    ``learner=False``)."""
    arguments = robot_arguments(robot, learner)

    def actions_for(values: dict[str, str]) -> list[Any]:
        name = robot or values["robot"]
        nodes = robot_graph(name, values, learner)
        actions: list[Any] = []
        if values["sim"].strip() == "gazebo":
            import _sac_ros_gazebo as gazebo

            actions += gazebo.gazebo_actions(
                name, values["obs"].strip(), parse_namespace(name, values["namespace"]),
                gui=parse_bool("gui", values["gui"]),
            )  # fmt: skip
        env = node_environment(values)
        return actions + [node_action(n, env) for n in nodes]

    return _description(arguments, actions_for)


def learner_launch_description() -> Any:
    """learner.launch.py: the learner alone."""
    arguments = learner_arguments()
    return _description(arguments, lambda values: [node_action(n) for n in learner_graph(values)])


def monitor_launch_description() -> Any:
    """monitor.launch.py: the aggregator of every node's /diagnostics, optionally rqt."""
    from launch_ros.actions import Node

    return _description(
        monitor_arguments(), lambda values: [Node(**kw) for kw in monitor_nodes(values)]
    )
