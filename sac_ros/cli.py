"""The ``sac-ros`` command: train, evaluate and inspect the graph without ROS launch.

    sac-ros train ROBOT [--sim mujoco] [--obs state|pixels] [--steps N] [--run-dir D]
                        [--resume] [--seed S] [--robots K] [--set NODE.PARAM=VALUE ...]
    sac-ros eval ROBOT --checkpoint C [--obs ...] [--episodes N] [--video out.mp4]
    sac-ros graph ROBOT [--sim X] [--obs ...] [--robots K]
    sac-ros demo                      # what `make demo` runs

``train`` starts the graph of sac_ros.graph as processes (sac_ros.launcher) with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless the environment sets a range, follows it
with a progress bar, stops every process cleanly on Ctrl-C or at the step budget (final
checkpoint), and leaves summary.json, metrics.csv (one row per episode, also kept up to
date every 10 s as the run goes), the learner's
learner_stats.csv, curve.png, TensorBoard event files (the learner's in tensorboard/, the
episodes' in tensorboard/episodes/), checkpoints and each node's log in the run directory.
A node that dies stops the run with a non-zero exit that names it. ``--resume`` continues
the run in ``--run-dir`` from its checkpoint; ``--steps`` is the whole run's budget and
what it writes covers every session.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from sac_ros.graph import (
    OBS,
    ROBOTS,
    SIMS,
    NodeSpec,
    build_graph,
    describe,
    robot_namespaces,
)
from sac_ros.runtime import cpu_latency

DEFAULT_STEPS = {"dclaw": 20_000, "minitaur": 100_000}
CHECKPOINT_DIR = "checkpoint"  # the learner's (sac_ros.runtime.learner.CHECKPOINT_DIR)
METRICS_EVERY_S = 10.0  # metrics.csv rewritten (atomically) at most this often during a run
DEMO_STEPS = 50_000  # about 8 minutes on a 2-core machine at ~110 steps/s (UTD 1)


def _parse_value(text: str) -> Any:
    if text.strip().startswith("["):  # a list, e.g. [64,64]
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SystemExit(f"--set value {text!r} is not a YAML list: {err}") from None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    extra: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not node or not param:
            raise SystemExit(f"--set expects NODE.PARAM=VALUE, got {item!r}")
        extra.setdefault(node, {})[param] = _parse_value(value)
    return extra


def cmd_graph(args: argparse.Namespace) -> int:
    nodes = build_graph(
        args.robot, args.sim, args.obs,
        namespaces=robot_namespaces(args.robot, args.robots),
    )  # fmt: skip
    print(describe(nodes))
    return 0


def _checkpoint_store(folder: Path) -> Any:
    """The learner's CheckpointStore for ``folder`` (imported here: it brings torch)."""
    from sac_ros.runtime.checkpoint import CheckpointStore

    return CheckpointStore(folder)


def _has_checkpoint(run_dir: Path | None) -> bool:
    """Whether the learner committed a checkpoint in ``run_dir``, by its own rule."""
    folder = run_dir / CHECKPOINT_DIR if run_dir is not None else None
    return folder is not None and folder.is_dir() and _checkpoint_store(folder).exists()


