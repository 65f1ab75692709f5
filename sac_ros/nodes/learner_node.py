"""Learner node: transitions in, SAC updates, policy weights, checkpoints and acks out.

Wiring only; the work is :class:`sac_ros.runtime.learner.LearnerCore`.

For each robot namespace ``ns`` in ``robot_namespaces`` (default ``[""]``: the node's own
namespace; names are relative unless they start with ``/``):

* subscribes ``{ns}/sac/transitions`` (std_msgs/UInt8MultiArray, safetensors batches of
  :mod:`sac_ros.runtime.wire`, TRANSITION_QOS);
* publishes ``{ns}/sac/policy`` (std_msgs/UInt8MultiArray holding the actor's safetensors,
  POLICY_QOS: reliable, transient local, depth 1) every ``publish_every`` updates;
* publishes ``{ns}/sac/transitions_ack`` (std_msgs/String, JSON of
  :class:`sac_ros.runtime.delivery.Ack`, EVENT_QOS) at ``ack_rate_hz`` and after each
  checkpoint.

Statistics: ``sac/learner_stats`` (std_msgs/Float64MultiArray, about 1 Hz). One dimension
whose ``label`` lists the element names, comma-separated, in the fixed order of
:data:`STATS_FIELDS`: plot e.g. ``/sac/learner_stats/data[4]`` (alpha) in rqt_plot.
/diagnostics carries the same numbers, per-stream counts and warnings (bad messages,
failed checkpoints, stopped training).

Live parameters (rqt_reconfigure, ``ros2 param set``): utd_ratio, paused,
checkpoint_every, publish_every. On SIGINT/SIGTERM the node stops training, writes a final
checkpoint and exits 0; ``resume:=true`` continues from ``run_dir/checkpoint``.
"""

from __future__ import annotations

import array
from pathlib import Path

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String, UInt8MultiArray

from sac_ros.nodes.common import (
    ERROR,
    EVENT_QOS,
    POLICY_QOS,
    TRANSITION_QOS,
    WARN,
    Diagnostics,
    declare,
    spin_node,
)
from sac_ros.runtime.learner import LearnerCore, LearnerSettings, task_layout
from sac_ros.sac import SACConfig

STATS_FIELDS = (
    "updates",
    "env_steps",
    "buffer_size",
    "policy_version",
    "alpha",
    "entropy",
    "critic_loss",
    "actor_loss",
    "q_mean",
    "updates_per_s",
    "utd_ratio",
    "duplicates",
    "gaps",
    "rejected",
    "checkpoints",
)


