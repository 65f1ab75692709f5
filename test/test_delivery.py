"""Transitions survive a lossy channel and a learner crash: exactly once, in order."""

from __future__ import annotations

import numpy as np
import pytest

from sac_ros.runtime.delivery import Ack, Inbox, Outbox
from sac_ros.runtime.wire import (
    TransitionBatch,
    WireFormatError,
    decode_transitions,
    encode_transitions,
    read_metadata,
)


def _batch(n: int, pixels: bool = False, start: int = 0) -> TransitionBatch:
    rng = np.random.default_rng(start)
    if pixels:
        obs = {
            "image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            "proprio": rng.standard_normal((n, 18)).astype(np.float32),
        }
        nxt = {k: v.copy() for k, v in obs.items()}
    else:
        obs = rng.standard_normal((n, 20)).astype(np.float32)
        nxt = obs + 1
    return TransitionBatch(
        session="abc",
        layout='{"kind": "vector"}',
        first_retained=start,
        obs=obs,
        action=rng.uniform(-1, 1, (n, 9)).astype(np.float32),
        reward=rng.standard_normal(n).astype(np.float32),
        next_obs=nxt,
        terminated=np.zeros(n, np.uint8),
        truncated=np.eye(1, n, n - 1, dtype=np.uint8)[0],
        seq=np.arange(start, start + n),
        episode=np.zeros(n, np.int64),
        step=np.arange(n),
    )


@pytest.mark.parametrize("pixels", [False, True])
def test_wire_roundtrip(pixels):
    b = _batch(5, pixels)
    out = decode_transitions(encode_transitions(b))
    assert (out.session, out.layout, out.first_retained) == ("abc", b.layout, 0)
    np.testing.assert_array_equal(out.seq, b.seq)
    np.testing.assert_array_equal(out.truncated, b.truncated)
    row = out.row(2)
    if pixels:
        np.testing.assert_array_equal(row["obs"]["image"], b.obs["image"][2])
    else:
        np.testing.assert_array_equal(row["next_obs"], b.next_obs[2])


def test_wire_rejects_defects():
    data = encode_transitions(_batch(4))
    with pytest.raises(WireFormatError, match="too short"):
        decode_transitions(data[:5])
    with pytest.raises(WireFormatError, match="truncated"):
        decode_transitions(data[:40])
    with pytest.raises(WireFormatError):
        decode_transitions(data[:-3])
    with pytest.raises(WireFormatError, match="malformed"):
        decode_transitions(data[:8] + b"{" * (len(data) - 8))
    bad = _batch(4)
    bad.reward[1] = np.nan
    with pytest.raises(WireFormatError, match="NaN"):
        decode_transitions(encode_transitions(bad))
    bad = _batch(4)
    bad.seq = np.array([0, 1, 1, 2])
    with pytest.raises(WireFormatError, match="increase"):
        decode_transitions(encode_transitions(bad))
    bad = _batch(4)
    bad.action[2, 3] = 3e38  # finite, and no tanh-squashed policy's
    with pytest.raises(WireFormatError, match=r"\[-1, 1\]"):
        decode_transitions(encode_transitions(bad))
    # A sender holds what it sends: first_retained past the batch's first seq would make
    # the receiver skip every later transition of the sender as seen.
    for first_retained in (10**15, 1, -1):
        bad = _batch(4)
        bad.first_retained = first_retained
        with pytest.raises(WireFormatError, match="first_retained"):
            decode_transitions(encode_transitions(bad))
    # A header nested deep enough to exhaust the recursion limit, and an oversized one.
    deep = b"[" * 100_000
    with pytest.raises(WireFormatError, match="malformed"):
        decode_transitions(len(deep).to_bytes(8, "little") + deep)
    with pytest.raises(WireFormatError, match="at most"):
        decode_transitions((2**40).to_bytes(8, "little") + b"{}")
    assert read_metadata(data)["format"] == "sac_ros.transitions/1"


