"""Suite-wide environment: every ROS process the tests start stays on loopback."""

from __future__ import annotations

import os

# DDS discovery must never leave this machine; tests set it themselves, before any
# rclpy import, and every subprocess inherits it.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# A domain of our own, so a concurrent run (another checkout, a demo) cannot cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# test/graph_harness.py is imported by the end-to-end tests and the benchmarks.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
