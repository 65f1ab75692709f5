"""The sac-ros command as a user runs it (real processes, DDS on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SMALL = ["--set", "learner.warmup=100", "--set", "learner.hidden=[64,64]",
         "--set", "learner.batch_size=64", "--set", "learner.publish_every=50"]  # fmt: skip


def sac_ros(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sac_ros.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_graph_lists_nodes_parameters_and_remappings():
    out = sac_ros("graph", "dclaw", "--robots", "2", "--obs", "pixels")
    assert out.returncode == 0, out.stderr
    for name in ("/dclaw_0/mujoco_sim", "/dclaw_1/policy", "/dclaw_1/reward", "/learner"):
        assert name in out.stdout
    assert "camera = true" in out.stdout and "remap /clock -> /dclaw_1/clock" in out.stdout
    bad = sac_ros("graph", "minitaur", "--obs", "pixels")
    assert bad.returncode != 0 and "no pixel variant" in bad.stderr


def test_train_then_eval(tmp_path):
    run = tmp_path / "run"
    out = sac_ros("train", "dclaw", "--steps", "400", "--run-dir", str(run), "--quiet", *SMALL)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] >= 400
    assert summary["transitions_published"] == summary["transitions_received"]
    assert summary["episodes"] >= 5 and len(summary["policy_versions_applied"]) >= 2
    assert all(code == 0 for code in summary["exit_codes"].values())
    for name in ("metrics.csv", "curve.png", "graph.txt"):
        assert (run / name).stat().st_size > 0, name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "checkpoint" / "manifest.json").exists()
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("robot,episode,return") and len(rows) == summary["episodes"] + 1

    video = tmp_path / "eval.mp4"
    ev = sac_ros("eval", "dclaw", "--checkpoint", str(run), "--episodes", "2",
                 "--video", str(video))  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert result["median_final_error"] <= 3.1416
    assert video.stat().st_size > 10_000


def test_a_node_that_dies_fails_the_run_and_is_named(tmp_path):
    out = sac_ros("train", "dclaw", "--steps", "100000", "--run-dir", str(tmp_path / "r"),
                  "--quiet", "--set", "policy.tick=bogus", timeout=120)  # fmt: skip
    assert out.returncode == 1
    assert "/dclaw/policy exited with code" in out.stderr
    assert json.loads((Path(tmp_path) / "r" / "summary.json").read_text())["failed_nodes"]
