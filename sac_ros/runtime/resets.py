"""Scripted resets, without ROS: the I/O comes in as callables.

D'Claw (ROBEL's hardware reset): the claw holds its safe pose (the policy node does that
while an episode is over), the valve motor turns on, drives the valve to the new start
angle, must stay there for ``settle`` seconds within ``tolerance``, then turns off so the
valve turns freely during the episode. A valve that does not get there within
``timeout`` is a failed reset (the motor is switched off either way).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


def wrapped_distance(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


@dataclass
class ValveSettle:
    """Whether the valve has reached its start angle, judged one reading at a time.

    Feed it every reading (``observe``) in the reading's own time: in lockstep simulation
    the simulator runs many times faster than real time, so a loop that samples the latest
    reading now and then would see too few of them to judge the settle time.
    """

    target: float
    tolerance: float = 0.05  # rad
    settle: float = 0.3  # s within tolerance
    timeout: float = 10.0  # s to get there
    _start: float | None = None
    _inside_since: float | None = None

    def observe(self, now: float, angle: float | None) -> tuple[bool, str] | None:
        """(True, why) once settled, (False, why) once timed out, None while under way."""
        if self._start is None:
            self._start = now
        if angle is not None and wrapped_distance(angle, self.target) < self.tolerance:
            if self._inside_since is None:
                self._inside_since = now
            if now - self._inside_since >= self.settle:
                return True, f"valve at {angle:.3f} rad (target {self.target:.3f})"
            return None  # inside: it gets its settle time, whatever the deadline
        self._inside_since = None
        if now - self._start > self.timeout:
            where = "no reading" if angle is None else f"{angle:.3f} rad"
            return False, f"valve did not reach {self.target:.3f} rad in {self.timeout} s ({where})"
        return None


@dataclass
class ValveReset:
    """The whole reset by polling: torque on, drive and settle, torque off."""

    set_torque: Callable[[bool], bool]  # True when the motor acknowledged
    command: Callable[[float], None]  # goal angle of the valve motor, rad
    read_angle: Callable[[], float | None]  # latest valve angle (None: no reading yet)
    tolerance: float = 0.05  # rad
    settle: float = 0.3  # s within tolerance
    timeout: float = 10.0  # s
    poll: float = 0.01  # s
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    aborted: Callable[[], bool] = lambda: False  # shutdown: give up at once
    # A bound in wall-clock time too: simulation time stands still if the simulator dies.
    wall_timeout: float = 60.0

    def run(self, target: float) -> tuple[bool, str]:
        if not math.isfinite(target):
            return False, f"reset target {target} is not finite"
        if not self.set_torque(True):
            return False, "valve motor did not accept torque on"
        settle = ValveSettle(target, self.tolerance, self.settle, self.timeout)
        wall_start = time.monotonic()
        try:
            while True:
                self.command(target)
                outcome = settle.observe(self.clock(), self.read_angle())
                if outcome is not None:
                    return outcome
                if self.aborted():
                    return False, "reset aborted: shutting down"
                if time.monotonic() - wall_start > self.wall_timeout:
                    return False, f"reset took longer than {self.wall_timeout} s of wall time"
                self.sleep(self.poll)
        finally:
            self.set_torque(False)
