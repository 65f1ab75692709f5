"""Time from a sensor message to the joint target it causes, through the policy node.

The benchmark plays the world: it publishes one step's readings (valve or camera image,
the reward, then joint_states, which completes the step) and waits for the joint command.
The same is done, interleaved in the same run, against bench/echo_node.py: the raw DDS +
rclpy round trip for the same messages. Both run as separate processes on loopback.
Prints one JSON line: policy_p50_us, policy_p99_us, dds_p50_us, dds_p99_us, ... per
observation variant (state first: the goal is policy_p99_us - dds_p99_us <= 1000).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from common import emit, log
from geometry_msgs.msg import Vector3Stamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, UInt8MultiArray

from sac_ros.graph import build_graph
from sac_ros.launcher import GraphProcesses, graph_environment
from sac_ros.nodes import messages
from sac_ros.nodes.common import COMMAND_QOS, POLICY_QOS, REWARD_QOS, SENSOR_QOS
from sac_ros.robots import dclaw
from sac_ros.sac import ObsSpec, SACAgent, SACConfig
from sac_ros.tasks import dclaw_valve

HERE = Path(__file__).parent


class Target:
    """One node under test, seen from the world's side."""

    def __init__(self, node: rclpy.node.Node, ns: str) -> None:
        self.ns = ns
        self.joints = node.create_publisher(JointState, f"{ns}/joint_states", SENSOR_QOS)
        self.valve = node.create_publisher(JointState, f"{ns}/valve/joint_states", SENSOR_QOS)
        self.image = node.create_publisher(Image, f"{ns}/camera/image_32x32", SENSOR_QOS)
        self.reward = node.create_publisher(Vector3Stamped, f"{ns}/sac/reward", REWARD_QOS)
        self.policy = node.create_publisher(UInt8MultiArray, f"{ns}/sac/policy", POLICY_QOS)
        self.replies = 0
        node.create_subscription(
            Float64MultiArray, f"{ns}/joint_position_controller/commands", self._on_cmd,
            COMMAND_QOS,
        )  # fmt: skip

    def _on_cmd(self, _msg: Float64MultiArray) -> None:
        self.replies += 1


def measure(
    ex: SingleThreadedExecutor, node: rclpy.node.Node, target: Target, pixels: bool, k: int
) -> float:
    """One step; returns microseconds from the completing reading to the command."""
    stamp = node.get_clock().now().to_msg()  # fresh: the node checks readings' age
    if pixels:
        img = messages.image(np.full((32, 32, 3), k % 255, np.uint8))
        img.header.stamp = stamp
        target.image.publish(img)
    else:
        valve = messages.joint_state([dclaw.VALVE_JOINT], [0.01 * k], [0.0])
        valve.header.stamp = stamp
        target.valve.publish(valve)
    target.reward.publish(messages.reward_msg(stamp, -1.0, False, False))
    js = messages.joint_state(dclaw.JOINT_NAMES, dclaw.NOMINAL_POSE, np.zeros(9))
    js.header.stamp = stamp
    before = target.replies
    start = time.perf_counter()
    target.joints.publish(js)
    while target.replies == before:
        ex.spin_once(timeout_sec=0.5)
        if time.perf_counter() - start > 5.0:
            raise RuntimeError(f"no command from {target.ns} within 5 s")
    return (time.perf_counter() - start) * 1e6


def percentiles(us: list[float]) -> dict[str, float]:
    a = np.array(us)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}  # fmt: skip


def run_variant(obs: str, steps: int, tmp: Path) -> dict[str, float]:
    pixels = obs == "pixels"
    spec = next(n for n in build_graph("dclaw", "mujoco", obs, learner=False) if n.name == "policy")
    # Stamps are the benchmark's own: no simulated clock, no staleness check, no resets.
    spec.parameters.update(use_sim_time=False, max_sensor_age=5.0,
                           episode_steps=100_000)  # fmt: skip
    graph = GraphProcesses([spec], log_dir=tmp / obs)
    env = graph_environment()
    echo = subprocess.Popen(
        [sys.executable, str(HERE / "echo_node.py"), "--ros-args", "-r", "__ns:=/echo"],
        env=env, start_new_session=True,
    )  # fmt: skip
    graph.start()
    node = rclpy.create_node(f"world_{obs}")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    policy, reference = Target(node, "/dclaw"), Target(node, "/echo")
    try:
        layout = (ObsSpec.pixels((32, 32, 3), dclaw_valve.PROPRIO_DIM) if pixels
                  else ObsSpec.vector(dclaw_valve.STATE_DIM))  # fmt: skip
        weights = SACAgent(layout, 9, SACConfig(device="cpu")).policy_bytes(1)  # 2 x 256
        policy.policy.publish(messages.byte_array(weights))
        deadline = time.monotonic() + 60
        for tgt in (policy, reference):  # wait until both answer
            while True:
                try:
                    measure(ex, node, tgt, pixels, 0)
                    break
                except RuntimeError:
                    for r, code in graph.poll_dead():
                        raise RuntimeError(
                            f"policy node died ({code}): {graph.log_tail(r)}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise
        lat: dict[str, list[float]] = {"policy": [], "dds": []}
        batch = 100
        k = 1
        while len(lat["policy"]) < steps:
            for name, tgt in (("policy", policy), ("dds", reference)):
                for _ in range(batch):
                    lat[name].append(measure(ex, node, tgt, pixels, k))
                    k += 1
    finally:
        echo.send_signal(2)
        echo.wait(timeout=30)
        graph.stop()
        ex.shutdown()
        node.destroy_node()
    p, d = percentiles(lat["policy"]), percentiles(lat["dds"])
    log(f"{obs}: policy p50 {p['p50']:.0f} us p99 {p['p99']:.0f} us | dds p50 "
        f"{d['p50']:.0f} us p99 {d['p99']:.0f} us")  # fmt: skip
    return {
        "policy_p50_us": p["p50"], "policy_p99_us": p["p99"], "policy_max_us": p["max"],
        "dds_p50_us": d["p50"], "dds_p99_us": d["p99"], "dds_max_us": d["max"],
        "added_p99_us": p["p99"] - d["p99"], "added_p50_us": p["p50"] - d["p50"],
        "steps": len(lat["policy"]),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--tmp", default="/tmp/sac_ros_bench_latency")
    args = parser.parse_args()
    rclpy.init()
    try:
        state = run_variant("state", args.steps, Path(args.tmp))
        pixels = run_variant("pixels", args.steps, Path(args.tmp))
    finally:
        rclpy.shutdown()
    result = dict(state)
    result.update({f"pixels_{k}": v for k, v in pixels.items()})
    result["goal_added_p99_us"] = 1000
    result["goal_met"] = state["added_p99_us"] <= 1000
    emit(result)


if __name__ == "__main__":
    main()
