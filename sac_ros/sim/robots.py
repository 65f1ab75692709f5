"""One interface over the MuJoCo robots for the ROS sim node: what a driver would read
and accept. Physics stays in DClawSim / MinitaurSim; this only names things uniformly.
"""

from __future__ import annotations

import numpy as np

from sac_ros.robots import dclaw, minitaur
from sac_ros.sim.dclaw_sim import DClawSim
from sac_ros.sim.minitaur_sim import MinitaurSim
from sac_ros.tasks import dclaw_valve, minitaur_walk


class SimRobot:
    """Base: a robot without valve or floating base."""

    joint_names: tuple[str, ...] = ()
    has_valve = False
    has_base = False
    valve_joint = ""
    dt = 0.1
    time = 0.0

    def set_targets(self, targets: np.ndarray) -> None:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        """Back to a valid state after the physics diverged."""
        raise NotImplementedError

    def joint_positions(self) -> np.ndarray:
        raise NotImplementedError

    def joint_velocities(self) -> np.ndarray:
        raise NotImplementedError

    def joint_efforts(self) -> np.ndarray:
        raise NotImplementedError

    def render(self) -> np.ndarray:
        raise ValueError("this robot has no camera")


class DClawSimRobot(SimRobot):
    joint_names = dclaw.JOINT_NAMES
    has_valve = True
    valve_joint = dclaw.VALVE_JOINT

    def __init__(self, seed: int = 0) -> None:
        self.sim = DClawSim()
        self.rng = np.random.default_rng(seed)
        self.dt = self.sim.dt
        self.recover()

    @property
    def time(self) -> float:  # type: ignore[override]
        return self.sim.time

    def set_targets(self, targets: np.ndarray) -> None:
        self.sim.set_targets(targets)

    def step(self) -> None:
        self.sim.step()
        state = np.concatenate([self.sim.joint_positions(), self.sim.joint_velocities()])
        if not np.all(np.isfinite(state)):
            raise FloatingPointError("D'Claw simulation diverged")

    def recover(self) -> None:
        # Keep the clock running: stamps must never go backwards.
        t = self.sim.time if hasattr(self, "sim") else 0.0
        self.sim.reset(dclaw_valve.sample_initial_angle(self.rng))
        self.sim.data.time = t

    def joint_positions(self) -> np.ndarray:
        return self.sim.joint_positions()

    def joint_velocities(self) -> np.ndarray:
        return self.sim.joint_velocities()

    def joint_efforts(self) -> np.ndarray:
        return self.sim.joint_currents()

    def valve_angle(self) -> float:
        return self.sim.valve_angle()

    def valve_velocity(self) -> float:
        return self.sim.valve_velocity()

    def set_valve_motor(self, enabled: bool, target: float | None) -> None:
        self.sim.set_valve_motor(enabled, target)

    def render(self) -> np.ndarray:
        return self.sim.render()


class MinitaurSimRobot(SimRobot):
    joint_names = minitaur.JOINT_NAMES
    has_base = True

    def __init__(self, seed: int = 0) -> None:
        self.sim = MinitaurSim()
        self.rng = np.random.default_rng(seed)
        self.dt = self.sim.dt
        self.place_upright()

    @property
    def time(self) -> float:  # type: ignore[override]
        return self.sim.time

    def set_targets(self, targets: np.ndarray) -> None:
        self.sim.set_targets(targets)

    def step(self) -> None:
        self.sim.step()
        if not np.all(np.isfinite(self.sim.data.qpos)):
            raise FloatingPointError("Minitaur simulation diverged")

    def place_upright(self) -> None:
        """What the person in the loop does: stand the robot up where it is."""
        t = self.sim.time if np.isfinite(self.sim.time) else 0.0
        pos, _ = self.sim.base_pose()
        xy = (float(pos[0]), float(pos[1])) if np.all(np.isfinite(pos)) else (0.0, 0.0)
        self.sim.reset(minitaur_walk.sample_reset_pose(self.rng), position=xy)
        self.sim.data.time = t

    def recover(self) -> None:
        t = self.sim.time if np.isfinite(self.sim.time) else 0.0
        self.sim.reset(minitaur_walk.sample_reset_pose(self.rng))
        self.sim.data.time = t

    def joint_positions(self) -> np.ndarray:
        return self.sim.motor_angles()

    def joint_velocities(self) -> np.ndarray:
        return self.sim.motor_velocities()

    def joint_efforts(self) -> np.ndarray:
        return self.sim.motor_torques()

    def imu(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.sim.imu()

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.sim.base_pose()


def make_sim_robot(robot: str, seed: int = 0, camera: bool = False) -> SimRobot:
    if robot == "dclaw":
        sim = DClawSimRobot(seed)
        if camera:
            sim.render()  # create the renderer now: fail at start, not mid-run
        return sim
    if robot == "minitaur":
        if camera:
            raise ValueError("the Minitaur task has no camera")
        return MinitaurSimRobot(seed)
    raise ValueError(f"no MuJoCo model for robot {robot!r}")
