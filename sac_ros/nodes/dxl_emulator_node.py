"""Dynamixel emulator node: the D'Claw's servos on a pseudo-terminal, for ``sim:=emulated``.

Wraps sac_ros.hardware.dxl_emulator.DynamixelEmulator so hardware-in-the-loop runs are one
more process of the graph, started and stopped like the others. The emulated servos sit
behind a stable symlink (parameter ``link``); the real ``dclaw_driver`` node opens it as
its serial port. ``backend:=mujoco`` puts the MuJoCo D'Claw (with the valve) behind the
motors in real time; ``first_order`` a simple servo model.

It offers no topics of its own except /diagnostics (packets served, CRC errors, physics
steps, simulated time skipped because the host fell behind): the driver is the only way
into the robot, as on hardware.
"""

from __future__ import annotations

from pathlib import Path

from rclpy.node import Node

from sac_ros.hardware.dxl_emulator import DynamixelEmulator, dclaw_motor_ids
from sac_ros.hardware.servo_backend import ServoBackend
from sac_ros.nodes.common import WARN, Diagnostics, declare, spin_node
from sac_ros.robots import dclaw

BACKENDS = ("mujoco", "first_order")


class DxlEmulatorNode(Node):
    def __init__(self) -> None:
        super().__init__("dxl_emulator")
        link = declare(self, "link", "", "Stable path of the emulated port (a symlink)")
        backend_name = declare(self, "backend", "mujoco", "Physics: mujoco or first_order")
        ids = declare(self, "motor_ids", list(dclaw_motor_ids()), "Emulated Dynamixel IDs")
        baud = declare(self, "baud", dclaw.BAUD_RATE, "Baud rate register of every servo",
                       lo=9600, hi=4_000_000)  # fmt: skip
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
        self.emulator.close()
        if self._sim is not None:
            self._sim.sim.close()


def main(args: list[str] | None = None) -> None:
    spin_node(DxlEmulatorNode, args)


if __name__ == "__main__":
    main()
