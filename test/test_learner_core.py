"""LearnerCore without ROS: ingestion, UTD ratio, policies, checkpoints, resume, crashes.

Transitions encode their sequence number in the reward and (episode, step) in the
observation, so the replay buffer's content can be checked exactly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sac_ros.runtime.checkpoint import CheckpointStore
from sac_ros.runtime.learner import (
    STATS_CSV,
    LayoutMismatch,
    LearnerCore,
    LearnerSettings,
    task_layout,
)
from sac_ros.runtime.wire import TransitionBatch, WireFormatError, encode_transitions
from sac_ros.sac import ObsSpec, SACConfig
from sac_ros.sac.policy_format import decode_policy
from sac_ros.sac.replay import NO_NEXT

SPEC = ObsSpec.vector(4)
ACT = 2
EPISODE = 10
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Two shared cores: tiny networks run fastest (and steadiest) on one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def transitions(
    start: int,
    n: int,
    session: str = "s1",
    spec: ObsSpec = SPEC,
    first_retained: int | None = None,
    action_dim: int = ACT,
    reward: float | None = None,
) -> bytes:
    """Transitions start..start+n-1 of one sender: reward = seq (or ``reward``), episodes
    of EPISODE steps."""
    seq = np.arange(start, start + n)
    episode, step = seq // EPISODE, seq % EPISODE

    def obs(t: np.ndarray) -> np.ndarray:
        out = np.zeros((n, spec.vector_dim), np.float32)
        out[:, 0], out[:, 1] = episode, t
        return out

    if spec.is_pixels:
        image = np.zeros((n, *spec.image_shape), np.uint8)
        image[..., 0] = (seq % 256)[:, None, None]
        first, second = {"image": image, "proprio": obs(step)}, {
            "image": image.copy(),
            "proprio": obs(step + 1),
        }
    else:
        first, second = obs(step), obs(step + 1)
    return encode_transitions(
        TransitionBatch(
            session=session,
            layout=spec.to_json(),
            first_retained=start if first_retained is None else first_retained,
            obs=first,
            action=np.full((n, action_dim), 0.5, np.float32),
            reward=(seq if reward is None else np.full(n, reward)).astype(np.float32),
            next_obs=second,
            terminated=np.zeros(n, np.uint8),
            truncated=(step == EPISODE - 1).astype(np.uint8),
            seq=seq,
            episode=episode,
            step=step,
        )
    )


def stored_rewards(core: LearnerCore) -> list[float]:
    """Rewards of every complete transition in the buffer, sorted."""
    buf = core.buffer
    used = min(buf.num_slots_written, buf.capacity)
    positions = np.flatnonzero(buf._next[:used] != NO_NEXT)
    if len(positions) == 0:
        return []
    return sorted(buf.gather(positions).reward.tolist())


def complete(n: int) -> list[float]:
    """Rewards of the complete transitions after seqs 0..n-1 (the last one waits for its
    successor unless it ends an episode)."""
    last_done = n > 0 and (n - 1) % EPISODE == EPISODE - 1
    return [float(i) for i in range(n if last_done else n - 1)]


def make_core(tmp: Path | None = None, resume: bool = False, **kw) -> LearnerCore:
    config = SACConfig(
        hidden=(32, 32), batch_size=16, buffer_size=5000, warmup_steps=kw.pop("warmup", 10)
    )
    settings = LearnerSettings(
        run_dir=tmp,
        resume=resume,
        utd_ratio=kw.pop("utd", 1.0),
        publish_every=kw.pop("publish_every", 1000),
        checkpoint_every=kw.pop("checkpoint_every", 3600.0),
        log_every=kw.pop("log_every", 1000),
        tensorboard=kw.pop("tensorboard", False),
    )
    return LearnerCore(SPEC, ACT, config, settings, **kw)


def test_ingest_keeps_each_transition_once():
    core = make_core()
    assert core.ingest("robot", transitions(0, 10)) == 10
    assert core.ingest("robot", transitions(0, 10)) == 0  # a resend
    assert core.ingest("robot", transitions(5, 10)) == 5  # overlaps 5..9
    assert core.ingest("robot", transitions(30, 5, first_retained=0)) == 0  # gap: waits
    stats = core.stats()
    assert stats["env_steps"] == 15
    assert stats["duplicates"] == 15 and stats["gaps"] == 1
    # 15 transitions, episode ends at 9: 0..13 complete, 14 waits for its successor.
    assert stored_rewards(core) == complete(15)
    (ack,) = core.acks("robot")
    assert (ack.sender, ack.received, ack.durable) == ("s1", 14, -1)
    assert core.acks("other") == []


def test_bad_messages_are_rejected_with_a_reason():
    core = make_core()
    with pytest.raises(LayoutMismatch, match="layout"):
        core.ingest("robot", transitions(0, 5, spec=ObsSpec.vector(5)))
    with pytest.raises(LayoutMismatch, match="actions have shape"):
        core.ingest("robot", transitions(0, 5, action_dim=3))
    deep = b"[" * 100_000  # json.loads raises RecursionError, no ValueError, on this
    with pytest.raises(WireFormatError, match="malformed"):
        core.ingest("robot", len(deep).to_bytes(8, "little") + deep)
    with pytest.raises(WireFormatError, match="too short"):
        core.ingest("robot", b"\x01\x02")
    assert core.stats()["rejected"] == 4 and core.env_steps == 0
    assert "actions" not in core.last_error and "too short" in core.last_error
    assert core.acks("robot") == []  # nothing of it reached the inbox


def test_a_stats_log_that_cannot_be_written_does_not_stop_training(tmp_path):
    core = make_core(tmp_path, warmup=10, log_every=1, checkpoint_every=0.2)
    (tmp_path / STATS_CSV).mkdir()  # opening it to append fails, as on a full disk
    core.start()
    try:
        core.ingest("robot", transitions(0, 30))
        deadline = time.monotonic() + 30
        while (core.updates < 20 or core.checkpoints < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert core.updates == 20 and core.checkpoints >= 2  # training and checkpoints go on
        assert "stats log failed" in core.log_error and core.train_error == ""
    finally:
        core.close()


def test_an_update_that_raises_stops_training_loudly_not_the_checkpoints(tmp_path, monkeypatch):
    core = make_core(tmp_path, warmup=0, checkpoint_every=0.2)

    def broken(_batch: object) -> dict[str, float]:
        raise RuntimeError("out of memory")  # what a real update could raise

    monkeypatch.setattr(core.agent, "update", broken)
    core.start()
    try:
        core.ingest("robot", transitions(0, 10))
        deadline = time.monotonic() + 30
        while (not core.train_error or core.checkpoints < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "training stopped" in core.train_error and "out of memory" in core.train_error
        assert core._thread is not None and core._thread.is_alive()
        core.ingest("robot", transitions(10, 10))  # data still arrives and is kept
        assert core.acks("robot")[0].backlog == 0.0  # senders are not held back by it
        checkpoints = core.checkpoints
        deadline = time.monotonic() + 30
        while core.checkpoints == checkpoints and time.monotonic() < deadline:
            time.sleep(0.05)
        assert core.checkpoints > checkpoints
    finally:
        core.close()
    assert stored_rewards(make_core(tmp_path, resume=True)) == complete(20)


def test_a_diverged_update_rolls_back_to_the_last_checkpoint(tmp_path):
    """A broken reward function's reward (finite, but its square overflows float32) makes
    the critic loss infinite, and that step writes NaN into the weights: training stops,
    and the weights and counters go back to the last checkpoint, so the robots get the
    good actor and no later checkpoint replaces it. The data is all kept."""
    published: list[tuple[int, bytes]] = []
    core = make_core(tmp_path, warmup=0, on_policy=lambda v, b: published.append((v, b)))
    core.ingest("robot", transitions(0, 20))
    core.train_pending()
    core.checkpoint()
    good_updates = core.updates
    good = {k: v.clone() for k, v in core.agent.actor.state_dict().items()}
    core.ingest("robot", transitions(20, 10))
    assert core.train_pending() == 10 and core.updates == good_updates + 10
    core.ingest("robot", transitions(30, 10, reward=1e30))
    core.train_pending()
    assert "non-finite statistics" in core.train_error
    diverged_at = int(core.train_error.split("rolled back from update ")[1].split()[0])
    assert diverged_at > good_updates + 10
    assert f"to {good_updates} (the last checkpoint)" in core.train_error
    assert core.updates == good_updates and core.agent.is_finite()
    for key, value in core.agent.actor.state_dict().items():
        assert torch.equal(value, good[key]), key
    version, data = published[-1]  # the good actor, as a new version
    assert version == core.policy_version
    sent = decode_policy(data, expected_spec=SPEC, expected_action_dim=ACT)
    for key, value in good.items():
        assert np.array_equal(sent.tensors[key], value.numpy()), key
    assert core.train_pending() == 0  # stopped: a person decides what comes next
    core.ingest("robot", transitions(40, 10))
    core.checkpoint()
    core.close()
    resumed = make_core(tmp_path, resume=True)
    assert resumed.updates == good_updates and resumed.agent.is_finite()
    for key, value in resumed.agent.actor.state_dict().items():
        assert torch.equal(value, good[key]), key
    assert len(stored_rewards(resumed)) == len(complete(50))


def test_weights_broken_unnoticed_are_not_checkpointed(tmp_path):
    """Weights that went non-finite without the statistics showing it are caught when
    the next checkpoint is due: it holds the previous good weights instead."""
    core = make_core(tmp_path, warmup=0)
    core.ingest("robot", transitions(0, 20))
    core.train_pending()
    core.checkpoint()
    good = {k: v.clone() for k, v in core.agent.critic.state_dict().items()}
    core.ingest("robot", transitions(20, 10))
    core.train_pending()
    with torch.no_grad():
        next(core.agent.critic_target.parameters()).view(-1)[0] = float("inf")
    assert not core.agent.is_finite()
    core.checkpoint()
    assert "non-finite weights" in core.train_error and core.agent.is_finite()
    core.close()
    resumed = make_core(tmp_path, resume=True)
    assert resumed.agent.is_finite()
    for key, value in resumed.agent.critic.state_dict().items():
        assert torch.equal(value, good[key]), key


def test_pixel_transitions_reach_the_buffer():
    spec = ObsSpec.pixels((8, 8, 3), proprio_dim=4)
    config = SACConfig(hidden=(16,), batch_size=4, buffer_size=100, warmup_steps=0)
    core = LearnerCore(spec, ACT, config, LearnerSettings(utd_ratio=1.0))
    assert core.ingest("cam", transitions(0, EPISODE, spec=spec)) == EPISODE
    batch = core.buffer.sample(32)
    seq = batch.reward.numpy().astype(np.int64)
    np.testing.assert_array_equal(batch.obs["image"][:, 0, 0, 0].numpy(), seq % 256)
    assert core.train_pending() == EPISODE


def test_updates_follow_the_utd_ratio_and_pause():
    core = make_core(warmup=10, utd=0.5)
    core.ingest("robot", transitions(0, 30))
    assert core.train_pending() == 10  # 20 transitions beyond the warm-up, 0.5 each
    assert core.train_pending() == 0
    core.set_utd_ratio(2.0)  # applies to data that comes after the change
    core.ingest("robot", transitions(30, 10))
    assert core.train_pending() == 20
    core.set_paused(True)
    core.ingest("robot", transitions(40, 10))
    assert core.train_pending() == 0 and core.stats()["credit"] == 20.0
    core.set_paused(False)
    assert core.train_pending() == 20 and core.updates == 50
    with pytest.raises(ValueError, match="utd_ratio"):
        core.set_utd_ratio(0.0)


def test_trainer_thread_keeps_training_between_messages_up_to_the_bound():
    published: list[int] = []
    core = make_core(
        warmup=10, utd=3.0, publish_every=5, on_policy=lambda v, b: published.append(v)
    )
    core.start()
    try:
        core.ingest("robot", transitions(0, 20))  # one message, then silence (a reset)
        deadline = time.monotonic() + 30
        while core.updates < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        assert core.updates == 30  # 10 transitions beyond the warm-up x 3, and no more
    finally:
        core.close()
    # Nothing at start (the robots' warm-up stays uniformly random): every 5 updates.
    assert published == list(range(1, 7))
    with pytest.raises(RuntimeError, match="closed"):
        core.start()


def test_policy_bytes_carry_version_and_layout():
    got: list[tuple[int, bytes]] = []
    core = make_core(warmup=0, publish_every=3, on_policy=lambda v, b: got.append((v, b)))
    core.ingest("robot", transitions(0, 6))
    core.train_pending()
    assert [v for v, _ in got] == [1, 2]
    policy = decode_policy(got[-1][1], expected_spec=SPEC, expected_action_dim=ACT)
    assert policy.version == 2


def test_checkpoint_and_resume_continue_exactly(tmp_path):
    core = make_core(tmp_path, warmup=10, utd=1.5, publish_every=7, log_every=5,
                     tensorboard=True)  # fmt: skip
    core.ingest("robot", transitions(0, 25))
    core.ingest("robot", transitions(0, 40, session="s2"))  # a second policy-node session
    core.train_pending()
    acks_before = {a.sender: a for a in core.acks("robot")}
    assert all(a.durable == -1 for a in acks_before.values())
    core.checkpoint()
    acks = {a.sender: a for a in core.acks("robot")}
    assert acks["s1"].durable == 24 and acks["s2"].durable == 39  # durable = received

    resumed = make_core(tmp_path, resume=True, utd=1.5)
    assert resumed.session != core.session
    assert resumed.updates == core.updates == int(1.5 * 55)
    assert resumed.agent.alpha == core.agent.alpha
    assert len(resumed.buffer) == len(core.buffer)
    assert stored_rewards(resumed) == stored_rewards(core)
    assert resumed.inbox.state_dict() == core.inbox.state_dict()
    assert resumed.policy_version == core.policy_version == core.updates // 7
    assert (resumed.env_steps, resumed.received) == (65, {"robot": 65})
    assert [(a.sender, a.received, a.durable) for a in resumed.acks("robot")] == [
        (a.sender, a.received, a.durable) for a in core.acks("robot")
    ]
    # Same data, same random state: the next gradient step is identical.
    for c in (core, resumed):
        c.ingest("robot", transitions(25, 1))
    assert core.train_pending() == resumed.train_pending() == 2  # 0.5 left + 1.5
    assert core.latest == resumed.latest
    # The resumed learner continues the sender's numbering, and keeps the metrics.
    assert resumed.ingest("robot", transitions(24, 3)) == 1
    core.close()
    assert (tmp_path / "learner_stats.csv").read_text().count("\n") >= 2
    assert any((tmp_path / "tensorboard").iterdir())
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        make_core(tmp_path)
    with pytest.raises(ValueError, match="layout"):
        LearnerCore(ObsSpec.vector(7), ACT, SACConfig(hidden=(32, 32)),
                    LearnerSettings(run_dir=tmp_path, resume=True, tensorboard=False))  # fmt: skip


def test_a_learner_resumed_after_a_crash_never_reuses_a_policy_version(tmp_path):
    """Versions published after the last checkpoint went out before the crash: the
    resumed learner's weights (the checkpoint's) and its later ones get new numbers."""
    first: list[int] = []
    core = make_core(tmp_path, warmup=0, publish_every=3, on_policy=lambda v, b: first.append(v))
    core.ingest("robot", transitions(0, 9))
    core.train_pending()
    core.checkpoint()  # at version 3
    core.ingest("robot", transitions(9, 9))
    core.train_pending()  # versions 4..6 go out; then kill -9 (no close)
    assert first == [1, 2, 3, 4, 5, 6]
    again: list[bytes] = []
    resumed = make_core(tmp_path, resume=True, warmup=0, publish_every=3,
                        on_policy=lambda v, b: again.append(b))  # fmt: skip
    assert resumed.updates == 9
    resumed.start()
    resumed.close()
    versions = [decode_policy(b, expected_spec=SPEC, expected_action_dim=ACT).version
                for b in again]  # fmt: skip
    assert versions[0] == 7 and versions == sorted(set(versions))
    # Without a record (a run from before it existed), the checkpoint's count goes on.
    (tmp_path / "policy_version.json").unlink()
    plain: list[int] = []
    last = make_core(tmp_path, resume=True, on_policy=lambda v, b: plain.append(v))
    last.start()
    last.close()
    assert plain[0] == resumed.policy_version + 1


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    core = make_core(tmp_path, warmup=0, log_every=5)
    core.ingest("robot", transitions(0, 20))
    core.train_pending()
    core.checkpoint()
    core.ingest("robot", transitions(20, 10))
    core.train_pending()  # rows at 25 and 30, then a "crash": no close()

    def logged() -> list[int]:
        lines = (tmp_path / "learner_stats.csv").read_text().splitlines()
        column = lines[0].split(",").index("updates")
        return [int(line.split(",")[column]) for line in lines[1:]]

    assert logged() == [5, 10, 15, 20, 25, 30]
    resumed = make_core(tmp_path, resume=True, warmup=0, log_every=5)
    assert logged() == [5, 10, 15, 20]
    resumed.ingest("robot", transitions(20, 5))
    resumed.train_pending()
    assert logged() == [5, 10, 15, 20, 25]
    # A kill in the middle of writing a row leaves it cut short (no newline). The next
    # resume drops it, so nothing is appended to half a row.
    csv_path = tmp_path / "learner_stats.csv"
    text = csv_path.read_text()
    last = text.splitlines()[-1]  # "time,updates,...": cut inside the updates field
    csv_path.write_text(text + last[: last.index(",") + 2])
    again = make_core(tmp_path, resume=True, warmup=0, log_every=5)
    assert logged() == [5, 10, 15, 20]  # back to the checkpoint, the torn row gone
    again.ingest("robot", transitions(20, 5))
    again.train_pending()
    assert logged() == [5, 10, 15, 20, 25]


def test_resume_keeps_the_tensorboard_scalars_up_to_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    core = make_core(tmp_path, warmup=0, log_every=5, tensorboard=True)
    core.ingest("robot", transitions(0, 20))
    core.train_pending()  # rows at 5..20
    core.checkpoint()  # at 20 updates
    core.ingest("robot", transitions(20, 10))
    core.train_pending()  # rows at 25 and 30, then a "crash"
    core._writer.flush()
    resumed = make_core(tmp_path, resume=True, warmup=0, log_every=5, tensorboard=True)
    resumed.ingest("robot", transitions(20, 10))
    resumed.train_pending()
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("learner/critic_loss")]
    assert steps == [5, 10, 15, 20, 25, 30]  # 20 (before the checkpoint) kept, as in the CSV


def test_a_checkpoint_without_its_replay_buffer_is_refused(tmp_path):
    # A committed checkpoint copied without its (large) replay folder: resuming must not
    # quietly start a new run, whose first checkpoint would delete the trained agent.
    core = make_core(tmp_path, warmup=0)
    core.ingest("robot", transitions(0, 30))
    core.train_pending()
    core.close()
    shutil.rmtree(tmp_path / "checkpoint" / "replay")
    with pytest.raises(ValueError, match="replay buffer .* is missing"):
        make_core(tmp_path, resume=True)
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        make_core(tmp_path)
    assert (tmp_path / "checkpoint" / "gen-000001").is_dir()


def test_checkpoints_are_incremental(tmp_path):
    core = make_core(tmp_path)
    core.ingest("robot", transitions(0, 200))
    core.checkpoint()
    replay = tmp_path / "checkpoint" / "replay"
    first = {p.name: p.stat().st_size for p in replay.glob("chunk_*")}
    core.ingest("robot", transitions(200, 20))
    core.checkpoint()
    second = {p.name: p.stat().st_size for p in replay.glob("chunk_*")}
    new = set(second) - set(first)
    assert set(first) <= set(second) and len(new) == 1
    assert second[new.pop()] < 0.5 * sum(first.values())  # only the 20 new transitions
    assert len(list((tmp_path / "checkpoint").glob("gen-*"))) == 1


def _count_replaces(monkeypatch) -> list[int]:
    calls = [0]
    real = os.replace

    def counting(src, dst):
        calls[0] += 1
        return real(src, dst)

    monkeypatch.setattr(os, "replace", counting)
    return calls


def test_a_checkpoint_failing_at_any_step_leaves_the_previous_one(tmp_path, monkeypatch):
    # Count the renames of one checkpoint, then fail each of them in turn.
    probe = make_core(tmp_path / "probe")
    probe.ingest("robot", transitions(0, 15))
    probe.checkpoint()
    probe.ingest("robot", transitions(15, 15))
    calls = _count_replaces(monkeypatch)
    probe.checkpoint()
    monkeypatch.undo()
    n_replaces = calls[0]
    assert n_replaces >= 5

    for fail_at in range(1, n_replaces + 1):
        run = tmp_path / f"run{fail_at}"
        core = make_core(run, warmup=0)
        core.ingest("robot", transitions(0, 15))
        core.train_pending()
        core.checkpoint()
        saved = (core.updates, core.env_steps)
        core.ingest("robot", transitions(15, 15))
        core.train_pending()
        real, count = os.replace, [0]

        def failing(src, dst, real=real, count=count, fail_at=fail_at):
            count[0] += 1
            if count[0] == fail_at:
                raise OSError(28, "No space left on device (simulated)")
            return real(src, dst)

        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(OSError, match="simulated"):
            core.checkpoint()
        monkeypatch.undo()
        # Nothing unsaved is acknowledged as saved.
        assert core.acks("robot")[0].durable == 14
        resumed = make_core(run, resume=True)
        assert (resumed.updates, resumed.env_steps) in (saved, (core.updates, core.env_steps))
        assert stored_rewards(resumed) == complete(resumed.env_steps)
        assert resumed.acks("robot")[0].received == resumed.env_steps - 1
        # The learner that failed can checkpoint again, and that one is loaded.
        core.checkpoint()
        again = make_core(run, resume=True)
        assert (again.updates, again.env_steps) == (core.updates, 30)


def test_a_failed_first_checkpoint_leaves_a_fresh_start(tmp_path, monkeypatch):
    outcomes = set()
    for fail_at in range(1, 8):  # 7 renames: agent (2), state, folder, chunk, 2 manifests
        run = tmp_path / f"run{fail_at}"
        core = make_core(run)
        core.ingest("robot", transitions(0, 15))
        real, count = os.replace, [0]

        def failing(src, dst, real=real, count=count, fail_at=fail_at):
            count[0] += 1
            if count[0] == fail_at:
                raise OSError(5, "Input/output error (simulated)")
            return real(src, dst)

        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(OSError, match="simulated"):
            core.checkpoint()
        monkeypatch.undo()
        loaded = CheckpointStore(run / "checkpoint").load()
        outcomes.add(loaded is None)
        if loaded is None:  # nothing committed: a new run may start here
            assert make_core(run).env_steps == 0
        else:  # committed before the failing step (the manifest write)
            assert loaded.state["env_steps"] == 15
        assert make_core(run, resume=True).env_steps in (0, 15)
    assert outcomes == {True, False}


CRASHER = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {test_dir!r})
    from pathlib import Path
    from test_learner_core import make_core, transitions
    torch.set_num_threads(1)
    core = make_core(Path({run!r}), warmup=0)
    seq = 0
    while True:
        core.ingest("robot", transitions(seq, 7))
        seq += 7
        core.train_pending(3)
        core.checkpoint()
        print("gen", seq, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.37])
def test_kill9_while_checkpointing_leaves_a_consistent_checkpoint(tmp_path, delay):
    run = tmp_path / "run"
    code = CRASHER.format(test_dir=str(ROOT / "test"), run=str(run))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        lines = 0
        while lines < 5:  # let a few checkpoints land, then kill it mid-stride
            line = proc.stdout.readline()
            assert line, "the checkpointing process died"
            lines += 1
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert CheckpointStore(run / "checkpoint").load() is not None
    resumed = make_core(run, resume=True)
    assert resumed.env_steps >= 5 * 7
    assert resumed.env_steps % 7 == 0
    assert stored_rewards(resumed) == complete(resumed.env_steps)
    assert resumed.acks("robot")[0].received == resumed.env_steps - 1


def test_task_layout_comes_from_the_task_or_the_parameters():
    spec, n_act = task_layout("dclaw", "state")
    assert (spec.vector_dim, n_act) == (20, 9)
    assert task_layout("dclaw", "pixels")[0].image_shape == (32, 32, 3)
    with pytest.raises(ValueError, match="disagrees"):
        task_layout("dclaw", "state", obs_dim=21)
    with pytest.raises(ValueError, match="no task definition"):
        task_layout("hexapod", "state")
    assert task_layout("hexapod", "state", 12, 6) == (ObsSpec.vector(12), 6)
    with pytest.raises(ValueError, match="obs must be"):
        task_layout("dclaw", "depth")


def test_a_failing_checkpoint_leaves_neither_generations_nor_chunks_behind(tmp_path, monkeypatch):
    """A full disk: each failed attempt used to leave its generation folder and replay
    chunks, so one short ENOSPC filled the disk for good."""
    import sac_ros.sac.replay_store as replay_store

    core = make_core(tmp_path)
    core.ingest("robot", transitions(0, 100))
    core.checkpoint()

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(replay_store, "write_json_atomic", full_disk)
        for i in range(3):
            core.ingest("robot", transitions(100 + 500 * i, 500))
            core._checkpoint_logged()
            assert "No space left" in core.checkpoint_error
    ckpt = tmp_path / "checkpoint"
    assert sorted(p.name for p in ckpt.glob("gen-*")) == ["gen-000001"]
    assert sorted(p.name for p in (ckpt / "replay").glob("chunk_*")) == ["chunk_000001.npz"]
    assert CheckpointStore(ckpt).load().generation == 1
    core.checkpoint()  # the disk has room again: everything received is saved
    assert make_core(tmp_path, resume=True).env_steps == 1600


def test_a_checkpoint_failing_in_an_unexpected_way_is_reported_and_retried(tmp_path, monkeypatch):
    """A MemoryError while serialising the weights killed the trainer thread silently."""
    import sac_ros.sac.checkpoint as agent_checkpoint

    core = make_core(tmp_path, warmup=0, checkpoint_every=0.2)
    core.ingest("robot", transitions(0, 50))
    real, fails = agent_checkpoint.safetensors.torch.save, [1]

    def flaky(*args, **kwargs):
        if fails[0]:
            fails[0] -= 1
            raise MemoryError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(agent_checkpoint.safetensors.torch, "save", flaky)
    time.sleep(0.25)
    core.start()
    try:
        deadline = time.monotonic() + 20
        while core.checkpoints < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert core._thread.is_alive() and core.checkpoints >= 1 and fails == [0]
        assert core.updates > 0 and not core.train_error
    finally:
        core.close()


def test_a_damaged_stats_log_is_set_aside_on_resume(tmp_path):
    core = make_core(tmp_path, warmup=0, log_every=5)
    core.ingest("robot", transitions(0, 60))
    core.train_pending(30)
    core.checkpoint()
    core.close()
    path = tmp_path / STATS_CSV
    path.write_bytes(path.read_bytes() + bytes(range(128, 256)))  # a power cut's tail
    resumed = make_core(tmp_path, resume=True)
    assert resumed.updates == 30
    assert (tmp_path / (STATS_CSV + ".damaged")).exists()


def test_a_killed_manifest_write_leaves_no_temporary_file_for_good(tmp_path):
    core = make_core(tmp_path)
    core.ingest("robot", transitions(0, 20))
    core.checkpoint()
    left = tmp_path / "checkpoint" / ".manifest.json.tmp-4242"  # os._exit mid-write
    left.write_bytes(b"{half")
    core.ingest("robot", transitions(20, 20))
    core.checkpoint()
    assert not left.exists()


def test_the_checkpoint_age_counts_from_the_last_checkpoint_that_succeeded(tmp_path, monkeypatch):
    import sac_ros.sac.replay_store as replay_store

    core = make_core(tmp_path, checkpoint_every=0.1)
    core.ingest("robot", transitions(0, 20))
    core.checkpoint()

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(replay_store, "write_json_atomic", full_disk)
    for _ in range(4):
        time.sleep(0.1)
        core.ingest("robot", transitions(20 + _ * 5, 5))
        core._checkpoint_logged()
    assert core.checkpoint_error and core.stats()["checkpoint_age_s"] >= 0.4
