"""The policy node's logic, without ROS: one control step at a time.

Each call to :meth:`PolicyRunner.step` gets the latest sensor snapshot (already checked
for freshness by the node) and, from the second step of an episode on, the reward and
termination for that snapshot. It returns the joint targets to publish, which always pass
through the robot's :class:`~sac_ros.robots.limits.JointLimits` (clip, rate limit,
NaN-hold), and files completed transitions into the :class:`~sac_ros.runtime.delivery.Outbox`.

Episode life cycle::

    WAITING --first step--> RUNNING --terminated / time limit--> RESETTING
       ^                       |  bad input: the open transition is discarded, the chain
       |                       |  restarts at the next good snapshot (PAUSED for a step)
       +------ reset_done -----+----------------------------------------------+

While RESETTING the runner holds the robot at its safe pose; the node asks the reward /
reset node (``sac/reset``) to reset the world and calls :meth:`reset_done` after.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sac_ros.robots.limits import JointLimits
from sac_ros.runtime.delivery import Outbox

Observation = np.ndarray | dict[str, np.ndarray]


@dataclass
class Snapshot:
    """The latest readings of every sensor a task needs, in the robot's joint order."""

    stamp: float  # seconds, of the observation (lockstep: the simulation time)
    positions: np.ndarray
    velocities: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardInfo:
    stamp: float  # stamp of the snapshot it was computed from
    reward: float
    terminated: bool
    success: bool


class TaskIO(Protocol):
    """How one task turns sensors into observations and actions into joint targets."""

    limits: JointLimits
    dt: float
    action_dim: int
    layout: str  # the ObsSpec JSON the policy must have been trained for
    safe_pose: np.ndarray

    def observation(self, snap: Snapshot) -> Observation: ...

    def targets(self, action: np.ndarray, snap: Snapshot) -> np.ndarray: ...

    def reset(self) -> None: ...


class Phase(enum.Enum):
    WAITING = "waiting"  # before the first episode starts
    RUNNING = "running"
    RESETTING = "resetting"


@dataclass
class Transition:
    obs: Observation
    action: np.ndarray
    reward: float
    next_obs: Observation
    terminated: bool
    truncated: bool
    episode: int
    step: int


@dataclass
class StepResult:
    targets: np.ndarray
    acted: bool  # a policy (or warm-up) action produced these targets
    episode_over: bool  # the node should call sac/reset now
    transition: Transition | None = None


@dataclass
class EpisodeStats:
    episode: int = 0
    steps: int = 0
    ret: float = 0.0
    success: bool = False


class Actor(Protocol):
    version: int

    def act(self, obs: Observation, deterministic: bool, latent: np.ndarray | None) -> Any: ...


class PolicyRunner:
    def __init__(
        self,
        io: TaskIO,
        outbox: Outbox,
        *,
        episode_steps: int,
        deterministic: bool = False,
        noise: Any = None,
        rng: np.random.Generator | None = None,
        random_until_policy: bool = True,
    ) -> None:
        if episode_steps < 1:
            raise ValueError("episode_steps must be at least 1")
        self.io = io
        self.outbox = outbox
        self.episode_steps = episode_steps
        self.deterministic = deterministic
        self.noise = noise  # SmoothedNoise (None: white noise inside the actor)
        self.rng = rng or np.random.default_rng()
        self.random_until_policy = random_until_policy
        self.actor: Actor | None = None
        self.phase = Phase.WAITING
        self.current = EpisodeStats()
        self.finished: list[EpisodeStats] = []
        self.skipped_steps = 0
        self.discarded_transitions = 0
        self.versions_used: set[int] = set()
        self._pending: tuple[Observation, np.ndarray] | None = None
        self._last_targets: np.ndarray | None = None

    @property
    def has_pending(self) -> bool:
        """An action was taken and its transition waits for the next reading and reward."""
        return self._pending is not None

    # --- policy ---------------------------------------------------------------------
    def set_actor(self, actor: Actor) -> None:
        self.actor = actor

    # --- control --------------------------------------------------------------------
    def hold(self, snap: Snapshot) -> np.ndarray:
        """Targets that keep the robot where it is (or move it slowly to the safe pose)."""
        goal = self.io.safe_pose if self.phase is Phase.RESETTING else snap.positions
        return self._safe(goal, snap)

    def _safe(self, proposed: np.ndarray, snap: Snapshot) -> np.ndarray:
        targets = self.io.limits.safe_targets(proposed, snap.positions, self.io.dt)
        self._last_targets = targets
        return targets

    def skip(self, snap: Snapshot | None) -> np.ndarray | None:
        """A step whose input was bad: hold, and break the transition chain."""
        self.skipped_steps += 1
        if self._pending is not None:
            self._pending = None
            self.discarded_transitions += 1
        if snap is not None and np.all(np.isfinite(snap.positions)):
            return self.hold(snap)
        return self._last_targets  # nothing trustworthy to hold to: repeat the last target

    def step(self, snap: Snapshot, reward: RewardInfo | None) -> StepResult:
        if self.phase is Phase.RESETTING:
            return StepResult(self.hold(snap), acted=False, episode_over=False)
        if self.phase is Phase.WAITING:
            self._start_episode()
        obs = self.io.observation(snap)  # raises ValueError on bad input
        transition = None
        if self._pending is not None:
            if reward is None:
                raise ValueError("a reward is needed to complete the previous step")
            prev_obs, prev_action = self._pending
            self.current.steps += 1
            self.current.ret += reward.reward
            self.current.success = reward.success
            truncated = not reward.terminated and self.current.steps >= self.episode_steps
            transition = Transition(
                obs=prev_obs,
                action=prev_action,
                reward=float(reward.reward),
                next_obs=obs,
                terminated=bool(reward.terminated),
                truncated=truncated,
                episode=self.current.episode,
                step=self.current.steps - 1,
            )
            self.outbox.add(transition)
            self._pending = None
            if reward.terminated or truncated:
                self._end_episode()
                return StepResult(self.hold(snap), False, True, transition)
        action = self._choose_action(obs)
        self._pending = (obs, action)
        return StepResult(self._safe(self.io.targets(action, snap), snap), True, False, transition)

    def _choose_action(self, obs: Observation) -> np.ndarray:
        if self.actor is None:
            if not self.random_until_policy or self.deterministic:
                raise ValueError("no policy received yet")
            return self.rng.uniform(-1.0, 1.0, self.io.action_dim).astype(np.float32)
        latent = None if self.deterministic or self.noise is None else self.noise.sample()
        action = np.asarray(self.actor.act(obs, self.deterministic, latent), dtype=np.float32)
        if action.shape != (self.io.action_dim,) or not np.all(np.isfinite(action)):
            raise ValueError(f"policy produced an invalid action {action!r}")
        self.versions_used.add(int(self.actor.version))
        return np.clip(action, -1.0, 1.0)

    # --- episodes -------------------------------------------------------------------
    def _start_episode(self) -> None:
        self.phase = Phase.RUNNING
        self.current = EpisodeStats(episode=self.current.episode + (1 if self.finished else 0))
        self._pending = None
        self.io.reset()
        if self.noise is not None:
            self.noise.reset()

    def _end_episode(self) -> None:
        self.finished.append(self.current)
        self.phase = Phase.RESETTING

    def reset_done(self) -> None:
        """The world was reset: the next step starts a new episode."""
        if self.phase is Phase.RESETTING:
            self.phase = Phase.WAITING
