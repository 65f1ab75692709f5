"""The policy node's logic without DDS: episodes, pairing, safety, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_ros.robots import dclaw, minitaur
from sac_ros.runtime.delivery import Outbox
from sac_ros.runtime.policy_runner import Phase, PolicyRunner, RewardInfo, Snapshot
from sac_ros.runtime.task_io import DClawValveIO, make_task_io
from sac_ros.sac import ObsSpec, Policy, SACAgent, SACConfig, SmoothedNoise
from sac_ros.tasks import dclaw_valve, minitaur_walk

IO = DClawValveIO(pixels=False)


def _snap(
    t: float, q: np.ndarray | None = None, valve: float = 0.5, qd: np.ndarray | None = None
) -> Snapshot:
    q = dclaw.NOMINAL_POSE.copy() if q is None else q
    qd = np.zeros(9) if qd is None else qd
    return Snapshot(t, q, qd, {"valve": np.array([valve, 0.0])})


def _policy(spec: ObsSpec = ObsSpec.vector(dclaw_valve.STATE_DIM), version: int = 3) -> Policy:
    agent = SACAgent(spec, 9, SACConfig(hidden=(32, 32), device="cpu"))
    return Policy.from_bytes(agent.policy_bytes(version), spec, 9)


def _runner(steps: int = 5, **kw) -> PolicyRunner:
    rng = np.random.default_rng(0)
    return PolicyRunner(
        IO, Outbox("s", 1000), episode_steps=steps, noise=SmoothedNoise(9, 0.5, rng), rng=rng, **kw
    )


def test_episode_pairs_each_step_with_its_reward_and_truncates():
    runner = _runner(steps=3)
    runner.set_actor(_policy())
    out = runner.step(_snap(0.0), None)
    assert out.acted and out.transition is None
    for k in range(1, 3):
        out = runner.step(_snap(0.1 * k), RewardInfo(0.1 * k, -1.0 * k, False, False))
        assert out.transition.reward == -1.0 * k and not out.transition.truncated
    out = runner.step(_snap(0.3), RewardInfo(0.3, -3.0, False, True))
    assert out.episode_over and out.transition.truncated and not out.transition.terminated
    assert runner.phase is Phase.RESETTING
    assert runner.finished[-1].ret == -6.0 and runner.finished[-1].success
    assert runner.outbox.next_seq == 3
    # While resetting the claw moves towards its safe pose and nothing is recorded.
    hold = runner.step(_snap(0.4, q=np.zeros(9)), None)
    assert not hold.acted and np.all(np.abs(hold.targets) <= dclaw.LIMITS.max_velocity * 0.1)
    runner.reset_done()
    runner.step(_snap(0.5), None)
    assert runner.phase is Phase.RUNNING and runner.current.episode == 1
    assert runner.versions_used == {3}
    runner.set_actor(_policy(version=4))  # arrives after the first episode ended
    assert runner.finished[-1].version == 3  # sac/episode names the version that acted


def test_termination_is_not_truncation():
    runner = _runner(steps=10)
    runner.set_actor(_policy())
    runner.step(_snap(0.0), None)
    out = runner.step(_snap(0.1), RewardInfo(0.1, 0.0, True, False))
    assert out.transition.terminated and not out.transition.truncated and out.episode_over


def test_bad_input_breaks_the_chain_and_holds():
    runner = _runner()
    runner.set_actor(_policy())
    acted = runner.step(_snap(0.0), None).targets
    bad = _snap(0.1)
    bad.extras["valve"] = np.array([np.nan, 0.0])
    with pytest.raises(ValueError, match="finite"):
        runner.step(bad, RewardInfo(0.1, 0.0, False, False))
    targets = runner.skip(bad)
    np.testing.assert_allclose(targets, acted)  # held where the servos were sent
    assert runner.discarded_transitions == 1 and not runner.has_pending
    out = runner.step(_snap(0.2), None)  # a new chain: no reward needed, nothing published
    assert out.acted and out.transition is None and runner.outbox.next_seq == 0


def test_policy_for_another_layout_is_refused():
    agent = SACAgent(ObsSpec.vector(7), 9, SACConfig(hidden=(32, 32), device="cpu"))
    with pytest.raises(ValueError):
        Policy.from_bytes(agent.policy_bytes(1), ObsSpec.from_json(IO.layout), 9)


def test_no_policy_acts_randomly_when_training_and_refuses_when_evaluating():
    runner = _runner()
    assert runner.step(_snap(0.0), None).acted
    evaluating = _runner(deterministic=True)
    with pytest.raises(ValueError, match="no policy"):
        evaluating.step(_snap(0.0), None)


class HostileActor:
    """Stands in for a policy gone wrong: returns whatever hypothesis makes up."""

    version = 9

    def __init__(self, action: np.ndarray) -> None:
        self.action = action

    def act(self, obs, deterministic, latent):
        return self.action


@settings(max_examples=200, deadline=None)
@given(
    action=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=9, max_size=9
    ),
    q=st.lists(st.floats(-3.5, 3.5), min_size=9, max_size=9),
)
def test_targets_stay_in_limits_whatever_the_policy_says(action, q):
    runner = _runner()
    runner.set_actor(HostileActor(np.array(action, dtype=np.float32)))
    snap = _snap(0.0, q=np.array(q))
    try:
        targets = runner.step(snap, None).targets
    except ValueError:
        targets = runner.skip(snap)  # the node's path for a rejected step
    here = dclaw.LIMITS.clip(np.array(q))
    assert np.all(targets >= dclaw.LIMITS.lower) and np.all(targets <= dclaw.LIMITS.upper)
    assert np.all(np.abs(targets - here) <= dclaw.LIMITS.max_velocity * IO.dt + 1e-9)


def test_pixel_io_builds_the_papers_observation():
    io = make_task_io("dclaw", "pixels")
    assert io.extra_topics == {"camera/image_32x32": "image"}
    img = np.zeros((32, 32, 3), np.uint8)
    obs = io.observation(Snapshot(0.0, np.zeros(9), np.zeros(9), {"image": img}))
    assert obs["image"].shape == (32, 32, 3) and obs["proprio"].shape == (18,)
    with pytest.raises(ValueError, match="image"):
        io.observation(Snapshot(0.0, np.zeros(9), np.zeros(9), {"image": img[:16]}))


def test_deferred_rewards_file_transitions_in_order_when_they_arrive():
    runner = _runner(steps=3, defer_rewards=True)
    runner.set_actor(_policy())
    runner.step(_snap(0.0), None)
    out = runner.step(_snap(0.1), None)  # acts at once, the transition waits for its reward
    assert out.acted and runner.outbox.next_seq == 0 and runner.awaiting_rewards == 1
    runner.step(_snap(0.2), None)
    runner.add_reward(RewardInfo(0.1, -1.0, False, False))
    runner.add_reward(RewardInfo(0.1, -1.0, False, False))  # a repeat: ignored
    assert runner.outbox.next_seq == 1 and runner.awaiting_rewards == 1
    out = runner.step(_snap(0.3), None)  # the time limit needs no reward to end the episode
    assert out.episode_over and out.transition.truncated and runner.phase is Phase.RESETTING
    assert runner.settled_count() == 0  # its last rewards are still on their way
    runner.add_reward(RewardInfo(0.2, -2.0, False, False))
    runner.add_reward(RewardInfo(0.3, -3.0, False, True))
    settled = runner.finished[: runner.settled_count()]
    assert [e.ret for e in settled] == [-6.0]
    assert settled[0].success
    rewards = [t.reward for _, t in runner.outbox.take(10)]
    assert rewards == [-1.0, -2.0, -3.0] and runner.discarded_transitions == 0


def test_a_deferred_reward_may_arrive_before_its_reading_is_acted_on():
    runner = _runner(steps=10, defer_rewards=True)
    runner.set_actor(_policy())
    runner.step(_snap(0.0), None)
    runner.add_reward(RewardInfo(0.1, -1.0, False, False))  # the reward node was quicker
    runner.step(_snap(0.1), None)
    assert runner.awaiting_rewards == 0
    assert [t.reward for _, t in runner.outbox.take(10)] == [-1.0]


def test_a_lost_deferred_reward_discards_only_its_transition():
    runner = _runner(steps=10, defer_rewards=True)
    runner.set_actor(_policy())
    for k in range(4):
        runner.step(_snap(0.1 * k), None)
    runner.add_reward(RewardInfo(0.1 * 3, -3.0, False, False))  # 0.1 and 0.2 never came
    assert runner.discarded_transitions == 2 and runner.outbox.next_seq == 1
    assert runner.awaiting_rewards == 0


def test_tasks_that_can_terminate_refuse_to_defer():
    with pytest.raises(ValueError, match="cannot be deferred"):
        PolicyRunner(make_task_io("minitaur"), Outbox("s", 10), episode_steps=5, defer_rewards=True)


def test_a_lost_reward_then_an_early_one_keeps_the_loop_going():
    runner = _runner(steps=10, defer_rewards=True)
    runner.set_actor(_policy())
    runner.step(_snap(0.0), None)
    runner.step(_snap(0.1), None)  # its reward (0.1) is lost on the way
    runner.add_reward(RewardInfo(0.2, -2.0, False, False))  # before the policy acted on 0.2
    assert runner.discarded_transitions == 1 and runner.awaiting_rewards == 0
    runner.step(_snap(0.2), None)
    assert runner.awaiting_rewards == 0
    assert [t.reward for _, t in runner.outbox.take(10)] == [-2.0]


def _minitaur_snap(t: float, q: np.ndarray, roll: float = 0.0) -> Snapshot:
    imu = np.r_[np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0, 0.1 * t, 0.0, 0.0]
    return Snapshot(t, q, np.zeros(8), {"imu": imu})


def test_minitaur_history_after_a_skipped_step_records_the_hold():
    """The step whose reward never came (hardware): the robot held where it was instead of
    acting, so the next state says so (that reading and the hold), as the gym env would
    after an action that holds still."""
    io = make_task_io("minitaur")
    runner = PolicyRunner(io, Outbox("s", 10), episode_steps=50, rng=np.random.default_rng(0))
    stand = minitaur.standing_motor_angles()
    runner.step(_minitaur_snap(0.0, stand), None)
    held_at = stand + 0.05
    skipped = _minitaur_snap(0.02, held_at, roll=0.1)
    hold = runner.skip(skipped)
    # Rejected after its observation went in (e.g. a bad action): not counted twice.
    runner.skip(skipped)
    state = runner.step(_minitaur_snap(0.04, held_at), None).transition  # a new chain
    assert state is None
    state = io.history.state()
    o_skipped = minitaur_walk.imu_observation(held_at, skipped.extras["imu"][:4],
                                              skipped.extras["imu"][4:])  # fmt: skip
    np.testing.assert_allclose(state[12:24], o_skipped)  # o_{t-1}: the skipped reading
    np.testing.assert_allclose(state[24:36], state[36:48])  # o_{t-2}: the first, once
    np.testing.assert_allclose(state[72:80], minitaur.motors_to_action(hold))  # a_{t-1}


def test_an_episode_starts_with_the_claw_at_rest_at_its_start_pose():
    """The gymnasium environment starts each episode with the fingers at rest at the
    nominal pose; the robot's episode starts there too: the runner holds (moving within
    the limits towards the pose) until the fingers rest there, or start_wait_steps went by."""
    runner = _runner(steps=3, start_wait_steps=10)
    runner.set_actor(_policy())
    q = np.clip(dclaw.NOMINAL_POSE + 0.6, dclaw.LIMITS.lower, dclaw.LIMITS.upper)
    held, qd = 0, np.zeros(9)
    while True:
        out = runner.step(_snap(0.1 * held, q=q, qd=qd), None)
        if out.acted:
            break
        assert out.transition is None and runner.phase is Phase.WAITING
        step = out.targets - q
        assert np.all(np.abs(step) <= dclaw.LIMITS.max_velocity * dclaw_valve.CONTROL_PERIOD + 1e-9)
        nominal = dclaw.NOMINAL_POSE
        assert np.all(np.abs(out.targets - nominal) <= np.abs(q - nominal) + 1e-12)  # nearer
        # The fingers follow their targets (moving: none has stalled on the valve).
        qd = (out.targets - q) / dclaw_valve.CONTROL_PERIOD
        q, held = out.targets.copy(), held + 1
    # Three steps to get there (0.6 rad at 2 pi / 3 rad/s), one more to come to rest.
    assert held == 4 and runner.phase is Phase.RUNNING and runner.start_timeouts == 0
    assert np.max(np.abs(q - dclaw.NOMINAL_POSE)) <= dclaw_valve.START_POSE_TOLERANCE
    # At the episode's end the world's reset is asked for once the claw is back at rest
    # at the pose (out of the valve's way), and once only.
    runner.step(_snap(1.0, q=q), RewardInfo(1.0, 0.0, False, False))
    out = runner.step(_snap(1.1, q=q), RewardInfo(1.1, 0.0, False, False))
    far = np.clip(dclaw.NOMINAL_POSE - 0.5, dclaw.LIMITS.lower, dclaw.LIMITS.upper)
    out = runner.step(_snap(1.2, q=far), RewardInfo(1.2, 0.0, False, False))
    assert out.episode_over and not out.reset_now and runner.phase is Phase.RESETTING
    q, asked = far, []
    for k in range(8):
        out = runner.step(_snap(1.3 + 0.1 * k, q=q), None)
        asked.append(out.reset_now)
        q = out.targets.copy()
    assert asked.count(True) == 1 and not asked[0]
    assert np.max(np.abs(q - dclaw.NOMINAL_POSE)) <= dclaw_valve.START_POSE_TOLERANCE
    runner.reset_done()
    assert runner.step(_snap(2.2, q=q), None).acted  # at the pose: the episode starts at once
    # Fingers at the pose but still moving fast are not at rest.
    moving = Snapshot(0.0, dclaw.NOMINAL_POSE.copy(), np.full(9, 1.0), {"valve": np.zeros(2)})
    assert IO.start_gap(moving) == [f"{n} moving +1.00 rad/s" for n in dclaw.JOINT_NAMES]
    # A claw that never gets there (stuck on the valve) starts anyway after the wait.
    runner = _runner(steps=3, start_wait_steps=4)
    runner.set_actor(_policy())
    stuck = dclaw.NOMINAL_POSE + 0.5
    acted = [runner.step(_snap(0.1 * k, q=stuck), None).acted for k in range(5)]
    assert acted == [False] * 4 + [True] and runner.start_timeouts == 1
    assert runner.start_miss == ", ".join(f"{n} +0.50 rad off" for n in dclaw.JOINT_NAMES)


def test_a_hold_within_an_episode_keeps_the_last_target_not_the_sagging_angles():
    """Re-targeting the measured angles at every held step lets the servos give way: a
    legged robot under its own weight sinks a little further each time."""
    runner = _runner()
    runner.set_actor(_policy())
    acted = runner.step(_snap(0.0), None).targets
    sag = 0.02
    for k in range(1, 20):  # the joints sink a little at each held step
        measured = acted - sag * k
        targets = runner.skip(_snap(0.1 * k, q=measured))
        # Back towards the target as fast as the rate limit allows.
        np.testing.assert_allclose(targets, dclaw.LIMITS.safe_targets(acted, measured, IO.dt))
    # Still pushing towards the target, not following the angles down.
    assert np.linalg.norm(targets - acted) < np.linalg.norm(measured - acted) / 2


def test_ticks_faster_than_the_task_period_move_less_per_tick():
    """The rate limit is one tick's travel: a timer at five times the task's rate must not
    command five times the joint velocity limit."""
    slow, fast = _runner(), _runner(period=IO.dt / 5)
    for runner in (slow, fast):
        runner.phase = Phase.RUNNING
        runner._last_targets = dclaw.NOMINAL_POSE + 1.0  # a far goal
    far = _snap(0.0)
    step_slow = np.abs(slow.hold(far) - dclaw.NOMINAL_POSE).max()
    step_fast = np.abs(fast.hold(far) - dclaw.NOMINAL_POSE).max()
    assert step_fast == pytest.approx(step_slow / 5)
