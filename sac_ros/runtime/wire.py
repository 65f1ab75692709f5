"""Transitions on the wire: a batch of transitions as safetensors bytes.

Carried in a std_msgs/UInt8MultiArray on ``sac/transitions``. The bytes are a safetensors
file (never pickle) whose tensors are, for a batch of N transitions:

==============  ==================  =========================================
tensor          shape, dtype        meaning
==============  ==================  =========================================
obs             (N, d) float32      vector observation s_t (vector layouts)
obs.image       (N, H, W, 3) uint8  image part of s_t (pixel layouts)
obs.proprio     (N, p) float32      proprioceptive part of s_t (pixel layouts)
next_obs...     as obs              s_{t+1}, same keys with the ``next_`` prefix
action          (N, a) float32      a_t in [-1, 1]
reward          (N,) float32        r_t
terminated      (N,) uint8          1 when s_{t+1} is terminal (no bootstrap)
truncated       (N,) uint8          1 when the episode stopped without a terminal
seq             (N,) int64          per-sender sequence number, strictly increasing
episode         (N,) int64          episode index of the sender
step            (N,) int64          step index inside the episode
==============  ==================  =========================================

and the metadata ``{"format": "sac_ros.transitions/1", "session": <sender id>,
"layout": <observation layout JSON>, "first_retained": <oldest seq the sender holds>}``.
A new sender session (a restarted policy node) starts its sequence numbers again; the
learner tells sessions apart by ``session``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from sac_ros.sac.untrusted import read_metadata as read_st_metadata

FORMAT = "sac_ros.transitions/1"
Observation = np.ndarray | dict[str, np.ndarray]


class WireFormatError(ValueError):
    """Bytes that are not a valid message of the expected format."""


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes, with clear errors for bad input."""
    return read_st_metadata(data, WireFormatError, "transitions message")


def load_tensors(data: bytes) -> dict[str, np.ndarray]:
    try:
        return st_load(bytes(data))
    except Exception as exc:  # safetensors raises its own error types
        raise WireFormatError(f"unreadable safetensors payload: {exc}") from exc


@dataclass
class TransitionBatch:
    """N transitions of one sender, in arrays (see the module docstring)."""

    session: str
    layout: str
    first_retained: int
    obs: Observation
    action: np.ndarray
    reward: np.ndarray
    next_obs: Observation
    terminated: np.ndarray
    truncated: np.ndarray
    seq: np.ndarray
    episode: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    def row(self, i: int) -> dict:
        """Transition i as a dict of single values (for a replay buffer's add)."""
        return {
            "obs": _index(self.obs, i),
            "action": self.action[i],
            "reward": float(self.reward[i]),
            "next_obs": _index(self.next_obs, i),
            "terminated": bool(self.terminated[i]),
            "truncated": bool(self.truncated[i]),
            "seq": int(self.seq[i]),
            "episode": int(self.episode[i]),
            "step": int(self.step[i]),
        }


def _index(obs: Observation, i: int) -> Observation:
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def _flatten(prefix: str, obs: Observation) -> dict[str, np.ndarray]:
    if isinstance(obs, dict):
        return {f"{prefix}.{k}": np.ascontiguousarray(v) for k, v in obs.items()}
    return {prefix: np.ascontiguousarray(obs)}


def _unflatten(prefix: str, tensors: dict[str, np.ndarray]) -> Observation:
    if prefix in tensors:
        return tensors[prefix]
    parts = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    if not parts:
        raise WireFormatError(f"transition message has no '{prefix}' tensors")
    return parts


def stack_observations(observations: list[Observation]) -> Observation:
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def encode_transitions(batch: TransitionBatch) -> bytes:
    tensors = {
        **_flatten("obs", batch.obs),
        **_flatten("next_obs", batch.next_obs),
        "action": np.asarray(batch.action, dtype=np.float32),
        "reward": np.asarray(batch.reward, dtype=np.float32),
        "terminated": np.asarray(batch.terminated, dtype=np.uint8),
        "truncated": np.asarray(batch.truncated, dtype=np.uint8),
        "seq": np.asarray(batch.seq, dtype=np.int64),
        "episode": np.asarray(batch.episode, dtype=np.int64),
        "step": np.asarray(batch.step, dtype=np.int64),
    }
    meta = {
        "format": FORMAT,
        "session": batch.session,
        "layout": batch.layout,
        "first_retained": str(int(batch.first_retained)),
    }
    return st_save(tensors, metadata=meta)


_SCALARS = {
    "reward": np.float32,
    "terminated": np.uint8,
    "truncated": np.uint8,
    "seq": np.int64,
    "episode": np.int64,
    "step": np.int64,
}


def decode_transitions(data: bytes) -> TransitionBatch:
    """Parse and validate a transitions message; raises WireFormatError on any defect."""
    meta = read_metadata(data)
    if meta.get("format") != FORMAT:
        raise WireFormatError(f"not a transitions message (format {meta.get('format')!r})")
    tensors = load_tensors(data)
    for key, dtype in _SCALARS.items():
        if key not in tensors:
            raise WireFormatError(f"transition message lacks '{key}'")
        if tensors[key].dtype != dtype or tensors[key].ndim != 1:
            raise WireFormatError(f"'{key}' must be a 1-D {np.dtype(dtype).name} array")
    n = tensors["seq"].shape[0]
    if n == 0:
        raise WireFormatError("empty transition message")
    obs, next_obs = _unflatten("obs", tensors), _unflatten("next_obs", tensors)
    action = tensors.get("action")
    if action is None or action.dtype != np.float32 or action.ndim != 2:
        raise WireFormatError("'action' must be a 2-D float32 array")
    arrays = [action, *(tensors[k] for k in _SCALARS)]
    for o in (obs, next_obs):
        arrays += list(o.values()) if isinstance(o, dict) else [o]
    if any(a.shape[0] != n for a in arrays):
        raise WireFormatError("transition arrays disagree on the batch size")
    for a in arrays:
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise WireFormatError("transition message holds NaN or infinite values")
    if np.any(np.abs(action) > 1.0):  # tanh-squashed: a larger one is no policy's
        raise WireFormatError("actions must lie in [-1, 1] (normalized)")
    if n > 1 and np.any(np.diff(tensors["seq"]) <= 0):
        raise WireFormatError("sequence numbers must increase strictly")
    try:
        first_retained = int(meta.get("first_retained", "0"))
    except ValueError as exc:
        raise WireFormatError("'first_retained' must be an integer") from exc
    # The sender holds what it sends: a receiver trusting a larger value would skip
    # every later transition of that sender as already seen.
    if not 0 <= first_retained <= int(tensors["seq"][0]):
        raise WireFormatError(
            f"first_retained {first_retained} must lie in [0, first seq {int(tensors['seq'][0])}]"
        )
    return TransitionBatch(
        session=str(meta.get("session", "")),
        layout=str(meta.get("layout", "")),
        first_retained=first_retained,
        obs=obs,
        action=action,
        reward=tensors["reward"],
        next_obs=next_obs,
        terminated=tensors["terminated"],
        truncated=tensors["truncated"],
        seq=tensors["seq"],
        episode=tensors["episode"],
        step=tensors["step"],
    )
