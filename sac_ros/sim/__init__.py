"""MuJoCo simulation: physics wrappers (DClawSim, MinitaurSim) and gymnasium environments.

Importing this package registers, in gymnasium's ``SacRos/`` namespace:
  SacRos/DClawValve-v0        D'Claw valve, state observation (20,)
  SacRos/DClawValvePixels-v0  D'Claw valve, {"image": 32x32x3 uint8, "proprio": (18,)}
  SacRos/MinitaurWalk-v0      Minitaur walking, state with history (112,)
Rendering is headless (MUJOCO_GL=egl) unless the caller chose another backend.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported anywhere below

import gymnasium

from sac_ros.sim.dclaw_sim import DClawSim
from sac_ros.sim.minitaur_sim import MinitaurSim

ENV_IDS: tuple[str, ...] = (
    "SacRos/DClawValve-v0",
    "SacRos/DClawValvePixels-v0",
    "SacRos/MinitaurWalk-v0",
)


def _register() -> None:
    specs = {
        "SacRos/DClawValve-v0": ("sac_ros.sim.dclaw_env:DClawValveEnv", {"pixels": False}),
        "SacRos/DClawValvePixels-v0": ("sac_ros.sim.dclaw_env:DClawValveEnv", {"pixels": True}),
        "SacRos/MinitaurWalk-v0": ("sac_ros.sim.minitaur_env:MinitaurWalkEnv", {}),
    }
    for env_id, (entry_point, kwargs) in specs.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, kwargs=kwargs)


_register()

__all__ = ["ENV_IDS", "DClawSim", "MinitaurSim"]
