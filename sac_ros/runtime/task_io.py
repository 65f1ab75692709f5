"""Per task: which readings the policy needs, how they make an observation, and how an
action becomes joint targets. The policy node parses messages into a
:class:`~sac_ros.runtime.policy_runner.Snapshot`; these classes do the rest with the
task's own functions (sac_ros.tasks), so the robot acts exactly as in the gymnasium
environment the learner's hyperparameters were tuned on.
"""

from __future__ import annotations

import numpy as np

from sac_ros.robots import dclaw, minitaur
from sac_ros.robots.limits import JointLimits
from sac_ros.runtime.policy_runner import Observation, Snapshot
from sac_ros.sac.spec import ObsSpec
from sac_ros.tasks import dclaw_valve, minitaur_walk

# Kinds of extra readings a task may need; the policy node knows how to parse each:
#   "valve": valve/joint_states -> [angle] (a velocity, if any, is not needed)
#   "image": camera/image_32x32 -> uint8 (32, 32, 3)
#   "imu":   imu                -> [qw, qx, qy, qz, wx, wy, wz]
EXTRA_KINDS = ("valve", "image", "imu")


class DClawValveIO:
    joint_names: tuple[str, ...] = dclaw.JOINT_NAMES
    limits: JointLimits = dclaw.LIMITS
    dt: float = dclaw_valve.CONTROL_PERIOD
    action_dim: int = dclaw_valve.ACTION_DIM
    can_terminate: bool = False  # episodes end by the time limit only

    def __init__(self, pixels: bool = False) -> None:
        self.pixels = pixels
        self.homing = dclaw_valve.ClawHoming()

    @property
    def extra_topics(self) -> dict[str, str]:
        if self.pixels:
            return {"camera/image_32x32": "image"}
        return {"valve/joint_states": "valve"}

    @property
    def layout(self) -> str:
        if self.pixels:
            return ObsSpec.pixels(dclaw_valve.IMAGE_SHAPE, dclaw_valve.PROPRIO_DIM).to_json()
        return ObsSpec.vector(dclaw_valve.STATE_DIM).to_json()

    def observation(self, snap: Snapshot) -> Observation:
        if self.pixels:
            return dclaw_valve.pixel_observation(
                snap.extras["image"], snap.positions, snap.velocities
            )
        return dclaw_valve.state_observation(
            snap.positions, snap.velocities, float(snap.extras["valve"][0])
        )

    def targets(self, action: np.ndarray, snap: Snapshot) -> np.ndarray:
        return dclaw_valve.action_to_targets(action, snap.positions, self.dt)

    def reset(self) -> None:
        """A new episode: the next homing starts afresh."""
        self.homing.reset()

    def start_goal(self, snap: Snapshot) -> np.ndarray:
        """Where to steer the claw between episodes: the start pose, sideways first for
        a finger caught on a valve spoke (dclaw_valve.ClawHoming)."""
        return self.homing.goal(snap.positions, snap.velocities)

    def held(self, snap: Snapshot, targets: np.ndarray) -> None:
        """Stateless: a skipped step leaves nothing to record."""

    def start_gap(self, snap: Snapshot) -> list[str]:
        """What keeps the fingers from resting at the start pose, as the gymnasium
        environment places them (the valve reset only turns the valve); none: there."""
        return dclaw_valve.claw_start_gap(snap.positions, snap.velocities)


class MinitaurWalkIO:
    """The paper's Minitaur state: current and past five observations and actions.

    Stateful: each observation is pushed into the history together with the action that
    led to it, as in the gymnasium environment.
    """

    joint_names: tuple[str, ...] = minitaur.JOINT_NAMES
    limits: JointLimits = minitaur.LIMITS
    dt: float = minitaur_walk.CONTROL_PERIOD
    action_dim: int = minitaur_walk.ACTION_DIM
    extra_topics: dict[str, str] = {"imu": "imu"}  # read-only
    layout: str = ObsSpec.vector(minitaur_walk.STATE_DIM).to_json()
    can_terminate: bool = True  # a fall ends the episode

    def __init__(self) -> None:
        self.safe_pose = minitaur.standing_motor_angles()
        self.history = minitaur_walk.History()
        self._last_action: np.ndarray | None = None
        self._stamp: float | None = None  # of the reading last put into the history

    def observation(self, snap: Snapshot) -> Observation:
        imu = snap.extras["imu"]
        o = minitaur_walk.imu_observation(snap.positions, imu[:4], imu[4:7])
        if self._last_action is None:
            state = self.history.reset(o)
        elif snap.stamp == self._stamp:  # asked again for the same reading
            state = self.history.state()
        else:
            state = self.history.push(self._last_action, o)
        self._stamp = snap.stamp
        return state.astype(np.float32)

    def targets(self, action: np.ndarray, snap: Snapshot) -> np.ndarray:
        self._last_action = np.asarray(action, dtype=np.float64)
        return minitaur_walk.action_to_targets(action, snap.positions, self.dt)

    def held(self, snap: Snapshot, targets: np.ndarray) -> None:
        """A skipped step: the robot holds ``targets`` instead of acting. The history
        records the reading (if good) and the hold, so it stays one entry per period."""
        if self._last_action is None:
            return
        try:
            self.observation(snap)
        except ValueError:
            pass  # a bad reading: the history misses it
        self._last_action = np.clip(minitaur.motors_to_action(targets), -1.0, 1.0)

    def reset(self) -> None:
        self._last_action = None
        self._stamp = None

    def start_goal(self, snap: Snapshot) -> np.ndarray:
        """The standing pose (a person sets the robot upright; see the reward node)."""
        return self.safe_pose

    def start_gap(self, snap: Snapshot) -> list[str]:
        """None: the Minitaur's reset (upright, and a person's confirmation) decides."""
        return []


TaskIO = DClawValveIO | MinitaurWalkIO


def make_task_io(robot: str, obs: str = "state") -> TaskIO:
    if obs not in ("state", "pixels"):
        raise ValueError(f"obs must be state or pixels, got {obs!r}")
    if robot == "dclaw":
        return DClawValveIO(pixels=obs == "pixels")
    if robot == "minitaur":
        if obs != "state":
            raise ValueError("the Minitaur task has no pixel variant")
        return MinitaurWalkIO()
    raise ValueError(f"no policy I/O for robot {robot!r}")