def _learner_counts(run_dir: Path) -> dict[str, Any]:
    """What the learner's last checkpoint holds (received transitions per robot...): the
    generation a resume loads (committed by its replay save, before the top manifest)."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return {}
    try:
        loaded = _checkpoint_store(folder).load()  # None: never committed
    except (OSError, ValueError) as err:
        print(f"sac-ros: the learner's checkpoint: {err}", file=sys.stderr)
        return {}
    return dict(loaded.state) if loaded is not None else {}


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _already_stopping(*_: object) -> None:
    print("sac-ros: already stopping; waiting for the final checkpoint", file=sys.stderr)


def _cannot_write(path: Path, err: OSError) -> str:
    return (
        f"cannot write the run directory {path} ({err.strerror or err}): choose a writable "
        "--run-dir"
    )


def _fresh_run_dir(prefix: str, error: Callable[[str], NoReturn]) -> Path:
    """A new directory runs/<prefix>_<time>, with a suffix if another run took that name
    in the same second. ``error`` reports an unwritable runs/ (a usage error)."""
    base = f"runs/{prefix}_{time.strftime('%Y%m%d_%H%M%S')}"
    for k in range(1, 1000):
        path = Path(base if k == 1 else f"{base}_{k}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as err:  # a read-only working directory...
            error(_cannot_write(path.absolute(), err))
    raise SystemExit(f"sac-ros: no free run directory name like {base}")


def _session_using(run_dir: Path) -> str:
    return f"another sac-ros session is using {run_dir}"


def _lock_run_dir(run_dir: Path) -> Any:
    """Hold run_dir/.lock for this session: a second session (or a --resume while the
    killed one's nodes still shut down) must not write the same checkpoint."""
    import fcntl

    handle = open(run_dir / ".lock", "w")  # held open for the session
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SystemExit(f"sac-ros: {_session_using(run_dir)}") from None
    return handle


def _locked_by_another(run_dir: Path) -> bool:
    """Whether a live session holds run_dir/.lock (tried without waiting, then let go)."""
    import fcntl

    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY)  # read-only: also on a read-only path
    except OSError:
        return False  # no lock file: no session
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # lets go of the lock if it was taken
    return False


def _previous_run(run_dir: Path) -> dict[str, str]:
    """The robot and --obs the run in run_dir was made with: its summary.json's, or
    (a killed session writes no summary) what its graph.txt gives every node."""
    found: dict[str, set[str]] = {"robot": set(), "obs": set()}
    try:
        graph = (run_dir / "graph.txt").read_text()
    except OSError:
        graph = ""
    for key, value in re.findall(r"^\s+(robot|obs) = (\S+)$", graph, re.MULTILINE):
        found[key].add(value)
    previous = {k: v.pop() for k, v in found.items() if len(v) == 1}
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    if isinstance(summary, dict):
        previous.update({k: str(summary[k]) for k in found if summary.get(k)})
    return previous


def _session_counts(
    args: argparse.Namespace,
    stats_files: dict[str, Path],
    learner: dict[str, Any],
    learner_start: dict[str, Any],
) -> dict[str, Any]:
    """This session's counts from the policy nodes' stats files; the learner's are the
    whole run's already (its checkpoint carries them over). A policy node that died wrote
    no stats: then what reached the learner's checkpoint this session counts."""
    policy_stats = [json.loads(p.read_text()) if p.exists() else {} for p in stats_files.values()]
    published = sum(int(s.get("transitions_published", 0)) for s in policy_stats)
    if not all(p.exists() for p in stats_files.values()):
        checkpointed = int(learner.get("env_steps", 0)) - int(learner_start.get("env_steps", 0))
        published = max(published, checkpointed)
    return {
        "robot": args.robot,
        "obs": args.obs,
        "sim": args.sim,
        "robots": args.robots,
        "env_steps": published,
        "transitions_published": published,
        "transitions_received": sum(int(v) for v in learner.get("received", {}).values()),
        "transitions_dropped": sum(int(s.get("transitions_dropped", 0)) for s in policy_stats),
        "policy_versions_applied": sorted(
            {v for s in policy_stats for v in s.get("versions_used", [])}
        ),
    }


