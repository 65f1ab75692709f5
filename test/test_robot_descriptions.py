"""URDF (xml.etree), MJCF (mujoco) and the code (sac_ros.robots) describe the same robots."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from sac_ros.robots import dclaw, minitaur
from sac_ros.robots.models import model_path

ROBOTS = {
    "dclaw": (dclaw.JOINT_NAMES, dclaw.LIMITS),
    "minitaur": (minitaur.JOINT_NAMES, minitaur.LIMITS),
}


def _urdf(robot: str) -> ET.Element:
    return ET.parse(model_path(robot, "urdf")).getroot()


def _mjcf(robot: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(model_path(robot, "mjcf")))


def _urdf_joints(root: ET.Element) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in root.findall("joint")}


def _mj_name(model: mujoco.MjModel, kind: mujoco.mjtObj, index: int) -> str:
    return mujoco.mj_id2name(model, kind, index)


def test_model_path_finds_both_kinds_and_rejects_unknowns():
    for robot in ROBOTS:
        for kind, suffix in (("mjcf", ".xml"), ("urdf", ".urdf")):
            path = model_path(robot, kind)
            assert path.is_file() and path.suffix == suffix
    with pytest.raises(ValueError, match="unknown robot"):
        model_path("hexapod", "urdf")
    with pytest.raises(ValueError, match="unknown model kind"):
        model_path("dclaw", "sdf")


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_is_a_tree_with_inertials_and_the_code_joint_order(robot):
    names, limits = ROBOTS[robot]
    root = _urdf(robot)
    links = {link.get("name"): link for link in root.findall("link")}
    joints = root.findall("joint")
    children = [j.find("child").get("link") for j in joints]
    assert len(children) == len(set(children)), "a link with two parents is not a tree"
    roots = set(links) - set(children)
    assert len(roots) == 1, f"expected one root link, got {roots}"
    for j in joints:
        assert j.find("parent").get("link") in links
        assert j.find("child").get("link") in links
    for link in links.values():  # links with geometry carry a valid inertial
        if link.find("visual") is None:
            continue
        inertial = link.find("inertial")
        assert inertial is not None, link.get("name")
        assert float(inertial.find("mass").get("value")) > 0
        moments = inertial.find("inertia")
        assert all(float(moments.get(k)) > 0 for k in ("ixx", "iyy", "izz"))

    movable = [j.get("name") for j in joints if j.get("type") == "revolute"]
    assert tuple(movable) == names  # the actuated joints, in the code's order
    by_name = _urdf_joints(root)
    for i, name in enumerate(names):
        limit = by_name[name].find("limit")
        assert float(limit.get("lower")) == pytest.approx(limits.lower[i], abs=1e-6)
        assert float(limit.get("upper")) == pytest.approx(limits.upper[i], abs=1e-6)
        assert float(limit.get("velocity")) == pytest.approx(limits.max_velocity[i], abs=1e-6)

    control = root.find("ros2_control")
    assert control.find("hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    commanded = [
        j.get("name")
        for j in control.findall("joint")
        if j.find("command_interface") is not None and j.get("name") in names
    ]
    assert tuple(commanded) == names
    for j in control.findall("joint"):
        states = {s.get("name") for s in j.findall("state_interface")}
        assert {"position", "velocity"} <= states


@pytest.mark.parametrize("robot", ROBOTS)
def test_mjcf_joints_limits_and_actuators_match_the_code(robot):
    names, limits = ROBOTS[robot]
    model = _mjcf(robot)
    joint = mujoco.mjtObj.mjOBJ_JOINT
    for i, name in enumerate(names):
        j = mujoco.mj_name2id(model, joint, name)
        assert j >= 0, name
        assert model.jnt_limited[j]
        expected = [limits.lower[i], limits.upper[i]]
        np.testing.assert_allclose(model.jnt_range[j], expected, atol=1e-6)
    # The first len(names) actuators drive exactly these joints, in this order.
    driven = [
        _mj_name(model, joint, int(model.actuator_trnid[a, 0])) for a in range(len(names))
    ]
    assert tuple(driven) == names


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_and_mjcf_agree_on_axes_origins_and_masses(robot):
    names, _ = ROBOTS[robot]
    model = _mjcf(robot)
    by_name = _urdf_joints(_urdf(robot))
    for name in names:
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        body = int(model.jnt_bodyid[j])
        urdf_joint = by_name[name]
        axis = [float(v) for v in urdf_joint.find("axis").get("xyz").split()]
        np.testing.assert_allclose(axis, model.jnt_axis[j], atol=1e-9, err_msg=name)
        xyz = [float(v) for v in urdf_joint.find("origin").get("xyz").split()]
        np.testing.assert_allclose(xyz, model.body_pos[body], atol=1e-4, err_msg=name)
        child = urdf_joint.find("child").get("link")
        link = next(lk for lk in _urdf(robot).findall("link") if lk.get("name") == child)
        mass = float(link.find("inertial/mass").get("value"))
        assert mass == pytest.approx(model.body_mass[body], rel=1e-4), child


def test_dclaw_valve_joint_camera_and_valve_motor():
    model = _mjcf("dclaw")
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "camera") >= 0
    valve = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, dclaw.VALVE_JOINT)
    assert valve >= 0 and not model.jnt_limited[valve]
    motor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, "valve_motor")
    assert model.actuator_trnid[motor, 0] == valve
    # The valve motor starts switched off: its actuator group is disabled.
    assert model.opt.disableactuator & (1 << int(model.actuator_group[motor]))
    urdf_valve = _urdf_joints(_urdf("dclaw"))[dclaw.VALVE_JOINT]
    assert urdf_valve.get("type") == "continuous"
    # ROBEL's 10 Hz: 40 MuJoCo steps of 2.5 ms per control period.
    assert model.opt.timestep * 40 == pytest.approx(1 / dclaw.CONTROL_RATE_HZ)


def test_dclaw_dynamixel_ids_are_recorded_in_the_urdf():
    text = model_path("dclaw", "urdf").read_text()
    for name, motor_id in zip(dclaw.JOINT_NAMES, dclaw.MOTOR_IDS, strict=True):
        assert str(motor_id) in text and name in text
    assert " ".join(str(i) for i in dclaw.MOTOR_IDS) in text


def test_minitaur_five_bar_closure_gains_and_imu():
    model = _mjcf("minitaur")
    assert model.neq == minitaur.NUM_LEGS
    assert all(model.eq_type[e] == mujoco.mjtEq.mjEQ_CONNECT for e in range(model.neq))
    for a in range(minitaur.NUM_MOTORS):
        assert model.actuator_gainprm[a, 0] == pytest.approx(minitaur.KP, rel=1e-3)
        assert -model.actuator_biasprm[a, 2] == pytest.approx(minitaur.KD, rel=1e-2)
        np.testing.assert_allclose(
            model.actuator_forcerange[a], [-minitaur.TORQUE_LIMIT, minitaur.TORQUE_LIMIT]
        )
    for k in range(minitaur.NUM_MOTORS):  # joint axes carry the mounting signs
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, minitaur.JOINT_NAMES[k])
        np.testing.assert_allclose(model.jnt_axis[j], [0, minitaur.joint_axis_sign(k), 0])
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "imu") >= 0
    total = float(model.body_subtreemass[1])
    expected = minitaur.CHASSIS_MASS + 8 * minitaur.MOTOR_MASS + 16 * minitaur.LEG_LINK_MASS
    assert total == pytest.approx(expected)
    root = _urdf("minitaur")
    closures = root.findall("gazebo/joint")
    assert len(closures) == minitaur.NUM_LEGS
    knees = {j.get("name") for j in root.findall("joint")} & set(minitaur.KNEE_JOINT_NAMES)
    assert knees == set(minitaur.KNEE_JOINT_NAMES)


def test_minitaur_keyframe_is_a_closed_standing_pose():
    model = _mjcf("minitaur")
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    for leg in minitaur.LEG_NAMES:
        left = data.site(f"foot_{leg}L").xpos
        right = data.site(f"foot_{leg}R").xpos
        np.testing.assert_allclose(left, right, atol=1e-5)
        assert left[2] == pytest.approx(minitaur.FOOT_RADIUS, abs=1e-4)


def test_model_path_falls_back_to_installed_copies(tmp_path, monkeypatch):
    """Outside a checkout: the ament index first, then sys.prefix/share/sac_ros."""
    from sac_ros.robots import models

    def install(prefix):
        target = prefix / "share" / "sac_ros" / "urdf" / "minitaur" / "minitaur.urdf"
        target.parent.mkdir(parents=True)
        target.write_text("<robot name='minitaur'/>")
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "sac_ros"
        marker.parent.mkdir(parents=True)
        marker.write_text("")
        return target

    monkeypatch.setattr(models, "_source_root", lambda: tmp_path / "no_checkout")
    in_prefix = install(tmp_path / "venv")
    monkeypatch.setattr(models.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    assert model_path("minitaur", "urdf") == in_prefix
    in_ament = install(tmp_path / "ros_ws" / "install")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "ros_ws" / "install"))
    assert model_path("minitaur", "urdf") == in_ament
    with pytest.raises(FileNotFoundError, match="no mjcf model for minitaur"):
        model_path("minitaur", "mjcf")


@pytest.mark.parametrize("robot", ROBOTS)
def test_urdf_inertials_are_the_mjcf_bodies(robot):
    """Centre of mass and inertia tensor of every URDF link that is an MJCF body."""
    model = _mjcf(robot)
    aliases = {"base_link": "base"} if robot == "minitaur" else {}
    checked = 0
    for link in _urdf(robot).findall("link"):
        inertial = link.find("inertial")
        body = aliases.get(link.get("name"), link.get("name"))
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
        if inertial is None or b < 0:
            continue
        com = [float(v) for v in inertial.find("origin").get("xyz").split()]
        np.testing.assert_allclose(com, model.body_ipos[b], atol=1e-5, err_msg=body)
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, model.body_iquat[b])
        rotation = rotation.reshape(3, 3)
        expected = rotation @ np.diag(model.body_inertia[b]) @ rotation.T
        i = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
        tensor = np.array([
            [i["ixx"], i["ixy"], i["ixz"]],
            [i["ixy"], i["iyy"], i["iyz"]],
            [i["ixz"], i["iyz"], i["izz"]],
        ])  # fmt: skip
        np.testing.assert_allclose(tensor, expected, rtol=1e-3, atol=1e-8, err_msg=body)
        checked += 1
    assert checked >= (11 if robot == "dclaw" else 17)


def test_the_frames_readings_are_stamped_with_are_urdf_links():
    """rviz and image tools look the readings' frame_id up in the TF tree of the URDF."""
    from sac_ros.nodes import messages

    def links(robot: str) -> set[str]:
        return {link.get("name") for link in _urdf(robot).findall("link")}

    assert dclaw.CAMERA_FRAME in links("dclaw")
    assert messages.image(np.zeros((32, 32, 3), np.uint8)).header.frame_id in links("dclaw")
    assert minitaur.IMU_FRAME in links("minitaur")
