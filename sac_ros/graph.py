"""Which nodes a robot and a simulator choice need, with their parameters.

One description feeds both the launch files (launch/*.launch.py turn each NodeSpec into a
launch_ros Node) and the ``sac-ros`` command (which starts each NodeSpec as a process
with ``python -m``), so the two cannot drift apart. No rclpy here.

``sim`` is one of:

- ``mujoco``: embedded MuJoCo in lockstep (the default of ``sac-ros``);
- ``gazebo``: gz sim with gz_ros2_control; the Gazebo processes come from ros_gz
  packages and are started by the launch files only (see launch/gazebo.launch.py);
- ``none``: real hardware: the project's drivers on the robot's ports;
- ``emulated``: the real D'Claw driver against the Dynamixel emulator with MuJoCo
  behind it (hardware-in-the-loop without the robot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        return value if value else "''"
    return repr(value)


def config_file(robot: str) -> str:
    return str(share_path("config", f"{robot}.yaml"))


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
    files = [config_file(robot)] + ([params_file] if params_file else [])
    lockstep = sim == "mujoco"
    # Lockstep (MuJoCo) nodes read simulation time from the readings' stamps, so no node
    # wakes up for every /clock message (the sim still publishes /clock for tools such as
    # rqt_plot). Gazebo runs freely and stamps its readings in simulation time: there the
    # nodes' clocks must follow /clock for the readings' age to make sense.
    common = {"robot": robot, "use_sim_time": sim == "gazebo"}
    nodes: list[NodeSpec] = []

    def node(name: str, module: str, ns: str, role: str = "robot", **params: Any) -> None:
        # Each simulated robot keeps its own clock: several lockstep simulators must not
        # share /clock, or one robot's time would jump with another's.
        remap = [("/clock", f"{ns}/clock")] if lockstep and role == "robot" and ns else []
        nodes.append(
            NodeSpec(
                name=name,
                executable=module,
                module=f"sac_ros.nodes.{module}",
                namespace=ns,
                parameters={**common, **params, **(extra or {}).get(name, {})},
                params_files=files,
                remappings=remap,
                role=role,
            )
        )

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
            node("policy", "policy_node", ns, obs=obs, seed=s,
                 tick="lockstep" if lockstep else "timer",
                 max_learner_backlog=50.0 if lockstep and learner else 0.0)  # fmt: skip
            node("reward", "reward_node", ns, seed=s, auto_confirm=sim != "none",
                 reliable_readings=lockstep,
                 **({"sync": "latest"} if sim in ("none", "emulated") else {}))  # fmt: skip
    if learner:
        node("learner", "learner_node", "", role="learner", obs=obs, seed=seed,
             robot_namespaces=list(namespaces) if namespaces != [""] else [""],
             run_dir=str(Path(run_dir)), resume=resume,
             ack_rate_hz=20.0 if lockstep else 5.0)  # fmt: skip
    return nodes


def describe(nodes: list[NodeSpec]) -> str:
    """Human-readable listing for ``sac-ros graph``."""
    lines = []
    for n in nodes:
        lines.append(f"{n.namespace or ''}/{n.name}  ({n.package} {n.executable}, {n.role})")
        for k, v in sorted(n.parameters.items()):
            lines.append(f"    {k} = {_param_text(v)}")
        for src, dst in n.remappings:
            lines.append(f"    remap {src} -> {dst}")
        for f in n.params_files:
            lines.append(f"    params file: {f}")
    return "\n".join(lines)
