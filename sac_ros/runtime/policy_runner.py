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

Deferred rewards (``defer_rewards``, for lockstep simulation of a task whose episodes only
end by their time limit): the runner acts on a new snapshot at once, and the transition
that ends at it waits for its reward (:meth:`add_reward`, matched by stamp). The reward is
computed elsewhere (the reward node) in parallel with the action instead of before it.
A task whose reward can end the episode must not defer: its next action depends on it.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sac_ros.robots.limits import JointLimits, clip
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
    can_terminate: bool  # the reward can end an episode (a fall), not only the time limit

    def observation(self, snap: Snapshot) -> Observation: ...

    def targets(self, action: np.ndarray, snap: Snapshot) -> np.ndarray: ...

    def reset(self) -> None: ...

    def held(self, snap: Snapshot, targets: np.ndarray) -> None: ...

    def start_gap(self, snap: Snapshot) -> list[str]: ...  # none: at the start pose

    def start_goal(self, snap: Snapshot) -> np.ndarray: ...  # between episodes


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
    episode_over: bool  # this step ended the episode
    transition: Transition | None = None
    # The node should call sac/reset now: the episode is over and the robot is at its start
    # pose (or was given its time to get there), out of the way of the world's reset.
    reset_now: bool = False


@dataclass
class EpisodeStats:
    episode: int = 0
    steps: int = 0
    ret: float = 0.0
    success: bool = False
    version: int = -1  # policy version of the episode's latest action (-1: random actions)


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
        defer_rewards: bool = False,
        start_wait_steps: int = 20,
        period: float | None = None,
    ) -> None:
        if episode_steps < 1:
            raise ValueError("episode_steps must be at least 1")
        self.io = io
        # The rate limit allows one control period's travel per command: the task's period,
        # or the ticks' where they come faster (a timer at another rate than the task's).
        self.limit_dt = io.dt if period is None else min(io.dt, period)
        self.outbox = outbox
        self.episode_steps = episode_steps
        self.deterministic = deterministic
        self.noise = noise  # SmoothedNoise (None: white noise inside the actor)
        self.rng = rng or np.random.default_rng()
        self.random_until_policy = random_until_policy
        if defer_rewards and io.can_terminate:
            raise ValueError("rewards cannot be deferred for a task whose reward ends episodes")
        self.defer_rewards = defer_rewards
        # Before an episode starts, the robot is brought to the task's start pose (the
        # gymnasium environment places it there), for at most this many steps.
        self.start_wait_steps = start_wait_steps
        self.start_waits = 0  # steps held so far before the coming episode
        self.start_timeouts = 0  # waits for the start pose that ran out
        self.start_miss = ""  # what kept the robot from its start pose the last time
        self._reset_requested = False
        self.actor: Actor | None = None
        self.phase = Phase.WAITING
        self.current = EpisodeStats()
        self.finished: list[EpisodeStats] = []
        self.skipped_steps = 0
        self.discarded_transitions = 0
        self.versions_used: set[int] = set()
        self._pending: tuple[Observation, np.ndarray] | None = None
        self._last_targets: np.ndarray | None = None
        # Transitions on their way to the outbox, oldest first, filed in order as soon as
        # their reward is in: [stamp, transition, its episode's stats, reward or None].
        self._unrewarded: deque[list[Any]] = deque()
        self._early: RewardInfo | None = None  # deferred: came before its reading was acted on
        self._last_stamp = -math.inf

    @property
    def has_pending(self) -> bool:
        """An action was taken and its transition waits for the next reading and reward."""
        return self._pending is not None

    # --- policy ---------------------------------------------------------------------
    def set_actor(self, actor: Actor) -> None:
        self.actor = actor

    # --- control --------------------------------------------------------------------
    def hold(self, snap: Snapshot) -> np.ndarray:
        """Targets that keep the robot where it is (within an episode: the last target, so
        the servos keep pushing where they did; the measured angles would let a legged
        robot sink a little further at every held step), or, between episodes, move it
        within its limits to the safe pose."""
        if self.phase is not Phase.RUNNING:
            goal = self.io.start_goal(snap)
        elif self._last_targets is not None:
            goal = self._last_targets
        else:
            goal = snap.positions
        return self._safe(goal, snap)

    def _ready_to_start(self, snap: Snapshot) -> bool:
        """The robot is at the task's start pose, or has been given its time to get there."""
        gap = self.io.start_gap(snap)
        if not gap:
            self.start_waits = 0
            return True
        if self.start_waits >= self.start_wait_steps:
            self.start_timeouts += 1
            self.start_miss = ", ".join(gap)
            self.start_waits = 0
            return True
        self.start_waits += 1
        return False

    def _safe(self, proposed: np.ndarray, snap: Snapshot) -> np.ndarray:
        targets = self.io.limits.safe_targets(proposed, snap.positions, self.limit_dt)
        self._last_targets = targets
        return targets

    def skip(self, snap: Snapshot | None) -> np.ndarray | None:
        """A step whose input was bad: hold, and break the transition chain."""
        self.skipped_steps += 1
        if self._pending is not None:
            self._pending = None
            self.discarded_transitions += 1
        if snap is not None and np.all(np.isfinite(snap.positions)):
            targets = self.hold(snap)
            if self.phase is Phase.RUNNING:
                self.io.held(snap, targets)  # a stateful task records the hold
            return targets
        return self._last_targets  # nothing trustworthy to hold to: repeat the last target

    def step(self, snap: Snapshot, reward: RewardInfo | None) -> StepResult:
        """Act on ``snap``. ``reward`` (of ``snap``) completes the previous step's
        transition; with ``defer_rewards`` it is None and comes later (:meth:`add_reward`)."""
        if self.phase is Phase.RESETTING:
            targets = self.hold(snap)  # before the check: it may count a wait
            return StepResult(targets, False, False, reset_now=self._request_reset(snap))
        if self.phase is Phase.WAITING:
            if not self._ready_to_start(snap):
                return StepResult(self.hold(snap), acted=False, episode_over=False)
            self._start_episode()
        obs = self.io.observation(snap)  # raises ValueError on bad input
        self._last_stamp = snap.stamp
        transition = None
        if self._pending is not None:
            if reward is None and not self.defer_rewards:
                raise ValueError("a reward is needed to complete the previous step")
            prev_obs, prev_action = self._pending
            self.current.steps += 1
            terminated = reward is not None and reward.terminated
            truncated = not terminated and self.current.steps >= self.episode_steps
            transition = Transition(
                obs=prev_obs,
                action=prev_action,
                reward=math.nan,
                next_obs=obs,
                terminated=terminated,
                truncated=truncated,
                episode=self.current.episode,
                step=self.current.steps - 1,
            )
            self._pending = None
            if reward is None and self._early is not None and self._early.stamp == snap.stamp:
                reward, self._early = self._early, None
            self._unrewarded.append([snap.stamp, transition, self.current, reward])
            self._file_rewarded()
            if terminated or truncated:
                self._end_episode()
                targets = self.hold(snap)
                return StepResult(targets, False, True, transition, self._request_reset(snap))
        action = self._choose_action(obs)
        self._pending = (obs, action)
        return StepResult(self._safe(self.io.targets(action, snap), snap), True, False, transition)

    def _file_rewarded(self) -> bool:
        """File the oldest transitions whose reward is in, in order. Returns whether a
        deferred reward said "terminated"."""
        deferred_end = False
        while self._unrewarded and self._unrewarded[0][3] is not None:
            _, transition, stats, reward = self._unrewarded.popleft()
            if reward.terminated and not transition.terminated:  # known only now: deferred
                transition.terminated, transition.truncated = True, False
                deferred_end = True
            transition.reward = float(reward.reward)
            stats.ret += reward.reward
            stats.success = reward.success
            self.outbox.add(transition)
        return deferred_end

    def add_reward(self, reward: RewardInfo) -> None:
        """Deferred rewards: the reward of the reading stamped ``reward.stamp``. Transitions
        still waiting for an older reward lost it (discarded: rewards arrive in order); a
        reward for a reading not acted on yet is kept until it is; a repeat is ignored."""
        while (
            self._unrewarded
            and self._unrewarded[0][3] is None
            and self._unrewarded[0][0] < reward.stamp
        ):
            self._unrewarded.popleft()
            self.discarded_transitions += 1
        entry = next((e for e in self._unrewarded if e[0] == reward.stamp), None)
        if entry is None:
            if reward.stamp > self._last_stamp:
                self._early = reward
        elif entry[3] is None:
            entry[3] = reward
        if self._file_rewarded():
            raise ValueError("a deferred reward ended the episode; this task must not defer")

    @property
    def awaiting_rewards(self) -> int:
        return len(self._unrewarded)

    def settled_count(self) -> int:
        """How many finished episodes (the first ones) have every reward in: all of them
        unless deferring. Cheap on every step: only the newest can still be open."""
        count = len(self.finished)
        if self._unrewarded:
            oldest_open = self._unrewarded[0][2].episode
            while count and self.finished[count - 1].episode >= oldest_open:
                count -= 1
        return count

    def _choose_action(self, obs: Observation) -> np.ndarray:
        if self.actor is None:
            if not self.random_until_policy or self.deterministic:
                raise ValueError("no policy received yet")
            return self.rng.uniform(-1.0, 1.0, self.io.action_dim).astype(np.float32)
        latent = None if self.deterministic or self.noise is None else self.noise.sample()
        action = np.asarray(self.actor.act(obs, self.deterministic, latent), dtype=np.float32)
        if action.shape != (self.io.action_dim,) or not np.isfinite(action).all():
            raise ValueError(f"policy produced an invalid action {action!r}")
        self.versions_used.add(int(self.actor.version))
        self.current.version = int(self.actor.version)
        return clip(action, -1.0, 1.0)

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
        self._reset_requested = False

    def _request_reset(self, snap: Snapshot) -> bool:
        """Once per episode end: whether to ask for the world's reset now (the robot
        first goes to its start pose, so a finger is no obstacle to the valve's motor)."""
        if self._reset_requested or not self._ready_to_start(snap):
            return False
        self._reset_requested = True
        return True

    def reset_done(self) -> None:
        """The world was reset: the next step starts a new episode."""
        if self.phase is Phase.RESETTING:
            self.phase = Phase.WAITING