def cmd_train(args: argparse.Namespace) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from tqdm import tqdm

    from sac_ros.launcher import GraphProcesses
    from sac_ros.nodes.monitor import Monitor
    from sac_ros.runtime.run_record import RunRecord

    steps = args.steps or DEFAULT_STEPS[args.robot]
    if args.run_dir:
        run_dir = Path(args.run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            args.usage_error(_cannot_write(run_dir, err))
    else:
        run_dir = _fresh_run_dir(f"{args.robot}_{args.obs}", args.usage_error)
    try:
        lock = _lock_run_dir(run_dir)  # released when this process and its nodes end
    except OSError as err:  # a read-only path, or an existing directory not ours to write
        args.usage_error(_cannot_write(run_dir, err))
    learner_start = _learner_counts(run_dir) if args.resume else {}
    record = (
        RunRecord.resume(run_dir, wall_start=time.monotonic())
        if args.resume
        else RunRecord(run_dir, wall_start=time.monotonic())
    )
    # A session killed (-9) wrote no summary; its steps are in the learner's checkpoint.
    record.count_earlier_steps(int(learner_start.get("env_steps", 0)))
    if record.env_steps >= steps:
        raise SystemExit(
            f"sac-ros: the run in {run_dir} already has {record.env_steps} environment steps; "
            f"--steps is the whole run's budget: give more than that"
        )
    namespaces = robot_namespaces(args.robot, args.robots)
    extra = _overrides(args.set)
    stats_files = {ns: run_dir / f"policy{ns.replace('/', '_')}.json" for ns in namespaces}
    nodes = build_graph(
        args.robot, args.sim, args.obs, namespaces=namespaces, resume=args.resume,
        run_dir=str(run_dir), seed=args.seed, params_file=args.params_file, extra=extra,
    )  # fmt: skip
    for spec in nodes:
        if spec.name == "policy":
            spec.parameters.setdefault("stats_file", str(stats_files[spec.namespace]))
    for path in stats_files.values():  # an earlier session's: never counted twice
        path.unlink(missing_ok=True)
    (run_dir / "graph.txt").write_text(describe(nodes) + "\n")

    record.open_tensorboard()
    # Every node keeps the lock open: after a kill -9 of this command its nodes stop on
    # their own and save once more, and no other session may write the run until they
    # have.
    # With --cpu-latency-us every node holds the request (spin_node).
    env = {**os.environ, **cpu_latency.environment(args.cpu_latency_us)}
    graph = GraphProcesses(nodes, log_dir=run_dir / "logs", env=env, inherit_fds=(lock.fileno(),))
    print(f"sac-ros: {args.robot} ({args.obs}) in {args.sim}, {len(nodes)} processes, "
          f"run directory {run_dir}"
          + (f", resumed at {record.env_steps} steps" if args.resume else ""))  # fmt: skip
    monitor: Any = None
    bar: Any = None
    failed: list[str] = []
    interrupted = False
    metrics_written, metrics_at = len(record.episodes), time.monotonic()
    try:
        # SIGTERM (a service manager, a CI timeout) stops the run as cleanly as Ctrl-C, and
        # rclpy must leave Ctrl-C to us: the graph is stopped in order, not torn down.
        # Installed explicitly: a shell's background job starts with SIGINT ignored. Inside
        # the try: a Ctrl-C while the graph starts stops what has started, in order.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        graph.start()
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        monitor = Monitor(namespaces, record.add_episode)
        bar = tqdm(total=steps, initial=record.env_steps, unit="step", dynamic_ncols=True,
                   disable=args.quiet)  # fmt: skip
        while record.env_steps < steps:
            rclpy.spin_once(monitor, timeout_sec=0.2)
            if (len(record.episodes) != metrics_written
                    and time.monotonic() - metrics_at >= METRICS_EVERY_S):  # fmt: skip
                # Kept on disk as the run goes: a command killed (-9, a power cut) loses
                # the episode records of seconds, not of the whole session.
                record.write_metrics()
                metrics_written, metrics_at = len(record.episodes), time.monotonic()
            for r, code in graph.poll_dead():
                failed.append(f"{r.label} exited with code {code}\n{graph.log_tail(r)}")
            if failed:
                break
            bar.n = min(record.env_steps, steps)
            ret, success = record.recent()
            bar.set_postfix(
                episodes=len(record.episodes),
                ret=f"{ret:.1f}",
                success=f"{success:.2f}",
                updates=int(monitor.learner.get("updates", 0)),
                ups=f"{monitor.learner.get('updates_per_s', 0.0):.0f}/s",
                refresh=False,
            )
            bar.refresh()
    except KeyboardInterrupt:
        interrupted = True
        print("\nsac-ros: stopping (final checkpoint)...", file=sys.stderr)
    finally:
        # A second Ctrl-C must not abort the ordered stop (and lose the final checkpoint).
        signal.signal(signal.SIGINT, _already_stopping)
        signal.signal(signal.SIGTERM, _already_stopping)
        if bar is not None:
            bar.close()
        if monitor is not None:  # None: stopped while the graph started
            record.learner = dict(monitor.learner)
            monitor.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        codes = graph.stop()
        record.close()
    if interrupted and not args.resume and not record.episodes and not _has_checkpoint(run_dir):
        # Stopped before anything was learned: what this session wrote is all the directory
        # holds (_check_run_dir), and left there, it would make the same command refuse it.
        for path in run_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != ".lock":
                path.unlink()
        print(f"sac-ros: stopped before the first episode; nothing kept in {run_dir}")
        return 0
    bad_exit = {k: v for k, v in codes.items() if v not in (0, -2)}
    learner = _learner_counts(run_dir)
    session = _session_counts(args, stats_files, learner, learner_start)
    summary = record.write_summary(
        {
            **session,
            "updates": int(learner.get("updates", record.learner.get("updates", 0))),
            "wall_s": round(time.monotonic() - record.wall_start, 1),
            "interrupted": interrupted,
            "failed_nodes": [f.splitlines()[0] for f in failed],
            "exit_codes": codes,
        }
    )
    record.write_metrics()
    record.write_curve(f"sac_ros {args.robot} ({args.obs}, {args.sim})")
    for f in failed:
        print(f"sac-ros: node failed: {f}", file=sys.stderr)
    if bad_exit:
        print(f"sac-ros: nodes exited badly on stop: {bad_exit}", file=sys.stderr)
    print(
        f"sac-ros: {summary['env_steps']} steps, {summary['episodes']} episodes, recent return "
        f"{summary['recent_return']:.1f}, success {summary['final_success_rate']:.2f}; "
        f"transitions {summary['transitions_published']} published, "
        f"{summary['transitions_received']} in the learner.\n  results: {run_dir} "
        f"(summary.json, metrics.csv, learner_stats.csv, curve.png, checkpoint/, "
        f"tensorboard/, logs/)\n  watch:   tensorboard --logdir {run_dir}"
    )
    return 1 if failed or bad_exit else 0


def _resolve_checkpoint(path: Path) -> Path:
    """A run directory, its checkpoint/ folder, or an agent checkpoint folder. For the
    first two, the agent of the generation a resume would load."""
    if (path / CHECKPOINT_DIR).is_dir():
        path = path / CHECKPOINT_DIR
    loaded = _checkpoint_store(path).load()  # None: not a checkpoint folder
    return loaded.agent_dir if loaded is not None else path


class _Video:
    """An mp4 of RGB frames, opened with the first frame's size."""

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps = path, fps
        self.writer: Any = None

    def add(self, frame: Any) -> None:
        if self.writer is None:
            import cv2

            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(self.path, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise SystemExit(f"sac-ros eval: cannot write the video {self.path}")
        self.writer.write(frame[:, :, ::-1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def cmd_eval(args: argparse.Namespace) -> int:
    import gymnasium
    import numpy as np

    import sac_ros.sim  # noqa: F401  (registers the SacRos/ environments)
    from sac_ros.sac import SACAgent

    env_id = {
        ("dclaw", "state"): "SacRos/DClawValve-v0",
        ("dclaw", "pixels"): "SacRos/DClawValvePixels-v0",
        ("minitaur", "state"): "SacRos/MinitaurWalk-v0",
    }[(args.robot, args.obs)]
    from sac_ros.sac.spec import ObsSpec

    try:
        agent = SACAgent.load_checkpoint(_resolve_checkpoint(Path(args.checkpoint)), device="cpu")
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"sac-ros eval: cannot load {args.checkpoint}: {err}") from None
    env = gymnasium.make(env_id, render_mode="rgb_array" if args.video else None)
    wanted = (ObsSpec.from_space(env.observation_space), int(env.action_space.shape[0]))
    if (agent.spec, agent.action_dim) != wanted:
        raise SystemExit(
            f"sac-ros eval: {args.checkpoint} holds a policy for observations {agent.spec} "
            f"and {agent.action_dim} actions, not {env_id}'s {wanted[0]} and {wanted[1]} "
            "(another robot, or --obs pixels?)"
        )
    # One frame per control step, played back in real time.
    video = _Video(args.video, float(env.metadata["render_fps"])) if args.video else None
    successes, errors, returns = [], [], []
    for episode in range(args.episodes):
        obs, info = env.reset(seed=args.seed + episode)
        if video is not None:
            video.add(env.render())
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, deterministic=True))
            total += float(reward)
            done = terminated or truncated
            if video is not None:
                video.add(env.render())
        returns.append(total)
        successes.append(bool(info.get("is_success", False)))
        if "angle_error" in info:
            errors.append(abs(float(info["angle_error"])))
    if video is not None:
        video.close()
    result = {
        "env": env_id,
        "episodes": args.episodes,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "median_final_error": float(np.median(errors)) if errors else math.nan,
        "video": args.video or None,
    }
    print(json.dumps(result))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return main(
        ["train", "dclaw", "--sim", "mujoco", "--steps", str(DEMO_STEPS),
         "--run-dir", args.run_dir or str(_fresh_run_dir("demo", args.usage_error))]
    )  # fmt: skip


def _latency_us(text: str) -> int:
    try:
        value = cpu_latency.parse_microseconds(text, "--cpu-latency-us")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if value is None:
        raise argparse.ArgumentTypeError("expected a number of microseconds")
    return value


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sac-ros", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def robot_args(q: argparse.ArgumentParser, sim_default: str = "mujoco") -> None:
        q.add_argument("robot", choices=ROBOTS)
        q.add_argument("--sim", choices=SIMS, default=sim_default)
        q.add_argument("--obs", choices=OBS, default="state")
        q.add_argument(
            "--robots",
            type=_int_at_least(1),
            default=1,
            help="robots (namespaces) feeding one learner",
        )
        q.set_defaults(usage_error=q.error)  # for the checks in main, with q's usage

    t = sub.add_parser("train", help="train in a simulator or on hardware")
    robot_args(t)
    t.add_argument(
        "--steps",
        type=_int_at_least(0),
        default=0,
        help="environment steps of the whole run, all robots (0: the robot's default)",
    )
    t.add_argument("--run-dir", default="")
    t.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir from its checkpoint"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--params-file", default=None, help="YAML overriding config/ROBOT.yaml")
    t.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--cpu-latency-us",
        type=_latency_us,
        default=None,
        metavar="US",
        help="while the graph runs, keep the CPUs in idle states that wake within US "
        "microseconds (Linux PM QoS, /dev/cpu_dma_latency; 0: polling idle). Faster "
        "lockstep hand-offs, more power; needs write access to the device",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="deterministic evaluation in MuJoCo")
    e.add_argument("robot", choices=ROBOTS)
    e.add_argument("--obs", choices=OBS, default="state")
    e.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or agent dir")
    e.add_argument("--episodes", type=_int_at_least(1), default=10)
    e.add_argument("--seed", type=int, default=1000)
    e.add_argument("--video", default="", help="write an mp4 of the episodes")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("graph", help="print the nodes and parameters a graph would run")
    robot_args(g)
    g.set_defaults(func=cmd_graph)

    d = sub.add_parser("demo", help="train the D'Claw valve task in MuJoCo (make demo)")
    d.add_argument("--run-dir", default="")
    d.set_defaults(func=cmd_demo, usage_error=d.error)
    return p


