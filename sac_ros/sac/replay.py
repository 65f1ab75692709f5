"""Replay buffer: a preallocated numpy ring where each observation frame is stored once.

Layout. The ring has ``capacity`` slots; each slot holds one observation (uint8 image and/or
float32 vector) and, when the slot starts a transition, its action, reward, terminated and
truncated flags and ``next``: the absolute index of the slot holding the next observation.

* The next observation of step t is the observation of step t+1 of the SAME stream, so it
  is not stored twice: when stream k adds step t+1, step t is linked to step t+1's slot.
  Until then step t is *pending* and cannot be sampled.
* An episode's final next observation (terminated or truncated) is stored once, in a
  frame-only slot (no transition starts there). So ``capacity`` slots hold ``capacity``
  observations: with 40-step episodes about 97.6% of them start a transition.
* Several streams (robots) interleave freely: ``add(..., stream=k)``.
* If a stream's next observation differs from what its previous step announced as
  ``next_obs`` (a lost message, an unflagged reset), the announced frame is stored in a
  frame-only slot: a transition is never paired with a wrong next observation.
* Ring overwrite goes oldest first, and a transition's next slot is always written after
  the transition's own slot, so a transition disappears before its next observation does:
  overwriting never pairs an observation with a wrong next observation. A pending step
  whose slot was overwritten is dropped.

Persistence (``save``/``load``) is incremental; see :mod:`sac_ros.sac.replay_store`.

Threads: ``add``, ``flush_stream``, ``sample``, ``save``, ``load`` and ``clear`` hold one
internal lock, so a subscriber thread may add while the learner thread samples.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from sac_ros.sac.batch import Batch
from sac_ros.sac.config import resolve_device
from sac_ros.sac.spec import IMAGE_KEY, PROPRIO_KEY, ObsSpec, RawObs

NO_NEXT = -1
_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(self: ReplayBuffer, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class Frame:
    """One stored observation: image (H, W, C) uint8 or None, vector (D,) float32."""

    image: np.ndarray | None
    vector: np.ndarray

    def equals(self, other: Frame) -> bool:
        same_image = self.image is None or np.array_equal(self.image, other.image)
        return same_image and np.array_equal(self.vector, other.vector)


@dataclass
class Pending:
    """A stream's last step, waiting for the stream's next observation."""

    slot: int  # absolute slot index of the step
    next_frame: Frame  # what the step announced as its next observation


class ReplayBuffer:
    """Uniform replay over several interleaved streams. ``len()`` = sampleable transitions."""

    def __init__(
        self,
        spec: ObsSpec,
        action_dim: int,
        capacity: int,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if not isinstance(spec, ObsSpec):
            raise ValueError(f"spec must be an ObsSpec, got {type(spec)}")
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.spec = spec
        self.action_dim = int(action_dim)
        self.capacity = int(capacity)
        self.device = resolve_device(device)
        self._image = (
            np.empty((capacity, *spec.image_shape), np.uint8) if spec.image_shape else None
        )
        self._vector = np.empty((capacity, spec.vector_dim), np.float32)
        self._action = np.empty((capacity, action_dim), np.float32)
        self._reward = np.empty(capacity, np.float32)
        self._terminated = np.zeros(capacity, np.bool_)
        self._truncated = np.zeros(capacity, np.bool_)
        self._next = np.full(capacity, NO_NEXT, np.int64)
        self._written = 0  # slots ever written = absolute index of the next slot
        self._valid = 0  # slots that start a complete transition
        self._added = 0  # transitions ever added
        self._pending: dict[int, Pending] = {}
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        # Incremental persistence: where and up to which slot the last save went, and the
        # links made since then for slots that were already saved.
        self._saved_dir: Path | None = None
        self._saved_upto = 0
        self._relinked: list[tuple[int, int]] = []

    @_locked
    def clear(self) -> None:
        """Forget every transition and pending step (the arrays stay allocated)."""
        self._next[:] = NO_NEXT
        self._written = self._valid = self._added = 0
        self._pending = {}
        self._saved_dir, self._saved_upto, self._relinked = None, 0, []

    # ------------------------------------------------------------------ size
    def __len__(self) -> int:
        return self._valid

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays (the whole capacity, used or not)."""
        arrays = [self._vector, self._action, self._reward, self._terminated]
        arrays += [self._truncated, self._next]
        if self._image is not None:
            arrays.append(self._image)
        return int(sum(a.nbytes for a in arrays))

    @property
    def num_added(self) -> int:
        """Transitions ever added (including those overwritten since)."""
        return self._added

    @property
    def num_slots_written(self) -> int:
        return self._written

    # ------------------------------------------------------------------ adding
    @_locked
    def add(
        self,
        obs: RawObs,
        action: np.ndarray,
        reward: float,
        next_obs: RawObs,
        terminated: bool,
        truncated: bool,
        stream: int = 0,
    ) -> None:
        """Store one transition of ``stream``. Raises ValueError on malformed input."""
        frame = self._frame(obs, "obs")
        next_frame = self._frame(next_obs, "next_obs")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.action_dim,) or not np.isfinite(action).all():
            raise ValueError(f"action must be finite with shape ({self.action_dim},), got {action}")
        reward = float(reward)
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward}")
        terminated, truncated = _flag(terminated, "terminated"), _flag(truncated, "truncated")
        stream = _stream_id(stream)

        pending = self._take_pending(stream)
        if pending is not None and not pending.next_frame.equals(frame):
            # The stream did not continue from the announced next observation.
            self._link(pending.slot, self._write_slot(pending.next_frame))
            pending = None
        slot = self._write_slot(frame, action, reward, terminated, truncated)
        if pending is not None:
            self._link(pending.slot, slot)
        if terminated or truncated:
            self._link(slot, self._write_slot(next_frame))
        else:
            self._pending[stream] = Pending(slot, next_frame)
        self._added += 1

    @_locked
    def flush_stream(self, stream: int = 0) -> None:
        """Complete a stream's pending step with its announced next observation (use when a
        stream stops for good, so its last step becomes sampleable)."""
        pending = self._take_pending(_stream_id(stream))
        if pending is not None:
            self._link(pending.slot, self._write_slot(pending.next_frame))

    def _take_pending(self, stream: int) -> Pending | None:
        pending = self._pending.pop(stream, None)
        if pending is not None and self._written - pending.slot >= self.capacity:
            return None  # its slot was overwritten while the stream was silent
        return pending

    def _frame(self, obs: RawObs, what: str) -> Frame:
        try:
            batched, single = self.spec.prepare(obs)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from err
        if not single:
            raise ValueError(f"{what} must be a single observation, not a batch")
        if isinstance(batched, dict):
            return Frame(batched[IMAGE_KEY][0].copy(), batched[PROPRIO_KEY][0].copy())
        return Frame(None, batched[0].copy())

    def _write_slot(
        self,
        frame: Frame,
        action: np.ndarray | None = None,
        reward: float = 0.0,
        terminated: bool = False,
        truncated: bool = False,
    ) -> int:
        index = self._written
        pos = index % self.capacity
        if self._next[pos] != NO_NEXT:
            self._valid -= 1
        self._next[pos] = NO_NEXT
        if self._image is not None:
            self._image[pos] = frame.image
        self._vector[pos] = frame.vector
        if action is None:
            self._action[pos] = 0.0
        else:
            self._action[pos] = action
        self._reward[pos] = reward
        self._terminated[pos] = terminated
        self._truncated[pos] = truncated
        self._written += 1
        return index

    def _link(self, slot: int, next_slot: int) -> None:
        self._next[slot % self.capacity] = next_slot
        self._valid += 1
        if slot < self._saved_upto:
            self._relinked.append((slot, next_slot))

    # ------------------------------------------------------------------ sampling
    @_locked
    def sample(self, batch_size: int, device: torch.device | str | None = None) -> Batch:
        """``batch_size`` transitions drawn uniformly (with replacement), as tensors on
        ``device`` (default: the buffer's device)."""
        return self.gather(self.sample_indices(batch_size), device)

    @_locked
    def sample_indices(self, batch_size: int) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self._valid == 0:
            raise ValueError("the replay buffer holds no complete transition yet")
        used = min(self._written, self.capacity)
        if 4 * self._valid < used:  # mostly frame-only or pending slots: draw from the list
            candidates = np.flatnonzero(self._next[:used] != NO_NEXT)
            return candidates[self._rng.integers(0, len(candidates), batch_size)]
        parts, missing = [], batch_size
        while missing > 0:  # rejection sampling; at least a quarter of the draws succeed
            draw = self._rng.integers(0, used, 2 * missing + 8)
            draw = draw[self._next[draw] != NO_NEXT][:missing]
            parts.append(draw)
            missing -= len(draw)
        return np.concatenate(parts)

    @_locked
    def transition_positions(self) -> np.ndarray:
        """Ring positions of every sampleable transition (for inspection and tests)."""
        return np.flatnonzero(self._next != NO_NEXT)

    @_locked
    def gather(self, positions: np.ndarray, device: torch.device | str | None = None) -> Batch:
        """The transitions starting at ring positions ``positions`` (all must be complete)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.ndim != 1 or (positions < 0).any() or (positions >= self.capacity).any():
            raise ValueError(f"gather: positions must be a 1-D array in [0, {self.capacity})")
        nxt = self._next[positions]
        if (nxt == NO_NEXT).any():
            raise ValueError("gather: some positions do not start a complete transition")
        nxt = nxt % self.capacity
        dev = self.device if device is None else resolve_device(device)

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(dev, non_blocking=True)

        if self._image is not None:
            obs = {IMAGE_KEY: tensor(self._image[positions]),
                   PROPRIO_KEY: tensor(self._vector[positions])}  # fmt: skip
            next_obs = {IMAGE_KEY: tensor(self._image[nxt]),
                        PROPRIO_KEY: tensor(self._vector[nxt])}  # fmt: skip
        else:
            obs, next_obs = tensor(self._vector[positions]), tensor(self._vector[nxt])
        return Batch(
            obs=obs,
            action=tensor(self._action[positions]),
            reward=tensor(self._reward[positions]),
            next_obs=next_obs,
            terminated=tensor(self._terminated[positions].astype(np.float32)),
            truncated=tensor(self._truncated[positions].astype(np.float32)),
        )

    # ------------------------------------------------------------------ persistence
    @_locked
    def save(self, directory: str | Path) -> int:
        """Write what is new since the last save to ``directory``; returns slots written."""
        from sac_ros.sac.replay_store import save_buffer

        return save_buffer(self, Path(directory))

    @_locked
    def load(self, directory: str | Path) -> None:
        """Replace this buffer's contents with the ones saved in ``directory``."""
        from sac_ros.sac.replay_store import load_buffer

        load_buffer(self, Path(directory))


def _flag(value: object, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be a bool, got {value!r}")


def _stream_id(stream: object) -> int:
    if isinstance(stream, (bool, np.bool_)) or not isinstance(stream, (int, np.integer)):
        raise ValueError(f"stream must be a non-negative int, got {stream!r}")
    if stream < 0:
        raise ValueError(f"stream must be a non-negative int, got {stream}")
    return int(stream)