def _run_channel(rng, outbox, inbox, store, n_steps, drop_p, crash_at=None):
    """Sender adds one item a step; a lossy channel; the receiver acks each step."""
    t = 0.0
    checkpoint = None
    for step in range(n_steps):
        t += 0.1
        outbox.add(step)
        for seq, item in outbox.take(8):
            if rng.random() < drop_p:
                continue  # lost in transit
            keep = inbox.accept("robot", outbox.session, [seq], outbox.first_retained)
            store.extend(item for _ in keep)
        if step % 25 == 0:
            inbox.mark_durable()
            checkpoint = (inbox.state_dict(), list(store))
        if crash_at is not None and step == crash_at:
            state, saved = checkpoint
            inbox = Inbox("learner-2")
            inbox.load_state_dict(state)
            store[:] = saved
        if rng.random() > drop_p:
            for ack in inbox.acks("robot"):
                outbox.on_ack(Ack.from_json(ack.to_json()), t)
    # Let the channel drain.
    for _ in range(200):
        t += 0.5
        for seq, item in outbox.take(64):
            keep = inbox.accept("robot", outbox.session, [seq], outbox.first_retained)
            store.extend(item for _ in keep)
        for ack in inbox.acks("robot"):
            outbox.on_ack(ack, t)
    return inbox


@pytest.mark.parametrize("drop_p", [0.0, 0.2])
def test_exactly_once_over_a_lossy_channel(drop_p):
    rng = np.random.default_rng(1)
    outbox, store = Outbox("s1", capacity=10_000, resend_after=0.3), []
    inbox = _run_channel(rng, outbox, Inbox("learner-1"), store, 400, drop_p)
    assert store == list(range(400))
    assert outbox.dropped == 0
    if drop_p:
        assert outbox.resent > 0 and inbox.gaps > 0


def test_learner_crash_resumes_from_checkpoint_without_loss():
    rng = np.random.default_rng(2)
    outbox, store = Outbox("s1", capacity=10_000, resend_after=0.3), []
    _run_channel(rng, outbox, Inbox("learner-1"), store, 300, 0.05, crash_at=180)
    assert store == list(range(300))
    # Only what is not yet in a checkpoint stays in the outbox.
    assert outbox.retained < 30


def test_bounded_retention_counts_what_it_drops():
    outbox = Outbox("s1", capacity=10)
    for i in range(25):
        outbox.add(i)
    assert outbox.retained == 10 and outbox.dropped == 15
    assert [s for s, _ in outbox.take(100)] == list(range(15, 25))
    inbox = Inbox("l")
    assert inbox.accept("robot", "s1", [15, 16], outbox.first_retained) == [0, 1]


def test_ack_from_another_sender_session_is_ignored():
    outbox = Outbox("new", capacity=10)
    outbox.add(0)
    outbox.take(10)
    outbox.on_ack(Ack("l", "old", 5, 5), 0.0)
    assert outbox.retained == 1
    with pytest.raises(ValueError, match="malformed"):
        Ack.from_json('{"learner": 1}')
    with pytest.raises(ValueError, match="malformed"):  # RecursionError inside json
        Ack.from_json("[" * 100_000)
    with pytest.raises(ValueError, match="malformed"):  # infinity for a count
        Ack.from_json('{"learner": "l", "sender": "s", "received": 1e999, "durable": 0}')


def test_a_learner_resumed_without_this_sender_gets_its_transitions_again():
    """The sender first reached learner 1 after its last checkpoint; learner 1 dies and
    learner 2 resumes from that checkpoint, which does not know the sender, so it never
    acks it. The sender publishes nothing new (a paced lockstep robot, or one shutting
    down): after silence_after it sends its unconfirmed transitions again by itself."""
    outbox = Outbox("robot-a", capacity=100, silence_after=5.0)
    l1 = Inbox("learner-1")
    for i in range(5):
        outbox.add(i)
    outbox.poll(0.0)
    sent = outbox.take(100)
    l1.accept("robot", "robot-a", [s for s, _ in sent], outbox.first_retained)
    for ack in l1.acks("robot", backlog=5.0):
        outbox.on_ack(ack, 0.0)
    assert outbox.learner_received == 4 and outbox.delivered(0.0)
    assert outbox.learner_backlog == 5.0
    l2 = Inbox("learner-2")  # resumed from a checkpoint taken before robot-a appeared
    store: list[int] = []
    for t in np.arange(0.5, 20.0, 0.5):  # ack timer ticks; nothing new is added
        for ack in l2.acks("robot"):
            outbox.on_ack(ack, t)
        outbox.poll(t)
        items = outbox.take(100)
        if items:  # a message on the wire
            keep = l2.accept("robot", "robot-a", [s for s, _ in items], outbox.first_retained)
            store.extend(items[i][1] for i in keep)
        if t < 5.0:
            assert not items  # a live learner is given its silence_after
        if 5.0 < t <= 5.5:
            assert outbox.learner_backlog == 0.0  # nothing left to pace a robot by
            assert not outbox.delivered(t)  # a shutdown would wait for learner 2
    assert store == list(range(5))
    assert outbox.learner_received == 4 and outbox.delivered(20.0)
    assert outbox.resent == 5