def _check_robots(args: argparse.Namespace) -> None:
    if args.robot == "dclaw" and args.sim == "none" and args.robots > 1:
        args.usage_error(
            "--sim none --robots K > 1: every real D'Claw needs its own serial port (and "
            "camera), which one sac-ros command cannot give. Start each robot with `ros2 "
            "launch sac_ros robot.launch.py robot:=dclaw namespace:=dclaw_I port:=PORT_I` "
            "and one learner with `ros2 launch sac_ros learner.launch.py robot:=dclaw "
            "robot_namespaces:=/dclaw_0,/dclaw_1 run_dir:=D`"
        )


def _check_graph(args: argparse.Namespace, **kwargs: Any) -> list[NodeSpec]:
    """build_graph's refusals (sim and obs combinations...) as usage errors."""
    try:
        return build_graph(
            args.robot, args.sim, args.obs,
            namespaces=robot_namespaces(args.robot, args.robots), **kwargs,
        )  # fmt: skip
    except ValueError as err:
        args.usage_error(str(err))
        raise  # usage_error exits


# Node parameters the train command decides, with the option that sets each.
TRAIN_OWNS = {
    ("learner", "run_dir"): "--run-dir",
    ("learner", "resume"): "--resume",
    ("policy", "stats_file"): "--run-dir (the policy node's statistics go there)",
}