def topic(ns: str, name: str) -> str:
    """``name`` under robot namespace ``ns`` ("" = the node's own namespace, "/" = the
    root)."""
    if ns.strip() == "/":
        return f"/{name}"
    ns = ns.rstrip("/")
    return f"{ns}/{name}" if ns else name


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        obs = declare(self, "obs", "state", "Observation: state or pixels")
        obs_dim = declare(
            self, "obs_dim", 0, "Observation (or proprio) size; 0 = from the task",
            lo=0, hi=100000,
        )
        action_dim = declare(
            self, "action_dim", 0, "Action size; 0 = from the task", lo=0, hi=1000
        )
        namespaces = declare(
            self, "robot_namespaces", [""], "Robots feeding this learner ('' = own namespace)"
        )
        run_dir = declare(self, "run_dir", "", "Checkpoints and logs; '' = runs/<robot>_<obs>")
        resume = declare(self, "resume", False, "Continue from run_dir/checkpoint")
        seed = declare(self, "seed", 0, "Seed of the networks and the replay sampling",
                       lo=0, hi=2**31 - 1)  # fmt: skip
        warmup = declare(self, "warmup", 1000, "Transitions before the first update",
                         lo=0, hi=10_000_000)  # fmt: skip
        batch_size = declare(self, "batch_size", 256, "Minibatch size", lo=1, hi=65536)
        buffer_size = declare(self, "buffer_size", 1_000_000, "Replay capacity (transitions)",
                              lo=2, hi=100_000_000)  # fmt: skip
        hidden = declare(self, "hidden", [256, 256], "Hidden layer widths of every network")
        lr = declare(self, "lr", 3e-4, "Adam learning rate", lo=1e-6, hi=1e-1)
        gamma = declare(self, "gamma", 0.99, "Discount", lo=0.0, hi=1.0)
        device = declare(self, "device", "auto", "Torch device: auto, cpu, cuda...")
        threads = declare(self, "torch_threads", 0, "Torch CPU threads; 0 = torch default",
                          lo=0, hi=256)  # fmt: skip
        utd = declare(self, "utd_ratio", 1.0, "Gradient updates per transition received",
                      lo=0.01, hi=64.0, read_only=False)  # fmt: skip
        paused = declare(self, "paused", False, "Stop training (data still comes in)",
                         read_only=False)  # fmt: skip
        ckpt_every = declare(self, "checkpoint_every", 300.0, "Seconds between checkpoints",
                             lo=1.0, hi=86400.0, read_only=False)  # fmt: skip
        publish_every = declare(self, "publish_every", 100, "Updates between policy messages",
                                lo=1, hi=1_000_000, read_only=False)  # fmt: skip
        log_every = declare(self, "log_every", 100, "Updates between TensorBoard/CSV rows",
                            lo=1, hi=1_000_000)  # fmt: skip
        # At least one ack per second: a sender the learner stays silent about for
        # Outbox.silence_after (5 s) sends its unconfirmed transitions again.
        ack_rate = declare(self, "ack_rate_hz", 5.0, "Acks per second per robot",
                           lo=1.0, hi=100.0)  # fmt: skip

        if threads:
            import torch

            torch.set_num_threads(int(threads))
        spec, n_act = task_layout(robot, obs, int(obs_dim), int(action_dim))
        config = SACConfig(
            hidden=tuple(int(h) for h in hidden),
            lr=float(lr),
            gamma=float(gamma),
            batch_size=int(batch_size),
            buffer_size=int(buffer_size),
            warmup_steps=int(warmup),
            updates_per_step=float(utd),
            device=str(device),
            seed=int(seed),
        )
        settings = LearnerSettings(
            run_dir=Path(run_dir or f"runs/{robot}_{obs}").expanduser(),
            resume=bool(resume),
            publish_every=int(publish_every),
            checkpoint_every=float(ckpt_every),
            log_every=int(log_every),
            paused=bool(paused),
        )
        self.namespaces = [str(ns) for ns in namespaces] or [""]
        # Compared as the topics they name: "r1" and "r1/" (or "/r1" from the root
        # namespace) are one robot, and two subscriptions would store its data twice.
        resolved = [self.resolve_topic_name(topic(ns, "sac/transitions")) for ns in self.namespaces]
        if len(set(resolved)) != len(resolved):
            raise ValueError(
                f"robot_namespaces has duplicates: {self.namespaces} name the topics {resolved}"
            )
        self.policy_pubs = [
            self.create_publisher(UInt8MultiArray, topic(ns, "sac/policy"), POLICY_QOS)
            for ns in self.namespaces
        ]
        self.ack_pubs = {
            ns: self.create_publisher(String, topic(ns, "sac/transitions_ack"), EVENT_QOS)
            for ns in self.namespaces
        }
        self.stats_pub = self.create_publisher(Float64MultiArray, "sac/learner_stats", 10)
        self.core = LearnerCore(
            spec,
            n_act,
            config,
            settings,
            on_policy=self._publish_policy,
            on_checkpoint=self._publish_acks,
            log=self.get_logger().info,
        )
        for ns in self.namespaces:
            self.create_subscription(
                UInt8MultiArray,
                topic(ns, "sac/transitions"),
                lambda msg, ns=ns: self._on_transitions(ns, msg),
                TRANSITION_QOS,
            )
        self.diag = Diagnostics(self, "learner", hardware_id=robot)
        self.diag.values_from(self._diag_values)
        self.add_on_set_parameters_callback(self._on_params)
        # Wall-clock timers: acks must flow even when use_sim_time is set and /clock is not.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / ack_rate, self._publish_acks, clock=steady)
        self.create_timer(1.0, self._publish_stats, clock=steady)
        self.get_logger().info(
            f"learner {self.core.session}: {spec.to_json()}, {n_act} actions, "
            f"robots {self.namespaces}, run_dir {settings.run_dir}"
        )
        self.core.start()

    # --- inputs -----------------------------------------------------------------------
    def _on_transitions(self, ns: str, msg: UInt8MultiArray) -> None:
        try:
            self.core.ingest(ns, bytes(msg.data))
        except ValueError as err:
            text = f"bad transitions on {topic(ns, 'sac/transitions')!r}: {err}"
            self.get_logger().warning(text, throttle_duration_sec=5.0)
            self.diag.problem("transitions", WARN, text)

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        try:
            for p in params:
                if p.name == "utd_ratio":
                    self.core.set_utd_ratio(float(p.value))
                elif p.name == "paused":
                    self.core.set_paused(bool(p.value))
                elif p.name == "checkpoint_every":
                    self.core.set_checkpoint_every(float(p.value))
                elif p.name == "publish_every":
                    self.core.set_publish_every(int(p.value))
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    # --- outputs ----------------------------------------------------------------------
    def _publish_policy(self, version: int, data: bytes) -> None:
        msg = UInt8MultiArray()
        msg.data = array.array("B", data)
        for pub in self.policy_pubs:
            pub.publish(msg)

    def _publish_acks(self) -> None:
        for ns, pub in self.ack_pubs.items():
            for ack in self.core.acks(ns):
                pub.publish(String(data=ack.to_json()))

    def _publish_stats(self) -> None:
        stats = self.core.stats()
        msg = Float64MultiArray()
        msg.layout.dim = [
            MultiArrayDimension(label=",".join(STATS_FIELDS), size=len(STATS_FIELDS), stride=1)
        ]
        msg.data = [float(stats[k]) for k in STATS_FIELDS]
        self.stats_pub.publish(msg)

    def _diag_values(self) -> dict[str, object]:
        core = self.core
        stats = core.stats()
        if core.train_error:
            self.diag.problem("training", ERROR, core.train_error)
        if core.checkpoint_error:
            self.diag.problem("checkpoint", ERROR, core.checkpoint_error)
        if core.log_error:
            self.diag.problem("stats log", WARN, core.log_error)
        if stats["lost"] > 0:
            self.diag.problem(
                "lost", WARN, f"{stats['lost']:.0f} transitions lost: a sender let them go "
                "before they arrived (outbox_capacity too small for the checkpoint interval?)"
            )
        values: dict[str, object] = {k: f"{v:.6g}" for k, v in stats.items()}
        for ns in self.namespaces:
            values[f"received[{ns or '~'}]"] = core.received.get(ns, 0)
        values["session"] = core.session
        values["last_rejection"] = core.last_error
        return values

    # --- shutdown ---------------------------------------------------------------------
    def close(self) -> None:
        """Stop the trainer and write the final checkpoint (spin_node calls this)."""
        self.core.close()


def main(args: list[str] | None = None) -> None:
    spin_node(LearnerNode, args)


if __name__ == "__main__":
    main()
