"""The MuJoCo D'Claw behind the servo emulator, driven by the real driver core."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sac_ros.hardware.dclaw_driver import DClawDriverConfig, DClawDriverCore, Mode
from sac_ros.hardware.dxl_emulator import DynamixelEmulator
from sac_ros.hardware.mujoco_backend import MujocoDClawBackend
from sac_ros.robots import dclaw

pytestmark = pytest.mark.timeout(120)

MODEL = Path(__file__).resolve().parents[1] / "urdf" / "dclaw" / "dclaw.xml"


@pytest.fixture
def backend():
    b = MujocoDClawBackend(model_file=MODEL)
    yield b
    b.sim.close()


def test_backend_runs_in_real_time_steps(backend):
    start = backend.sim.time
    backend.advance(0.1)
    backend.advance(0.0012)  # below one timestep: carried over
    assert backend.sim.time - start == pytest.approx(0.1, abs=backend.timestep)
    backend.advance(5.0)  # a long stall: at most max_catch_up_s simulated
    assert backend.skipped_s == pytest.approx(4.0, abs=0.01)
    with pytest.raises(ValueError, match="not a D'Claw motor"):
        backend.state(99)


def test_driver_moves_the_simulated_hand(backend):
    with DynamixelEmulator(backend=backend) as emu:
        core = DClawDriverCore(DClawDriverConfig(port=emu.port_name, watchdog_timeout_s=2.0))
        core.connect()
        before = core.cycle()
        assert np.allclose(before.position, backend.sim.joint_positions(), atol=0.01)
        core.enable()
        target = dclaw.NOMINAL_POSE + np.array([0.3, 0.2, -0.2] * 3)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            core.command(target)
            state = core.cycle()
            time.sleep(0.1)
        assert state.mode is Mode.RUNNING
        # Position servos with kp 2 sag under gravity and contact: close, not exact.
        assert np.max(np.abs(backend.sim.joint_positions() - target)) < 0.05
        assert np.allclose(state.position, backend.sim.joint_positions(), atol=0.05)
        core.close()
