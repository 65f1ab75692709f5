"""sim:=gazebo without Gazebo: the URDFs' ros2_control and <gazebo> blocks, the controller
and bridge files, and the launch module's URDF edits agree with the code
(sac_ros.robots) and with the topics the graph's nodes really use (started as processes
and asked over DDS). Gazebo itself cannot run on the build machines; the gazebo_adapter
node runs, refusing with reasons on /diagnostics, and (where controller_manager_msgs
and ros_gz_interfaces are installed) against stand-ins of Gazebo's services."""

from __future__ import annotations

import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sac_ros.graph import build_graph, config_file, expand_name
from sac_ros.robots import dclaw, minitaur
from sac_ros.robots.models import model_path
from sac_ros.tasks import dclaw_valve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "launch"))
import _sac_ros_gazebo as gz  # noqa: E402

ROBOTS = {"dclaw": dclaw.JOINT_NAMES, "minitaur": minitaur.JOINT_NAMES}
FCC = "forward_command_controller/ForwardCommandController"
JSB = "joint_state_broadcaster/JointStateBroadcaster"
IMU = "imu_sensor_broadcaster/IMUSensorBroadcaster"
IMU_INTERFACES = [
    f"{group}.{axis}"
    for group, axes in (("orientation", "xyzw"), ("angular_velocity", "xyz"),
                        ("linear_acceleration", "xyz"))
    for axis in axes
]  # fmt: skip
# ros_gz_bridge's message pairs for the types the bridge files use.
BRIDGE_TYPES = {
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
    "sensor_msgs/msg/Image": "gz.msgs.Image",
    "geometry_msgs/msg/PoseStamped": "gz.msgs.Pose",
}


def _urdf(robot: str) -> ET.Element:
    return ET.parse(model_path(robot, "urdf")).getroot()


def _controllers(robot: str) -> dict:
    data = yaml.safe_load(gz.controllers_file(robot).read_text())
    return {key.removeprefix("/**/"): value["ros__parameters"] for key, value in data.items()}


def _control_joints(root: ET.Element) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in root.find("ros2_control").findall("joint")}


def _sensor(root: ET.Element, reference: str) -> ET.Element:
    blocks = [g for g in root.findall("gazebo") if g.get("reference") == reference]
    assert len(blocks) == 1, f"one <gazebo reference='{reference}'> expected"
    return blocks[0].find("sensor")


def _plugin(root: ET.Element, name: str) -> ET.Element:
    found = [p for p in root.iter("plugin") if p.get("name") == name]
    assert len(found) == 1, f"one plugin {name} expected, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("robot", ROBOTS)
