"""The sac-ros command as a user runs it (real processes, DDS on loopback)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sac_ros.cli import _locked_by_another, main
from sac_ros.runtime.run_record import RunRecord
from sac_ros.sim.dclaw_env import DClawValveEnv
from sac_ros.tasks import dclaw_valve

SMALL = ["--set", "learner.warmup=100", "--set", "learner.hidden=[64,64]",
         "--set", "learner.batch_size=64", "--set", "learner.publish_every=50"]  # fmt: skip


def sac_ros(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sac_ros.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def train(run: Path, steps: int, *extra: str) -> dict:
    out = sac_ros("train", "dclaw", "--steps", str(steps), "--run-dir", str(run), "--quiet",
                  *SMALL, *extra)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads((run / "summary.json").read_text())


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def check_run_files(run: Path, summary: dict) -> list[dict[str, str]]:
    """metrics.csv (episodes) and learner_stats.csv (the learner's) apart, each with one
    header; the episodes also in TensorBoard. Returns the episode rows."""
    header, episodes = csv_rows(run / "metrics.csv")
    assert header[:3] == ["robot", "episode", "return"] and "env_steps" in header
    assert len(episodes) == summary["episodes"]
    header, stats = csv_rows(run / "learner_stats.csv")
    assert header[:2] == ["time", "updates"] and "critic_loss" in header and stats
    updates = [int(r["updates"]) for r in stats]  # a repeated header would not parse
    assert updates == sorted(updates) and updates[-1] <= summary["updates"]
    events = EventAccumulator(str(run / "tensorboard" / "episodes"))
    events.Reload()
    steps = [e.step for e in events.Scalars("episode/dclaw/return")]
    assert steps == [int(r["env_steps"]) for r in episodes]
    assert 0.0 <= summary["final_success_rate"] <= 1.0
    return episodes


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(args))
    assert stop.value.code == 2  # argparse's usage error, before anything starts
    return capsys.readouterr().err


def test_bad_arguments_are_refused(tmp_path, capsys):
    assert "--robots: must be at least 1, got 0" in refusal(
        capsys, "train", "dclaw", "--robots", "0"
    )
    assert "must be at least 1" in refusal(capsys, "graph", "dclaw", "--robots", "-1")
    assert "--resume needs --run-dir" in refusal(capsys, "train", "dclaw", "--resume")
    err = refusal(capsys, "train", "dclaw", "--resume", "--run-dir", str(tmp_path))
    assert "holds no checkpoint" in err
    err = refusal(capsys, "train", "dclaw", "--sim", "none", "--robots", "2")
    assert "own serial port" in err and "robot.launch.py" in err
    assert not list(tmp_path.iterdir())
    # A run that stopped before its first checkpoint left files: not mixed with a new one.
    (tmp_path / "logs").mkdir()
    err = refusal(capsys, "train", "dclaw", "--run-dir", str(tmp_path))
    assert "never saved a checkpoint" in err


def test_graph_refusals_are_usage_errors_before_the_run_dir_is_made(tmp_path, capsys):
    """A bad combination or value is refused with a message (no traceback), and leaves no
    run directory (or .lock) that would make the corrected command refuse the same one."""
    run = tmp_path / "run"
    for args, message in [
        (("graph", "minitaur", "--sim", "emulated"), "Dynamixel bus only"),
        (("train", "dclaw", "--sim", "emulated", "--obs", "pixels"), "no camera"),
        (("train", "dclaw", "--sim", "gazebo"), "ros2 launch sac_ros dclaw.launch.py"),
        (("train", "dclaw", "--params-file", str(tmp_path / "none.yaml")), "no such file"),
        (("train", "dclaw", "--set", "polcy.smoothing=0.5"), "names no node of this graph"),
        (("train", "dclaw", "--set", "policy"), "NODE.PARAM=VALUE"),
        (("train", "dclaw", "--seed", "-1"), "--seed must be in"),
        # What the command decides itself: another run_dir would escape its lock.
        (("train", "dclaw", "--set", f"learner.run_dir={tmp_path / 'x'}"), "use --run-dir"),
        (("train", "dclaw", "--set", "learner.resume=true"), "use --resume"),
        (("train", "dclaw", "--set", "policy.stats_file=/tmp/s.json"), "use --run-dir"),
    ]:
        extra = ("--run-dir", str(run)) if args[0] == "train" else ()
        assert message in refusal(capsys, *args, *extra), args
        assert not run.exists(), args
    file = tmp_path / "file"
    file.touch()
    assert "not a directory" in refusal(capsys, "train", "dclaw", "--run-dir", str(file))
    # A session that stopped before it wrote anything leaves only its lock: not a run.
    run.mkdir()
    (run / ".lock").touch()
    from sac_ros.cli import _check_run_dir, build_parser

    _check_run_dir(build_parser().parse_args(["train", "dclaw", "--run-dir", str(run)]))


def test_eval_refuses_a_missing_or_foreign_checkpoint_and_an_unwritable_video(tmp_path):
    from sac_ros.sac import ObsSpec, SACAgent, SACConfig

    out = sac_ros("eval", "dclaw", "--checkpoint", str(tmp_path / "none"), timeout=120)
    assert out.returncode == 1 and "cannot load" in out.stderr and "Traceback" not in out.stderr
    SACAgent(ObsSpec.vector(5), 2, SACConfig(hidden=(8, 8))).save_checkpoint(tmp_path / "a")
    out = sac_ros("eval", "dclaw", "--checkpoint", str(tmp_path / "a"), timeout=120)
    assert out.returncode == 1 and "holds a policy for" in out.stderr, out.stderr
    env = DClawValveEnv()
    spec, n = ObsSpec.from_space(env.observation_space), env.action_space.shape[0]
    SACAgent(spec, n, SACConfig(hidden=(8, 8))).save_checkpoint(tmp_path / "b")
    out = sac_ros("eval", "dclaw", "--checkpoint", str(tmp_path / "b"), "--episodes", "1",
                  "--video", str(tmp_path / "no" / "dir" / "x.mp4"), timeout=120)  # fmt: skip
    assert out.returncode == 1 and "cannot write the video" in out.stderr, out.stderr


def checkpointed_run(run: Path) -> Path:
    """A D'Claw state run directory holding one learner checkpoint (a tiny network)."""
    from sac_ros.runtime.learner import LearnerCore, LearnerSettings
    from sac_ros.sac import ObsSpec, SACConfig

    env = DClawValveEnv()
    spec, n = ObsSpec.from_space(env.observation_space), int(env.action_space.shape[0])
    core = LearnerCore(spec, n, SACConfig(hidden=(8, 8)),
                       LearnerSettings(run_dir=run, tensorboard=False))  # fmt: skip
    core.checkpoint()
    core.close()
    return run


def test_a_first_checkpoint_killed_before_its_manifest_counts_as_a_run(tmp_path, capsys):
    """A learner killed between its replay save (the commit point) and the top manifest of
    its first checkpoint resumes from it: the command agrees, refuses a fresh run there,
    and evaluates that generation's agent."""
    run = checkpointed_run(tmp_path / "run")
    (run / "checkpoint" / "manifest.json").unlink()
    assert "already holds a run" in refusal(capsys, "train", "dclaw", "--run-dir", str(run))
    out = sac_ros("eval", "dclaw", "--checkpoint", str(run), "--episodes", "1", timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["episodes"] == 1


def test_resume_refuses_a_run_of_another_robot_or_obs_before_it_writes(tmp_path, capsys):
    """The run's summary.json (or, after a kill -9, its graph.txt) says what it trains: a
    --resume with another robot or --obs is refused before anything starts or is written."""
    from sac_ros.cli import _check_run_dir, build_parser
    from sac_ros.graph import build_graph, describe
    run = checkpointed_run(tmp_path / "run")
    (run / "summary.json").write_text(json.dumps({"robot": "dclaw", "obs": "state"}))
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    err = refusal(capsys, "train", "minitaur", "--resume", "--run-dir", str(run))
    assert f"the run in {run} is dclaw with --obs state, not minitaur" in err
    err = refusal(capsys, "train", "dclaw", "--obs", "pixels", "--resume", "--run-dir", str(run))
    assert "is dclaw with --obs state, not dclaw with --obs pixels" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # no .lock either
    # A killed session wrote no summary: graph.txt (written before any node starts) tells.
    (run / "summary.json").unlink()
    (run / "graph.txt").write_text(describe(build_graph("dclaw", "mujoco", "pixels")) + "\n")
    graph = (run / "graph.txt").read_text()
    err = refusal(capsys, "train", "dclaw", "--resume", "--run-dir", str(run))
    assert "is dclaw with --obs pixels, not dclaw with --obs state" in err
    assert (run / "graph.txt").read_text() == graph and not (run / ".lock").exists()
    _check_run_dir(build_parser().parse_args(
        ["train", "dclaw", "--obs", "pixels", "--resume", "--run-dir", str(run)]))  # fmt: skip


def test_a_run_dir_a_live_session_uses_is_named_so(tmp_path, capsys):
    """Before its first checkpoint a live session's directory holds files already: it is
    in use, not an abandoned run to delete."""
    import fcntl

    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    with open(run / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the live session holds it
        err = refusal(capsys, "train", "dclaw", "--run-dir", str(run))
        assert f"another sac-ros session is using {run}" in err and "delete" not in err
    assert "never saved a checkpoint" in refusal(capsys, "train", "dclaw", "--run-dir", str(run))


def test_an_unwritable_run_dir_is_a_usage_error_naming_it(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root writes there anyway; sysfs takes no new directory
        ro = Path("/sys")
    err = refusal(capsys, "train", "dclaw", "--run-dir", str(ro / "run"))
    assert f"cannot write the run directory {ro / 'run'}" in err
    monkeypatch.chdir(ro)  # the default runs/ of a read-only working directory
    err = refusal(capsys, "train", "dclaw")
    assert f"cannot write the run directory {ro / 'runs'}/dclaw_state_" in err


# Ctrl-C (or SIGTERM) while the graph starts: between the nodes' start and rclpy's.
INTERRUPTED_STARTUP = """
import os, signal, sys, time
import rclpy
from sac_ros import cli
init = rclpy.init
def interrupted_init(*args, **kwargs):
    os.kill(os.getpid(), signal.{sig})
    time.sleep(0.1)
    return init(*args, **kwargs)
rclpy.init = interrupted_init
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.ros
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_while_the_graph_starts_is_clean_and_can_be_run_again(tmp_path, sig):
    from sac_ros.cli import _check_run_dir, build_parser

    run = tmp_path / "run"
    args = ["train", "dclaw", "--steps", "1000", "--run-dir", str(run), "--quiet"]
    out = subprocess.run([sys.executable, "-c", INTERRUPTED_STARTUP.format(sig=sig), *args],
                         capture_output=True, text=True, timeout=150)  # fmt: skip
    # (150 s: once in a dozen tries a node took the launcher's 60 s stop timeout, cause
    # not found; the stop must still end cleanly then.)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert "stopping" in out.stderr and "nothing kept" in out.stdout
    assert [p.name for p in run.iterdir()] == [".lock"]
    _check_run_dir(build_parser().parse_args(args))  # the same command is not refused


def test_output_cut_short_by_its_reader_is_not_a_traceback():
    out = subprocess.run(f"{sys.executable} -m sac_ros.cli graph dclaw | head -1", shell=True,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.startswith("/dclaw/mujoco_sim") and out.stderr == "", out.stderr


def test_whole_numbers_set_on_float_parameters_arrive_as_floats():
    """rclpy refuses an INTEGER for a DOUBLE parameter and the node stops: --set
    learner.utd_ratio=2 must reach the learner as 2.0."""
    from sac_ros.cli import _overrides
    from sac_ros.graph import build_graph

    extra = _overrides(["learner.utd_ratio=2", "learner.checkpoint_every=1",
                        "policy.smoothing=0", "policy.send_batch=32"])  # fmt: skip
    params = {n.name: n.parameters for n in build_graph("dclaw", "mujoco", extra=extra)}
    assert params["learner"]["utd_ratio"] == 2.0 and type(params["learner"]["utd_ratio"]) is float
    assert type(params["learner"]["checkpoint_every"]) is float
    assert type(params["policy"]["smoothing"]) is float
    assert params["policy"]["send_batch"] == 32 and type(params["policy"]["send_batch"]) is int
    # Float parameters the graph itself sets, and ones the files give only as defaults.
    extra = _overrides(["policy.max_learner_backlog=3", "policy.drain_timeout=5",
                        "mujoco_sim.control_rate_hz=20"])  # fmt: skip
    for robot in ("dclaw", "minitaur"):
        params = {n.name: n.parameters for n in build_graph(robot, "mujoco", extra=extra)}
        for node, key in [("policy", "max_learner_backlog"), ("policy", "drain_timeout"),
                          ("mujoco_sim", "control_rate_hz")]:  # fmt: skip
            assert type(params[node][key]) is float, (robot, node, key)


def test_a_params_file_changes_the_graphs_choices_and_may_not_contradict_its_arguments(
    tmp_path,
):
    from sac_ros.graph import build_graph, effective_parameters

    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "/**/policy:\n  ros__parameters:\n    max_learner_backlog: 7.0\n"
        "    tick: lockstep\n"  # what sim:=mujoco makes it anyway: no clash
        "/**/reward:\n  ros__parameters:\n    reliable_readings: false\n"
        "/**/learner:\n  ros__parameters:\n    ack_rate_hz: 2.0\n"
    )
    plain = {n.name: effective_parameters(n) for n in build_graph("dclaw", "mujoco")}
    # The graph's choice for lockstep over config/dclaw.yaml's (reliable_readings: false).
    assert plain["reward"]["reliable_readings"] is True
    assert (plain["policy"]["max_learner_backlog"], plain["learner"]["ack_rate_hz"]) == (50.0, 20.0)
    nodes = build_graph("dclaw", "mujoco", params_file=str(mine))
    got = {n.name: effective_parameters(n) for n in nodes}
    assert got["policy"]["max_learner_backlog"] == 7.0 and got["learner"]["ack_rate_hz"] == 2.0
    assert got["reward"]["reliable_readings"] is False
    # rclpy ranks a -p rule over every params file, whatever the order: what the file
    # sets is not given with -p at all.
    (policy,) = [n for n in nodes if n.name == "policy"]
    assert not any(a.startswith("max_learner_backlog:=") for a in policy.ros_args())
    # A command-line override (sac-ros ... policy.max_learner_backlog=3) beats the file.
    extra = {"policy": {"max_learner_backlog": 3.0}}
    (policy,) = [n for n in build_graph("dclaw", "mujoco", params_file=str(mine), extra=extra)
                 if n.name == "policy"]  # fmt: skip
    assert effective_parameters(policy)["max_learner_backlog"] == 3.0
    # What the launch arguments fix is refused, naming the key and what to change instead.
    mine.write_text("/**/policy:\n  ros__parameters:\n    tick: timer\n    seed: 3\n")
    with pytest.raises(ValueError, match=r"/dclaw/policy seed: 3 .*tick: 'timer' .*launch"):
        build_graph("dclaw", "mujoco", params_file=str(mine))
    mine.write_text("/**:\n  ros__parameters:\n    use_sim_time: true\n")
    with pytest.raises(ValueError, match="use_sim_time"):
        build_graph("dclaw", "mujoco", params_file=str(mine))
    build_graph("dclaw", "gazebo", params_file=str(mine))  # where it is what sim:= gives


@pytest.mark.ros
def test_a_params_file_value_reaches_the_node_over_the_graphs_default(tmp_path):
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from sac_ros.graph import build_graph

    mine = tmp_path / "mine.yaml"
    mine.write_text("/dclaw/policy:\n  ros__parameters:\n    max_learner_backlog: 6.0\n")
    theirs = tmp_path / "theirs.yaml"  # keyed as config/dclaw.yaml is: its section grows
    theirs.write_text("/**/policy:\n  ros__parameters:\n    max_learner_backlog: 7.0\n")
    for params_file, expected in ((None, 50.0), (str(mine), 6.0), (str(theirs), 7.0)):
        (spec,) = [n for n in build_graph("dclaw", params_file=params_file)
                   if n.name == "policy"]  # fmt: skip
        context = Context()
        rclpy.init(args=["sac_ros_test", *spec.ros_args()], context=context)
        try:
            node = Node("policy", namespace=spec.namespace, context=context)
            assert node.declare_parameter("max_learner_backlog", 0.0).value == expected
            assert node.declare_parameter("tick", "").value == "lockstep"
            node.destroy_node()
        finally:
            rclpy.shutdown(context=context)


@pytest.mark.ros
def test_string_parameters_reach_the_node_as_strings():
    """rcl reads each -p value as YAML: a run directory named 2024 must reach the learner
    as the string "2024", or rclpy refuses it and the learner stops."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    from sac_ros.graph import build_graph

    texts = ["2024", "true", "1e-3", "", "it's", "null", "runs/x", "~"]
    (spec,) = [n for n in build_graph("dclaw", run_dir="2024") if n.name == "learner"]
    spec.parameters.update({f"text_{i}": t for i, t in enumerate(texts)}, texts=texts)
    context = Context()
    rclpy.init(args=["sac_ros_test", *spec.ros_args()], context=context)
    try:
        node = Node("learner", context=context)
        assert node.declare_parameter("run_dir", "").value == "2024"
        for i, text in enumerate(texts):
            assert node.declare_parameter(f"text_{i}", "x").value == text
        assert node.declare_parameter("texts", ["x"]).value == texts
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.ros
@pytest.mark.slow
def test_graph_lists_nodes_parameters_and_remappings():
    out = sac_ros("graph", "dclaw", "--robots", "2", "--obs", "pixels")
    assert out.returncode == 0, out.stderr
    for name in ("/dclaw_0/mujoco_sim", "/dclaw_1/policy", "/dclaw_1/reward", "/learner"):
        assert name in out.stdout
    assert "camera = true" in out.stdout and "remap /clock -> /dclaw_1/clock" in out.stdout
    bad = sac_ros("graph", "minitaur", "--obs", "pixels")
    assert bad.returncode != 0 and "no pixel variant" in bad.stderr


@pytest.mark.ros
@pytest.mark.slow
def test_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    summary = train(run, 400)
    assert summary["env_steps"] >= 400
    assert summary["transitions_published"] == summary["transitions_received"]
    assert summary["episodes"] >= 5 and len(summary["policy_versions_applied"]) >= 2
    assert all(code == 0 for code in summary["exit_codes"].values())
    for name in ("metrics.csv", "learner_stats.csv", "curve.png", "graph.txt"):
        assert (run / name).stat().st_size > 0, name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "checkpoint" / "manifest.json").exists()
    check_run_files(run, summary)
    assert "already holds a run" in refusal(capsys, "train", "dclaw", "--run-dir", str(run))

    video = tmp_path / "eval.mp4"
    ev = sac_ros("eval", "dclaw", "--checkpoint", str(run), "--episodes", "2",
                 "--video", str(video))  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert result["median_final_error"] <= 3.1416
    clip = cv2.VideoCapture(str(video))
    # Each episode: the frame after reset, then one per step, at the control rate.
    assert clip.get(cv2.CAP_PROP_FRAME_COUNT) == 2 * (dclaw_valve.EPISODE_STEPS + 1)
    assert clip.get(cv2.CAP_PROP_FPS) == DClawValveEnv.metadata["render_fps"]
    clip.release()


@pytest.mark.ros
@pytest.mark.slow
def test_resume_continues_the_whole_run(tmp_path):
    run = tmp_path / "run"
    first = train(run, 200)
    _, first_rows = csv_rows(run / "metrics.csv")
    second = train(run, 450, "--resume")
    session = json.loads((run / "policy_dclaw.json").read_text())  # the second session's

    assert second["sessions"] == 2 and second["env_steps"] >= 450
    assert second["env_steps"] == first["env_steps"] + session["transitions_published"]
    assert second["transitions_published"] == second["env_steps"]
    assert second["transitions_received"] == second["transitions_published"]
    assert second["episodes"] > first["episodes"] and second["updates"] > first["updates"]
    assert set(first["policy_versions_applied"]) <= set(second["policy_versions_applied"])
    assert second["wall_s"] > first["wall_s"]
    rows = check_run_files(run, second)
    assert rows[: len(first_rows)] == first_rows
    assert [int(r["episode"]) for r in rows] == list(range(len(rows)))
    new_steps = [int(r["env_steps"]) for r in rows[len(first_rows) :]]
    assert new_steps[0] > first["env_steps"] and new_steps == sorted(new_steps)
    # --steps is the whole run's budget: one it has already reached is refused.
    out = sac_ros("train", "dclaw", "--steps", "300", "--run-dir", str(run), "--resume")
    assert out.returncode == 1 and "already has" in out.stderr


@pytest.mark.ros
@pytest.mark.slow
def test_a_node_that_dies_fails_the_run_and_is_named(tmp_path):
    out = sac_ros("train", "dclaw", "--steps", "100000", "--run-dir", str(tmp_path / "r"),
                  "--quiet", "--set", "policy.tick=bogus", timeout=120)  # fmt: skip
    assert out.returncode == 1
    assert "/dclaw/policy exited with code" in out.stderr
    assert json.loads((Path(tmp_path) / "r" / "summary.json").read_text())["failed_nodes"]


@pytest.mark.ros
@pytest.mark.slow
def test_ctrl_c_stops_two_robots_and_the_learner_with_a_final_checkpoint(tmp_path):
    """Ctrl-C from a terminal: SIGINT to the command's whole process group (the nodes run in
    sessions of their own, so only the command sees it and stops them in order)."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sac_ros.cli", "train", "dclaw", "--robots", "2",
         "--steps", "100000", "--run-dir", str(run), "--quiet", *SMALL],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stats = run / "learner_stats.csv"
        deadline = time.monotonic() + 120
        while not (stats.exists() and len(stats.read_text().splitlines()) >= 8):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the learner did not train 700 updates"
            time.sleep(0.5)
        stopped_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # impatient: a second Ctrl-C during the stop
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - stopped_at < 30
    assert proc.returncode == 0, out + err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] and summary["robots"] == 2
    assert all(code in (0, -2) for code in summary["exit_codes"].values()), summary
    assert len(summary["exit_codes"]) == 2 * 3 + 1  # sim, policy, reward per robot; learner
    # Nothing lost on the way out: the robots drained to the learner before it saved.
    assert summary["transitions_received"] == summary["transitions_published"] > 0
    manifest = json.loads((run / "checkpoint" / "manifest.json").read_text())
    assert manifest["folder"]
    _, episodes = csv_rows(run / "metrics.csv")
    assert {r["robot"] for r in episodes} == {"/dclaw_0", "/dclaw_1"}
    assert "already stopping" in err


@pytest.mark.ros
@pytest.mark.slow
def test_resume_after_kill_9_counts_the_steps_the_checkpoint_holds(tmp_path):
    """kill -9 of the whole command: no summary was written, but the learner's checkpoint
    holds the steps taken. --steps stays the whole run's budget."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sac_ros.cli", "train", "dclaw", "--steps", "100000",
         "--run-dir", str(run), "--quiet", *SMALL, "--set", "learner.checkpoint_every=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (not (run / "checkpoint" / "manifest.json").exists() or not _learner_steps(run)
               or not (run / "metrics.csv").exists()):  # fmt: skip
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint with steps, or no metrics.csv"
            time.sleep(0.5)
    finally:
        # The command alone: its nodes run in sessions of their own and outlive it.
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert not (run / "summary.json").exists()
    # The episode records are kept as the run goes (every 10 s), not only at its end.
    episodes = len(RunRecord.resume(run).episodes)
    assert episodes >= 1
    # The nodes stop on their own (parent death) and the learner saves once more: until
    # the last of them has exited the run is still locked, so no new session can write
    # the checkpoint beside it.
    assert _locked_by_another(run) and _processes_naming(run)
    refused = sac_ros("train", "dclaw", "--steps", "100000", "--run-dir", str(run), "--resume")
    assert refused.returncode == 2 and "another sac-ros session" in refused.stderr
    deadline = time.monotonic() + 60
    while _locked_by_another(run):
        assert time.monotonic() < deadline, f"still locked: {_processes_naming(run)}"
        time.sleep(0.2)
    assert not _processes_naming(run)
    before = _learner_steps(run)
    summary = train(run, before + 150, "--resume")
    assert summary["env_steps"] >= before + 150
    assert summary["env_steps"] < before + 150 + 2 * dclaw_valve.EPISODE_STEPS
    assert summary["episodes"] >= episodes + 1


def _processes_naming(path: Path) -> list[str]:
    """Command lines of the live processes that name ``path`` (the learner and policy
    nodes of a run do)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if str(path) in cmd and entry.name.isdigit() and int(entry.name) != os.getpid():
            found.append(cmd)
    return found


def _learner_steps(run: Path) -> int:
    try:
        folder = json.loads((run / "checkpoint" / "manifest.json").read_text())["folder"]
        data = json.loads((run / "checkpoint" / folder / "learner.json").read_text())
    except (OSError, ValueError, KeyError):
        return 0
    return int(data.get("learner", {}).get("env_steps", 0))
