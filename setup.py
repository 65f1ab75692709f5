"""ament_python package definition; installs the same way with colcon and with pip."""

import os

from setuptools import find_packages, setup

PACKAGE = "sac_ros"
HERE = os.path.dirname(os.path.abspath(__file__))


def share_tree(folder: str) -> list[tuple[str, list[str]]]:
    """Every file below ``folder``, nested folders kept, under share/sac_ros/."""
    entries: list[tuple[str, list[str]]] = []
    for root, _dirs, files in os.walk(os.path.join(HERE, folder)):
        rel = os.path.relpath(root, HERE)
        paths = sorted(os.path.join(rel, f) for f in files if not f.endswith(".pyc"))
        if paths:
            entries.append((os.path.join("share", PACKAGE, rel), paths))
    return entries


NODES = {
    "policy_node": "sac_ros.nodes.policy_node:main",
    "camera_node": "sac_ros.nodes.camera_node:main",
    "reward_node": "sac_ros.nodes.reward_node:main",
    "learner_node": "sac_ros.nodes.learner_node:main",
    "mujoco_sim_node": "sac_ros.nodes.mujoco_sim_node:main",
    "dclaw_driver_node": "sac_ros.nodes.dclaw_driver_node:main",
    "minitaur_driver_node": "sac_ros.nodes.minitaur_driver_node:main",
    "gazebo_adapter_node": "sac_ros.nodes.gazebo_adapter_node:main",
    "dxl_emulator_node": "sac_ros.nodes.dxl_emulator_node:main",
}
# A node's console script exists once its module does (the graph grows issue by issue).
SCRIPTS = [
    f"{name}={target}"
    for name, target in NODES.items()
    if os.path.exists(os.path.join(HERE, *target.split(":")[0].split(".")) + ".py")
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *share_tree("launch"),
        *share_tree("config"),
        *share_tree("urdf"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="sac_ros developers",
    maintainer_email="dev@sac-ros.org",
    description="Soft Actor-Critic on real robots with ROS 2",
    license="Apache-2.0",
    python_requires=">=3.11",
    entry_points={"console_scripts": [*SCRIPTS, "sac-ros=sac_ros.cli:main"]},
)