def _check_train(args: argparse.Namespace) -> None:
    """Everything train can check before it creates or locks the run directory."""
    if args.sim == "gazebo":
        args.usage_error(
            f"--sim gazebo needs ROS 2 launch: ros2 launch sac_ros {args.robot}.launch.py "
            "sim:=gazebo"
        )
    # Each robot's nodes get seed + 1000 i; the nodes accept seeds in [0, 2**31).
    top = 2**31 - 1000 * (args.robots - 1)
    if not 0 <= args.seed < top:
        args.usage_error(f"--seed must be in [0, {top}), got {args.seed}")
    if args.params_file is not None and not Path(args.params_file).is_file():
        args.usage_error(f"--params-file {args.params_file}: no such file")
    try:
        extra = _overrides(args.set)
    except SystemExit as err:
        args.usage_error(str(err))
    for node, param in TRAIN_OWNS:
        if param in extra.get(node, {}):
            args.usage_error(
                f"--set {node}.{param}: sac-ros train sets it itself (its run directory "
                "checks and lock, --resume and the summary depend on it); use "
                + TRAIN_OWNS[node, param]
            )
    nodes = _check_graph(args, params_file=args.params_file, extra=extra)
    unknown = sorted(set(extra) - {n.name for n in nodes})
    if unknown:
        args.usage_error(
            f"--set names no node of this graph: {', '.join(unknown)} (its nodes: "
            f"{', '.join(dict.fromkeys(n.name for n in nodes))})"
        )


