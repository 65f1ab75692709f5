"""Start a graph (a list of NodeSpec) as processes and supervise them, without ROS launch.

Used by the ``sac-ros`` command and the end-to-end tests. Each node runs as
``python -m <module> --ros-args ...`` with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless
the environment already sets a range. ``stop()`` sends SIGINT to every node (they write
their final checkpoints), waits, and escalates to SIGTERM and SIGKILL only for nodes that
do not exit in time. A node that dies on its own is reported by ``poll_dead()``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sac_ros.graph import NodeSpec


def graph_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # One torch thread per node process: the graph already runs several processes.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _prepare_child(nice: int) -> None:
    """In the child, before the node starts: its nice value (inherited by every thread it
    starts, DDS's included), and SIGINT (a clean stop) if the supervisor dies, even by
    SIGKILL."""
    if nice:
        os.nice(nice)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed supervisor leaves its nodes running


@dataclass
class Running:
    spec: NodeSpec
    process: subprocess.Popen
    log_path: Path | None

    @property
    def label(self) -> str:
        return f"{self.spec.namespace}/{self.spec.name}"


class GraphProcesses:
    def __init__(
        self,
        nodes: list[NodeSpec],
        log_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        inherit_fds: tuple[int, ...] = (),
    ) -> None:
        """``inherit_fds``: open files every node process keeps (the run directory's lock,
        so that it stays held until the last node has exited, even when this supervisor
        is killed and its nodes still save)."""
        self.nodes = nodes
        self.inherit_fds = inherit_fds
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.env = graph_environment(env)
        self.running: list[Running] = []
        self._logs: list[IO[bytes]] = []

    def start(self) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.nodes:
            self.start_node(spec)

    def start_node(self, spec: NodeSpec) -> Running:
        cmd = [sys.executable, "-m", spec.module, *spec.ros_args()]
        log_path = None
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_dir is not None:
            name = (spec.namespace.strip("/").replace("/", "_") + "_" + spec.name).strip("_")
            log_path = self.log_dir / f"{name}.log"
            out = open(log_path, "ab")  # closed in stop()
            self._logs.append(out)
        proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the graph
            pass_fds=self.inherit_fds,
            preexec_fn=functools.partial(_prepare_child, spec.nice),
        )
        running = Running(spec, proc, log_path)
        self.running.append(running)
        return running

    def find(self, name: str, namespace: str | None = None) -> Running:
        for r in self.running:
            if r.spec.name == name and (namespace is None or r.spec.namespace == namespace):
                if r.process.poll() is None:
                    return r
        raise KeyError(f"no running node {namespace or ''}/{name}")

    def poll_dead(self) -> list[tuple[Running, int]]:
        """Nodes that exited, with their exit codes."""
        return [(r, r.process.returncode) for r in self.running if r.process.poll() is not None]

    def kill(self, running: Running, sig: int = signal.SIGKILL) -> None:
        running.process.send_signal(sig)
        running.process.wait(timeout=30)
        self.running.remove(running)

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """SIGINT the robot side first (policy nodes hand their last transitions to the
        learner), then the learner (final checkpoint); escalate to SIGTERM and SIGKILL
        only for a node that does not exit in time. Returns each node's exit code."""
        codes: dict[str, int] = {}
        for role in ("robot", "learner"):
            group = [r for r in self.running if r.spec.role == role]
            for r in group:
                if r.process.poll() is None:
                    r.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout
            for r in group:
                codes[r.label] = self._wait(r, deadline)
        for f in self._logs:
            f.close()
        self._logs.clear()
        return codes

    @staticmethod
    def _wait(r: Running, deadline: float) -> int:
        try:
            return r.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.process.terminate()
            try:
                return r.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                r.process.kill()
                return r.process.wait()

    def log_tail(self, running: Running, lines: int = 30) -> str:
        if running.log_path is None or not running.log_path.exists():
            return ""
        text = running.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