def test_ros2_control_commands_the_code_joints_by_position(robot):
    root = _urdf(robot)
    assert root.find("ros2_control/hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    joints = _control_joints(root)
    commanded = [n for n, j in joints.items() if j.find("command_interface") is not None]
    # The policy's command order first, in order; the D'Claw's valve motor after it.
    assert tuple(commanded[: len(ROBOTS[robot])]) == ROBOTS[robot]
    assert commanded[len(ROBOTS[robot]) :] == ([dclaw.VALVE_JOINT] if robot == "dclaw" else [])
    urdf_joints = {j.get("name") for j in root.findall("joint")}
    for name, joint in joints.items():
        assert name in urdf_joints, f"ros2_control names an unknown joint {name}"
        commands = [c.get("name") for c in joint.findall("command_interface")]
        assert commands in ([], ["position"]), (name, commands)
        states = [s.get("name") for s in joint.findall("state_interface")]
        assert {"position", "velocity"} <= set(states), (name, states)


@pytest.mark.parametrize("robot", ROBOTS)
def test_controllers_file_names_the_code_joints(robot):
    params = _controllers(robot)
    manager = params.pop("controller_manager")
    types = {k: v["type"] for k, v in manager.items() if isinstance(v, dict)}
    # Every controller the launch file spawns is declared, and only those.
    assert set(types) == {c.name for c in gz.CONTROLLERS[robot]}
    assert set(params) <= set(types)
    assert types["joint_state_broadcaster"] == JSB
    assert types["joint_position_controller"] == FCC
    position = params["joint_position_controller"]
    assert tuple(position["joints"]) == ROBOTS[robot]
    assert position["interface_name"] == "position"

    joints = _control_joints(_urdf(robot))
    for name, kind in types.items():
        p = params.get(name, {})
        if kind == FCC:  # each commanded joint offers that command interface
            for j in p["joints"]:
                offered = [c.get("name") for c in joints[j].findall("command_interface")]
                assert p["interface_name"] in offered, (name, j)
        if kind == JSB and "joints" in p:  # a filtered broadcaster reads existing states
            for j in p["joints"]:
                offered = {s.get("name") for s in joints[j].findall("state_interface")}
                assert set(p["interfaces"]) <= offered, (name, j)
    if robot == "dclaw":
        assert params["valve_position_controller"]["joints"] == [dclaw.VALVE_JOINT]
        assert params["valve_state_broadcaster"]["joints"] == [dclaw.VALVE_JOINT]


@pytest.mark.parametrize("robot", ROBOTS)
def test_controller_manager_rate_is_a_multiple_of_the_control_rate(robot):
    rate = _controllers(robot)["controller_manager"]["update_rate"]
    policy = yaml.safe_load(Path(config_file(robot)).read_text())["/**/policy"]
    control = policy["ros__parameters"]["rate_hz"]
    assert rate >= 2 * control and rate % control == 0, (rate, control)


@pytest.mark.parametrize("robot", ROBOTS)
def test_gz_ros2_control_plugin_and_joint_holding(robot):
    root = _urdf(robot)
    plugin = _plugin(root, gz.GZ_ROS2_CONTROL)
    assert plugin.get("filename") == "gz_ros2_control-system"
    assert Path(plugin.find("parameters").text).name == gz.controllers_file(robot).name
    # A joint whose controller is spawned inactive (the valve motor) must turn freely:
    # gz_ros2_control holds every commanded joint without an active controller when
    # hold_joints is true.
    params = _controllers(robot)
    idle = [j for c in gz.CONTROLLERS[robot] if c.inactive for j in params[c.name]["joints"]]
    hold = plugin.find("hold_joints")
    held = hold is None or hold.text.strip().lower() == "true"
    assert not (idle and held), f"{idle} would be held still by gz_ros2_control"


def test_minitaur_imu_sensor_links_urdf_gazebo_and_broadcaster():
    root = _urdf("minitaur")
    sensors = root.find("ros2_control").findall("sensor")
    assert len(sensors) == 1
    name = sensors[0].get("name")
    assert [s.get("name") for s in sensors[0].findall("state_interface")] == IMU_INTERFACES
    params = _controllers("minitaur")
    assert params["controller_manager"]["imu_sensor_broadcaster"]["type"] == IMU
    broadcaster = params["imu_sensor_broadcaster"]
    assert broadcaster["sensor_name"] == name
    links = {link.get("name") for link in root.findall("link")}
    assert broadcaster["frame_id"] in links
    gz_sensor = _sensor(root, broadcaster["frame_id"])
    assert gz_sensor.get("type") == "imu" and gz_sensor.get("name") == name


def test_dclaw_camera_renders_the_task_image():
    sensor = _sensor(_urdf("dclaw"), gz.CAMERA_LINK)
    assert sensor.get("type") == "camera"
    image = sensor.find("camera/image")
    h, w, c = dclaw_valve.IMAGE_SHAPE
    assert (int(image.find("height").text), int(image.find("width").text)) == (h, w)
    assert image.find("format").text == "R8G8B8" and c == 3
    bridge = yaml.safe_load(gz.bridge_files("dclaw", "pixels")[-1].read_text())
    assert [b["gz_topic_name"].lstrip("/") for b in bridge] == [sensor.find("topic").text]


def test_minitaur_pose_publisher_feeds_the_mocap_bridge():
    plugin = _plugin(_urdf("minitaur"), "gz::sim::systems::PosePublisher")
    flag = {e.tag: e.text.strip() == "true" for e in plugin if e.text and e.text.strip()}
    # The model's own pose alone, one gz.msgs.Pose per message.
    assert flag["publish_model_pose"] and flag["publish_nested_model_pose"]
    assert not flag["publish_link_pose"] and not flag["use_pose_vector_msg"]
    bridge = yaml.safe_load(gz.bridge_files("minitaur", "state")[0].read_text())
    mocap = [b for b in bridge if b.get("ros_topic_name") == "mocap/pose"]
    assert len(mocap) == 1
    assert mocap[0]["gz_topic_name"] == "/model/minitaur/pose"  # entity named after the robot
    assert mocap[0]["gz_type_name"] == "gz.msgs.Pose"


@pytest.mark.parametrize(
    "robot,obs", [("dclaw", "state"), ("dclaw", "pixels"), ("minitaur", "state")]
)
def test_bridge_files_are_well_formed(robot, obs):
    for path in gz.bridge_files(robot, obs):
        entries = yaml.safe_load(path.read_text())
        assert isinstance(entries, list) and entries, path
        for e in entries:
            if "service_name" in e:  # a bridged gz service (the Minitaur's set_pose)
                assert set(e) == {
                    "service_name", "ros_type_name", "gz_req_type_name", "gz_rep_type_name"
                }, e  # fmt: skip
                assert e["ros_type_name"] == "ros_gz_interfaces/srv/SetEntityPose", e
                continue
            assert set(e) == {
                "ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"
            }, e  # fmt: skip
            assert BRIDGE_TYPES[e["ros_type_name"]] == e["gz_type_name"], e
            assert e["direction"] == "GZ_TO_ROS", e


@pytest.mark.parametrize("robot", ROBOTS)
def test_gazebo_urdf_points_the_plugin_at_the_files_and_namespace(robot):
    text = gz.gazebo_urdf(robot, "/lab/unit_1", camera=False)
    assert "$(find" not in text
    root = ET.fromstring(text)
    plugin = _plugin(root, gz.GZ_ROS2_CONTROL)
    assert Path(plugin.find("parameters").text) == gz.controllers_file(robot)
    assert gz.controllers_file(robot).is_file()
    assert plugin.find("ros/namespace").text == "/lab/unit_1"
    assert root.findall("joint") and len(root.findall("joint")) == len(
        _urdf(robot).findall("joint")
    )
    refs = {g.get("reference") for g in root.findall("gazebo")}
    assert gz.CAMERA_LINK not in refs
    root_ns = ET.fromstring(gz.gazebo_urdf(robot, "", camera=True))
    assert _plugin(root_ns, gz.GZ_ROS2_CONTROL).find("ros/namespace").text == "/"
    if robot == "dclaw":
        assert gz.CAMERA_LINK in {g.get("reference") for g in root_ns.findall("gazebo")}


def test_minitaur_is_spawned_and_placed_upright_above_its_standing_height():
    """The reset holds the standing pose: placed lower, the feet start inside the floor."""
    from sac_ros.nodes.gazebo_adapter_node import STANDING_HEIGHT

    stand = ET.parse(model_path("minitaur", "mjcf")).getroot().find("keyframe/key[@name='stand']")
    base_z = float(stand.get("qpos").split()[2])
    assert base_z < gz.SPAWN_Z["minitaur"] <= base_z + 0.05
    assert STANDING_HEIGHT == gz.SPAWN_Z["minitaur"]


def test_spawner_arguments_and_gz_command_line():
    valve = next(c for c in gz.CONTROLLERS["dclaw"] if c.name == "valve_position_controller")
    args = gz.spawner_arguments("dclaw", "/dclaw", valve)
    assert args[0] == "valve_position_controller" and "--inactive" in args
    assert args[args.index("--controller-manager") + 1] == "/dclaw/controller_manager"
    assert Path(args[args.index("--param-file") + 1]) == gz.controllers_file("dclaw")
    remap = args[args.index("--controller-ros-args") + 1]
    assert remap == "-r ~/commands:=valve/position_controller/commands"
    assert gz.controller_manager("") == "/controller_manager"
    assert str(gz.world_file()) in gz.gz_args(True)
    assert "-s" in gz.gz_args(False).split() and "-s" not in gz.gz_args(True).split()
    assert gz.world_file().is_file()
    ET.parse(gz.world_file())
    with pytest.raises(ValueError, match="no Gazebo setup"):
        gz.controllers_file("hexapod")


# --- the topics Gazebo offers are the ones the graph's nodes use ----------------------
# What each controller type publishes or subscribes (ros2_controllers), before remapping.
CONTROLLER_TOPICS = {
    JSB: ("pub", "joint_states", "sensor_msgs/msg/JointState"),
    FCC: ("sub", "~/commands", "std_msgs/msg/Float64MultiArray"),
    IMU: ("pub", "~/imu", "sensor_msgs/msg/Imu"),
}


def gazebo_topics(robot: str, obs: str, ns: str) -> tuple[dict[str, str], dict[str, str]]:
    """(published, subscribed) topic -> type of the Gazebo side in namespace ``ns``."""
    pub: dict[str, str] = {}
    sub: dict[str, str] = {}
    params = _controllers(robot)
    for c in gz.CONTROLLERS[robot]:
        direction, topic, kind = CONTROLLER_TOPICS[params["controller_manager"][c.name]["type"]]
        if topic == "joint_states" and params.get(c.name, {}).get("use_local_topics"):
            topic = "~/joint_states"
        name = expand_name(topic, ns, c.name)
        for src, dst in c.remap:
            if expand_name(src, ns, c.name) == name:
                name = expand_name(dst, ns, c.name)
        (pub if direction == "pub" else sub)[name] = kind
    for path in gz.bridge_files(robot, obs):
        for e in yaml.safe_load(path.read_text()):
            if "ros_topic_name" in e:  # services are the gazebo_adapter's business
                pub[expand_name(e["ros_topic_name"], ns, "")] = e["ros_type_name"]
    return pub, sub


def _endpoints(probe: object, name: str, ns: str) -> tuple[dict, dict] | None:
    """(subscribed, published) topic -> type of one node, None until it is discovered."""
    from rclpy.node import NodeNameNonExistentError

    try:
        subs = probe.get_subscriber_names_and_types_by_node(name, ns)
        pubs = probe.get_publisher_names_and_types_by_node(name, ns)
    except NodeNameNonExistentError:
        return None
    return {t: k[0] for t, k in subs}, {t: k[0] for t, k in pubs}


COMBOS = [("dclaw", "state"), ("dclaw", "pixels"), ("minitaur", "state")]


@pytest.mark.ros
@pytest.mark.slow
def test_gazebo_side_offers_exactly_what_the_graph_nodes_use(tmp_path):
    import rclpy

    from sac_ros.launcher import GraphProcesses

    specs = []
    for robot, obs in COMBOS:
        nodes = build_graph(robot, "gazebo", obs, namespaces=[f"/t_{robot}_{obs}"], learner=False)
        # No simulator node; the adapter only offers services (tested below).
        assert {n.name for n in nodes} == {"policy", "reward", "gazebo_adapter"}
        specs += [n for n in nodes if n.name != "gazebo_adapter"]
    graph = GraphProcesses(specs, log_dir=tmp_path / "logs")
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = rclpy.create_node("gazebo_contract_probe", context=context)
    graph.start()
    try:
        seen: dict[tuple[str, str], tuple[dict, dict]] = {}
        settled: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 90
        while len(settled) < len(specs):
            assert time.monotonic() < deadline, f"only discovered: {sorted(settled)}"
            dead = graph.poll_dead()
            assert not dead, "\n".join(graph.log_tail(r) for r, _ in dead)
            for s in specs:
                key = (s.namespace, s.name)
                found = _endpoints(probe, s.name, s.namespace)
                # Settled: the node's topics (made in __init__) are unchanged since the
                # last look, and more than the parameter events every node has.
                if found and len(found[0]) > 1 and seen.get(key) == found:
                    settled.add(key)
                elif found:
                    seen[key] = found
            time.sleep(1.0)
    finally:
        probe.destroy_node()
        rclpy.shutdown(context=context)
        graph.stop(timeout=20)

    for robot, obs in COMBOS:
        ns = f"/t_{robot}_{obs}"
        offered, listening = gazebo_topics(robot, obs, ns)
        used: dict[str, str] = {}
        sent: dict[str, str] = {}
        for (node_ns, _), (subs, pubs) in seen.items():
            if node_ns != ns:
                continue
            used.update(subs)
            sent.update(pubs)
        # The world's readings: what the nodes subscribe that no sac_ros node publishes
        # (sac/* also comes from the learner, not started here).
        world = {
            t: k for t, k in used.items()
            if t not in sent and not t.startswith(f"{ns}/sac/") and t != "/parameter_events"
        }  # fmt: skip
        for topic, kind in world.items():
            assert offered.get(topic) == kind, f"{robot}/{obs}: nobody in Gazebo publishes {topic}"
        for topic, kind in offered.items():
            if topic != "/clock":
                assert used.get(topic) == kind, f"{robot}/{obs}: Gazebo's {topic} has no reader"
        for topic, kind in listening.items():
            assert sent.get(topic) == kind, f"{robot}/{obs}: no node commands {topic}"


# --- the gazebo_adapter node ------------------------------------------------------------
# robot -> (its service, type, a request), Gazebo's side: (interface package, service type
# name, the service the adapter calls in namespace /gz_<robot>)
ADAPTER = {
    "dclaw": ("valve/torque_enable", "SetBool", ("controller_manager_msgs", "SwitchController",
              "/gz_dclaw/controller_manager/switch_controller")),
    "minitaur": ("sim/place_upright", "Trigger", ("ros_gz_interfaces", "SetEntityPose",
                 "/world/sac_ros_arena/set_pose")),
}  # fmt: skip
DONE_KEY = {"dclaw": "controller_switches", "minitaur": "placements"}


class AdapterRig:
    """The graph's gazebo_adapter of each robot as a process, and a probe over DDS that
    calls its service, can stand in for Gazebo's side, and reads its /diagnostics."""

    def __init__(self, tmp_path: Path) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from sac_ros.launcher import GraphProcesses

        specs = []
        for robot in ADAPTER:
            nodes = build_graph(robot, "gazebo", namespaces=[f"/gz_{robot}"], learner=False,
                                extra={"gazebo_adapter": {"service_timeout": 1.0}})  # fmt: skip
            specs += [n for n in nodes if n.name == "gazebo_adapter"]
        self.graph = GraphProcesses(specs, log_dir=tmp_path / "logs")
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.probe = rclpy.create_node("gazebo_adapter_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        self.status: dict[str, Any] = {}
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def _on_diag(self, msg: Any) -> None:
        for s in msg.status:
            if s.name.startswith("sac_ros: gazebo_adapter (/gz_"):
                self.status[s.name.split("/")[1].removeprefix("gz_")] = s

    def values(self, robot: str) -> dict[str, str]:
        status = self.status.get(robot)
        return {kv.key: kv.value for kv in status.values} if status else {}

    def spin_until(self, done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            dead = self.graph.poll_dead()
            assert not dead, "\n".join(self.graph.log_tail(r) for r, _ in dead)
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.status}"
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, robot: str, on: bool = True) -> Any:
        from std_srvs import srv

        name, kind, _ = ADAPTER[robot]
        request = srv.SetBool.Request(data=on) if kind == "SetBool" else srv.Trigger.Request()
        client = self.probe.create_client(getattr(srv, kind), f"/gz_{robot}/{name}")
        self.spin_until(client.service_is_ready, f"/gz_{robot}/{name}")
        future = client.call_async(request)
        self.spin_until(future.done, f"the answer of /gz_{robot}/{name}", timeout=15.0)
        return future.result()

    def __enter__(self) -> AdapterRig:
        self.graph.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import rclpy

        self.graph.stop(timeout=20)
        self.executor.shutdown()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.mark.ros
@pytest.mark.slow
def test_gazebo_adapter_without_gazebo_refuses_with_the_reason_on_diagnostics(tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus

    with AdapterRig(tmp_path) as rig:
        answers = {robot: rig.call(robot) for robot in ADAPTER}
        rig.spin_until(
            lambda: all(rig.values(r).get("requests_failed") == "1" for r in ADAPTER),
            "the failed requests on /diagnostics",
        )
    for robot, answer in answers.items():
        package, _, service = ADAPTER[robot][2]
        assert not answer.success
        # Here the interface package is missing; on a ROS install nobody serves Gazebo's side.
        assert f"{package} is not installed" in answer.message or (
            answer.message == f"{service} not available"
        ), answer.message
        status, values = rig.status[robot], rig.values(robot)
        assert status.hardware_id == f"gazebo:{robot}"
        assert status.level >= DiagnosticStatus.WARN and answer.message in status.message
        assert values["requests"] == "1" and values["last_error"] == answer.message
        assert values[DONE_KEY[robot]] == "0" and values["gazebo_service_ready"] == "False"


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("robot", sorted(ADAPTER))
def test_gazebo_adapter_drives_gazebos_side(robot, tmp_path):
    """Where the interface packages are installed: the adapter's request reaches a
    stand-in of controller_manager / gz's set_pose, and its answer comes back."""
    package, type_name, service = ADAPTER[robot][2]
    kind = getattr(pytest.importorskip(f"{package}.srv"), type_name)
    requests: list[Any] = []

    def serve(request: Any, response: Any) -> Any:
        requests.append(request)
        if robot == "dclaw":
            response.ok = True
        else:
            response.success = True
        return response

    with AdapterRig(tmp_path) as rig:
        rig.probe.create_service(kind, service, serve)
        rig.spin_until(lambda: rig.values(robot).get("gazebo_service_ready") == "True",
                       "the adapter to see the stand-in")  # fmt: skip
        answer = rig.call(robot, on=True)
        rig.spin_until(lambda: rig.values(robot).get(DONE_KEY[robot]) == "1", "the count")
    assert answer.success, answer.message
    (request,) = requests
    if robot == "dclaw":
        assert list(request.activate_controllers) == ["valve_position_controller"]
        assert list(request.deactivate_controllers) == []
        assert rig.values(robot)["valve_controller_active"] == "True"
    else:
        assert request.entity.name == "minitaur" and request.pose.position.z == 0.25
    assert rig.values(robot)["gazebo_calls"] == "1"
    assert rig.values(robot)["gazebo_calls_failed"] == "0"
