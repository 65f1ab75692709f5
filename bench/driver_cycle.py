"""D'Claw driver cycle time over the servo emulator, against a raw dynamixel-sdk ping.

Per placement of the emulator (a thread of this process, or its own process through the
command line, as a separate device would be), the contenders run interleaved, round by
round, on the same pty:

* ``ping``: the minimal round trip, ``PacketHandler.ping`` of one motor (raw SDK);
* ``read_state``: DynamixelBus.read_state of all 10 motors (one sync read, 10 replies);
* ``write_goals``: DynamixelBus.write_goals of the 9 fingers (one sync write, no reply:
  its time excludes the device's processing, which delays the next read instead);
* ``cycle``: DClawDriverCore.command + cycle (read, limits, write; health read 1 per s).

Prints p50/p99 latencies (microseconds), the achievable control rate (1/p50 and 1/p99 of
the cycle) and, for scale, the time the cycle's bytes take on a real 1 Mbaud wire, which
the pty does not charge. The last line of stdout is one JSON object.

    python bench/driver_cycle.py [--samples 1000] [--placement both|thread|process]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dynamixel_sdk as sdk
import numpy as np
from common import emit, log

from sac_ros.hardware.dclaw_driver import DClawDriverConfig, DClawDriverCore
from sac_ros.hardware.dxl_emulator import DynamixelEmulator, dclaw_motor_ids
from sac_ros.robots import dclaw

ROUND = 50  # calls per contender per round


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.sort(np.asarray(samples))
    return {
        "p50": round(float(values[len(values) // 2]), 1),
        "p99": round(float(values[int(len(values) * 0.99)]), 1),
    }


def measure(port_name: str, samples: int) -> dict[str, dict[str, float]]:
    core = DClawDriverCore(
        DClawDriverConfig(port=port_name, watchdog_timeout_s=60.0, health_period_s=1.0)
    )
    core.connect()
    core.enable()
    bus = core.bus
    raw_port = sdk.PortHandler(port_name)  # a second handle on the same pty, used in turn
    if not raw_port.setBaudRate(dclaw.BAUD_RATE):
        raise RuntimeError(f"cannot open {port_name}")
    handler = sdk.PacketHandler(2.0)
    rng = np.random.default_rng(0)
    pose = dclaw.NOMINAL_POSE

    def ping() -> None:
        _, result, _ = handler.ping(raw_port, dclaw.MOTOR_IDS[0])
        if result != sdk.COMM_SUCCESS:
            raise RuntimeError(handler.getTxRxResult(result))

    def read_state() -> None:
        bus.read_state()

    def write_goals() -> None:
        bus.write_goals(dclaw.MOTOR_IDS, pose)

    def cycle() -> None:
        core.command(pose + rng.uniform(-0.2, 0.2, size=9))
        if not core.cycle().fresh:
            raise RuntimeError("a cycle failed: " + str(core.diagnostics()["last_comm_error"]))

    contenders: dict[str, Callable[[], None]] = {
        "ping": ping,
        "read_state": read_state,
        "write_goals": write_goals,
        "cycle": cycle,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    rounds = max(1, samples // ROUND)
    for index in range(rounds + 1):  # round 0 warms up
        order = list(contenders.items())
        if index % 2:
            order.reverse()
        for name, call in order:
            for _ in range(ROUND):
                start = time.perf_counter_ns()
                call()
                if index:
                    times[name].append((time.perf_counter_ns() - start) / 1000.0)
    raw_port.closePort()
    diag = core.diagnostics()
    core.close()
    result = {name: percentiles(values) for name, values in times.items()}
    result["bus"] = {k: int(v) for k, v in diag["bus"].items()}
    return result


def in_thread(samples: int) -> dict[str, dict[str, float]]:
    with DynamixelEmulator() as emulator:
        return measure(emulator.port_name, samples)


def in_process(samples: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / "dclaw_port"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sac_ros.hardware.dxl_emulator", "--link", str(link)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port_name = proc.stdout.readline().strip()
            if port_name != str(link):
                raise RuntimeError(f"emulator printed {port_name!r}")
            return measure(port_name, samples)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def wire_time_us() -> float:
    """Bytes of one cycle at 1 Mbaud (10 bits a byte): sync read + 10 replies + sync write."""
    n_read = len(dclaw_motor_ids())
    sync_read = 14 + n_read  # header..CRC with one ID per motor
    replies = n_read * (11 + 10)  # status packet with 10 data bytes
    sync_write = 14 + dclaw.NUM_JOINTS * (1 + 4)
    return (sync_read + replies + sync_write) * 10 / dclaw.BAUD_RATE * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="calls per contender")
    parser.add_argument("--placement", choices=("both", "thread", "process"), default="both")
    args = parser.parse_args()
    results: dict[str, object] = {
        "bench": "driver_cycle",
        "samples": args.samples,
        "load_average_1min": round(os.getloadavg()[0], 2),  # a shared machine: context
    }
    placements = ("thread", "process") if args.placement == "both" else (args.placement,)
    for placement in placements:
        log(f"emulator in a {placement} ...")
        run = in_thread if placement == "thread" else in_process
        measured = run(args.samples)
        cycle = measured["cycle"]
        measured["control_rate_hz"] = {
            "at_p50": round(1e6 / cycle["p50"], 1),
            "at_p99": round(1e6 / cycle["p99"], 1),
        }
        for name in ("ping", "read_state", "write_goals", "cycle"):
            p50, p99 = measured[name]["p50"], measured[name]["p99"]
            log(f"  {name:12s} p50 {p50:8.1f} us  p99 {p99:8.1f} us")
        results[f"emulator_{placement}"] = measured
    results["wire_time_1mbaud_us"] = round(wire_time_us(), 1)
    emit(results)


if __name__ == "__main__":
    main()
