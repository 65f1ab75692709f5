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
class ValveReset:
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
        start, wall_start = self.clock(), time.monotonic()
        inside_since: float | None = None
        angle = None
        try:
            while True:
                self.command(target)
                angle = self.read_angle()
                now = self.clock()
                if angle is not None and wrapped_distance(angle, target) < self.tolerance:
                    inside_since = inside_since if inside_since is not None else now
                    if now - inside_since >= self.settle:
                        return True, f"valve at {angle:.3f} rad (target {target:.3f})"
                else:
                    inside_since = None
                if self.aborted():
                    return False, "reset aborted: shutting down"
                if now - start > self.timeout or time.monotonic() - wall_start > self.wall_timeout:
                    where = "no reading" if angle is None else f"{angle:.3f} rad"
                    return False, (
                        f"valve did not reach {target:.3f} rad in {self.timeout} s ({where})"
                    )
                self.sleep(self.poll)
        finally:
            self.set_torque(False)
