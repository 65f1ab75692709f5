"""Replay buffer: memory, next-observation pairing, streams, ring overwrite, persistence.

Every observation encodes (stream, episode, t), so any sampled transition can be checked:
its next observation must be (stream, episode, t + 1) and its reward encodes the same step.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_ros.sac import ObsSpec, ReplayBuffer

VEC = ObsSpec.vector(3)
PIX = ObsSpec.pixels((4, 4, 3), proprio_dim=3)


def make_obs(spec: ObsSpec, stream: int, episode: int, t: int):
    vector = np.array([stream, episode, t], np.float32)
    if not spec.is_pixels:
        return vector
    image = np.empty(spec.image_shape, np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = stream % 256, episode % 256, t % 256
    return {"image": image, "proprio": vector}


def reward_code(stream: int, episode: int, t: int) -> float:
    return float(stream * 1_000_000 + episode * 1000 + t)


class Streams:
    """Drives several streams (robots) with episodes of given lengths into a buffer."""

    def __init__(self, buf: ReplayBuffer, seed: int = 0) -> None:
        self.buf, self.rng = buf, np.random.default_rng(seed)
        self.state: dict[int, tuple[int, int]] = {}
        self.added = 0
        self.pending: set[int] = set()  # streams whose last added step was not final

    def step(self, stream: int, length: int, drop: bool = False, end_kind: str = "trunc") -> None:
        episode, t = self.state.get(stream, (0, 0))
        last = t + 1 == length
        if not drop:
            spec = self.buf.spec
            self.buf.add(
                make_obs(spec, stream, episode, t),
                np.full(self.buf.action_dim, (t % 7) / 7.0, np.float32),
                reward_code(stream, episode, t),
                make_obs(spec, stream, episode, t + 1),
                terminated=last and end_kind == "term",
                truncated=last and end_kind == "trunc",
                stream=stream,
            )
            self.added += 1
            (self.pending.discard if last else self.pending.add)(stream)
        self.state[stream] = (episode + 1, 0) if last else (episode, t + 1)


def check_all_transitions(buf: ReplayBuffer) -> int:
    """Every sampleable transition pairs its observation with the right next one."""
    positions = buf.transition_positions()
    assert len(positions) == len(buf)
    if len(positions) == 0:
        return 0
    batch = buf.gather(positions)
    obs = batch.obs["proprio"] if isinstance(batch.obs, dict) else batch.obs
    nxt = batch.next_obs["proprio"] if isinstance(batch.next_obs, dict) else batch.next_obs
    obs, nxt = obs.numpy().astype(np.int64), nxt.numpy().astype(np.int64)
    np.testing.assert_array_equal(nxt[:, :2], obs[:, :2])  # same stream, same episode
    np.testing.assert_array_equal(nxt[:, 2], obs[:, 2] + 1)  # the next step
    codes = [reward_code(*row) for row in obs]
    np.testing.assert_array_equal(batch.reward.numpy(), np.array(codes, np.float32))
    np.testing.assert_allclose(batch.action.numpy()[:, 0], (obs[:, 2] % 7) / 7.0, rtol=1e-6)
    if isinstance(batch.obs, dict):  # images travel with their proprio vectors
        for key in ("obs", "next_obs"):
            part = getattr(batch, key)
            image, vector = part["image"].numpy(), part["proprio"].numpy().astype(np.int64)
            np.testing.assert_array_equal(image[:, 0, 0, 2], vector[:, 2] % 256)
            np.testing.assert_array_equal(image[:, 3, 3, 1], vector[:, 1] % 256)
    assert not (batch.terminated.numpy() * batch.truncated.numpy()).any()
    return len(positions)


def test_memory_for_a_million_pixel_transitions_under_3_5_gb():
    buf = ReplayBuffer(ObsSpec.pixels((32, 32, 3), proprio_dim=18), 9, 1_000_000)
    assert buf.nbytes < 3.5e9
    assert buf.nbytes >= 1_000_000 * (32 * 32 * 3 + 18 * 4 + 9 * 4 + 4)  # nothing left out
    # Each frame once: storing next observations separately would double the images.
    assert buf.nbytes < 2 * 1_000_000 * 32 * 32 * 3


@pytest.mark.parametrize("spec", [VEC, PIX], ids=["vector", "pixels"])
def test_next_observation_across_episode_boundaries(spec):
    buf = ReplayBuffer(spec, 2, 100)
    driver = Streams(buf)
    for _ in range(8):  # two episodes of 4 steps, ending by termination
        driver.step(0, 4, end_kind="term")
    for _ in range(6):  # then two 3-step episodes ending by truncation
        driver.step(0, 3, end_kind="trunc")
    # No pending step after an episode end: all 14 transitions are complete.
    assert check_all_transitions(buf) == 14 == len(buf)
    batch = buf.gather(buf.transition_positions())
    t = (batch.obs["proprio"] if spec.is_pixels else batch.obs)[:, 2].numpy()
    episode = (batch.obs["proprio"] if spec.is_pixels else batch.obs)[:, 1].numpy()
    terminated, truncated = batch.terminated.numpy(), batch.truncated.numpy()
    # Exactly the final steps are flagged, each with its own kind.
    np.testing.assert_array_equal(terminated, (episode < 2) & (t == 3))
    np.testing.assert_array_equal(truncated, (episode >= 2) & (t == 2))
    # Each final next observation is stored once, in a frame-only slot: 14 + 4 slots.
    assert buf.num_slots_written == 18


def test_interleaved_streams_pair_within_their_own_stream():
    buf = ReplayBuffer(VEC, 2, 1000)
    driver = Streams(buf)
    order = np.random.default_rng(3).integers(0, 4, 400)
    for stream in order:
        driver.step(int(stream), length=5 + int(stream) * 3)
    assert check_all_transitions(buf) == driver.added - len(driver.pending)


def test_lost_message_never_pairs_with_a_wrong_next_observation():
    buf = ReplayBuffer(VEC, 1, 100)
    driver = Streams(buf)
    driver.step(0, 10)
    driver.step(0, 10)
    driver.step(0, 10, drop=True)  # step t=2 never arrives
    driver.step(0, 10)
    driver.step(0, 10)
    assert check_all_transitions(buf) == 3  # t=0, t=1 (next stored explicitly), t=3
    buf.flush_stream(0)  # the stream stops: its last step becomes sampleable
    assert check_all_transitions(buf) == 4


def test_ring_wrap_around_keeps_pairs_right():
    buf = ReplayBuffer(VEC, 1, 7)
    driver = Streams(buf)
    rng = np.random.default_rng(1)
    for _ in range(300):
        driver.step(int(rng.integers(0, 3)), length=4, drop=rng.random() < 0.05)
        count = check_all_transitions(buf)
        assert count <= 7
    assert len(buf) >= 2
    assert buf.num_slots_written > 300


def test_silent_stream_overwritten_while_pending_is_dropped():
    buf = ReplayBuffer(VEC, 1, 5)
    driver = Streams(buf)
    driver.step(1, 100)  # stream 1: step 0 pending
    for _ in range(10):
        driver.step(0, 100)  # stream 0 overwrites the whole ring
    driver.step(1, 100)  # stream 1 returns: its old step is gone, nothing pairs wrongly
    # The ring's 5 slots: stream 0's steps 7..9 (complete, paired with 8..10), its step 10
    # (pending) and stream 1's new step (pending).
    assert check_all_transitions(buf) == 3


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(2, 12),
    steps=st.lists(
        st.tuples(
            st.integers(0, 2), st.integers(1, 5), st.booleans(), st.sampled_from(["term", "trunc"])
        ),
        max_size=80,
    ),
)
def test_random_streams_property(capacity, steps):
    buf = ReplayBuffer(VEC, 1, capacity)
    driver = Streams(buf)
    lengths: dict[int, int] = {}
    for stream, length, drop, end_kind in steps:
        length = lengths.setdefault(stream, length)
        driver.step(stream, length, drop=drop, end_kind=end_kind)
        check_all_transitions(buf)
    if buf.num_slots_written <= capacity:  # nothing overwritten: nothing lost
        assert len(buf) == driver.added - len(driver.pending)


def test_sample_draws_only_complete_transitions_and_is_seeded():
    buf_a, buf_b = ReplayBuffer(VEC, 1, 50, seed=5), ReplayBuffer(VEC, 1, 50, seed=5)
    for buf in (buf_a, buf_b):
        driver = Streams(buf)
        for i in range(60):
            driver.step(i % 2, 6)
    a, b = buf_a.sample(64), buf_b.sample(64)
    assert np.array_equal(a.obs.numpy(), b.obs.numpy())
    obs, nxt = a.obs.numpy(), a.next_obs.numpy()
    np.testing.assert_array_equal(nxt[:, 2], obs[:, 2] + 1)
    assert len(np.unique(obs, axis=0)) > 20  # spread over the buffer


def test_add_rejects_bad_input():
    buf = ReplayBuffer(PIX, 2, 10)
    good = make_obs(PIX, 0, 0, 0)
    with pytest.raises(ValueError, match="no complete transition"):
        buf.sample(4)
    bad_image = {"image": good["image"].astype(np.float32), "proprio": good["proprio"]}
    with pytest.raises(ValueError, match="uint8"):
        buf.add(bad_image, np.zeros(2), 0.0, good, False, False)
    with pytest.raises(ValueError, match="action"):
        buf.add(good, np.zeros(3), 0.0, good, False, False)
    with pytest.raises(ValueError, match="reward"):
        buf.add(good, np.zeros(2), float("nan"), good, False, False)
    with pytest.raises(ValueError, match="NaN"):
        nan_obs = {"image": good["image"], "proprio": np.array([0, np.nan, 0])}
        buf.add(good, np.zeros(2), 0.0, nan_obs, False, False)
    with pytest.raises(ValueError, match="stream"):
        buf.add(good, np.zeros(2), 0.0, good, False, False, stream=-1)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(VEC, 1, 1)
    assert len(buf) == 0 and buf.num_added == 0


# ---------------------------------------------------------------------- persistence
def chunk_entries(directory) -> list[dict]:
    return json.loads((directory / "manifest.json").read_text())["chunks"]


def assert_same_batches(a, b) -> None:
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        x, y = getattr(a, name), getattr(b, name)
        pairs = [(x[k], y[k]) for k in x] if isinstance(x, dict) else [(x, y)]
        for u, v in pairs:
            assert np.array_equal(u.numpy(), v.numpy()), name


def all_transitions(buf: ReplayBuffer):
    batch = buf.gather(buf.transition_positions())
    obs = batch.obs["proprio"] if isinstance(batch.obs, dict) else batch.obs
    return sorted(map(tuple, obs.numpy().tolist()))


@pytest.mark.parametrize("spec", [VEC, PIX], ids=["vector", "pixels"])
def test_incremental_save_then_load_gives_identical_samples(tmp_path, spec):
    buf = ReplayBuffer(spec, 2, 500, seed=7)
    driver = Streams(buf)
    for i in range(90):
        driver.step(i % 3, 8)
    first_slots = buf.save(tmp_path)
    assert first_slots == buf.num_slots_written
    first_chunk = chunk_entries(tmp_path)[0]
    first_bytes = (tmp_path / first_chunk["file"]).read_bytes()

    before = buf.num_slots_written
    for i in range(40):
        driver.step(i % 3, 8)
    second_slots = buf.save(tmp_path)
    assert second_slots == buf.num_slots_written - before  # only the new part
    chunks = chunk_entries(tmp_path)
    assert len(chunks) == 2 and chunks[0] == first_chunk
    assert (chunks[1]["start"], chunks[1]["end"]) == (before, buf.num_slots_written)
    assert (tmp_path / first_chunk["file"]).read_bytes() == first_bytes  # untouched

    restored = ReplayBuffer(spec, 2, 500, seed=999)
    restored.load(tmp_path)
    assert len(restored) == len(buf) and all_transitions(restored) == all_transitions(buf)
    check_all_transitions(restored)
    assert_same_batches(buf.sample(32), restored.sample(32))
    # The streams' pending steps survive: both buffers continue identically.
    restored_driver = Streams(restored)
    restored_driver.state = dict(driver.state)
    for i in range(30):
        driver.step(i % 3, 8)
        restored_driver.step(i % 3, 8)
    assert all_transitions(restored) == all_transitions(buf)
    assert len(restored) == len(buf)


def test_incremental_save_across_ring_wrap_drops_dead_chunks(tmp_path):
    buf = ReplayBuffer(VEC, 1, 20, seed=1)
    driver = Streams(buf)
    rng = np.random.default_rng(0)
    for round_ in range(8):
        for _ in range(int(rng.integers(1, 15))):
            driver.step(int(rng.integers(0, 2)), 6)
        buf.save(tmp_path)
        restored = ReplayBuffer(VEC, 1, 20)
        restored.load(tmp_path)
        assert all_transitions(restored) == all_transitions(buf), round_
        assert_same_batches(restored.sample(16), buf.sample(16))
        files = sorted(p.name for p in tmp_path.glob("chunk_*.npz"))
        assert files == sorted(c["file"] for c in chunk_entries(tmp_path))
        assert sum(c["end"] - c["start"] for c in chunk_entries(tmp_path)) < 20 + 2 * 15


def test_a_save_removes_the_temporary_files_a_killed_save_left(tmp_path):
    # A process killed while writing a chunk (or the manifest) leaves atomic.write_atomic's
    # temporary file; in the shared replay folder nothing else would ever delete it (a
    # chunk of images: megabytes to gigabytes per kill).
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import os, numpy as np
        import sac_ros.sac.replay_store as rs
        from sac_ros.sac import ObsSpec, ReplayBuffer
        buf = ReplayBuffer(ObsSpec.vector(3), 1, 50)
        for t in range(30):
            buf.add(np.full(3, t, np.float32), np.zeros(1, np.float32), 0.0,
                    np.full(3, t + 1, np.float32), False, False)
        def dying(handle, arrays):
            handle.write(b"half a chunk"); handle.flush(); os.kill(os.getpid(), {signal.SIGKILL})
        rs._savez = dying
        buf.save({str(tmp_path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ.copy())
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".chunk_"), left
    buf = ReplayBuffer(VEC, 1, 50)
    driver = Streams(buf)
    for _ in range(12):
        driver.step(0, 5)
    buf.save(tmp_path)
    driver.step(0, 5)
    buf.save(tmp_path)  # incremental
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [c["file"] for c in chunk_entries(tmp_path)] + ["manifest.json"]
    )


def test_save_to_a_new_directory_is_complete_and_load_checks_layout(tmp_path):
    buf = ReplayBuffer(VEC, 1, 30)
    driver = Streams(buf)
    for _ in range(25):
        driver.step(0, 5)
    buf.save(tmp_path / "a")
    for _ in range(5):
        driver.step(0, 5)
    assert buf.save(tmp_path / "b") == 30  # another directory: a full save of the live ring
    restored = ReplayBuffer(VEC, 1, 30)
    restored.load(tmp_path / "b")
    assert all_transitions(restored) == all_transitions(buf)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(VEC, 1, 31).load(tmp_path / "b")
    with pytest.raises(ValueError, match="spec"):
        ReplayBuffer(ObsSpec.vector(4), 1, 30).load(tmp_path / "b")
    with pytest.raises(ValueError, match="does not exist"):
        ReplayBuffer(VEC, 1, 30).load(tmp_path / "missing")
    chunk = tmp_path / "b" / chunk_entries(tmp_path / "b")[0]["file"]
    chunk.write_bytes(chunk.read_bytes()[:100])
    victim = ReplayBuffer(VEC, 1, 30)
    victim.load(tmp_path / "a")
    assert len(victim) > 0
    with pytest.raises(ValueError, match="unreadable"):
        victim.load(tmp_path / "b")
    assert len(victim) == 0 and victim.num_slots_written == 0  # empty, not half-loaded


def test_concurrent_adds_and_samples_stay_consistent():
    import threading

    buf = ReplayBuffer(VEC, 1, 300)
    errors: list[BaseException] = []

    def producer(stream: int) -> None:
        driver = Streams(buf, seed=stream)
        try:
            for _ in range(1500):
                driver.step(stream, 9)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        if len(buf):
            batch = buf.sample(64)
            obs, nxt = batch.obs.numpy(), batch.next_obs.numpy()
            np.testing.assert_array_equal(nxt[:, :2], obs[:, :2])
            np.testing.assert_array_equal(nxt[:, 2], obs[:, 2] + 1)
    for thread in threads:
        thread.join()
    assert not errors
    check_all_transitions(buf)
