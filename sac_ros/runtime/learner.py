"""The learner without ROS: transitions in, SAC updates in a thread, policies and checkpoints out.

:class:`LearnerCore` holds the :class:`~sac_ros.sac.SACAgent`, the
:class:`~sac_ros.sac.ReplayBuffer` and the delivery :class:`~sac_ros.runtime.delivery.Inbox`.

* ``ingest(stream, data)`` decodes a transitions message (:mod:`sac_ros.runtime.wire`),
  checks it against the learner's observation layout and action size, lets the inbox keep
  only new in-order transitions, and adds those to the buffer. Each (stream, sender session)
  is its own buffer stream, so next observations are linked within one sender's run only.
* A trainer thread runs gradient steps. Update-to-data ratio: every transition received
  beyond the first ``warmup`` earns ``utd_ratio`` updates (the value at its arrival, so a
  live change applies to data that comes after it); the trainer spends that credit, also
  while no data arrives (robot resets), and then waits. So updates <= utd_ratio x received.
* Every ``publish_every`` updates the actor goes out through ``on_policy(version, bytes)``
  with a version one higher than the last. A new learner publishes nothing before that
  (its untrained weights would end the robots' uniform-random warm-up early); a resumed
  one publishes its weights at start, one above the highest version the run ever published
  (``run_dir/policy_version.json``), so a number never names two sets of weights.
* Every ``checkpoint_every`` seconds and on :meth:`close`, a checkpoint
  (:mod:`sac_ros.runtime.checkpoint`): the inbox marks what it received as durable and the
  acks say so once the checkpoint is on disk. ``resume=True`` continues from the newest
  consistent checkpoint: updates, temperature, optimizers, buffer, inbox, counters.
* TensorBoard scalars (``run_dir/tensorboard``) and a row of ``run_dir/learner_stats.csv``
  every ``log_every`` updates (one header; a resumed learner appends to the file).

Locks: ``_data`` guards the buffer, the inbox and the counters (ingest, sampling, acks,
checkpoints); ``_train`` is held for one gradient step, and by a checkpoint so the agent is
saved between steps. Order: ``_train`` before ``_data``.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sac_ros.runtime.checkpoint import CheckpointStore
from sac_ros.runtime.delivery import Ack, Inbox
from sac_ros.runtime.wire import TransitionBatch, decode_transitions
from sac_ros.sac import STAT_KEYS, ObsSpec, ReplayBuffer, SACAgent, SACConfig
from sac_ros.sac.atomic import read_json, write_json_atomic
from sac_ros.sac.checkpoint import write_checkpoint

CHECKPOINT_DIR = "checkpoint"
TENSORBOARD_DIR = "tensorboard"
VERSION_FILE = "policy_version.json"  # the highest policy version published in the run
STATS_CSV = "learner_stats.csv"  # metrics.csv is the sac-ros command's, per episode


class LayoutMismatch(ValueError):
    """Transitions recorded for another observation layout or action size."""


@dataclass
class LearnerSettings:
    """How the learner runs (the learning itself is shaped by :class:`SACConfig`).

    ``run_dir`` None: no checkpoints, TensorBoard or CSV (tests, quick experiments).
    ``utd_ratio`` None: ``config.updates_per_step``. ``warmup`` None: ``config.warmup_steps``.
    """

    run_dir: Path | str | None = None
    resume: bool = False
    utd_ratio: float | None = None
    warmup: int | None = None
    publish_every: int = 100
    checkpoint_every: float = 300.0
    log_every: int = 100
    tensorboard: bool = True
    paused: bool = False

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).expanduser() if self.run_dir else None
        _check_live(self.publish_every, self.checkpoint_every)
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        if self.utd_ratio is not None:
            _check_utd(self.utd_ratio)
        if self.warmup is not None and self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")


def task_layout(robot: str, obs: str, obs_dim: int = 0, action_dim: int = 0) -> tuple[ObsSpec, int]:
    """The observation layout and action size of a robot's task.

    Taken from the task's I/O definition (sac_ros.runtime.task_io) when the robot has one;
    ``obs_dim``/``action_dim`` (0 = unset) must then agree with it. For a robot without a
    task definition yet they are required (``obs_dim`` is the proprioceptive size for pixels).
    """
    if obs not in ("state", "pixels"):
        raise ValueError(f"obs must be 'state' or 'pixels', got {obs!r}")
    try:
        from sac_ros.runtime.task_io import make_task_io

        io = make_task_io(robot, obs)
    except (ImportError, ValueError):
        io = None
    if io is not None:
        spec, n_act = ObsSpec.from_json(io.layout), int(io.action_dim)
        if obs_dim and obs_dim != spec.vector_dim:
            raise ValueError(
                f"obs_dim {obs_dim} disagrees with the {robot} task ({spec.vector_dim})"
            )
        if action_dim and action_dim != n_act:
            raise ValueError(f"action_dim {action_dim} disagrees with the {robot} task ({n_act})")
        return spec, n_act
    if obs_dim < 1 or action_dim < 1:
        raise ValueError(
            f"robot {robot!r} has no task definition: set obs_dim and action_dim (> 0)"
        )
    spec = ObsSpec.pixels((32, 32, 3), obs_dim) if obs == "pixels" else ObsSpec.vector(obs_dim)
    return spec, action_dim


class LearnerCore:
    """See the module docstring. Call :meth:`start` to train, :meth:`close` to finish."""

    def __init__(
        self,
        spec: ObsSpec,
        action_dim: int,
        config: SACConfig,
        settings: LearnerSettings,
        on_policy: Callable[[int, bytes], None] | None = None,
        on_checkpoint: Callable[[], None] | None = None,
        log: Callable[[str], None] | None = None,
        session: str | None = None,
    ) -> None:
        self.spec = spec
        self.action_dim = int(action_dim)
        self.settings = settings
        self._on_policy = on_policy
        self._on_checkpoint = on_checkpoint
        self._log = log or (lambda _msg: None)
        self._data = threading.RLock()
        self._train = threading.Lock()
        self._wake = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

        self.inbox = Inbox(session or uuid.uuid4().hex[:12])
        utd = config.updates_per_step if settings.utd_ratio is None else settings.utd_ratio
        self.utd_ratio = float(utd)
        self.warmup = int(config.warmup_steps if settings.warmup is None else settings.warmup)
        self.paused = bool(settings.paused)
        self.publish_every = int(settings.publish_every)
        self.checkpoint_every = float(settings.checkpoint_every)
        # Counters (saved in checkpoints).
        self.env_steps = 0  # transitions accepted, all streams
        self.received: dict[str, int] = {}  # transitions accepted per stream
        self.policy_version = 0
        self.credit = 0.0  # updates owed to the data received so far
        self._stream_ids: dict[tuple[str, str], int] = {}
        # Not saved.
        self.rejected = 0
        self.last_error = ""
        self.train_error = ""
        self.checkpoints = 0
        self.checkpoint_error = ""
        self.log_error = ""  # the stats CSV could not be written (training goes on)
        self.last_checkpoint_time = time.monotonic()  # of the last attempt: the next is due
        self.last_checkpoint_saved = self.last_checkpoint_time  # of the last that succeeded
        self.latest: dict[str, float] = {}
        self._sums: dict[str, float] = {}
        self._sum_count = 0
        self._rate: deque[tuple[float, int]] = deque()
        self._writer: Any = None
        self._csv_path: Path | None = None

        run_dir = settings.run_dir
        self.store = CheckpointStore(Path(run_dir) / CHECKPOINT_DIR) if run_dir else None
        # The highest policy version ever published in this run, kept beside the
        # checkpoints: a learner resumed after a crash goes on above it, so a version
        # number never stands for two sets of weights.
        self._version_file = Path(run_dir) / VERSION_FILE if run_dir else None
        self._resumed = False
        loaded = None
        if self.store is not None:
            if settings.resume:
                loaded = self.store.load()
                if loaded is None:
                    self._log(f"no checkpoint in {self.store.root}: starting a new run")
            elif self.store.exists():
                raise ValueError(
                    f"{self.store.root} already holds a checkpoint: resume it (resume=True) "
                    "or choose another run_dir"
                )
        if loaded is None:
            self.agent = SACAgent(spec, self.action_dim, config)
            self.buffer = ReplayBuffer(spec, self.action_dim, config.buffer_size, seed=config.seed)
        else:
            self._restore(loaded, config)
            self._resumed = True
            self.policy_version = max(self.policy_version, self._published_version())
        # The weights to return to if training diverges: these, then each checkpoint's.
        self._good = self.agent.snapshot()
        self._open_logs(resumed=loaded is not None)

    # ------------------------------------------------------------------ properties
    @property
    def updates(self) -> int:
        return self.agent.num_updates

    @property
    def session(self) -> str:
        return self.inbox.learner_session

    @property
    def buffer_size(self) -> int:
        with self._data:
            return len(self.buffer)

    def set_utd_ratio(self, value: float) -> None:
        _check_utd(value)
        self.utd_ratio = float(value)
        self._notify()

    def set_paused(self, value: bool) -> None:
        self.paused = bool(value)
        self._notify()

    def set_publish_every(self, value: int) -> None:
        _check_live(value, self.checkpoint_every)
        self.publish_every = int(value)

    def set_checkpoint_every(self, value: float) -> None:
        _check_live(self.publish_every, value)
        self.checkpoint_every = float(value)
        self._notify()

    # ------------------------------------------------------------------ data in
    def ingest(self, stream: str, data: bytes) -> int:
        """Add a transitions message from ``stream`` (a robot namespace); returns how many
        new transitions were stored. Raises ValueError (WireFormatError, LayoutMismatch)
        on a bad message, storing nothing."""
        try:
            batch = decode_transitions(data)
            obs, next_obs = self._check_batch(batch)
        except ValueError as err:
            with self._data:
                self.rejected += 1
                self.last_error = str(err)
            raise
        seqs = batch.seq.tolist()
        with self._data:
            keep = self.inbox.accept(stream, batch.session, seqs, batch.first_retained)
            if not keep:
                return 0
            buffer_stream = self._buffer_stream(stream, batch.session)
            for i in keep:
                self.buffer.add(
                    _row(obs, i),
                    batch.action[i],
                    float(batch.reward[i]),
                    _row(next_obs, i),
                    bool(batch.terminated[i]),
                    bool(batch.truncated[i]),
                    stream=buffer_stream,
                )
            before = self.env_steps
            self.env_steps += len(keep)
            self.received[stream] = self.received.get(stream, 0) + len(keep)
            earning = max(0, self.env_steps - self.warmup) - max(0, before - self.warmup)
            self.credit += earning * self.utd_ratio
        if earning:
            self._notify()
        return len(keep)

    def _check_batch(self, batch: TransitionBatch) -> tuple[Any, Any]:
        try:
            layout = ObsSpec.from_json(batch.layout)
        except ValueError as err:
            raise LayoutMismatch(f"transitions carry an unreadable layout: {err}") from err
        if layout != self.spec:
            raise LayoutMismatch(
                f"transitions have layout {batch.layout}, this learner trains "
                f"{self.spec.to_json()}"
            )
        n = len(batch)
        if batch.action.shape != (n, self.action_dim):
            raise LayoutMismatch(
                f"actions have shape {batch.action.shape}, expected ({n}, {self.action_dim})"
            )
        checked = []
        for name, value in (("obs", batch.obs), ("next_obs", batch.next_obs)):
            try:
                array, single = self.spec.prepare(value)
            except ValueError as err:
                raise LayoutMismatch(f"{name}: {err}") from err
            if single or _batch_len(array) != n:
                raise LayoutMismatch(f"{name} does not hold {n} observations")
            checked.append(array)
        return checked[0], checked[1]

    def _buffer_stream(self, stream: str, session: str) -> int:
        key = (stream, session)
        if key not in self._stream_ids:
            # A new sender on this stream (a restarted policy node): the old sender's last
            # step will get no successor; complete it with its announced next observation.
            for (other_stream, _), sid in self._stream_ids.items():
                if other_stream == stream:
                    self.buffer.flush_stream(sid)
            self._stream_ids[key] = max(self._stream_ids.values(), default=-1) + 1
        return self._stream_ids[key]

    def acks(self, stream: str) -> list[Ack]:
        """Acks for ``stream``'s senders, with the update backlog (for pacing)."""
        with self._data:
            backlog = 0.0 if self.paused or self.train_error else max(0.0, self.credit)
            return self.inbox.acks(stream, backlog)

    # ------------------------------------------------------------------ training
    def start(self) -> None:
        """Publish a resumed learner's policy, then train in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the learner is already running")
        if self._closed:
            raise RuntimeError("the learner is closed")
        # A resumed learner's weights are the checkpoint's, newer than the version it
        # records (and versions may have gone out after it): a new number. A new one's
        # are untrained: the robots keep acting uniformly at random (the warm-up, as in the
        # in-process trainer) until trained weights go out, publish_every updates later.
        if self._resumed:
            self._publish_policy()
        self._thread = threading.Thread(target=self._run, name="sac-trainer", daemon=True)
        self._thread.start()

    def train_pending(self, max_updates: int | None = None) -> int:
        """Run the updates owed now in the calling thread (when no trainer thread runs);
        returns how many ran."""
        done = 0
        while (max_updates is None or done < max_updates) and self.step():
            done += 1
        return done

    def can_update(self) -> bool:
        with self._data:
            return (
                not self.paused
                and not self.train_error
                and self.credit >= 1.0
                and len(self.buffer) > 0
            )

    def step(self) -> bool:
        """One gradient step if one is owed; returns whether it ran."""
        with self._train:
            with self._data:
                if not self.can_update():
                    return False
                batch = self.buffer.sample(self.agent.config.batch_size, self.agent.device)
                self.credit -= 1.0
            info = self.agent.update(batch)
            if not all(math.isfinite(v) for v in info.values()):
                self._roll_back(f"non-finite statistics at update {self.updates}: {info}")
                return False
            self.latest = info
            for key, value in info.items():
                self._sums[key] = self._sums.get(key, 0.0) + value
            self._sum_count += 1
            if self.updates % self.publish_every == 0:
                self._publish_policy()
            if self.updates % self.settings.log_every == 0:
                self._write_logs()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.store is not None and self.checkpoint_due():
                self._checkpoint_logged()
                continue
            try:
                if self.step():
                    continue
            except Exception as err:  # reported: never a silently dead trainer thread
                # Training stops (train_error; the senders are no longer paced by it),
                # the loop stays for the periodic checkpoints of what keeps arriving.
                self.train_error = f"training stopped at update {self.updates}: {err!r}"
                self._log(self.train_error)
            with self._wake:
                if not self._stop.is_set():
                    self._wake.wait(timeout=0.1)

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _roll_back(self, problem: str) -> None:
        """Training diverged: stop it, and put back the weights, optimizers and counters of
        the last checkpoint (or of the start), so that no later checkpoint replaces good
        weights with broken ones and the robots act with the good actor (published as a
        new version). The data keeps arriving and being checkpointed; a resume continues
        from those weights with all of it. Call with ``_train`` held."""
        diverged_at = self.updates
        tensors, state = self._good
        self.agent = SACAgent.from_snapshot(
            {k: v.clone() for k, v in tensors.items()},
            copy.deepcopy(state),
            self.agent.config.device,
        )
        self.train_error = (
            f"{problem}; training stopped, weights rolled back from update {diverged_at} "
            f"to {self.updates} (the last checkpoint)"
        )
        self._log(self.train_error)
        self._publish_policy()

    def _published_version(self) -> int:
        if self._version_file is None or not self._version_file.exists():
            return 0
        try:
            return int(read_json(self._version_file)["published"])
        except (ValueError, KeyError, TypeError) as err:  # a record, not the data: go on
            self._log(f"{self._version_file} unreadable ({err}); versions go on from the "
                      "checkpoint's")  # fmt: skip
            return 0

    def _publish_policy(self) -> None:
        """The actor, as a version one higher than the last."""
        self.policy_version += 1
        if self._on_policy is not None and self._version_file is not None:
            try:  # recorded before it goes out; no fsync: it guards against a crash
                write_json_atomic(
                    self._version_file, {"published": self.policy_version}, sync=False
                )
            except OSError as err:
                self._log(f"could not record policy version {self.policy_version}: {err}")
        if self._on_policy is not None:
            data = self.agent.policy_bytes(self.policy_version)
            self._call(self._on_policy, self.policy_version, data)

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        """Run a user callback; its failure (a publisher gone at shutdown) is logged, not
        raised into training or checkpointing."""
        if callback is None:
            return
        try:
            callback(*args)
        except Exception as err:  # any callback error is reported, not fatal
            self._log(f"callback {getattr(callback, '__name__', callback)} failed: {err!r}")

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_due(self) -> bool:
        return time.monotonic() - self.last_checkpoint_time >= self.checkpoint_every

    def checkpoint(self) -> int:
        """Write a checkpoint now; returns its generation. On failure the inbox keeps its
        previous durable marks (nothing is acknowledged as saved that is not) and the
        error is raised."""
        if self.store is None:
            raise ValueError("this learner has no run_dir: it cannot write checkpoints")
        with self._train, self._data:
            self.last_checkpoint_time = time.monotonic()
            if not self.agent.is_finite():  # broken by an update whose statistics were not
                self._roll_back(f"non-finite weights at update {self.updates}")
            previous = {key: s.durable for key, s in self.inbox.senders.items()}
            self.inbox.mark_durable()
            try:
                # One snapshot: written now, and kept to roll back to if training diverges.
                good = self.agent.snapshot()
                gen = self.store.save(
                    lambda path: write_checkpoint(Path(path), *good), self.buffer, self._state()
                )
            except BaseException:
                for key, durable in previous.items():
                    self.inbox.senders[key].durable = durable
                raise
            self.checkpoints += 1
            self.checkpoint_error = ""
            self.last_checkpoint_saved = time.monotonic()
            self._good = good
        self._call(self._on_checkpoint)
        return gen

    def _checkpoint_logged(self) -> None:
        start = time.monotonic()
        try:
            gen = self.checkpoint()
            self._log(
                f"checkpoint {gen}: {self.env_steps} transitions, {self.updates} updates, "
                f"{time.monotonic() - start:.2f} s"
            )
        except Exception as err:  # any kind (a MemoryError too): reported, tried again
            # at the next period; the trainer thread lives on
            text = str(err) if isinstance(err, (OSError, ValueError)) else repr(err)
            self.checkpoint_error = f"checkpoint failed: {text}"
            self._log(self.checkpoint_error)

    def _state(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "env_steps": self.env_steps,
            "received": dict(self.received),
            "policy_version": self.policy_version,
            "credit": self.credit,
            "inbox": self.inbox.state_dict(),
            "stream_ids": [
                {"stream": st, "session": se, "id": sid}
                for (st, se), sid in self._stream_ids.items()
            ],
        }

    def _restore(self, loaded: Any, config: SACConfig) -> None:
        agent = SACAgent.load_checkpoint(loaded.agent_dir, device=config.device)
        if agent.spec != self.spec or agent.action_dim != self.action_dim:
            raise ValueError(
                f"checkpoint {loaded.agent_dir} was trained for layout {agent.spec.to_json()} "
                f"with {agent.action_dim} actions, this learner has {self.spec.to_json()} "
                f"with {self.action_dim}"
            )
        changed = _config_changes(agent.config, config)
        if changed:
            self._log(f"resuming with the checkpoint's settings, not {changed}")
        buffer = ReplayBuffer(
            self.spec, self.action_dim, agent.config.buffer_size, seed=agent.config.seed
        )
        buffer.load(loaded.replay_dir)
        state = loaded.state
        try:
            self.inbox.load_state_dict(state["inbox"])
            self.env_steps = int(state["env_steps"])
            self.received = {str(k): int(v) for k, v in state["received"].items()}
            self.policy_version = int(state["policy_version"])
            self.credit = float(state["credit"])
            self._stream_ids = {
                (d["stream"], d["session"]): int(d["id"]) for d in state["stream_ids"]
            }
            updates = int(state["updates"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"checkpoint learner state is malformed: {err!r}") from err
        if updates != agent.num_updates:
            raise ValueError(
                f"checkpoint disagrees with itself: {updates} updates in the learner state, "
                f"{agent.num_updates} in the agent"
            )
        self.agent, self.buffer = agent, buffer
        self._log(
            f"resumed generation {loaded.generation}: {updates} updates, {self.env_steps} "
            f"transitions, buffer {len(buffer)}, alpha {agent.alpha:.4g}"
        )

    # ------------------------------------------------------------------ shutdown
    def stop(self) -> None:
        """Stop the trainer thread (after its current step)."""
        self._stop.set()
        self._notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop training, write a final checkpoint (when there is a run_dir), close logs."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        if self.store is not None:
            self._checkpoint_logged()
        if self._sum_count:
            self._write_logs()
        if self._writer is not None:
            self._writer.close()

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict[str, float]:
        """Numbers for rqt_plot, diagnostics and tests."""
        now = time.monotonic()
        updates = self.updates
        with self._data:
            self._rate.append((now, updates))
            while len(self._rate) > 2 and now - self._rate[0][0] > 10.0:
                self._rate.popleft()
            t0, u0 = self._rate[0]
            out = {
                "updates": float(updates),
                "env_steps": float(self.env_steps),
                "buffer_size": float(len(self.buffer)),
                "policy_version": float(self.policy_version),
                "updates_per_s": (updates - u0) / (now - t0) if now > t0 else 0.0,
                "utd_ratio": self.utd_ratio,
                "credit": self.credit,
                "paused": float(self.paused),
                "duplicates": float(self.inbox.duplicates),
                "gaps": float(self.inbox.gaps),
                "lost": float(self.inbox.lost),
                "rejected": float(self.rejected),
                "checkpoints": float(self.checkpoints),
                "checkpoint_age_s": now - self.last_checkpoint_saved,  # failures age it
            }
        out.update({k: float(self.latest.get(k, math.nan)) for k in STAT_KEYS})
        return out

    def _open_logs(self, resumed: bool) -> None:
        if self.settings.run_dir is None:
            return
        run_dir = Path(self.settings.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._csv_path = run_dir / STATS_CSV
        if resumed and self._csv_path.exists():
            try:
                _truncate_csv(self._csv_path, self.updates)
            except (OSError, ValueError, UnicodeError, csv.Error) as err:
                # Appended without fsync: a power cut can leave it torn. It is a log, not
                # the run's state: set aside, and a new one started.
                damaged = self._csv_path.with_name(self._csv_path.name + ".damaged")
                os.replace(self._csv_path, damaged)
                self._log(f"{self._csv_path} unreadable ({err!r}): moved to {damaged.name}, "
                          "a new one started")  # fmt: skip
        if self.settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a crashed run logged after its last checkpoint (at
            # steps > updates: the row at ``updates`` itself was logged before it, and kept
            # in the CSV too).
            self._writer = SummaryWriter(
                str(run_dir / TENSORBOARD_DIR), purge_step=self.updates + 1 if resumed else None
            )

    def _write_logs(self) -> None:
        count = max(self._sum_count, 1)
        row = {key: value / count for key, value in self._sums.items()}
        self._sums, self._sum_count = {}, 0
        stats = self.stats()
        for key in ("env_steps", "buffer_size", "updates_per_s", "policy_version"):
            row[key] = stats[key]
        if self._writer is not None:
            for key, value in row.items():
                self._writer.add_scalar(f"learner/{key}", value, self.updates)
        if self._csv_path is not None:
            fields = ["time", "updates", *sorted(row)]
            try:
                new = not self._csv_path.exists()
                with open(self._csv_path, "a", newline="") as handle:
                    out = csv.DictWriter(handle, fieldnames=fields)
                    if new:
                        out.writeheader()
                    out.writerow({"time": f"{time.time():.3f}", "updates": self.updates, **row})
            except OSError as err:  # a full disk: the statistics log is not worth the run
                if not self.log_error:
                    self._log(f"cannot write {self._csv_path}: {err}; training goes on")
                self.log_error = f"stats log failed: {err}"
            else:
                self.log_error = ""


def _truncate_csv(path: Path, updates: int) -> None:
    """Drop the rows a crashed run wrote after the checkpoint it is resumed from, and a
    last row the crash cut short (the next run would append to it)."""
    with open(path, newline="") as handle:
        text = handle.read()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "updates" not in rows[0]:
        return
    cut = len(rows) > 1 and not text.endswith("\n")
    if cut:
        rows.pop()
    column = rows[0].index("updates")

    def keep(row: list[str]) -> bool:
        if len(row) != len(rows[0]):
            return False
        try:
            return int(row[column]) <= updates
        except ValueError:
            return False

    kept = [rows[0]] + [r for r in rows[1:] if keep(r)]
    if cut or len(kept) < len(rows):
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)
        os.replace(tmp, path)


def _row(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def _batch_len(obs: Any) -> int:
    if isinstance(obs, dict):
        return int(next(iter(obs.values())).shape[0])
    return int(np.shape(obs)[0])


def _check_utd(value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"utd_ratio must be > 0, got {value}")


def _check_live(publish_every: int, checkpoint_every: float) -> None:
    if not isinstance(publish_every, (int, np.integer)) or publish_every < 1:
        raise ValueError(f"publish_every must be an int >= 1, got {publish_every!r}")
    if not (checkpoint_every > 0 and math.isfinite(checkpoint_every)):
        raise ValueError(f"checkpoint_every must be > 0 seconds, got {checkpoint_every}")


def _config_changes(saved: SACConfig, given: SACConfig) -> dict[str, Any]:
    ignore = {"device", "updates_per_step", "warmup_steps"}
    return {
        k: v
        for k, v in given.__dict__.items()
        if k not in ignore and saved.__dict__.get(k) != v
    }
