"""The ros2 launch files start exactly the nodes sac_ros.graph lists (and monitor.launch.py
the diagnostic aggregator with the package's analyzers).

Everywhere: every launch file compiles and defines generate_launch_description; the
shared module (launch/_sac_ros_launch.py) turns launch argument values into the same
build_graph call the sac-ros command makes, rejects bad values with a message naming
the argument, and gives each NodeSpec's name, namespace, executable and parameters to
launch_ros. Where ROS 2 ``launch`` and ``launch_ros`` are installed (not on the build
machines: no wheels exist for them), the launch descriptions are built and each Node
action is compared with the graph.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import py_compile
import sys
from pathlib import Path

import pytest
import yaml

from sac_ros.graph import NodeSpec, build_graph, combinations

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
sys.path.insert(0, str(LAUNCH))
import _sac_ros_launch as support  # noqa: E402

LAUNCH_FILES = {
    "dclaw.launch.py": ("robot_launch_description", "dclaw"),
    "minitaur.launch.py": ("robot_launch_description", "minitaur"),
    "robot.launch.py": ("robot_launch_description", None),
    "learner.launch.py": ("learner_launch_description", None),
    "monitor.launch.py": ("monitor_launch_description", None),
}
BRIEF_ARGUMENTS = {"sim", "obs", "namespace", "port", "learner", "resume", "run_dir",
                   "params_file", "seed"}  # fmt: skip


COMBOS = combinations()


def _defaults(arguments: list[support.Argument]) -> dict[str, str]:
    return {a.name: a.default for a in arguments}


def _same(a: list[NodeSpec], b: list[NodeSpec]) -> None:
    assert [(n.namespace, n.name) for n in a] == [(n.namespace, n.name) for n in b]
    assert a == b


# --- the files ------------------------------------------------------------------------
def test_launch_folder_holds_the_launch_files():
    assert {p.name for p in LAUNCH.glob("*.launch.py")} == set(LAUNCH_FILES)


@pytest.mark.parametrize("name", sorted(p.name for p in LAUNCH.glob("*.py")))
def test_every_launch_python_file_compiles(name, tmp_path):
    py_compile.compile(str(LAUNCH / name), cfile=str(tmp_path / "out.pyc"), doraise=True)


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_launch_file_defines_generate_launch_description_from_the_shared_module(name):
    tree = ast.parse((LAUNCH / name).read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert not functions["generate_launch_description"].args.args
    calls = [
        n for n in ast.walk(functions["generate_launch_description"]) if isinstance(n, ast.Call)
    ]
    builder, robot = LAUNCH_FILES[name]
    assert [c.func.id for c in calls] == [builder]  # no node list of its own
    if builder == "robot_launch_description":
        assert ast.literal_eval(calls[0].args[0]) == robot


# --- arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("robot", ["dclaw", "minitaur"])
def test_robot_launch_arguments(robot):
    args = {a.name: a for a in support.robot_arguments(robot, learner=True)}
    assert BRIEF_ARGUMENTS <= set(args)
    assert args["sim"].default == "none"  # real hardware unless told otherwise
    assert args["namespace"].default == robot
    for a in args.values():  # every default is a valid choice
        assert a.choices is None or a.default in a.choices, a
    accepted = {sim for r, sim, _ in COMBOS if r == robot}
    assert set(args["sim"].choices) == accepted
    assert set(args["obs"].choices) == {obs for r, _, obs in COMBOS if r == robot}
    robot_side = {a.name for a in support.robot_arguments(None, learner=False)}
    assert "robot" in robot_side and not {"learner", "resume", "run_dir"} & robot_side
    learner = {a.name for a in support.learner_arguments()}
    assert {"robot", "robot_namespaces", "resume", "run_dir", "seed"} <= learner


# --- arguments -> graph -----------------------------------------------------------------
@pytest.mark.parametrize("robot,sim,obs", COMBOS)
def test_default_arguments_give_the_graph(robot, sim, obs):
    values = {**_defaults(support.robot_arguments(robot, learner=True)), "sim": sim, "obs": obs}
    expected = build_graph(robot, sim, obs, run_dir=f"runs/{robot}_{obs}")
    _same(support.robot_graph(robot, values, learner=True), expected)


@pytest.mark.parametrize("robot,sim,obs", COMBOS)
def test_every_argument_reaches_build_graph(robot, sim, obs, tmp_path):
    params = tmp_path / "mine.yaml"
    params.write_text("/**/policy:\n  ros__parameters:\n    smoothing: 0.5\n")
    values = {
        **_defaults(support.robot_arguments(None, learner=True)),
        "sim": sim, "obs": obs, "namespace": "lab/unit_3/", "port": "/dev/ttyUSB7",
        "learner": "False", "resume": "true", "run_dir": str(tmp_path / "run"),
        "params_file": str(params), "seed": "42",
    }  # fmt: skip
    expected = build_graph(
        robot, sim, obs, namespaces=["/lab/unit_3"], learner=False, resume=True,
        run_dir=str(tmp_path / "run"), port="/dev/ttyUSB7", seed=42, params_file=str(params),
    )  # fmt: skip
    _same(support.robot_graph(robot, values, learner=True), expected)
    # robot.launch.py never starts the learner, whatever the values say.
    values["learner"] = "true"
    _same(support.robot_graph(robot, values, learner=False), expected)
    assert all(n.role == "robot" for n in expected)


def test_namespace_values():
    assert support.parse_namespace("dclaw", "") == "/dclaw"
    assert support.parse_namespace("dclaw", "/") == ""
    assert support.parse_namespace("minitaur", "minitaur_1") == "/minitaur_1"
    assert support.parse_namespaces("dclaw", "[/dclaw_0, dclaw_1]") == ["/dclaw_0", "/dclaw_1"]
    assert support.parse_namespaces("dclaw", "") == ["/dclaw"]
    assert support.parse_namespaces("dclaw", "/") == [""]


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("seed", "x", "seed"),
        ("seed", "-1", "seed"),
        ("learner", "maybe", "learner"),
        ("resume", "2", "resume"),
        ("namespace", "1robot", "namespace"),
        ("namespace", "a//b", "namespace"),
        ("namespace", "bad-name", "namespace"),
        ("params_file", "/nonexistent/params.yaml", "params_file"),
        ("sim", "bullet", "sim"),
        ("obs", "depth", "obs"),
    ],
)
def test_bad_argument_values_are_refused_by_name(name, value, match):
    values = {**_defaults(support.robot_arguments("dclaw", learner=True)), name: value}
    with pytest.raises(ValueError, match=match):
        support.robot_graph("dclaw", values, learner=True)


def test_graph_refusals_reach_the_launch_user():
    values = {**_defaults(support.robot_arguments("minitaur", learner=True)), "obs": "pixels"}
    with pytest.raises(ValueError, match="no pixel variant"):
        support.robot_graph("minitaur", values, learner=True)
    values = {**_defaults(support.learner_arguments()), "robot_namespaces": "/a,/b,a"}
    with pytest.raises(ValueError, match="twice"):
        support.learner_graph(values)


@pytest.mark.parametrize("robot,obs", [("dclaw", "pixels"), ("minitaur", "state")])
def test_learner_launch_gives_the_learner_of_the_graph(robot, obs):
    values = {
        **_defaults(support.learner_arguments()),
        "robot": robot, "obs": obs, "robot_namespaces": f"/{robot}_0, /{robot}_1", "seed": "3",
    }  # fmt: skip
    nodes = support.learner_graph(values)
    one_machine = build_graph(
        robot, "none", obs, namespaces=[f"/{robot}_0", f"/{robot}_1"], seed=3,
        run_dir=f"runs/{robot}_{obs}",
    )  # fmt: skip
    _same(nodes, [n for n in one_machine if n.role == "learner"])
    assert nodes[0].parameters["robot_namespaces"] == [f"/{robot}_0", f"/{robot}_1"]


# --- monitor.launch.py ----------------------------------------------------------------
def test_monitor_starts_the_aggregator_with_the_packages_analyzers():
    values = _defaults(support.monitor_arguments())
    assert values == {"analyzers": "", "rqt": "false"}
    (aggregator,) = support.monitor_nodes(values)
    assert (aggregator["package"], aggregator["executable"]) == (
        "diagnostic_aggregator", "aggregator_node",
    )  # fmt: skip
    assert "name" not in aggregator  # the YAML's top key is its own name, "analyzers"
    (analyzers,) = aggregator["parameters"]
    source = ROOT / "config" / "diagnostic_aggregator.yaml"  # or its installed copy
    assert Path(analyzers).read_text() == source.read_text()


def test_monitor_arguments_add_rqt_and_other_analyzers(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("analyzers:\n  ros__parameters: {}\n")
    aggregator, rqt = support.monitor_nodes({"analyzers": str(mine), "rqt": "true"})
    assert aggregator["parameters"] == [str(mine.resolve())]
    assert (rqt["package"], rqt["executable"]) == ("rqt_robot_monitor", "rqt_robot_monitor")
    with pytest.raises(ValueError, match="analyzers"):
        support.monitor_nodes({"analyzers": str(tmp_path / "none.yaml"), "rqt": "false"})
    with pytest.raises(ValueError, match="rqt"):
        support.monitor_nodes({"analyzers": "", "rqt": "maybe"})


# --- NodeSpec -> launch_ros Node --------------------------------------------------------
@pytest.mark.parametrize("robot,sim,obs", COMBOS)
def test_node_arguments_carry_the_spec(robot, sim, obs):
    for spec in build_graph(robot, sim, obs):
        kwargs = support.node_arguments(spec)
        assert (kwargs["package"], kwargs["executable"], kwargs["name"]) == (
            spec.package, spec.executable, spec.name,
        )  # fmt: skip
        assert kwargs["namespace"] == (spec.namespace or "/")
        *files, params = kwargs["parameters"]
        assert files == spec.params_files and all(Path(f).is_file() for f in files)
        assert params == spec.parameters and params is not spec.parameters
        assert kwargs["remappings"] == spec.remappings
        # Longer than a policy's drain on shutdown (policy_node drain_timeout, 10 s).
        assert float(kwargs["sigterm_timeout"]) > 10.0
        assert kwargs.get("prefix") == (f"nice -n {spec.nice}" if spec.nice else None)


def test_cpu_latency_argument_reaches_every_node_environment():
    values = _defaults(support.robot_arguments("dclaw", learner=True))
    assert support.node_environment(values) == {}
    spec = build_graph("dclaw", "mujoco")[0]
    assert "additional_env" not in support.node_arguments(spec, {})
    env = support.node_environment({**values, "cpu_latency_us": " 0 "})
    assert env == {"SAC_ROS_CPU_LATENCY_US": "0"}
    assert support.node_arguments(spec, env)["additional_env"] == env
    for bad in ("-1", "low"):
        with pytest.raises(ValueError, match="cpu_latency_us"):
            support.node_environment({**values, "cpu_latency_us": bad})


def test_only_a_reward_node_off_the_critical_path_runs_at_lower_priority():
    # D'Claw in lockstep: the policy acts before the reward is in. Minitaur's reward can
    # end the episode, so its policy waits for it; on hardware every node keeps its place.
    for robot, sim in itertools.product(("dclaw", "minitaur"), ("mujoco", "none", "gazebo")):
        niced = {(s.name, s.nice) for s in build_graph(robot, sim) if s.nice}
        assert niced == ({("reward", 10)} if (robot, sim) == ("dclaw", "mujoco") else set())


def test_node_arguments_refuse_an_untypable_empty_list():
    spec = build_graph("dclaw", "mujoco")[-1]
    spec.parameters["robot_namespaces"] = []
    with pytest.raises(ValueError, match="robot_namespaces"):
        support.node_arguments(spec)


# --- with ROS 2 launch installed ----------------------------------------------------
class _Loader(yaml.SafeLoader):
    """launch_ros writes list parameters as tuples; read them back as lists."""


_Loader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node)
)


def _launch_actions(name: str, configurations: dict[str, str]) -> tuple[list, object]:
    pytest.importorskip("launch.actions", reason="ROS 2 launch is not installed")
    pytest.importorskip("launch_ros.actions", reason="ROS 2 launch_ros is not installed")
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    context.launch_configurations.update(configurations)
    actions: list = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            entity.visit(context)  # the default, unless given
        elif isinstance(entity, OpaqueFunction):
            actions += entity.visit(context) or []
    return actions, context


def _check_nodes(actions: list, context: object, expected: list[NodeSpec]) -> None:
    from launch_ros.actions import Node

    ours = [a for a in actions if isinstance(a, Node) and a.node_package == "sac_ros"]
    assert len(ours) == len(expected)
    for node, spec in zip(ours, expected, strict=True):
        node._perform_substitutions(context)
        assert node.node_executable == spec.executable
        assert node.expanded_node_namespace == (spec.namespace or "/")
        assert node.node_name == f"{spec.namespace}/{spec.name}"
        arguments = node._Node__expanded_parameter_arguments  # (path or rule, is_file)
        assert [p for p, _ in arguments[:-1]] == spec.params_files
        written = yaml.load(Path(arguments[-1][0]).read_text(), Loader=_Loader)
        assert written == {node.node_name: {"ros__parameters": spec.parameters}}


@pytest.mark.parametrize("robot,sim,obs", COMBOS)
def test_robot_launch_files_start_exactly_the_graph(robot, sim, obs):
    actions, context = _launch_actions(f"{robot}.launch.py", {"sim": sim, "obs": obs})
    _check_nodes(actions, context, build_graph(robot, sim, obs, run_dir=f"runs/{robot}_{obs}"))
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler
    from launch_ros.actions import Node

    others = {a.node_package for a in actions if isinstance(a, Node)} - {"sac_ros"}
    gazebo = {"robot_state_publisher", "ros_gz_sim", "ros_gz_bridge"}
    assert others == (gazebo if sim == "gazebo" else set())
    includes = [a for a in actions if isinstance(a, IncludeLaunchDescription)]
    handlers = [a for a in actions if isinstance(a, RegisterEventHandler)]
    assert (len(includes), len(handlers)) == ((1, 1) if sim == "gazebo" else (0, 0))


@pytest.mark.parametrize("robot", ["dclaw", "minitaur"])
def test_robot_and_learner_launch_files_split_the_graph(robot):
    values = {"robot": robot, "namespace": f"{robot}_1", "seed": "5"}
    actions, context = _launch_actions("robot.launch.py", values)
    expected = build_graph(robot, "none", namespaces=[f"/{robot}_1"], learner=False, seed=5)
    _check_nodes(actions, context, expected)
    values = {"robot": robot, "robot_namespaces": f"/{robot}_1", "seed": "5"}
    actions, context = _launch_actions("learner.launch.py", values)
    expected = build_graph(
        robot, "none", namespaces=[f"/{robot}_1"], robot_side=False, seed=5,
        run_dir=f"runs/{robot}_state",
    )  # fmt: skip
    _check_nodes(actions, context, expected)


def test_monitor_launch_file_starts_the_aggregator():
    actions, context = _launch_actions("monitor.launch.py", {"rqt": "true"})
    from launch_ros.actions import Node

    nodes = [a for a in actions if isinstance(a, Node)]
    assert [(n.node_package, n.node_executable) for n in nodes] == [
        ("diagnostic_aggregator", "aggregator_node"), ("rqt_robot_monitor", "rqt_robot_monitor"),
    ]  # fmt: skip
