"""Policy weights as safetensors bytes (what the learner publishes on ``sac/policy``).

The bytes are a standard safetensors file: the actor's float32 tensors plus string
metadata. Metadata keys: ``format`` ("sac_ros.policy"), ``format_version``, ``obs_spec``
(:meth:`ObsSpec.to_json`), ``action_dim``, ``hidden`` (JSON list of layer widths) and
``version`` (the learner's policy counter). :func:`decode_policy` checks all of it and
raises :class:`PolicyFormatError` for anything a robot should not run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

from sac_ros.sac.networks import Actor
from sac_ros.sac.spec import ObsSpec
from sac_ros.sac.untrusted import loads, read_metadata

FORMAT = "sac_ros.policy"
FORMAT_VERSION = 1


class PolicyFormatError(ValueError):
    """Policy bytes that are truncated, malformed or made for another robot or task."""


@dataclass(frozen=True)
class PolicyData:
    spec: ObsSpec
    action_dim: int
    hidden: tuple[int, ...]
    version: int
    tensors: dict[str, np.ndarray]  # the actor's state_dict, float32


def encode_policy(actor: Actor, hidden: tuple[int, ...], version: int) -> bytes:
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"policy version must be a non-negative int, got {version!r}")
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in actor.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "obs_spec": actor.spec.to_json(),
        "action_dim": str(actor.action_dim),
        "hidden": json.dumps(list(hidden)),
        "version": str(version),
    }
    return safetensors.torch.save(tensors, metadata=metadata)


def expected_shapes(
    spec: ObsSpec, action_dim: int, hidden: tuple[int, ...]
) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of an actor with this layout (built without memory)."""
    with torch.device("meta"):
        actor = Actor(spec, action_dim, hidden)
    return {name: tuple(t.shape) for name, t in actor.state_dict().items()}


def decode_policy(
    data: bytes,
    expected_spec: ObsSpec | None = None,
    expected_action_dim: int | None = None,
) -> PolicyData:
    """Parse and check policy bytes; raise PolicyFormatError naming what is wrong."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PolicyFormatError(f"policy data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    metadata = read_metadata(data, PolicyFormatError, "policy data")
    if metadata.get("format") != FORMAT:
        raise PolicyFormatError(f"not a sac_ros policy (format {metadata.get('format')!r})")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise PolicyFormatError(
            f"policy format version {metadata.get('format_version')!r}, "
            f"this code reads {FORMAT_VERSION}"
        )
    try:
        spec = ObsSpec.from_json(metadata["obs_spec"])
        action_dim = int(metadata["action_dim"])
        hidden = tuple(int(h) for h in loads(metadata["hidden"]))
        version = int(metadata["version"])
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise PolicyFormatError(f"policy metadata is malformed: {err!r}") from err
    if action_dim < 1 or version < 0 or not hidden or min(hidden) < 1:
        raise PolicyFormatError(
            f"policy metadata out of range: action_dim {action_dim}, hidden {hidden}, "
            f"version {version}"
        )
    if expected_spec is not None and spec != expected_spec:
        raise PolicyFormatError(
            f"policy observation layout {spec.to_json()} != expected {expected_spec.to_json()}"
        )
    if expected_action_dim is not None and action_dim != expected_action_dim:
        raise PolicyFormatError(f"policy action_dim {action_dim} != expected {expected_action_dim}")
    try:
        tensors = safetensors.numpy.load(data)
    except Exception as err:  # the Rust parser raises SafetensorError and others
        raise PolicyFormatError(f"policy tensors are unreadable: {err}") from err
    _check_tensors(tensors, expected_shapes(spec, action_dim, hidden))
    return PolicyData(spec, action_dim, hidden, version, tensors)


def _check_tensors(tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
    missing, extra = sorted(set(shapes) - set(tensors)), sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise PolicyFormatError(f"policy tensors: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        tensor = tensors[name]
        if tensor.dtype != np.float32:
            raise PolicyFormatError(f"policy tensor {name} is {tensor.dtype}, expected float32")
        if tensor.shape != shape:
            raise PolicyFormatError(
                f"policy tensor {name} has shape {tensor.shape}, expected {shape}"
            )
        if not np.isfinite(tensor).all():
            raise PolicyFormatError(f"policy tensor {name} contains NaN or infinite values")
