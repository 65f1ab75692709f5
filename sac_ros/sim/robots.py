"""One interface over the MuJoCo robots for the ROS sim node: what a driver would read
and accept. Physics stays in DClawSim / MinitaurSim; this only names things uniformly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sac_ros.robots import dclaw, minitaur
from sac_ros.sim.dclaw_sim import DClawSim
from sac_ros.sim.minitaur_sim import CONTROL_RATE_HZ, MinitaurSim
from sac_ros.tasks import dclaw_valve, minitaur_walk


class SimRobot:
    """A MuJoCo robot as a driver would present it: targets in, readings out.

    Holds the physics wrapper (``self.sim``: DClawSim or MinitaurSim, which share
    ``time``, ``set_targets``, ``step`` and ``data``) and what both adapters need: the
    divergence check after each step, and resets that keep the clock running.
    """

    joint_names: tuple[str, ...] = ()
    has_valve = False
    has_base = False
    valve_joint = ""

    def __init__(self, sim: DClawSim | MinitaurSim, seed: int) -> None:
        self.sim = sim
        self.rng = np.random.default_rng(seed)
        self.dt = sim.dt

    @property
    def time(self) -> float:
        return self.sim.time

    def set_targets(self, targets: np.ndarray) -> None:
        self.sim.set_targets(targets)

    def set_efforts(self, torques: np.ndarray) -> None:
        """Motor torques (N m), for a robot whose motors take effort commands."""
        raise ValueError(f"{type(self).__name__} takes position commands only")

    def step(self) -> None:
        start = self.sim.time
        self.sim.step()
        data = self.sim.data
        # On a blown-up state MuJoCo resets the data itself (its clock too) and steps on:
        # finite values, but the clock fell behind where one period takes it.
        restarted = self.sim.time < start + self.dt - 0.5 * self.sim.model.opt.timestep
        if restarted or not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
            data.time = start + self.dt  # the period went by: stamps never go backwards
            raise FloatingPointError(f"{type(self).__name__}: simulation diverged")

    def _reset_keeping_clock(self, reset: Callable[[], None]) -> None:
        """Run ``reset`` but keep the simulation time: stamps must never go backwards."""
        t = self.sim.time if np.isfinite(self.sim.time) else 0.0
        reset()
        self.sim.data.time = t

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
    sim: DClawSim

    def __init__(self, seed: int = 0, control_rate_hz: float | None = None) -> None:
        super().__init__(DClawSim(control_rate_hz=control_rate_hz or dclaw.CONTROL_RATE_HZ), seed)
        self.recover()

    def recover(self) -> None:
        angle = dclaw_valve.sample_initial_angle(self.rng)
        self._reset_keeping_clock(lambda: self.sim.reset(angle))

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
    sim: MinitaurSim

    def __init__(
        self,
        seed: int = 0,
        command_interface: str = "position",
        control_rate_hz: float | None = None,
    ) -> None:
        super().__init__(MinitaurSim(control_rate_hz=control_rate_hz or CONTROL_RATE_HZ), seed)
        self.sim.use(command_interface)  # effort: bounded by the motors' torque limit
        self.place_upright()

    def set_efforts(self, torques: np.ndarray) -> None:
        self.sim.set_torques(torques)

    def place_upright(self) -> None:
        """What the person in the loop does: stand the robot up where it is."""
        pos, _ = self.sim.base_pose()
        xy = (float(pos[0]), float(pos[1])) if np.all(np.isfinite(pos)) else (0.0, 0.0)
        pose = minitaur_walk.sample_reset_pose(self.rng)
        self._reset_keeping_clock(lambda: self.sim.reset(pose, position=xy))

    def recover(self) -> None:
        pose = minitaur_walk.sample_reset_pose(self.rng)
        self._reset_keeping_clock(lambda: self.sim.reset(pose))

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


def make_sim_robot(
    robot: str,
    seed: int = 0,
    camera: bool = False,
    command_interface: str = "position",
    control_rate_hz: float | None = None,
) -> SimRobot:
    """The robot's simulation; ``command_interface`` ``effort`` (Minitaur only) makes its
    motors take torques, ``control_rate_hz`` (None: the robot's own) sets one step."""
    if robot == "dclaw":
        if command_interface != "position":
            raise ValueError("the D'Claw's servos take position commands only")
        sim = DClawSimRobot(seed, control_rate_hz)
        if camera:
            sim.render()  # create the renderer now: fail at start, not mid-run
        return sim
    if robot == "minitaur":
        if camera:
            raise ValueError("the Minitaur task has no camera")
        return MinitaurSimRobot(seed, command_interface, control_rate_hz)
    raise ValueError(f"no MuJoCo model for robot {robot!r}")