def test_a_quiet_sender_with_everything_durable_is_no_longer_acked_but_not_forgotten():
    """Each policy-node restart is a new sender session: the learner must not ack every
    past one forever, yet one that comes back is still recognised (no duplicates)."""
    clock = [0.0]
    inbox = Inbox("learner", quiet_after=60.0, clock=lambda: clock[0])
    old, new = Outbox("old", capacity=100), Outbox("new", capacity=100)

    def exchange(outbox: Outbox) -> list[int]:
        outbox.poll(clock[0])
        items = outbox.take(100)
        keep = inbox.accept("robot", outbox.session, [s for s, _ in items], outbox.first_retained)
        return [items[i][1] for i in keep]

    for i in range(3):
        old.add(i)
    assert exchange(old) == [0, 1, 2]
    clock[0] = 30.0
    new.add(10)
    assert exchange(new) == [10]
    inbox.mark_durable()
    clock[0] = 61.0  # "old" quiet for 61 s, all of it durable; "new" heard 31 s ago
    assert [a.sender for a in inbox.acks("robot")] == ["new"]
    new.add(11)
    assert exchange(new) == [11]
    clock[0] = 100.0  # "new" quiet 70 s but holding data not yet durable: still acked
    assert [a.sender for a in inbox.acks("robot")] == ["new"]
    for ack in inbox.acks("robot"):
        new.on_ack(ack, clock[0])
    # "old" sends again (it retained 0-2, never having heard an ack): known, so the
    # repeats are duplicates, and it is acked again from now on.
    old.add(3)
    before = inbox.duplicates
    assert exchange(old) == [3] and inbox.duplicates - before == 3
    assert sorted(a.sender for a in inbox.acks("robot")) == ["new", "old"]
    # A learner resumed from a checkpoint announces itself to every known sender.
    resumed = Inbox("learner-2", quiet_after=60.0, clock=lambda: clock[0])
    resumed.load_state_dict(inbox.state_dict())
    assert sorted(a.sender for a in resumed.acks("robot")) == ["new", "old"]



def test_a_sender_waiting_for_the_backlog_to_fall_hears_it_fall_though_quiet():
    """A lockstep simulation paced by the learner is quiet because it waits: the learner
    checkpointed all it sent and stopped acking it, so it waited for good (e.g. after the
    learner was unpaused with thousands of updates owed)."""
    t = [0.0]
    inbox = Inbox("L", quiet_after=60.0, clock=lambda: t[0])
    out = Outbox("S", capacity=1000)
    for i in range(10):
        out.add(i)
    out.poll(t[0])
    items = out.take(100)
    keep = inbox.accept("", "S", [s for s, _ in items], out.first_retained)
    assert len(keep) == 10
    # learner owes many updates: the sender (max_learner_backlog=50) stops stepping
    for a in inbox.acks("", backlog=500.0):
        out.on_ack(a, t[0])
    assert out.learner_backlog == 500.0
    # learner checkpoints while the sender waits (a long checkpoint, or a slow learner)
    inbox.mark_durable()
    for a in inbox.acks("", backlog=400.0):
        out.on_ack(a, t[0])
    # the learner trains on: 61 s later its backlog is 0, it acks at 5 Hz
    for k in range(1, 400):
        t[0] = 61.0 + k * 0.2
        for a in inbox.acks("", backlog=0.0):
            out.on_ack(a, t[0])
        out.poll(t[0])
    assert out.learner_backlog <= 50.0, "sender waits forever on a stale backlog"


def test_a_quiet_sender_whose_data_is_all_checkpointed_counts_as_delivered():
    t = [0.0]
    inbox = Inbox("L", quiet_after=60.0, clock=lambda: t[0])
    out = Outbox("S", capacity=1000)
    for i in range(10):
        out.add(i)
    out.poll(0.0)
    items = out.take(100)
    inbox.accept("", "S", [s for s, _ in items], out.first_retained)
    inbox.mark_durable()
    for k in range(1, 400):  # the robot idles 80 s (e.g. waiting for the learner)
        t[0] = k * 0.2
        for a in inbox.acks(""):
            out.on_ack(a, t[0])
        out.poll(t[0])
    assert out.delivered(t[0]), "close() would wait drain_timeout for nothing"
