"""Checkpoint files without pickle: tensors in safetensors, everything else in JSON.

A checkpoint directory holds ``checkpoint.json`` (the commit point) and the tensor file it
names, ``weights-<token>.safetensors``. Saving writes a new tensor file, then atomically
replaces ``checkpoint.json``, then deletes older tensor files: a crash at any moment leaves
a complete checkpoint (the previous or the new one).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from sac_ros.sac.atomic import read_json, write_bytes_atomic, write_json_atomic
from sac_ros.sac.optim import FastAdam

FORMAT = "sac_ros.checkpoint"
FORMAT_VERSION = 1
INDEX = "checkpoint.json"


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    name = f"weights-{uuid.uuid4().hex[:12]}.safetensors"
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_bytes_atomic(path / name, safetensors.torch.save(cpu))
    write_json_atomic(
        path / INDEX,
        {"format": FORMAT, "format_version": FORMAT_VERSION, "tensors": name, "state": state},
    )
    for old in path.glob("weights-*.safetensors"):
        if old.name != name:
            old.unlink()


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    index = read_json(path / INDEX)
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path}: not a sac_ros checkpoint")
    if index.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {index.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}"
        )
    name = index.get("tensors")
    if not isinstance(name, str) or "/" in name or not name.endswith(".safetensors"):
        raise ValueError(f"{path}: bad tensor file name {name!r}")
    try:
        tensors = safetensors.torch.load_file(str(path / name), device="cpu")
    except Exception as err:  # SafetensorError, OSError
        raise ValueError(f"{path}: cannot read {name}: {err}") from err
    return tensors, index["state"]


def optimizer_to_flat(
    optimizer: torch.optim.Optimizer | FastAdam, prefix: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as named tensors plus JSON-safe hyperparameters."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"optimizer state {key} is not a tensor ({type(value)})")
            tensors[f"{prefix}/{index}/{key}"] = value
    groups = [{k: _jsonable(v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer | FastAdam,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    prefix: str,
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            index, key = name[len(prefix) + 1 :].split("/", 1)
            state.setdefault(int(index), {})[key] = value
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    raise ValueError(f"optimizer hyperparameter {value!r} cannot be stored as JSON")
