"""Per task, the reward node's state between readings (the formulas are in sac_ros.tasks).

D'Claw: the reward of a reading depends on that reading alone. Minitaur: forward velocity
needs the motion-capture positions (and stamps) of about the last control period, and the
smoothness penalty the last three executed actions (recovered from the joint commands
through the leg model).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sac_ros.robots import minitaur
from sac_ros.robots.limits import finite_vector
from sac_ros.tasks import dclaw_valve, minitaur_walk

# The Minitaur's velocity is measured against a pose at least this fraction of a control
# period older, as the gym environment measures it over one period. Not the whole period:
# lockstep stamps are sums of physics steps (one period can come out a hair short of
# ``dt``) and motion-capture stamps jitter; either would otherwise cost a whole frame.
VELOCITY_SPAN_FRACTION = 0.9


@dataclass(frozen=True)
class StepReward:
    reward: float
    terminated: bool
    success: bool


class DClawValveReward:
    def __init__(self, target: float = dclaw_valve.TARGET_ANGLE) -> None:
        self.target = target

    def compute(self, valve_angle: float, q: np.ndarray, qd: np.ndarray) -> StepReward:
        value, _terms = dclaw_valve.reward(valve_angle, q, qd, self.target)
        # Turning the valve has no terminal state: episodes end on the time limit.
        return StepReward(value, False, dclaw_valve.is_success(valve_angle, self.target))


class MinitaurWalkReward:
    """Success means the robot is still on its feet.

    Motion capture runs faster than the policy (120-240 Hz against 50 Hz): the velocity
    between two consecutive frames would be one frame's noise divided by a few ms (or by
    almost nothing where two frames are stamped together). So each pose is compared with
    the newest one at least ``VELOCITY_SPAN_FRACTION * dt`` older; in lockstep simulation,
    where poses come one period apart, that is the previous pose.
    """

    def __init__(self, dt: float = minitaur_walk.CONTROL_PERIOD) -> None:
        self.dt = dt
        self.span = VELOCITY_SPAN_FRACTION * dt
        # (stamp, position), oldest first: the reference of the velocity and the newer ones
        self._poses: deque[tuple[float, np.ndarray]] = deque()
        self._actions: deque[np.ndarray] = deque(maxlen=3)

    def on_command(self, motor_targets: np.ndarray) -> None:
        self._actions.append(minitaur.motors_to_action(motor_targets))

    def compute(self, stamp: float, position: np.ndarray, quat: np.ndarray) -> StepReward | None:
        """The reward for the step ending at this pose; None while no pose is a control
        period older (the first poses seen) and for a pose not newer than the newest."""
        if self._poses and stamp <= self._poses[-1][0]:
            return None  # late or repeated: it must not become the reference either
        # A copy that is checked: a bad pose, or a caller's array reused, never is a reference.
        position = finite_vector(position, 3, "position").copy()
        reference = self._reference(stamp)
        result = None if reference is None else self._judge(reference, stamp, position, quat)
        self._poses.append((stamp, position))
        return result

    def _reference(self, stamp: float) -> tuple[float, np.ndarray] | None:
        """The newest pose at least ``span`` older than ``stamp``, if any. Poses older than
        it are dropped: later stamps can only pick it or a newer one."""
        newest_allowed = stamp - self.span
        while len(self._poses) >= 2 and self._poses[1][0] <= newest_allowed:
            self._poses.popleft()
        if self._poses and self._poses[0][0] <= newest_allowed:
            return self._poses[0]
        return None

    def _judge(
        self,
        reference: tuple[float, np.ndarray],
        stamp: float,
        position: np.ndarray,
        quat: np.ndarray,
    ) -> StepReward:
        actions = list(self._actions)
        while len(actions) < 3:  # before three commands: the standing pose (action 0),
            actions.insert(0, np.zeros(minitaur_walk.ACTION_DIM))  # as the gym env counts
        _, pitch = minitaur_walk.roll_pitch(quat)
        value, _terms = minitaur_walk.reward(
            reference[1], position, reference[0], stamp, np.stack(actions), pitch, self.dt
        )
        fallen = minitaur_walk.is_terminated(quat)
        return StepReward(value, fallen, not fallen)