def _check_run_dir(args: argparse.Namespace) -> None:
    run_dir = Path(args.run_dir) if args.run_dir else None
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        args.usage_error(f"--run-dir {run_dir} is a file, not a directory")
    if run_dir is not None and _locked_by_another(run_dir):
        args.usage_error(_session_using(run_dir))
    has_checkpoint = _has_checkpoint(run_dir)
    if args.resume and run_dir is None:
        args.usage_error("--resume needs --run-dir D, the directory of the run to continue")
    if args.resume and not has_checkpoint:
        args.usage_error(f"--resume: {run_dir} holds no checkpoint ({CHECKPOINT_DIR}/)")
    if args.resume and run_dir is not None:
        previous = _previous_run(run_dir)
        given = {"robot": args.robot, "obs": args.obs}
        if any(previous.get(k, v) != v for k, v in given.items()):
            args.usage_error(
                f"--resume: the run in {run_dir} is {previous.get('robot', args.robot)} "
                f"with --obs {previous.get('obs', args.obs)}, not {args.robot} with --obs "
                f"{args.obs}: continue it with the same robot and --obs, or choose another "
                "--run-dir"
            )
    if not args.resume and has_checkpoint:
        args.usage_error(
            f"{run_dir} already holds a run: add --resume to continue it, or choose another "
            "--run-dir"
        )
    # A session refused or stopped before it wrote anything leaves only its .lock.
    leftovers = (
        run_dir is not None
        and run_dir.is_dir()
        and any(p.name != ".lock" for p in run_dir.iterdir())
    )
    if not args.resume and leftovers:
        args.usage_error(
            f"{run_dir} holds files of an earlier run that never saved a checkpoint: choose "
            "another --run-dir, or delete it"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "robot", None) == "minitaur" and getattr(args, "obs", "state") == "pixels":
        raise SystemExit("the Minitaur task has no pixel variant")
    if hasattr(args, "robots"):
        _check_robots(args)
    if args.command == "train":
        _check_train(args)
        _check_run_dir(args)
    if args.command == "graph":
        _check_graph(args)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # Whoever read the output stopped (`sac-ros graph | head`): no traceback, and no
        # second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
