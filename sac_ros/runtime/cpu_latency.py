"""Keep the CPUs out of deep idle states while a control graph runs (Linux PM QoS).

A lockstep graph hands every step from process to process: each hand-off wakes a CPU
that went idle a few hundred microseconds before. Where idle means a deep C-state, or on
a virtual machine a halted vCPU (a VM exit, then an interrupt from the host to wake it),
each wake-up costs tens of microseconds and the caches come back cold. A process that
holds a request open on ``/dev/cpu_dma_latency`` keeps every CPU in idle states that wake
within that many microseconds (0: the polling idle loop), until it closes the file; the
kernel honours the smallest request of all holders. It is the interface real-time
control setups use (``cyclictest``, tuned's latency-performance profile). The price is
power: a polling idle CPU does not sleep.

The nodes hold a request when SAC_ROS_CPU_LATENCY_US is set (``spin_node``); the launch
files' ``cpu_latency_us`` argument and ``sac-ros train --cpu-latency-us`` set it.
Writing the device takes root (or a udev rule granting a group); without it the graph
runs as it would anyway, with a warning.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

DEVICE = Path("/dev/cpu_dma_latency")
ENV = "SAC_ROS_CPU_LATENCY_US"
MAX_US = 2_000_000_000  # the kernel's default, "no constraint"
NOT_LIMITED = "CPU wake-up latency not limited"  # how a refused request is logged


def held_text(microseconds: int) -> str:
    """How a held request is logged (the benchmark and the tests look for it)."""
    return f"CPU wake-up latency held at {microseconds} us"


def _check_range(microseconds: int, what: str) -> int:
    if not 0 <= microseconds <= MAX_US:
        raise ValueError(f"{what} must be between 0 and {MAX_US} microseconds")
    return microseconds


def parse_microseconds(text: str, source: str = ENV) -> int | None:
    """The request in ``text``: an integer number of microseconds >= 0, or None for ''
    (no request). Anything else is an error naming ``source``."""
    value = text.strip()
    if not value:
        return None
    try:
        us = int(value)
    except ValueError:
        raise ValueError(f"{source}={text!r} must be a whole number of microseconds") from None
    return _check_range(us, f"{source}={text!r}")


class CpuLatencyRequest:
    """A held PM QoS request: ``hold()`` opens the device and writes the limit, ``release()``
    (or the process's exit) withdraws it. Failing to hold is reported, not raised: the
    graph works without it, only slower."""

    def __init__(self, microseconds: int, device: Path | str = DEVICE) -> None:
        self.microseconds = _check_range(microseconds, f"CPU latency {microseconds}")
        self.device = Path(device)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> str:
        """Takes the request; returns what happened, for the log."""
        if self._fd is not None:
            return self.describe()
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            return f"{NOT_LIMITED}: cannot open {self.device}: {exc.strerror}"
        try:
            os.write(fd, struct.pack("=i", self.microseconds))
        except OSError as exc:
            os.close(fd)
            return f"{NOT_LIMITED}: {self.device} refused the request: {exc}"
        self._fd = fd
        return self.describe()

    def describe(self) -> str:
        if self._fd is None:
            return NOT_LIMITED
        return f"{held_text(self.microseconds)} ({self.device})"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CpuLatencyRequest:
        self.hold()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def current_limit(device: Path | str = DEVICE) -> int:
    """The limit in force now, all holders together (us); MAX_US when nobody holds one."""
    with open(device, "rb") as f:
        data = f.read(4)
    if len(data) != 4:
        raise OSError(f"{device}: expected 4 bytes, read {len(data)}")
    return struct.unpack("=i", data)[0]


def environment(microseconds: int | None) -> dict[str, str]:
    """The variables that make a node process (``spin_node``) hold a request of
    ``microseconds``; none for None. The node checks the value as it starts."""
    return {} if microseconds is None else {ENV: str(microseconds)}


def request_from_environment(environ: dict[str, str] | None = None) -> CpuLatencyRequest | None:
    """The request SAC_ROS_CPU_LATENCY_US asks for, None where it is unset or empty."""
    env = os.environ if environ is None else environ
    us = parse_microseconds(env.get(ENV, ""))
    return None if us is None else CpuLatencyRequest(us)
