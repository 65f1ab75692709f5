"""Scripted resets, without ROS: the I/O comes in as callables.

D'Claw (ROBEL's hardware reset): the claw holds its safe pose (the policy node does that
while an episode is over), the valve motor turns on, drives the valve to the new start
angle until it has settled there (within ``tolerance`` and slower than ``still_speed``,
or within ``tolerance`` for ``settle`` seconds where the reading has no velocity), then
turns off so the valve turns freely during the episode. A valve that does not get there within
``timeout`` is a failed reset (the motor is switched off either way). So is a motor that
does not acknowledge the torque off after a few tries: it would hold the valve through the
episode. A torque on without an acknowledgement is switched off again (the request may
have been applied, only its reply lost). The valve is judged
on every reading, in the reading's own time: lockstep simulation runs many times faster
than real time, and a loop sampling the latest reading would miss most instants.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Reading stamps are sums of simulation steps: 0.3 s of 2.5 ms steps can come out a hair
# short of 0.3, which would cost a whole extra reading.
_STAMP_SLACK = 1e-6  # s


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
    settle: float = 0.3  # s within tolerance (readings without a velocity)
    timeout: float = 10.0  # s to get there
    still_speed: float = 0.1  # rad/s: inside and this slow is settled (0: judge by time only)
    _start: float | None = None
    _inside_since: float | None = None

    def observe(
        self, now: float, angle: float | None, speed: float | None = None
    ) -> tuple[bool, str] | None:
        """(True, why) once settled, (False, why) once timed out, None while under way.

        ``speed`` is the valve's velocity in the same reading (rad/s), None where the
        reading has none. A valve inside the tolerance and nearly still has arrived: the
        motor's position loop holds it there. Without a velocity it must stay inside for
        ``settle`` seconds, so that one passing through does not count."""
        if self._start is None:
            self._start = now
        if angle is not None and wrapped_distance(angle, self.target) < self.tolerance:
            if self._inside_since is None:
                self._inside_since = now
            at = f"valve at {angle:.3f} rad (target {self.target:.3f})"
            if speed is not None and abs(speed) < self.still_speed:
                return True, f"{at}, still ({speed:+.3f} rad/s)"
            if now - self._inside_since >= self.settle - _STAMP_SLACK:
                return True, at
            return None  # inside: it gets its settle time, whatever the deadline
        self._inside_since = None
        if now - self._start > self.timeout:
            where = "no reading" if angle is None else f"{angle:.3f} rad"
            return False, f"valve did not reach {self.target:.3f} rad in {self.timeout} s ({where})"
        return None


class ValveReset:
    """The whole valve reset: torque on, drive to the start angle and settle, torque off.

    Two threads take part. ``run(target)`` is the reset itself (the reward node's
    ``sac/reset`` service thread): it switches the motor on, waits for the verdict and
    switches the motor off whatever happened. ``observe(t, angle)`` is called with every
    valve reading as it arrives (the executor thread): it re-sends the goal and judges the
    reading in its own time stamp (:class:`ValveSettle`).
    """

    def __init__(
        self,
        set_torque: Callable[[bool], bool],  # True when the motor acknowledged
        command: Callable[[float], None],  # goal angle of the valve motor, rad
        *,
        tolerance: float = 0.05,  # rad
        settle: float = 0.3,  # s within tolerance, reading time (readings without velocity)
        timeout: float = 10.0,  # s to get there, reading time
        still_speed: float = 0.1,  # rad/s: inside and slower than this is settled
        wall_timeout: float = 60.0,  # s: reading time stands still if the readings stop
        aborted: Callable[[], bool] = lambda: False,  # shutdown: give up at once
        poll: float = 0.05,  # s between checks of ``aborted`` and the wall clock
        off_tries: int = 3,  # torque-off requests before the reset is called failed
        off_retry_wait: float = 0.2,  # s between them
    ) -> None:
        self.set_torque, self.command, self.aborted = set_torque, command, aborted
        self.tolerance, self.settle, self.timeout = tolerance, settle, timeout
        self.still_speed = still_speed
        self.wall_timeout, self.poll = wall_timeout, poll
        self.off_tries, self.off_retry_wait = max(1, off_tries), off_retry_wait
        self._lock = threading.Lock()
        self._judge: ValveSettle | None = None
        self._verdict: tuple[bool, str] | None = None
        self._done = threading.Event()

    @property
    def active(self) -> bool:
        return self._judge is not None

    def observe(self, t: float, angle: float | None, speed: float | None = None) -> None:
        """A valve reading (its time stamp, angle and velocity, if the reading has one)
        while a reset may be under way."""
        with self._lock:
            judge = self._judge
            if judge is None:
                return
            self.command(judge.target)
            verdict = judge.observe(t, angle, speed)
            if verdict is not None:
                self._judge, self._verdict = None, verdict
                self._done.set()

    def run(self, target: float) -> tuple[bool, str]:
        """Blocks until the valve has settled at ``target`` and the motor is off again, or
        the reset failed."""
        if not math.isfinite(target):
            return False, f"reset target {target} is not finite"
        if not self.set_torque(True):
            # False includes a reply that never came: the motor may be on all the same.
            self._switch_off()
            if self.aborted():
                return False, "reset aborted: shutting down"
            return False, "valve motor did not accept torque on"
        try:
            ok, message = self._drive(target)
        finally:  # whatever happened, even an exception: never leave the motor holding
            off = self._switch_off()
        if not off:
            # The valve would not turn freely in the episode: fail, so the reset is retried.
            return False, f"valve motor did not switch off: {message}"
        return ok, message

    def _drive(self, target: float) -> tuple[bool, str]:
        """Commands ``target`` and waits for the verdict of the readings (see ``observe``)."""
        self._done.clear()
        with self._lock:
            self._verdict = None
            self._judge = ValveSettle(
                target, self.tolerance, self.settle, self.timeout, self.still_speed
            )
        try:
            self.command(target)
            deadline = time.monotonic() + self.wall_timeout
            while not self._done.wait(self.poll):
                if self.aborted():
                    return False, "reset aborted: shutting down"
                if time.monotonic() > deadline:
                    return False, (
                        f"no valve verdict within {self.wall_timeout:.0f} s (readings stopped?)"
                    )
            assert self._verdict is not None
            return self._verdict
        finally:
            with self._lock:
                self._judge = None

    def _switch_off(self) -> bool:
        """Torque off, tried up to ``off_tries`` times: a request or its reply can be lost.
        True once the motor acknowledged it."""
        for attempt in range(self.off_tries):
            if attempt:
                time.sleep(self.off_retry_wait)
            if self.set_torque(False):
                return True
            if self.aborted():
                return False  # shutting down: one try, no waiting
        return False
