"""Environment steps per second of the whole graph in lockstep MuJoCo, against the same
policy stepping the gymnasium environment in-process, in the same run.

Graph: mujoco_sim, policy and reward nodes as processes (sac_ros.graph), talking over DDS
on loopback; the benchmark stands in for the learner (so every transition is encoded and
sent): it takes sac/transitions through the learner's own Inbox, counts each transition
once (a resend is not a step), and acknowledges them on sac/transitions_ack as the
learner does, so the policy node releases what it retains and resends nothing. The
policy weights are the same 2 x 256 actor in both. In-process is measured before and
after the graph, and averaged.
The graph's nodes hold a PM QoS CPU latency request (``--cpu-latency-us``, default 0, as
``sac-ros train --cpu-latency-us 0`` or the launch argument ``cpu_latency_us:=0``): a
lockstep step hands off between processes several times, and an idle CPU that halts
(on a VM, a halted vCPU the host must wake) makes each hand-off slow. Where the nodes
cannot hold it (no write access to /dev/cpu_dma_latency) ``cpu_latency_request`` says
why. The same graph then runs again without any request, for comparison
(``ratio_idle_default``).
Prints one JSON line with graph_steps_per_s, inprocess_steps_per_s and ratio. Also, from
the policy node's /diagnostics: its step period within episodes (p50), i.e. the graph's rate
without the valve resets, which in the graph drive the valve motor through the simulated
physics (as on hardware) where the gymnasium environment sets the angle at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import gymnasium
import rclpy
from common import emit, log
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String, UInt8MultiArray

import sac_ros.sim  # noqa: F401  (registers the environments)
from sac_ros.graph import build_graph
from sac_ros.launcher import GraphProcesses
from sac_ros.nodes import messages
from sac_ros.nodes.common import EVENT_QOS, POLICY_QOS, TRANSITION_QOS
from sac_ros.runtime import cpu_latency
from sac_ros.runtime.delivery import Inbox
from sac_ros.runtime.wire import decode_transitions
from sac_ros.sac import ObsSpec, Policy, SACAgent, SACConfig
from sac_ros.tasks import dclaw_valve


def inprocess(policy: Policy, seconds: float) -> tuple[float, float]:
    """Steps per second, and CPU time per step (us)."""
    env = gymnasium.make("SacRos/DClawValve-v0")
    obs, _ = env.reset(seed=0)
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        obs, _, terminated, truncated, _ = env.step(policy.act(obs, False, None))
        steps += 1
        if terminated or truncated:
            obs, _ = env.reset()
    cpu_us = 1e6 * (time.process_time() - cpu) / steps
    return steps / (time.perf_counter() - start), cpu_us


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def graph_rate(
    weights: bytes, seconds: float, tmp: Path, cpu_latency_us: int | None
) -> tuple[float, dict[str, str], dict[str, float], str]:
    """Transitions (policy steps) per second; reset steps are not counted. The policy
    node's last /diagnostics values. Each node's CPU time per transition (us) over the
    same window: what the graph costs, whatever the host's contention does to the rate.
    And whether the nodes held the CPU latency request (None: none asked for)."""
    nodes = build_graph("dclaw", "mujoco", "state", learner=False)
    env = {k: v for k, v in os.environ.items() if k != cpu_latency.ENV}
    env.update(cpu_latency.environment(cpu_latency_us))  # as `sac-ros train --cpu-latency-us`
    shutil.rmtree(tmp, ignore_errors=True)  # the node logs of this run only
    graph = GraphProcesses(nodes, log_dir=tmp, env=env)
    node = rclpy.create_node("throughput_sink")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    count = [0]
    policy_diag: dict[str, str] = {}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if "policy" in status.name:
                policy_diag.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)

    inbox = Inbox("throughput_sink")

    def on_transitions(msg: UInt8MultiArray) -> None:
        batch = decode_transitions(messages.read_bytes(msg))
        seqs = [int(s) for s in batch.seq]
        count[0] += len(inbox.accept("dclaw", batch.session, seqs, batch.first_retained))

    def on_ack_timer() -> None:
        inbox.mark_durable()  # as a learner's checkpoint would: nothing is kept back
        for ack in inbox.acks("dclaw"):
            ack_pub.publish(String(data=ack.to_json()))

    node.create_subscription(UInt8MultiArray, "/dclaw/sac/transitions", on_transitions,
                             TRANSITION_QOS)  # fmt: skip
    ack_pub = node.create_publisher(String, "/dclaw/sac/transitions_ack", EVENT_QOS)
    node.create_timer(0.2, on_ack_timer)
    pub = node.create_publisher(UInt8MultiArray, "/dclaw/sac/policy", POLICY_QOS)
    pub.publish(messages.byte_array(weights))
    graph.start()
    try:
        deadline = time.monotonic() + 60
        while count[0] < 200:  # warm up: processes started, policy applied
            ex.spin_once(timeout_sec=0.05)
            if graph.poll_dead() or time.monotonic() > deadline:
                raise RuntimeError("the graph did not start")
        pids = {r.spec.name: r.process.pid for r in graph.running}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        first, start = count[0], time.perf_counter()
        while time.perf_counter() - start < seconds:
            ex.spin_once(timeout_sec=0.05)
        elapsed = time.perf_counter() - start
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        n = count[0] - first
        transitions = n / elapsed
        cpu_us = {name: round(1e6 * c / max(1, n), 1) for name, c in cpu.items()}
    finally:
        codes = graph.stop()
        ex.shutdown()
        node.destroy_node()
    log(f"graph exit codes {codes}")
    return transitions, policy_diag, cpu_us, latency_outcome(tmp, cpu_latency_us)


def latency_outcome(log_dir: Path, asked: int | None) -> str:
    """What the nodes' logs say of the CPU latency request: held by all, or why not."""
    if asked is None:
        return "not asked"
    logs = [p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log"))]
    held = [cpu_latency.held_text(asked) in text for text in logs]
    if logs and all(held):
        return f"held at {asked} us by every node"
    refusals = [
        line for text in logs for line in text.splitlines() if cpu_latency.NOT_LIMITED in line
    ]
    return refusals[0].split("]: ")[-1] if refusals else f"held by {sum(held)} of {len(logs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tmp", default="/tmp/sac_ros_bench_throughput")
    parser.add_argument(
        "--cpu-latency-us", type=int, default=0,
        help="the PM QoS request the graph's nodes hold in the main measurement "
        "(-1: none; the graph also runs without one, for comparison)",
    )  # fmt: skip
    args = parser.parse_args()
    asked = None if args.cpu_latency_us < 0 else args.cpu_latency_us
    spec = ObsSpec.vector(dclaw_valve.STATE_DIM)
    weights = SACAgent(spec, 9, SACConfig(device="cpu")).policy_bytes(1)
    policy = Policy.from_bytes(weights, spec, 9, seed=0)
    before, cpu_before = inprocess(policy, args.seconds / 3)
    rclpy.init()
    try:
        graph, diag, cpu_us, latency = graph_rate(weights, args.seconds, Path(args.tmp), asked)
        idle = None
        if asked is not None:
            idle = graph_rate(weights, args.seconds, Path(args.tmp), None)
    finally:
        rclpy.shutdown()
    after, cpu_after = inprocess(policy, args.seconds / 3)
    ref = (before + after) / 2
    graph_cpu_us = sum(cpu_us.values())
    inprocess_cpu_us = (cpu_before + cpu_after) / 2
    period_ms = float(diag.get("step_period_ms_p50", "nan"))
    within = 1000.0 / period_ms
    log(f"in-process {before:.0f} / {after:.0f} steps/s, graph {graph:.0f} steps/s "
        f"({within:.0f} within episodes: policy step period p50 {period_ms:.3f} ms); "
        f"reset p50 {diag.get('reset_ms_p50')} ms; CPU latency request: {latency}")  # fmt: skip
    log(f"CPU per transition: graph {graph_cpu_us:.0f} us {cpu_us}, "
        f"in-process {inprocess_cpu_us:.0f} us")  # fmt: skip
    result = {
        "graph_steps_per_s": graph,
        "inprocess_steps_per_s": ref,
        "inprocess_before": before,
        "inprocess_after": after,
        "ratio": graph / ref,
        "cpu_latency_request": latency,
        "within_episode_steps_per_s": within,
        "within_episode_ratio": within / ref,
        "policy_step_ms_p50": float(diag.get("step_ms_p50", "nan")),
        "episodes": int(diag.get("episodes", 0)),
        "reset_ms_p50": float(diag.get("reset_ms_p50", "nan")),
        "reset_steps_per_episode": int(diag.get("reset_steps", 0))
        / max(1, int(diag.get("episodes", 0))),
        "transitions_resent": int(diag.get("transitions_resent", 0)),
        "graph_cpu_us_per_transition": graph_cpu_us,
        "node_cpu_us_per_transition": cpu_us,
        "inprocess_cpu_us_per_step": inprocess_cpu_us,
        "goal_ratio": 0.5,
        "goal_met": graph / ref >= 0.5,
        "seconds": args.seconds,
    }  # fmt: skip
    if idle is not None:  # the same graph with the CPUs' idle states left alone
        idle_rate, idle_diag, _, _ = idle
        log(f"without the request: graph {idle_rate:.0f} steps/s, ratio {idle_rate / ref:.3f}")
        result["graph_steps_per_s_idle_default"] = idle_rate
        result["ratio_idle_default"] = idle_rate / ref
        idle_period = float(idle_diag.get("step_period_ms_p50", "nan"))
        result["within_episode_ratio_idle_default"] = 1000.0 / idle_period / ref
    emit(result)


if __name__ == "__main__":
    main()
