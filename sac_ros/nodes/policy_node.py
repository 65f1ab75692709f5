"""Policy node: sensors in, joint targets out, transitions to the learner.

Subscribes (relative names): ``joint_states``; per task ``valve/joint_states``,
``camera/image_32x32`` (pixels), ``imu`` (Minitaur); ``sac/reward``
(geometry_msgs/Vector3Stamped, see sac_ros.nodes.messages); ``sac/policy`` (safetensors
weights, transient local); ``sac/transitions_ack`` (the learner's acks, JSON).
Publishes: ``joint_position_controller/commands`` (Float64MultiArray, URDF joint order,
always inside the joint limits and rate limit), ``sac/transitions`` (safetensors batches,
see sac_ros.runtime.wire), ``sac/episode`` (Float64MultiArray [episode, return, length,
success, policy_version] for rqt_plot) and /diagnostics. Calls ``sac/reset`` at the end
of each episode.

Ticks on each new ``joint_states`` message in lockstep simulation (``tick:=lockstep``,
once every reading of that stamp and its reward are in; the stamps are the simulation's
time, so the node needs no /clock) or on a timer on hardware (``tick:=timer``,
``rate_hz``), using the latest readings if none is older than ``max_sensor_age``.
Transitions are sent every 0.1 s in batches, off the control path. The logic lives in
sac_ros.runtime.policy_runner.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, String, UInt8MultiArray
from std_srvs.srv import Trigger

from sac_ros.nodes import messages
from sac_ros.nodes.common import (
    COMMAND_QOS,
    EPISODE_QOS,
    ERROR,
    EVENT_QOS,
    POLICY_QOS,
    REWARD_QOS,
    SENSOR_QOS,
    TRANSITION_QOS,
    WARN,
    Diagnostics,
    declare,
    spin_node,
    spin_until,
    stamp_ns,
    stamp_seconds,
    steady_timer,
)
from sac_ros.robots import dclaw
from sac_ros.runtime.delivery import Ack, Outbox
from sac_ros.runtime.loop_timing import LoopTiming, percentiles_ms
from sac_ros.runtime.policy_runner import Phase, PolicyRunner, RewardInfo, Snapshot
from sac_ros.runtime.task_io import make_task_io
from sac_ros.runtime.wire import TransitionBatch, encode_transitions, stack_observations
from sac_ros.sac import ObsSpec, Policy, SmoothedNoise
from sac_ros.sac.atomic import write_json_atomic

EXPLORATION_STREAM = 2  # sub-stream of the node's seed for exploration


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        robot = declare(self, "robot", "dclaw", "Robot: dclaw or minitaur")
        obs = declare(self, "obs", "state", "Observation variant: state or pixels (D'Claw)")
        self.tick = declare(self, "tick", "lockstep", "lockstep (per reading) or timer")
        rate = declare(self, "rate_hz", 10.0, "Control rate in timer mode", lo=1.0, hi=500.0)
        self.max_age = declare(
            self, "max_sensor_age", 0.25, "Readings older than this (s) pause the step",
            lo=0.01, hi=5.0, read_only=False,
        )
        episode_steps = declare(self, "episode_steps", 80, "Steps per episode", lo=1, hi=100000)
        start_wait = declare(
            self, "start_wait_steps", 20,
            "Before an episode: steps to bring the robot to its start pose at most",
            lo=0, hi=100000,
        )  # fmt: skip
        deterministic = declare(
            self, "deterministic", False, "Evaluate: act with the mean action", read_only=False
        )
        smoothing = declare(
            self, "smoothing", 0.0, "Exploration smoothing: AR(1) coefficient of the noise",
            lo=0.0, hi=0.99, read_only=False,
        )
        capacity = declare(
            self, "outbox_capacity", 20000, "Transitions kept until the learner checkpoints",
            lo=100, hi=10_000_000,
        )
        self.send_batch = declare(
            self, "send_batch", 64, "Most transitions per message", lo=1, hi=4096, read_only=False
        )
        seed = declare(self, "seed", 0, "Seed of the exploration noise", lo=0, hi=2**31 - 1)
        self.max_backlog = declare(
            self, "max_learner_backlog", 0.0,
            "Lockstep: wait while the learner owes more updates than this (0 = never wait)",
            lo=0.0, hi=1e6, read_only=False,
        )
        self.stats_file = declare(
            self, "stats_file", "", "Where to write the final counters as JSON on shutdown"
        )
        self.drain_timeout = declare(
            self, "drain_timeout", 10.0, "On shutdown, wait this long for the learner (s)",
            lo=0.0, hi=600.0,
        )
        self.reset_patience = declare(
            self, "reset_patience", 120.0 if robot == "dclaw" else 900.0,
            "A sac/reset not answered after this long (s) is reported and asked again "
            "(longer than the reward node's reset_timeout: a person may be resetting)",
            lo=1.0, hi=7200.0,
        )  # fmt: skip
        self.period = 1.0 / rate
        if self.tick not in ("lockstep", "timer"):
            raise ValueError(f"tick must be lockstep or timer, got {self.tick!r}")

        self.io = make_task_io(robot, obs)
        self.spec = ObsSpec.from_json(self.io.layout)
        self.session = uuid.uuid4().hex[:12]
        self.outbox = Outbox(self.session, capacity=capacity)
        # Exploration draws from a stream of its own (the graph seeds a robot's nodes alike).
        rng = np.random.default_rng([seed, EXPLORATION_STREAM])
        self.runner = PolicyRunner(
            self.io,
            self.outbox,
            episode_steps=episode_steps,
            deterministic=deterministic,
            noise=SmoothedNoise(self.io.action_dim, smoothing, rng),
            rng=rng,
            # Lockstep, episodes ended by the time limit only: act on a reading at once;
            # its reward (computed meanwhile by the reward node) completes the transition.
            defer_rewards=self.tick == "lockstep" and not self.io.can_terminate,
            start_wait_steps=start_wait,
            period=self.period if self.tick == "timer" else None,
        )
        self._episodes_announced = 0
        self.policies_received = 0
        self.policies_rejected = 0
        self.rejected_inputs = 0
        self.last_rejection = ""  # "<input>: <reason>" of the latest rejection (diagnostics)
        self.paced_waits = 0
        self.commands_resent = 0
        self._last_command: Float64MultiArray | None = None
        self._command_unmatched = False  # no subscriber matched when it was sent: lost
        self._instant_repeats = 0  # times the instant acted on came back since (lockstep)
        self.waiting = "first readings"  # what the next step waits for (diagnostics)
        self._latest: dict[str, tuple[float, object]] = {}
        self._reward: RewardInfo | None = None
        self._done_stamp = -1.0
        self._acted_at = -math.inf  # timer: clock time the last action went out (s)
        # Timer: since when a step found no reward (None: rewards are coming). The robot
        # is held, not driven, until one newer than that arrives: without rewards nothing
        # ends an episode (a fall, the time limit), and nothing of it could be learnt.
        self._reward_missing_since: float | None = None
        self._reset_future = None
        self._reset_lost = False  # the sac/reset request went out with no server to hear it
        self._reset_asked_at = 0.0  # monotonic time of the last sac/reset request
        self._reset_retry = False  # a failed reset, asked again by _check_reset
        self._losses_seen = (0, 0)  # outbox (dropped, evicted_unconfirmed) last reported
        self._closing = False
        self._learner_seen = False  # a learner subscribed to sac/transitions at some point
        self.timing = LoopTiming()  # control steps within an episode (resets excluded)
        self.reset_durations: deque[float] = deque(maxlen=200)  # sac/reset call to reply, s
        self.reset_steps = 0  # steps held between episodes (reset, start pose)
        self._reset_since: float | None = None

        self.pub_cmd = self.create_publisher(
            Float64MultiArray, "joint_position_controller/commands", COMMAND_QOS
        )
        self.pub_tr = self.create_publisher(UInt8MultiArray, "sac/transitions", TRANSITION_QOS)
        self.pub_episode = self.create_publisher(Float64MultiArray, "sac/episode", EPISODE_QOS)
        self.create_subscription(JointState, "joint_states", self._on_joints, SENSOR_QOS)
        for topic, kind in self.io.extra_topics.items():
            msg_type = {"valve": JointState, "image": Image, "imu": Imu}[kind]
            self.create_subscription(
                msg_type, topic, lambda m, t=topic: self._on_extra(t, m), SENSOR_QOS
            )
        self.create_subscription(Vector3Stamped, "sac/reward", self._on_reward, REWARD_QOS)
        self.create_subscription(UInt8MultiArray, "sac/policy", self._on_policy, POLICY_QOS)
        self.create_subscription(String, "sac/transitions_ack", self._on_ack, EVENT_QOS)
        self.reset_client = self.create_client(Trigger, "sac/reset")
        self.diag = Diagnostics(self, "policy", hardware_id=robot)
        self._start_timeouts_seen = 0
        self.diag.values_from(self._diag_values)
        self.add_on_set_parameters_callback(self._on_params)
        self.add_post_set_parameters_callback(self._after_params)
        steady_timer(self, 0.1, self._flush)
        steady_timer(self, 0.5, self._check_reset)
        if self.tick == "timer":
            steady_timer(self, self.period, self._try_step)

    # --- parameters -----------------------------------------------------------------
    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        try:
            self._apply_params(params)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_params(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "deterministic":
                self.runner.deterministic = bool(p.value)
            elif p.name == "smoothing":
                self.runner.noise.coefficient = float(p.value)
            elif p.name == "max_sensor_age":
                self.max_age = float(p.value)
            elif p.name == "send_batch":
                self.send_batch = int(p.value)
            elif p.name == "max_learner_backlog":
                self.max_backlog = float(p.value)

    def _after_params(self, params: list[Parameter]) -> None:
        """Lockstep: a step that waited for the learner may go once its limit is raised
        (else it would wait for the next ack or the simulator's stall timeout)."""
        if self.tick == "lockstep" and any(p.name == "max_learner_backlog" for p in params):
            self._try_step()

    # --- inputs ---------------------------------------------------------------------
    def _reject(self, key: str, exc: Exception) -> None:
        self.rejected_inputs += 1
        self.last_rejection = f"{key}: {exc}"
        self.diag.problem(key, WARN, self.last_rejection)
        self.get_logger().warning(self.last_rejection, throttle_duration_sec=2.0)

    def _on_joints(self, msg: JointState) -> None:
        stamp = stamp_seconds(msg.header.stamp)
        self._latest["joint_states"] = (stamp, msg)
        if self.tick != "lockstep":
            return
        if stamp == self._done_stamp and self._last_command is not None:
            # The simulator sent this instant again: its stall timer ran before our
            # command reached it. The command may still be on its way (rclpy runs a ready
            # timer before a ready subscription, and the step follows at once): sending it
            # again then would step the simulation twice for one action. Resend only a
            # command that is lost for sure: sent with no subscriber matched (discovery),
            # or not answered by the time this instant came back a second time.
            self._instant_repeats += 1
            if self._command_unmatched or self._instant_repeats >= 2:
                self.commands_resent += 1
                self._send(self._last_command)
            return
        self._try_step()

    def _on_extra(self, topic: str, msg: object) -> None:
        self._latest[topic] = (stamp_seconds(msg.header.stamp), msg)  # type: ignore[attr-defined]
        if self.tick == "lockstep":
            self._try_step()

    def _on_reward(self, msg: Vector3Stamped) -> None:
        try:
            stamp, reward, terminated, success = messages.read_reward(msg)
        except ValueError as exc:
            self._reject("reward", exc)
            return
        info = RewardInfo(stamp, reward, terminated, success)
        if self.runner.defer_rewards:
            try:
                self.runner.add_reward(info)
            except ValueError as exc:
                self._reject("reward", exc)
            self._announce_episodes()
            self._try_step()  # a step may have waited for this reward
            return
        self._reward = info
        if self.tick == "lockstep":
            self._try_step()

    def _on_policy(self, msg: UInt8MultiArray) -> None:
        try:
            policy = Policy.from_bytes(
                messages.read_bytes(msg),
                expected_spec=self.spec,
                expected_action_dim=self.io.action_dim,
            )
        except ValueError as exc:  # PolicyFormatError is a ValueError
            self.policies_rejected += 1
            self._reject("policy weights", exc)
            return
        self.policies_received += 1
        self.runner.set_actor(policy)
        self.diag.clear("policy weights")

    def _on_ack(self, msg: String) -> None:
        try:
            ack = Ack.from_json(msg.data)
        except ValueError as exc:
            self._reject("ack", exc)
            return
        behind = self._learner_behind()
        self.outbox.on_ack(ack, time.monotonic())
        if behind and not self._learner_behind():
            self._try_step()

    # --- the control step -----------------------------------------------------------
    def _snapshot(self) -> Snapshot | None:
        """The readings of one instant, or None while some are still on their way."""
        if "joint_states" not in self._latest:
            self.waiting = "joint_states"
            return None
        stamp, js = self._latest["joint_states"]
        # Lockstep: readings of one instant share its stamp, which is "now" (no /clock
        # needed). Timer mode (hardware): readings must be younger than max_sensor_age,
        # checked before waiting for a newer one: readings that stopped coming are an error.
        now = stamp if self.tick == "lockstep" else self._now()
        messages.check_fresh("joint_states", stamp, now, self.max_age)
        if stamp <= self._done_stamp:
            self.waiting = f"joint_states newer than {self._done_stamp:.3f}"
            return None
        extras = {}
        for topic in self.io.extra_topics:
            if topic not in self._latest:
                return None
            t, msg = self._latest[topic]
            if self.tick == "lockstep" and t != stamp:
                self.waiting = f"{topic} at {stamp:.3f} (latest {t:.3f})"
                return None  # that reading of this instant has not arrived yet
            if self.tick == "timer":
                messages.check_fresh(topic, t, now, self.max_age)
            extras[topic] = msg
        pos, vel = messages.read_joint_state(js, self.io.joint_names)
        parsed = {
            kind: _parse_extra(kind, extras[topic]) for topic, kind in self.io.extra_topics.items()
        }
        return Snapshot(stamp, pos, vel, parsed)

    def _reward_for(self, stamp: float) -> RewardInfo | None:
        r = self._reward
        if r is None:
            return None
        if self.tick == "lockstep":
            return r if r.stamp == stamp else None
        # Timer: a reward computed from a reading taken after the pending action went out,
        # and each reward completes one step only.
        fresh = r.stamp > max(self._done_stamp, self._acted_at) and r.stamp >= stamp - self.max_age
        return r if fresh else None

    def _learner_behind(self) -> bool:
        """Lockstep simulation waits for a learner that fell behind its update ratio, so
        simulated training keeps the paper's gradient steps per environment step; and at
        the start it waits for the learner to appear at all. (A learner that goes away
        later is not waited for: the robot keeps acting and its transitions are kept.)"""
        if self.tick != "lockstep" or self.max_backlog <= 0:
            return False
        if self.pub_tr.get_subscription_count() == 0:
            return not self._learner_seen
        self._learner_seen = True
        return self.outbox.learner_backlog > self.max_backlog

    def _try_step(self) -> None:
        if self._learner_behind():
            self.waiting = "the learner (update backlog)"
            self.paced_waits += 1
            return  # _on_ack retries when the learner catches up
        if self.runner.defer_rewards and self.runner.awaiting_rewards:
            # One reward in flight at most: the reward node runs beside the policy, never
            # more than a step behind it (or its best-effort readings would overflow).
            self.waiting = "sac/reward of the previous step"
            return
        try:
            snap = self._snapshot()
        except ValueError as exc:
            self._reject("sensors", exc)
            self._publish(self.runner.skip(None))
            return
        if snap is None:
            return
        needs_reward = (
            self.runner.phase is Phase.RUNNING
            and self.runner.has_pending
            and not self.runner.defer_rewards
        )
        reward = self._reward_for(snap.stamp) if needs_reward else None
        if reward is not None and self.tick == "timer":
            self._reward = None  # used: the next step needs a newer one
        if needs_reward and reward is None:
            if self.tick == "lockstep":
                latest = self._reward.stamp if self._reward is not None else None
                self.waiting = f"sac/reward at {snap.stamp:.3f} (latest {latest})"
                return  # wait for this instant's reward
            self._reject("reward", ValueError("no recent reward for this step: holding"))
            self._reward_missing_since = self._now()
            self._publish(self.runner.skip(snap))
            return
        if self._rewards_stopped():
            self.waiting = "sac/reward (none came for the last step): holding"
            self._publish(self.runner.skip(snap))
            return
        self._done_stamp = snap.stamp
        self.waiting = ""
        acting = self.runner.phase is Phase.RUNNING
        if acting:
            self.timing.begin()
        try:
            result = self.runner.step(snap, reward)
        except ValueError as exc:
            self._reject("step", exc)
            self._publish(self.runner.skip(snap))
            return
        self._publish(result.targets)  # transitions go out on the flush timer, not here
        if result.acted and self.tick == "timer":
            self._acted_at = self._now()
        if self.runner.start_timeouts != self._start_timeouts_seen:
            self._start_timeouts_seen = self.runner.start_timeouts
            text = (f"not at the start pose after {self.runner.start_wait_steps} steps, "
                    f"going on: {self.runner.start_miss}")  # fmt: skip
            self.diag.problem("start pose", WARN, text, hold=10.0)
            self.get_logger().warning(text, throttle_duration_sec=2.0)
        # Held between episodes: while the world is reset, and until the robot is at its
        # start pose.
        self.reset_steps += not acting and not result.acted
        if acting:
            self.timing.end()
        if result.episode_over:
            self.timing.interrupt()  # the reset's pause is not a late step
            self._announce_episodes()
        if result.reset_now:
            self._request_reset()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _rewards_stopped(self) -> bool:
        """Timer, within an episode: a step found no reward, and none has come since."""
        since = self._reward_missing_since
        if since is None or self.runner.phase is not Phase.RUNNING:
            self._reward_missing_since = None
            return False
        if self._reward is not None and self._reward.stamp > since:
            self._reward_missing_since = None
            self.diag.clear("reward")
            return False
        self.diag.problem("reward", ERROR, "no rewards: the robot is held", hold=1.0)
        return True

    def _publish(self, targets: np.ndarray | None) -> None:
        if targets is not None:
            # Lockstep: the command names the instant it answers (the newest reading's), so
            # a simulator that has stepped from that instant already drops a resend.
            instant = None
            if self.tick == "lockstep" and "joint_states" in self._latest:
                instant = stamp_ns(self._latest["joint_states"][1].header.stamp)
            self._last_command = messages.command(targets, instant)
            self._send(self._last_command)

    def _send(self, command: Float64MultiArray) -> None:
        self._instant_repeats = 0
        self._command_unmatched = self.pub_cmd.get_subscription_count() == 0
        self.pub_cmd.publish(command)

    def _announce_episodes(self) -> None:
        """sac/episode for each finished episode once all its rewards are in."""
        settled = self.runner.settled_count()
        for ep in self.runner.finished[self._episodes_announced : settled]:
            self.pub_episode.publish(  # the version that acted, not the one held now
                messages.float_array(
                    np.array([ep.episode, ep.ret, ep.steps, float(ep.success), ep.version])
                )
            )
        self._episodes_announced = max(self._episodes_announced, settled)

    def _request_reset(self) -> None:
        if not self.reset_client.service_is_ready():
            self.get_logger().warning(
                "sac/reset is not available; waiting", throttle_duration_sec=5
            )
        self._reset_since = time.monotonic()
        self._call_reset()

    def _call_reset(self) -> None:
        # A request sent while no server is there is lost (DDS keeps no request for a
        # service that appears later): _check_reset sends it again once one is.
        self._reset_lost = not self.reset_client.service_is_ready()
        self._reset_asked_at = time.monotonic()
        self._reset_future = self.reset_client.call_async(Trigger.Request())
        self._reset_future.add_done_callback(self._on_reset_done)

    def _check_reset(self) -> None:
        """A reset under way whose server was away (not started yet, or restarted while
        it ran) is asked again once the server is back; one unanswered for
        ``reset_patience`` (its reply lost, or the server stuck) is reported and asked
        again: the robot is held meanwhile, and the operator must know why."""
        if self._closing:
            return
        if self._reset_retry:
            self._reset_retry = False
            self._call_reset()
            return
        future = self._reset_future
        if future is None or future.done():
            return
        if not self.reset_client.service_is_ready():
            self._reset_lost = True
            self.diag.problem("reset", WARN, "sac/reset is not available; waiting", hold=1.0)
            return
        if self._reset_lost:
            self.get_logger().warning("sac/reset is back: asking for the reset again")
            self.reset_client.remove_pending_request(future)
            self._call_reset()
            return
        waited = time.monotonic() - self._reset_asked_at
        if waited > self.reset_patience:
            text = f"sac/reset has not answered in {waited:.0f} s: asking again"
            self.diag.problem("reset", ERROR, text, hold=self.reset_patience)
            self.get_logger().error(text)
            self.reset_client.remove_pending_request(future)
            self._call_reset()

    def _on_reset_done(self, future: object) -> None:
        if self._closing:
            return  # shutting down: the graph stops its resets too; no retry, no error
        try:
            res = future.result()  # type: ignore[attr-defined]
        except Exception as exc:
            res, err = None, str(exc)
        else:
            err = "" if res.success else (res.message or "the reset failed (no reason given)")
        if err:
            self._reject("reset", ValueError(f"reset failed: {err}; retrying"))
            self._reset_future, self._reset_retry = None, True  # _check_reset: in <= 0.5 s
            return
        if self._reset_since is not None:
            self.reset_durations.append(time.monotonic() - self._reset_since)
            self._reset_since = None
        self.diag.clear("reset")
        self.runner.reset_done()

    # --- transitions ----------------------------------------------------------------
    def _flush(self) -> None:
        self._report_losses()
        if self.pub_tr.get_subscription_count() == 0:
            return  # no learner: keep them (bounded) until one appears
        self.outbox.poll(time.monotonic())
        while True:
            items = self.outbox.take(self.send_batch)
            if not items:
                return
            trs = [t for _, t in items]
            batch = TransitionBatch(
                session=self.session,
                layout=self.io.layout,
                first_retained=self.outbox.first_retained,
                obs=stack_observations([t.obs for t in trs]),
                action=np.stack([t.action for t in trs]),
                reward=np.array([t.reward for t in trs], dtype=np.float32),
                next_obs=stack_observations([t.next_obs for t in trs]),
                terminated=np.array([t.terminated for t in trs], dtype=np.uint8),
                truncated=np.array([t.truncated for t in trs], dtype=np.uint8),
                seq=np.array([s for s, _ in items], dtype=np.int64),
                episode=np.array([t.episode for t in trs], dtype=np.int64),
                step=np.array([t.step for t in trs], dtype=np.int64),
            )
            self.pub_tr.publish(messages.byte_array(encode_transitions(batch)))

    def close(self) -> None:
        """Shutdown: send what is left and wait (bounded) until the learner has it."""
        self._closing = True
        self._flush()
        delivered = spin_until(
            self,
            lambda: self.outbox.delivered(time.monotonic())
            or self.pub_tr.get_subscription_count() == 0,
            self.drain_timeout,
        )
        stats = self._diag_values()
        stats["delivered_on_shutdown"] = delivered
        stats["learner_received"] = self.outbox.learner_received + 1
        stats["versions_used"] = sorted(self.runner.versions_used)
        stats["episodes_detail"] = [
            {"episode": e.episode, "return": e.ret, "steps": e.steps, "success": e.success}
            for e in self.runner.finished
        ]
        if self.stats_file:
            Path(self.stats_file).parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(Path(self.stats_file), stats)
        self.get_logger().info(
            f"stopped: {self.outbox.next_seq} transitions, learner has "
            f"{self.outbox.learner_received + 1}, dropped {self.outbox.dropped}"
        )

    def _report_losses(self) -> None:
        """The outbox let go of transitions: never received (lost), or received but not yet
        in a learner checkpoint (lost if the learner dies before its next one)."""
        o = self.outbox
        seen, self._losses_seen = self._losses_seen, (o.dropped, o.evicted_unconfirmed)
        if self._losses_seen == seen:
            return  # reported when it happened (held 10 s)
        if o.dropped > seen[0]:
            self.diag.problem("transitions", WARN, f"{o.dropped} transitions dropped before "
                              "the learner had them (outbox_capacity)", hold=10.0)  # fmt: skip
        elif o.evicted_unconfirmed:
            self.diag.problem("transitions", WARN, f"{o.evicted_unconfirmed} transitions let "
                              "go before a learner checkpoint held them: lost if the learner "
                              "dies before its next one (outbox_capacity)", hold=10.0)  # fmt: skip

    def _diag_values(self) -> dict[str, object]:
        r = self.runner
        return {
            "phase": r.phase.value,
            "waiting_for": self.waiting,
            "episodes": len(r.finished),
            "policy_version": r.actor.version if r.actor is not None else -1,
            "policies_received": self.policies_received,
            "policies_rejected": self.policies_rejected,
            "transitions_published": self.outbox.next_seq,
            "transitions_unsent": self.outbox.unsent,
            "transitions_retained": self.outbox.retained,
            "transitions_dropped": self.outbox.dropped,
            "transitions_unconfirmed_evicted": self.outbox.evicted_unconfirmed,
            "transitions_resent": self.outbox.resent,
            "rejected_inputs": self.rejected_inputs,
            "last_rejection": self.last_rejection,
            "skipped_steps": r.skipped_steps,
            "transitions_discarded": r.discarded_transitions,
            "awaiting_rewards": r.awaiting_rewards,
            "paced_waits": self.paced_waits,
            "commands_resent": self.commands_resent,
            "learner_backlog": round(self.outbox.learner_backlog, 1),
            **self.timing.values("step", "step_period"),
            "reset_ms_p50": (percentiles_ms(self.reset_durations) or (None,))[0],
            "reset_steps": self.reset_steps,
            "start_timeouts": r.start_timeouts,
            "late_steps": round(self.timing.late_fraction(self.period), 4),
        }


def _parse_extra(kind: str, msg: object) -> np.ndarray:
    if kind == "valve":  # the angle: no observation uses the valve's velocity
        pos, _ = messages.read_joint_state(msg, [dclaw.VALVE_JOINT], need_velocity=False)  # type: ignore[arg-type]
        return pos
    if kind == "image":
        return messages.read_image(msg)  # type: ignore[arg-type]
    if kind == "imu":
        return np.concatenate(messages.read_imu(msg))  # type: ignore[arg-type]
    raise ValueError(f"unknown reading kind {kind!r}")


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
