"""Dynamixel emulator node: the D'Claw's servos on a pseudo-terminal, for ``sim:=emulated``.

Wraps sac_ros.hardware.dxl_emulator.DynamixelEmulator so hardware-in-the-loop runs are one
more process of the graph, started and stopped like the others. The emulated servos sit
behind a stable symlink (parameter ``link``); the real ``dclaw_driver`` node opens it as
its serial port. ``backend:=mujoco`` puts the MuJoCo D'Claw (with the valve) behind the
motors in real time; ``first_order`` a simple servo model.

It offers no topics of its own except /diagnostics (packets served, CRC errors, physics
steps, simulated time skipped because the host fell behind): the driver is the only way
into the robot, as on hardware.

Stopping: ``ros2 launch`` signals every process of the graph at once, and the driver's
last act is to turn torque off through this bus. So on SIGINT the emulator keeps serving
until the bus has been quiet for ``QUIET_S`` (the driver is done), at most
``shutdown_grace`` seconds, and only then unplugs.
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.node import Node

from sac_ros.hardware.dxl_emulator import DynamixelEmulator, dclaw_motor_ids
from sac_ros.hardware.servo_backend import ServoBackend
from sac_ros.nodes.common import WARN, Diagnostics, declare, spin_node
from sac_ros.robots import dclaw

BACKENDS = ("mujoco", "first_order")
QUIET_S = 0.25  # no packet for this long: the driver has stopped talking (it polls at 50 Hz)


class DxlEmulatorNode(Node):
    def __init__(self) -> None:
        super().__init__("dxl_emulator")
        link = declare(self, "link", "", "Stable path of the emulated port (a symlink)")
        backend_name = declare(self, "backend", "mujoco", "Physics: mujoco or first_order")
        ids = declare(self, "motor_ids", list(dclaw_motor_ids()), "Emulated Dynamixel IDs")
        baud = declare(self, "baud", dclaw.BAUD_RATE, "Baud rate register of every servo",
                       lo=9600, hi=4_000_000)  # fmt: skip
        self.shutdown_grace = declare(
            self, "shutdown_grace", 3.0,
            "On SIGINT, serve a driver still talking for up to this long (s) before unplugging",
            lo=0.0, hi=30.0,
        )  # fmt: skip
        if not link:
            raise ValueError("parameter link (the emulated port's path) must be set")
        if backend_name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend_name!r}")
        backend: ServoBackend | None = None
        self._sim = None
        if backend_name == "mujoco":
            from sac_ros.hardware.mujoco_backend import MujocoDClawBackend  # needs mujoco

            mj = MujocoDClawBackend()
            missing = sorted(set(ids) - set(mj.ids))
            if missing:
                raise ValueError(f"the MuJoCo D'Claw has no motors {missing}")
            backend, self._sim = mj, mj
        Path(link).parent.mkdir(parents=True, exist_ok=True)
        self.emulator = DynamixelEmulator(ids, backend=backend, link=link, baud=baud).start()
        self.get_logger().info(
            f"{len(ids)} emulated servos ({backend_name}) on {self.emulator.port_name} "
            f"-> {self.emulator.device_path}"
        )
        self.diag = Diagnostics(self, "dxl_emulator", hardware_id=f"emulated:{link}")
        self.diag.values_from(self._diag_values)

    def _diag_values(self) -> dict[str, object]:
        values: dict[str, object] = dict(self.emulator.stats)
        values["port"] = self.emulator.port_name
        values["device"] = self.emulator.device_path
        if self._sim is not None:
            values["physics_steps"] = self._sim.steps
            values["skipped_s"] = round(self._sim.skipped_s, 3)
            if self._sim.skipped_s > 0:
                self.diag.problem("realtime", WARN, "physics fell behind real time", hold=5.0)
        return values

    def close(self) -> None:
        self._serve_until_quiet()
        self.emulator.close()
        if self._sim is not None:
            self._sim.sim.close()

    def _serve_until_quiet(self) -> None:
        """Let a driver stopped by the same Ctrl-C finish its shutdown (torque off) on this
        bus: wait until no packet came for QUIET_S, at most shutdown_grace seconds."""
        now = heard_at = time.monotonic()
        deadline, packets = now + self.shutdown_grace, self.emulator.stats["packets"]
        while now < deadline and now - heard_at < QUIET_S:
            time.sleep(0.01)
            now = time.monotonic()
            if self.emulator.stats["packets"] != packets:
                packets, heard_at = self.emulator.stats["packets"], now


def main(args: list[str] | None = None) -> None:
    spin_node(DxlEmulatorNode, args)


if __name__ == "__main__":
    main()
