"""Per task, the reward node's state between readings (the formulas are in sac_ros.tasks).

D'Claw: the reward of a reading depends on that reading alone. Minitaur: forward velocity
needs the previous motion-capture position and its stamp, and the smoothness penalty the
last three executed actions (recovered from the joint commands through the leg model).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sac_ros.robots import minitaur
from sac_ros.tasks import dclaw_valve, minitaur_walk


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
    """Success means the robot is still on its feet."""

    def __init__(self, dt: float = minitaur_walk.CONTROL_PERIOD) -> None:
        self.dt = dt
        self._previous: tuple[float, np.ndarray] | None = None
        self._actions: deque[np.ndarray] = deque(maxlen=3)

    def on_command(self, motor_targets: np.ndarray) -> None:
        self._actions.append(minitaur.motors_to_action(motor_targets))

    def compute(self, stamp: float, position: np.ndarray, quat: np.ndarray) -> StepReward | None:
        """The reward for the step ending at this pose; None for the first pose seen."""
        previous, self._previous = self._previous, (stamp, position)
        if previous is None or stamp <= previous[0]:
            return None
        actions = list(self._actions)
        while len(actions) < 3:  # before three commands: the standing pose (action 0),
            actions.insert(0, np.zeros(minitaur_walk.ACTION_DIM))  # as the gym env counts
        _, pitch = minitaur_walk.roll_pitch(quat)
        value, _terms = minitaur_walk.reward(
            previous[1], position, previous[0], stamp, np.stack(actions), pitch, self.dt
        )
        fallen = minitaur_walk.is_terminated(quat)
        return StepReward(value, fallen, not fallen)
